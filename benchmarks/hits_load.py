"""Benchmark: the crowd loop (next HIT -> submit) under 64 concurrent workers on 1,000,000 candidates.

Targets (issue 4): 1,000,000 candidates across 1,000 synsets on PostgreSQL, 64 concurrent simulated workers
looping next-HIT (24 items) -> submit: next-HIT p95 <= 50 ms, submit p95 <= 100 ms, >= 1,000 answered items
per second overall on the machine's cores.

What it does (setup is not timed against the targets; its duration is reported):
  1. creates a scratch PostgreSQL database, migrates it, imports the 1,000 ILSVRC-2012 synsets (+ ancestors),
     bulk-loads Image + Candidate rows with INSERT ... SELECT generate_series (no files: the scheduler and
     submit never open one), a few gold items per synset, one running campaign over the synsets
     (24 images per HIT, 2..5 votes, gold rate 0.1), N qualified worker accounts with DRF tokens; VACUUM ANALYZE.
  2. --mode http: for each --servers entry, starts gunicorn (DEBUG off, REDIS_URL set, so the consensus task
     goes to the Redis broker) and one `celery -A config worker --pool solo` on the scratch database, then
     --clients asyncio clients (one keep-alive HTTP/1.1 connection each, token auth) loop next -> submit for
     --seconds after --warmup seconds. The clients run in this process, on the same cores as the server and
     the database: their CPU share is reported (cpu_seconds.client).
     --mode services: the same loop calling hit_next / hit_submit directly from --clients threads (no HTTP,
     no DRF, no serialisation; one Python process, so the GIL caps it at about one core of Python).
  3. drops the scratch database (also on Ctrl-C and on error) and the Redis database it used.

Closed loop: with --think-ms 0 every client sends its next request as soon as the previous one returns, so the
run measures capacity and latencies include queueing (Little's law: clients = throughput x cycle time).
--think-ms T adds a pause per HIT (a human labelling 24 images), i.e. a fixed offered load.

Prints one JSON object. Usage:
    .venv/bin/python benchmarks/hits_load.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]
        [--mode http|services|both] [--servers sync:3,gthread:2x8] [--seconds 60] [--clients 64]
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WNIDS_FILE = ROOT / "tests" / "data" / "ilsvrc2012_wnids.txt"
TARGETS = {"next_ms_p95_max": 50, "submit_ms_p95_max": 100, "answered_items_per_second_min": 1000}


def truly_present(sha256: str) -> bool:
    """The simulated ground truth, read off the image as a person would: 62.5 % of candidates show the synset
    (the first byte of the content hash below 160). Gold items are set up with the same rule."""
    return int(sha256[:2], 16) < 160


def simulated_answer(sha256: str, rng: random.Random, accuracy: float) -> str:
    """A diligent worker: right with probability ``accuracy``. (Random answers would get every simulated
    worker blocked as a spammer by the consensus refit, and the load would turn into 403s.)"""
    right = truly_present(sha256) == (rng.random() < accuracy)
    return "present" if right else "absent"


def submit_payload(hit: dict, rng: random.Random, accuracy: float) -> bytes:
    """The JSON body of a diligent worker's submit for this next-HIT answer (a fresh idempotency key)."""
    answers = [
        {"item": item["id"], "answer": simulated_answer(item["thumbnail"].rsplit("/", 1)[1][:64], rng, accuracy),
         "ms": 800}
        for item in hit["items"]
    ]  # fmt: skip
    return json.dumps({"idempotency_key": uuid.uuid4().hex, "answers": answers}).encode()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"count": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 2)}


