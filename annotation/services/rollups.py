"""Dashboard rollups, maintained as work happens so that dashboards never scan votes or candidates.

A submitted HIT carries its own figures (answers, yes, no, gold, response time: ``Hit.answers`` … written by
the UPDATE that marks it submitted). ``hits_add`` adds a batch of such HITs to the rollups: the campaign's
minute and hour buckets, the workers' campaign totals and the synsets' activity, each an upsert (INSERT …
ON CONFLICT DO UPDATE, PostgreSQL and SQLite alike) on a unique key, one statement per table for the whole
batch; a worker first seen in a bucket also bumps its distinct-worker count.

When it runs. Upserting the same campaign-wide bucket rows inside every submit transaction serialised all
submits on two row locks, so with a broker the submit only marks its HIT ``rollup_pending`` and, after
commit, asks for a flush (``flush_request``: at most one Celery task per FLUSH_SECONDS per process, run
FLUSH_SECONDS later, plus a periodic one). ``rollups_flush`` claims pending HITs with
``SELECT … FOR UPDATE SKIP LOCKED`` and clears the flag in the same transaction as the upserts, so each HIT is
added exactly once however many flushes run; nothing is lost if Redis or a worker dies (the flag stays set
until a flush commits). With eager Celery (no broker: SQLite, tests) the submit adds its own HIT at once,
in its transaction, so the figures are there as soon as it returns.

``synset_activity_recount`` is the periodic job's half: candidate figures per synset (how many, how many
still open, gold, the posterior mass of accepted ones) recounted from the candidate table, at most every
RECOUNT_SECONDS per campaign, in the background.
"""

import functools
import time
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from annotation.models import (
    ActivityBucket,
    ActivityBucketWorker,
    Campaign,
    CampaignSynset,
    CampaignWorker,
    Candidate,
    GoldItem,
    Hit,
    SynsetActivity,
    Vote,
)

OPEN_STATES = [Candidate.State.NEW, Candidate.State.VOTING]
# A process asks for at most one flush per FLUSH_SECONDS, and that flush runs FLUSH_SECONDS later, so it sees
# every HIT the process committed meanwhile: the dashboard lags the work by at most about twice this.
FLUSH_SECONDS = 1.0
FIGURES = ("answers", "yes", "no", "gold_answered", "gold_correct", "response_ms")


def hit_figures(parsed, gold_correct: int) -> dict[str, int]:
    """A submission's figures from its parsed answers ((item, answer, ms) with ``item.is_gold``)."""
    real = [answer for item, answer, _ in parsed if not item.is_gold]
    return {
        "answers": len(parsed),
        "yes": sum(answer == Vote.Answer.PRESENT for answer in real),
        "no": sum(answer == Vote.Answer.ABSENT for answer in real),
        "gold_answered": len(parsed) - len(real),
        "gold_correct": gold_correct,
        "response_ms": sum(ms for _, _, ms in parsed),
    }


def deferred() -> bool:
    """True when submits leave their HIT to a flush task (a real broker); False with eager Celery."""
    from config.celery import app

    return not app.conf.task_always_eager


def _upsert(
    model,
    *,
    keys: list[str],
    rows: list[dict],
    add: tuple[str, ...] = (),
    insert_only: tuple[str, ...] = (),
    replace: tuple[str, ...] = (),
    later: tuple[str, ...] = (),
    returning: bool = False,
) -> list | None:
    """INSERT rows (dicts with the same columns, distinct ``keys``); on conflict with the unique key, add the
    ``add`` columns to the stored values, overwrite ``replace``, keep the later of stored and new ``later``
    datetimes (flushes may commit out of order); ``insert_only`` columns are written by the INSERT alone.
    With ``returning``, the stored ids in the order of ``rows``."""
    if not rows:
        return [] if returning else None
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    columns = [*keys, *add, *insert_only, *replace, *later]
    updates = [f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}" for c in add]
    updates += [f"{q(c)} = excluded.{q(c)}" for c in replace]
    updates += [
        f"{q(c)} = CASE WHEN {table}.{q(c)} IS NULL OR excluded.{q(c)} > {table}.{q(c)} "
        f"THEN excluded.{q(c)} ELSE {table}.{q(c)} END"
        for c in later
    ]
    one = f"({', '.join(['%s'] * len(columns))})"
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) VALUES {', '.join([one] * len(rows))} "
        f"ON CONFLICT ({', '.join(q(k) for k in keys)}) DO UPDATE SET {', '.join(updates)}"
    )
    params = [_adapt(row[c]) for row in rows for c in columns]
    with connection.cursor() as cursor:
        if not returning:
            cursor.execute(sql, params)
            return None
        cursor.execute(sql + f" RETURNING id, {', '.join(q(k) for k in keys)}", params)
        found = {tuple(_key(v) for v in row[1:]): row[0] for row in cursor.fetchall()}
    return [found[tuple(_key(_adapt(row[k])) for k in keys)] for row in rows]


