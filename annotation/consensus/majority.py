"""Majority vote with explicit, deterministic tie handling.

Ties are common in crowd data (an even number of binary votes) and the way they are broken moves
accuracy by several points, so the rule is a named argument rather than an accident of ``argmax``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

TieBreak = Literal["prior", "lowest", "random"] | int


@dataclass(frozen=True)
class MajorityResult:
    """``labels[i]`` is the winning class; ``tie[i]`` says whether it won a tie (or had no votes).

    ``counts`` is the (possibly weighted) vote tally per class, ``posteriors`` the vote shares (uniform
    for items without votes) — a crude confidence used to initialise EM.
    """

    labels: NDArray[np.int64]
    counts: NDArray[np.float64]
    tie: NDArray[np.bool_]
    posteriors: NDArray[np.float64]


def majority_vote(
    items: ArrayLike,
    workers: ArrayLike,
    labels: ArrayLike,
    n_items: int,
    n_classes: int,
    *,
    tie_break: TieBreak = "lowest",
    worker_weights: ArrayLike | None = None,
    seed: int = 0,
) -> MajorityResult:
    """Plurality vote per item.

    ``tie_break`` decides among the classes sharing the top count:

    * ``"lowest"`` (default): the lowest class index. For a presence task 0 = absent, so a tie never
      admits an image — precision first, as ImageNet wanted. On the shared crowd data it is also the
      better simple rule (workers over-use the popular answer), and it matches crowd-kit's figures.
    * ``"prior"``: the class with the most votes over the whole input (the empirical class prior);
      equal totals fall back to the lower index.
    * an ``int`` class: that class whenever it is among the tied ones, else the lowest tied index.
    * ``"random"``: uniformly among the tied classes, reproducible through ``seed``.

    ``worker_weights`` (length ``n_workers``) scales each worker's votes, e.g. 0 for a blocked worker.
    Items without votes get the tie-break of all classes and ``tie=True``.
    """
    it = np.asarray(items, dtype=np.int64)
    lb = np.asarray(labels, dtype=np.int64)
    weights = None
    if worker_weights is not None:
        weights = np.asarray(worker_weights, dtype=np.float64)[np.asarray(workers, dtype=np.int64)]
    flat = it * n_classes + lb
    counts = np.bincount(flat, weights=weights, minlength=n_items * n_classes).astype(np.float64)
    return majority_from_counts(counts.reshape(n_items, n_classes), tie_break=tie_break, seed=seed)


def majority_from_counts(counts: ArrayLike, *, tie_break: TieBreak = "lowest", seed: int = 0) -> MajorityResult:
    """Majority vote from a ``(n_items, n_classes)`` tally (what ``majority_vote`` does after counting).

    Lets callers that already hold per-item counts (``vote_counts`` on a prepared layout) skip a pass
    over the votes; same tie rules as ``majority_vote``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_items, n_classes = counts.shape
    if n_classes == 2 and tie_break in ("lowest", 0):
        # Binary, ties to class 0: one comparison instead of the general ranking below.
        total = counts[:, 0] + counts[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, counts[:, 1] / total, 0.5)
        return MajorityResult(
            labels=(counts[:, 1] > counts[:, 0]).astype(np.int64),
            counts=counts,
            tie=counts[:, 1] == counts[:, 0],
            posteriors=np.stack((1.0 - share, share), axis=1),
        )
    top = counts.max(axis=1, keepdims=True)
    is_top = counts == top
    tie = is_top.sum(axis=1) > 1

    # Preference score in [0, 1): among tied classes the highest preference wins; it can never
    # outweigh a real difference in counts because we only compare it inside ``is_top``.
    if tie_break == "random":
        preference = np.random.default_rng(seed).random((n_items, n_classes))
    else:
        if tie_break == "prior":
            totals = counts.sum(axis=0)
            # Stable ranking: more votes first, then lower index.
            order = np.lexsort((np.arange(n_classes), -totals))
        elif tie_break == "lowest":
            order = np.arange(n_classes)
        elif isinstance(tie_break, int | np.integer) and 0 <= int(tie_break) < n_classes:
            rest = [k for k in range(n_classes) if k != int(tie_break)]
            order = np.array([int(tie_break), *rest])
        else:
            raise ValueError(f"unknown tie_break {tie_break!r}")
        rank_score = np.empty(n_classes)
        rank_score[order] = np.arange(n_classes, 0, -1)
        preference = np.broadcast_to(rank_score, (n_items, n_classes))
    winner = np.argmax(np.where(is_top, preference, -1.0), axis=1)

    totals_per_item = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals_per_item > 0, counts / totals_per_item, 1.0 / n_classes)
    return MajorityResult(labels=winner, counts=counts, tie=tie, posteriors=shares)
