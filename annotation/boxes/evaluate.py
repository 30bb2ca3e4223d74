"""Scoring boxes against truth, and ``boxes_eval``'s runs of the aggregation methods on a crowd CSV.

Matching (PASCAL VOC / COCO style): over all (predicted, true) pairs of one image with IoU >= 0.5, take
pairs in decreasing IoU and match each box at most once. Matched predictions are true positives; other
predictions false positives (a second box on an already matched instance is a *duplicate*, counted
separately too); unmatched truth boxes are misses. Precision, recall and F1 are pooled over all images;
mean IoU is over matched pairs. Pure numpy and the standard library.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..tables import dict_reader
from .aggregate import aggregate_boxes, worker_reliability
from .geometry import FloatArray, iou_matrix

MATCH_IOU = 0.5
BOX_COLUMNS = ("image", "worker", "x1", "y1", "x2", "y2")
TRUTH_COLUMNS = ("image", "x1", "y1", "x2", "y2")
ALIASES = {
    "image": ("image_id",),
    "worker": ("worker_id",),
    "x1": ("xmin",),
    "y1": ("ymin",),
    "x2": ("xmax",),
    "y2": ("ymax",),
}


@dataclass(frozen=True)
class Match:
    pairs: list[tuple[int, int, float]]  # (predicted index, truth index, IoU)
    duplicates: int  # unmatched predictions overlapping an already matched truth box by >= the threshold


def match_boxes(pred: FloatArray, truth: FloatArray, threshold: float = MATCH_IOU) -> Match:
    iou = iou_matrix(pred, truth)
    if iou.size == 0:
        return Match([], 0)
    p_idx, t_idx = np.nonzero(iou >= threshold)
    order = np.lexsort((t_idx, p_idx, -iou[p_idx, t_idx]))
    used_p: set[int] = set()
    used_t: set[int] = set()
    pairs = []
    for k in order:
        p, t = int(p_idx[k]), int(t_idx[k])
        if p in used_p or t in used_t:
            continue
        used_p.add(p)
        used_t.add(t)
        pairs.append((p, t, float(iou[p, t])))
    dup = sum(1 for p in range(len(pred)) if p not in used_p and (iou[p, list(used_t)] >= threshold).any())
    return Match(pairs, dup)


@dataclass
class Score:
    predicted: int = 0
    truth: int = 0
    matched: int = 0
    duplicates: int = 0
    iou_sum: float = 0.0

    def add(self, pred: FloatArray, truth: FloatArray, threshold: float = MATCH_IOU) -> Match:
        m = match_boxes(pred, truth, threshold)
        self.predicted += len(pred)
        self.truth += len(truth)
        self.matched += len(m.pairs)
        self.duplicates += m.duplicates
        self.iou_sum += sum(iou for _, _, iou in m.pairs)
        return m

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.matched if self.matched else 0.0

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "mean_iou": round(self.mean_iou, 4),
        }


# ------------------------------------------------------------------------------------------------- CSV


class BadInput(ValueError):
    """A CSV that cannot be evaluated; the message is a sentence naming the file, row and column."""


@dataclass
class CrowdBoxes:
    keys: list[str]  # image keys in first-seen order (image, or image|wnid when both files carry wnid)
    boxes: dict[str, tuple[FloatArray, np.ndarray]]  # key -> (boxes, worker codes)
    workers: list[str]
    truth: dict[str, FloatArray] | None
    skipped: int = 0  # rows without area, left out


def _number(value: str | None, *, path: str, line: int, column: str) -> float:
    if value is None or not value.strip():
        raise BadInput(f"{path} line {line}: no {column} (every row needs a number in each box column).")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{path} line {line}: {column} must be a number, got {value!r}.") from None
    if not math.isfinite(x):
        raise BadInput(f"{path} line {line}: {column} must be a finite number, got {value!r}.")
    return x


def _read(path: str | Path, columns: Sequence[str], what: str) -> tuple[list[str], Iterable[tuple[int, dict]]]:
    file = Path(path)
    if not file.is_file():
        raise BadInput(f"The {what} file {path} does not exist.")
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = dict_reader(handle)
            header = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise BadInput(f"The {what} file {path} cannot be read as CSV: {error}.") from None
    if not header:
        raise BadInput(f"The {what} file {path} is empty; expected a header with columns {','.join(columns)}.")
    # PASCAL VOC's corner names and *_id column names are read as ours.
    renamed = {alias: c for c in columns if c not in header for alias in ALIASES.get(c, ()) if alias in header}
    if renamed:
        header = [renamed.get(name, name) for name in header]
        rows = [(line, {renamed.get(k, k): v for k, v in row.items()}) for line, row in rows]
    missing = [c for c in columns if c not in header]
    if missing:
        raise BadInput(
            f"The {what} file {path} lacks the column(s) {', '.join(missing)}; "
            f"expected {','.join(columns)} (found {','.join(h for h in header if h is not None)})."
        )
    return header, rows


def _box(row: dict, *, path: str, line: int) -> list[float] | None:
    """The row's box with its corners in order (a box dragged right-to-left arrives with x2 < x1 in some
    tools), or None when it has no area (a click rather than a drag): real crowd files contain both, and
    neither should stop an evaluation. Non-numbers and infinities do stop it."""
    x1, y1, x2, y2 = (_number(row.get(c), path=path, line=line, column=c) for c in ("x1", "y1", "x2", "y2"))
    x1, x2 = min(x1, x2), max(x1, x2)
    y1, y2 = min(y1, y2), max(y1, y2)
    if x2 == x1 or y2 == y1:
        return None
    return [x1, y1, x2, y2]


def load_crowd_boxes(boxes_path: str | Path, truth_path: str | Path | None = None) -> CrowdBoxes:
    """Read ``image,worker,x1,y1,x2,y2`` crowd boxes and optional ``image,x1,y1,x2,y2`` truth (extra columns
    such as ``wnid`` are ignored, unless *both* files have a ``wnid`` column: then boxes are matched per
    image and wnid). Images in the truth without crowd boxes count as missed; crowd boxes on an image with no
    truth rows are false positives."""
    header, rows = _read(boxes_path, BOX_COLUMNS, "boxes")
    t_header, t_rows = _read(truth_path, TRUTH_COLUMNS, "truth") if truth_path else ([], [])
    by_wnid = "wnid" in header and "wnid" in t_header

    def key(row: dict) -> str:
        return f"{row['image']}|{row['wnid']}" if by_wnid else row["image"]

    worker_code: dict[str, int] = {}
    raw: dict[str, list[tuple[list[float], int]]] = {}
    skipped = 0
    for line, row in rows:
        if not row.get("image") or not row.get("worker"):
            raise BadInput(f"{boxes_path} line {line}: image and worker must not be empty.")
        code = worker_code.setdefault(row["worker"], len(worker_code))
        box = _box(row, path=str(boxes_path), line=line)
        if box is None:
            skipped += 1
            continue
        raw.setdefault(key(row), []).append((box, code))
    if not rows:
        raise BadInput(f"The boxes file {boxes_path} has a header but no rows.")
    truth: dict[str, list[list[float]]] | None = None
    if truth_path:
        truth = {}
        for line, row in t_rows:
            if not row.get("image"):
                raise BadInput(f"{truth_path} line {line}: image must not be empty.")
            box = _box(row, path=str(truth_path), line=line)
            if box is None:
                raise BadInput(f"{truth_path} line {line}: the truth box has no area.")
            truth.setdefault(key(row), []).append(box)
    if truth and not set(truth) & set(raw):
        raise BadInput(
            f"None of the {len(truth)} images of {truth_path} has a crowd box in {boxes_path} (images are matched "
            f"by their text{' and wnid' if by_wnid else ''}: e.g. {next(iter(truth))!r} there, "
            f"{next(iter(raw), '')!r} in the boxes)."
        )
    keys = list(raw) + [k for k in (truth or {}) if k not in raw]
    boxes = {
        k: (np.array([b for b, _ in raw.get(k, [])]).reshape(-1, 4), np.array([w for _, w in raw.get(k, [])], int))
        for k in keys
    }
    return CrowdBoxes(
        keys=keys,
        boxes=boxes,
        workers=list(worker_code),
        truth=None if truth is None else {k: np.array(truth.get(k, [])).reshape(-1, 4) for k in keys},
        skipped=skipped,
    )


# ----------------------------------------------------------------------------------------------- methods

# (name, setting, kwargs for aggregate_boxes, estimate reliabilities?)
SETTINGS: tuple[tuple[str, str, dict, bool], ...] = (
    ("raw", "every box as drawn", {}, False),
    ("nms", "greedy IoU>=0.5, seed box kept", {"method": "seed"}, False),
    ("mean", "IoU>=0.5, reliability-weighted mean", {"method": "mean"}, True),
    ("median", "IoU>=0.5, reliability-weighted median", {"method": "median"}, True),
    ("median-2", "median, >=2 distinct workers behind a box", {"method": "median", "min_workers": 2}, True),
    ("median-majority", "median, weight >= half the image's workers", {"method": "median", "majority": 0.5}, True),
)
METHOD_NAMES = tuple(name for name, _, _, _ in SETTINGS)


def run_method(data: CrowdBoxes, name: str, weights: FloatArray) -> dict[str, FloatArray]:
    _, _, kwargs, weighted = next(s for s in SETTINGS if s[0] == name)
    out = {}
    table = weights if weighted else np.ones(len(data.workers))
    for k in data.keys:
        boxes, workers = data.boxes[k]
        if name == "raw" or len(boxes) == 0:
            out[k] = boxes
            continue
        out[k] = aggregate_boxes(boxes, workers, table, **kwargs).boxes
    return out


def evaluate(data: CrowdBoxes, methods: Sequence[str] | None = None) -> dict[str, dict]:
    """Per method: setting, boxes out, seconds and, with truth, the pooled :class:`Score`."""
    methods = list(methods or METHOD_NAMES)
    started = time.perf_counter()
    images = [data.boxes[k] for k in data.keys if len(data.boxes[k][0])]
    weights = worker_reliability(images, len(data.workers))
    reliability_seconds = time.perf_counter() - started
    report = {}
    for name in methods:
        setting = next(s[1] for s in SETTINGS if s[0] == name)
        t0 = time.perf_counter()
        result = run_method(data, name, weights)
        seconds = time.perf_counter() - t0 + (reliability_seconds if name in ("mean", "median") else 0.0)
        entry: dict = {
            "setting": setting,
            "images": len(data.keys),
            "boxes_in": sum(len(b) for b, _ in data.boxes.values()),
            "skipped_rows": data.skipped,
            "boxes_out": sum(len(b) for b in result.values()),
        }
        if data.truth is not None:
            score = Score()
            for k in data.keys:
                score.add(result[k], data.truth[k])
            entry.update(score.as_dict())
        entry["seconds"] = round(seconds, 4)
        report[name] = entry
    return report
