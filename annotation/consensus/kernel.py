"""The two per-vote passes of an EM iteration, laid out once and run on every core.

Every EM iteration of Dawid–Skene touches each vote twice:

* **E-step, gather-sum**: per voted item, the sum over its votes of a small per-(worker, label) table
  (``sum_per_item(table[pair])``) — for binary votes this is the item's log-odds evidence;
* **M-step, spread-sum**: per (worker, label), the sum over that worker's votes of a per-item value
  (``bincount(pair, repeat(value, counts))``) — the expected answer counts.

Both are memory-bound. What makes them fast (10M votes, one core: ~30 ms and ~45 ms):

* the layout is fixed for the whole fit: votes sorted by item, ``pair = worker * K + label`` as
  ``intp`` (numpy's ``take``/``bincount`` index type, so no hidden 80 MB conversion per call);
* the gather buffer is allocated once and reused through ``out=`` (a fresh 40-80 MB array per call
  costs about as much in page faults as the arithmetic);
* the gathered per-vote values are float32 (the table holds log-probabilities; float32 rounding,
  ~1e-7 relative, is far below anything that moves a posterior), halving the bytes moved; per-item
  sums run over a few dozen votes, then are widened to float64;
* votes are split into contiguous item ranges, one per core, run on threads (numpy releases the GIL
  in these loops); per-chunk ``bincount`` tables are ``W * K`` floats, summed afterwards. On the
  shared 2-core machine this gains little (10-20%): the passes are limited by memory traffic and the
  other core is usually busy, so the real savings are the layout and the fewer passes above.

Small inputs (below ``PARALLEL_MIN_VOTES``) run in one chunk on the calling thread.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .votes import FloatArray, VoteArrays

PARALLEL_MIN_VOTES = 400_000
"""Below this many votes, thread start-up and per-chunk tables cost more than a second core saves."""


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Chunk:
    items: slice  # range of voted-item positions
    votes: slice  # range of vote positions (contiguous, since votes are sorted by item)
    starts: NDArray[np.intp]  # run starts relative to the chunk's first vote
    counts: NDArray[np.intp]
    pair: NDArray[np.intp]
    gathered: NDArray[np.float32]  # per-vote buffer for the E-step


class VoteKernel:
    """Per-vote passes over one ``VoteArrays``; create once per fit, use for every iteration."""

    def __init__(self, votes: VoteArrays, n_threads: int | None = None) -> None:
        self.n_pairs = votes.n_workers * votes.n_classes
        self.n_voted = len(votes.voted_items)
        threads = available_cores() if n_threads is None else max(1, int(n_threads))
        if votes.n_votes < PARALLEL_MIN_VOTES or self.n_voted < 2 * threads:
            threads = 1
        pair = votes.pair.astype(np.intp, copy=False)
        # Split at item boundaries into chunks of about equal vote counts.
        targets = np.arange(1, threads) * (votes.n_votes / threads)
        cuts = np.searchsorted(votes.starts, targets) if threads > 1 else np.zeros(0, dtype=np.intp)
        bounds = np.unique(np.concatenate(([0], cuts, [self.n_voted]))).astype(np.intp)
        self.chunks: list[_Chunk] = []
        for a, b in itertools.pairwise(bounds):
            s = int(votes.starts[a]) if a < self.n_voted else votes.n_votes
            e = int(votes.starts[b]) if b < self.n_voted else votes.n_votes
            self.chunks.append(
                _Chunk(
                    items=slice(int(a), int(b)),
                    votes=slice(s, e),
                    starts=(votes.starts[a:b] - s).astype(np.intp),
                    counts=votes.counts[a:b].astype(np.intp, copy=False),
                    pair=pair[s:e],
                    gathered=np.empty(e - s, dtype=np.float32),
                )
            )
        self._pool = ThreadPoolExecutor(len(self.chunks)) if len(self.chunks) > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> VoteKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _map(self, fn, chunks):  # type: ignore[no-untyped-def]
        if self._pool is None:
            return [fn(c) for c in chunks]
        return list(self._pool.map(fn, chunks))

    def gather_sum(self, table: FloatArray, out: FloatArray | None = None) -> FloatArray:
        """``out[j] = sum of table[pair[v]]`` over the votes ``v`` of the j-th voted item (E-step)."""
        if out is None:
            out = np.empty(self.n_voted, dtype=np.float64)
        if self.n_voted == 0:
            return out
        table32 = np.ascontiguousarray(table, dtype=np.float32).ravel()

        def work(c: _Chunk) -> None:
            np.take(table32, c.pair, out=c.gathered)
            out[c.items] = np.add.reduceat(c.gathered, c.starts)

        self._map(work, self.chunks)
        return out

    def spread_sum(self, per_item: FloatArray) -> FloatArray:
        """``out[p] = sum of per_item[j]`` over the votes with ``pair == p`` (j = the vote's item; M-step)."""
        per_item = np.asarray(per_item, dtype=np.float64)

        def work(c: _Chunk) -> FloatArray:
            return np.bincount(c.pair, weights=np.repeat(per_item[c.items], c.counts), minlength=self.n_pairs)

        parts = self._map(work, self.chunks)
        if not parts:
            return np.zeros(self.n_pairs)
        total = parts[0]
        for part in parts[1:]:
            total += part
        return total
