"""Celery tasks of the annotation app: thin wrappers over services, with ids as arguments. All are
idempotent (they recompute from stored votes), so acks_late redelivery after a worker crash is harmless."""

from celery import shared_task
from django.core.cache import cache

from annotation.models import Campaign
from annotation.services import consensus, refit

REFIT_LOCK_SECONDS = 600


@shared_task(acks_late=True)
def consensus_update(candidate_ids: list[int]) -> dict[str, int]:
    """After a HIT: recompute the touched candidates, and start a refit when enough votes arrived."""
    changes = consensus.candidates_update(candidate_ids=candidate_ids)
    for campaign in Campaign.objects.filter(
        state=Campaign.State.RUNNING, campaign_synsets__synset__in=consensus.synsets_of(candidate_ids)
    ).distinct():
        if refit.campaign_refit_due(campaign=campaign) and cache.add(f"refit:{campaign.id}", 1, REFIT_LOCK_SECONDS):
            campaign_refit.delay(campaign.id)
    return changes


@shared_task(acks_late=True)
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