def _key(value):
    """A returned key value comparable with the one sent (SQLite returns datetimes as text)."""
    if isinstance(value, datetime):
        return str(connection.ops.adapt_datetimefield_value(value))
    return str(value)


def _adapt(value):
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, Decimal):
        return connection.ops.adapt_decimalfield_value(value, 12, 2)
    return value


def _workers_seen(seen: dict[int, set[int]]) -> None:
    """Record workers in buckets; each bucket's ``workers`` grows by the workers new to it."""
    pairs = [(bucket_id, worker_id) for bucket_id, workers in seen.items() for worker_id in sorted(workers)]
    if not pairs:
        return
    table = connection.ops.quote_name(ActivityBucketWorker._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bucket_id, worker_id) VALUES {', '.join(['(%s, %s)'] * len(pairs))} "
            "ON CONFLICT (bucket_id, worker_id) DO NOTHING RETURNING bucket_id",
            [v for pair in pairs for v in pair],
        )
        new = Counter(row[0] for row in cursor.fetchall())
    for bucket_id, count in sorted(new.items()):
        ActivityBucket.objects.filter(id=bucket_id).update(workers=F("workers") + count)


def hits_add(hits: list[dict]) -> None:
    """Add submitted HITs to the rollups. Each is a dict with campaign_id, synset_id, worker_id, submitted_at,
    reward and the FIGURES. Not idempotent by itself: callers add each HIT once (see rollups_flush)."""
    if not hits:
        return
    buckets: dict[tuple, Counter] = defaultdict(Counter)
    bucket_workers: dict[tuple, set[int]] = defaultdict(set)
    workers: dict[tuple, dict] = {}
    synsets: dict[tuple, dict] = {}
    for hit in hits:
        work = Counter({"hits": 1, **{f: hit[f] for f in FIGURES}})
        minute = hit["submitted_at"].replace(second=0, microsecond=0)
        for span, start in ((ActivityBucket.Span.MINUTE, minute), (ActivityBucket.Span.HOUR, minute.replace(minute=0))):
            key = (hit["campaign_id"], span.value, start)
            buckets[key].update(work)
            bucket_workers[key].add(hit["worker_id"])
        row = workers.setdefault(
            (hit["campaign_id"], hit["worker_id"]),
            {"earned": Decimal("0.00"), "first_seen": hit["submitted_at"], "last_seen": hit["submitted_at"],
             **dict.fromkeys(("hits", *FIGURES), 0)},
        )  # fmt: skip
        for name, value in work.items():
            if name != "no":
                row[name] += value
        row["earned"] += hit["reward"]
        row["first_seen"] = min(row["first_seen"], hit["submitted_at"])
        row["last_seen"] = max(row["last_seen"], hit["submitted_at"])
        row = synsets.setdefault(
            (hit["campaign_id"], hit["synset_id"]),
            {"hits": 0, "answers": 0, "yes": 0, "last_answer_at": hit["submitted_at"]},
        )
        row["hits"] += 1
        row["answers"] += hit["answers"]
        row["yes"] += hit["yes"]
        row["last_answer_at"] = max(row["last_answer_at"], hit["submitted_at"])
    keys = sorted(buckets)  # one order everywhere: concurrent flushes lock rows in the same order
    bucket_ids = _upsert(
        ActivityBucket,
        keys=["campaign_id", "span", "start"],
        rows=[
            {
                "campaign_id": c,
                "span": s,
                "start": t,
                "workers": 0,
                **{f: buckets[(c, s, t)][f] for f in ("hits", *FIGURES)},
            }
            for c, s, t in keys
        ],
        add=("hits", *FIGURES, "workers"),
        returning=True,
    )
    _workers_seen({bucket_id: bucket_workers[key] for key, bucket_id in zip(keys, bucket_ids, strict=True)})
    _upsert(
        CampaignWorker,
        keys=["campaign_id", "worker_id"],
        rows=[{"campaign_id": c, "worker_id": w, **workers[(c, w)]} for c, w in sorted(workers)],
        add=("hits", "answers", "yes", "gold_answered", "gold_correct", "response_ms", "earned"),
        insert_only=("first_seen",),
        later=("last_seen",),
    )
    _upsert(
        SynsetActivity,
        keys=["campaign_id", "synset_id"],
        rows=[
            {
                "campaign_id": c,
                "synset_id": s,
                **synsets[(c, s)],
                "candidates": 0,
                "open_candidates": 0,
                "gold": 0,
                "accepted_counted": 0,
                "accepted_posterior_sum": 0.0,
            }
            for c, s in sorted(synsets)
        ],
        add=("hits", "answers", "yes"),
        insert_only=("candidates", "open_candidates", "gold", "accepted_counted", "accepted_posterior_sum"),
        later=("last_answer_at",),
    )


