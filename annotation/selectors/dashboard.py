"""Reads of the researcher dashboard. Every panel reads rollups and counters only (ActivityBucket,
CampaignWorker, SynsetActivity, CampaignSynset, WorkerProfile), never the vote table; the synset inspection
reads one synset's candidates through their (synset, state) index.

Sizes per call for a campaign of 1,000 synsets and 10^7 votes: ≤ 60 minute or ~720 hour buckets, ≤ 1,000
synset rows (plus their ancestors in the closure), one row per worker.
"""

import hashlib
import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, F, Func, Max, Min, OuterRef, Q, QuerySet, Sum, Value
from django.utils import timezone

from annotation.consensus import fit_imagenet_table
from annotation.consensus.item_effect import look_alike_share
from annotation.models import (
    ActivityBucket,
    AuditJudgement,
    Box,
    BoxJob,
    Campaign,
    CampaignSynset,
    CampaignWorker,
    Candidate,
    DecisionOverride,
    GoldItem,
    SynsetActivity,
)
from annotation.selectors.boxes import box_job_summary
from annotation.selectors.images import image_urls
from annotation.services.campaigns import TRANSITIONS
from annotation.stats import wilson
from taxonomy.models import Synset, SynsetClosure, SynsetEdge, wnid_from_offset
from workers.models import Qualification, WorkerProfile
from workers.roles import Role
from workers.services import user_has_role

OPEN_STATES = [Candidate.State.NEW, Candidate.State.VOTING]
WINDOWS = {
    "hour": (ActivityBucket.Span.MINUTE, timedelta(hours=1)),
    "day": (ActivityBucket.Span.HOUR, timedelta(days=1)),
}
MAX_POINTS = 168  # the whole-campaign chart groups hours so that it never has more points than this
HISTOGRAM_BINS = 10
CENT = Decimal("0.01")


# ---- Access ---------------------------------------------------------------------------------------------


def campaigns_visible(*, user: User) -> QuerySet[Campaign]:
    """Admins see every campaign, researchers their own, everyone else none."""
    if user_has_role(user, Role.ADMIN):
        return Campaign.objects.all()
    if user_has_role(user, Role.RESEARCHER):
        return Campaign.objects.filter(owner=user)
    return Campaign.objects.none()


def campaign_list(*, user: User) -> list[dict]:
    campaigns = campaigns_visible(user=user).select_related("owner").order_by("-id")
    totals = {
        row["campaign_id"]: row
        for row in CampaignSynset.objects.filter(campaign__in=campaigns)
        .values("campaign_id")
        .annotate(accepted=Sum("accepted"), votes=Sum("votes"), synsets=Count("id"))
        .order_by()
    }
    answers = dict(
        CampaignWorker.objects.filter(campaign__in=campaigns)
        .values("campaign_id")
        .annotate(n=Sum("answers"))
        .order_by()
        .values_list("campaign_id", "n")
    )
    return [
        {
            "id": c.id,
            "name": c.name,
            "state": c.state,
            "owner": c.owner.username,
            "created": c.created,
            "synsets": totals.get(c.id, {}).get("synsets") or 0,
            "accepted": totals.get(c.id, {}).get("accepted") or 0,
            "target": (totals.get(c.id, {}).get("synsets") or 0) * c.target_per_synset,
            "votes": totals.get(c.id, {}).get("votes") or 0,  # consensus votes: gold answers aside
            "answers": answers.get(c.id) or 0,  # every answer, as the dashboard's headline counts them
        }
        for c in campaigns
    ]


# ---- Throughput -----------------------------------------------------------------------------------------


def _series(buckets: list[tuple[datetime, int, int, int]], starts: list[datetime], group: int, seconds: int) -> dict:
    """Zero-filled series over ``starts`` (bucket starts), ``group`` buckets per point."""
    by_start = {start: (answers, hits, workers) for start, answers, hits, workers in buckets}
    labels, answers_pm, hits_ph, workers = [], [], [], []
    for i in range(0, len(starts), group):
        chunk = [by_start.get(s, (0, 0, 0)) for s in starts[i : i + group]]
        span_seconds = seconds * len(chunk)
        labels.append(starts[i].isoformat())
        answers_pm.append(round(sum(c[0] for c in chunk) * 60 / span_seconds, 3))
        hits_ph.append(round(sum(c[1] for c in chunk) * 3600 / span_seconds, 3))
        workers.append(max(c[2] for c in chunk))
    return {"labels": labels, "answers_per_minute": answers_pm, "hits_per_hour": hits_ph, "active_workers": workers}