# ---- CPU accounting: utime + stime of every process on the machine, grouped by command name ------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _postgres_group(pid: int, scratch: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().decode(errors="replace")
    except OSError:
        title = ""
    if f" {scratch} " in title:
        return "postgres (benchmark database)"
    if "(" in title:  # a backend: "postgres: 15/main: user dbname host(port) state"
        return "postgres (other databases: other sessions)"
    return "postgres (server processes)"


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    snapshot = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        if comm == "postgres":  # group backends by database now: they may be gone when the delta is taken
            comm = _postgres_group(int(entry.name), os.environ.get("DATABASE_URL", "").rsplit("/", 1)[-1])
        fields = raw[raw.rindex(")") + 2 :].split()
        snapshot[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return snapshot


def cpu_delta(before: dict, after: dict, groups: dict[str, set[int]]) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by group: explicit pids first, then PostgreSQL backends by
    database, then anything else on the machine (e.g. other test runs sharing it) by command name."""
    totals: Counter = Counter()
    for pid, (comm, seconds) in after.items():
        used = seconds - before[pid][1] if pid in before and before[pid][0] == comm else seconds
        group = next((name for name, pids in groups.items() if pid in pids), None)
        if group is None:
            if comm.startswith("postgres"):
                group = comm
            elif comm.startswith("redis"):
                group = "redis"
            else:
                group = f"other: {comm}"
        totals[group] += used
    return {name: round(value, 1) for name, value in sorted(totals.items()) if value >= 0.1}


def children_of(pid: int) -> set[int]:
    found, frontier = set(), {pid}
    while frontier:
        current = frontier.pop()
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                kids = {int(k) for k in f.read().split()}
        except OSError:
            kids = set()
        frontier |= kids - found
        found |= kids
    return found


# ---- set-up ---------------------------------------------------------------------------------------------------


def setup_database(*, candidates: int, synsets: int, clients: int, gold_per_synset: int) -> dict:
    """Everything the load needs, in the scratch database Django is configured for. Returns ids and timings."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from annotation.models import Campaign
    from annotation.services.campaigns import campaign_create, campaign_set_state
    from workers.models import Qualification
    from workers.roles import Role
    from workers.services import account_create, roles_ensure

    timings = {}
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    timings["migrate"] = time.perf_counter() - started

    wnids = [line.strip() for line in WNIDS_FILE.read_text().split() if line.strip()][:synsets]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(wnids) + "\n")
        listing.flush()
        started = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            call_command("import_wordnet", "--wnids", listing.name, "--no-progress", stdout=quiet)
        timings["import_wordnet"] = time.perf_counter() - started

    synset_ids = [int(w[1:]) for w in wnids]
    per_synset = candidates // len(synset_ids)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        # Content-addressed names as the importer makes them; phash = the serial (no near duplicates).
        cursor.execute(
            """
            INSERT INTO annotation_image
                (sha256, file, thumbnail, medium, format, width, height, byte_size, phash, created)
            SELECT h,
                   'images/' || substr(h, 1, 2) || '/' || substr(h, 3, 2) || '/' || h || '.jpg',
                   'thumbs/' || substr(h, 1, 2) || '/' || substr(h, 3, 2) || '/' || h || '.webp',
                   'medium/' || substr(h, 1, 2) || '/' || substr(h, 3, 2) || '/' || h || '.webp',
                   'JPEG', 640, 480, 120000 + g %% 50000, g, now()
            FROM (SELECT g, encode(sha256(int8send(g)), 'hex') AS h
                  FROM generate_series(1::bigint, %s::bigint) AS g) AS s
            ORDER BY g
            """,
            [per_synset * len(synset_ids)],
        )
        # Candidates arrive synset by synset (one import batch each), so a synset's rows are adjacent.
        cursor.execute(
            """
            INSERT INTO annotation_candidate
                (image_id, synset_id, state, created, votes_count, yes_count, pending_count, priority, model_version)
            SELECT i.id, (%s::bigint[])[1 + (i.id - lo.id) / %s], 'new', now(), 0, 0, 0, 0.0, ''
            FROM annotation_image AS i, (SELECT min(id) AS id FROM annotation_image) AS lo
            ORDER BY i.id
            """,
            [synset_ids, per_synset],
        )
        timings["bulk_load_rows"] = cursor.rowcount
        if gold_per_synset:
            step = max(1, per_synset // gold_per_synset)
            cursor.execute(
                """
                INSERT INTO annotation_golditem (candidate_id, synset_id, present, created)
                SELECT c.id, c.synset_id, get_byte(decode(i.sha256, 'hex'), 0) < 160, now()
                FROM annotation_candidate AS c JOIN annotation_image AS i ON i.id = c.image_id,
                    (SELECT min(id) AS id FROM annotation_candidate) AS lo
                WHERE (c.id - lo.id) %% %s = 0
                """,
                [step],
            )
    timings["bulk_load"] = time.perf_counter() - started

    started = time.perf_counter()
    researcher = account_create(username="bench_researcher", password="bench-researcher-pw-1", role=Role.RESEARCHER)
    campaign = campaign_create(
        owner=researcher,
        name="hits_load benchmark",
        wnids=wnids,
        allow_sensitive=True,  # the ILSVRC list has 3 people synsets (scuba diver, groom, ballplayer)
        images_per_hit=24,
        min_votes=2,
        max_votes=5,
        gold_rate=0.1 if gold_per_synset else 0.0,
        target_per_synset=per_synset,
    )
    campaign = campaign_set_state(campaign=campaign, state=Campaign.State.RUNNING)
    with transaction.atomic():
        # Accounts in bulk: one password hash per account would take most of a minute and is not under test.
        workers = User.objects.bulk_create(
            User(username=f"bench_worker_{i:03d}", password=make_password(None)) for i in range(clients)
        )
        roles_ensure()[Role.WORKER].user_set.add(*workers)
        tokens = Token.objects.bulk_create(Token(key=Token.generate_key(), user=w) for w in workers)
        Qualification.objects.bulk_create(
            Qualification(worker=w, campaign=campaign, status=Qualification.Status.QUALIFIED) for w in workers
        )
    timings["accounts_campaign"] = time.perf_counter() - started

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        # The bulk load leaves ~1 GB of WAL behind it: without a checkpoint here, PostgreSQL ran two or three
        # WAL-triggered checkpoints during the measured run. (COMMITs of 20-165 ms still show in the server's
        # log without one in the window: the checkpoint is not the only source of the tail.)
        cursor.execute("CHECKPOINT")
    timings["vacuum_analyze"] = time.perf_counter() - started
    return {
        "campaign_id": campaign.id,
        "worker_ids": [w.id for w in workers],
        "tokens": [t.key for t in tokens],
        "timings": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in timings.items()},
    }