def box_task_add(*, campaign_id: int, worker_id: int, submitted_at: datetime, reward: Decimal, ms: int) -> None:
    """A submitted box task's pay and answering time, into the worker's campaign totals: what the campaign spent
    and the worker's hourly pay count box work like presence HITs (their ledger entries are the same kind).
    Its HITs, answers and gold figures stay the presence HITs'. Called once per task, in its transaction."""
    row = {
        "campaign_id": campaign_id,
        "worker_id": worker_id,
        **dict.fromkeys(("hits", "answers", "yes", "gold_answered", "gold_correct"), 0),
        "response_ms": ms,
        "earned": reward,
        "first_seen": submitted_at,
        "last_seen": submitted_at,
    }
    _upsert(
        CampaignWorker,
        keys=["campaign_id", "worker_id"],
        rows=[row],
        add=("hits", "answers", "yes", "gold_answered", "gold_correct", "response_ms", "earned"),
        insert_only=("first_seen",),
        later=("last_seen",),
    )


def hit_row(hit: Hit) -> dict:
    """What hits_add needs of one submitted HIT."""
    return {
        "campaign_id": hit.campaign_id,
        "synset_id": hit.synset_id,
        "worker_id": hit.worker_id,
        "submitted_at": hit.submitted_at,
        "reward": hit.campaign.reward_per_hit,
        **{f: getattr(hit, f) for f in FIGURES},
    }


def rollups_flush(*, limit: int = 2000) -> int:
    """Add HITs whose figures are pending to the rollups, oldest first, at most ``limit``; returns how many.
    Exactly once per HIT: the HITs are claimed (row locks, skipping those another flush holds) and their flag
    cleared in the same transaction as the upserts."""
    columns = ("id", "campaign_id", "synset_id", "worker_id", "submitted_at", "campaign__reward_per_hit", *FIGURES)
    with transaction.atomic():
        pending = Hit.objects.filter(rollup_pending=True).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True, of=("self",))
        rows = [dict(zip(columns, values, strict=True)) for values in pending.values_list(*columns)[:limit]]
        if not rows:
            return 0
        Hit.objects.filter(id__in=[row["id"] for row in rows]).update(rollup_pending=False)
        for row in rows:
            row["reward"] = row.pop("campaign__reward_per_hit")
        hits_add(rows)
    return len(rows)


_last_flush_request: dict[str, float] = {"at": -1e9}


def flush_request() -> None:
    """After a deferred submit commits: schedule a flush, at most once per FLUSH_SECONDS per process."""
    now = time.monotonic()
    if now - _last_flush_request["at"] < FLUSH_SECONDS:
        return
    _last_flush_request["at"] = now
    from annotation import dashboard_tasks

    dashboard_tasks.rollups_flush.apply_async(countdown=FLUSH_SECONDS)


# ---- The periodic half: candidate figures per synset ---------------------------------------------------


def recount_due(*, campaign: Campaign) -> bool:
    """True when some synset's candidate figures are older than DASHBOARD_RECOUNT_SECONDS (or missing)."""
    seconds = settings.DASHBOARD_RECOUNT_SECONDS
    synsets = CampaignSynset.objects.filter(campaign=campaign).count()
    fresh = SynsetActivity.objects.filter(
        campaign=campaign, counted_at__gte=timezone.now() - timezone.timedelta(seconds=seconds)
    ).count()
    return fresh < synsets


def recount_request(*, campaign: Campaign) -> bool:
    """Ask for a recount in the background when due, at most once per DASHBOARD_RECOUNT_SECONDS; with eager
    Celery (no broker) it runs at once."""
    if not recount_due(campaign=campaign):
        return False
    if not cache.add(f"dashboard-recount:{campaign.id}", 1, settings.DASHBOARD_RECOUNT_SECONDS):
        return False
    _recount_after_commit(campaign.id)
    return True


def _recount_after_commit(campaign_id: int, synset_ids: list[int] | None = None) -> None:
    """Queue the recount of a campaign's candidate figures (or of these synsets') once the caller commits."""
    from annotation import dashboard_tasks

    transaction.on_commit(
        functools.partial(dashboard_tasks.synset_activity_recount.delay, campaign_id, synset_ids=synset_ids)
    )


