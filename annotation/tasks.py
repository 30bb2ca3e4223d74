"""Celery tasks of the annotation app: thin wrappers over services, with ids as arguments. All are
idempotent (they recompute from stored votes), so acks_late redelivery after a worker crash is harmless.

Consensus after submits is coalesced (annotation/services/consensus_queue.py): a submit marks its HIT
pending and queues a consensus_drain only when none is queued; one drain weighs every pending HIT. A drain
that never runs — the broker was down when the submit committed, Redis restarted with it queued, a worker was
killed running it — loses nothing: the HITs keep their pending flag and their candidates the "awaiting
consensus" mark (a negative priority), and the periodic consensus_sweep drains and weighs them."""

import logging

from celery import shared_task
from django.core.cache import cache

from annotation.models import Campaign
from annotation.services import consensus, consensus_queue, refit
from annotation.services.refit_lock import campaign_refit_lock, campaign_refit_running
from config.cache import lock_release, lock_token
from config.celery import QueuedAfterCommit

REFIT_LOCK_SECONDS = 600
logger = logging.getLogger(__name__)


def _refit_if_due(campaign_ids) -> None:
    for campaign_id in refit.running_campaigns_refit_due(campaign_ids=campaign_ids):
        _refit_queue(campaign_id)


def _refit_queue(campaign_id: int) -> None:
    """Queue a refit of the campaign unless one is queued or running: queued, a lock taken here with a token its
    job releases (only its own: a job that outran REFIT_LOCK_SECONDS must not release the next one's); running,
    the lock that the job holds and that dies with its process (annotation/services/refit_lock.py)."""
    if campaign_refit_running(campaign_id=campaign_id):
        return
    token = lock_token()
    if cache.add(f"refit:{campaign_id}", token, REFIT_LOCK_SECONDS):
        campaign_refit.delay(campaign_id, token)


@shared_task(base=QueuedAfterCommit)
def consensus_drain() -> dict[str, int]:
    """After submits: recompute the pending HITs' candidates, screen their submitters for spam
    (annotation/services/screening.py), clear the HITs' flags, and start a refit when enough votes arrived."""
    drained = consensus_queue.hits_drain(after_round=_refit_if_due)
    return {"hits": drained.hits, "candidates": drained.candidates, "blocked": len(drained.blocked)}


@shared_task
def consensus_update(candidate_ids: list[int]) -> dict[str, int]:
    """Recompute these candidates. Submits no longer queue it (they queue consensus_drain); kept so that jobs
    queued before the drain existed still run."""
    return consensus.candidates_update(candidate_ids=candidate_ids)


@shared_task
def consensus_sweep() -> int:
    """Periodic (Celery beat, CONSENSUS_SWEEP_SECONDS): drain the HITs whose drain never ran, then weigh any
    candidate still marked as awaiting consensus. Returns how many candidates it recomputed (0 when every
    drain arrived)."""
    drained = consensus_queue.hits_drain(after_round=_refit_if_due)
    swept = drained.candidates + consensus.candidates_awaiting_update()
    if swept:
        logger.info("consensus_sweep recomputed %d candidates whose consensus update was lost.", swept)
    return swept


@shared_task(acks_late=True, base=QueuedAfterCommit)  # refit_running_campaigns catches up a lost one
def campaign_refit(campaign_id: int, token: int | None = None) -> dict:
    """``token``: the lock _refit_queue took, released here; None for a refit queued without it (a policy
    change: campaigns.campaign_update_policy), which leaves any lock alone. On PostgreSQL it is released as the
    refit starts, from when the running-refit lock stands for it (a refit killed with SIGKILL left the queue lock
    behind for REFIT_LOCK_SECONDS); elsewhere when it ends. A refit of the campaign already running is waited for."""
    with campaign_refit_lock(campaign_id=campaign_id) as dies_with_process:
        if token is not None and dies_with_process:
            lock_release(f"refit:{campaign_id}", token)
            token = None
        try:
            summary = refit.campaign_refit(campaign_id=campaign_id)
        finally:
            if token is not None:
                lock_release(f"refit:{campaign_id}", token)
    return {"votes": summary.votes, "source": summary.source, "blocked": summary.blocked, "states": summary.states}


@shared_task
def refit_running_campaigns() -> list[int]:
    """Periodic (Celery beat): refit every running campaign that gathered new votes since its last refit."""
    running = Campaign.objects.filter(state=Campaign.State.RUNNING).values_list("id", flat=True)
    due = refit.running_campaigns_refit_due(campaign_ids=list(running), every=1)
    for campaign_id in due:
        _refit_queue(campaign_id)
    return due


@shared_task
def expire_leases() -> int:
    """Periodic (Celery beat): return the items of expired HITs to the queue."""
    from annotation.services.hits import hits_expire

    return hits_expire(limit=5000)


@shared_task(base=QueuedAfterCommit)
def box_jobs_enter_campaign(campaign_id: int) -> int:
    """One campaign's accepted candidates enter the box pipeline (asked for by its dashboard; idempotent)."""
    from annotation.services.boxes import box_jobs_enter

    campaign = Campaign.objects.filter(id=campaign_id).first()
    return box_jobs_enter(campaign=campaign) if campaign is not None else 0


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
