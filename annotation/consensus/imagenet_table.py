"""ImageNet's dynamic-consensus confidence table P(good | #yes, #no) (Deng et al., CVPR 2009, sec. 3.2).

Deng et al. gave a random seed subset of each synset's candidates at least 10 votes, estimated from it
a table of the probability that an image is good given its yes/no counts, and kept voting on the other
images until that probability crossed a threshold. The paper does not spell out the estimator, so:

* The **model** behind the table is a two-component binomial mixture: an image is good with
  probability ``pi``; every vote on a good image is "yes" with probability ``a_good``, on a bad one
  with probability ``a_bad`` (all workers alike — the worker-blind assumption ImageNet made). It is
  fitted by EM on the seed items' counts with Beta priors, so it is defined and smooth for every cell,
  including counts never seen in the seed, and monotone (more yes → higher, more no → lower) whenever
  ``a_good > a_bad``.
* The **table** replays what ImageNet measured: for every cell (y, n) with y + n ≤ the seed's vote
  count, how often does a random subset of a seed item's votes with y yes and n no belong to a good item
  (hypergeometric subsampling; "good" is the item's posterior given *all* its votes). Each cell is
  shrunk toward the mixture model with ``smoothing`` pseudo-items and then made monotone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .votes import FloatArray


@dataclass(frozen=True)
class ConfidenceTable:
    """``table[y, n]`` = P(good | y yes, n no) for ``y + n <= max_total``; the mixture beyond it."""

    good_prior: float
    p_yes_good: float
    p_yes_bad: float
    table: FloatArray
    seed_items: int

    @property
    def max_total(self) -> int:
        return self.table.shape[0] - 1

    def model_posterior(self, yes: ArrayLike, no: ArrayLike) -> FloatArray:
        """The smooth mixture posterior for any counts."""
        y = np.asarray(yes, dtype=np.float64)
        n = np.asarray(no, dtype=np.float64)
        log_odds = (
            np.log(self.good_prior / (1 - self.good_prior))
            + y * np.log(self.p_yes_good / self.p_yes_bad)
            + n * np.log((1 - self.p_yes_good) / (1 - self.p_yes_bad))
        )
        return 1.0 / (1.0 + np.exp(-log_odds))

    def posterior(self, yes: ArrayLike, no: ArrayLike) -> FloatArray:
        """P(good | yes, no): the table inside its range, the mixture model outside it."""
        y = np.asarray(yes, dtype=np.int64)
        n = np.asarray(no, dtype=np.int64)
        inside = (y + n) <= self.max_total
        result = self.model_posterior(y, n)
        result = np.where(inside, self.table[np.minimum(y, self.max_total), np.minimum(n, self.max_total)], result)
        return result


def _fit_mixture(
    yes: NDArray[np.int64], no: NDArray[np.int64], prior_strength: float, max_iter: int = 200
) -> tuple[float, float, float, FloatArray]:
    """EM for the two-component binomial mixture; returns (pi, a_good, a_bad, P(good) per item)."""
    total = yes + no
    # Start from the majority: images most voters call good are good.
    post = np.where(total > 0, (yes + 0.5) / (total + 1.0), 0.5)
    pi, a_good, a_bad = 0.5, 0.8, 0.2
    for _ in range(max_iter):
        # Beta priors (prior_strength pseudo-votes, centred on 0.8 / 0.2 / 0.5) keep a tiny seed sane.
        pi_new = (post.sum() + prior_strength * 0.5) / (len(post) + prior_strength)
        a_good_new = (post @ yes + prior_strength * 0.8) / (post @ total + prior_strength)
        a_bad_new = ((1 - post) @ yes + prior_strength * 0.2) / ((1 - post) @ total + prior_strength)
        log_odds = (
            np.log(pi_new / (1 - pi_new))
            + yes * np.log(a_good_new / a_bad_new)
            + no * np.log((1 - a_good_new) / (1 - a_bad_new))
        )
        post = 1.0 / (1.0 + np.exp(-log_odds))
        change = max(abs(pi_new - pi), abs(a_good_new - a_good), abs(a_bad_new - a_bad))
        pi, a_good, a_bad = pi_new, a_good_new, a_bad_new
        if change < 1e-9:
            break
    return float(pi), float(a_good), float(a_bad), post


def fit_imagenet_table(
    yes: ArrayLike,
    no: ArrayLike,
    *,
    min_votes: int = 10,
    max_total: int | None = None,
    smoothing: float = 5.0,
    prior_strength: float = 2.0,
) -> ConfidenceTable:
    """Estimate the table from the seed items (those with at least ``min_votes`` votes).

    ``yes`` / ``no`` are per-item counts; items with fewer than ``min_votes`` votes are ignored (if
    none qualify, all items with votes are used). ``max_total`` defaults to ``min_votes``.
    """
    y_all = np.asarray(yes, dtype=np.int64)
    n_all = np.asarray(no, dtype=np.int64)
    seed = (y_all + n_all) >= min_votes
    if not seed.any():
        seed = (y_all + n_all) > 0
    y, n = y_all[seed], n_all[seed]
    pi, a_good, a_bad, good = _fit_mixture(y, n, prior_strength)
    if a_good < a_bad:  # the mixture's labels came out switched: "good" must be the yes-heavy component
        pi, a_good, a_bad, good = 1 - pi, a_bad, a_good, 1 - good
    m = int(max_total if max_total is not None else min_votes)

    # log C(a, b) from a log-factorial table; votes per seed item are small integers.
    top = int(max(int((y + n).max(initial=0)), 2 * m)) + 1
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, top + 1)))))

    def log_choose(a: NDArray[np.int64], b: NDArray[np.int64]) -> FloatArray:
        valid = (b >= 0) & (b <= a)
        bb = np.clip(b, 0, a)
        ab = a - bb
        return np.where(valid, log_fact[a] - log_fact[bb] - log_fact[ab], -np.inf)

    cy, cn = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")  # cell (yes, no)
    with np.errstate(invalid="ignore"):  # -inf - -inf outside a seed item's range; masked just below
        weight = np.exp(
            log_choose(y[:, None, None], cy[None])
            + log_choose(n[:, None, None], cn[None])
            - log_choose((y + n)[:, None, None], (cy + cn)[None])
        )  # P(a random subset of this item's votes of size cy+cn has exactly cy yes)
    weight = np.where((cy + cn)[None] <= (y + n)[:, None, None], weight, 0.0)
    good_mass = np.tensordot(good, weight, axes=1)
    all_mass = weight.sum(axis=0)

    table_tmp = ConfidenceTable(pi, a_good, a_bad, np.zeros((1, 1)), int(seed.sum()))
    model = table_tmp.model_posterior(cy, cn)
    table = (good_mass + smoothing * model) / (all_mass + smoothing)
    # Monotone: one more yes never lowers the probability, one more no never raises it.
    table = np.maximum.accumulate(table, axis=0)
    table = np.minimum.accumulate(table, axis=1)
    table = np.where(cy + cn <= m, table, np.nan)
    return ConfidenceTable(pi, a_good, a_bad, table, int(seed.sum()))