def throughput(*, campaign: Campaign, window: str, now: datetime | None = None) -> dict:
    """Answers per minute, HITs per hour and active workers over the last hour (one point a minute), the
    last day (one point an hour) or the whole campaign (hours, grouped to at most MAX_POINTS points; the
    worker figure of a group is its busiest hour's)."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    if window in WINDOWS:
        span, length = WINDOWS[window]
        step = timedelta(minutes=1) if span == ActivityBucket.Span.MINUTE else timedelta(hours=1)
        last = now if span == ActivityBucket.Span.MINUTE else now.replace(minute=0)
        count = int(length / step)
        first = last - step * (count - 1)
    else:
        span, step = ActivityBucket.Span.HOUR, timedelta(hours=1)
        last = now.replace(minute=0)
        first_bucket = (
            ActivityBucket.objects.filter(campaign=campaign, span=span).order_by("start").values_list("start").first()
        )
        first = min(first_bucket[0], last) if first_bucket else last
        count = int((last - first) / step) + 1
    rows = list(
        ActivityBucket.objects.filter(campaign=campaign, span=span, start__gte=first, start__lte=last)
        .order_by("start")
        .values_list("start", "answers", "hits", "workers")
    )
    starts = [first + step * i for i in range(count)]
    group = max(1, -(-count // MAX_POINTS))
    series = _series(rows, starts, group, int(step.total_seconds()))
    window_seconds = count * step.total_seconds()
    answers = sum(r[1] for r in rows)
    hits = sum(r[2] for r in rows)
    since = first if window in WINDOWS else None
    workers = CampaignWorker.objects.filter(campaign=campaign)
    if since is not None:
        workers = workers.filter(last_seen__gte=since)
    return {
        "window": window if window in WINDOWS else "all",
        "bucket_seconds": int(step.total_seconds()) * group,
        **series,
        "totals": {
            "answers": answers,
            "hits": hits,
            "answers_per_minute": round(answers * 60 / window_seconds, 3),
            "hits_per_hour": round(hits * 3600 / window_seconds, 3),
            "active_workers": workers.count(),
        },
    }


def _recent_answer_rate(campaign: Campaign, now: datetime) -> tuple[float, int]:
    """Answers per minute over the last hour, from the minute buckets, and the minutes that rate is over: fewer
    than 60 when the campaign's first answer came less than an hour ago (a campaign six minutes old did not
    spend the 54 minutes before it idle; counting them made its time to finish ten times too long)."""
    last = now.replace(second=0, microsecond=0)
    minutes = ActivityBucket.objects.filter(campaign=campaign, span=ActivityBucket.Span.MINUTE)
    first = minutes.order_by("start").values_list("start", flat=True).first()
    if first is None:
        return 0.0, 60
    since = max(last - timedelta(minutes=59), first)
    span = max(1, min(60, int((last - since) / timedelta(minutes=1)) + 1))
    total = minutes.filter(start__gte=since).aggregate(n=Sum("answers"))["n"]
    return (total or 0) / span, span


# ---- Progress -------------------------------------------------------------------------------------------


@dataclass
class SynsetRow:
    synset_id: int
    name: str
    words: str
    accepted: int
    rejected: int
    unresolved: int
    votes: int
    answers: int
    hits: int
    yes: int
    candidates: int
    open_candidates: int
    gold: int
    has_open: bool
    last_answer_at: datetime | None
    precision: float | None
    look_alikes: float | None = None


def _look_alikes(item_kinds: dict | None) -> float | None:
    """From the last refit (CampaignSynset.item_kinds): the share of the synset's negatives that fool workers
    more than the campaign's average negative does; None before the first refit."""
    if not item_kinds:
        return None
    return look_alike_share(item_kinds["shifts"], item_kinds["absent"])


def _synset_rows(campaign: Campaign, *, live_open: bool = True) -> list[SynsetRow]:
    activity = {
        a["synset_id"]: a
        for a in SynsetActivity.objects.filter(campaign=campaign).values(
            "synset_id", "answers", "hits", "yes", "candidates", "open_candidates", "gold", "last_answer_at",
            "accepted_counted", "accepted_posterior_sum",
        )
    }  # fmt: skip
    has_open = Candidate.objects.filter(synset_id=OuterRef("synset_id"), state__in=OPEN_STATES, gold__isnull=True)
    rows = (
        CampaignSynset.objects.filter(campaign=campaign)
        .annotate(has_open=Exists(has_open) if live_open else Value(True))
        .values_list(
            "synset_id",
            "synset__name",
            "synset__words",
            "accepted",
            "rejected",
            "unresolved",
            "votes",
            "has_open",
            "item_kinds",
        )
        .order_by("synset_id")
    )
    result = []
    for synset_id, name, words, accepted, rejected, unresolved, votes, open_, item_kinds in rows:
        a = activity.get(synset_id, {})
        counted = a.get("accepted_counted") or 0
        result.append(
            SynsetRow(
                synset_id,
                name,
                words,
                accepted,
                rejected,
                unresolved,
                votes,
                a.get("answers", 0),
                a.get("hits", 0),
                a.get("yes", 0),
                a.get("candidates", 0),
                a.get("open_candidates", 0),
                a.get("gold", 0),
                open_,
                a.get("last_answer_at"),
                (a["accepted_posterior_sum"] / counted) if counted else None,
                _look_alikes(item_kinds),
            )
        )
    return result


def _eta(remaining_answers: float, unknown: int, starved: int, rate: float, span: int = 60) -> tuple[float | None, str]:
    """Minutes to finish at the current answer rate, or None with the reason it cannot be told."""
    if unknown:
        if unknown == 1:
            return None, "1 synset has no accepted image yet to estimate its yield"
        return None, f"{unknown} synsets have no accepted image yet to estimate their yield"
    if remaining_answers <= 0:
        return 0.0, "every synset has reached its target"
    if starved:
        return None, f"{starved} synset{'s have' if starved > 1 else ' has'} no candidates left; add images to finish"
    if rate <= 0:
        return None, "no answers in the last hour"
    if span < 60:
        return round(remaining_answers / rate, 1), f"at the answer rate of the {span} minutes since the first answer"
    return round(remaining_answers / rate, 1), "at the last hour's answer rate"