def table_counts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (SELECT count(*) FROM annotation_image), (SELECT count(*) FROM annotation_candidate),
                      (SELECT count(*) FROM annotation_golditem),
                      (SELECT count(*) FROM annotation_campaignsynset)"""
        )
        images, candidates, gold, synsets = cursor.fetchone()
    return {"images": images, "candidates": candidates, "gold_items": gold, "campaign_synsets": synsets}


def db_progress() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (SELECT count(*) FROM annotation_hit), (SELECT count(*) FROM annotation_vote),
                      (SELECT count(*) FROM annotation_candidate WHERE model_version <> ''),
                      (SELECT count(*) FROM annotation_candidate WHERE state IN ('accepted', 'rejected', 'unresolved'))
            """
        )
        hits, votes, recomputed, decided = cursor.fetchone()
    return {"hits": hits, "votes": votes, "candidates_recomputed_by_consensus": recomputed, "decided": decided}


# ---- the load: in-process services ------------------------------------------------------------------------------


def run_services(*, campaign_id: int, worker_ids: list[int], seconds: float, warmup: float, accuracy: float) -> dict:
    from django.contrib.auth.models import User
    from django.db import connections

    from annotation.errors import AnnotationError
    from annotation.models import Campaign
    from annotation.services.hits import hit_next, hit_submit

    campaign = Campaign.objects.get(id=campaign_id)
    users = {u.id: u for u in User.objects.filter(id__in=worker_ids)}
    next_ms, submit_ms, errors, answered, no_work = [], [], Counter(), [0], [0]
    lock = threading.Lock()
    barrier = threading.Barrier(len(worker_ids) + 1)
    window = {}

    def member(user) -> None:
        rng = random.Random(user.id)
        try:
            barrier.wait()
            while (now := time.perf_counter()) < window["end"]:
                counted = now >= window["start"]
                started = time.perf_counter()
                try:
                    hit = hit_next(worker=user, campaign=campaign)
                except AnnotationError as error:
                    with lock:
                        errors[f"next {type(error).__name__}"] += 1
                    continue
                elapsed = 1000 * (time.perf_counter() - started)
                if hit is None:
                    with lock:
                        no_work[0] += 1
                    time.sleep(0.05)
                    continue
                items = list(hit.items.values_list("id", "candidate__image__sha256"))
                answers = [{"item": i, "answer": simulated_answer(h, rng, accuracy), "ms": 800} for i, h in items]
                started = time.perf_counter()
                try:
                    hit_submit(worker=user, hit_id=hit.id, answers=answers, idempotency_key=uuid.uuid4().hex)
                except AnnotationError as error:
                    with lock:
                        errors[f"submit {type(error).__name__}"] += 1
                    continue
                done = time.perf_counter()
                with lock:
                    if counted:
                        next_ms.append(elapsed)
                    if window["start"] <= done < window["end"]:
                        submit_ms.append(1000 * (done - started))
                        answered[0] += len(items)
        except Exception as error:  # reported, not raised: one thread's failure must not hide the others'
            with lock:
                errors[f"exception {type(error).__name__}: {error}"[:200]] += 1
        finally:
            connections.close_all()

    threads = [threading.Thread(target=member, args=(users[w],), daemon=True) for w in worker_ids]
    for thread in threads:
        thread.start()
    own = os.getpid()
    window["start"] = time.perf_counter() + warmup
    window["end"] = window["start"] + seconds
    barrier.wait()
    time.sleep(warmup)
    before = cpu_snapshot()
    time.sleep(max(0.0, window["end"] - time.perf_counter()))
    after = cpu_snapshot()  # before the threads close their connections (their backends' CPU would vanish)
    for thread in threads:
        thread.join()
    measured = min(seconds, time.perf_counter() - window["start"])
    return {
        "mode": "services",
        "threads": len(worker_ids),
        "seconds": round(measured, 1),
        "next_ms": percentiles(next_ms),
        "submit_ms": percentiles(submit_ms),
        "hits": len(submit_ms),
        "answered_items_per_second": round(answered[0] / measured, 1),
        "no_work_responses": no_work[0],
        "errors": dict(errors),
        "cpu_seconds": cpu_delta(before, after, {"benchmark process (services + clients)": {own}}),
    }


