"""Spam screening: block a worker as soon as their answers show they are not looking, HIT by HIT.

The periodic refit judges workers by the worker-aware model after MIN_ANSWERS_TO_JUDGE answers; on a
large campaign a refit comes every few hundred HITs, long after a spammer has been paid for a dozen. This
screen runs after each HIT (the consensus job) for the worker who submitted it, and at each refit for every
worker, with two tests:

* **Speed.** The median time per image over the worker's recent answers is below INHUMAN_MEDIAN_MS: no
  person looks at a picture and decides in under 300 ms, half the time (after SPEED_MIN_ANSWERS answers).
* **Answers independent of the truth** — random clicking, always "present", always "absent", copying
  another worker. A generalised likelihood-ratio test on the worker's answers to *reference* items: gold
  items (their known truth) and candidates whose posterior from the *other* workers' votes (at least
  REFERENCE_MIN_OTHER_VOTES of them: one other worker's word is wrong too often on confusable images) is
  confident (|p - 0.5| >= REFERENCE_MARGIN). Two models of one parameter each:

  - spam: the worker says "present" with some probability q, whatever the image shows (q fitted);
  - honest: the worker is right with some probability a >= HONEST_MIN_ACCURACY (a fitted), so says
    "present" with probability ``p * a + (1 - p) * (1 - a)`` for reference posterior p.

  The worker is blocked when the spam model explains the answers better by SPAM_LOG_LR nats (odds of
  e^9 ≈ 8000 to 1). An always-"present" worker loses about 0.8 nats per reference answer (blocked after a
  dozen or so), a coin-flipper about 0.09 (about 100: their fifth HIT or so). An honest worker at accuracy
  a drifts the other way unless a is below ≈ 0.6 — the noisiest honest workers of the simulator (Beta(16,
  4.5), worse on confusable images) come near that boundary and are the false-block risk;
  HONEST_MIN_ACCURACY, SPAM_LOG_LR and the reference rules trade that against how fast random clickers
  are caught. (At 0.75 / 8 nats / one other vote the simulator saw two honest workers blocked in a
  200-worker crowd.)

Both tests read only the worker's own votes (their most recent SCREEN_RECENT_VOTES) and the other votes on
the same candidates, so the per-HIT cost does not grow with the campaign.
"""

from __future__ import annotations

import numpy as np
from django.db.models import Count

from annotation.consensus import item_posteriors
from annotation.models import Campaign, GoldItem, Vote
from workers.models import WorkerProfile

INHUMAN_MEDIAN_MS = 300
SPEED_MIN_ANSWERS = 20
HONEST_MIN_ACCURACY = 0.7
SPAM_LOG_LR = 9.0
REFERENCE_MARGIN = 0.45
REFERENCE_MIN_OTHER_VOTES = 2
MIN_REFERENCE_ANSWERS = 10
SCREEN_RECENT_VOTES = 400
_GRID = np.linspace(HONEST_MIN_ACCURACY, 0.99, 11)


def spam_log_lr(workers: np.ndarray, answers: np.ndarray, reference: np.ndarray, n_workers: int) -> np.ndarray:
    """Per worker: max log-likelihood of the spam model minus that of the honest model (see the module
    docstring), over reference answers ``answers`` (1 = present) given by ``workers`` (codes 0..n-1) on
    items with reference posteriors ``reference`` = P(present). Positive favours spam. Vectorised: one
    bincount per grid value of the honest accuracy."""
    y = np.asarray(answers, dtype=np.float64)
    p = np.clip(np.asarray(reference, dtype=np.float64), 0.0, 1.0)
    w = np.asarray(workers, dtype=np.intp)
    n = np.bincount(w, minlength=n_workers).astype(np.float64)
    yes = np.bincount(w, weights=y, minlength=n_workers)
    q = np.clip(yes / np.maximum(n, 1), 0.01, 0.99)
    spam = yes * np.log(q) + (n - yes) * np.log(1 - q)
    honest = np.full(n_workers, -np.inf)
    for a in _GRID:
        p_yes = p * a + (1 - p) * (1 - a)
        ll = np.where(y > 0.5, np.log(p_yes), np.log(1 - p_yes))
        honest = np.maximum(honest, np.bincount(w, weights=ll, minlength=n_workers))
    return np.where(n > 0, spam - honest, 0.0)


def _block(worker_id: int, campaign: Campaign, reason: str) -> None:
    from annotation.services import consensus, refit

    refit.worker_block(worker_id=worker_id, campaign=campaign, reason=reason)
    touched = list(
        Vote.objects.filter(worker_id=worker_id, hit__campaign_id=campaign.id, is_gold=False)
        .values_list("candidate_id", flat=True)
        .distinct()
    )
    # Their votes now weigh 0: the candidates they decided go back to voting if the rest is not enough.
    for start in range(0, len(touched), 500):
        consensus.candidates_update(candidate_ids=touched[start : start + 500])


