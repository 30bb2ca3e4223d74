"""Box aggregation: boxes drawn by different workers around the same instance become one box.

Rule (see AGGREGATION.md beside this file for the reasons):

1. **Greedy clustering by IoU.** Every box gets an *agreement score*: its worker's weight plus the weights
   of the other workers' boxes that overlap it by at least the threshold, each times that IoU. The
   unassigned box with the highest score seeds a cluster (ties: lower index first, so the result is
   deterministic); every unassigned box with ``IoU(seed, box) >= threshold`` joins it. The threshold is
   ILSVRC's small-object tolerance of the seed, ``min(iou_threshold, wh / ((w + 10)(h + 10)))``.
2. **One vote per worker per cluster.** If a worker has several boxes in a cluster (the same instance drawn
   twice), only the one closest to the seed counts; the others are absorbed — they never become a box.
3. **Reliability-weighted coordinate median.** Each coordinate of the merged box is the weighted median of
   the counting boxes' coordinates, weights = worker reliabilities (``method="mean"``: weighted mean).
4. **Support.** A cluster's support is the total weight of its workers; clusters with fewer than
   ``min_workers`` distinct workers, below ``min_support`` (an absolute weight) or below ``majority`` × the
   weight of all workers who drew on the image are dropped (defaults keep everything: in the pipeline every
   box was already verified by the quality task).
5. **No duplicates.** A merged box overlapping an earlier (higher-scored) merged box by the threshold is
   folded into it, so two output boxes never cover the same instance.

Preconditions: boxes are valid (``geometry.as_boxes``), ``workers`` are small non-negative integer codes
and ``weights`` a reliability in ``(0, 1]`` per worker code. Pure numpy, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .geometry import FloatArray, as_boxes, iou_matrix, small_object_threshold

METHODS = ("median", "mean", "seed")


@dataclass(frozen=True)
class Aggregate:
    """Merged boxes of one image, strongest first."""

    boxes: FloatArray  # (k, 4)
    support: FloatArray  # (k,) total worker weight behind each merged box
    workers: NDArray[np.int64]  # (k,) number of distinct workers behind each merged box
    cluster: NDArray[np.int64]  # (n,) index into ``boxes`` of the box each input joined, -1 if dropped


def weighted_median(values: ArrayLike, weights: ArrayLike) -> float:
    """The lower weighted median: the smallest value whose cumulative weight reaches half the total.
    For two equal weights this is their midpoint (we average the two middle values on an exact tie)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cum = np.cumsum(w)
    half = cum[-1] / 2.0
    i = int(np.searchsorted(cum, half - 1e-12 * cum[-1]))
    if abs(cum[i] - half) <= 1e-12 * cum[-1] and i + 1 < len(v):
        return float((v[i] + v[i + 1]) / 2.0)
    return float(v[i])


def _merge(boxes: FloatArray, weights: FloatArray, method: str) -> FloatArray:
    if method == "mean":
        return (boxes * weights[:, None]).sum(axis=0) / weights.sum()
    return np.array([weighted_median(boxes[:, k], weights) for k in range(4)])


