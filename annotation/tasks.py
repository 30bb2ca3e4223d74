"""Celery tasks of the annotation app: thin wrappers over services, with ids as arguments."""

from celery import shared_task

from annotation.services import consensus


@shared_task(acks_late=True)
def consensus_update(candidate_ids: list[int]) -> dict[str, int]:
    """After a HIT: recompute the touched candidates. Idempotent, so a redelivery is harmless."""
    return consensus.candidates_update(candidate_ids=candidate_ids)
