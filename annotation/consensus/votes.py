"""Validated, item-sorted vote arrays shared by every consensus algorithm.

Votes arrive as three parallel integer arrays (item index, worker index, label index). The EM loop
touches every vote twice per iteration, so we pay once for a layout that makes those passes cheap:
votes sorted by item (per-item sums become ``np.add.reduceat`` over contiguous runs, several times
faster than a scattered ``np.bincount``) and a precomputed ``worker * K + label`` key (per-worker
answer counts become one ``np.bincount`` into a ``W * K`` table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int32]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class VoteArrays:
    """Votes sorted by item, plus the run boundaries of each voted item.

    ``voted_items[j]`` is the j-th distinct item that has at least one vote; its votes occupy
    ``items[starts[j] : starts[j] + counts[j]]``. Items without votes do not appear in ``voted_items``.
    """

    items: IntArray
    workers: IntArray
    labels: IntArray
    n_items: int
    n_workers: int
    n_classes: int
    voted_items: IntArray
    starts: NDArray[np.intp]
    counts: NDArray[np.intp]
    pair: NDArray[np.intp]  # worker * n_classes + label, the key of the per-worker answer table (intp:
    # numpy's index type, so take/bincount never convert it)

    @property
    def n_votes(self) -> int:
        return int(self.items.shape[0])

    def per_vote(self, per_voted_item: NDArray) -> NDArray:
        """Broadcast a value per voted item to each of its votes (sequential, no gather)."""
        return np.repeat(per_voted_item, self.counts, axis=0)

    def sum_per_item(self, per_vote: NDArray) -> FloatArray:
        """Sum a per-vote value over each voted item's votes."""
        if self.n_votes == 0:
            return np.zeros(0, dtype=np.float64)
        return np.add.reduceat(per_vote, self.starts)


def prepare_votes(
    items: ArrayLike,
    workers: ArrayLike,
    labels: ArrayLike,
    n_items: int,
    n_workers: int,
    n_classes: int,
) -> VoteArrays:
    """Check the coded arrays and return them sorted by item.

    Preconditions (checked, ``ValueError`` otherwise): equal lengths, integer codes with
    ``0 <= item < n_items``, ``0 <= worker < n_workers``, ``0 <= label < n_classes``, ``n_classes >= 2``.
    """
    it = np.asarray(items)
    wk = np.asarray(workers)
    lb = np.asarray(labels)
    if not (it.shape == wk.shape == lb.shape) or it.ndim != 1:
        raise ValueError("items, workers and labels must be 1-D arrays of equal length")
    if n_classes < 2:
        raise ValueError("n_classes must be at least 2")
    if n_workers * n_classes >= 2**31:
        raise ValueError("n_workers * n_classes must fit in int32")
    for name, arr, upper in (("item", it, n_items), ("worker", wk, n_workers), ("label", lb, n_classes)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} codes must be integers")
        if arr.size and (arr.min() < 0 or arr.max() >= upper):
            raise ValueError(f"{name} codes must lie in [0, {upper})")
    it = it.astype(np.int32, copy=False)
    wk = wk.astype(np.int32, copy=False)
    lb = lb.astype(np.int32, copy=False)
    # Most callers stream votes per candidate, already sorted; checking is far cheaper than sorting.
    if it.size > 1 and not bool(np.all(it[1:] >= it[:-1])):
        order = np.argsort(it, kind="stable")
        it, wk, lb = it[order], wk[order], lb[order]
    if it.size:
        boundary = np.flatnonzero(np.diff(it)) + 1
        starts = np.concatenate(([0], boundary)).astype(np.intp)
        counts = np.diff(np.concatenate((starts, [it.size]))).astype(np.intp)
        voted = it[starts]
    else:
        starts = np.zeros(0, dtype=np.intp)
        counts = np.zeros(0, dtype=np.intp)
        voted = np.zeros(0, dtype=np.int32)
    pair = wk.astype(np.intp) * n_classes + lb
    return VoteArrays(
        items=it,
        workers=wk,
        labels=lb,
        n_items=int(n_items),
        n_workers=int(n_workers),
        n_classes=int(n_classes),
        voted_items=voted.astype(np.int32, copy=False),
        starts=starts,
        counts=counts,
        pair=pair,
    )


def vote_counts(votes: VoteArrays) -> NDArray[np.int64]:
    """Per-item vote count for every class, shape ``(n_items, n_classes)``."""
    if votes.n_classes == 2 and votes.n_votes:
        # Binary on the item-sorted layout: "yes" counts are run sums of the labels (no scatter).
        out = np.zeros((votes.n_items, 2), dtype=np.int64)
        yes = np.add.reduceat(votes.labels, votes.starts)
        out[votes.voted_items, 1] = yes
        out[votes.voted_items, 0] = votes.counts - yes
        return out
    flat = votes.items.astype(np.int64) * votes.n_classes + votes.labels
    return np.bincount(flat, minlength=votes.n_items * votes.n_classes).reshape(votes.n_items, votes.n_classes)
