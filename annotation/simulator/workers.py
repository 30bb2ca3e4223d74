"""Simulated crowd workers: who they are, what they answer, how long they take. Pure (numpy + the demo
image generator's shape table), no Django.

A worker *sees* an image through its ground truth (:class:`ItemTruth`: the synset asked about and the
shapes drawn) and answers "present" or "absent" with a response time in milliseconds.

Kinds (``KINDS``):

* ``reliable`` -- accuracy drawn per worker from Beta(38, 2) (mean 0.95), a small per-worker bias between
  sensitivity and specificity, about 2 s per image.
* ``noisy`` -- accuracy from Beta(16, 4.5) (mean 0.78; 5th-95th percentile ≈ 0.63-0.90), faster.
* ``lazy`` -- a reliable worker who slows down: each HIT takes ``fatigue`` (≈ 15%) longer than the last, and
  the error rate grows by half that rate (capped at 0.35).
* spammers, who never look: ``random`` (yes with probability 1/2), ``always_yes``, ``always_no`` (quick
  clickers, ≈ 0.4-1 s per image) and ``copycat`` (replays the answers another worker gave in their last HIT,
  position by position, in under 300 ms; "present" when there is nothing to copy). ``spammer`` in a mix
  means these four in equal shares.
* ``adversarial`` -- looks at the image and says the opposite, 85% of the time, at a human pace.

Class-dependent confusion: an image is *hard* when it is a negative that shows a shape confusable with the
synset asked about (``demo_images.SHAPES[...].confusable`` in either direction: a near-square rectangle
among square candidates, a near-round ellipse among circles, a square among rhombi...). An honest worker's
error on a hard image is ``HARD_FACTOR`` times their error elsewhere (capped at 0.45), so confusable
synsets get mistaken more, as with real crowds.

Response times are lognormal: each worker has a median speed (lognormal across workers), each answer
scatters around it with sigma ``TIME_SIGMA``; hard images take 40% longer.

Reproducible: a worker's traits come from ``numpy.random.default_rng([seed, index])``, and its answer to an
image from ``default_rng([seed, index, image key, hit number])``, so a given worker answers a given image in
a given HIT the same way whatever order the server hands images out in.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from annotation import demo_images

HONEST = ("reliable", "noisy", "lazy")
SPAMMERS = ("random", "always_yes", "always_no", "copycat")
KINDS = (*HONEST, *SPAMMERS, "adversarial")
DEFAULT_MIX = "reliable:0.6,noisy:0.25,spammer:0.1,adversarial:0.05"
HARD_FACTOR = 2.5
MAX_HARD_ERROR = 0.45
TIME_SIGMA = 0.45
COPYCAT_MAX_MS = 299


@dataclass(frozen=True)
class ItemTruth:
    """What a simulated worker sees: the synset asked about and the shapes actually drawn."""

    key: str  # stable name of the image (its file in the demo set), for reproducible answers
    query_wnid: str
    present: frozenset[str]

    @property
    def positive(self) -> bool:
        return self.query_wnid in demo_images.implied(self.present)

    @property
    def hard(self) -> bool:
        """A negative showing a shape confusable with the query synset."""
        if self.positive or self.query_wnid not in demo_images.BY_WNID:
            return False
        query = demo_images.BY_WNID[self.query_wnid]
        for wnid in self.present:
            shape = demo_images.BY_WNID.get(wnid)
            if shape is not None and (shape.label in query.confusable or query.label in shape.confusable):
                return True
        return False


def parse_mix(text: str) -> dict[str, float]:
    """``"reliable:0.6,noisy:0.25,spammer:0.1"`` → shares per kind (``spammer`` split over SPAMMERS),
    normalised to sum to 1. Raises ValueError with a sentence on bad input."""
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition(":")
        name = name.strip().replace("-", "_")
        try:
            share = float(value) if sep else math.nan
        except ValueError:
            share = math.nan
        if not share >= 0:
            raise ValueError(f"Mix entry {part!r} needs a share of zero or more: kind:0.25.")
        if name == "spammer":
            for kind in SPAMMERS:
                shares[kind] = shares.get(kind, 0.0) + share / len(SPAMMERS)
        elif name in KINDS:
            shares[name] = shares.get(name, 0.0) + share
        else:
            raise ValueError(f"Unknown worker kind {name!r}; use {', '.join((*KINDS, 'spammer'))}.")
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("The mix is empty: give at least one kind with a positive share.")
    return {kind: share / total for kind, share in shares.items() if share > 0}


def kind_counts(n: int, mix: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``n * share``: counts sum to exactly n; ties go to the mix's order."""
    raw = {kind: n * share for kind, share in mix.items()}
    counts = {kind: math.floor(value) for kind, value in raw.items()}
    order = sorted(mix, key=lambda kind: -(raw[kind] - counts[kind]))
    for kind in order[: n - sum(counts.values())]:
        counts[kind] += 1
    return counts


class Blackboard:
    """What copycats can see: each worker's answers in their last HIT (thread-safe)."""

    def __init__(self) -> None:
        self._last: dict[int, list[bool]] = {}
        self._lock = threading.Lock()

    def publish(self, worker: int, answers: list[bool]) -> None:
        with self._lock:
            self._last[worker] = list(answers)

    def last(self, worker: int) -> list[bool] | None:
        with self._lock:
            return self._last.get(worker)


