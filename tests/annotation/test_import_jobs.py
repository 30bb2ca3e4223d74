"""API import jobs that get lost: a batch is held by one job at a time (a claim with a heartbeat), and the
periodic resume queues again a batch whose job died (claimed, heartbeat stale) or never ran (unclaimed,
untouched), without importing any item twice. Under pytest-django's `db` fixture on_commit callbacks never
run, so a batch submitted here is exactly a batch whose job was lost (broker down as it was queued)."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from annotation import image_tasks
from annotation.models import Candidate, Image, ImportBatch, ImportItem
from annotation.services import images
from taxonomy.models import Synset
from tests.annotation.conftest import stored_files

STALE = timedelta(seconds=600)  # settings.IMAGE_IMPORT_STALE_SECONDS
GRACE = timedelta(seconds=300)  # settings.IMAGE_IMPORT_PENDING_GRACE_SECONDS


def _url_batch(researcher, dog, image_server, shapes, n: int) -> ImportBatch:
    urls = [image_server.add(f"/{i}.jpg", shapes[i].jpeg) for i in range(n)]
    return images.import_urls_submit(user=researcher, synset=dog, urls=urls)


def _age(batch: ImportBatch, **fields: timedelta) -> None:
    """Move the batch's timestamps back, as if that much time had passed since they were written."""
    ImportBatch.objects.filter(id=batch.id).update(**{name: timezone.now() - delta for name, delta in fields.items()})


def _outcomes(batch: ImportBatch) -> list[tuple[str, str]]:
    return list(batch.items.order_by("id").values_list("name", "outcome"))


def test_a_batch_whose_job_died_mid_way_is_resumed_and_no_item_is_imported_twice(
    db, media, dog, researcher, shapes, image_server
) -> None:
    # Given a four-URL batch whose job claimed it, committed two items, and was killed (claim left, no release)
    batch = _url_batch(researcher, dog, image_server, shapes, 4)
    dead = images.import_batch_claim(batch_id=batch.id)
    pending = list(batch.items.order_by("id").values_list("id", "name")[:2])
    images.images_ingest(batch=batch, incoming=images._pending_incoming(batch, pending), claim=dead)
    assert dead is not None
    assert (Candidate.objects.count(), batch.items.filter(outcome="pending").count()) == (2, 2)

    # When the same message is redelivered while the heartbeat is still fresh, and the resume job runs
    redelivered = images.import_batch_step(batch_id=batch.id)
    resumed_early = image_tasks.image_imports_resume()

    # Then neither touches the batch: it may still be a live job
    batch.refresh_from_db()
    assert (redelivered, resumed_early) == (False, [])
    assert (batch.claim, batch.status, batch.accepted, Candidate.objects.count()) == (dead, "running", 2, 2)

    # When the heartbeat is older than IMAGE_IMPORT_STALE_SECONDS and the resume job runs (twice)
    _age(batch, heartbeat=STALE + timedelta(seconds=1))
    resumed = image_tasks.image_imports_resume()
    again = image_tasks.image_imports_resume()

    # Then the batch is queued once, taken over, finished, and every URL is one candidate
    batch.refresh_from_db()
    assert (resumed, again) == ([batch.id], [])
    assert (batch.status, batch.claim, batch.total, batch.accepted, batch.duplicate, batch.rejected) == (
        "done", "", 4, 4, 0, 0,
    )  # fmt: skip
    assert [outcome for _, outcome in _outcomes(batch)] == ["accepted"] * 4
    assert Candidate.objects.filter(synset=dog).count() == Image.objects.count() == 4
    assert ImportItem.objects.filter(batch=batch, candidate__isnull=False).values("candidate").distinct().count() == 4


def test_a_batch_whose_job_never_ran_is_queued_after_the_grace_period(
    db, media, dog, researcher, shapes, image_server
) -> None:
    # Given a batch submitted while its job could not be queued, and a folder import that is running
    batch = _url_batch(researcher, dog, image_server, shapes, 2)
    folder = images.import_batch_create(synset=dog, source=ImportBatch.Source.FOLDER, origin="/srv/pictures")
    ImportBatch.objects.filter(id=folder.id).update(status="running")
    _age(folder, created=GRACE * 10, heartbeat=timedelta(seconds=5))  # its last chunk was committed 5 s ago

    # When the resume job runs before IMAGE_IMPORT_PENDING_GRACE_SECONDS, then after it
    early = image_tasks.image_imports_resume()
    _age(batch, created=GRACE + timedelta(seconds=1))
    late = image_tasks.image_imports_resume()

    # Then the API batch is queued only once the grace period is over, and is done; the folder import (its
    # command runs in the foreground, there is no job to resume; it is alive) is left alone
    batch.refresh_from_db()
    folder.refresh_from_db()
    assert (early, late) == ([], [batch.id])
    assert (batch.status, batch.accepted, batch.claim) == ("done", 2, "")
    assert folder.status == "running"