def run_uncontended(*, campaign_id: int, worker_id: int, hits: int = 30) -> dict:
    """One worker alone, services called directly: latency without queueing, and the SQL each call issues."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation.models import Campaign
    from annotation.services.hits import hit_next, hit_submit

    campaign = Campaign.objects.get(id=campaign_id)
    user = User.objects.get(id=worker_id)
    next_ms, submit_ms, queries = [], [], {}
    for n in range(hits):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            hit = hit_next(worker=user, campaign=campaign)
            next_ms.append(1000 * (time.perf_counter() - started))
        if n == hits - 1:
            queries["next"] = [(round(1000 * float(q["time"]), 2), q["sql"][:140]) for q in captured.captured_queries]
        answers = [
            {"item": i, "answer": "present" if truly_present(h) else "absent", "ms": 800}
            for i, h in hit.items.values_list("id", "candidate__image__sha256")
        ]
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            hit_submit(worker=user, hit_id=hit.id, answers=answers, idempotency_key=uuid.uuid4().hex)
            submit_ms.append(1000 * (time.perf_counter() - started))
        if n == hits - 1:
            queries["submit"] = [(round(1000 * float(q["time"]), 2), q["sql"][:140]) for q in captured.captured_queries]
    return {
        "next_ms": percentiles(next_ms),
        "submit_ms": percentiles(submit_ms),
        "queries_per_next": len(queries["next"]),
        "queries_per_submit": len(queries["submit"]),
        "queries": queries,
    }


# ---- the load: real HTTP against gunicorn ------------------------------------------------------------------------


class Connection:
    """A minimal keep-alive HTTP/1.1 client (the standard library has no asyncio one; this keeps the client's
    own CPU cost low so that more of the 2 cores go to the server)."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n").encode()
        for attempt in range(2):
            fresh = self.writer is None
            if fresh:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.writer.write(head + body)
                await self.writer.drain()
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed before the response")
                status = int(status_line.split()[1])
                length, close = 0, False
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                    elif name == "transfer-encoding":
                        raise RuntimeError("chunked responses are not expected from this API")
                payload = await self.reader.readexactly(length) if length else b""
                if close:
                    await self.close()
                return status, payload
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                # Only a reused connection that the server had already closed is retried: nothing was processed.
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")


