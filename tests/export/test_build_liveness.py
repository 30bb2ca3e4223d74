"""A build that is alive is never taken over: its heartbeat is written by a thread of its own for as long as the job
runs, including the snapshot, which is one transaction and writes no progress (at ImageNet's size it runs for
minutes; past STALE_AFTER the resume job took a live build over, and the two jobs' snapshots met on the same rows)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from annotation.models import Vote
from export import services
from export.models import DatasetVersion

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a second connection holds a table lock: PostgreSQL"),
]


def test_a_build_held_up_in_its_snapshot_keeps_its_heartbeat_and_is_not_taken_over(campaign, admin, monkeypatch):
    monkeypatch.setattr(services, "STALE_AFTER", timedelta(seconds=2))
    locked, seen = threading.Event(), {}

    def hold_the_votes() -> None:
        """Another transaction holds the vote table for 3.5 s: the snapshot, which reads it, waits that long."""
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"LOCK TABLE {Vote._meta.db_table} IN ACCESS EXCLUSIVE MODE")
                locked.set()
                time.sleep(3.5)
                version = DatasetVersion.objects.get(name="long")
                seen.update(phase=version.phase, age=(time.time() - version.heartbeat.timestamp()))
                seen["stalled"] = services.dataset_versions_stalled()
        finally:
            locked.set()
            connections.close_all()

    holder = threading.Thread(target=hold_the_votes)
    holder.start()
    locked.wait(10)
    # The build job runs on commit (Celery eager), here, and waits for the vote table.
    version = services.dataset_version_create(
        user=admin, name="long", campaign_ids=[campaign.id], options={"formats": ["votes"]}
    )
    holder.join(30)

    assert seen["phase"] == "snapshot", seen
    assert seen["age"] < 2, seen  # written while the snapshot waited
    assert version.id not in seen["stalled"], seen  # the resume job leaves it to its live job
    version.refresh_from_db()
    assert (version.status, version.phase) == ("done", "done")
