"""The whole pipeline, measured end to end: simulated workers sign in, pass the quiz and label a small demo
campaign over HTTP (a live server), Celery turns their votes into labels — a real `celery worker` process
on PostgreSQL + Redis when REDIS_URL is set (CI), eager tasks on SQLite otherwise — and the report is
checked against the demo ground truth."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from annotation import demo_images as demo
from annotation.models import Candidate
from annotation.services import demo as demo_service
from config.celery import app as celery_app
from config.celery import eager_set

ROOT = Path(__file__).resolve().parents[2]
SYNSETS = [demo.BY_LABEL[label].wnid for label in ("square", "circle", "star")]
PER_SYNSET = 30


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """A real Celery worker on the broker, pointed at this test's database; None in eager mode."""
    if not settings.REDIS_URL:
        yield None
        return
    eager_set(False)
    # Test databases start their ids at 1 again, but the broker and the cache outlive them: a task queued by
    # an earlier run (a consensus update of "candidate 5", a refit of "campaign 1"), a refit lock or the
    # pooled worker of "campaign 1" would land on this run's rows. Those leftovers made the vote spend
    # swing from run to run (a stale refit lock held refits off for the first 200 votes).
    celery_app.control.purge()
    # The worker shares this test's cache namespace (tests/conftest.py gives every test a fresh key prefix):
    # no refit lock or pooled worker of an earlier run's "campaign 1" is seen, and the live server's request
    # for a consensus drain is the key the drain deletes as it starts. (With the worker in the settings' empty
    # namespace that key was never deleted: a HIT committed within its second of life asked for no drain, the
    # last HITs of a run were never weighed — no beat sweep here — and the crowd, finding no work, left 13 to
    # 72 of the 78 candidates open.)
    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false",
           "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", "")}  # fmt: skip
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = _database_url(connection.settings_dict)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"e2e-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (celery_app.control.ping(timeout=0.5) or []):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the Celery worker did not start"
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _database_url(db: dict) -> str:
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def demo_campaign(make_demo_campaign):
    return make_demo_campaign(name="e2e shapes", wnids=SYNSETS, per_synset=PER_SYNSET)


def test_simulated_crowd_labels_a_campaign_precisely_within_the_vote_budget(
    demo_campaign, celery_worker_process, live_server
):
    # pytest-django serves an SQLite test database through one shared connection: one client at a time there.
    concurrency = 6 if connection.vendor == "postgresql" else 1
    # A little real time per simulated second (a 50 s HIT takes 0.5 s): a real Celery worker settles each
    # HIT's candidates before the next HIT leases them, as it does when people take a minute per HIT. At
    # 0.003 a worker slowed by a loaded machine left the candidates awaiting consensus so long that the
    # simulated workers gave up for want of work (27 of 78 candidates left open at a load average of 27).
    options = demo_service.SimulationOptions(workers=30, seed=5, concurrency=concurrency, prefix="e2e", pace=0.01)

    report = demo_service.simulate(campaign=demo_campaign, options=options, base_url=live_server.url)

    overall = report["overall"]
    fixed_five = 5 * overall["candidates"]
    assert overall["candidates"] >= 3 * PER_SYNSET - 15  # gold and near-duplicates aside
    assert report["hits"] > 0 and not report["errors"]
    print({k: overall[k] for k in ("candidates", "accepted", "rejected", "open", "precision", "recall", "votes")}
          | {"fixed_five_votes": fixed_five})  # fmt: skip
    assert overall["open"] + overall["unresolved"] <= 0.1 * overall["candidates"]  # the crowd ran out on a few
    false_accepts = round((1 - overall["precision"]) * overall["accepted"])
    assert false_accepts <= 1  # at most one slip among the 36-56 accepted images (measured: 0 or 1)
    assert overall["recall"] >= 0.85  # measured 0.89-0.96: a few positives rejected on a noisy start
    # The vote budget. The 60% of fixed-5 is a figure for a campaign of thousands
    # (benchmarks/simulate_policies.py: 50-58%, 2026-12-04) and is NOT asserted here: on 78 candidates and 30
    # workers most votes come from workers few refits have measured yet, and the spend depends on when the real
    # Celery worker weighs each HIT. On 2026-12-04 this test spent 236 of 390 votes (60.5%) in four runs alone
    # (PostgreSQL + Redis twice, once with busy loops on both cores; SQLite eager once) but 281 (72%) inside a
    # full fresh-clone CI run, with other tests on the other core; earlier sessions saw 236-326. What must never
    # happen is the scheduler buying about as much as a fixed policy would.
    assert overall["votes"] <= fixed_five
    assert report["honest"]["false_blocks"] == [], report["honest"]["blocked_detail"]  # with the reasons
    states = set(Candidate.objects.filter(synset_id__in=[int(w[1:]) for w in SYNSETS]).values_list("state", flat=True))
    assert "accepted" in states and "rejected" in states
    assert settings.REDIS_URL is None or celery_worker_process.poll() is None  # the real worker did the work
