"""Celery tasks of the export app: ids in, one service call. The build is one long task on purpose: a
version's files are streams (tar shards, JSON arrays) that cannot be resumed half-way cheaply, so a
redelivered task (acks_late) starts the files again from the stored snapshot, which gives the same bytes."""

from celery import shared_task

from config.celery import QueuedAfterCommit
from export import services


@shared_task(acks_late=True, base=QueuedAfterCommit)  # dataset_versions_resume catches up a lost one
def dataset_version_build(version_id: int) -> dict:
    version = services.dataset_version_build(version_id=version_id)
    return {"id": version.id, "status": version.status, "manifest_sha256": version.manifest_sha256}


@shared_task
def dataset_versions_resume() -> list[int]:
    """Periodic: queue the build of every version whose job was lost (broker down when it was created, or a
    worker killed mid-build); the build's own claim lets only one job run a version."""
    ids = services.dataset_versions_stalled()
    for version_id in ids:
        dataset_version_build.delay(version_id)
    return ids


@shared_task
def export_leftovers_remove() -> list[str]:
    """Periodic (Celery beat, hourly): remove the scratch folders of builds and verifies whose process died,
    and the files of deleted or failed versions (services.export_leftovers_remove)."""
    return services.export_leftovers_remove()
