"""Errors that many workers make on the same image: kinds of item within a class, marginalised.

Dawid–Skene gives each worker one confusion per class, the same for every image of that class, so the
votes on one image are independent given its class. On images they are not: a near-round ellipse asked
as "circle", a goose asked as "duck" fool most workers at once (Welinder et al.'s duck data: workers say
"duck" to 1.5% of non-birds, 49% of Canada geese, 61% of grebes). Four workers who call such a look-alike
present are credited with four times the evidence a "yes" carries on a typical negative, and it passes
the acceptance bar too soon (MODEL.md, "Look-alikes").

Binary votes. Within a group (a synset) and class ``k`` an item is of one of a few *kinds*, each a shift
``u`` of every worker's log-odds of a wrong answer: ``logit P(wrong | w, k, kind) = logit(err[w, k]) + u``,
with ``u`` on the grid ``SHIFTS`` (negative: easier than the refit's average item, positive: a look-alike).
The share of each kind per group and class is fitted by EM with the worker confusions held at the refit's
values (a nonparametric mixing distribution on a grid), shrunk toward the campaign's pooled shares with
``PRIOR_ITEMS`` pseudo-items, so a synset with few votes gets the campaign's typical mix. Gold items enter
with their class known. The posterior of an item marginalises its kind: with all mass on ``u = 0`` it is
plain Dawid–Skene.

Shares are identified by how votes on the same image agree beyond what the workers' confusions predict:
a group whose negatives draw either almost no "yes" or several is a mix of easy items and look-alikes.
Adaptive stopping does not bias the likelihood (when to stop depended only on votes already seen).
Everything is vectorised over votes and items; the loops are over the ``len(SHIFTS)`` kinds and EM steps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

SHIFTS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
# Pseudo-items pulling each group's shares toward the campaign's pooled shares, and the pooled shares' toward
# "like the refit's average item" (u = 0).
PRIOR_ITEMS = 20.0
POOLED_PRIOR_ITEMS = 5.0
MAX_ITER = 200
TOL = 1e-4
# Fewer items with two votes or more than this in all, and every group keeps plain Dawid–Skene: a young
# campaign's first refits see a few dozen such items, too few to tell kinds apart (a handful of unanimous
# images would read as "every image is easy", and make single votes count for more).
MIN_ITEMS = 100
# The shares are fitted on a seeded sample of at most MAX_ITEMS_PER_GROUP voted items per group and MAX_ITEMS in
# all (a campaign of 1,000 synsets: 100 each, the pooled shares carrying the rest): the accelerated EM settles
# in a few dozen steps, twice (pooled, then per synset); benchmarks/consensus_refit.py times it.
MAX_ITEMS_PER_GROUP = 2_000
MAX_ITEMS = 100_000
# An error rate never leaves [MIN_ERROR, 1 - MIN_ERROR] after a shift, so that no vote is certain.
MIN_ERROR = 1e-4


def kind_log_likelihood(
    items: ArrayLike,
    workers: ArrayLike,
    labels: ArrayLike,
    n_items: int,
    confusion: ArrayLike,
    *,
    shifts: tuple[float, ...] = SHIFTS,
    worker_weights: ArrayLike | None = None,
) -> FloatArray:
    """``log P(votes on item i | class k, kind m)``: shape ``(n_items, 2, len(shifts))``.

    ``confusion[w, k, l]`` as in Dawid–Skene; ``worker_weights`` in [0, 1] temper a worker's evidence
    (0 drops a blocked worker), as in ``item_posteriors``.
    """
    conf = np.clip(np.asarray(confusion, dtype=np.float64), MIN_ERROR, 1 - MIN_ERROR)
    it = np.asarray(items, dtype=np.intp)
    wk = np.asarray(workers, dtype=np.intp)
    lb = np.asarray(labels, dtype=np.intp)
    u = np.asarray(shifts, dtype=np.float64)
    weight = None if worker_weights is None else np.asarray(worker_weights, dtype=np.float64)[wk]
    if len(wk) < len(conf):  # a few votes (one HIT's candidates): tabulate only the workers who cast them
        used, wk = np.unique(wk, return_inverse=True)
        conf = conf[used]
    # table[w, l, k, m] = log P(answer l | worker w, class k, kind m); a vote's row is table[w, l].
    err = np.stack([conf[:, 0, 1], conf[:, 1, 0]], axis=1)  # (workers, class): P(wrong answer)
    bound = np.log(1 / MIN_ERROR - 1)
    logit = np.clip((np.log(err) - np.log1p(-err))[:, :, None] + u[None, None, :], -bound, bound)
    log_wrong, log_right = -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit)
    table = np.empty((len(conf), 2, 2, len(u)))
    for k in (0, 1):
        table[:, k, k] = log_right[:, k]  # answer l == class k
        table[:, 1 - k, k] = log_wrong[:, k]
    row = wk * 2 + lb
    flat = table.reshape(len(conf) * 2, 2, len(u))
    out = np.zeros((n_items, 2, len(u)))
    for k in (0, 1):
        for m in range(len(u)):
            per_vote = flat[row, k, m]
            if weight is not None:
                per_vote = per_vote * weight
            out[:, k, m] = np.bincount(it, weights=per_vote, minlength=n_items)
    return out


def item_log_evidence(kind_loglik: FloatArray, shares: ArrayLike) -> FloatArray:
    """``log P(votes on item i | class k)`` with the kind marginalised: ``(n_items, 2)``.

    ``shares`` is ``(n_items, 2, M)`` (each item's group's shares) or ``(2, M)`` for all items."""
    log_shares = np.log(np.clip(np.asarray(shares, dtype=np.float64), 1e-300, 1.0))
    return np.logaddexp.reduce(kind_loglik + log_shares, axis=-1)


def posteriors(kind_loglik: FloatArray, shares: ArrayLike, class_prior: ArrayLike) -> FloatArray:
    """Posterior over classes ``(n_items, 2)`` from ``kind_log_likelihood`` and the items' shares."""
    log_post = item_log_evidence(kind_loglik, shares) + np.log(np.asarray(class_prior, dtype=np.float64))
    odds = log_post[:, 1] - log_post[:, 0]
    p1 = np.exp(odds - np.logaddexp(0.0, odds))
    return np.stack((1.0 - p1, p1), axis=1)


