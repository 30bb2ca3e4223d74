"""The living demo and the crowd simulator, on the database side: a demo campaign with gold from the demo
ground truth, simulated worker accounts, an in-process server, a simulation run and its report.

The simulated workers themselves (annotation/simulator/) know nothing of Django: they talk to the REST API
over HTTP like any client. This module hands them accounts, an oracle (what each image shows, from
DATA_DIR/demo/truth.jsonl through annotation.selectors.demo) and a server, and afterwards reads the
outcome back from the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count

from annotation import demo_images
from annotation.models import Campaign, Candidate, GoldItem, Hit, Vote
from annotation.selectors import demo as demo_selectors
from annotation.services import consensus, refit
from annotation.services.campaigns import campaign_create, campaign_set_state
from annotation.simulator.runner import Account, RunLog, run_crowd
from annotation.simulator.workers import SPAMMERS, SimWorker
from workers.models import Qualification, WorkerProfile
from workers.roles import Role
from workers.services import account_create

# The adaptive policy: at least two votes, at most eight; accept at P(present) >= 0.997, reject at
# P(absent) >= 0.95 (consensus.REJECT_CONFIDENCE). Measured with benchmarks/simulate_policies.py (2,146
# candidates, 200 workers, PostgreSQL, seeds 1-4), 2026-12-04, after refits were made to follow their 10% rule
# (they had run 2-3 times in a simulated campaign's life, so most decisions used workers no refit had
# measured, whose two "yes" rarely reach 0.997): default mix 51.8 / 52.4 / 50.1 / 50.3% of fixed-5's votes
# (and 55.0 / 51.1 / 53.0 / 51.3% in a second series), the noisier mix 53.2 / 57.5 / 58.2 / 54.1%, precision
# 99.74-99.94% (fixed-5 majority itself, seeds 1-2, earlier: 99.74 / 99.61%). Before that change the same
# benchmark gave 52.8-62.0% over 17 runs (mean ≈ 56%). A run's figure moves by a few points with the same seed
# (which workers the threads let in first, when the refits fall). With the model's default quiz (eight items,
# 75% to pass) the default mix spent 66-72% (before the refit change): at 0.997 two "yes" from a typical
# reliable worker (false "yes" on a confusable negative 12.5% of the time) leave P(present) at ~0.9956, so a
# positive needs a third vote unless the refit has measured both voters as better than typical, and a noisy
# worker's vote settles less still (benchmarks/adaptive_bound.py: an oracle spends 66% with the default crowd,
# 53% with reliable workers only).
ADAPTIVE_POLICY = {"min_votes": 2, "max_votes": 8, "confidence": 0.997}
# The demo campaign's qualification: twelve gold items, eleven right to pass (the model's default is eight at
# 75%). With gold as mixed as the candidates (confusable negatives included), about 82% of the simulator's
# reliable workers pass it and 18% of its noisy ones (98% and 64% pass the default quiz), so the fast, noisy
# workers who otherwise cast a third of the votes mostly stay out and the work goes to those who passed
# (simulated workers who fail do not retry). The price: about one reliable worker in five is turned away at
# the door. Both policies of a comparison run with it. A person trying the demo as `worker` who misses two
# shapes may try again after a minute rather than the model's default ten (simulated workers never retry).
DEMO_QUALIFICATION = {"quiz_size": 12, "quiz_pass_mark": 0.9, "quiz_retry_seconds": 60}
DEMO_GOLD_SHARE = 0.1
SQLITE_CONCURRENCY = 4
POLICY_FIELDS = (
    "min_votes",
    "max_votes",
    "confidence",
    "gold_rate",
    "images_per_hit",
    "min_worker_accuracy",
    "quiz_size",
    "quiz_pass_mark",
)
DEMO_CAMPAIGN = "Shapes (demo)"
# The shapes with no hyponym among the demo shapes: a label set must not overlap, and ellipse and rectangle
# are ancestors of circle and square. Their confusable neighbours still appear as hard negatives.
DEMO_WNIDS = [s.wnid for s in demo_images.SHAPES if not any(t.parent == s.wnid for t in demo_images.SHAPES)]


def policy_parse(text: str) -> dict:
    """``adaptive`` or ``fixed:K`` → campaign fields."""
    if text == "adaptive":
        return dict(ADAPTIVE_POLICY)
    kind, _, k = text.partition(":")
    if kind == "fixed" and k.isdigit() and int(k) >= 1:
        return {"min_votes": int(k), "max_votes": int(k)}
    raise ValueError(f"Unknown policy {text!r}: use adaptive or fixed:K (e.g. fixed:5).")


def policy_name(campaign: Campaign) -> str:
    return f"fixed:{campaign.min_votes}" if campaign.min_votes == campaign.max_votes else "adaptive"


# ---------------------------------------------------------------------------------------------- campaign
@transaction.atomic
def demo_gold_create(*, campaign: Campaign, share: float = DEMO_GOLD_SHARE, seed: int = 1) -> int:
    """Make ``share`` of each synset's demo candidates gold items, from the demo truth: half present, half
    absent (as far as the synset has them), so that a worker who always gives one answer scores 50% on
    gold and fails the quiz. Candidates already voted on are left alone. Returns how many gold items exist
    for the campaign's synsets afterwards."""
    synset_ids = demo_selectors.campaign_synset_ids(campaign)
    truth = demo_selectors.demo_truth_by_candidate(synset_ids=synset_ids)
    have = set(GoldItem.objects.filter(synset_id__in=synset_ids).values_list("candidate_id", flat=True))
    rows = Candidate.objects.filter(id__in=list(truth), votes_count=0, pending_count=0).exclude(id__in=have)
    by_synset: dict[int, list[int]] = defaultdict(list)
    for candidate_id, synset_id in rows.order_by("id").values_list("id", "synset_id"):
        by_synset[synset_id].append(candidate_id)
    new = []
    for synset_id, ids in by_synset.items():
        rng = np.random.default_rng([seed, synset_id])
        want = max(2, round(share * len(ids)))
        for positive in (True, False):
            pool = [c for c in ids if truth[c].positive is positive]
            k = min(len(pool), (want + 1) // 2)
            new += [
                GoldItem(candidate_id=int(c), synset_id=synset_id, present=positive)
                for c in rng.choice(pool, size=k, replace=False)
            ]
    GoldItem.objects.bulk_create(new)
    return len(have) + len(new)


def demo_campaign_ensure(*, owner: User, name: str, wnids: list[str], gold_share: float = DEMO_GOLD_SHARE,
                         seed: int = 1, **policy) -> tuple[Campaign, bool]:  # fmt: skip
    """The running campaign of this name (created, given gold and started if missing). Idempotent."""
    campaign = Campaign.objects.filter(name=name, owner=owner).order_by("id").first()
    created = campaign is None
    if created:
        campaign = campaign_create(
            owner=owner, name=name, wnids=wnids, **{**ADAPTIVE_POLICY, **DEMO_QUALIFICATION, **policy}
        )
        demo_gold_create(campaign=campaign, share=gold_share, seed=seed)
    if campaign.state in (Campaign.State.DRAFT, Campaign.State.PAUSED):
        campaign = campaign_set_state(campaign=campaign, state=Campaign.State.RUNNING)
    return campaign, created


def campaign_policy_set(*, campaign: Campaign, policy: dict) -> Campaign:
    for field, value in policy.items():
        setattr(campaign, field, value)
    campaign.full_clean()
    campaign.save(update_fields=list(policy))
    return campaign


# ---------------------------------------------------------------------------------------------- crowd
def simulation_accounts(*, crowd: list[SimWorker], prefix: str) -> list[Account]:
    """One worker account and API token per simulated worker (``<prefix>-<kind>-<index>``), reused when
    they exist. Tokens are made here rather than through POST /auth/token/: sign-in is rate-limited per
    address, and a simulated crowd all comes from one."""
    from rest_framework.authtoken.models import Token

    accounts = []
    for worker in crowd:
        username = f"{prefix}-{worker.index:04d}-{worker.kind}"
        user = User.objects.filter(username=username).first() or account_create(
            username=username, password=None, role=Role.WORKER
        )
        token, _ = Token.objects.get_or_create(user=user)
        accounts.append(Account(username=username, worker=worker, token=token.key))
    return accounts


@contextlib.contextmanager
def live_server() -> Iterator[str]:
    """The app served in this process on a free loopback port (Django's threaded test server); yields its
    base URL. For a simulation without a running server."""
    from django.test.testcases import LiveServerThread

    thread = LiveServerThread("127.0.0.1", lambda app: app)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    try:
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        thread.terminate()


def celery_drain(*, timeout: float = 60.0) -> None:
    """With a real broker, wait until the Celery workers have run every queued task (the consensus
    updates of the last HITs), so the report reads settled states. Eager mode returns at once."""
    from config.celery import app

    if app.conf.task_always_eager:
        return
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    inspector = app.control.inspect(timeout=1.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = broker.llen("celery")
        busy = sum(len(v) for v in (inspector.active() or {}).values())
        busy += sum(len(v) for v in (inspector.reserved() or {}).values())
        if not queued and not busy:
            return
        time.sleep(0.3)


def campaign_settle(*, campaign: Campaign) -> refit.RefitSummary:
    """The end of a run: a last refit (blocks the spammers it finds, re-evaluates every candidate)."""
    celery_drain()
    summary = refit.campaign_refit(campaign_id=campaign.id)
    ids = list(Candidate.objects.filter(synset__in=campaign.synsets.all()).values_list("id", flat=True))
    if summary.source == "none" and ids:
        consensus.candidates_update(candidate_ids=ids)
    return summary


# ---------------------------------------------------------------------------------------------- report
def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def _majority(campaign: Campaign, candidate_ids: list[int]) -> dict[int, bool | None]:
    """Plain majority of every real vote (ties count as absent, as annotation.consensus.majority does);
    None for a candidate without votes."""
    yes, total = Counter(), Counter()
    rows = Vote.objects.filter(candidate_id__in=candidate_ids, hit__campaign=campaign, is_gold=False, answer__lt=2)
    for candidate_id, answer in rows.values_list("candidate_id", "answer"):
        total[candidate_id] += 1
        yes[candidate_id] += answer
    return {c: (yes[c] * 2 > total[c]) if total[c] else None for c in candidate_ids}


def simulation_report(*, campaign: Campaign, log: RunLog | None = None, policy: str | None = None) -> dict:
    """Figures of a campaign against the demo ground truth (see the command's help for each)."""
    policy = policy or policy_name(campaign)
    synset_ids = demo_selectors.campaign_synset_ids(campaign)
    truth = demo_selectors.demo_truth_by_candidate(synset_ids=synset_ids)
    gold = set(GoldItem.objects.filter(candidate_id__in=list(truth)).values_list("candidate_id", flat=True))
    rows = list(
        Candidate.objects.filter(id__in=[c for c in truth if c not in gold]).values_list(
            "id", "synset_id", "state", "votes_count"
        )
    )
    votes_real = {
        c: n for c, n in Vote.objects.filter(candidate_id__in=[r[0] for r in rows], is_gold=False, answer__lt=2)
        .values_list("candidate_id").annotate(n=Count("id")).values_list("candidate_id", "n")
    }  # fmt: skip
    fixed = policy.startswith("fixed")
    majority = _majority(campaign, [r[0] for r in rows]) if fixed else {}
    per: dict[int, Counter] = defaultdict(Counter)
    for candidate_id, synset_id, state, _ in rows:
        positive = truth[candidate_id].positive
        if fixed:
            label = majority[candidate_id]
            state = "unvoted" if label is None else ("accepted" if label else "rejected")
        c = per[synset_id]
        c["candidates"] += 1
        c["positives"] += positive
        c[state] += 1
        c["votes"] += votes_real.get(candidate_id, 0)
        if state == "accepted":
            c["true_accepts"] += positive
            c["accepted_votes"] += votes_real.get(candidate_id, 0)
        if state == "rejected":
            c["true_rejects"] += not positive
    wnid = {s: f"n{s:08d}" for s in synset_ids}
    synsets = {wnid[s]: _figures(per[s]) for s in sorted(per)}
    overall = _figures(sum(per.values(), Counter()))
    hits = Hit.objects.filter(campaign=campaign, status=Hit.Status.SUBMITTED).count()
    gold_answers = Vote.objects.filter(hit__campaign=campaign, is_gold=True).count()
    report = {
        "campaign": campaign.id,
        "policy": policy,
        "settings": {k: getattr(campaign, k) for k in POLICY_FIELDS},
        "overall": overall,
        "synsets": synsets,
        "hits": hits,
        "gold_answers": gold_answers,
        "cost": str(campaign.reward_per_hit * hits),
        "model_version": campaign.model_version,
    }
    if log is not None:
        report.update(_crowd_figures(campaign, log, overall))
    return report


def _figures(c: Counter) -> dict:
    accepted, decided = c["accepted"], c["accepted"] + c["rejected"]
    return {
        "candidates": c["candidates"],
        "positives": c["positives"],
        "accepted": accepted,
        "rejected": c["rejected"],
        "unresolved": c["unresolved"],
        "open": c["new"] + c["voting"] + c["unvoted"],
        "precision": _ratio(c["true_accepts"], accepted),
        "recall": _ratio(c["true_accepts"], c["positives"]),
        "rejection_precision": _ratio(c["true_rejects"], c["rejected"]),
        "accuracy_of_decided": _ratio(c["true_accepts"] + c["true_rejects"], decided),
        "votes": c["votes"],
        "votes_per_candidate": _ratio(c["votes"], c["candidates"]),
        "votes_per_accepted_image": _ratio(c["votes"], accepted),
        "mean_votes_of_accepted": _ratio(c["accepted_votes"], accepted),
    }


def _crowd_figures(campaign: Campaign, log: RunLog, overall: dict) -> dict:
    users = dict(User.objects.filter(username__in=[w.username for w in log.workers]).values_list("username", "id"))
    blocked_ids = set(
        Qualification.objects.filter(campaign=campaign, status=Qualification.Status.BLOCKED).values_list(
            "worker_id", flat=True
        )
    ) | set(WorkerProfile.objects.filter(blocked=True, user_id__in=users.values()).values_list("user_id", flat=True))
    reasons = dict(WorkerProfile.objects.filter(user_id__in=users.values()).values_list("user_id", "blocked_reason"))
    bad_kinds = (*SPAMMERS, "adversarial")
    spam, honest = [], []
    for w in log.workers:
        blocked = users.get(w.username) in blocked_ids or w.blocked_after is not None
        after = w.blocked_after if w.blocked_after is not None else (w.hits if blocked else None)
        entry = {"worker": w.username, "kind": w.kind, "hits": w.hits, "quiz": w.quiz, "blocked": blocked,
                 "blocked_after_hits": after, "reason": reasons.get(users.get(w.username), ""),
                 "stopped": w.stopped, "true_rates": w.true_rates(),
                 "traits": (round(w.sensitivity, 3), round(w.specificity, 3))}  # fmt: skip
        (spam if w.kind in bad_kinds else honest).append(entry)
    caught = [s for s in spam if s["blocked"]]
    kept_out = [s for s in spam if s["quiz"] == "failed"]
    stopped = [s["blocked_after_hits"] if s["blocked"] else 0 for s in caught + kept_out]
    worked = [s for s in spam if s["quiz"] == "passed"]
    ms_total = sum(w.ms_total for w in log.workers)
    labelled = overall["accepted"] + overall["rejected"]
    minutes = log.wall_seconds / 60
    return {
        "workers": dict(Counter(w.kind for w in log.workers)),
        "simulated_worker_hours": round(ms_total / 3_600_000, 3),
        "simulated_hours_elapsed": round(log.simulated_seconds / 3600, 3),
        "wall_seconds": round(log.wall_seconds, 2),
        "throughput": {
            "hits_per_wall_minute": round(log.hits / minutes, 1) if minutes else None,
            "labels_per_wall_minute": round(labelled / minutes, 1) if minutes else None,
            "labels_per_simulated_hour": round(labelled / (log.simulated_seconds / 3600), 1)
            if log.simulated_seconds
            else None,
        },
        "spammers": {
            "total": len(spam),
            "failed_quiz": len(kept_out),
            "passed_quiz": len(worked),
            "blocked": len(caught),
            "not_stopped": [s["worker"] for s in spam if not s["blocked"] and s["quiz"] != "failed"],
            "hits_before_block": sorted(s["blocked_after_hits"] for s in caught),
            "median_hits_before_block": statistics.median([s["blocked_after_hits"] for s in caught])
            if caught
            else None,
            "median_hits_before_stopped": statistics.median(stopped) if stopped else None,
            "max_hits_before_block": max((s["blocked_after_hits"] for s in caught), default=None),
            "hits_by_spammers": sum(s["hits"] for s in spam),
            "by_kind": {
                kind: _kind_figures([s for s in spam if s["kind"] == kind])
                for kind in sorted({s["kind"] for s in spam})
            },
            "block_reasons": dict(Counter(s["reason"].split(" (")[0] for s in caught if s["reason"])),
        },
        "honest": {
            "total": len(honest),
            "failed_quiz": sum(1 for h in honest if h["quiz"] == "failed"),
            # Why those who passed the quiz stopped ("had enough": their appetite; "no work": the server had
            # nothing for them NO_WORK_TRIES times in a row; "budget": the run's HIT budget), and their HITs.
            "stopped": dict(Counter(h["stopped"] or "still working" for h in honest if h["quiz"] == "passed")),
            "hits": sum(h["hits"] for h in honest),
            "false_blocks": [h["worker"] for h in honest if h["blocked"]],
            "false_block_reasons": [h["reason"] for h in honest if h["blocked"]],
            # Whom the campaign's accuracy bar (Campaign.min_worker_accuracy) blocked, and at what true
            # accuracy: the one that counts against the bar is the lower of sensitivity and specificity.
            "blocked_detail": [_honest_detail(h) for h in honest if h["blocked"]],
            "by_true_accuracy": _accuracy_bands([h for h in honest if h["hits"]]),
        },
        "throttled_requests": log.throttled,
        "errors": log.errors[:10],
    }


def _honest_detail(h: dict) -> dict:
    se, sp = h["true_rates"]
    return {"worker": h["worker"], "kind": h["kind"], "hits": h["hits"], "blocked_after_hits": h["blocked_after_hits"],
            "true_sensitivity": _round(se), "true_specificity": _round(sp), "traits": h["traits"],
            "reason": h["reason"]}  # fmt: skip


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


ACCURACY_BANDS = (0.55, 0.6, 0.65, 0.7, 0.75, 0.8)


def _accuracy_bands(honest: list[dict]) -> dict[str, list[int]]:
    """Honest workers who did a HIT, by their true accuracy on the items they answered (the lower of
    sensitivity and specificity, as the accuracy bar reads it), in bands: [workers, blocked]."""
    bands: dict[str, list[int]] = {}
    edges = (0.0, *ACCURACY_BANDS, 1.01)
    for h in honest:
        rates = [r for r in h["true_rates"] if r is not None]
        if not rates:
            continue
        low = min(rates)
        i = next(i for i in range(len(edges) - 1) if edges[i] <= low < edges[i + 1])
        name = f"<{edges[1]:.2f}" if i == 0 else (f">={edges[i]:.2f}" if i == len(edges) - 2 else
                                                   f"{edges[i]:.2f}-{edges[i + 1]:.2f}")  # fmt: skip
        band = bands.setdefault(name, [0, 0])
        band[0] += 1
        band[1] += int(h["blocked"])
    return dict(sorted(bands.items(), key=lambda kv: kv[0].lstrip("<>=")))


def _kind_figures(rows: list[dict]) -> dict:
    """One spammer kind: how many passed the quiz, were blocked and after how many HITs, and the ones never
    blocked with the HITs they did (their ``stopped`` says why they stopped: no work, the budget...)."""
    caught = sorted(s["blocked_after_hits"] for s in rows if s["blocked"])
    free = [s for s in rows if not s["blocked"] and s["quiz"] != "failed"]
    return {
        "total": len(rows),
        "failed_quiz": sum(1 for s in rows if s["quiz"] == "failed"),
        "passed_quiz": sum(1 for s in rows if s["quiz"] == "passed"),
        "blocked": len(caught),
        "blocked_after_hits": caught,
        "median_hits_before_block": statistics.median(caught) if caught else None,
        "max_hits_before_block": max(caught, default=None),
        "not_stopped": len(free),
        "not_stopped_hits": sorted((s["hits"], s["stopped"]) for s in free),
    }


# ---------------------------------------------------------------------------------------------- run
@dataclass
class SimulationOptions:
    workers: int = 200
    mix: str = "reliable:0.6,noisy:0.25,spammer:0.1,adversarial:0.05"
    seed: int = 1
    max_hits: int | None = None
    concurrency: int = 16
    pace: float = 0.0
    prefix: str = ""
    spammers_first: bool = False  # spammers arrive first and work until stopped (simulator/runner.py)
    arrivals_seconds: float = 3600.0  # workers arrive uniformly over this many simulated seconds


def simulation_repeatable() -> None:
    """Make this process's in-process server repeat a seeded run (simulate_crowd --repeatable): Celery tasks
    run eagerly inside the requests (a worker process would settle consensus at its own pace), and the
    scheduler reads the synsets' accepted counts on every lease (its per-process cache of
    hits.NEED_CACHE_SECONDS refreshes by wall-clock time, so which lease saw which count would vary). With one
    client the server then sees the same requests in the same order, and its own draws are seeded
    (annotation/services/draws.py) by ids that a fresh database hands out the same way."""
    from annotation.services import hits
    from config.celery import eager_set

    eager_set(True)
    hits.NEED_CACHE_SECONDS = 0.0


def simulate(*, campaign: Campaign, options: SimulationOptions, base_url: str | None = None, progress=None,
             stop=None) -> dict:  # fmt: skip
    """Run a simulated crowd on a running campaign (against ``base_url`` or an in-process server), settle
    it with a final refit and return the report."""
    from annotation.simulator.workers import crowd_make

    crowd = crowd_make(options.workers, options.mix, seed=options.seed)
    prefix = options.prefix or f"sim{campaign.id}s{options.seed}-{int(time.time()) % 100000}"
    accounts = simulation_accounts(crowd=crowd, prefix=prefix)
    oracle_map = demo_selectors.demo_oracle(campaign=campaign)

    def oracle(wnid: str, path: str):
        return oracle_map.get((wnid, path))

    kwargs = {
        "campaign_id": campaign.id, "accounts": accounts, "oracle": oracle, "concurrency": options.concurrency,
        "max_hits": options.max_hits, "pace": options.pace, "seed": options.seed, "progress": progress, "stop": stop,
        "spammers_first": options.spammers_first, "arrivals_seconds": options.arrivals_seconds,
    }  # fmt: skip
    if base_url:
        log = run_crowd(base_url=base_url, **kwargs)
    else:
        if connection.vendor == "sqlite":
            # SQLite takes one writer at a time and eager Celery refits inside requests: more clients only
            # queue on the lock (up to its 20 s timeout, then 500s).
            kwargs["concurrency"] = min(options.concurrency, SQLITE_CONCURRENCY)
        with live_server() as url:
            log = run_crowd(base_url=url, **kwargs)
    campaign.refresh_from_db()
    campaign_settle(campaign=campaign)
    campaign.refresh_from_db()
    return simulation_report(campaign=campaign, log=log)


# ---------------------------------------------------------------------------------------------- compare
@transaction.atomic
def simulation_undo(*, campaign: Campaign, prefix: str) -> None:
    """Take a campaign back to before a simulation whose accounts are named ``<prefix>-…``: the accounts go
    (with their HITs, votes, quizzes, payments and dashboard rows), every candidate of the campaign's synsets
    is new again, counters and the model start over. Refused when anyone else has worked on the campaign —
    this is for comparing policies on one crowd, never for a campaign with real work."""
    from annotation.models import ActivityBucket, SynsetActivity

    sim_users = User.objects.filter(username__startswith=f"{prefix}-")
    if Hit.objects.filter(campaign=campaign).exclude(worker__in=sim_users).exists():
        raise ValueError(f"Campaign {campaign.id} has HITs from people other than the simulation; not undoing it.")
    sim_users.delete()
    ActivityBucket.objects.filter(campaign=campaign).delete()
    SynsetActivity.objects.filter(campaign=campaign).delete()
    Candidate.objects.filter(synset__in=campaign.synsets.all()).update(
        state=Candidate.State.NEW, votes_count=0, yes_count=0, pending_count=0, posterior=None, priority=0.0,
        model_version="",
    )  # fmt: skip
    campaign.campaign_synsets.update(votes=0, accepted=0, rejected=0, unresolved=0)
    Campaign.objects.filter(id=campaign.id).update(prior_present=0.5, votes_at_refit=0, model_version="", refitted=None)
    consensus.pooled_confusion_forget(campaign_id=campaign.id)


def simulate_compare(*, campaign: Campaign, policies: list[dict], names: list[str], options: SimulationOptions,
                     base_url: str | None = None, progress=None, stop=None) -> dict:  # fmt: skip
    """The same seeded crowd on the same campaign under each policy in turn (the campaign is taken back
    to its start between runs with simulation_undo; the last policy's labels stay). The campaign must
    have no HITs yet. Returns {"policies": {name: report}, "votes_ratio": {name: votes / first's votes}}."""
    if Hit.objects.filter(campaign=campaign).exists():
        raise ValueError(f"Campaign {campaign.id} already has HITs; compare policies on a fresh demo campaign.")
    stamp = options.prefix or f"cmp{campaign.id}s{options.seed}-{int(time.time()) % 100000}"
    reports = {}
    for i, (name, policy) in enumerate(zip(names, policies, strict=True)):
        campaign = campaign_policy_set(campaign=campaign, policy={**ADAPTIVE_POLICY, **policy})
        prefix = f"{stamp}{name.replace(':', '')}"
        run = dataclasses.replace(options, prefix=prefix)
        reports[name] = simulate(campaign=campaign, options=run, base_url=base_url, progress=progress, stop=stop)
        if i < len(policies) - 1:
            simulation_undo(campaign=campaign, prefix=prefix)
            campaign.refresh_from_db()
    first = reports[names[0]]["overall"]["votes"]
    return {
        "policies": reports,
        "votes_ratio": {n: _ratio(r["overall"]["votes"], first) for n, r in reports.items()},
    }
