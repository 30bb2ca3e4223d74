"""Entering candidates into the box pipeline, and leasing draw / quality / coverage tasks (the scheduler
patterns are those of services/hits.py and scheduler.md; concurrency: boxes.md)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotation.errors import Conflict, NotFound
from annotation.models import Box, BoxJob, BoxTask, BoxTaskItem, Campaign, CampaignSynset, Candidate
from annotation.selectors.dashboard import box_figures_key
from annotation.services import leases
from annotation.services.draws import draw_rng
from annotation.services.hits import qualification_require

from .policy import (
    ACTIVE,
    DRAW_PER_TASK,
    ENTER_BATCH,
    ENTER_EVERY_SECONDS,
    MAX_VOTES,
    MIN_VOTES,
    SYNSETS_TRIED,
    VERIFY_PER_TASK,
    Kind,
)

# ------------------------------------------------------------------------------------------- entering


def box_jobs_enter(*, campaign: Campaign, limit: int = ENTER_BATCH) -> int:
    """Accepted candidates of a boxes-enabled campaign's synsets enter the pipeline (one BoxJob each); jobs
    whose candidate is no longer accepted (a refit reopened it) are withdrawn, and come back when it is accepted
    again. Idempotent; at most ``limit`` new jobs per call (the periodic task calls it until nothing is left)."""
    if not campaign.boxes_enabled:
        return 0
    synsets = CampaignSynset.objects.filter(campaign=campaign).values("synset_id")
    has_job = BoxJob.objects.filter(candidate_id=OuterRef("pk"))
    new = list(
        Candidate.objects.filter(synset_id__in=synsets, state=Candidate.State.ACCEPTED)
        .exclude(Exists(has_job))
        .order_by("id")
        .values_list("id", "synset_id")[:limit]
    )
    BoxJob.objects.bulk_create(
        [BoxJob(candidate_id=cid, campaign=campaign, synset_id=sid) for cid, sid in new], ignore_conflicts=True
    )
    withdrawn = (
        BoxJob.objects.filter(campaign=campaign, state__in=ACTIVE, draw_pending=0, pending_count=0)
        .exclude(candidate__state=Candidate.State.ACCEPTED)
        .update(state=BoxJob.State.WITHDRAWN)
    )
    # Accepted again (consensus settled it back): the image returns to checking its box still unchecked, else
    # to drawing, whose "no more instances" leads to coverage; it keeps its round and its boxes.
    back = BoxJob.objects.filter(
        campaign=campaign, state=BoxJob.State.WITHDRAWN, candidate__state=Candidate.State.ACCEPTED
    )
    unchecked = Box.objects.filter(job_id=OuterRef("pk"), state__in=[Box.State.DRAWN, Box.State.VERIFYING])
    returned = back.filter(Exists(unchecked)).update(state=BoxJob.State.QUALITY)
    returned += back.update(state=BoxJob.State.DRAW)
    if new or withdrawn or returned:
        cache.delete(box_figures_key(campaign.id))  # the dashboard shows the change at its next poll
    return len(new)


def _enter_due(campaign_id: int) -> bool:
    """True at most once per ENTER_EVERY_SECONDS per campaign (shared by every caller that enters)."""
    return cache.add(f"boxes-enter:{campaign_id}", 1, ENTER_EVERY_SECONDS)


def box_jobs_enter_request(*, campaign: Campaign) -> bool:
    """Ask for the campaign's accepted candidates to enter the pipeline in the background (queued on commit),
    at most once per ENTER_EVERY_SECONDS. The dashboard asks on its summary poll so that newly accepted images
    show as waiting for a box even without Celery beat (the embedded default has none) and before any worker
    asks for drawing work; with eager Celery it runs at once."""
    if not campaign.boxes_enabled or campaign.state != Campaign.State.RUNNING or not _enter_due(campaign.id):
        return False
    from annotation import tasks

    transaction.on_commit(lambda: tasks.box_jobs_enter_campaign.delay(campaign.id))
    return True


# --------------------------------------------------------------------------------------------- leases


def box_task_release(*, worker: User, task_id: int) -> bool:
    """The worker's box page closed (or is reloading) with this task unanswered: its images go back to the queue
    a minute later unless the worker asks for it again meanwhile (services/leases.py)."""
    return leases.give_back(BoxTask, worker=worker, lease_id=task_id, missing=f"You have no box task {task_id}.")


def box_tasks_expire(*, limit: int = 500) -> int:
    """Expire open box tasks past their lease and give their items back (claimed by a conditional UPDATE,
    so each lease is returned exactly once)."""
    due = list(
        BoxTask.objects.filter(status=BoxTask.Status.OPEN, expires_at__lte=timezone.now())
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(_expire_one(task_id) for task_id in due)


@transaction.atomic
def _expire_one(task_id: int) -> bool:
    if not BoxTask.objects.filter(id=task_id, status=BoxTask.Status.OPEN).update(status=BoxTask.Status.EXPIRED):
        return False
    _release(BoxTaskItem.objects.filter(task_id=task_id, is_gold=False))
    return True


def _release(items) -> None:
    """Return the leases of these (unanswered) items: one decrement per lease."""
    rows = list(items.values_list("kind", "job_id", "box_id"))
    for model, field, ids in (
        (BoxJob, "draw_pending", [j for k, j, _ in rows if k == Kind.DRAW]),
        (BoxJob, "pending_count", [j for k, j, _ in rows if k == Kind.COVERAGE]),
        (Box, "pending_count", [b for k, _, b in rows if k == Kind.QUALITY]),
    ):
        by_count: dict[int, list[int]] = {}
        for row_id, count in Counter(ids).items():
            by_count.setdefault(count, []).append(row_id)
        for count, row_ids in by_count.items():
            model.objects.filter(id__in=row_ids).update(**{field: F(field) - count})


def _needs_votes() -> Q:
    """Same rule as the presence scheduler: up to MIN_VOTES leases at once, then one at a time."""
    return Q(votes_count__lt=MAX_VOTES) & (
        Q(votes_count__lt=MIN_VOTES, pending_count__lt=MIN_VOTES - F("votes_count"))
        | Q(votes_count__gte=MIN_VOTES, pending_count=0)
    )


def _locked(queryset):
    if connection.features.has_select_for_update_skip_locked:
        # Concurrent schedulers skip rows another transaction is leasing; PostgreSQL re-checks the WHERE
        # clause on rows changed since the snapshot, so counters never exceed the need (scheduler.md).
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def _lease_jobs(*, worker: User, campaign: Campaign, synset_id: int, kind: str, size: int) -> list[tuple[int, int]]:
    seen = BoxTaskItem.objects.filter(
        worker=worker, job_id=OuterRef("pk"), kind=kind, round=OuterRef("round"), box__isnull=True
    )
    if kind == Kind.DRAW:
        need = Q(state=BoxJob.State.DRAW, draw_pending=0)
        counter = "draw_pending"
    else:
        need = Q(state=BoxJob.State.COVERAGE) & _needs_votes()
        counter = "pending_count"
    queryset = BoxJob.objects.filter(need, campaign=campaign, synset_id=synset_id).exclude(Exists(seen))
    if kind == Kind.COVERAGE:  # nobody judges the coverage of boxes they drew themselves
        queryset = queryset.exclude(Exists(Box.objects.filter(job_id=OuterRef("pk"), drawn_by=worker)))
    queryset = queryset.order_by("id")
    rows = list(_locked(queryset).values_list("id", "round")[:size])
    if rows:
        BoxJob.objects.filter(id__in=[r[0] for r in rows]).update(**{counter: F(counter) + 1})
    return rows


def _lease_boxes(*, worker: User, campaign: Campaign, synset_id: int, size: int) -> list[int]:
    seen = BoxTaskItem.objects.filter(worker=worker, box_id=OuterRef("pk"))
    queryset = (
        Box.objects.filter(_needs_votes(), state=Box.State.VERIFYING, job__campaign=campaign, job__synset_id=synset_id)
        .exclude(drawn_by=worker)  # nobody verifies their own box
        .exclude(Exists(seen))
        .order_by("id")
    )
    ids = list(_locked(queryset).values_list("id", flat=True)[:size])
    if ids:
        Box.objects.filter(id__in=ids).update(pending_count=F("pending_count") + 1)
    return ids


def _gold_boxes(*, worker: User, synset_id: int, count: int, rng: random.Random) -> list[int]:
    if count <= 0:
        return []
    seen = BoxTaskItem.objects.filter(worker=worker, box_id=OuterRef("pk"))
    pool = list(
        Box.objects.filter(gold__isnull=False, candidate__synset_id=synset_id)
        .exclude(Exists(seen))
        .order_by("id")  # a seeded draw from a list in a stable order
        .values_list("id", flat=True)[:500]
    )
    return rng.sample(pool, min(count, len(pool)))


def _synsets(campaign: Campaign, rng: random.Random) -> list[int]:
    ids = list(
        CampaignSynset.objects.filter(campaign=campaign).order_by("synset_id").values_list("synset_id", flat=True)
    )
    rng.shuffle(ids)  # concurrent workers spread over synsets instead of contending for the same rows
    return ids[:SYNSETS_TRIED]


def box_task_next(*, worker: User, campaign: Campaign, kind: str) -> BoxTask | None:
    """The worker's open task of this kind in this campaign, or a newly leased one; None when there is no
    such work left for this worker."""
    if kind not in Kind.values:
        raise NotFound(f"There is no box task kind “{kind}”; use draw, quality or coverage.")
    if campaign.state != Campaign.State.RUNNING:
        raise Conflict(f"Campaign “{campaign.name}” is {campaign.state}, not running.")
    if not campaign.boxes_enabled:
        raise Conflict(f"Campaign “{campaign.name}” does not collect boxes.")
    qualification_require(worker=worker, campaign=campaign)
    if _enter_due(campaign.id):
        box_jobs_enter(campaign=campaign)
    box_tasks_expire(limit=50)
    now = timezone.now()
    existing = BoxTask.objects.filter(worker=worker, campaign=campaign, kind=kind, status=BoxTask.Status.OPEN).first()
    if existing is not None:
        if existing.expires_at > now and leases.restored(existing, lease_seconds=campaign.lease_seconds, now=now):
            return existing
        _expire_one(existing.id)
    # Seeded as the HIT draws (annotation/services/draws.py): by worker, campaign and how many tasks of this
    # kind the worker was leased here — repeatable for the simulator, unpredictable to workers.
    leased = BoxTask.objects.filter(worker=worker, campaign=campaign, kind=kind).count()
    rng = draw_rng(f"box-{kind}", worker.id, campaign.id, leased)
    size = DRAW_PER_TASK if kind == Kind.DRAW else min(VERIFY_PER_TASK, campaign.images_per_hit)
    for synset_id in _synsets(campaign, rng):
        try:
            with transaction.atomic():
                items: list[dict] = []
                if kind == Kind.QUALITY:
                    n_gold = sum(rng.random() < campaign.gold_rate for _ in range(size))
                    real = _lease_boxes(worker=worker, campaign=campaign, synset_id=synset_id, size=size - n_gold)
                    if not real:
                        continue
                    items = [{"box_id": b} for b in real] + [
                        {"box_id": b, "is_gold": True}
                        for b in _gold_boxes(worker=worker, synset_id=synset_id, count=n_gold, rng=rng)
                    ]
                else:
                    rows = _lease_jobs(worker=worker, campaign=campaign, synset_id=synset_id, kind=kind, size=size)
                    if not rows:
                        continue
                    items = [{"job_id": job_id, "round": rnd} for job_id, rnd in rows]
                task = BoxTask.objects.create(
                    campaign=campaign,
                    synset_id=synset_id,
                    worker=worker,
                    kind=kind,
                    expires_at=now + timedelta(seconds=campaign.lease_seconds),
                )
                rng.shuffle(items)
                BoxTaskItem.objects.bulk_create(
                    BoxTaskItem(task=task, worker=worker, kind=kind, position=i, **item) for i, item in enumerate(items)
                )
                return task
        except IntegrityError:
            # A concurrent request of the same worker opened a task of this kind: return that one.
            existing = BoxTask.objects.filter(
                worker=worker, campaign=campaign, kind=kind, status=BoxTask.Status.OPEN
            ).first()
            if existing is not None:
                return existing
            raise
    return None
