"""An API image import survives losing its job, for real: submitted while the broker is down (202, the job
never queued), then its Celery worker SIGKILLed half-way through the downloads. The periodic resume job
(image-import-resume) queues it each time, and every URL ends up imported exactly once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from rest_framework.authtoken.models import Token

from annotation import demo_images as demo
from annotation.models import Candidate, ImportBatch, ImportItem
from tests.reliability.conftest import ROOT, _stop, account_create_fast, app_env, requires_postgresql
from tests.wordnet_snapshot import plane_figures_import

CIRCLE = "n13873502"


class _Images:
    """Images on loopback; ``/slow.jpg`` answers only once ``release`` is set (``asked`` tells it was asked)."""

    def __init__(self, bodies: dict[str, bytes]):
        self.bodies, self.asked, self.release = bodies, threading.Event(), threading.Event()
        images = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/slow.jpg":
                    images.asked.set()
                    images.release.wait(120)
                body = images.bodies[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_images() -> Iterator[_Images]:
    pictures = list(demo.generate(seed=11, per_synset=1, synsets=tuple(s.wnid for s in demo.SHAPES[:6])))
    bodies = {f"/{i}.jpg": p.jpeg for i, p in enumerate(pictures[:5])} | {"/slow.jpg": pictures[5].jpeg}
    images = _Images(bodies)
    yield images
    images.close()


@pytest.fixture
def beat(tmp_path) -> Iterator:
    """``celery beat`` on its own (not embedded in a worker with -B: that one is a child process which a
    SIGKILL of its worker would leave running)."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
                   "-s", str(tmp_path / "beat-schedule")]  # fmt: skip
        with (tmp_path / "beat.log").open("ab") as log:
            started.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

    yield start
    for process in started:
        _stop(process)


def _wait_for(condition, worker, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: {worker.log_text()[-3000:]}"
        time.sleep(0.2)


@requires_postgresql
def test_an_import_whose_job_is_lost_twice_is_resumed_and_imports_each_url_once(
    transactional_db, tmp_path, app_servers, redis_servers, celery_workers, beat, slow_images
):
    # Given an app server whose broker is a Redis of our own, short resume limits, and a researcher
    plane_figures_import()
    token = Token.objects.create(user=account_create_fast("researcher", "researcher")).key
    cache_redis, broker_redis = redis_servers(), redis_servers()
    env = app_env(
        tmp_path, REDIS_URL=cache_redis.url(), CELERY_BROKER_URL=broker_redis.url(), CELERY_TASK_ALWAYS_EAGER="false",
        IMAGE_FETCH_ALLOW_LOOPBACK="true", IMAGE_IMPORT_STALE_SECONDS="3", IMAGE_IMPORT_PENDING_GRACE_SECONDS="2",
        IMAGE_IMPORT_SWEEP_SECONDS="1",
    )  # fmt: skip
    server = app_servers(env)
    urls = [f"{slow_images.base}/{i}.jpg" for i in range(5)] + [f"{slow_images.base}/slow.jpg"]

    # When the import is submitted while the broker is down
    broker_redis.stop()
    response = httpx.post(
        f"{server.url}/api/v1/image-imports/", json={"synset": CIRCLE, "urls": urls},
        headers={"Authorization": f"Token {token}"}, timeout=60,
    )  # fmt: skip

    # Then it is accepted, with its items pending and no job holding it
    assert response.status_code == 202, response.text[:500]
    batch = ImportBatch.objects.get(id=response.json()["id"])
    assert (batch.status, batch.claim, batch.total, batch.items.filter(outcome="pending").count()) == (
        "pending", "", 6, 6,
    )  # fmt: skip

    # When the broker is back, with beat and a worker: the resume job queues the batch, whose job then hangs
    # on the last download and is SIGKILLed there
    broker_redis.start()
    beat(env)
    first = celery_workers(env, "importer")
    _wait_for(slow_images.asked.is_set, first, "the resumed job never asked for the last URL")
    first.kill()
    batch.refresh_from_db()
    assert (batch.status, batch.claim != "", batch.accepted) == ("running", True, 0)  # claimed, chunk not committed

    # And a worker starts again (the dead job's message stays unacknowledged in Redis for an hour)
    slow_images.release.set()
    second = celery_workers(env, "importer-again")

    # Then the batch is taken over once its heartbeat is stale, and each URL is imported exactly once
    _wait_for(lambda: ImportBatch.objects.get(id=batch.id).status == "done", second, "the import never finished")
    batch.refresh_from_db()
    assert (batch.claim, batch.total, batch.accepted, batch.duplicate, batch.near_duplicate, batch.rejected) == (
        "", 6, 6, 0, 0, 0,
    )  # fmt: skip
    assert list(ImportItem.objects.filter(batch=batch).values_list("outcome", flat=True)) == ["accepted"] * 6
    assert Candidate.objects.filter(batch=batch).count() == 6
    assert "image_imports_resume queued 1 import batches" in first.log_text()
    assert "image_imports_resume queued 1 import batches" in second.log_text()