@dataclass
class SimWorker:
    index: int
    kind: str
    seed: int
    sensitivity: float  # P(says present | present) on ordinary images
    specificity: float  # P(says absent | absent) on ordinary images
    median_ms: float  # typical time per image
    fatigue: float = 0.0  # per-HIT growth of time (lazy workers)
    leader: int | None = None  # whose answers a copycat replays
    blackboard: Blackboard | None = field(default=None, repr=False, compare=False)

    @property
    def is_spammer(self) -> bool:
        return self.kind in SPAMMERS or self.kind == "adversarial"

    @property
    def honest(self) -> bool:
        return self.kind in HONEST

    def _rng(self, item: ItemTruth, hit_no: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.index, zlib.crc32(item.key.encode()), hit_no + 1])

    def p_right(self, item: ItemTruth, *, hit_no: int = 0) -> float:
        """The probability that this worker's answer to ``item`` is right: their true accuracy on it (what a
        report of blocked honest workers states; a worker's nominal sensitivity and specificity overstate it
        on confusable negatives)."""
        if self.kind in ("always_yes", "always_no"):
            return float(item.positive == (self.kind == "always_yes"))
        if self.kind in ("random", "copycat"):
            return 0.5
        return 1.0 - self._error(item, hit_no)

    def _error(self, item: ItemTruth, hit_no: int) -> float:
        """A looking worker's probability of a wrong answer to ``item`` in their ``hit_no``-th HIT."""
        error = 1.0 - (self.sensitivity if item.positive else self.specificity)
        if item.hard:
            error = min(MAX_HARD_ERROR, error * HARD_FACTOR)
        if self.fatigue:
            error = min(0.35, error * (1.0 + 0.5 * self.fatigue * max(hit_no, 0)))
        if self.kind == "adversarial":
            error = 0.85
        return error

    def _says_present(self, item: ItemTruth, rng: np.random.Generator, hit_no: int) -> bool:
        if self.kind == "always_yes":
            return True
        if self.kind == "always_no":
            return False
        if self.kind == "random":
            return bool(rng.random() < 0.5)
        right = rng.random() >= self._error(item, hit_no)
        return item.positive if right else not item.positive

    def _ms(self, item: ItemTruth, rng: np.random.Generator, hit_no: int) -> int:
        if self.kind == "copycat":
            return int(rng.integers(60, COPYCAT_MAX_MS + 1))
        median = self.median_ms * (1.0 + self.fatigue) ** max(hit_no, 0) * (1.4 if item.hard and self.honest else 1.0)
        return max(1, round(float(rng.lognormal(math.log(median), TIME_SIGMA))))

    def answer(self, item: ItemTruth, *, hit_no: int = 0) -> tuple[bool, int]:
        """(says present, response ms) for one image in this worker's ``hit_no``-th HIT (0-based)."""
        rng = self._rng(item, hit_no)
        return self._says_present(item, rng, hit_no), self._ms(item, rng, hit_no)

    def answer_hit(self, items: Sequence[ItemTruth], *, hit_no: int = 0) -> list[tuple[bool, int]]:
        """Answers to a HIT's images in order. A copycat replays its leader's last HIT instead of looking."""
        answers = [self.answer(item, hit_no=hit_no) for item in items]
        if self.kind == "copycat":
            copied = (self.blackboard.last(self.leader) if self.blackboard and self.leader is not None else None) or []
            answers = [(copied[i] if i < len(copied) else True, ms) for i, (_, ms) in enumerate(answers)]
        if self.blackboard is not None:
            self.blackboard.publish(self.index, [present for present, _ in answers])
        return answers

    def answer_quiz(self, items: Sequence[ItemTruth]) -> list[bool]:
        """The qualification quiz: gold images answered like any others (hit number -1)."""
        return [present for present, _ in self.answer_hit(items, hit_no=-1)] if items else []


def _traits(kind: str, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """(sensitivity, specificity, median ms per image, fatigue) for a new worker of this kind."""
    if kind in ("reliable", "lazy"):
        accuracy = rng.beta(38, 2)
    elif kind == "noisy":
        accuracy = rng.beta(16, 4.5)
    else:
        accuracy = 0.5
    bias = float(rng.normal(0.0, 0.02))
    se = float(np.clip(accuracy + bias, 0.5, 0.995))
    sp = float(np.clip(accuracy - bias, 0.5, 0.995))
    speed = {"reliable": 2200.0, "lazy": 2200.0, "noisy": 1400.0, "adversarial": 1800.0}.get(kind, 650.0)
    median_ms = float(speed * rng.lognormal(0.0, 0.3))
    fatigue = float(rng.uniform(0.1, 0.2)) if kind == "lazy" else 0.0
    return se, sp, median_ms, fatigue


def crowd_make(n: int, mix: dict[str, float] | str = DEFAULT_MIX, *, seed: int = 1) -> list[SimWorker]:
    """``n`` workers in the mix's proportions (exact counts by largest remainder), in a seeded random order.
    Copycats each follow a seeded choice among the honest workers (or anyone, if there are none)."""
    if isinstance(mix, str):
        mix = parse_mix(mix)
    counts = kind_counts(n, mix)
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    np.random.default_rng([seed, 1 << 20]).shuffle(kinds)
    board = Blackboard()
    workers = []
    for index, kind in enumerate(kinds):
        se, sp, median_ms, fatigue = _traits(kind, np.random.default_rng([seed, index]))
        workers.append(SimWorker(index, kind, seed, se, sp, median_ms, fatigue, blackboard=board))
    leaders = [w.index for w in workers if w.honest] or [w.index for w in workers]
    for worker in workers:
        if worker.kind == "copycat":
            choices = [i for i in leaders if i != worker.index] or [worker.index]
            worker.leader = int(np.random.default_rng([seed, worker.index, 7]).choice(choices))
    return workers
