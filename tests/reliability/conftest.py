"""Real processes for the fault tests, all on loopback and all started here: Redis servers of our own (stopped
and restarted at will — never the shared one on REDIS_URL), a gunicorn app server and Celery workers, both
pointed at this test's PostgreSQL database. Every process is ended by the fixture that started it, by its id.

These tests need PostgreSQL (the app server and the workers are other processes, which cannot share
pytest-django's SQLite connection); CI (.ci/run) runs them with DATABASE_URL set."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.db import connection

from tests.wordnet_snapshot import plane_figures_import

ROOT = Path(__file__).resolve().parents[2]
# Under pytest-xdist each worker (gw0, gw1, ...) prefers its own port, so two workers starting their Redis at
# the same moment never both pick the same free port.
PREFERRED_REDIS_PORT = 6391 + 10 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)

requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the app server and Celery workers are separate processes on the test database: PostgreSQL (CI)",
)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens there, else any free port the kernel picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def closed_port() -> int:
    """A port on which nothing listens (bound once, then released)."""
    return free_port()


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class RedisServer:
    """A redis-server of our own without persistence: a restart loses every queued message and cached key,
    as a crashed Redis without AOF would."""

    def __init__(self, workdir: Path, port: int):
        self.workdir, self.port = workdir, port
        self.process: subprocess.Popen | None = None
        self.log = workdir / f"redis-{port}.log"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while not self.ping():
            assert self.process.poll() is None, f"redis-server on {self.port} exited: {_tail(self.log)}"
            assert time.monotonic() < deadline, f"redis-server on {self.port} did not answer"
            time.sleep(0.05)

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class AppServer:
    """gunicorn serving config.wsgi with the given environment (threads, so many clients at once)."""

    def __init__(self, workdir: Path, env: dict[str, str], *, workers: int = 2, threads: int = 8):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"gunicorn-{self.port}.log"
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
            "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"gunicorn exited: {_tail(self.log)}"
            assert time.monotonic() < deadline, f"gunicorn did not answer: {_tail(self.log)}"
            try:  # the health check answers (503 when the database or Redis is down, as some tests want)
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        _stop(self.process)

    def tail(self) -> str:
        return _tail(self.log)


class CeleryWorker:
    """A real `celery worker` process (solo pool), optionally with beat embedded (-B) for periodic jobs."""

    def __init__(self, workdir: Path, env: dict[str, str], name: str, *, beat: bool = False):
        self.workdir, self.env, self.name, self.beat = workdir, env, name, beat
        self.log = workdir / f"celery-{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{self.name}-{os.getpid()}@%h",
        ]  # fmt: skip
        if self.beat:
            command += ["-B", "-s", str(self.workdir / f"beat-{self.name}")]
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + 60
        while " ready." not in self.log.read_text(errors="replace")[offset:]:
            assert self.process.poll() is None, f"celery worker {self.name} exited: {_tail(self.log)}"
            assert time.monotonic() < deadline, f"celery worker {self.name} did not start: {_tail(self.log)}"
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement of the message in hand."""
        _stop(self.process, signal.SIGKILL)
        self.process = None

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def app_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """The environment of a server or worker process: this test's database, our own data folder, quiet
    logs; ``overrides`` set variables (None removes one). REDIS_URL and CELERY_BROKER_URL are never
    inherited: a child process talks only to the Redis servers this test started."""
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    data = tmp_path / "app-data"
    data.mkdir(exist_ok=True)
    env.update({"DATABASE_URL": database_url(), "SYNSIGHT_DATA_DIR": str(data), "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1"})  # fmt: skip
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture
def redis_servers(tmp_path) -> Iterator:
    """Start Redis servers of our own: the first on 6391 when it is free, the others anywhere."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer(tmp_path, free_port(None if started else PREFERRED_REDIS_PORT))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def app_servers(tmp_path) -> Iterator:
    started: list[AppServer] = []

    def start(env: dict[str, str], **options) -> AppServer:
        server = AppServer(tmp_path, env, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def celery_workers(tmp_path) -> Iterator:
    started: list[CeleryWorker] = []

    def start(env: dict[str, str], name: str, **options) -> CeleryWorker:
        worker = CeleryWorker(tmp_path, env, name, **options)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def shapes_campaign(*, per_synset: int, **policy):
    """A running campaign over circle, triangle and square with ``per_synset`` candidates each and no gold.
    Transactional tests start from an empty database, so the synsets are imported here first."""
    from annotation.services.campaigns import campaign_create, campaign_set_state
    from tests.annotation.hits.conftest import SHAPES, make_candidates

    plane_figures_import()
    owner = account_create_fast("researcher", "researcher")
    campaign = campaign_create(owner=owner, name="reliability", wnids=SHAPES, gold_rate=0.0, **policy)
    for wnid in SHAPES:
        make_candidates(wnid, per_synset)
    return campaign_set_state(campaign=campaign, state="running")


def account_create_fast(username: str, role: str = "worker"):
    from workers.roles import Role
    from workers.services import account_create

    return account_create(username=username, password=f"pw-{username}-x1", role=Role(role))


def crowd_tokens(campaign, count: int) -> list[str]:
    """``count`` qualified workers of the campaign and their API tokens."""
    from rest_framework.authtoken.models import Token

    from tests.annotation.hits.conftest import qualify

    tokens = []
    for i in range(count):
        worker = account_create_fast(f"crowd{i:03d}")
        qualify(worker, campaign)
        tokens.append(Token.objects.create(user=worker).key)
    return tokens
