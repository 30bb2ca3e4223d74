"""Item difficulty: binary Dawid–Skene with a per-item term, used only when held-out votes ask for it.

Dawid–Skene assumes that, given its true class, every item looks the same to a worker. On image data
that is false in a known way: a Blue Grosbeak that looks like an Indigo Bunting fools most workers at
once, and EM then blames the few who got it right. Zhou et al. (2012, "Learning from the wisdom of
crowds by minimax entropy") model that with a worker term plus an item term in the probability of
each answer; the binary case, written as a logistic model, is

    logit P(worker w says "yes" | item i, true class k) = b[w, k] + a[i, k]

* ``b[w, k]``: worker ``w``'s tendency to say yes when the true class is ``k`` (two-coin DS on the
  logit scale), with a Gaussian prior of precision ``worker_precision`` around the answer-weighted
  mean of all workers (shrinkage: few answers, typical worker);
* ``a[i, k]``: how much item ``i`` pulls everyone toward "yes" if its class is ``k`` (a hard negative
  has ``a[i, 0] > 0``), Gaussian prior of precision ``item_precision`` around 0.

Fitted by EM: the E-step is the usual posterior over the true class; the M-step is one diagonal
Newton step per block (workers, then items) on the posterior-weighted logistic likelihood plus the
priors — vectorised with ``np.bincount``/``np.add.reduceat``, no Python loop over votes.

The extra ``2 * n_items`` parameters only pay when items have many votes. ``prefer_difficulty``
decides by *held-out votes*: a ``folds``-fold split of the votes, both models fitted on the rest, each
held-out vote scored by its predictive probability, and the per-item sums of the log-score
differences tested. The item terms are used only when they predict unseen votes better both
significantly (one-sided ``z >= 2`` over items) and materially (at least 0.01 nats per held-out vote,
i.e. about 1% more probability on each answer); otherwise the simpler DS stays. On the shared crowd
data: ``bluebirds`` (39 answers per image) gains 0.018-0.022 nats/vote over fold seeds and is the only
one to pass; ``rte`` and ``temp`` (10 answers per item) gain 0.004-0.007 with z 2.1-3.3 — significant
but small, and there the item terms cost accuracy (-3 and -1 items), which is why a z-test alone
is not enough; ``possent`` loses; ``product`` (3 answers per item) is not tried. On Welinder et al.'s
real duck data (40 answers per image, geese and grebes called ducks; MODEL.md) the gain is 0.051 with
z 5.6: the item terms are chosen and score 191/240 where DS scores 144 and majority vote 166.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .dawid_skene import ConfusionPrior, DawidSkeneResult, fit_dawid_skene
from .votes import FloatArray, VoteArrays, prepare_votes


@dataclass(frozen=True)
class DifficultyConfig:
    worker_precision: float = 0.5
    item_precision: float = 4.0
    class_prior: float = 1.0
    folds: int = 5
    min_z: float = 2.0
    min_gain: float = 0.01
    """Both must hold: the gain is significant (one-sided z) *and* worth having (nats per held-out vote)."""
    min_votes_per_item: float = 4.0
    """Below this mean, item terms cannot be estimated: skip the selection (saves ``2 * folds`` fits)."""
    max_votes: int = 50_000
    """Above this many votes the selection is skipped: its ``2 * folds`` fits (the item model takes 20-200
    EM iterations) would cost seconds to minutes and dominate a refit; large refits stay on DS."""
    seed: int = 0


def _log_sigmoid(z: FloatArray) -> FloatArray:
    return -np.logaddexp(0.0, -z)


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.exp(_log_sigmoid(z))


def _answer_log_prob(z: FloatArray, y: FloatArray) -> FloatArray:
    """``log P(answer y | logit z)`` for 0/1 answers."""
    return _log_sigmoid(np.where(y > 0, z, -z))


def fit_item_difficulty(
    votes: VoteArrays,
    *,
    config: DifficultyConfig | None = None,
    gold_items: NDArray[np.int64] | None = None,
    gold_labels: NDArray[np.int64] | None = None,
    init_posteriors: FloatArray | None = None,
    max_iter: int = 200,
    tol: float = 1e-5,
) -> tuple[DawidSkeneResult, FloatArray]:
    """Fit the item-difficulty model on binary votes; return (result, item terms ``a`` of shape ``(n_items, 2)``).

    The ``DawidSkeneResult`` carries what the rest of the engine uses: ``posteriors`` (item terms
    included), ``confusion[w]`` = the worker's answer probabilities for an item of average difficulty
    (``a = 0``), which is what incremental updates on new items assume, ``class_prior`` and, as
    ``prior_confusion``, the typical worker. Gold items are clamped in every E-step.
    """
    if votes.n_classes != 2:
        raise ValueError("the item-difficulty model is defined for binary votes only")
    cfg = config or DifficultyConfig()
    n, n_w = votes.n_items, votes.n_workers
    voted, starts, counts = votes.voted_items.astype(np.intp), votes.starts, votes.counts
    wk = votes.workers.astype(np.intp)
    y = votes.labels.astype(np.float64)
    answers = np.bincount(wk, minlength=n_w).astype(np.float64)
    total_answers = max(float(answers.sum()), 1.0)

    def per_item(per_vote: FloatArray) -> FloatArray:  # votes are item-sorted: run sums
        return np.add.reduceat(per_vote, starts) if len(starts) else np.zeros(0)

    def spread(per_voted_item: FloatArray) -> FloatArray:
        return np.repeat(per_voted_item, counts)

    if init_posteriors is None:
        share = per_item(y) / np.maximum(counts, 1)
        post = np.stack((1.0 - share, share))  # class-major (2, n_voted)
    else:
        post = np.ascontiguousarray(np.asarray(init_posteriors, dtype=np.float64)[voted].T)
    gi = np.zeros(0, dtype=np.intp) if gold_items is None else np.asarray(gold_items, dtype=np.intp)
    gl = np.zeros(0, dtype=np.intp) if gold_labels is None else np.asarray(gold_labels, dtype=np.intp)
    gpos = np.searchsorted(voted, gi)
    keep = (gpos < len(voted)) & (voted[np.minimum(gpos, max(len(voted) - 1, 0))] == gi) if len(voted) else gpos < 0
    gpos, gold_onehot = gpos[keep], np.eye(2)[gl[keep]].T
    post[:, gpos] = gold_onehot
    b = np.array([np.full(n_w, -1.0), np.full(n_w, 1.0)])  # start: yes for positives, no for negatives
    a = np.zeros((2, len(voted)))
    log_pi = np.log(np.full(2, 0.5))
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        for k in range(2):
            weight = spread(post[k])
            item_term = spread(a[k])
            mu = float(answers @ b[k]) / total_answers
            p = _sigmoid(np.take(b[k], wk) + item_term)
            grad = np.bincount(wk, weights=weight * (y - p), minlength=n_w) - cfg.worker_precision * (b[k] - mu)
            hess = np.bincount(wk, weights=weight * p * (1.0 - p), minlength=n_w) + cfg.worker_precision
            b[k] += grad / hess
            p = _sigmoid(np.take(b[k], wk) + item_term)
            a[k] += (per_item(weight * (y - p)) - cfg.item_precision * a[k]) / (
                per_item(weight * p * (1.0 - p)) + cfg.item_precision
            )
        class_counts = post.sum(axis=1) + cfg.class_prior
        log_pi = np.log(class_counts / class_counts.sum())
        log_post = np.empty_like(post)
        for k in range(2):
            log_post[k] = per_item(_answer_log_prob(np.take(b[k], wk) + spread(a[k]), y)) + log_pi[k]
        odds = log_post[1] - log_post[0]
        new = np.empty_like(post)
        new[1] = np.exp(-np.logaddexp(0.0, -odds))
        new[0] = 1.0 - new[1]
        new[:, gpos] = gold_onehot
        delta = float(np.abs(new[1] - post[1]).max(initial=0.0))
        post = new
        if delta < tol:
            converged = True
            break
    full_post = np.tile(np.exp(log_pi), (n, 1))
    full_post[voted] = post.T
    full_a = np.zeros((n, 2))
    full_a[voted] = a.T
    return _as_result(full_post, b.T.copy(), answers, log_pi, iterations, converged), full_a


def _as_result(
    post: FloatArray, b: FloatArray, answers: FloatArray, log_pi: FloatArray, iterations: int, converged: bool
) -> DawidSkeneResult:
    p_yes = _sigmoid(b)  # (W, 2): P(yes | class k) for an item of average difficulty
    conf = np.stack((1.0 - p_yes, p_yes), axis=2)  # conf[w, k, l]
    conf = np.clip(conf, 1e-9, 1.0)
    mu = answers @ b / max(answers.sum(), 1.0)
    typical = _sigmoid(mu)
    prior_conf = np.stack((1.0 - typical, typical), axis=1)
    pi = np.exp(log_pi)
    return DawidSkeneResult(
        posteriors=post,
        confusion=conf,
        class_prior=pi,
        prior_confusion=prior_conf,
        log_likelihood=float("nan"),
        objective=float("nan"),
        iterations=iterations,
        converged=converged,
        worker_answers=answers.astype(np.int64),
        log_confusion=np.log(conf),
        log_class_prior=log_pi,
    )


def _held_out_scores(
    votes: VoteArrays, prior: ConfusionPrior | None, cfg: DifficultyConfig
) -> tuple[FloatArray, FloatArray]:
    """Log predictive probability of every vote when it was held out: (plain DS, item difficulty)."""
    fold = np.random.default_rng(cfg.seed).integers(0, cfg.folds, votes.n_votes)
    plain = np.zeros(votes.n_votes)
    hard = np.zeros(votes.n_votes)
    for f in range(cfg.folds):
        train, test = fold != f, fold == f
        part = prepare_votes(
            votes.items[train], votes.workers[train], votes.labels[train], votes.n_items, votes.n_workers, 2
        )
        it, wk, lb = votes.items[test], votes.workers[test], votes.labels[test]
        ds = fit_dawid_skene(part, prior=prior)
        # P(answer) = sum_k P(z = k | training votes) * C[w, k, answer]
        plain[test] = np.log(np.einsum("nk,nk->n", ds.posteriors[it], ds.confusion[wk, :, lb]))
        fit, a = fit_item_difficulty(part, config=cfg, tol=1e-4)
        b = np.log(fit.confusion[:, :, 1]) - np.log(fit.confusion[:, :, 0])
        p_answer = np.exp(_answer_log_prob(b[wk] + a[it], lb[:, None].astype(np.float64)))
        hard[test] = np.log(np.einsum("nk,nk->n", fit.posteriors[it], p_answer))
    return plain, hard


def prefer_difficulty(
    votes: VoteArrays, prior: ConfusionPrior | None = None, config: DifficultyConfig | None = None
) -> tuple[bool, dict[str, float]]:
    """Whether the item terms predict held-out votes clearly better than plain DS (see the module doc).

    Returns (decision, figures): ``difficulty_z`` (the z of the per-item log-score gain) and
    ``difficulty_gain`` (mean gain per vote, nats). Skipped (False, no figures) for non-binary votes, for
    fewer than ``min_votes_per_item`` answers per voted item on average, or above ``max_votes``.
    """
    cfg = config or DifficultyConfig()
    n_voted = len(votes.voted_items)
    if (
        votes.n_classes != 2
        or n_voted < 2
        or votes.n_votes > cfg.max_votes
        or votes.n_votes < cfg.min_votes_per_item * n_voted
    ):
        return False, {}
    plain, hard = _held_out_scores(votes, prior, cfg)
    gain = np.add.reduceat(hard - plain, votes.starts)  # per voted item (votes are item-sorted)
    spread = float(gain.std())
    z = float(gain.mean() / spread * np.sqrt(gain.size)) if spread > 0 else 0.0
    figures = {"difficulty_z": z, "difficulty_gain": float(np.mean(hard - plain))}
    return z >= cfg.min_z and figures["difficulty_gain"] >= cfg.min_gain, figures