async def http_clients(
    *, port: int, campaign_id: int, tokens: list[str], seconds: float, warmup: float, think_ms: float, accuracy: float
) -> dict:
    next_ms, submit_ms, errors, answered, no_work = [], [], Counter(), [0], [0]
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + seconds

    async def member(index: int, token: str) -> None:
        rng = random.Random(index)
        conn = Connection(port)
        auth = f"Authorization: Token {token}\r\nAccept: application/json\r\nX-Forwarded-Proto: https\r\n"
        send = auth + "Content-Type: application/json\r\n"
        await asyncio.sleep(index * 0.01)  # ramp up over ~0.6 s instead of 64 simultaneous connects
        try:
            while (now := loop.time()) < end:
                try:
                    status, body = await conn.request("POST", f"/api/v1/campaigns/{campaign_id}/hits/next/", auth)
                except (OSError, asyncio.IncompleteReadError) as error:
                    errors[f"next {type(error).__name__}"] += 1
                    await asyncio.sleep(0.1)
                    continue
                elapsed = 1000 * (loop.time() - now)
                if status == 204:
                    no_work[0] += 1
                    await asyncio.sleep(0.05)
                    continue
                if status != 200:
                    errors[f"next {status}"] += 1
                    await asyncio.sleep(0.05)
                    continue
                if now >= start:
                    next_ms.append(elapsed)
                hit = json.loads(body)
                if think_ms:
                    await asyncio.sleep(think_ms / 1000 * rng.uniform(0.5, 1.5))
                payload = submit_payload(hit, rng, accuracy)
                sent = loop.time()
                try:
                    status, body = await conn.request("POST", f"/api/v1/hits/{hit['id']}/submit/", send, payload)
                except (OSError, asyncio.IncompleteReadError) as error:
                    errors[f"submit {type(error).__name__}"] += 1
                    continue
                done = loop.time()
                if status not in (200, 201):
                    errors[f"submit {status}"] += 1
                    continue
                if start <= done < end:
                    submit_ms.append(1000 * (done - sent))
                    answered[0] += len(hit["items"])
        finally:
            await conn.close()

    tasks = [asyncio.create_task(member(i, t)) for i, t in enumerate(tokens)]
    await asyncio.sleep(warmup)
    before = cpu_snapshot()
    await asyncio.gather(*tasks)
    after = cpu_snapshot()
    measured = min(seconds, loop.time() - start)
    return {
        "seconds": round(measured, 1),
        "next_ms": percentiles(next_ms),
        "submit_ms": percentiles(submit_ms),
        "hits": len(submit_ms),
        "answered_items_per_second": round(answered[0] / measured, 1),
        "no_work_responses": no_work[0],
        "errors": dict(errors),
        "_cpu": (before, after),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, token: str, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until gunicorn answers an authenticated request (a loaded machine boots its workers slowly: 60 s was
    not enough at a load average of 33)."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(
                "GET", "/api/v1/me/", headers={"Authorization": f"Token {token}", "X-Forwarded-Proto": "https"}
            )
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
            raise RuntimeError(f"GET /api/v1/me/ answered {status}")
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not become ready")


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url)


