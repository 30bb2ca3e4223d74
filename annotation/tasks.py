"""Celery tasks of the annotation app: thin wrappers over services, with ids as arguments. All are
idempotent (they recompute from stored votes), so acks_late redelivery after a worker crash is harmless.

A consensus update that never runs — the broker was down when the submit committed, Redis restarted with the
job queued, a worker was killed holding it — is not lost: its candidates keep the "awaiting consensus" mark
that the submit set (a negative priority), and the periodic consensus_sweep weighs them."""

import logging

from celery import shared_task
from django.core.cache import cache

from annotation.models import Campaign
from annotation.services import consensus, refit, screening
from config.celery import QueuedAfterCommit

REFIT_LOCK_SECONDS = 600
logger = logging.getLogger(__name__)


def _refit_if_due(synset_ids: list[int]) -> None:
    for campaign in Campaign.objects.filter(
        state=Campaign.State.RUNNING, campaign_synsets__synset__in=synset_ids
    ).distinct():
        if refit.campaign_refit_due(campaign=campaign) and cache.add(f"refit:{campaign.id}", 1, REFIT_LOCK_SECONDS):
            campaign_refit.delay(campaign.id)


@shared_task(acks_late=True, base=QueuedAfterCommit)
def consensus_update(candidate_ids: list[int]) -> dict[str, int]:
    """After a HIT: recompute the touched candidates, screen the worker who submitted it for spam
    (annotation/services/screening.py), and start a refit when enough votes arrived."""
    changes = consensus.candidates_update(candidate_ids=candidate_ids)
    screening.hits_screen(candidate_ids=candidate_ids)
    _refit_if_due(consensus.synsets_of(candidate_ids))
    return changes


@shared_task
def consensus_sweep() -> int:
    """Periodic (Celery beat, CONSENSUS_SWEEP_SECONDS): weigh the votes whose consensus update never ran.
    Returns how many candidates it recomputed (0 when every update arrived)."""
    swept = consensus.candidates_awaiting_update()
    if swept:
        logger.info("consensus_sweep recomputed %d candidates whose consensus update was lost.", swept)
    return swept


@shared_task(acks_late=True, base=QueuedAfterCommit)  # refit_running_campaigns catches up a lost one
def campaign_refit(campaign_id: int) -> dict:
    try:
        summary = refit.campaign_refit(campaign_id=campaign_id)
    finally:
        cache.delete(f"refit:{campaign_id}")
    return {"votes": summary.votes, "source": summary.source, "blocked": summary.blocked, "states": summary.states}


@shared_task
def refit_running_campaigns() -> list[int]:
    """Periodic (Celery beat): refit every running campaign that gathered new votes since its last refit."""
    due = [
        c.id
        for c in Campaign.objects.filter(state=Campaign.State.RUNNING)
        if refit.campaign_refit_due(campaign=c, every=1)
    ]
    for campaign_id in due:
        if cache.add(f"refit:{campaign_id}", 1, REFIT_LOCK_SECONDS):
            campaign_refit.delay(campaign_id)
    return due


@shared_task
def expire_leases() -> int:
    """Periodic (Celery beat): return the items of expired HITs to the queue."""
    from annotation.services.hits import hits_expire

    return hits_expire(limit=5000)


@shared_task
def box_jobs_enter_all() -> int:
    """Periodic (Celery beat): accepted candidates of boxes-enabled running campaigns enter the box pipeline;
    expired box task leases go back to the queue."""
    from annotation.services.boxes import box_jobs_enter, box_tasks_expire

    entered = sum(
        box_jobs_enter(campaign=c) for c in Campaign.objects.filter(state=Campaign.State.RUNNING, boxes_enabled=True)
    )
    box_tasks_expire(limit=5000)
    return entered