def worker_verdict(*, worker_id: int, campaign: Campaign) -> str | None:
    """Why this worker should be blocked from the campaign by the two tests above, or None."""
    from annotation.services.consensus import _worker_confusions

    rows = list(
        Vote.objects.filter(worker_id=worker_id, hit__campaign_id=campaign.id, answer__lt=Vote.Answer.CANT_TELL)
        .order_by("-id")
        .values_list("candidate_id", "answer", "response_ms", "is_gold")[:SCREEN_RECENT_VOTES]
    )
    if len(rows) >= SPEED_MIN_ANSWERS:
        median_ms = float(np.median([ms for _, _, ms, _ in rows]))
        if median_ms < INHUMAN_MEDIAN_MS:
            return f"Answers faster than a person can look (median {median_ms:.0f} ms per image)."
    gold_ids = [c for c, _, _, g in rows if g]
    truth = dict(GoldItem.objects.filter(candidate_id__in=gold_ids).values_list("candidate_id", "present"))
    real = sorted({c for c, _, _, g in rows if not g})
    others = list(
        Vote.objects.filter(candidate_id__in=real, is_gold=False, answer__lt=Vote.Answer.CANT_TELL)
        .exclude(worker_id=worker_id)
        .values_list("candidate_id", "worker_id", "answer")
    )
    reference: dict[int, float] = {}
    if others:
        worker_ids = sorted({w for _, w, _ in others})
        confusion, weights = _worker_confusions(worker_ids, campaign.id)
        local = {c: i for i, c in enumerate(real)}
        code = {w: i for i, w in enumerate(worker_ids)}
        items = np.array([local[c] for c, _, _ in others], dtype=np.intp)
        voters = np.array([code[w] for _, w, _ in others], dtype=np.intp)
        labels = np.array([a for _, _, a in others], dtype=np.intp)
        prior = campaign.prior_present
        post = item_posteriors(
            items, voters, labels, len(real), confusion, np.array([1 - prior, prior]), worker_weights=weights
        )[:, 1]
        counted = np.bincount(items, weights=weights[voters], minlength=len(real))
        sure = (np.abs(post - 0.5) >= REFERENCE_MARGIN) & (counted >= REFERENCE_MIN_OTHER_VOTES)
        reference = {c: float(post[i]) for c, i in local.items() if sure[i]}
    answers, refs = [], []
    for candidate_id, answer, _, is_gold in rows:
        ref = truth.get(candidate_id) if is_gold else reference.get(candidate_id)
        if ref is not None:
            answers.append(answer)
            refs.append(float(ref))
    if len(answers) < MIN_REFERENCE_ANSWERS:
        return None
    llr = float(spam_log_lr(np.zeros(len(answers), dtype=np.intp), np.array(answers), np.array(refs), 1)[0])
    if llr >= SPAM_LOG_LR:
        return f"Answers independent of the images (spam model ahead by {llr:.1f} nats over {len(answers)} answers)."
    return None


def worker_screen(*, worker_id: int, campaign: Campaign) -> str | None:
    """Screen one worker (not yet blocked) and block them if a test fails; returns the reason or None."""
    if WorkerProfile.objects.filter(user_id=worker_id, blocked=True).exists():
        return None
    reason = worker_verdict(worker_id=worker_id, campaign=campaign)
    if reason:
        _block(worker_id, campaign, reason)
    return reason


def hits_screen(*, candidate_ids: list[int]) -> dict[int, str]:
    """After a HIT's consensus update: screen whoever submitted it. The job carries only the candidates, so
    the HIT is the one whose votes cover all of them. Returns {worker id: reason} of the blocked."""
    ids = set(candidate_ids)
    if not ids:
        return {}
    hits = (
        Vote.objects.filter(candidate_id__in=ids, is_gold=False)
        .values("hit_id", "hit__worker_id", "hit__campaign_id")
        .annotate(n=Count("candidate_id", distinct=True))
        .filter(n=len(ids))
    )
    blocked = {}
    for row in hits:
        campaign = Campaign.objects.filter(id=row["hit__campaign_id"], state=Campaign.State.RUNNING).first()
        if campaign is None:
            continue
        reason = worker_screen(worker_id=row["hit__worker_id"], campaign=campaign)
        if reason:
            blocked[row["hit__worker_id"]] = reason
    return blocked


def speed_suspects(worker_ids: list[int]) -> dict[int, str]:
    """Workers whose mean time per answer (from their profile) is below INHUMAN_MEDIAN_MS: the refit's cheap
    form of the speed test (a mean is never below the median for these right-skewed times by much)."""
    rows = WorkerProfile.objects.filter(
        user_id__in=worker_ids, blocked=False, answers__gte=SPEED_MIN_ANSWERS
    ).values_list("user_id", "answers", "answer_ms_total")
    return {
        u: f"Answers faster than a person can look (mean {total / n:.0f} ms per image)."
        for u, n, total in rows
        if total / n < INHUMAN_MEDIAN_MS
    }