def aggregate_boxes(
    boxes: ArrayLike,
    workers: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    iou_threshold: float = 0.5,
    small_object: bool = True,
    method: str = "median",
    min_support: float = 0.0,
    min_workers: int = 1,
    majority: float = 0.0,
) -> Aggregate:
    """Aggregate the boxes of one image (see the module docstring for the rule).

    ``workers[i]`` is the worker code of box ``i``; ``weights[w]`` the reliability of worker code ``w``
    (default 1 for everyone). ``method`` is ``median`` (default), ``mean`` or ``seed`` (keep the seed box
    as drawn: greedy non-maximum suppression, the baseline)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    b = as_boxes(boxes)
    wk = np.asarray(workers, dtype=np.int64).reshape(-1)
    if wk.shape[0] != b.shape[0]:
        raise ValueError("workers must have one entry per box")
    n = len(b)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Aggregate(np.zeros((0, 4)), np.zeros(0), empty, empty)
    if wk.min() < 0:
        raise ValueError("worker codes must be non-negative")
    table = np.ones(int(wk.max()) + 1) if weights is None else np.asarray(weights, dtype=np.float64)
    if table.shape[0] <= wk.max() or not (table[wk] > 0).all():
        raise ValueError("weights needs a positive weight for every worker code")
    w = table[wk]
    iou = iou_matrix(b, b)
    thr = small_object_threshold(b, iou_threshold) if small_object else np.full(n, iou_threshold)
    # Agreement: own weight plus IoU-weighted support from other workers' overlapping boxes.
    other = wk[:, None] != wk[None, :]
    overlapping = (iou >= thr[:, None]) & other
    score = w + (iou * overlapping * w[None, :]).sum(axis=1)
    order = np.lexsort((np.arange(n), -score))

    cluster = np.full(n, -1, dtype=np.int64)
    merged: list[FloatArray] = []
    support: list[float] = []
    n_workers: list[int] = []
    for seed in order:
        if cluster[seed] != -1:
            continue
        members = np.flatnonzero((cluster == -1) & (iou[seed] >= thr[seed]))
        members = members[members != seed]
        members = np.concatenate([[seed], members])
        # One box per worker: the seed's own worker keeps the seed, others their box closest to the seed.
        counting: dict[int, int] = {}
        for i in members[np.argsort(-iou[seed, members], kind="stable")]:
            counting.setdefault(int(wk[i]), int(i))
        idx = np.array(sorted(counting.values()))
        box = b[seed] if method == "seed" else _merge(b[idx], w[idx], method)
        k = len(merged)
        cluster[members] = k
        merged.append(box)
        support.append(float(w[idx].sum()))
        n_workers.append(len(idx))
    if not merged:
        empty = np.zeros(0, dtype=np.int64)
        return Aggregate(np.zeros((0, 4)), np.zeros(0), empty, cluster)
    out = np.array(merged)
    sup = np.array(support)
    cnt = np.array(n_workers, dtype=np.int64)
    total = float(table[np.unique(wk)].sum())
    keep = (sup >= min_support - 1e-9) & (cnt >= min_workers) & (sup >= majority * total - 1e-9)
    # Fold merged boxes that still overlap a stronger kept one (clusters are in decreasing seed score).
    out_iou = iou_matrix(out, out)
    out_thr = small_object_threshold(out, iou_threshold) if small_object else np.full(len(out), iou_threshold)
    target = np.arange(len(out))
    for k in range(len(out)):
        if not keep[k]:
            continue
        for j in range(k):
            if keep[j] and target[j] == j and out_iou[j, k] >= min(out_thr[j], out_thr[k]):
                keep[k] = False
                target[k] = j
                break
    remap = np.full(len(out), -1, dtype=np.int64)
    kept = np.flatnonzero(keep)
    remap[kept] = np.arange(len(kept))
    for k in range(len(out)):
        if not keep[k] and target[k] != k:
            remap[k] = remap[target[k]]
    new_cluster = np.where(cluster >= 0, remap[np.clip(cluster, 0, None)], -1)
    return Aggregate(out[kept], sup[kept], cnt[kept], new_cluster)


def worker_reliability(
    images: list[tuple[FloatArray, NDArray[np.int64]]],
    n_workers: int,
    *,
    iterations: int = 3,
    prior: tuple[float, float] = (2.0, 1.0),
    iou_threshold: float = 0.5,
) -> FloatArray:
    """Estimate each worker's box reliability from agreement alone (no truth): the share of their boxes
    that another worker corroborates (the box lands in a cluster that holds some other worker's box),
    smoothed by a Beta ``prior`` (default 2:1, so an unknown worker starts at 2/3), and re-estimated with
    the new weights ``iterations`` times. ``images`` is a list of ``(boxes, worker_codes)`` per image."""
    weights = np.ones(n_workers)
    a, b_ = prior
    for _ in range(iterations):
        agreed = np.zeros(n_workers)
        drawn = np.zeros(n_workers)
        for boxes, workers in images:
            if len(boxes) == 0:
                continue
            result = aggregate_boxes(boxes, workers, weights, iou_threshold=iou_threshold, method="seed")
            np.add.at(drawn, workers, 1.0)
            clusters = result.cluster
            for i, c in enumerate(clusters):
                if c < 0:
                    continue
                mates = workers[(clusters == c)]
                if (mates != workers[i]).any():
                    agreed[workers[i]] += 1.0
        weights = (agreed + a) / (drawn + a + b_)
    return weights