def test_a_step_whose_next_task_was_lost_is_resumed_from_its_last_heartbeat(
    db, media, dog, researcher, shapes, image_server
) -> None:
    # Given a batch whose first step ran (two of three items) and whose re-enqueued task was lost
    batch = _url_batch(researcher, dog, image_server, shapes, 3)
    more = images.import_batch_step(batch_id=batch.id, limit=2)
    batch.refresh_from_db()
    assert (more, batch.status, batch.claim, batch.accepted) == (True, "running", "", 2)

    # When the resume job runs within the grace period of its last heartbeat, then after it
    early = images.import_batches_stalled()
    _age(batch, heartbeat=GRACE + timedelta(seconds=1))
    late = image_tasks.image_imports_resume()

    # Then it is queued once the grace period is over and finishes with each item once
    batch.refresh_from_db()
    assert (early, late) == ([], [batch.id])
    assert (batch.status, batch.total, batch.accepted) == ("done", 3, 3)
    assert Candidate.objects.count() == 3


def test_a_job_that_was_taken_over_writes_nothing_and_leaves_no_file(
    db, media, dog, researcher, shapes, image_server
) -> None:
    # Given a job that went silent past the stale limit, and a second job that took the batch over
    batch = _url_batch(researcher, dog, image_server, shapes, 2)
    slow = images.import_batch_claim(batch_id=batch.id)
    _age(batch, heartbeat=STALE + timedelta(seconds=1))
    taker = images.import_batch_claim(batch_id=batch.id)
    assert slow is not None and taker is not None and taker != slow

    # When the slow job wakes up and commits its chunk
    pending = list(batch.items.order_by("id").values_list("id", "name"))
    with pytest.raises(images.ClaimLost):
        images.images_ingest(batch=batch, incoming=images._pending_incoming(batch, pending), claim=slow)

    # Then nothing of it is stored: no candidate, no image file, its items still pending, the claim the taker's
    batch.refresh_from_db()
    assert (Candidate.objects.count(), Image.objects.count(), stored_files(media)) == (0, 0, [])
    assert [outcome for _, outcome in _outcomes(batch)] == ["pending", "pending"]
    assert (batch.claim, batch.accepted) == (taker, 0)
    # And the slow job's heartbeat stops it too, before it downloads anything more
    with pytest.raises(images.ClaimLost):
        images._heartbeat(batch.id, slow)


def test_a_finished_or_failed_batch_is_never_claimed(db, media, dog, researcher, shapes, image_server) -> None:
    done = _url_batch(researcher, dog, image_server, shapes, 1)
    assert images.import_batch_step(batch_id=done.id) is False
    failed = _url_batch(researcher, dog, image_server, shapes, 1)
    images.import_batch_fail(batch=failed, error="The import stopped: test")
    _age(done, heartbeat=STALE * 2, created=STALE * 2)
    _age(failed, created=STALE * 2)

    assert (images.import_batch_claim(batch_id=done.id), images.import_batch_claim(batch_id=failed.id)) == (None, None)
    assert images.import_batches_stalled() == []
    assert ImportBatch.objects.get(id=done.id).status == "done"


