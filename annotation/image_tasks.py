"""Celery tasks for image imports (listed in settings.CELERY_IMPORTS): ids in, one service call each."""

import logging

from celery import shared_task

from annotation.services import images
from config.celery import QueuedAfterCommit

log = logging.getLogger(__name__)


@shared_task(acks_late=True, base=QueuedAfterCommit)  # image_imports_resume catches up a lost one
def image_import_run(batch_id: int) -> None:
    """Process the next pending items of an API import batch, then re-enqueue while any remain, so a
    10,000-URL batch is many short tasks. Idempotent: a redelivered task finds those items done, and a
    task that finds the batch claimed by a live job leaves it to that job."""
    if images.import_batch_step(batch_id=batch_id):
        image_import_run.delay(batch_id)


@shared_task
def image_imports_resume() -> list[int]:
    """Periodic (Celery beat, IMAGE_IMPORT_SWEEP_SECONDS): queue again every API batch whose job was lost
    (annotation/services/images.py, import_batches_stalled); the claim lets only one job run a batch. Also
    marks failed the foreground imports whose process ended midway (import_batches_abandoned), and deletes
    staged uploads nothing will read (import_staging_leftovers_remove)."""
    ids = images.import_batches_stalled()
    if ids:
        log.info("image_imports_resume queued %d import batches whose job was lost: %s", len(ids), ids)
    for batch_id in ids:
        image_import_run.delay(batch_id)
    if abandoned := images.import_batches_abandoned():
        log.warning("image_imports_resume marked failed %d foreground imports that stopped midway: %s",
                    len(abandoned), abandoned)  # fmt: skip
    images.import_staging_leftovers_remove()
    return ids