PROGRESS_SORTS = ("behind", "hardest", "flags", "precision", "audit")


def _progress_key(row: dict, sort: str) -> tuple:
    """``behind``: furthest behind the target first; ``hardest``: the largest unresolved share, then the most
    votes per decision; ``flags``: starved and stuck first, then furthest behind; ``precision``: the lowest
    estimated precision first (none yet last); ``audit``: over-confident first, then the lowest audited
    precision, the most judged first among equals (none judged last). Ties by wnid, so that pages neither
    overlap nor skip."""
    behind = row["accepted"] / row["target"] if row["target"] else 1.0
    if sort == "hardest":
        return -(row["unresolved_share"] or 0), -(row["votes_per_decision"] or 0), row["wnid"]
    if sort == "flags":
        return -(row["starved"] + row["stuck"]), behind, row["wnid"]
    if sort == "precision":
        return 2 if row["precision"] is None else row["precision"], row["wnid"]
    if sort == "audit":
        audit = row["audit"]
        if audit is None:
            return 1, 2, 0, row["wnid"]
        return 0 if row["overconfident"] else 1, audit["precision"], -audit["judged"], row["wnid"]
    return behind, row["wnid"]


def _audits_by_synset(campaign: Campaign) -> dict[int, dict]:
    """Per synset of the campaign with verdicts: judged, judged right, the sampled precision with its 95%
    Wilson interval and the model's estimate for the same images (as ``audit_summary``, one grouped query)."""
    rows = (
        AuditJudgement.objects.filter(
            synset_id__in=CampaignSynset.objects.filter(campaign=campaign).values("synset_id")
        )
        .values("synset_id")
        .annotate(
            n=Count("id"), right=Count("id", filter=Q(correct=True)), mass=Sum("posterior"), weighed=Count("posterior")
        )
        .values_list("synset_id", "n", "right", "mass", "weighed")
    )
    return {synset_id: _audit_figures(n, right, mass, weighed) for synset_id, n, right, mass, weighed in rows}


def _audit_figures(n: int, right: int, mass: float | None, weighed: int) -> dict:
    """From verdict counts (judged, judged right) and the posteriors recorded with them (sum, how many)."""
    return {
        "judged": n,
        "correct": right,
        "precision": round(right / n, 4) if n else None,
        "wilson95": wilson(right, n),
        "model_estimate": round(mass / weighed, 4) if weighed else None,
    }


def _overconfident(audit: dict | None) -> bool:
    """The audit's 95% interval lies below the model's estimate for the images it judged: the posteriors
    promise more than the researchers' own verdicts found (the synset page's sentence, as a flag)."""
    return bool(audit and audit["model_estimate"] is not None and audit["model_estimate"] > audit["wilson95"][1])


