"""Worker-aware consensus: Dawid & Skene (1979) EM with Dirichlet priors, gold anchoring and fixed workers.

Model (Dawid, A. P. & Skene, A. M., "Maximum likelihood estimation of observer error-rates using the
EM algorithm", Applied Statistics 28(1), 1979): each item ``i`` has a hidden true class ``z_i ~ pi``;
worker ``w`` answering it reports label ``l`` with probability ``C[w, z_i, l]`` (a per-worker KxK
confusion matrix whose rows sum to one), independently of other answers given ``z_i``.

What we add to the 1979 algorithm, and why:

* **Dirichlet priors** on each confusion row, so a worker with three answers is neither "perfect" nor
  "always wrong". The prior mean mixes a fixed diagonal-biased base with the *pooled* confusion of all
  workers against majority vote (computed once before EM — empirical-Bayes shrinkage toward the typical
  worker, with a target that cannot drift with EM's labels), and a
  Dirichlet prior on the class prior ``pi`` (per synset, since a fit runs per synset).
* **Variational Bayes (default)**: the E-step uses ``exp E[log C]`` under the Dirichlet posterior
  instead of a point estimate (Simpson et al. 2013 "Dynamic Bayesian combination of multiple imperfect
  classifiers" style). Workers with few answers automatically carry less weight, which is what beats
  plain DS on small real data sets. ``mode="map"`` gives classic point-estimate EM.
* **Gold anchoring**: items with known answers have their posterior clamped to the answer in every
  E-step, so they pin down which hidden class means "present" and calibrate the workers who saw them.
* **Fixed workers**: confusions of selected workers can be held fixed (incremental refits).

Vectorisation: the only Python loop is over EM iterations (and over the K-1 non-reference classes).
Per iteration, the E-step is a table gather plus ``np.add.reduceat`` over item-sorted votes, and the
M-step is one ``np.bincount`` into a ``(n_workers * K)`` table per class — O(votes) with small constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .kernel import VoteKernel
from .majority import majority_vote
from .votes import FloatArray, VoteArrays, prepare_votes

Mode = Literal["vb", "map"]


@dataclass(frozen=True)
class ConfusionPrior:
    """Dirichlet prior on each row ``C[w, k, :]`` of a worker's confusion matrix.

    Pseudo-counts for row ``k`` are ``strength * base[k] + pooled_strength * pooled[k]`` where
    ``base`` puts ``diagonal`` on the correct label and spreads the rest evenly, and ``pooled`` is the
    confusion of all workers together against majority vote's shares (gold clamped), computed once per fit
    (shrinkage toward the typical worker).
    ``class_prior`` is the symmetric Dirichlet pseudo-count on the class prior ``pi``.
    """

    strength: float = 2.0
    diagonal: float = 0.7
    pooled_strength: float = 0.0
    class_prior: float = 1.0

    def base(self, n_classes: int) -> FloatArray:
        off = (1.0 - self.diagonal) / (n_classes - 1)
        base = np.full((n_classes, n_classes), off)
        np.fill_diagonal(base, self.diagonal)
        return base


def default_prior(n_classes: int) -> ConfusionPrior:
    """The prior used when none is given: two pseudo-answers per free parameter of a confusion row.

    A row has ``K - 1`` free parameters. Binary rows (one) get the fixed diagonal-biased base's 2
    pseudo-answers and no pooled part; the ``2 (K - 2)`` more of a K-class row go to the *pooled* typical
    worker, because a worker's K x K confusion is far less determined by the same number of answers, and
    shrinking it toward the crowd's is what the data can support. Measured (MODEL.md): relevance (4 grades)
    0.613 → 0.623 (0.618 while the pooled target moved with EM's labels); simulated 3-6 class crowds, better
    than no pooled part in most settings.
    """
    return ConfusionPrior(pooled_strength=2.0 * max(n_classes - 2, 0))


PLAIN_PRIOR = ConfusionPrior(strength=0.01, diagonal=1.0 / 2, pooled_strength=0.0, class_prior=0.01)
"""Near-zero smoothing: classic maximum-likelihood Dawid–Skene (only guards against log(0))."""


@dataclass(frozen=True)
class DawidSkeneResult:
    """Fit of the Dawid–Skene model.

    ``posteriors[i, k] = P(z_i = k | votes)``; ``confusion[w, k, l] = P(worker w says l | true k)``
    (point estimate: Dirichlet posterior mean); ``class_prior[k] = P(z = k)``. ``prior_confusion`` is the
    prior-mean confusion, i.e. what the model assumes for a worker it has not seen yet.
    ``log_likelihood`` is ``log p(votes | point estimates)``; ``objective`` adds the log prior densities
    and is what EM restarts compare. ``worker_answers`` counts answers per worker.
    """

    posteriors: FloatArray
    confusion: FloatArray
    class_prior: FloatArray
    prior_confusion: FloatArray
    log_likelihood: float
    objective: float
    iterations: int
    converged: bool
    worker_answers: NDArray[np.int64]
    log_confusion: FloatArray = field(repr=False)
    log_class_prior: FloatArray = field(repr=False)

    @property
    def labels(self) -> NDArray[np.int64]:
        return np.argmax(self.posteriors, axis=1)

    def worker_accuracy(self) -> FloatArray:
        """Probability each worker answers correctly, under the fitted class prior."""
        diag = np.diagonal(self.confusion, axis1=1, axis2=2)
        return diag @ self.class_prior


def digamma(x: ArrayLike) -> FloatArray:
    """Digamma for positive reals (recurrence to x >= 6, then the asymptotic series; error < 1e-12)."""
    x = np.array(x, dtype=np.float64, copy=True)
    result = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        if not small.any():
            break
        result -= np.where(small, 1.0 / np.where(small, x, 1.0), 0.0)
        x = np.where(small, x + 1.0, x)
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return result + np.log(x) - 0.5 * inv - series


def _log_normalise(log_post: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Softmax over classes in log space for a class-major ``(K, n)`` array.

    Returns (posteriors ``(K, n)``, log normaliser per item). Class-major keeps every reduction an
    elementwise pass over contiguous rows; reducing a ``(n, K)`` array along its short axis is several
    times slower in numpy.
    """
    if log_post.shape[0] == 2:
        # Binary: one log-odds per item; logaddexp is the stable log(1 + e^x).
        odds = log_post[1] - log_post[0]
        norm = np.logaddexp(0.0, odds)
        p1 = np.exp(odds - norm)
        return np.stack((1.0 - p1, p1)), norm + log_post[0]
    top = log_post.max(axis=0)
    shifted = np.exp(log_post - top)
    total = shifted.sum(axis=0)
    return shifted / total, np.log(total) + top


def _posteriors(log_post: FloatArray) -> FloatArray:
    """Posteriors only (the EM loop does not need the normaliser); binary is one logistic per item."""
    if log_post.shape[0] != 2:
        return _log_normalise(log_post)[0]
    out = np.empty_like(log_post)
    # p1 = 1 / (1 + exp(-(l1 - l0))); exp overflow gives inf and p1 = 0, which is the right limit.
    with np.errstate(over="ignore"):
        np.subtract(log_post[0], log_post[1], out=out[1])
        np.exp(out[1], out=out[1])
        out[1] += 1.0
        np.reciprocal(out[1], out=out[1])
    np.subtract(1.0, out[1], out=out[0])
    return out


def _residual(before: FloatArray, after: FloatArray, k: int) -> float:
    """Euclidean length of an EM move (binary: the "present" row only)."""
    diff = after[1] - before[1] if k == 2 else after - before
    return float(np.sqrt(np.vdot(diff, diff)))


class _Fitter:
    """State of one EM run over prepared votes (kept in a class so restarts share the preparation)."""

    def __init__(
        self,
        votes: VoteArrays,
        prior: ConfusionPrior,
        mode: Mode,
        gold_items: NDArray[np.int64] | None,
        gold_labels: NDArray[np.int64] | None,
        fixed_confusion: FloatArray | None,
        fixed_workers: NDArray[np.bool_] | None,
        fixed_class_prior: FloatArray | None,
        want_likelihood: bool = True,
    ) -> None:
        self.want_likelihood = want_likelihood
        self.v = votes
        self.k = votes.n_classes
        self.prior = prior
        self.mode = mode
        self.base = prior.base(self.k)
        self.kernel = VoteKernel(votes)
        # Answers per (worker, label): the M-step gets the last class's counts by subtraction.
        self.pair_totals = np.bincount(votes.pair, minlength=votes.n_workers * self.k).astype(np.float64)
        self.worker_answers = self.pair_totals.reshape(votes.n_workers, self.k).sum(axis=1).astype(np.int64)
        self.fixed_confusion = fixed_confusion
        self.fixed_workers = fixed_workers
        self.fixed_class_prior = fixed_class_prior
        self.gold_pos = np.zeros(0, dtype=np.intp)
        self.gold_onehot = np.zeros((self.k, 0))
        self.gold_unvoted = np.zeros(self.k)
        if gold_items is not None and gold_labels is not None and len(gold_items):
            gi = np.asarray(gold_items, dtype=np.int64)
            gl = np.asarray(gold_labels, dtype=np.int64)
            pos = np.searchsorted(votes.voted_items, gi)
            pos_c = np.minimum(pos, max(len(votes.voted_items) - 1, 0))
            hit = (
                (pos < len(votes.voted_items)) & (votes.voted_items[pos_c] == gi)
                if len(votes.voted_items)
                else (np.zeros(len(gi), dtype=bool))
            )
            self.gold_pos = pos_c[hit].astype(np.intp)
            self.gold_onehot = np.eye(self.k)[gl[hit]].T.copy()
            # Gold items nobody voted on still tell us about the class prior.
            self.gold_unvoted = np.bincount(gl[~hit], minlength=self.k).astype(np.float64)

        # The pooled part of the prior: the crowd's confusion against majority vote's shares (gold clamped),
        # computed once. Re-estimated from EM's own posteriors every iteration (until 2026-12-07), the
        # shrinkage target and the labels drifted together: with five grades (web relevance) every worker
        # was pulled toward a crowd that "grades one higher", a class emptied (its share 0.6 %) and the fit
        # converged 534 items below majority vote after 529 iterations (1,982, still 78 below, at the
        # 100-iteration cap). Held fixed, it converges at 2,075 (MODEL.md, "K classes: the pooled target").
        self.pooled = self._pooled_target() if prior.pooled_strength > 0 else np.zeros((self.k, self.k))

    def _soft_counts(self, post: FloatArray) -> FloatArray:
        """Expected answers ``(n_workers, K true, K said)`` under class-major posteriors ``(K, n_voted)``."""
        n_w, k = self.v.n_workers, self.k
        counts = np.empty((n_w, k, k))
        remaining = self.pair_totals.copy()
        for c in range(k - 1):
            row = self.kernel.spread_sum(post[c])
            counts[:, c, :] = row.reshape(n_w, k)
            remaining -= row
        counts[:, k - 1, :] = np.maximum(remaining, 0.0).reshape(n_w, k)
        return counts

    def _pooled_target(self) -> FloatArray:
        shares = majority_vote(self.v.items, self.v.workers, self.v.labels, self.v.n_items, self.k).posteriors
        post = self.clamp(np.ascontiguousarray(shares[self.v.voted_items].T))
        pooled = self._soft_counts(post).sum(axis=0) + self.base
        return pooled / pooled.sum(axis=1, keepdims=True)

    def clamp(self, post: FloatArray) -> FloatArray:
        """Gold anchoring: overwrite gold items' posteriors (class-major ``(K, n_voted)``)."""
        if len(self.gold_pos):
            post[:, self.gold_pos] = self.gold_onehot
        return post

    def m_step(self, post: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Return (log C used by the E-step, point-estimate C, log pi, pi, prior pseudo-counts)."""
        n_w = self.v.n_workers
        counts = self._soft_counts(post)
        alpha = self.prior.strength * self.base + self.prior.pooled_strength * self.pooled
        post_alpha = counts + alpha
        row_total = post_alpha.sum(axis=2, keepdims=True)
        confusion = post_alpha / row_total
        if self.mode == "vb":
            log_conf = digamma(post_alpha) - digamma(row_total)
        else:
            log_conf = np.log(confusion)
        if self.fixed_confusion is not None:
            mask = self.fixed_workers if self.fixed_workers is not None else np.ones(n_w, dtype=bool)
            confusion[mask] = self.fixed_confusion[mask]
            log_conf[mask] = np.log(self.fixed_confusion[mask])

        if self.fixed_class_prior is not None:
            pi = np.asarray(self.fixed_class_prior, dtype=np.float64)
            log_pi = np.log(pi)
        else:
            class_counts = post.sum(axis=1) + self.gold_unvoted + self.prior.class_prior
            pi = class_counts / class_counts.sum()
            if self.mode == "vb":
                log_pi = digamma(class_counts) - digamma(class_counts.sum())
            else:
                log_pi = np.log(pi)
        return log_conf, confusion, log_pi, pi, alpha

    def item_log_odds(self, log_conf: FloatArray, log_pi: FloatArray) -> FloatArray:
        """Unnormalised log posterior ``(K, n_voted)`` relative to class 0 (K-1 passes over the votes)."""
        v, k = self.v, self.k
        out = np.zeros((k, len(v.voted_items)))
        for c in range(1, k):
            table = (log_conf[:, c, :] - log_conf[:, 0, :]).ravel()
            self.kernel.gather_sum(table, out=out[c])
        out += (log_pi - log_pi[0])[:, None]
        return out

    def e_step(self, log_conf: FloatArray, log_pi: FloatArray) -> FloatArray:
        return self.clamp(_posteriors(self.item_log_odds(log_conf, log_pi)))

    def log_likelihood(self, log_conf: FloatArray, log_pi: FloatArray) -> float:
        """``sum_i log sum_k pi_k prod_votes C[w, k, l]`` (K-1 passes over the votes)."""
        rel = self.item_log_odds(log_conf, log_pi)
        norm = np.logaddexp(0.0, rel[1]) if self.k == 2 else _log_normalise(rel)[1]
        # The reference-class term sum_i (log pi_0 + sum_votes log C[w, 0, l]) needs no pass over the
        # votes: it is the answer table times log C[:, 0, :].
        ref = float(self.pair_totals @ log_conf[:, 0, :].ravel()) + len(self.v.voted_items) * float(log_pi[0])
        return float(np.sum(norm)) + ref

    def map_labels(self, post: FloatArray) -> NDArray:
        # Binary: p1 > 0.5 is argmax (ties to class 0) at a tenth of the cost of argmax over axis 0.
        return post[1] > 0.5 if self.k == 2 else np.argmax(post, axis=0)

    def step(self, post: FloatArray) -> tuple[FloatArray, tuple[FloatArray, FloatArray, FloatArray]]:
        """One EM iteration (M-step, then E-step): new posteriors and the (C, pi, alpha) behind them."""
        log_conf, conf, log_pi, pi, alpha = self.m_step(post)
        return self.e_step(log_conf, log_pi), (conf, pi, alpha)

    def extrapolate(self, p0: FloatArray, p1: FloatArray, p2: FloatArray) -> FloatArray | None:
        """SQUAREM (Varadhan & Roland 2008, scheme S3) on the posteriors; None when there is no curvature.

        With ``r = p1 - p0`` and ``v = p2 - 2 p1 + p0``, step length ``a = -|r| / |v|`` (at most -1: never
        shorter than plain EM, for which ``a = -1`` gives ``p2``) and ``p0 - 2 a r + a^2 v``, clipped to
        valid probabilities. Binary posteriors are one row (the other is its complement).
        """
        rows = slice(1, 2) if self.k == 2 else slice(None)
        r = p1[rows] - p0[rows]
        v = p2[rows] - p1[rows] - r
        norm_v = float(np.sqrt(np.vdot(v, v)))
        if norm_v == 0.0:
            return None
        a = min(-float(np.sqrt(np.vdot(r, r))) / norm_v, -1.0)
        ext = np.empty_like(p0)
        top = p0[rows] - (2.0 * a) * r + (a * a) * v
        np.clip(top, 0.0, 1.0, out=top)
        if self.k == 2:
            ext[1] = top[0]
            np.subtract(1.0, ext[1], out=ext[0])
        else:
            top += 1e-12
            ext[:] = top / top.sum(axis=0, keepdims=True)
        return self.clamp(ext)

    def run(
        self, init: FloatArray, max_iter: int, tol: float, label_tol: float, accelerate: bool = True
    ) -> DawidSkeneResult:
        post = self.clamp(np.ascontiguousarray(np.asarray(init, dtype=np.float64).T))
        state = {"labels": self.map_labels(post), "stable": 0}
        change = np.empty_like(post)
        rows = change[1:] if self.k == 2 else change  # binary: both rows move by the same amount

        def settled(before: FloatArray, after: FloatArray) -> bool:
            """Record the move ``before -> after``; True when EM has converged.

            Converge on what we publish — the posteriors (parameters of workers with a handful of answers
            drift for dozens of iterations without changing any item's posterior): no posterior moved by
            ``tol``, or none by ``label_tol`` and no label changed in the last two moves (EM's tail is
            linear: the last 1e-3 -> 1e-4 costs as many passes as the first 0.9).
            """
            np.subtract(after[-len(rows) :], before[-len(rows) :], out=rows)
            np.abs(rows, out=rows)
            delta = float(rows.max(initial=0.0))
            labels = self.map_labels(after)
            state["stable"] = state["stable"] + 1 if np.array_equal(labels, state["labels"]) else 0
            state["labels"] = labels
            return delta < tol or (delta < label_tol and state["stable"] >= 2)

        iterations = 0
        converged = False
        params: tuple[FloatArray, FloatArray, FloatArray] | None = None
        while iterations < max_iter and not converged:
            p0 = post
            p1, params = self.step(p0)
            iterations += 1
            post = p1
            if settled(p0, p1):
                converged = True
                break
            if iterations >= max_iter:
                break
            p2, params = self.step(p1)
            iterations += 1
            post = p2
            if settled(p1, p2):
                converged = True
                break
            ext = self.extrapolate(p0, p1, p2) if accelerate and iterations < max_iter else None
            if ext is None:
                continue
            # SQUAREM: one EM step from the jump; kept only if its residual is below the plain step's
            # (no pass over the votes is spent on evaluating an objective).
            p3, jump_params = self.step(ext)
            iterations += 1
            if _residual(ext, p3, self.k) < _residual(p1, p2, self.k):
                post, params = p3, jump_params
                # The jump's own EM move is the fixed-point residual; labels compare with p2's.
                converged = settled(ext, p3)
        assert params is not None
        conf, pi, alpha = params
        if self.want_likelihood:
            # Report the likelihood of the point estimates, the quantity users can compare across fits.
            point_log_conf = np.log(conf)
            ll = self.log_likelihood(point_log_conf, np.log(pi))
            objective = ll + float(np.sum(alpha * point_log_conf)) + float(self.prior.class_prior * np.sum(np.log(pi)))
        else:
            ll = objective = float("nan")
        return self._result(post, conf, pi, alpha, ll, objective, iterations, converged, np.log(conf))

    def _result(
        self,
        post: FloatArray,
        conf: FloatArray,
        pi: FloatArray,
        alpha: FloatArray,
        ll: float,
        objective: float,
        iterations: int,
        converged: bool,
        log_conf: FloatArray,
    ) -> DawidSkeneResult:
        v = self.v
        full = np.broadcast_to(pi, (v.n_items, self.k)).copy()
        full[v.voted_items] = post.T
        prior_conf = alpha / alpha.sum(axis=1, keepdims=True)
        return DawidSkeneResult(
            posteriors=full,
            confusion=conf,
            class_prior=pi,
            prior_confusion=prior_conf,
            log_likelihood=ll,
            objective=objective,
            iterations=iterations,
            converged=converged,
            worker_answers=self.worker_answers,
            log_confusion=log_conf,
            log_class_prior=np.log(pi),
        )


def fit_dawid_skene(
    items: ArrayLike | VoteArrays,
    workers: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    n_items: int | None = None,
    n_workers: int | None = None,
    n_classes: int = 2,
    *,
    prior: ConfusionPrior | None = None,
    mode: Mode = "vb",
    init_posteriors: ArrayLike | None = None,
    gold_items: ArrayLike | None = None,
    gold_labels: ArrayLike | None = None,
    fixed_confusion: ArrayLike | None = None,
    fixed_workers: ArrayLike | None = None,
    fixed_class_prior: ArrayLike | None = None,
    max_iter: int = 100,
    tol: float = 1e-4,
    label_tol: float = 1e-3,
    accelerate: bool = True,
    likelihood: bool = True,
) -> DawidSkeneResult:
    """Fit Dawid & Skene (1979) by EM; see the module docstring for the priors and modes.

    Pass either the three coded arrays with sizes, or a ``VoteArrays`` from ``prepare_votes`` (reuse it
    across restarts to skip validation and sorting).

    * ``init_posteriors`` (``n_items x K``): starting soft labels. Default: from gold when gold items
      have votes (first M-step on gold alone), else majority-vote shares.
    * ``gold_items`` / ``gold_labels``: known answers; their posteriors are clamped in every iteration.
    * ``fixed_confusion`` (``n_workers x K x K``) with optional boolean ``fixed_workers``: hold those
      workers' confusions fixed (all workers when the mask is omitted); ``fixed_class_prior`` likewise.
    * Convergence: no item's posterior moved by ``tol`` or more in the last iteration, or no item's
      most likely class changed in the last two iterations and no posterior moved by ``label_tol``.
    * ``accelerate``: SQUAREM jumps on the posteriors (every two EM steps; see ``_Fitter.extrapolate``)
      — the same fixed point in fewer passes over the votes; ``iterations`` counts every EM step.
    * ``likelihood=False`` skips the extra pass over the votes that ``log_likelihood`` and
      ``objective`` cost (they are then NaN); the guarded refit does not use them.
    """
    votes = (
        items
        if isinstance(items, VoteArrays)
        else prepare_votes(
            items,
            workers,
            labels,
            int(n_items or 0),
            int(n_workers or 0),
            n_classes,  # type: ignore[arg-type]
        )
    )
    k = votes.n_classes
    fitter = _Fitter(
        votes,
        prior or default_prior(k),
        mode,
        None if gold_items is None else np.asarray(gold_items),
        None if gold_labels is None else np.asarray(gold_labels),
        None if fixed_confusion is None else np.asarray(fixed_confusion, dtype=np.float64),
        None if fixed_workers is None else np.asarray(fixed_workers, dtype=bool),
        None if fixed_class_prior is None else np.asarray(fixed_class_prior, dtype=np.float64),
        want_likelihood=likelihood,
    )
    if init_posteriors is None and len(fitter.gold_pos):
        # Initialise from gold: the first M-step sees only gold items (other rows weigh nothing), so
        # workers who answered gold start from what gold says about them, not from the majority.
        init = np.zeros((votes.n_items, k))
    elif init_posteriors is None:
        init = majority_vote(votes.items, votes.workers, votes.labels, votes.n_items, k).posteriors
    else:
        init = np.asarray(init_posteriors, dtype=np.float64)
    try:
        return fitter.run(
            init[votes.voted_items], max_iter=max_iter, tol=tol, label_tol=label_tol, accelerate=accelerate
        )
    finally:
        fitter.kernel.close()


def item_posteriors(
    items: ArrayLike,
    workers: ArrayLike,
    labels: ArrayLike,
    n_items: int,
    confusion: ArrayLike,
    class_prior: ArrayLike,
    *,
    worker_weights: ArrayLike | None = None,
) -> FloatArray:
    """Posterior over classes for ``n_items`` items from their votes, with worker parameters held fixed.

    This is the incremental update run after each HIT: ``P(z_i = k | votes) ∝ pi_k * prod C[w, k, l]``
    (Dawid & Skene 1979, E-step). Pass *all* votes on the affected items (not just the new ones), so the
    result is a pure function of the current votes: idempotent and order-independent. ``items`` are local
    indices ``0..n_items-1``; ``workers`` index rows of ``confusion`` (use a fit's ``prior_confusion``
    for workers the last refit did not see). ``worker_weights`` in [0, 1] temper a worker's evidence;
    0 ignores a blocked worker's votes.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    it = np.asarray(items, dtype=np.intp)
    wk = np.asarray(workers, dtype=np.intp)
    lb = np.asarray(labels, dtype=np.intp)
    pi = np.asarray(class_prior, dtype=np.float64)
    evidence = np.log(conf[wk, :, lb])  # (n_votes, K): log P(this answer | true class k)
    if worker_weights is not None:
        evidence *= np.asarray(worker_weights, dtype=np.float64)[wk][:, None]
    log_post = np.tile(np.log(pi), (n_items, 1))
    np.add.at(log_post, it, evidence)
    post, _ = _log_normalise(np.ascontiguousarray(log_post.T))
    return post.T
