"""Spam screening: block a worker as soon as their answers show they are not looking, HIT by HIT.

The periodic refit judges workers by the worker-aware model after MIN_ANSWERS_TO_JUDGE answers; on a
large campaign a refit comes every few hundred HITs, long after a spammer has been paid for a dozen. This
screen runs after each HIT (the consensus drain, which may weigh several at once) for the worker who
submitted it — and for up to CO_SCREEN_LIMIT newcomers the HIT contradicts, see below — with three tests;
the refit runs the speed and the reference test for every worker.

* **Speed** (copycats). The median time per image over the worker's recent answers is below
  INHUMAN_MEDIAN_MS: no person looks at a picture and decides in under 300 ms, half the time (after
  SPEED_MIN_ANSWERS answers, i.e. within the first 24-image HIT).
* **Answers biased whatever the image** (always "present", always "absent"). A generalised
  likelihood-ratio test on every answer the worker gave to a gold item (p = its truth) or to a candidate
  with at least BIAS_MIN_OTHER_VOTES counted vote of someone else (p = P(present) from those votes alone,
  however unsure). Two models, each fitted by maximum likelihood (spam_log_lr):

  - spam: "present" with a probability q, whatever the image;
  - honest: sensitivity and specificity each at least a floor, here BIAS_HONEST_FLOOR = 0.5 (a grid), so
    "present" with probability ``p * se + (1 - p) * (1 - sp)``.

  Blocked when spam is ahead by BIAS_LOG_LR = 6 nats (odds of 400 to 1). Both models hold a coin-flipper
  at q = se = sp = 1/2, so this test never fires on random answers, nor on answers to items nobody is sure
  about (at p = 1/2 any answer rate in [1/4, 3/4] is honest); it fires on a yes-rate that no honest worker
  could show given what the others said — an always-"present" worker loses ≈ 0.3 nats on an item at p =
  1/2 and ≈ 0.7 on one the others call absent. Why 6 and not the 9 of the test below: honest workers sit
  *inside* the honest model here, whatever their accuracy, so their statistic stays near or below 0 —
  logged at every look in six 200-worker simulations (20% spam and the noisy crowd, ≈ 400 honest workers,
  ≈ 6,000 looks) the highest honest value was 2.3 nats, while constant answerers passed 6 one HIT sooner
  than 9 (numpy, references right 90% of the time: honest workers of accuracy 0.55-0.95 stayed below 2.2
  in 72 answers; an always-"present" worker passed 9 within 48 answers in 200 of 200 runs).
* **Answers independent of the truth** (random clicking). The same two models on *reference* items only —
  gold, and candidates whose posterior from the *other* workers' votes (at least REFERENCE_MIN_OTHER_VOTES
  of them: one other worker's word is wrong too often on confusable images) is confident (|p - 0.5| >=
  REFERENCE_MARGIN) — with the honest floor at HONEST_MIN_RATE = 0.6, which a coin-flipper is below, and
  SPAM_LOG_LR = 10 nats. Slow on purpose: a coin-flipper loses only ≈ 0.02 nats per reference answer to an
  honest worker at 0.6/0.6, so it takes several hundred answers (10-30 HITs), and cannot be made fast
  without blocking honest people — the noisiest simulated honest workers (accuracy from Beta(16, 4.5): 1%
  below 0.6, and 2.5 times the error on confusable negatives) are near that floor; the highest honest value
  logged in the six simulations above was 6.7 nats. A coin-flipper's votes do little harm meanwhile: the
  model gives a worker at chance little weight (precision below: 99.89% pooled, 99.61% in the worst run).

  The honest model fits sensitivity and specificity apart because honest workers lean. It used to be
  "right with probability a >= 0.7": a simulated noisy worker at sensitivity 0.81, specificity 0.56 said
  "present" 77% of the time on references 85% present and was right 71% of the time — "present 77%
  whatever" beat it by 9.4 nats. That model blocked 10 honest workers in 7 simulations (floors 0.7 and
  0.65, 2026-12); the two-parameter one none in 18.

**Co-screening.** After a HIT the screen also takes up to CO_SCREEN_LIMIT newcomers (fewer than
CO_SCREEN_MAX_ANSWERS answers) who voted on its images against the updated posteriors at least twice
(_dissents): the HIT is new evidence about them, and a spammer who came early, when few others had voted
on their images, is blocked before their next HIT rather than after it.

The tests read only the worker's own votes (their most recent SCREEN_RECENT_VOTES) and the other votes on
the same candidates, so the per-HIT cost does not grow with the campaign.

Measured (benchmarks/simulate_policies.py --scenarios spam20: 200 workers, 20% spammers of four kinds who
arrive first and work until blocked, 2,146 candidates; and noisy_adaptive: reliable 0.45, noisy 0.4,
spammer 0.1, adversarial 0.05), 2026-12, load average 14-20 on 2 cores (timing does not enter the figures).
Six spam20 runs (seeds 1, 3, 5 twice: before and after the refit's second informedness bar, same screen):
of 240 spammers 33 passed the quiz (8 gold questions at pass mark 0.75 stop 86%). Blocked, with the HITs
they had submitted by then — copycats 10 of 10, all after 1; always "absent" 6 of 6 after 1, 2, 2, 3, 3, 3
(median 2.5); always "present" 10 of 10 after 1, 2, 2, 2, 2, 3, 3, 3, 3, 3 (median 2.5); coin-flippers 4
of 7, after 25, 25, 28, 28, the other three never (24, 27, 30 HITs, until the campaign ran out of work).
All kinds: 30 of 33 blocked, median 2 HITs. Honest workers blocked: none of ≈ 960 (and none in six runs of
the noisy crowd). Precision of the accepted labels over the six runs 99.89% (9,138 accepted, 10 wrong;
Wilson 95% 99.80-99.94%; per run 99.61-100%); noisy crowd 99.85% (9,065 accepted; 99.74-99.91%).
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np

from annotation.consensus import item_posteriors
from annotation.models import Campaign, GoldItem, Vote
from workers.models import WorkerProfile

INHUMAN_MEDIAN_MS = 300
SPEED_MIN_ANSWERS = 20
HONEST_MIN_RATE = 0.6
SPAM_LOG_LR = 10.0
REFERENCE_MARGIN = 0.45
REFERENCE_MIN_OTHER_VOTES = 2
MIN_REFERENCE_ANSWERS = 10
BIAS_HONEST_FLOOR = 0.5
BIAS_LOG_LR = 6.0
BIAS_MIN_OTHER_VOTES = 1
SCREEN_RECENT_VOTES = 400
# A screen costs about seven queries, a third of the consensus job (benchmarks/hit_cpu.py). A worker is
# screened after each of their first SCREEN_EVERY_HIT_UNTIL HITs — when every spammer kind is caught, median 2
# HITs — and after every SCREEN_EVERY-th HIT from then on: one who turns to spam late is still screened within
# that many HITs, on a window (SCREEN_RECENT_VOTES) that their new answers soon fill, and every refit screens
# everyone. Workers named by _dissents are newcomers, screened regardless.
SCREEN_EVERY_HIT_UNTIL = 10
SCREEN_EVERY = 3
CO_SCREEN_LIMIT = 3
CO_SCREEN_MAX_ANSWERS = 240
GRID_POINTS = 10


def spam_log_lr(
    workers: np.ndarray, answers: np.ndarray, reference: np.ndarray, n_workers: int, floor: float = HONEST_MIN_RATE
) -> np.ndarray:
    """Per worker: max log-likelihood of the spam model ("present" with a fitted probability q, whatever the
    image) minus that of the honest model (sensitivity and specificity each at least ``floor``, fitted on a
    grid: "present" with probability ``p * se + (1 - p) * (1 - sp)``), over answers ``answers`` (1 =
    present) given by ``workers`` (codes 0..n-1) to items whose P(present) is ``reference``. Positive
    favours spam. Vectorised: one bincount per grid point."""
    y = np.asarray(answers, dtype=np.float64)
    p = np.clip(np.asarray(reference, dtype=np.float64), 0.0, 1.0)
    w = np.asarray(workers, dtype=np.intp)
    n = np.bincount(w, minlength=n_workers).astype(np.float64)
    yes = np.bincount(w, weights=y, minlength=n_workers)
    q = np.clip(yes / np.maximum(n, 1), 0.01, 0.99)
    spam = yes * np.log(q) + (n - yes) * np.log(1 - q)
    honest = np.full(n_workers, -np.inf)
    grid = np.linspace(floor, 0.99, GRID_POINTS)
    for se in grid:
        for sp in grid:
            p_yes = p * se + (1 - p) * (1 - sp)
            ll = np.where(y > 0.5, np.log(p_yes), np.log(1 - p_yes))
            honest = np.maximum(honest, np.bincount(w, weights=ll, minlength=n_workers))
    return np.where(n > 0, spam - honest, 0.0)


def bias_log_lr(answers: np.ndarray, reference: np.ndarray) -> float:
    """One worker's answer-bias test (see the module docstring): spam_log_lr with the honest floor at
    BIAS_HONEST_FLOOR, where a coin-flipper (q = se = sp = 1/2) fits both models alike."""
    if len(answers) == 0:
        return 0.0
    workers = np.zeros(len(answers), dtype=np.intp)
    return float(spam_log_lr(workers, answers, reference, 1, floor=BIAS_HONEST_FLOOR)[0])


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
    truth = dict(GoldItem.objects.filter(candidate_id__any=gold_ids).values_list("candidate_id", "present"))
    real = sorted({c for c, _, _, g in rows if not g})
    others = list(
        Vote.objects.filter(candidate_id__any=real, is_gold=False, answer__lt=Vote.Answer.CANT_TELL)
        .exclude(worker_id=worker_id)
        .values_list("candidate_id", "worker_id", "answer")
    )
    reference: dict[int, float] = {}
    voted: dict[int, float]
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
        voted = {c: float(post[i]) for c, i in local.items() if counted[i] >= BIAS_MIN_OTHER_VOTES}
    else:
        voted = {}
    answers, refs, bias_answers, bias_refs = [], [], [], []
    for candidate_id, answer, _, is_gold in rows:
        ref = truth.get(candidate_id) if is_gold else reference.get(candidate_id)
        if ref is not None:
            answers.append(answer)
            refs.append(float(ref))
        soft = truth.get(candidate_id) if is_gold else voted.get(candidate_id)
        if soft is not None:
            bias_answers.append(answer)
            bias_refs.append(float(soft))
    if len(bias_answers) >= MIN_REFERENCE_ANSWERS:
        llr = bias_log_lr(np.array(bias_answers), np.array(bias_refs))
        if llr >= BIAS_LOG_LR:
            said = "present" if 2 * sum(bias_answers) > len(bias_answers) else "absent"
            return (f"Answers \"{said}\" whatever the image (bias model ahead by {llr:.1f} nats over "
                    f"{len(bias_answers)} answers).")  # fmt: skip
    if len(answers) < MIN_REFERENCE_ANSWERS:
        return None
    llr = float(spam_log_lr(np.zeros(len(answers), dtype=np.intp), np.array(answers), np.array(refs), 1)[0])
    if llr >= SPAM_LOG_LR:
        return f"Answers independent of the images (spam model ahead by {llr:.1f} nats over {len(answers)} answers)."
    return None


def _due(hits_done: int, own_hits: int) -> bool:
    """Whether a worker with ``hits_done`` HITs, the last ``own_hits`` of them not screened after yet, is due
    a screen on the cadence: one of those HITs was among the first SCREEN_EVERY_HIT_UNTIL or a multiple of
    SCREEN_EVERY (one screen after several HITs covers them all: it reads the worker's latest votes)."""
    return any(
        n <= SCREEN_EVERY_HIT_UNTIL or n % SCREEN_EVERY == 0
        for n in range(max(hits_done - own_hits + 1, 0), hits_done + 1)
    )


def worker_screen(*, worker_id: int, campaign: Campaign, after_own_hit: bool = False) -> str | None:
    """Screen one worker (not yet blocked) and block them if a test fails; returns the reason or None.
    ``after_own_hit``: the worker just submitted a HIT, screened on the cadence of SCREEN_EVERY."""
    profile = WorkerProfile.objects.filter(user_id=worker_id).values_list("blocked", "hits_done").first()
    blocked, hits_done = profile or (False, 0)
    if blocked:
        return None
    if after_own_hit and not _due(hits_done, 1):
        return None
    reason = worker_verdict(worker_id=worker_id, campaign=campaign)
    if reason:
        _block(worker_id, campaign, reason)
    return reason


class SubmittedHit(NamedTuple):
    worker_id: int
    campaign_id: int
    candidate_ids: list[int]  # its real (non-gold) candidates


def hits_screen_batch(*, hits: list[SubmittedHit]) -> dict[int, str]:
    """After the consensus update of these submitted HITs (a drain, annotation/services/consensus_queue.py):
    screen each submitter on the cadence (once, however many of their HITs are in the batch) and, always,
    the newcomers each HIT's votes contradict (_dissents). Everyone's profile is read in one query, and
    the votes the dissent is counted on in one for the whole batch. Returns {worker id: reason} of the
    blocked."""
    hits = [hit for hit in hits if hit.candidate_ids]
    campaigns = {
        c.id: c for c in Campaign.objects.filter(id__in={h.campaign_id for h in hits}, state=Campaign.State.RUNNING)
    }
    hits = [hit for hit in hits if hit.campaign_id in campaigns]
    if not hits:
        return {}
    own = Counter((hit.worker_id, hit.campaign_id) for hit in hits)
    dissents = _dissents(hits)
    suspects = {w for counts in dissents for w, n in counts.items() if n >= 2}
    profiles = {
        user_id: (blocked, hits_done, answers)
        for user_id, blocked, hits_done, answers in WorkerProfile.objects.filter(
            user_id__in={w for w, _ in own} | suspects
        ).values_list("user_id", "blocked", "hits_done", "answers")
    }
    screen: dict[tuple[int, int], None] = {}
    for (worker_id, campaign_id), n in own.items():
        blocked, hits_done, _ = profiles.get(worker_id, (False, 0, 0))
        if not blocked and _due(hits_done, n):
            screen[(worker_id, campaign_id)] = None
    for hit, counts in zip(hits, dissents, strict=True):
        fresh = [
            w
            for w, n in counts.items()
            if n >= 2 and w in profiles and not profiles[w][0] and profiles[w][2] < CO_SCREEN_MAX_ANSWERS
        ]
        for worker_id in sorted(fresh, key=lambda w: -counts[w])[:CO_SCREEN_LIMIT]:
            screen[(worker_id, hit.campaign_id)] = None
    blocked = {}
    for worker_id, campaign_id in screen:
        if worker_id in blocked:
            continue
        reason = worker_verdict(worker_id=worker_id, campaign=campaigns[campaign_id])
        if reason:
            _block(worker_id, campaigns[campaign_id], reason)
            blocked[worker_id] = reason
    return blocked


def _dissents(hits: list[SubmittedHit]) -> list[Counter[int]]:
    """Per HIT, how often each other worker voted on its candidates against their updated posterior (sure
    to within 0.25 of either end); a worker counted at least twice dissents (newcomers among them are
    co-screened: the HIT just weighed is fresh evidence about them, so a spammer who came early, when few
    others had voted on their images, is caught a HIT sooner). One query for the whole batch."""
    against: dict[int, list[int]] = {}
    ids = sorted({c for hit in hits for c in hit.candidate_ids})
    rows = Vote.objects.filter(candidate_id__any=ids, is_gold=False, answer__lt=Vote.Answer.CANT_TELL).values_list(
        "candidate_id", "worker_id", "answer", "candidate__posterior"
    )
    for candidate_id, worker_id, answer, posterior in rows:
        if posterior is not None and abs(posterior - 0.5) >= 0.25 and (answer == 1) != (posterior > 0.5):
            against.setdefault(candidate_id, []).append(worker_id)
    result = []
    for hit in hits:
        counts: Counter[int] = Counter()
        for candidate_id in set(hit.candidate_ids):
            for worker_id in against.get(candidate_id, ()):
                if worker_id != hit.worker_id:
                    counts[worker_id] += 1
        result.append(counts)
    return result


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