def progress(
    *,
    campaign: Campaign,
    now: datetime | None = None,
    query: str = "",
    sort: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> dict:
    """Per synset: candidates, accepted, rejected, unresolved against the target; flags for starved (no
    open candidates left), stuck (open candidates but no answer for DASHBOARD_STUCK_MINUTES — counted from
    the campaign's last start or resume at the earliest — while the campaign is busy elsewhere) and short
    (too few candidates left to reach the target); the answers still needed at the synset's own yield
    (accepted per answer; the campaign's until it has one) and the time to finish at the last hour's
    answer rate; the precision audit's figures (None before a verdict) and the ``overconfident`` flag when
    its interval lies below the model's estimate.

    Totals are over every synset. ``synsets`` lists those whose name, words or wnid contain ``query`` (any
    case), in the order ``sort`` names (PROGRESS_SORTS; by wnid without one), ``limit`` of them from
    ``offset`` (all without a limit); ``matched`` counts them before the page is cut. A campaign of 20,000
    synsets answered 7.7 MB of JSON per poll in full."""
    now = now or timezone.now()
    rows = _synset_rows(campaign)
    target = campaign.target_per_synset
    total_answers = sum(r.answers for r in rows)
    total_accepted = sum(r.accepted for r in rows)
    campaign_yield = total_accepted / total_answers if total_answers else None
    rate, rate_minutes = _recent_answer_rate(campaign, now)
    stuck_before = now - timedelta(minutes=settings.DASHBOARD_STUCK_MINUTES)
    busy = rate > 0
    audits = _audits_by_synset(campaign)
    synsets, remaining_total, unknown = [], 0.0, 0
    for r in rows:
        missing = max(0, target - r.accepted)
        own_yield = r.accepted / r.answers if r.accepted and r.answers else None  # overrides accept without answers
        per_answer = own_yield or campaign_yield
        needed = missing / per_answer if (missing and per_answer) else (0.0 if not missing else None)
        if needed is not None:
            remaining_total += needed
        else:
            unknown += 1
        decided = r.accepted + r.rejected + r.unresolved
        # Quiet since its last answer, or since the campaign (re)started when that is later: a synset is not
        # stuck minutes after the start only because nobody has reached it yet.
        quiet_since = max((t for t in (r.last_answer_at, campaign.running_since) if t is not None), default=None)
        idle = quiet_since is None or quiet_since < stuck_before
        audit = audits.get(r.synset_id)
        synsets.append(
            {
                "wnid": wnid_from_offset(r.synset_id),
                "name": r.name,
                "words": r.words,
                "target": target,
                "candidates": r.candidates,
                "open": r.open_candidates,
                "gold": r.gold,
                "accepted": r.accepted,
                "rejected": r.rejected,
                "unresolved": r.unresolved,
                "votes": r.votes,
                "answers": r.answers,
                "done": missing == 0,
                "starved": missing > 0 and not r.has_open,
                "stuck": missing > 0 and r.has_open and busy and idle and campaign.state == Campaign.State.RUNNING,
                "short": missing > 0 and r.candidates > 0 and r.accepted + r.open_candidates < target,
                "unresolved_share": round(r.unresolved / decided, 4) if decided else None,
                "votes_per_decision": round(r.votes / decided, 3) if decided else None,
                "precision": round(r.precision, 4) if r.precision is not None else None,
                "look_alikes": round(r.look_alikes, 3) if r.look_alikes is not None else None,
                "answers_needed": round(needed) if needed is not None else None,
                "audit": audit,
                "overconfident": _overconfident(audit),
                "last_answer_at": r.last_answer_at,
            }
        )
    eta_minutes, eta_note = _eta(remaining_total, unknown, sum(s["starved"] for s in synsets), rate, rate_minutes)
    needle = query.strip().lower()
    shown = (
        [
            s
            for s in synsets
            if needle in s["name"].lower() or needle in s["wnid"] or needle in (s["words"] or "").lower()
        ]
        if needle
        else synsets
    )
    if sort:
        shown = sorted(shown, key=lambda row: _progress_key(row, sort))
    return {
        "target_per_synset": target,
        "answers_per_minute": round(rate, 3),
        "totals": {
            "synsets": len(rows),
            "target": target * len(rows),
            "candidates": sum(r.candidates for r in rows),
            "accepted": total_accepted,
            "accepted_capped": sum(min(r.accepted, target) for r in rows),
            "rejected": sum(r.rejected for r in rows),
            "unresolved": sum(r.unresolved for r in rows),
            "votes": sum(r.votes for r in rows),
            "done": sum(s["done"] for s in synsets),
            "starved": sum(s["starved"] for s in synsets),
            "stuck": sum(s["stuck"] for s in synsets),
            "audited": len(audits),
            "overconfident": sum(s["overconfident"] for s in synsets),
            # Unknown while a synset has no yield to estimate it by (not 0: that would read as "nothing left").
            "answers_needed": round(remaining_total) if not unknown else None,
            "eta_minutes": eta_minutes,
            "eta_note": eta_note,
        },
        "matched": len(shown),
        "synsets": shown[offset : offset + limit] if limit is not None else shown[offset:],
    }


def tree(*, campaign: Campaign) -> dict:
    """Progress rolled up the taxonomy: every ancestor of the campaign's synsets (through the closure) with
    the sums over the campaign synsets below it, and its parents among these nodes, so that a page can draw
    the DAG as a tree. Campaign synsets are nodes too (``member``)."""
    stats = {
        row[0]: row[1:]
        for row in CampaignSynset.objects.filter(campaign=campaign).values_list(
            "synset_id", "accepted", "rejected", "unresolved", "votes"
        )
    }
    candidates = dict(SynsetActivity.objects.filter(campaign=campaign).values_list("synset_id", "candidates"))
    target = campaign.target_per_synset
    sums: dict[int, list[int]] = {}

    def add(node: int, member: int) -> None:
        accepted, rejected, unresolved, votes = stats[member]
        row = sums.setdefault(node, [0, 0, 0, 0, 0, 0, 0])
        for i, v in enumerate(
            (1, min(accepted, target), accepted, rejected, unresolved, votes, candidates.get(member, 0))
        ):
            row[i] += v

    for member in stats:
        add(member, member)
    members = CampaignSynset.objects.filter(campaign=campaign).values("synset_id")
    for ancestor_id, descendant_id in SynsetClosure.objects.filter(descendant_id__in=members).values_list(
        "ancestor_id", "descendant_id"
    ):
        add(ancestor_id, descendant_id)
    # Names, depths and is-a links of the nodes by their ids (one array parameter on PostgreSQL). A subquery
    # "id IN (members) OR id IN (their ancestors)" was planned, on tables never ANALYZEd, as a SubPlan run for
    # each of the 82,115 synsets over the closure: the panel never loaded (QA: over 10 minutes, 8 synsets).
    node_ids = sorted(sums)
    synsets, depth = {}, {}
    parents: dict[int, list[str]] = {}
    step = len(node_ids) if connection.vendor == "postgresql" else 5000  # SQLite's limit on parameters
    for start in range(0, len(node_ids), max(step, 1)):
        chunk = node_ids[start : start + step]
        for synset_id, name, synset_depth in Synset.objects.filter(id__any=chunk).values_list("id", "name", "depth"):
            synsets[synset_id], depth[synset_id] = name, synset_depth
        for parent_id, child_id in SynsetEdge.objects.filter(child_id__any=chunk).values_list("parent_id", "child_id"):
            if parent_id in sums:
                parents.setdefault(child_id, []).append(wnid_from_offset(parent_id))
    nodes = []
    for node, (count, capped, accepted, rejected, unresolved, votes, cands) in sums.items():
        nodes.append(
            {
                "wnid": wnid_from_offset(node),
                "name": synsets.get(node, ""),
                "depth": depth.get(node, 0),
                "member": node in stats,
                "parents": sorted(parents.get(node, [])),
                "synsets": count,
                "target": count * target,
                "accepted": accepted,
                "rejected": rejected,
                "unresolved": unresolved,
                "votes": votes,
                "candidates": cands,
                "progress": round(capped / (count * target), 4),
            }
        )
    nodes.sort(key=lambda n: (n["depth"], n["wnid"]))
    return {"nodes": nodes}


# ---- Quality --------------------------------------------------------------------------------------------


def _histogram(values: list[float]) -> list[int]:
    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    return [int(c) for c in counts]


def quality(*, campaign: Campaign, with_synsets: bool = True) -> dict:
    """Estimated precision per synset (mean posterior of its accepted candidates, at the last recount; left
    out without ``with_synsets``: 2 MB of JSON at 20,000 synsets), the distribution of workers' accuracy on gold
    and of their agreement with consensus, and the workers blocked in this campaign (automatically as
    spammers, or by a person)."""
    mass = sum(
        a for a in SynsetActivity.objects.filter(campaign=campaign).values_list("accepted_posterior_sum", flat=True)
    )
    counted = SynsetActivity.objects.filter(campaign=campaign).aggregate(n=Sum("accepted_counted"))["n"] or 0
    workers = list(
        CampaignWorker.objects.filter(campaign=campaign).values_list("worker_id", "gold_answered", "gold_correct")
    )
    gold_answered = sum(w[1] for w in workers)
    gold_correct = sum(w[2] for w in workers)
    accuracies = [c / a for _, a, c in workers if a]
    agreement = [
        a for a in WorkerProfile.objects.filter(
            user_id__in=CampaignWorker.objects.filter(campaign=campaign).values("worker_id")
        ).values_list("agreement", flat=True)
        if a is not None
    ]  # fmt: skip
    blocked = (
        Qualification.objects.filter(campaign=campaign, status=Qualification.Status.BLOCKED)
        .select_related("worker")
        .order_by("worker__username")
    )
    per_worker = {w[0]: w for w in workers}
    result = {
        "precision": round(mass / counted, 4) if counted else None,
        "precision_labels": counted,  # the consensus labels the estimate is the mean posterior of
        # Researchers' own verdicts on accepted images drawn at random (synset pages): the sampled precision.
        "audit": audit_summary(synset_ids=CampaignSynset.objects.filter(campaign=campaign).values("synset_id")),
        "gold_accuracy": round(gold_correct / gold_answered, 4) if gold_answered else None,
        "gold_answered": gold_answered,
        "bins": [round(i / HISTOGRAM_BINS, 2) for i in range(HISTOGRAM_BINS + 1)],
        "gold_accuracy_histogram": _histogram(accuracies),
        "agreement_histogram": _histogram(agreement),
        "agreement_mean": round(float(np.mean(agreement)), 4) if agreement else None,
        "workers": len(workers),
        "workers_with_gold": len(accuracies),
        "blocked": [
            {
                "worker": q.worker_id,
                "username": q.worker.username,
                "reason": q.blocked_reason,
                "gold_accuracy": (
                    round(per_worker[q.worker_id][2] / per_worker[q.worker_id][1], 4)
                    if q.worker_id in per_worker and per_worker[q.worker_id][1]
                    else None
                ),
            }
            for q in blocked
        ],
    }
    if with_synsets:
        result["synsets"] = [
            {
                "wnid": wnid_from_offset(r.synset_id),
                "name": r.name,
                "accepted": r.accepted,
                "precision": round(r.precision, 4) if r.precision is not None else None,
                "yes_share": round(r.yes / r.answers, 4) if r.answers else None,
            }
            for r in _synset_rows(campaign, live_open=False)
        ]
    return result


# ---- Cost and fairness ----------------------------------------------------------------------------------


def _money(value) -> str:
    return str(Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP))


