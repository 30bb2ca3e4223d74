"""Celery tasks for image imports (listed in settings.CELERY_IMPORTS): ids in, one service call each."""

from celery import shared_task

from annotation.services import images


@shared_task(acks_late=True)
def image_import_run(batch_id: int) -> None:
    """Process the next pending items of an API import batch, then re-enqueue while any remain, so a
    10,000-URL batch is many short tasks. Idempotent: a redelivered task finds those items done."""
    if images.import_batch_step(batch_id=batch_id):
        image_import_run.delay(batch_id)