def consensus_pending() -> int:
    """Submitted HITs whose votes no consensus drain has weighed yet."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM annotation_hit WHERE consensus_pending")
        return cursor.fetchone()[0]


def celery_backlog(url: str) -> int:
    """Tasks waiting in the broker plus tasks delivered but not yet acknowledged."""
    client = redis_client(url)
    return int(client.llen("celery")) + int(client.hlen("unacked"))


def run_http(
    *,
    server: str,
    env: dict,
    setup: dict,
    seconds: float,
    warmup: float,
    think_ms: float,
    accuracy: float,
    celery: bool,
    redis_url: str,
    profile_dir: str | None,
    processes: list,
    drain_seconds: float = 300,
    celery_processes: int = 1,
    celery_nice: int = 0,
) -> dict:
    kind, _, size = server.partition(":")
    workers, _, threads = size.partition("x")
    port = free_port()
    command = [
        str(VENV_BIN / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        workers,
        "--worker-class",
        kind,
        "--backlog",
        "2048",
        "--timeout",
        "120",
        "--keep-alive",
        "30",
    ]
    if kind == "gthread":
        command += ["--threads", threads or "4"]
    log_path = Path(env["SYNSIGHT_DATA_DIR"]) / f"gunicorn-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    gunicorn = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    processes.append(gunicorn)
    worker = None
    if celery:
        worker = subprocess.Popen(
            [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "worker",
                *(["--pool", "solo"] if celery_processes == 1 else ["--pool", "prefork", "-c", str(celery_processes)]),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=(lambda: os.nice(celery_nice)) if celery_nice else None,
        )
        processes.append(worker)
    try:
        try:
            wait_ready(port, setup["tokens"][0], gunicorn)
        except RuntimeError as error:
            raise RuntimeError(f"{error}; gunicorn log:\n{log_path.read_text()[-3000:]}") from None
        profilers = []
        if profile_dir:
            targets = [("gunicorn", pid) for pid in sorted(children_of(gunicorn.pid))]
            targets += [("celery", worker.pid)] if worker is not None else []
            for name, pid in targets:
                profilers.append(
                    subprocess.Popen(
                        [
                            shutil.which("py-spy") or str(VENV_BIN / "py-spy"),
                            "record",
                            "--pid",
                            str(pid),
                            "--duration",
                            str(int(seconds)),
                            "--rate",
                            "50",
                            "--format",
                            "raw",
                            "--output",
                            f"{profile_dir}/{name}-{server}-{pid}.txt",
                            "--nonblocking",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        votes_before = db_progress()
        load_before = [round(v, 2) for v in os.getloadavg()]
        result = asyncio.run(
            http_clients(
                port=port,
                campaign_id=setup["campaign_id"],
                tokens=setup["tokens"],
                seconds=seconds,
                warmup=warmup,
                think_ms=think_ms,
                accuracy=accuracy,
            )
        )
        for profiler in profilers:
            profiler.wait(timeout=120)
        before, after = result.pop("_cpu")
        groups = {"client (this process)": {os.getpid()}, "gunicorn": {gunicorn.pid} | children_of(gunicorn.pid)}
        if worker is not None:
            groups["celery"] = {worker.pid} | children_of(worker.pid)
        result["cpu_seconds"] = cpu_delta(before, after, groups)
        result["cpu_cores_busy"] = round(sum(result["cpu_seconds"].values()) / result["seconds"], 2)
        result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        if result["hits"]:
            # Little's law: clients = HITs/s x cycle time; at zero think time the cycle is next + submit + client.
            cycle = 1000 * len(setup["tokens"]) * result["seconds"] / result["hits"]
            result["cycle_ms_by_littles_law"] = round(cycle, 1)
        if worker is not None:
            # Consensus is coalesced (a drain weighs every HIT submitted since the last): its lag is the HITs
            # still pending, not the broker's queue length.
            backlog, pending = celery_backlog(redis_url), consensus_pending()
            drain_started = time.perf_counter()
            while (celery_backlog(redis_url) or consensus_pending()) and time.perf_counter() - drain_started < (
                drain_seconds
            ):
                time.sleep(0.5)
            result["celery"] = {
                "processes": celery_processes,
                "nice_relative_to_server": celery_nice,
                "backlog_at_end": backlog,
                "hits_awaiting_consensus_at_end": pending,
                "drain_seconds": round(time.perf_counter() - drain_started, 1),
                "keeps_up": pending <= 2 * len(setup["tokens"]),
            }
        progress = db_progress()
        result["database"] = {
            k: progress[k] - votes_before.get(k, 0) if k in ("hits", "votes") else v for k, v in progress.items()
        }
        result = {"mode": "http", "server": server, "think_ms": think_ms, "load_average_before": load_before, **result}
        return result
    finally:
        log.close()
        for process in (gunicorn, worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# ---- analysis ---------------------------------------------------------------------------------------------------


def explain_lease(*, campaign_id: int, worker_id: int) -> dict:
    """EXPLAIN ANALYZE of the scheduler's lease query for one worker in the synset most behind (rolled back)."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from annotation.models import Campaign
    from annotation.services import hits

    campaign = Campaign.objects.get(id=campaign_id)
    worker = User.objects.get(id=worker_id)
    synset_id = hits._synsets_by_need(campaign, random.Random(0))[0]
    captured = {}

    class Stop(Exception):
        pass

    def capture(execute, sql, params, many, context):
        if "FOR UPDATE" in sql and "annotation_candidate" in sql and "sql" not in captured:
            captured["sql"], captured["params"] = sql, params
            raise Stop
        return execute(sql, params, many, context)

    try:
        with transaction.atomic(), connection.execute_wrapper(capture):
            hits._lease_candidates(worker=worker, campaign=campaign, synset_id=synset_id, size=campaign.images_per_hit)
    except Stop:
        pass
    plans = {}
    with transaction.atomic():
        with connection.cursor() as cursor:
            for _ in range(2):  # the second run is the warm one
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + captured["sql"], captured["params"])
            plans["lease"] = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return {"sql": captured["sql"] % tuple(repr(str(p)) for p in captured["params"]), "plan": plans["lease"]}