def cost(*, campaign: Campaign) -> dict:
    """What the campaign spent (its HITs' ledger amounts), per accepted image, and each worker's effective
    hourly pay: earnings divided by the time their answers took (the sum of per-item response times),
    against the PAY_FLOOR_PER_HOUR setting."""
    floor = settings.PAY_FLOOR_PER_HOUR
    rows = list(
        CampaignWorker.objects.filter(campaign=campaign)
        .select_related("worker")
        .order_by("worker_id")
        .values(
            "worker_id",
            "worker__username",
            "hits",
            "answers",
            "response_ms",
            "earned",
            "gold_answered",
            "gold_correct",
        )
    )
    profiles = {
        p["user_id"]: p
        for p in WorkerProfile.objects.filter(
            user_id__in=CampaignWorker.objects.filter(campaign=campaign).values("worker_id")
        ).values("user_id", "agreement", "blocked")
    }
    blocked_here = set(
        Qualification.objects.filter(campaign=campaign, status=Qualification.Status.BLOCKED).values_list(
            "worker_id", flat=True
        )
    )
    spent = sum((r["earned"] for r in rows), Decimal(0))
    accepted = CampaignSynset.objects.filter(campaign=campaign).aggregate(n=Sum("accepted"))["n"] or 0
    workers, rates = [], []
    floor_value = float(floor)
    for r in rows:  # floats here: 10^3-10^4 rows, shown to the cent
        hours = r["response_ms"] / 3_600_000
        hourly = float(r["earned"]) / hours if hours > 0 else None
        if hourly is not None:
            rates.append(hourly)
        profile = profiles.get(r["worker_id"], {})
        workers.append(
            {
                "worker": r["worker_id"],
                "username": r["worker__username"],
                "hits": r["hits"],
                "answers": r["answers"],
                "hours": round(hours, 4),
                "earned": f"{r['earned']:.2f}",
                "hourly_pay": f"{hourly:.2f}" if hourly is not None else None,
                "below_floor": hourly is not None and hourly < floor_value,
                "gold_accuracy": round(r["gold_correct"] / r["gold_answered"], 4) if r["gold_answered"] else None,
                "agreement": profile.get("agreement"),
                "blocked": bool(profile.get("blocked")) or r["worker_id"] in blocked_here,
                # What this campaign's block button acts on: "blocked" alone is also true when only another
                # campaign blocks the worker (their votes count nowhere then), which this campaign cannot lift.
                "blocked_here": r["worker_id"] in blocked_here,
                "_rate": hourly,
            }
        )
    workers.sort(key=lambda w: (w["_rate"] is None, w["_rate"] or 0.0, w["worker"]))
    for w in workers:
        del w["_rate"]
    return {
        "currency_per_hit": _money(campaign.reward_per_hit),
        "spent": _money(spent),
        "accepted": accepted,
        "cost_per_accepted": _money(spent / accepted) if accepted else None,
        "pay_floor_per_hour": _money(floor),
        "median_hourly_pay": f"{float(np.median(rates)):.2f}" if rates else None,
        "workers_below_floor": sum(w["below_floor"] for w in workers),
        "workers": workers,
    }


