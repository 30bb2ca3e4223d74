"""When to stop asking about a candidate, and which candidate the next vote should go to.

Stopping rule (Deng et al., CVPR 2009: keep voting until the confidence crosses a threshold): with
``p = P(present | votes)`` a candidate is

* ``ACCEPTED`` when it has at least ``min_votes`` votes and ``p >= threshold``;
* ``REJECTED`` when it has at least ``min_votes`` votes and ``1 - p >= threshold``;
* ``UNRESOLVED`` when neither holds and it has ``max_votes`` votes (stop spending on it);
* ``VOTING`` otherwise.

Priority (expected value of one more vote). For a candidate still ``VOTING``, imagine one more answer
from a *typical* worker (the pooled/prior confusion ``C``; the answer is "yes" with probability
``q = p * C[1, 1] + (1 - p) * C[0, 1]``) and compute

    value = P(that vote settles it)  +  I(vote; class) / log(2)

The first term is the probability that the updated posterior crosses a threshold (with ``min_votes``
met), so nearly-finished candidates are finished first — each such vote frees a slot in the queue. The
second is the expected information gain of the vote in bits (the mutual information between the answer
and the hidden class, at most 1 bit for binary), which orders candidates that no single vote can settle:
the most uncertain ones first. Candidates below ``min_votes`` get a bonus of 1 per missing vote so that
every candidate reaches the minimum before others get extra votes. Non-``VOTING`` candidates get 0.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .votes import FloatArray


class ItemState(IntEnum):
    VOTING = 0
    ACCEPTED = 1
    REJECTED = 2
    UNRESOLVED = 3


def item_states(
    p_present: ArrayLike,
    n_votes: ArrayLike,
    *,
    threshold: float = 0.99,
    min_votes: int = 2,
    max_votes: int = 10,
) -> NDArray[np.int8]:
    """Apply the stopping rule above; returns ``ItemState`` codes as int8 (vectorised)."""
    if not 0.5 < threshold < 1.0:
        raise ValueError("threshold must lie in (0.5, 1)")
    p = np.asarray(p_present, dtype=np.float64)
    n = np.asarray(n_votes, dtype=np.int64)
    enough = n >= min_votes
    state = np.full(p.shape, ItemState.VOTING, dtype=np.int8)
    state[(n >= max_votes)] = ItemState.UNRESOLVED
    state[enough & (p >= threshold)] = ItemState.ACCEPTED
    state[enough & (1.0 - p >= threshold)] = ItemState.REJECTED
    return state


def _entropy_bits(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-300, 1.0)
    r = np.clip(1.0 - p, 1e-300, 1.0)
    return -(p * np.log2(q) + (1.0 - p) * np.log2(r))


def vote_value(
    p_present: ArrayLike,
    n_votes: ArrayLike,
    typical_confusion: ArrayLike,
    *,
    threshold: float = 0.99,
    min_votes: int = 2,
    max_votes: int = 10,
) -> FloatArray:
    """Expected value of one more vote per candidate (higher = schedule first); see the module docstring.

    ``typical_confusion`` is a 2x2 row-stochastic matrix ``C[true, answer]`` (0 = absent, 1 = present),
    e.g. ``DawidSkeneResult.prior_confusion`` or the answer-weighted mean of the worker confusions.
    """
    p = np.clip(np.asarray(p_present, dtype=np.float64), 1e-12, 1 - 1e-12)
    n = np.asarray(n_votes, dtype=np.int64)
    c = np.asarray(typical_confusion, dtype=np.float64)
    q_yes = p * c[1, 1] + (1.0 - p) * c[0, 1]
    p_after_yes = p * c[1, 1] / q_yes
    p_after_no = p * c[1, 0] / (1.0 - q_yes)

    after_enough = (n + 1) >= min_votes
    settles_yes = after_enough & ((p_after_yes >= threshold) | (1 - p_after_yes >= threshold))
    settles_no = after_enough & ((p_after_no >= threshold) | (1 - p_after_no >= threshold))
    settle = q_yes * settles_yes + (1.0 - q_yes) * settles_no

    info = _entropy_bits(p) - (q_yes * _entropy_bits(p_after_yes) + (1.0 - q_yes) * _entropy_bits(p_after_no))
    value = settle + np.maximum(info, 0.0) + np.maximum(min_votes - n, 0)
    voting = item_states(p, n, threshold=threshold, min_votes=min_votes, max_votes=max_votes) == ItemState.VOTING
    return np.where(voting, value, 0.0)