# ---- main -------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="server URL; a scratch database is created there and dropped at the end",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/11",
        help="Redis database for the Celery broker; must be empty; flushed at the end",
    )
    parser.add_argument("--mode", choices=["http", "services", "both"], default="both")
    parser.add_argument(
        "--servers", default="gthread:2x8", help="comma-separated gunicorn configurations: sync:N or gthread:NxTHREADS"
    )
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--synsets", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--gold-per-synset", type=int, default=10, help="0 for no gold (gold_rate 0)")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument(
        "--think-ms",
        default="0",
        help="mean pause per HIT between next and submit (closed loop with think time); comma-separated values "
        "run each server once per value, e.g. 0,1400 (0 = saturation; 1400 ms offers about 1,000 items/s with "
        "64 clients; ImageNet's pace of ~50 images a minute is about 29000)",
    )
    parser.add_argument(
        "--database-name",
        default="",
        help="name of the scratch database (default synsight_bench_hits_<pid>); created and dropped",
    )
    parser.add_argument("--accuracy", type=float, default=0.9, help="share of right answers per simulated worker")
    parser.add_argument(
        "--drain-seconds", type=float, default=300, help="how long to wait for the Celery backlog after each run"
    )
    parser.add_argument("--no-celery", action="store_true", help="do not start a Celery worker (tasks queue up)")
    parser.add_argument("--celery-processes", type=int, default=1,
                        help="1: one solo worker; N > 1: prefork with N processes")  # fmt: skip
    parser.add_argument("--celery-nice", type=int, default=0,
                        help="niceness of the Celery worker relative to the server, e.g. -5 for a larger CPU share "
                             "(lowering it needs root)")  # fmt: skip
    parser.add_argument("--explain", action="store_true", help="add EXPLAIN ANALYZE of the lease query")
    parser.add_argument(
        "--py-spy", metavar="DIR", help="record py-spy raw profiles of the gunicorn workers and the Celery worker here"
    )
    args = parser.parse_args()

    import psycopg
    import redis

    broker = redis.Redis.from_url(args.redis)
    if broker.dbsize():
        sys.exit(f"Redis database {args.redis} is not empty; pass another --redis database.")

    scratch = args.database_name or f"synsight_bench_hits_{os.getpid()}"
    database_url = args.postgres.rsplit("/", 1)[0] + f"/{scratch}"
    data_dir = tempfile.TemporaryDirectory()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": "hits-load-benchmark-" + uuid.uuid4().hex,
        "REDIS_URL": args.redis,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SYNSIGHT_DATA_DIR": data_dir.name,
        "NLTK_DATA_DIR": str(ROOT / "data" / "nltk_data"),
        "LOG_LEVEL": "WARNING",
        # Deployed behind a TLS-terminating proxy: the clients send X-Forwarded-Proto: https, as it would.
        "BEHIND_HTTPS_PROXY": "true",
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on kill too

    figures: dict = {"cpu_count": os.cpu_count(), "database": "postgresql", "targets": TARGETS}
    processes: list[subprocess.Popen] = []
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {scratch}")
        figures["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    try:
        import django

        django.setup()
        from django.db import connections

        started = time.perf_counter()
        setup = setup_database(
            candidates=args.candidates,
            synsets=args.synsets,
            clients=args.clients,
            gold_per_synset=args.gold_per_synset,
        )
        figures["setup_seconds"] = round(time.perf_counter() - started, 1)
        figures["setup_steps_seconds"] = setup["timings"]
        figures["data"] = table_counts()
        figures["campaign"] = {
            "images_per_hit": 24,
            "min_votes": 2,
            "max_votes": 5,
            "gold_rate": 0.1 if args.gold_per_synset else 0.0,
            "clients": args.clients,
        }
        figures["uncontended_services"] = run_uncontended(
            campaign_id=setup["campaign_id"], worker_id=setup["worker_ids"][-1]
        )
        broker.flushdb()  # its consensus tasks had no consumer yet
        runs = []
        if args.mode in ("services", "both"):
            runs.append(
                run_services(
                    campaign_id=setup["campaign_id"],
                    worker_ids=setup["worker_ids"],
                    seconds=args.seconds,
                    warmup=args.warmup,
                    accuracy=args.accuracy,
                )
            )
            connections.close_all()
            # The services run enqueued consensus tasks into the broker with no consumer: drop them, the HTTP
            # runs measure the Celery worker on their own tasks only.
            broker.flushdb()
        if args.mode in ("http", "both"):
            for server, think_ms in [
                (server, float(think)) for server in args.servers.split(",") for think in args.think_ms.split(",")
            ]:
                if broker.dbsize():  # a previous run's leftovers (e.g. scheduled flushes) must not count here
                    broker.flushdb()
                try:
                    run = run_http(
                        server=server.strip(),
                        env=env,
                        setup=setup,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        think_ms=think_ms,
                        accuracy=args.accuracy,
                        celery=not args.no_celery,
                        redis_url=args.redis,
                        profile_dir=args.py_spy,
                        processes=processes,
                        drain_seconds=args.drain_seconds,
                        celery_processes=args.celery_processes,
                        celery_nice=args.celery_nice,
                    )
                except Exception as error:  # keep the other configurations' figures
                    run = {"mode": "http", "server": server, "error": str(error)[-2000:]}
                runs.append(run)
                connections.close_all()
        figures["runs"] = runs
        http_runs = [r for r in runs if r["mode"] == "http" and "error" not in r and not r["think_ms"]]
        if http_runs:
            best = max(http_runs, key=lambda r: r["answered_items_per_second"])
            figures["best_http_saturation"] = {
                "server": best["server"],
                "next_ms_p95": best["next_ms"].get("p95"),
                "submit_ms_p95": best["submit_ms"].get("p95"),
                "answered_items_per_second": best["answered_items_per_second"],
                "meets_targets": (
                    best["next_ms"].get("p95", 1e9) <= TARGETS["next_ms_p95_max"]
                    and best["submit_ms"].get("p95", 1e9) <= TARGETS["submit_ms_p95_max"]
                    and best["answered_items_per_second"] >= TARGETS["answered_items_per_second_min"]
                ),
            }
        figures["paced_http"] = [
            {
                "server": r["server"],
                "think_ms": r["think_ms"],
                "answered_items_per_second": r["answered_items_per_second"],
                "next_ms_p95": r["next_ms"].get("p95"),
                "submit_ms_p95": r["submit_ms"].get("p95"),
                "latency_targets_met": r["next_ms"].get("p95", 1e9) <= TARGETS["next_ms_p95_max"]
                and r["submit_ms"].get("p95", 1e9) <= TARGETS["submit_ms_p95_max"],
            }
            for r in runs
            if r["mode"] == "http" and "error" not in r and r["think_ms"]
        ]
        if args.explain:
            figures["explain_lease"] = explain_lease(campaign_id=setup["campaign_id"], worker_id=setup["worker_ids"][0])
        figures["note"] = (
            "Clients, server, Celery and PostgreSQL share the same cores; cpu_seconds splits their use. "
            "Closed loop without think time (saturation): latencies include queueing (clients = throughput x cycle "
            "time), so 64 clients at 1,000 items/s means ~1.5 s per loop whatever the server does. With think time "
            "(paced) the offered load is fixed and the latencies are those a worker sees at that load."
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
        broker.flushdb()
        data_dir.cleanup()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
