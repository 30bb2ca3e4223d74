"""Spam screening: block a worker as soon as their answers show they are not looking, HIT by HIT.

The periodic refit judges workers by the worker-aware model after MIN_ANSWERS_TO_JUDGE answers; on a
large campaign a refit comes every few hundred HITs, long after a spammer has been paid for a dozen. This
screen runs after each HIT (the consensus drain, which may weigh several at once) for the worker who
submitted it — and for up to CO_SCREEN_LIMIT newcomers the HIT contradicts, see below — with four tests;
the refit runs the speed, the bar and the reference test for every worker (on its own posteriors, which
include the worker's vote: the milder judge).

* **Speed** (copycats). The median time per image over the worker's recent answers (after SPEED_MIN_ANSWERS
  answers, i.e. within the first 24-image HIT), in two bands. Below INHUMAN_MEDIAN_MS (120 ms: a 24-image
  grid in under three seconds) nobody looked: blocked at once. Below FAST_MEDIAN_MS (300 ms) it is fast for a
  person but not impossible — the labelling page sends a HIT's time in view divided by its images, and a
  practised worker can scan a grid of easy images (the demo's shapes, a category with few positives) in six
  seconds — so there speed alone does not block; it puts the worker on trial (fast_trial) from
  FAST_JUDGE_ANSWERS answers on: the bar's two models on the reference answers, with the honest floor at
  FAST_FLOOR (0.8) — a worker in such a hurry has to show they look. Blocked when chance is ahead by
  ACCURACY_LOG_LR, cleared when it is behind by as much, and blocked still undecided at FAST_DEADLINE_ANSWERS
  (four HITs with too few references to tell: the campaign has no gold and nobody else voted on their
  images). At 0.8 the statistic drifts toward chance below an accuracy of about 0.66 (where
  a·ln(0.8/0.5) + (1−a)·ln(0.2/0.5) = 0) and a coin-flipper gains ≈ 0.22 nats per exact reference, so a
  copycat (the simulator's replay their leader's answers in 60-300 ms an image, whatever they are shown) is
  blocked by its second or third HIT instead of its first, and a worker at 0.85 who answers fast is cleared
  after a dozen references. Until 2026-12 one bar of 300 ms blocked such a worker after one HIT however right
  their answers were. tests/simulator/test_spam_screen.py (seed 4): the two copycats blocked after 1 and 2 HITs
  (1 and 1 before); tests/annotation/hits/test_speed_screen.py: a right worker at 200 ms an image is not blocked.
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
* **Below the campaign's accuracy bar** (random clicking; Campaign.min_worker_accuracy, default 0.65, 0
  turns it off). The same two models on *reference* answers — gold (its truth), and candidates that at least
  REFERENCE_MIN_OTHER_VOTES counted votes of *others* lean on by ACCURACY_REFERENCE_MARGIN (their posterior,
  P(present) <= 0.25 or >= 0.75, taken as it is: a soft reference, which weighs as much as it is sure) —
  with the honest floor at the bar: "answers independent of the image" against "sensitivity and specificity
  each at least the bar". Blocked when chance is ahead by ACCURACY_LOG_LR = 3 nats *and* the worker's gold
  answers alone do not clear them (ACCURACY_MIN_GOLD, ACCURACY_GOLD_FLOOR, see the constants: soft
  references can be wrong together early on; added after the figures below were measured, when the
  end-to-end simulator test blocked a reliable worker in 2 of 4 runs — tests/simulator/test_spam_screen.py
  still blocks every coin-flipper with it). With the guard, `simulate_policies.py --seeds 3,1 --scenarios
  spam20` (load 1-8): every spammer who passed the quiz blocked, 9 of 9 (coin-flippers after 2, 3, 6 HITs;
  median over all 2); honest workers blocked 0 of 119, 16 of them below the bar by their true rates;
  precision 99.84% (5 wrong of 3,044; per run 99.87%, 99.80%).

  Why this GLR rather than Wald's SPRT: both hypotheses are composite (a spammer's yes-rate is unknown, an
  honest worker's sensitivity and specificity are anywhere above the bar); fitting each by maximum
  likelihood makes it the SPRT between the nearest pair for the worker's own answers (the worker at the bar
  nearest to chance, the spammer with their yes-rate), it needs no prior over the crowd, and it is the
  machinery of the other two tests and of the refit (one vectorised function). Error budget: against a
  fixed-rate spammer the likelihood ratio of an honest worker's answers (exact references, answers
  independent given the truth, sensitivity and specificity at or above the bar) is a martingale of mean 1,
  so by Ville's inequality it ever reaches e^3 with probability at most e^-3 ≈ 5%, over all looks together —
  at the bar itself; fitting the yes-rate adds a little, a worker above the bar has far less (measured
  below). What the bar means in practice: the statistic drifts up when chance explains the answers better
  than the best worker at the bar, i.e. below about halfway between chance and the bar (0.575 for 0.65); a
  coin-flipper gains ≈ 0.047 nats per exact reference answer (KL of 1/2 from 0.65), so takes ≈ 50 of them.
  Honest workers below the bar may be blocked: that is the bar.

  To have those references early — spammers come first, when the only other votes are other spammers' — a
  newcomer's HITs hold gold at NEWCOMER_GOLD_RATE (≈ 12 of 24 instead of ≈ 2.4) until the test clears them
  (chance behind by ACCURACY_LOG_LR: the SPRT's other boundary) or for NEWCOMER_GOLD_HITS HITs, when the
  campaign has a bar and gold (hit_gold_rate; the clearance is a cache key set here, read when leasing). A
  good worker is cleared after a HIT or two; the test's undecided, coin-flippers above all, keep getting
  known answers. Gold is drawn per item, never a vote, and looks like any other image; the price is paid
  gold answers (below). The qualification quiz's answers are *not* counted: passing selects (a coin-flipper
  who passed had at least the pass mark right by construction); conditioned on passing, a coin-flipper's 6
  of 8 says +0.2 nats for chance — nothing worth the bookkeeping.

  Measured on exact references (benchmarks/spam_bound.py --bar 0.65: gold's mix, half present, negatives
  two-thirds confusable; a look every 12 answers from ACCURACY_MIN_ANSWERS, 240 answers; 2,000 simulated
  honest workers of the spam20 crowd, 1,000 coin-flippers; load ≈ 3): coin-flippers blocked by 24 answers
  21%, 48 53%, 72 71%, 120 89%, 240 98.5% (median 48). Honest workers blocked, by the lower of their true
  sensitivity and specificity on those items: below 0.55 11 of 14, 0.55-0.60 26 of 101, 0.60-0.65 9 of
  289, 0.65 and above 0 of 1,596. At 2.3 nats the coin-flippers' median is 36 answers and 3 honest workers
  above the bar were blocked; at 4 nats, 72 answers. The simulated noisy workers' specificity falls below
  0.65 on such items (they err 2.5 times as often on confusable negatives, which are most negatives), so
  they are the ones at risk.

* **Answers independent of the truth** (random clicking, with the bar off or below it). The same two models
  on confident references only — gold, and candidates whose posterior from the *other* workers' votes (at
  least REFERENCE_MIN_OTHER_VOTES of them: one other worker's word is wrong too often on confusable images)
  is confident (|p - 0.5| >= REFERENCE_MARGIN) — with the honest floor at HONEST_MIN_RATE = 0.6 and
  SPAM_LOG_LR = 10 nats: today's test without a bar, slow on purpose (a coin-flipper loses only ≈ 0.02 nats
  per reference answer to an honest worker at 0.6/0.6, so it takes several hundred answers, 10-30 HITs, and
  was caught in 4 of 7 simulated cases, after 25-28 HITs) but blocked no honest worker in 18 simulations.

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
arrive first and work until blocked, 2,146 candidates, campaign bar 0.65), 2026-12-02, seeds 3, 1, 2, 4, 5,
load average 1.5-7 on 2 cores (timing does not enter the figures). Of 200 spammers 29 passed the quiz (8
gold questions at pass mark 0.75). Every one was blocked, with the HITs they had submitted by then —
copycats 7 of 7 after 1; always "absent" 7 of 7 after 1, 1, 1, 1, 2, 2, 2; always "present" 6 of 6 after 1,
1, 2, 2, 2, 2; coin-flippers 9 of 9 after 2, 2, 3, 5, 7, 7, 8, 12, 12 (median 7). All kinds: median 2 HITs.
Without the bar (start of the day, seed 3) the same seed's two coin-flippers took 10 and 11 HITs, and in
six earlier runs 3 of 7 were never blocked. Honest workers blocked: 5 of the 277 who did a HIT, all below
the bar by their true rates on the items they answered (sensitivity, specificity: 0.59/0.58, 0.72/0.61,
0.73/0.61, 0.75/0.62, 0.80/0.64; nominal accuracies 0.64-0.79, all noisy workers); by the lower of the two,
below 0.60 1 of 6, 0.60-0.65 4 of 30, 0.65 and above 0 of 241. Precision of the accepted labels 99.92%
(7,662 accepted, 6 wrong; Wilson 95% 99.83-99.96%; per run 99.80-100%). The newcomer gold costs: 1,923-2,392
gold answers per run against 1,009 without the bar (seed 3: 427 HITs against 412 for the same labels).
The default crowd (--scenarios adaptive, seeds 1, 2, 3, load 2-6), against the start of the day: votes per
candidate 3.58, 3.06, 3.27 (mean 3.30) against 3.72, 3.05, 3.22 (3.33), within the seeds' spread; precision
99.89% (4,595 accepted, 5 wrong) against 99.93% (4,578, 3); HITs paid 1,274 against 1,128 (+13%: gold
answers 6,671 against 2,763). One more seed-3 run left 635 candidates open (the crowd stopped finding work;
not seen again in the other 13 runs, not explained then). Explained 2026-12-06: while the consensus drain lagged
(an eager refit inside it), every open candidate past min_votes awaited consensus, next-HIT answered 204 and the
simulated workers left; next-HIT now weighs a few awaiting candidates itself (hits._lease_hit).

Re-measured 2026-12-06 (seeds 1, 2; the same figures at 30ebaa5, before that change, so not caused by it):
every spammer who passed the quiz blocked, 14-15 of 14-15, but after more HITs than above — median 6-7 over all
kinds (copycats 3.5-6, always "absent" 4, always "present" 5-7, coin-flippers 8-10, at most 27-29); one honest
worker blocked per run pair, below the bar by true rates (0.59/0.58; 0.73/0.60). The screen runs in the drain,
so in the simulator (eager Celery, refits inside the drain) it lags the submits by however long the drain is
held up, and a spammer's HITs submitted meanwhile count before the block.

Hence LAGGING_OWN_HITS (2026-12-06): a worker with two HITs or more awaiting the drain is screened by their
next-HIT request, with the speed and bias tests only. spam20 on PostgreSQL, one run per seed, seeds 1-8, without
→ with it: HITs submitted by the block, median over all kinds 6 → 2 (copycats 4 → 2, always "absent" 5 → 2,
always "present" 6 → 2; coin-flippers, left to the drain, 9.5 → 8.5, at most 34 → 27); every spammer who passed
the quiz blocked (51 of 51 both ways); honest workers blocked 3 → 3, all below the bar by the lower of their
true rates; precision 99.92% (10 wrong of 12,264; 11 of 18,360 over seeds 1-12) → 99.89% (13 of 12,329; per
run 99.68-100% against 99.74-100%), within the runs' noise. Screening inline with every test (tried first;
seeds 1-12) took coin-flippers to a median of 5 HITs but blocked 11 honest workers instead of 6 — more looks at
the bar on soft references — and let 28 wrong labels of 19,992 through against 11 of 18,360 (z ≈ 2.5): not kept.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
from django.core.cache import cache
from django.db import connection

from annotation.consensus import item_posteriors
from annotation.models import Campaign, GoldItem, Hit, Vote
from annotation.rows import column_in, fetch
from workers.models import WorkerProfile

INHUMAN_MEDIAN_MS = 120
FAST_MEDIAN_MS = 300
SPEED_MIN_ANSWERS = 20
FAST_JUDGE_ANSWERS = 48
FAST_DEADLINE_ANSWERS = 96
FAST_FLOOR = 0.8
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
# The campaign's accuracy bar (Campaign.min_worker_accuracy, see the module docstring).
ACCURACY_LOG_LR = 3.0
ACCURACY_REFERENCE_MARGIN = 0.25
# Not before this many reference answers: at 12 the fitted models' bonus let an honest 0.8 worker's bad luck
# (6 of 12 against soft references) pass 3 nats once in 200 (tests/annotation/hits/test_screening.py).
ACCURACY_MIN_ANSWERS = 24
# The bar blocks only when the worker's gold answers, alone, do not clear them: at least ACCURACY_MIN_GOLD
# gold answers, and their statistic above ACCURACY_GOLD_FLOOR. The consensus references can be wrong together
# early in a campaign (spammers and adversarial workers the model has not measured yet vote on the same images):
# the end-to-end simulator test blocked a reliable worker on them in 2 of 4 runs. On 16 exact gold answers
# (numpy, bar 0.65, 300 draws each) the gold statistic stays above -1 for 89% of coin-flippers, 12% of workers
# at 0.8 and 2% at 0.9 (none at 32 answers); above 0 it dropped a coin-flipper 72 gold answers in whose luck
# put it at -0.3 (tests/simulator/test_spam_screen.py). Without gold the bar does not block (the slower
# reference test still runs).
ACCURACY_MIN_GOLD = 16
ACCURACY_GOLD_FLOOR = -1.0
NEWCOMER_GOLD_HITS = 10
NEWCOMER_GOLD_RATE = 0.5
CLEARED_TTL_SECONDS = 7 * 24 * 3600
# The screen runs in the consensus drain, after a HIT's votes are weighed. When this many of a worker's own
# submitted HITs in a campaign still wait for a drain (held up by a refit, a busy Celery worker), their next-HIT
# request runs the speed and bias tests itself before leasing more (hits.hit_next): copycats and constant
# answerers are then stopped within two HITs however far the drain lags; the bar's test stays with the drain
# (see the module docstring's last paragraph). At one, every next-HIT would screen — the page asks for the next
# HIT right after the submit, before the drain has run.
LAGGING_OWN_HITS = 2


def hit_gold_rate(campaign: Campaign, ordinal: int, worker_id: int) -> float:
    """The gold share of a worker's ``ordinal``-th HIT (0-based) in the campaign. With an accuracy bar and gold
    at all, a newcomer (one of their first NEWCOMER_GOLD_HITS) not yet cleared by the bar's test gets
    NEWCOMER_GOLD_RATE: they are judged on answers whose truth is known, not on the votes of others who came
    as early as they did, and the test's undecided — coin-flippers above all — keep getting them until it
    decides; a good worker is cleared after a HIT or two. Else the campaign's rate. Gold is never a vote and
    is drawn per item, so a worker cannot tell these HITs. One cache read per lease, for newcomers only."""
    newcomer = campaign.min_worker_accuracy > 0 and campaign.gold_rate > 0 and ordinal < NEWCOMER_GOLD_HITS
    if newcomer and (ordinal == 0 or not cache.get(_cleared_key(campaign.id, worker_id))):
        return max(campaign.gold_rate, NEWCOMER_GOLD_RATE)
    return campaign.gold_rate


def newcomer_clear(*, campaign_id: int, worker_id: int) -> None:
    """The bar's test is sure this worker is above chance (ACCURACY_LOG_LR nats the other way): their next
    HITs hold the campaign's usual gold share. Kept in the cache: if it is lost, the worker only gets more
    gold until their next screen clears them again."""
    cache.set(_cleared_key(campaign_id, worker_id), 1, CLEARED_TTL_SECONDS)


def _cleared_key(campaign_id: int, worker_id: int) -> str:
    return f"screen:cleared:{campaign_id}:{worker_id}"


def spam_log_lr(
    workers: np.ndarray, answers: np.ndarray, reference: np.ndarray, n_workers: int, floor: float = HONEST_MIN_RATE
) -> np.ndarray:
    """Per worker: max log-likelihood of the spam model ("present" with a fitted probability q, whatever the
    image) minus that of the honest model (sensitivity and specificity each at least ``floor``, fitted on a
    grid: "present" with probability ``p * se + (1 - p) * (1 - sp)``), over answers ``answers`` (1 =
    present) given by ``workers`` (codes 0..n-1) to items whose P(present) is ``reference``. Positive
    favours spam. Vectorised: one bincount per grid point; for one worker (the per-HIT screen, three calls
    per screen), per sensitivity every specificity at once as a column sum of an answers × grid matrix
    (a hundred small bincounts were most of a screen's arithmetic)."""
    y = np.asarray(answers, dtype=np.float64)
    p = np.clip(np.asarray(reference, dtype=np.float64), 0.0, 1.0)
    w = np.asarray(workers, dtype=np.intp)
    n = np.bincount(w, minlength=n_workers).astype(np.float64)
    yes = np.bincount(w, weights=y, minlength=n_workers)
    q = np.clip(yes / np.maximum(n, 1), 0.01, 0.99)
    spam = yes * np.log(q) + (n - yes) * np.log(1 - q)
    honest = np.full(n_workers, -np.inf)
    grid = np.linspace(floor, 0.99, GRID_POINTS)
    if n_workers == 1:
        said_yes = (y > 0.5)[:, None]
        for se in grid:
            p_yes = p[:, None] * se + (1 - p)[:, None] * (1 - grid[None, :])  # answers × specificities
            ll = np.where(said_yes, np.log(p_yes), np.log(1 - p_yes))
            honest = np.maximum(honest, ll.sum(axis=0).max())
        return np.where(n > 0, spam - honest, 0.0)
    for se in grid:
        for sp in grid:
            p_yes = p * se + (1 - p) * (1 - sp)
            ll = np.where(y > 0.5, np.log(p_yes), np.log(1 - p_yes))
            honest = np.maximum(honest, np.bincount(w, weights=ll, minlength=n_workers))
    return np.where(n > 0, spam - honest, 0.0)


def gold_agrees_below_bar(gold_answers: np.ndarray, gold_truth: np.ndarray, bar: float) -> bool:
    """The bar's guard (ACCURACY_MIN_GOLD, ACCURACY_GOLD_FLOOR): enough gold answers, and they do not clear
    the worker on their own."""
    if len(gold_answers) < ACCURACY_MIN_GOLD:
        return False
    return accuracy_log_lr(gold_answers, gold_truth, bar) > ACCURACY_GOLD_FLOOR


def fast_trial(answers: np.ndarray, reference: np.ndarray, n_answers: int) -> bool | None:
    """The speed test's fast band (see the module docstring) on a fast worker's reference answers: True when
    they show a look at the images, False when they do not — chance ahead of "sensitivity and specificity each
    at least FAST_FLOOR" by ACCURACY_LOG_LR, or still undecided after FAST_DEADLINE_ANSWERS of the worker's
    answers (``n_answers``) — None while undecided."""
    verdict = looking(accuracy_log_lr(answers, reference, FAST_FLOOR)) if len(answers) else None
    return False if verdict is None and n_answers >= FAST_DEADLINE_ANSWERS else verdict


def looking(llr: float) -> bool | None:
    """The fast band's verdict on its statistic (chance minus looking, nats): True cleared, False not looking,
    None undecided. The refit reads its vectorised statistics through this too."""
    if llr <= -ACCURACY_LOG_LR:
        return True
    if llr >= ACCURACY_LOG_LR:
        return False
    return None


def accuracy_log_lr(answers: np.ndarray, reference: np.ndarray, bar: float) -> float:
    """One worker's accuracy-bar test (see the module docstring): spam_log_lr with the honest floor at the
    campaign's ``bar``; block at ACCURACY_LOG_LR after ACCURACY_MIN_ANSWERS answers."""
    if len(answers) == 0:
        return 0.0
    workers = np.zeros(len(answers), dtype=np.intp)
    return float(spam_log_lr(workers, answers, reference, 1, floor=bar)[0])


def bias_log_lr(answers: np.ndarray, reference: np.ndarray) -> float:
    """One worker's answer-bias test (see the module docstring): spam_log_lr with the honest floor at
    BIAS_HONEST_FLOOR, where a coin-flipper (q = se = sp = 1/2) fits both models alike."""
    if len(answers) == 0:
        return 0.0
    workers = np.zeros(len(answers), dtype=np.intp)
    return float(spam_log_lr(workers, answers, reference, 1, floor=BIAS_HONEST_FLOOR)[0])


def _block(worker_id: int, campaign: Campaign, reason: str) -> bool:
    """Block the worker in the campaign and re-evaluate what they voted on; False (nothing done) while a
    person's unblock still stands (refit.spared_after_unblock: too few answers since it to judge them again)."""
    from annotation.services import consensus, refit

    if refit.spared_after_unblock(campaign=campaign, worker_ids=[worker_id]):
        return False
    refit.worker_block(worker_id=worker_id, campaign=campaign, reason=reason)
    touched = list(
        Vote.objects.filter(worker_id=worker_id, hit__campaign_id=campaign.id, is_gold=False)
        .values_list("candidate_id", flat=True)
        .distinct()
    )
    # Their votes now weigh 0: the candidates they decided go back to voting if the rest is not enough.
    for start in range(0, len(touched), 500):
        consensus.candidates_update(candidate_ids=touched[start : start + 500])
    return True


def worker_verdict(*, worker_id: int, campaign: Campaign, newcomer: bool = False, quick: bool = False) -> str | None:
    """Why this worker should be blocked from the campaign by the tests above, or None. A ``newcomer`` (fewer
    than NEWCOMER_GOLD_HITS HITs) whom the bar's test clears gets the usual gold share from then on. ``quick``:
    the speed and bias tests only (see LAGGING_OWN_HITS)."""
    from annotation.services.consensus import _worker_confusions

    q = connection.ops.quote_name
    votes, hits = q(Vote._meta.db_table), q(Hit._meta.db_table)
    # Written SQL (prepared on PostgreSQL): the ORM compiled these three queries anew for every screen.
    # ``h.worker_id`` says again what ``v.worker_id`` implies (a vote's HIT is its worker's): without it a
    # planner that believes the campaign has few HITs (statistics from before the campaign started, the
    # usual case in its first minutes) walks every HIT of the campaign for each screen — 40 ms a screen
    # (~12 s of statement time in one 40 s benchmarks/hits_load.py run); with it, at worst the worker's own HITs.
    rows = fetch(
        f"SELECT v.candidate_id, v.answer, v.response_ms, v.is_gold FROM {votes} v JOIN {hits} h ON h.id = v.hit_id "
        "WHERE v.worker_id = %s AND h.worker_id = %s AND h.campaign_id = %s AND v.answer < %s "
        "ORDER BY v.id DESC LIMIT %s",
        [worker_id, worker_id, campaign.id, Vote.Answer.CANT_TELL.value, SCREEN_RECENT_VOTES],
    )
    fast_ms = None
    if len(rows) >= SPEED_MIN_ANSWERS:
        median_ms = float(np.median([ms for _, _, ms, _ in rows]))
        if median_ms < INHUMAN_MEDIAN_MS:
            return f"Answers faster than a person can look (median {median_ms:.0f} ms per image)."
        if median_ms < FAST_MEDIAN_MS and len(rows) >= FAST_JUDGE_ANSWERS:
            fast_ms = median_ms
    gold_ids = [c for c, _, _, g in rows if g]
    gold_where, gold_params = column_in("candidate_id", gold_ids)
    truth = dict(
        fetch(f"SELECT candidate_id, present FROM {q(GoldItem._meta.db_table)} WHERE {gold_where}", gold_params)
    )
    real = sorted({c for c, _, _, g in rows if not g})
    is_real, real_params = column_in("candidate_id", real)
    others = fetch(
        f"SELECT candidate_id, worker_id, answer FROM {votes} WHERE {is_real} AND NOT is_gold AND answer < %s "
        "AND worker_id <> %s",
        [*real_params, Vote.Answer.CANT_TELL.value, worker_id],
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
        leaning = (np.abs(post - 0.5) >= ACCURACY_REFERENCE_MARGIN) & (counted >= REFERENCE_MIN_OTHER_VOTES)
        graded = {c: float(post[i]) for c, i in local.items() if leaning[i]}
    else:
        voted, graded = {}, {}
    answers, refs, bias_answers, bias_refs, bar_answers, bar_refs, gold_answers, gold_truth = ([] for _ in range(8))
    for candidate_id, answer, _, is_gold in rows:
        ref = truth.get(candidate_id) if is_gold else reference.get(candidate_id)
        if ref is not None:
            answers.append(answer)
            refs.append(float(ref))
        soft = truth.get(candidate_id) if is_gold else voted.get(candidate_id)
        if soft is not None:
            bias_answers.append(answer)
            bias_refs.append(float(soft))
        lean = truth.get(candidate_id) if is_gold else graded.get(candidate_id)
        if lean is not None:
            bar_answers.append(answer)
            bar_refs.append(float(lean))
            if is_gold:
                gold_answers.append(answer)
                gold_truth.append(float(lean))
    if len(bias_answers) >= MIN_REFERENCE_ANSWERS:
        llr = bias_log_lr(np.array(bias_answers), np.array(bias_refs))
        if llr >= BIAS_LOG_LR:
            said = "present" if 2 * sum(bias_answers) > len(bias_answers) else "absent"
            return (f"Answers \"{said}\" whatever the image (bias model ahead by {llr:.1f} nats over "
                    f"{len(bias_answers)} answers).")  # fmt: skip
    if fast_ms is not None and fast_trial(np.array(bar_answers), np.array(bar_refs), len(rows)) is False:
        return (f"Answers faster than most people can look (median {fast_ms:.0f} ms per image), and the answers "
                f"to images whose label is known ({len(bar_answers)}) do not show a look at them.")  # fmt: skip
    if quick:
        return None
    bar = campaign.min_worker_accuracy
    if bar > 0 and len(bar_answers) >= ACCURACY_MIN_ANSWERS:
        llr = accuracy_log_lr(np.array(bar_answers), np.array(bar_refs), bar)
        if newcomer and llr <= -ACCURACY_LOG_LR:
            newcomer_clear(campaign_id=campaign.id, worker_id=worker_id)
        if llr >= ACCURACY_LOG_LR and gold_agrees_below_bar(np.array(gold_answers), np.array(gold_truth), bar):
            return (f"Answers no better than chance, against this campaign's least accuracy of {bar:.2f} (chance "
                    f"ahead by {llr:.1f} nats over {len(bar_answers)} reference answers, "
                    f"{len(gold_answers)} of them gold).")  # fmt: skip
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


def worker_screen(*, worker_id: int, campaign: Campaign, own_hits: int = 0, quick: bool = False) -> str | None:
    """Screen one worker (not yet blocked) and block them if a test fails; returns the reason or None.
    ``own_hits``: the worker's last so many HITs were not screened after yet — screened on the cadence of
    SCREEN_EVERY (0: screened whatever the cadence). ``quick``: the speed and bias tests only."""
    profile = WorkerProfile.objects.filter(user_id=worker_id).values_list("blocked", "hits_done").first()
    blocked, hits_done = profile or (False, 0)
    if blocked:
        return None
    if own_hits and not _due(hits_done, own_hits):
        return None
    reason = worker_verdict(
        worker_id=worker_id, campaign=campaign, newcomer=hits_done < NEWCOMER_GOLD_HITS, quick=quick
    )
    if reason and _block(worker_id, campaign, reason):
        return reason
    return None


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
        newcomer = profiles.get(worker_id, (False, 0, 0))[1] < NEWCOMER_GOLD_HITS
        reason = worker_verdict(worker_id=worker_id, campaign=campaigns[campaign_id], newcomer=newcomer)
        if reason and _block(worker_id, campaigns[campaign_id], reason):
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


def speed_suspects(worker_ids: list[int], looks: dict[int, bool] | None = None) -> dict[int, str]:
    """The refit's cheap form of the speed test, on each worker's mean time per answer (from their profile; a
    mean is never below the median for these right-skewed times by much): below INHUMAN_MEDIAN_MS; below
    FAST_MEDIAN_MS after FAST_JUDGE_ANSWERS answers when ``looks`` (the fast band's trial on the refit's
    references: True looking, False not) says False, or says nothing after FAST_DEADLINE_ANSWERS answers."""
    looks = looks or {}
    rows = WorkerProfile.objects.filter(
        user_id__in=worker_ids, blocked=False, answers__gte=SPEED_MIN_ANSWERS
    ).values_list("user_id", "answers", "answer_ms_total")
    suspects = {}
    for u, n, total in rows:
        mean = total / n
        if mean < INHUMAN_MEDIAN_MS:
            suspects[u] = f"Answers faster than a person can look (mean {mean:.0f} ms per image)."
        elif mean < FAST_MEDIAN_MS and n >= FAST_JUDGE_ANSWERS:
            verdict = looks.get(u)
            if verdict is False or (verdict is None and n >= FAST_DEADLINE_ANSWERS):
                suspects[u] = (
                    f"Answers faster than most people can look (mean {mean:.0f} ms per image), and the answers "
                    "to images whose label is known do not show a look at them."
                )
    return suspects