def candidates_changed(*, synset_id: int) -> list[int]:
    """A synset gained candidates (an image import finished): recount that synset's figures in every campaign
    that holds it and is not finished, in the background, now rather than when the figures are next due (a
    researcher would otherwise read the old count on the dashboard for up to DASHBOARD_RECOUNT_SECONDS after
    the import said it was done). Returns the campaigns."""
    campaign_ids = list(
        CampaignSynset.objects.filter(synset_id=synset_id)
        .exclude(campaign__state=Campaign.State.FINISHED)
        .values_list("campaign_id", flat=True)
    )
    for campaign_id in campaign_ids:
        _recount_after_commit(campaign_id, synset_ids=[synset_id])
    return campaign_ids


def campaign_created(*, campaign: Campaign) -> None:
    """A new campaign's synsets may hold candidates already (an earlier campaign's, or imported before): count
    them at once, so that its dashboard does not open on zero candidates everywhere."""
    _recount_after_commit(campaign.id)


def _leave_out_researchers_accepts(counts: dict[int, dict], synset_ids: list[int]) -> None:
    """Take out of the precision figures (``accepted``, ``mass``) the accepted candidates held by a researcher's
    override: their posterior is what consensus says of them (0.005 for one it had rejected), not the
    confidence of the label. Overrides are few; this reads only the accepted candidates that have one."""
    from annotation.services.consensus import overridden_ids

    rows = list(
        Candidate.objects.filter(
            synset_id__in=synset_ids, state=Candidate.State.ACCEPTED, posterior__isnull=False, overrides__isnull=False
        )
        .values_list("id", "synset_id", "posterior")
        .distinct()
    )
    held = overridden_ids([candidate_id for candidate_id, _, _ in rows])
    for candidate_id, synset_id, posterior in rows:
        if candidate_id in held:
            figures = counts[synset_id]
            figures["accepted"] -= 1
            figures["mass"] = (figures["mass"] or 0.0) - posterior


def synset_activity_recount(*, campaign_id: int, synset_ids: list[int] | None = None) -> int:
    """Recount candidates, open candidates, gold items and accepted posterior mass for every synset of the
    campaign, or for those of ``synset_ids`` that it holds (one grouped pass over the candidate_synset_state
    index per synset batch). Idempotent."""
    held = CampaignSynset.objects.filter(campaign_id=campaign_id)
    if synset_ids is not None:
        held = held.filter(synset_id__in=synset_ids)
    synset_ids = list(held.values_list("synset_id", flat=True))
    now = timezone.now()
    for start in range(0, len(synset_ids), 200):
        batch = synset_ids[start : start + 200]
        counts = {
            row["synset_id"]: row
            for row in Candidate.objects.filter(synset_id__in=batch)
            .values("synset_id")
            .annotate(
                n=Count("id"),
                # Gold items never take votes (they left the queue), whatever their state.
                open=Count("id", filter=Q(state__in=OPEN_STATES, gold__isnull=True)),
                # Precision is the mean posterior of consensus decisions: a researcher's accept has none (those
                # without a posterior are left out here, those held by an override below).
                accepted=Count("id", filter=Q(state=Candidate.State.ACCEPTED, posterior__isnull=False)),
                mass=Sum("posterior", filter=Q(state=Candidate.State.ACCEPTED)),
            )
            .order_by()
        }
        _leave_out_researchers_accepts(counts, batch)
        gold = dict(
            GoldItem.objects.filter(synset_id__in=batch)
            .values("synset_id")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("synset_id", "n")
        )
        with transaction.atomic():
            _upsert(
                SynsetActivity,
                keys=["campaign_id", "synset_id"],
                rows=[
                    {
                        "campaign_id": campaign_id,
                        "synset_id": synset_id,
                        "hits": 0,
                        "answers": 0,
                        "yes": 0,
                        "candidates": counts.get(synset_id, {}).get("n", 0),
                        "open_candidates": counts.get(synset_id, {}).get("open", 0),
                        "gold": gold.get(synset_id, 0),
                        "accepted_counted": counts.get(synset_id, {}).get("accepted", 0),
                        "accepted_posterior_sum": float(counts.get(synset_id, {}).get("mass") or 0.0),
                        "counted_at": now,
                    }
                    for synset_id in sorted(batch)
                ],
                insert_only=("hits", "answers", "yes"),
                replace=(
                    "candidates",
                    "open_candidates",
                    "gold",
                    "accepted_counted",
                    "accepted_posterior_sum",
                    "counted_at",
                ),
            )
    return len(synset_ids)
