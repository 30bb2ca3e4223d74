"""How simulated workers draw and judge boxes (the box pipeline's three task types). Pure: numpy only.

A worker is a :class:`~annotation.simulator.workers.SimWorker` (its kind, seed, accuracy and speed); this
module adds what it does with boxes, from the ground truth of the image (:class:`BoxTruth`):

* **Draw** (one box around one instance not yet boxed). Honest workers pick an instance that no shown
  (accepted) box covers and draw it with *edge noise proportional to its size* (each edge moves by a normal
  error of ``edge_sigma`` × the instance's width or height, rounded to whole pixels), sometimes a *loose*
  box (one or two edges pushed out by 15-50 % of the size), sometimes a *wrong* box (around another shape
  or a patch of background), sometimes a *duplicate* of an instance already boxed. They *miss* instances:
  with probability ``miss`` (twice that for instances under 40 px) they answer "no more instances" while
  one is left, or "not present" when nothing is boxed yet. With nothing left they answer "no more" (or
  "not present" on an image without any instance). Spammers: ``random`` and ``copycat`` draw a random box,
  ``always_yes`` boxes the whole image, ``always_no`` says "not present", ``adversarial`` draws a wrong box.
* **Quality** (is the box tight around one instance?). The truth is "yes" when the box overlaps an instance
  by IoU ≥ ``GOOD_IOU``. A worker answers correctly with its presence accuracy (sensitivity on good boxes,
  specificity on bad ones); borderline boxes (best IoU within ``BORDERLINE``) are as hard as the presence
  task's confusable images (error × 2.5, at most 0.45). Spammers answer as they do on images.
* **Coverage** (is every instance boxed?). The truth is "yes" when every instance has a shown box with
  IoU ≥ 0.5; an instance with a box of IoU within ``BORDERLINE`` makes the question hard.

Times are lognormal around a median per kind (ILSVRC: drawing ~25 s a box, verifying a few seconds).
Reproducible like the presence answers: the generator is seeded by (seed, worker, image, hit number, task
type and what is shown), so the order in which the server hands out work does not change an answer.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from annotation.boxes import iou_matrix
from annotation.simulator.workers import HARD_FACTOR, MAX_HARD_ERROR, TIME_SIGMA, SimWorker

Coords = tuple[int, int, int, int]
GOOD_IOU = 0.7  # what a careful worker accepts as "tight" (ILSVRC's instructions ask for a tight box)
BORDERLINE = (0.55, 0.8)
COVERED_IOU = 0.5
SMALL_SIDE = 40


@dataclass(frozen=True)
class BoxTruth:
    """What a simulated worker sees in a box task: the image and where the asked synset's instances are."""

    key: str  # stable name of the image (its demo file), for reproducible answers
    width: int
    height: int
    instances: tuple[Coords, ...]  # boxes of the instances of the asked synset (and its hyponyms)
    others: tuple[Coords, ...] = ()  # boxes of other shapes in the image (what a wrong box lands on)


@dataclass(frozen=True)
class DrawTraits:
    edge_sigma: float  # edge error as a share of the instance's width / height
    loose: float  # P(a loose box)
    wrong: float  # P(a box around something else)
    duplicate: float  # P(boxing an instance that already has a box)
    miss: float  # P("no more" / "not present" while an instance is left)
    draw_ms: float  # median time to draw one box


TRAITS = {
    "reliable": DrawTraits(0.025, 0.02, 0.005, 0.01, 0.03, 24_000.0),
    "lazy": DrawTraits(0.035, 0.05, 0.01, 0.02, 0.08, 22_000.0),
    "noisy": DrawTraits(0.05, 0.08, 0.03, 0.03, 0.08, 15_000.0),
    "adversarial": DrawTraits(0.05, 0.0, 1.0, 0.0, 0.0, 8_000.0),
}
SPAMMER_DRAW_MS = 3_000.0
NO_MORE_MS = 4_000.0


def traits(worker: SimWorker) -> DrawTraits:
    return TRAITS.get(worker.kind, DrawTraits(0.0, 0.0, 0.0, 0.0, 0.0, SPAMMER_DRAW_MS))


def _rng(worker: SimWorker, truth: BoxTruth, hit_no: int, *salt: int) -> np.random.Generator:
    return np.random.default_rng([worker.seed, worker.index, zlib.crc32(truth.key.encode()), hit_no + 1, *salt])


def _ms(worker: SimWorker, median: float, rng: np.random.Generator, hit_no: int) -> int:
    median *= (1.0 + worker.fatigue) ** max(hit_no, 0)
    return max(1, round(float(rng.lognormal(math.log(median), TIME_SIGMA))))


def _best_iou(box, boxes) -> float:
    if not boxes:
        return 0.0
    return float(iou_matrix([box], list(boxes))[0].max())


def _clip(box: np.ndarray, width: int, height: int) -> Coords | None:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, x2 = max(0, min(x1, width - 1)), max(1, min(x2, width))
    y1, y2 = max(0, min(y1, height - 1)), max(1, min(y2, height))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def _noisy(target: Coords, sigma: float, rng: np.random.Generator, truth: BoxTruth) -> Coords:
    w, h = target[2] - target[0], target[3] - target[1]
    box = np.array(target, dtype=float) + rng.normal(0.0, sigma, 4) * np.array([w, h, w, h])
    return _clip(box, truth.width, truth.height) or target


def _loose(target: Coords, rng: np.random.Generator, truth: BoxTruth) -> Coords:
    w, h = target[2] - target[0], target[3] - target[1]
    box = np.array(target, dtype=float)
    for edge in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        push = rng.uniform(0.15, 0.5) * (w if edge in (0, 2) else h)
        box[edge] += push if edge >= 2 else -push
    return _clip(box, truth.width, truth.height) or target


