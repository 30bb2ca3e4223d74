"""A refit whose process is killed (SIGKILL: the OOM killer, a container stopped hard) must not keep the campaign's
refits away: its lock went with it. It was a cache key with a 10-minute timeout, taken when the refit was queued and
deleted when it ended, so a killed refit left it behind and no refit of that campaign was queued for 10 minutes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from annotation import tasks
from annotation.models import Vote
from annotation.services.refit_lock import campaign_refit_running
from tests.annotation.hits.conftest import campaign_with_votes
from tests.concurrency import another_connection_waits
from tests.wordnet_snapshot import plane_figures_import

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL,
        reason="a refit in another process, killed, on the shared database and Redis: PostgreSQL and Redis (CI)",
    ),
]


def _refit_in_another_process(campaign_id: int) -> subprocess.Popen:
    """What a drain does when the campaign is due (tasks._refit_queue), in a process of its own whose Celery runs
    the refit in-process; same database, same Redis, same cache namespace as this test."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CELERY_TASK_ALWAYS_EAGER": "true",
    }
    script = f"import django; django.setup(); from annotation import tasks; tasks._refit_queue({campaign_id})"
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stderr=subprocess.PIPE)


def _advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        return cursor.fetchone()[0]


def test_a_refit_right_after_one_killed_with_sigkill_runs(make_campaign):
    plane_figures_import()  # a flushed database
    campaign = campaign_with_votes(make_campaign)
    assert campaign.refitted is None

    with transaction.atomic(), connection.cursor() as cursor:
        # The refit in the other process waits for the votes, mid-refit, until it is killed.
        cursor.execute(f"LOCK TABLE {Vote._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        process = _refit_in_another_process(campaign.id)
        deadline = time.monotonic() + 60
        while not another_connection_waits():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the refit in the other process never reached the votes"
            time.sleep(0.05)
        assert campaign_refit_running(campaign_id=campaign.id)  # so the drains meanwhile queue no other refit
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process.stderr.close()
    deadline = time.monotonic() + 10  # PostgreSQL ends the killed process's sessions as their sockets close
    while _advisory_locks() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not campaign_refit_running(campaign_id=campaign.id)

    tasks._refit_queue(campaign.id)  # the next drain or periodic job: the refit runs here (Celery eager)

    campaign.refresh_from_db()
    assert campaign.refitted is not None
    assert campaign.votes_at_refit == 36
