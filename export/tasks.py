"""Celery tasks of the export app: ids in, one service call. The build is one long task on purpose: a
version's files are streams (tar shards, JSON arrays) that cannot be resumed half-way cheaply, so a
redelivered task (acks_late) starts the files again from the stored snapshot, which gives the same bytes."""

from celery import shared_task

from export import services


@shared_task(acks_late=True)
def dataset_version_build(version_id: int) -> dict:
    version = services.dataset_version_build(version_id=version_id)
    return {"id": version.id, "status": version.status, "manifest_sha256": version.manifest_sha256}