def summary(*, campaign: Campaign, now: datetime | None = None) -> dict:
    """The headline figures, cheap enough to poll every few seconds."""
    now = now or timezone.now()
    totals = CampaignSynset.objects.filter(campaign=campaign).aggregate(
        accepted=Sum("accepted"),
        rejected=Sum("rejected"),
        unresolved=Sum("unresolved"),
        votes=Sum("votes"),
        synsets=Count("id"),
    )
    work = CampaignWorker.objects.filter(campaign=campaign).aggregate(
        hits=Sum("hits"), answers=Sum("answers"), spent=Sum("earned"), workers=Count("id")
    )
    since = now.replace(second=0, microsecond=0) - timedelta(minutes=4)
    minutes = ActivityBucket.objects.filter(campaign=campaign, span=ActivityBucket.Span.MINUTE)
    last5 = minutes.filter(start__gte=since).aggregate(answers=Sum("answers"), hits=Sum("hits"), first=Min("start"))
    # Over the minutes since the campaign's first answer when that was less than five minutes ago (QA: two minutes
    # in, the rate was divided by five and read 40% of what it was).
    span = 5
    if last5["first"] is not None and not minutes.filter(start__lt=since).exists():
        span = max(1, min(5, int((now - last5["first"]) / timedelta(minutes=1)) + 1))
    active = CampaignWorker.objects.filter(campaign=campaign, last_seen__gte=since).count()
    return {
        "id": campaign.id,
        "name": campaign.name,
        "state": campaign.state,
        "next_states": sorted(TRANSITIONS[campaign.state]),
        "synsets": totals["synsets"] or 0,
        "target": (totals["synsets"] or 0) * campaign.target_per_synset,
        "accepted": totals["accepted"] or 0,
        "rejected": totals["rejected"] or 0,
        "unresolved": totals["unresolved"] or 0,
        "votes": totals["votes"] or 0,
        "hits": work["hits"] or 0,
        "answers": work["answers"] or 0,
        "workers": work["workers"] or 0,
        "spent": _money(work["spent"]),
        "answers_per_minute_5m": round((last5["answers"] or 0) / span, 3),
        "hits_per_hour_5m": round((last5["hits"] or 0) * 60 / span, 3),
        "active_workers_5m": active,
        "refitted": campaign.refitted,
        "model_version": campaign.model_version,
        "boxes_enabled": campaign.boxes_enabled,
        # Workers qualify through a quiz of gold items: without any, nobody can start (the page says so).
        "gold_items": GoldItem.objects.filter(synset__campaigns=campaign).count(),
        # The box pipeline, when the campaign collects boxes or did: images per state and the final boxes.
        "boxes": _box_figures(campaign)
        if campaign.boxes_enabled or BoxJob.objects.filter(campaign=campaign).exists()
        else None,
    }


# The box figures count the campaign's box jobs and accepted boxes (no counters keep them): at most once per
# this many seconds per campaign, however many dashboards poll the summary.
BOX_FIGURES_SECONDS = 15


