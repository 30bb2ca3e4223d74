"""Dashboard rollups, maintained as work happens so that dashboards never scan votes or candidates.

``hit_recorded`` runs inside hit_submit's transaction (one call from annotation.services.hits._record) and
adds the HIT to five rows with upserts (INSERT … ON CONFLICT DO UPDATE, PostgreSQL and SQLite alike): the
campaign's current minute and hour buckets, the worker's campaign totals and the synset's activity; a
first-seen worker in a bucket also bumps the bucket's distinct-worker count. Each is one statement on a
unique key, so concurrent submits never lose an increment and never check-then-act.

``synset_activity_recount`` is the periodic job's half: candidate figures per synset (how many, how many
still open, gold, the posterior mass of accepted ones) recounted from the candidate table, at most every
RECOUNT_SECONDS per campaign, in the background.
"""

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
    HitItem,
    SynsetActivity,
    Vote,
)

OPEN_STATES = [Candidate.State.NEW, Candidate.State.VOTING]


def _upsert(
    model,
    *,
    keys: dict,
    add: dict,
    insert_only: dict | None = None,
    replace: dict | None = None,
    returning: bool = False,
) -> int | None:
    """INSERT one row; on conflict with the unique key ``keys``, add ``add`` to the stored values and overwrite
    the ``replace`` columns (``insert_only`` columns are written by the INSERT alone). Returns the row id
    when ``returning``."""
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    insert_only, replace = insert_only or {}, replace or {}
    values = {**keys, **add, **insert_only, **replace}
    columns = list(values)
    updates = [f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}" for c in add]
    updates += [f"{q(c)} = excluded.{q(c)}" for c in replace]
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(q(k) for k in keys)}) DO UPDATE SET {', '.join(updates)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql + (" RETURNING id" if returning else ""), [_adapt(values[c]) for c in columns])
        return cursor.fetchone()[0] if returning else None


def _adapt(value):
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, Decimal):
        return connection.ops.adapt_decimalfield_value(value, 12, 2)
    return value


def _worker_seen(bucket_id: int, worker_id: int) -> None:
    table = connection.ops.quote_name(ActivityBucketWorker._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bucket_id, worker_id) VALUES (%s, %s) ON CONFLICT (bucket_id, worker_id) DO NOTHING",
            [bucket_id, worker_id],
        )
        inserted = cursor.rowcount == 1
    if inserted:
        ActivityBucket.objects.filter(id=bucket_id).update(workers=F("workers") + 1)


def hit_recorded(*, hit: Hit, parsed: list[tuple[HitItem, int, int]], gold_correct: int) -> None:
    """Add one submitted HIT (its parsed answers: item, answer, ms) to the rollups. Call inside the
    submitting transaction, once per HIT."""
    now = timezone.now()
    real = [answer for item, answer, _ in parsed if not item.is_gold]
    yes = sum(answer == Vote.Answer.PRESENT for answer in real)
    no = sum(answer == Vote.Answer.ABSENT for answer in real)
    gold_answered = len(parsed) - len(real)
    ms = sum(ms for _, _, ms in parsed)
    work = {"hits": 1, "answers": len(parsed), "yes": yes, "gold_answered": gold_answered,
            "gold_correct": gold_correct, "response_ms": ms}  # fmt: skip
    minute = now.replace(second=0, microsecond=0)
    for span, start in ((ActivityBucket.Span.MINUTE, minute), (ActivityBucket.Span.HOUR, minute.replace(minute=0))):
        bucket_id = _upsert(
            ActivityBucket,
            keys={"campaign_id": hit.campaign_id, "span": span.value, "start": start},
            add={**work, "no": no, "workers": 0},
            returning=True,
        )
        _worker_seen(bucket_id, hit.worker_id)
    _upsert(
        CampaignWorker,
        keys={"campaign_id": hit.campaign_id, "worker_id": hit.worker_id},
        add={**work, "earned": hit.campaign.reward_per_hit},
        insert_only={"first_seen": now},
        replace={"last_seen": now},
    )
    _upsert(
        SynsetActivity,
        keys={"campaign_id": hit.campaign_id, "synset_id": hit.synset_id},
        add={"hits": 1, "answers": len(parsed), "yes": yes},
        insert_only={
            "candidates": 0,
            "open_candidates": 0,
            "gold": 0,
            "accepted_counted": 0,
            "accepted_posterior_sum": 0.0,
        },
        replace={"last_answer_at": now},
    )


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
    from annotation import dashboard_tasks

    transaction.on_commit(lambda: dashboard_tasks.synset_activity_recount.delay(campaign.id))
    return True


def synset_activity_recount(*, campaign_id: int) -> int:
    """Recount candidates, open candidates, gold items and accepted posterior mass for every synset of the
    campaign (one grouped pass over the candidate_synset_state index per synset batch). Idempotent."""
    synset_ids = list(CampaignSynset.objects.filter(campaign_id=campaign_id).values_list("synset_id", flat=True))
    now = timezone.now()
    for start in range(0, len(synset_ids), 200):
        batch = synset_ids[start : start + 200]
        counts = {
            row["synset_id"]: row
            for row in Candidate.objects.filter(synset_id__in=batch)
            .values("synset_id")
            .annotate(
                n=Count("id"),
                open=Count("id", filter=Q(state__in=OPEN_STATES)),
                accepted=Count("id", filter=Q(state=Candidate.State.ACCEPTED)),
                mass=Sum("posterior", filter=Q(state=Candidate.State.ACCEPTED)),
            )
            .order_by()
        }
        gold = dict(
            GoldItem.objects.filter(candidate__synset_id__in=batch)
            .values("candidate__synset_id")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("candidate__synset_id", "n")
        )
        with transaction.atomic():
            for synset_id in batch:
                row = counts.get(synset_id, {})
                _upsert(
                    SynsetActivity,
                    keys={"campaign_id": campaign_id, "synset_id": synset_id},
                    add={},
                    insert_only={"hits": 0, "answers": 0, "yes": 0},
                    replace={
                        "candidates": row.get("n", 0),
                        "open_candidates": row.get("open", 0),
                        "gold": gold.get(synset_id, 0),
                        "accepted_counted": row.get("accepted", 0),
                        "accepted_posterior_sum": float(row.get("mass") or 0.0),
                        "counted_at": now,
                    },
                )
    return len(synset_ids)
