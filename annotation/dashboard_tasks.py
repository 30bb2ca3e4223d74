"""Celery tasks of the researcher dashboard: thin wrappers over annotation.services.rollups."""

from celery import shared_task

from annotation.models import Campaign
from annotation.services import rollups
from config.celery import QueuedAfterCommit


@shared_task(acks_late=True, base=QueuedAfterCommit)  # recount_active_campaigns catches up a lost one
def synset_activity_recount(campaign_id: int, synset_ids: list[int] | None = None) -> int:
    """Recount the candidate figures of a campaign's synsets, or of those of ``synset_ids`` (idempotent)."""
    return rollups.synset_activity_recount(campaign_id=campaign_id, synset_ids=synset_ids)


@shared_task(acks_late=True, base=QueuedAfterCommit)
def rollups_flush() -> int:
    """Add submitted HITs' figures to the dashboard rollups (exactly once each; see services/rollups.py).
    Asked for after submits (a broker outage then is logged, not raised: the periodic run catches up) and
    run periodically as a catch-all."""
    total = 0
    while added := rollups.rollups_flush():
        total += added
    return total


@shared_task
def recount_active_campaigns() -> list[int]:
    """Periodic (Celery beat): recount running and paused campaigns whose figures are due."""
    return [
        c.id
        for c in Campaign.objects.filter(state__in=[Campaign.State.RUNNING, Campaign.State.PAUSED])
        if rollups.recount_request(campaign=c)
    ]