def look_alike_share(shifts: list[float] | tuple[float, ...], absent_shares: list[float]) -> float:
    """Share of a group's negatives on kinds that fool workers more than the refit's average negative (u > 0)."""
    return float(sum(share for u, share in zip(shifts, absent_shares, strict=True) if u > 0))


def neutral_shares(n_groups: int, shifts: tuple[float, ...] = SHIFTS) -> FloatArray:
    """Every item like the refit's average one (all mass on ``u = 0``): plain Dawid–Skene."""
    shares = np.zeros((n_groups, 2, len(shifts)))
    shares[:, :, list(shifts).index(0.0)] = 1.0
    return shares


def _sample(voted: NDArray, group_of: NDArray, n_groups: int, max_items: int | None, seed: int) -> NDArray:
    if max_items is None or not len(voted):
        return voted
    cap = max(1, min(MAX_ITEMS_PER_GROUP, max_items // max(n_groups, 1)))
    voted = np.random.default_rng(seed).permutation(voted)
    voted = voted[np.argsort(group_of[voted], kind="stable")]
    starts = np.searchsorted(group_of[voted], group_of[voted], side="left")
    return np.sort(voted[np.arange(len(voted)) - starts < cap])


def _em_shares(base: FloatArray, group_v: NDArray, n_groups: int, prior: FloatArray, max_iter: int, tol: float):
    """MAP shares ``(n_groups, 2, M)`` under Dirichlet pseudo-counts ``prior`` ``(n_groups, 2, M)``, by EM
    accelerated with SQUAREM. ``base[i]`` is item i's ``log pi_k + log P(votes | k, kind)``, flattened."""
    m = base.shape[1] // 2
    cells = (group_v[:, None] * (2 * m) + np.arange(2 * m)[None, :]).ravel()

    # Probabilities relative to each item's best (class, kind): no exp or log of the whole table per step.
    top = base.max(axis=1)
    relative = np.exp(base - top[:, None])
    log_offset = float(top.sum())

    def step(shares: FloatArray) -> tuple[FloatArray, float]:
        """One EM step; also the objective (log likelihood + log prior) at ``shares``."""
        joint = relative * shares.reshape(n_groups, 2 * m)[group_v]
        total = joint.sum(axis=1)
        joint /= total[:, None]
        log_shares = np.log(np.clip(shares, 1e-300, 1.0))
        objective = float(np.log(total).sum() + log_offset + (prior * log_shares).sum())
        counts = np.bincount(cells, weights=joint.ravel(), minlength=n_groups * 2 * m).reshape(n_groups, 2, m)
        new = counts + prior
        return new / new.sum(axis=2, keepdims=True), objective

    # Start from half on the prior's mean, half spread evenly: EM cannot move mass onto a kind that has none.
    shares = 0.5 * prior / prior.sum(axis=2, keepdims=True) + 0.5 / m
    steps = 0
    while steps < max_iter:
        p1, objective = step(shares)
        p2, _ = step(p1)
        steps += 2
        r, v = p1 - shares, p2 - 2 * p1 + shares
        norm_v = float(np.sqrt((v * v).sum()))
        candidate = p2
        if norm_v > 0:
            alpha = min(-1.0, -float(np.sqrt((r * r).sum())) / norm_v)
            jump = np.clip(shares - 2 * alpha * r + alpha**2 * v, 1e-12, None)
            jump /= jump.sum(axis=2, keepdims=True)
            after_jump, jump_objective = step(jump)
            steps += 1
            if jump_objective >= objective:  # no worse than where this cycle started
                candidate = after_jump
        moved = float(np.abs(candidate - shares).max())
        shares = candidate
        if moved < tol:
            break
    return shares


def fit_item_kinds(
    kind_loglik: FloatArray,
    n_votes: ArrayLike,
    class_prior: ArrayLike,
    groups: ArrayLike,
    n_groups: int,
    *,
    gold_items: ArrayLike | None = None,
    gold_labels: ArrayLike | None = None,
    shifts: tuple[float, ...] = SHIFTS,
    prior_items: float = PRIOR_ITEMS,
    pooled_prior_items: float = POOLED_PRIOR_ITEMS,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
    max_items: int | None = MAX_ITEMS,
    min_items: int = MIN_ITEMS,
    seed: int = 0,
) -> FloatArray:
    """Shares of each kind per group and class, ``(n_groups, 2, M)``, by EM with worker confusions fixed.

    ``kind_loglik`` from ``kind_log_likelihood``, ``n_votes[i]`` item ``i``'s number of votes, ``groups[i]``
    its group. Gold items' classes are clamped. Two stages: the campaign's pooled shares (all groups as one,
    ``pooled_prior_items`` pseudo-items on ``u = 0``), then each group's shares under a Dirichlet of
    ``prior_items`` pseudo-items on the pooled shares (MAP). Items with fewer than two votes say nothing of
    kinds and are left out; with fewer than ``min_items`` of the others every group gets ``neutral_shares``.
    At most MAX_ITEMS_PER_GROUP items per group are used, fewer when ``max_items`` would be passed (a sample
    seeded by ``seed``; ``max_items=None`` uses every item).

    EM on mixing weights crawls (hundreds of steps when kinds overlap, and a fit stopped early leaves a
    spurious tail of look-alike mass that makes clean synsets cautious), so steps are accelerated with
    SQUAREM (Varadhan & Roland 2008), kept only when they do not lower the objective below the cycle's start.
    """
    group_of = np.asarray(groups, dtype=np.intp)
    n_items, _, m = kind_loglik.shape
    neutral = neutral_shares(1, shifts)
    log_pi = np.log(np.clip(np.asarray(class_prior, dtype=np.float64), 1e-12, 1.0))
    voted = np.flatnonzero(np.asarray(n_votes) >= 2)
    if len(voted) < min_items:
        return neutral_shares(n_groups, shifts)
    voted = _sample(voted, group_of, n_groups, max_items, seed)
    base = (kind_loglik[voted] + log_pi[None, :, None]).reshape(len(voted), 2 * m)
    if gold_items is not None and len(np.asarray(gold_items)):
        clamp = np.zeros((n_items, 2), dtype=bool)
        clamp[np.asarray(gold_items, dtype=np.intp), 1 - np.asarray(gold_labels, dtype=np.intp)] = True
        base[np.repeat(clamp[voted], m, axis=1)] = -np.inf
    pooled = _em_shares(base, np.zeros(len(voted), dtype=np.intp), 1, pooled_prior_items * neutral, max_iter, tol)
    prior = np.broadcast_to(prior_items * pooled, (n_groups, 2, m))
    return _em_shares(base, group_of[voted], n_groups, prior, max_iter, tol)


def fit_and_marginalise(
    items: ArrayLike,
    workers: ArrayLike,
    labels: ArrayLike,
    n_items: int,
    confusion: ArrayLike,
    class_prior: ArrayLike,
    groups: ArrayLike,
    n_groups: int,
    *,
    gold_items: ArrayLike | None = None,
    gold_labels: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """What a campaign's refit does after Dawid–Skene, and ``consensus_eval --method kinds`` with it: each group's
    shares of kinds fitted with these worker confusions, and every item's posterior with its kind marginalised.
    Returns ``(shares (n_groups, 2, M), posteriors (n_items, 2))``."""
    loglik = kind_log_likelihood(items, workers, labels, n_items, confusion)
    n_votes = np.bincount(np.asarray(items, dtype=np.intp), minlength=n_items)
    shares = fit_item_kinds(
        loglik, n_votes, class_prior, groups, n_groups, gold_items=gold_items, gold_labels=gold_labels,
        min_items=MIN_ITEMS,
    )  # fmt: skip
    return shares, posteriors(loglik, shares[np.asarray(groups, dtype=np.intp)], class_prior)