def _random_box(rng: np.random.Generator, truth: BoxTruth) -> Coords:
    w = int(rng.integers(10, max(11, truth.width // 2)))
    h = int(rng.integers(10, max(11, truth.height // 2)))
    x1 = int(rng.integers(0, truth.width - w + 1))
    y1 = int(rng.integers(0, truth.height - h + 1))
    return x1, y1, x1 + w, y1 + h


def _wrong(rng: np.random.Generator, truth: BoxTruth) -> Coords:
    """A box around another shape, or a random patch that covers no instance well."""
    if truth.others and rng.random() < 0.7:
        return _noisy(truth.others[int(rng.integers(len(truth.others)))], 0.03, rng, truth)
    for _ in range(20):
        box = _random_box(rng, truth)
        if _best_iou(box, truth.instances) < 0.3:
            return box
    return box


@dataclass(frozen=True)
class DrawAnswer:
    answer: str  # box | no_more | not_present
    box: Coords | None
    ms: int


def draw(worker: SimWorker, truth: BoxTruth, shown: list[Coords], *, hit_no: int = 0) -> DrawAnswer:
    """One draw item: ``shown`` are the image's accepted boxes (not editable)."""
    rng = _rng(worker, truth, hit_no, 1, len(shown))
    t = traits(worker)
    kind = worker.kind
    if kind == "always_no":
        return DrawAnswer("not_present", None, _ms(worker, NO_MORE_MS / 2, rng, hit_no))
    if kind in ("random", "copycat"):
        return DrawAnswer("box", _random_box(rng, truth), _ms(worker, SPAMMER_DRAW_MS, rng, hit_no))
    if kind == "always_yes":
        return DrawAnswer("box", (0, 0, truth.width, truth.height), _ms(worker, SPAMMER_DRAW_MS, rng, hit_no))
    if kind == "adversarial":
        return DrawAnswer("box", _wrong(rng, truth), _ms(worker, t.draw_ms, rng, hit_no))
    left = [b for b in truth.instances if _best_iou(b, shown) < COVERED_IOU]
    boxed = [b for b in truth.instances if b not in left]
    nothing = "no_more" if shown else "not_present"
    if not left:
        if boxed and rng.random() < t.duplicate:
            target = boxed[int(rng.integers(len(boxed)))]
            return DrawAnswer("box", _noisy(target, t.edge_sigma, rng, truth), _ms(worker, t.draw_ms, rng, hit_no))
        return DrawAnswer(nothing, None, _ms(worker, NO_MORE_MS, rng, hit_no))
    target = left[int(rng.integers(len(left)))]
    small = min(target[2] - target[0], target[3] - target[1]) < SMALL_SIDE
    if rng.random() < t.miss * (2.0 if small else 1.0) * (1.0 + worker.fatigue * max(hit_no, 0)):
        return DrawAnswer(nothing, None, _ms(worker, NO_MORE_MS, rng, hit_no))
    ms = _ms(worker, t.draw_ms, rng, hit_no)
    roll = rng.random()
    if roll < t.wrong:
        return DrawAnswer("box", _wrong(rng, truth), ms)
    if roll < t.wrong + t.duplicate and boxed:
        target = boxed[int(rng.integers(len(boxed)))]
    box = _noisy(target, t.edge_sigma, rng, truth)
    if rng.random() < t.loose:
        box = _loose(box, rng, truth)
    return DrawAnswer("box", box, ms)


def _judge(worker: SimWorker, truth_yes: bool, hard: bool, rng: np.random.Generator, hit_no: int) -> bool:
    """Yes or no to a question whose true answer is ``truth_yes``, like SimWorker answers "present?"."""
    if worker.kind in ("always_yes", "always_no", "random"):
        return worker.kind == "always_yes" or (worker.kind == "random" and bool(rng.random() < 0.5))
    error = 1.0 - (worker.sensitivity if truth_yes else worker.specificity)
    if hard:
        error = min(MAX_HARD_ERROR, error * HARD_FACTOR)
    if worker.fatigue:
        error = min(0.35, error * (1.0 + 0.5 * worker.fatigue * max(hit_no, 0)))
    if worker.kind == "adversarial":
        error = 0.85
    if worker.kind == "copycat":
        error = 0.5
    right = rng.random() >= error
    return truth_yes if right else not truth_yes


def judge_quality(worker: SimWorker, truth: BoxTruth, box: Coords, *, hit_no: int = 0) -> tuple[str, int]:
    """("yes" | "no", ms) to "is this a tight box around one instance?"."""
    rng = _rng(worker, truth, hit_no, 2, *box)
    best = _best_iou(box, truth.instances)
    says = _judge(worker, best >= GOOD_IOU, BORDERLINE[0] <= best <= BORDERLINE[1], rng, hit_no)
    return ("yes" if says else "no"), _ms(worker, worker.median_ms * 1.2, rng, hit_no)


def judge_coverage(worker: SimWorker, truth: BoxTruth, shown: list[Coords], *, hit_no: int = 0) -> tuple[str, int]:
    """("yes" | "no", ms) to "is every instance boxed?" with ``shown`` the accepted boxes."""
    rng = _rng(worker, truth, hit_no, 3, len(shown), *(v for b in shown for v in b))
    best = [_best_iou(b, shown) for b in truth.instances]
    covered = all(v >= COVERED_IOU for v in best)
    hard = any(BORDERLINE[0] - 0.25 <= v <= BORDERLINE[0] for v in best)
    says = _judge(worker, covered, hard, rng, hit_no)
    return ("yes" if says else "no"), _ms(worker, worker.median_ms * 1.5, rng, hit_no)