def box_figures_key(campaign_id: int) -> str:
    """The cache key of the campaign's box figures; deleting it makes the next poll recount them."""
    return f"dashboard-boxes:{campaign_id}"


def _box_figures(campaign: Campaign) -> dict[str, int]:
    key = box_figures_key(campaign.id)
    figures = cache.get(key)
    if figures is None:
        figures = box_job_summary(campaign_id=campaign.id)
        cache.set(key, figures, BOX_FIGURES_SECONDS)
    return figures


# ---- Inspecting one synset ------------------------------------------------------------------------------


def campaign_synset_get(*, campaign: Campaign, wnid: str) -> CampaignSynset:
    """Raises CampaignSynset.DoesNotExist when the synset is not in the campaign (or the wnid malformed)."""
    try:
        offset = int(wnid[1:]) if wnid[:1] == "n" and len(wnid) == 9 else -1
    except ValueError:
        offset = -1
    return CampaignSynset.objects.select_related("synset").get(campaign=campaign, synset_id=offset)


def confidence_table(*, campaign: Campaign, synset_id: int) -> dict | None:
    """ImageNet's P(good | #yes, #no) table learned for this synset (Deng et al. 2009, sec. 3.2) from its
    candidates' vote counters; seed items are those with at least min(10, max_votes) votes."""
    counts = np.array(
        list(
            Candidate.objects.filter(synset_id=synset_id, votes_count__gt=0)
            .exclude(Exists(GoldItem.objects.filter(candidate_id=OuterRef("pk"))))
            .values_list("yes_count", "votes_count")
        ),
        dtype=np.int64,
    ).reshape(-1, 2)
    if not len(counts):
        return None
    seed = min(10, campaign.max_votes)
    table = fit_imagenet_table(counts[:, 0], counts[:, 1] - counts[:, 0], min_votes=seed, max_total=seed)
    cells = [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in table.table]  # cells[yes][no]
    return {
        "seed_items": table.seed_items,
        "items": len(counts),
        "max_total": table.max_total,
        "good_prior": round(table.good_prior, 4),
        "p_yes_good": round(table.p_yes_good, 4),
        "p_yes_bad": round(table.p_yes_bad, 4),
        "table": cells,
    }