def test_a_foreground_import_whose_process_died_is_marked_failed_not_left_running(
    db, media, dog, researcher, shapes, image_server
) -> None:
    # Given a folder import (manage.py import_images) killed after a chunk, one killed before any chunk, one
    # still committing chunks, and an API batch whose job died
    killed = images.import_batch_create(synset=dog, source=ImportBatch.Source.FOLDER, origin="/data/dogs")
    images.images_ingest(batch=killed, incoming=iter([]))  # status "running"
    ImportBatch.objects.filter(id=killed.id).update(total=100, accepted=100)
    _age(killed, heartbeat=STALE + timedelta(seconds=1))
    killed_early = images.import_batch_create(synset=dog, source=ImportBatch.Source.ARCHIVE, origin="/data/d.zip")
    _age(killed_early, created=STALE + timedelta(seconds=1))
    alive = images.import_batch_create(synset=dog, source=ImportBatch.Source.FOLDER, origin="/data/more")
    _age(alive, created=STALE * 3, heartbeat=timedelta(seconds=5))
    api = _url_batch(researcher, dog, image_server, shapes, 1)
    _age(api, created=STALE * 2)

    # When the periodic resume job runs
    queued = image_tasks.image_imports_resume()

    # Then the two dead foreground imports are failed with a sentence, the live one is left alone, and the
    # API batch is resumed (it imported its URL), not failed
    assert queued == [api.id]
    states = dict(ImportBatch.objects.values_list("id", "status"))
    assert (states[killed.id], states[killed_early.id], states[alive.id], states[api.id]) == (
        "failed", "failed", "pending", "done",
    )  # fmt: skip
    killed.refresh_from_db()
    assert killed.error.startswith("The import stopped midway: its process ended before it finished.")
    assert (killed.accepted, killed.finished is not None) == (100, True)  # its counts are kept

    # And a second run changes nothing
    assert image_tasks.image_imports_resume() == []
    assert ImportBatch.objects.filter(status="failed").count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent connections: PostgreSQL")
def test_of_concurrent_claims_exactly_one_wins(transactional_db) -> None:
    # Given an unclaimed API batch, and eight jobs (own connections) that try to claim it at the same moment
    synset, _ = Synset.objects.get_or_create(
        id=2084071, defaults={"name": "dog.n.01", "words": "dog", "gloss": "", "lexname": "noun.animal", "depth": 8}
    )
    batch = images.import_batch_create(synset=synset, source=ImportBatch.Source.URL)
    ImportItem.objects.create(batch=batch, name="http://127.0.0.1:9/a.jpg")
    start, tokens = threading.Barrier(8), []

    def job() -> None:
        try:
            start.wait()
            tokens.append(images.import_batch_claim(batch_id=batch.id))
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly one holds it, and the stored claim is that one's
    winners = [token for token in tokens if token is not None]
    assert (len(tokens), len(winners)) == (8, 1)
    assert ImportBatch.objects.get(id=batch.id).claim == winners[0]


def test_staged_uploads_left_behind_are_removed_and_those_of_open_batches_kept(
    db, media, dog, researcher, shapes
) -> None:
    def upload(i: int) -> SimpleUploadedFile:
        return SimpleUploadedFile(f"{i}.jpg", shapes[i].jpeg, content_type="image/jpeg")

    # Given an upload batch still waiting for its job (its staged files are its only copy of the images),
    waiting = images.import_upload_submit(user=researcher, synset=dog, files=[upload(0)])
    # one processed whose process died before its on-commit deletes ran (under `db` they never run),
    processed = images.import_upload_submit(user=researcher, synset=dog, files=[upload(1), upload(2)])
    assert images.import_batch_step(batch_id=processed.id) is False
    # one failed whose staged files were not discarded,
    failed = images.import_upload_submit(user=researcher, synset=dog, files=[upload(3)])
    images.import_batch_fail(batch=failed, error="The import stopped: test")
    # and the files of two uploads whose batch row never committed (the request died), an hour old and new
    for name, age in (("imports/990001/1", timedelta(hours=2)), ("imports/990002/1", timedelta(0))):
        default_storage.save(name, ContentFile(shapes[4].jpeg))
        then = (timezone.now() - age).timestamp()
        os.utime(media / name, (then, then))
    staged = [f for f in stored_files(media) if f.startswith("imports/")]
    assert len(staged) == 6

    # When the periodic resume job runs
    image_tasks.image_imports_resume()

    # Then only the waiting batch's files and the young orphan remain; the other folders are gone
    assert [f for f in stored_files(media) if f.startswith("imports/")] == [
        f"imports/{waiting.id}/{waiting.items.get().id}", "imports/990002/1",
    ]  # fmt: skip
    assert sorted(p.name for p in (media / "imports").iterdir()) == sorted([str(waiting.id), "990002"])
    # And the waiting batch still imports its image
    assert images.import_batch_step(batch_id=waiting.id) is False
    assert ImportBatch.objects.get(id=waiting.id).accepted == 1