def synset_overview(*, campaign: Campaign, campaign_synset: CampaignSynset) -> dict:
    synset = campaign_synset.synset
    by_state = dict(  # gold items apart: they are counted under "gold", and were also "new" (QA: "6 new · 6 gold")
        Candidate.objects.filter(synset_id=synset.id, gold__isnull=True)
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    activity = SynsetActivity.objects.filter(campaign=campaign, synset=synset).first()
    return {
        "wnid": synset.wnid,
        "name": synset.name,
        "words": synset.words,
        "gloss": synset.gloss,
        "target": campaign.target_per_synset,
        "counters": {
            "accepted": campaign_synset.accepted,
            "rejected": campaign_synset.rejected,
            "unresolved": campaign_synset.unresolved,
            "votes": campaign_synset.votes,
        },
        "by_state": {state: by_state.get(state, 0) for state in Candidate.State.values},
        "gold": GoldItem.objects.filter(synset_id=synset.id).count(),
        "answers": activity.answers if activity else 0,
        "confidence_table": confidence_table(campaign=campaign, synset_id=synset.id),
    }


def candidate_rows(candidates, request=None) -> list[dict]:
    overrides = {}
    for o in DecisionOverride.objects.filter(candidate_id__in=[c.id for c in candidates]).order_by("created"):
        overrides[o.candidate_id] = {"action": o.action, "reason": o.reason, "created": o.created}
    gold = dict(
        GoldItem.objects.filter(candidate_id__in=[c.id for c in candidates]).values_list("candidate_id", "present")
    )
    boxes: dict[int, list[list[int]]] = {}
    accepted = Box.objects.filter(candidate_id__in=[c.id for c in candidates], state=Box.State.ACCEPTED, gold=None)
    for candidate_id, *coords in accepted.order_by("id").values_list("candidate_id", "x1", "y1", "x2", "y2"):
        boxes.setdefault(candidate_id, []).append(coords)
    return [
        {
            "id": c.id,
            "state": c.state,
            "votes": c.votes_count,
            "yes": c.yes_count,
            "posterior": round(c.posterior, 4) if c.posterior is not None else None,
            "gold": None if c.id not in gold else ("present" if gold[c.id] else "absent"),
            "override": overrides.get(c.id),
            **{size: url for size, url in image_urls(c.image, request).items() if size != "original"},
            # The box pipeline's final boxes, in pixels of the displayed image (width x height).
            "width": c.image.width,
            "height": c.image.height,
            "boxes": boxes.get(c.id, []),
        }
        for c in candidates
    ]


def synset_candidates(*, synset_id: int, state: str | None = None) -> QuerySet[Candidate]:
    rows = Candidate.objects.filter(synset_id=synset_id).select_related("image").order_by("id")
    return rows.filter(state=state) if state else rows


def synset_disagreements(*, synset_id: int) -> QuerySet[Candidate]:
    """Candidates with split votes (some yes, some no, at least two), most evenly split first."""
    return (
        Candidate.objects.filter(synset_id=synset_id, votes_count__gte=2, yes_count__gt=0)
        .filter(yes_count__lt=F("votes_count"))
        .annotate(split=Func(F("yes_count") * 2 - F("votes_count"), function="ABS"))
        .select_related("image")
        .order_by("split", "-votes_count", "id")
    )


# ---- Precision audit ------------------------------------------------------------------------------------

# How far into a synset's draw a verdict may reach: the audit's next images, not a choice among all accepted.
AUDIT_WINDOW = 50


def _audit_order(synset_id: int):
    secret = hashlib.sha256(("synsight precision audit " + settings.SECRET_KEY).encode()).digest()
    return lambda candidate_id: hashlib.blake2b(
        f"{synset_id}:{candidate_id}".encode(), key=secret, digest_size=8
    ).digest()


def _audit_pool(synset_id: int) -> QuerySet[Candidate]:
    """What the audit draws from: the synset's accepted, non-gold candidates nobody has judged."""
    return Candidate.objects.filter(
        synset_id=synset_id, state=Candidate.State.ACCEPTED, gold__isnull=True, audit__isnull=True
    )


def audit_draw(*, synset_id: int, limit: int = AUDIT_WINDOW) -> list[int]:
    """The next ``limit`` accepted, non-gold candidates of the synset that nobody has judged, in the audit's
    draw order: a random permutation fixed per synset and keyed by the site's secret. Every accepted image is
    equally likely to come next, a reload draws the same ones, and nobody chooses which images are judged (a
    sample picked by a person would measure the person's picks). Images accepted later take their random place
    in the same order."""
    ids = _audit_pool(synset_id).values_list("id", flat=True)
    return heapq.nsmallest(limit, ids, key=_audit_order(synset_id))


def audit_summary(*, synset_ids) -> dict:
    """What the researchers' verdicts say of the accepted labels of these synsets (a list or a subquery):
    judged, judged right, the sampled precision with its 95% Wilson interval, the model's estimate for the
    same images (mean posterior when judged) and the candidates judged wrong that are still accepted (the
    first 100 by id: the audit measures; a researcher rejects them with an override)."""
    rows = AuditJudgement.objects.filter(synset_id__in=synset_ids)
    figures = rows.aggregate(
        n=Count("id"), right=Count("id", filter=Q(correct=True)), mass=Sum("posterior"), weighed=Count("posterior")
    )
    wrong = rows.filter(correct=False, candidate__state=Candidate.State.ACCEPTED).order_by("candidate_id")
    return _audit_figures(figures["n"], figures["right"], figures["mass"], figures["weighed"]) | {
        "wrong_still_accepted": list(wrong.values_list("candidate_id", flat=True)[:100]),
    }


def synset_audit_summary(*, synset_id: int) -> dict:
    """The synset's audit summary and how many of its accepted images are still unjudged."""
    return audit_summary(synset_ids=[synset_id]) | {"unjudged": _audit_pool(synset_id).count()}


def synset_audit(*, synset_id: int, limit: int, request=None) -> dict:
    """The synset's audit summary and the next ``limit`` images the audit draws, as candidate rows in draw
    order."""
    ids = audit_draw(synset_id=synset_id, limit=limit)
    by_id = {c.id: c for c in Candidate.objects.filter(id__in=ids).select_related("image")}
    return {
        "summary": synset_audit_summary(synset_id=synset_id),
        "sample": candidate_rows([by_id[i] for i in ids], request),
    }


# ---- Workers (admin pages) ------------------------------------------------------------------------------


def workers_overview(*, query: str = "", limit: int = 200) -> list[dict]:
    """Workers with their figures and unpaid earnings, for the admin's worker management page."""
    from workers.models import LedgerEntry

    profiles = WorkerProfile.objects.select_related("user").order_by("user__username")
    if query:
        profiles = profiles.filter(Q(user__username__icontains=query) | Q(external_id__icontains=query))
    profiles = list(profiles[:limit])
    unpaid = dict(
        LedgerEntry.objects.filter(worker_id__in=[p.user_id for p in profiles], paid=False)
        .values("worker_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("worker_id", "total")
    )
    return [
        {
            "worker": p.user_id,
            "username": p.user.username,
            "external_id": p.external_id,
            "hits_done": p.hits_done,
            "answers": p.answers,
            "gold_accuracy": round(p.gold_accuracy, 4) if p.gold_accuracy is not None else None,
            "agreement": p.agreement,
            "blocked": p.blocked,
            "blocked_reason": p.blocked_reason,
            "unpaid": _money(unpaid.get(p.user_id)),
        }
        for p in profiles
    ]


def payments_unpaid_summary() -> dict:
    """What "approve all unpaid" would mark paid now: the unpaid ledger entries up to the newest one
    (``up_to_entry``, 0 when none; the form posts it back, so work done after the page was read stays unpaid),
    their total and how many workers they pay."""
    from workers.models import LedgerEntry

    unpaid = LedgerEntry.objects.filter(paid=False).aggregate(
        up_to_entry=Max("id"), amount=Sum("amount"), workers=Count("worker_id", distinct=True)
    )
    return {"up_to_entry": unpaid["up_to_entry"] or 0, "amount": _money(unpaid["amount"]), "workers": unpaid["workers"]}
