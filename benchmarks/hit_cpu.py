"""Benchmark: CPU per HIT of the crowd loop, in one process, through the production WSGI stack.

hits_load.py measures latency and throughput under 64 concurrent clients, but on a shared 2-core machine its
wall-clock figures move with whatever else runs. This one measures what the request path and the consensus job
*cost*: CPU time per HIT, which the machine's load hardly changes.

What it does:
  1. creates a scratch PostgreSQL database with hits_load.py's set-up (--candidates over --synsets, gold items,
     one running campaign of 24 images per HIT, --workers qualified accounts with tokens);
  2. drives --hits HITs (next -> submit, workers in turn) through ``config.wsgi.application`` with DEBUG off,
     Redis as cache and broker, HTTPS behind a proxy: every middleware, DRF authentication and throttling,
     JSON parsing and rendering, as gunicorn would call it, minus the socket;
  3. runs a consensus drain (annotation/services/consensus_queue.py) in-process after every --drain-every HITs,
     as the Celery worker would (1: one HIT per drain, as at a trickle; under load a drain weighs the HITs
     submitted while the previous one ran), dropping the drain requests the submits queued on the broker;
  4. reports CPU ms per HIT (this process: user + system) for next, submit and consensus, the PostgreSQL
     backend's CPU per HIT (requests and drains apart), statements per request, and optionally a cProfile
     summary;
  5. drops the database and flushes the Redis database.

Prints one JSON object. Usage:
    .venv/bin/python benchmarks/hit_cpu.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/11] [--candidates 100000] [--hits 400] [--drain-every 1]
        [--profile next|submit|consensus]
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def backend_pid(client_port: int) -> int | None:
    """The local pid of the PostgreSQL backend serving our connection, found by its process title
    ("postgres: … 127.0.0.1(<port>) …"): pg_backend_pid() may be another PID namespace's number."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if f"({client_port})".encode() in f.read():
                        return int(entry.name)
            except OSError:
                continue
    return None


def backend_cpu_seconds(pid: int | None) -> float:
    """utime + stime of a PostgreSQL backend (same machine; /proc/<pid>/stat is readable by anyone)."""
    if pid is None:
        return float("nan")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Wsgi:
    """Calls the WSGI application with the environ gunicorn would build for the benchmark's clients."""

    def __init__(self, application):
        self.application = application

    def post(self, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "HTTP_ACCEPT": "application/json",
            "HTTP_X_FORWARDED_PROTO": "https",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body:
            environ["CONTENT_TYPE"] = "application/json"
        status = []
        chunks = self.application(environ, lambda s, headers, exc_info=None: status.append(s))
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return int(status[0].split()[0]), payload


def broker_clear(broker) -> None:
    """Drop the queued messages (the consensus drains the submits asked for, rollup flushes): the benchmark runs
    the drains itself, on its own cadence."""
    broker.delete("celery")


def run(
    *,
    hits: int,
    setup: dict,
    profile: str | None,
    profile_out: str | None,
    accuracy: float,
    broker,
    drain_every: int,
    warm_hits: int = 1,
) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from hits_load import submit_payload

    from annotation import tasks
    from config.wsgi import application

    client = Wsgi(application)
    tokens = setup["tokens"]
    rng = random.Random(7)
    profiler = cProfile.Profile(time.process_time) if profile else None
    cpu = {"next": 0.0, "submit": 0.0}
    statuses: dict[str, int] = {}
    queries = {}

    def timed(kind: str, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
        if profiler and profile in (kind, "requests"):
            profiler.enable()
        started = time.process_time()
        status, payload = client.post(path, token, body)
        cpu[kind] += time.process_time() - started
        if profiler and profile in (kind, "requests"):
            profiler.disable()
        statuses[f"{kind} {status}"] = statuses.get(f"{kind} {status}", 0) + 1
        return status, payload

    def one_hit(n: int, *, measured: bool) -> None:
        token = tokens[n % len(tokens)]
        status, body = (timed if measured else lambda _k, *a: client.post(*a))(
            "next", f"/api/v1/campaigns/{setup['campaign_id']}/hits/next/", token
        )
        if status != 200:
            raise RuntimeError(f"next answered {status}: {body[:300]!r}")
        hit = json.loads(body)
        payload = submit_payload(hit, rng, accuracy)
        status, body = (timed if measured else lambda _k, *a: client.post(*a))(
            "submit", f"/api/v1/hits/{hit['id']}/submit/", token, payload
        )
        if status != 201:
            raise RuntimeError(f"submit answered {status}: {body[:300]!r}")

    # Warm-up: every worker's token, the per-process caches, a connection; with --warm-hits past the spam
    # screen's first SCREEN_EVERY_HIT_UNTIL HITs, every worker is established (screened every 3rd HIT only).
    for n in range(len(tokens) * warm_hits):
        one_hit(n, measured=False)
        if (n + 1) % 8 == 0:
            tasks.consensus_drain()
    tasks.consensus_drain()
    broker_clear(broker)
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_client_port()")
        backend = backend_pid(cursor.fetchone()[0])

    drain = {"cpu": 0.0, "backend": 0.0, "drains": 0}

    def run_drain() -> None:
        """One consensus drain, as the Celery worker would run it: whatever HITs are pending."""
        broker_clear(broker)
        backend_at = backend_cpu_seconds(backend)
        if profiler and profile == "consensus":
            profiler.enable()
        started = time.process_time()
        tasks.consensus_drain()
        drain["cpu"] += time.process_time() - started
        if profiler and profile == "consensus":
            profiler.disable()
        drain["backend"] += backend_cpu_seconds(backend) - backend_at
        drain["drains"] += 1

    backend_before = backend_cpu_seconds(backend)
    wall = time.perf_counter()
    for n in range(hits):
        one_hit(n, measured=True)
        if drain_every and (n + 1) % drain_every == 0:
            run_drain()
    if not drain_every or hits % drain_every:
        run_drain()
    wall = time.perf_counter() - wall
    backend_requests = backend_cpu_seconds(backend) - backend_before - drain["backend"]
    # The statements of one more HIT, as the server sends them.
    with CaptureQueriesContext(connection) as captured:
        _status, body = client.post(f"/api/v1/campaigns/{setup['campaign_id']}/hits/next/", tokens[0])
    queries["next"] = [q["sql"][:120] for q in captured.captured_queries]
    hit = json.loads(body)
    answers = [{"item": i["id"], "answer": "present", "ms": 800} for i in hit["items"]]
    payload = json.dumps({"idempotency_key": uuid.uuid4().hex, "answers": answers}).encode()
    with CaptureQueriesContext(connection) as captured:
        client.post(f"/api/v1/hits/{hit['id']}/submit/", tokens[0], payload)
    queries["submit"] = [q["sql"][:120] for q in captured.captured_queries]

    tasks.consensus_drain()
    broker_clear(broker)

    result = {
        "hits": hits,
        "statuses": statuses,
        "wall_seconds_requests": round(wall, 2),
        "cpu_ms_per_hit": {
            "next": round(1000 * cpu["next"] / hits, 2),
            "submit": round(1000 * cpu["submit"] / hits, 2),
            "request_path_total": round(1000 * (cpu["next"] + cpu["submit"]) / hits, 2),
            "consensus": round(1000 * drain["cpu"] / hits, 2),
            "postgres_backend_requests": round(1000 * backend_requests / hits, 2),
            "postgres_backend_consensus": round(1000 * drain["backend"] / hits, 2),
        },
        "consensus_drains": drain["drains"],
        "hits_per_drain": round(hits / max(1, drain["drains"]), 1),
        "statements": {"next": len(queries["next"]), "submit": len(queries["submit"])},
        "statement_text": queries,
    }
    if profiler:
        if profile_out:
            profiler.dump_stats(profile_out)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
        result["profile"] = out.getvalue()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11", help="must be empty; flushed at the end")
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--synsets", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--gold-per-synset", type=int, default=10)
    parser.add_argument("--hits", type=int, default=400)
    parser.add_argument("--accuracy", type=float, default=0.9)
    parser.add_argument(
        "--warm-hits",
        type=int,
        default=1,
        help="HITs per worker before measuring (11 or more: every worker past the spam screen's first HITs)",
    )
    parser.add_argument(
        "--drain-every",
        type=int,
        default=1,
        help="run a consensus drain after every N HITs (1: one per HIT, as at a trickle; 0: one at the end)",
    )
    parser.add_argument(
        "--profile", choices=["next", "submit", "requests", "consensus"], help="cProfile (CPU time) summary on stderr"
    )
    parser.add_argument("--profile-out", metavar="PATH", help="also save the raw cProfile statistics here")
    parser.add_argument("--database-name", default="", help="scratch database (default synsight_bench_cpu_<pid>)")
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="keep the database (and its set-up in <tmp>/<name>.json) for the next run with the same --database-name",
    )
    args = parser.parse_args()

    import psycopg
    import redis

    broker = redis.Redis.from_url(args.redis)
    if broker.dbsize():
        sys.exit(f"Redis database {args.redis} is not empty; pass another --redis database.")
    scratch = args.database_name or f"synsight_bench_cpu_{os.getpid()}"
    data_dir = tempfile.TemporaryDirectory()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": args.postgres.rsplit("/", 1)[0] + f"/{scratch}",
            "DEBUG": "false",
            "SECRET_KEY": "hit-cpu-benchmark-" + uuid.uuid4().hex,
            "REDIS_URL": args.redis,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SYNSIGHT_DATA_DIR": data_dir.name,
            "NLTK_DATA_DIR": str(ROOT / "data" / "nltk_data"),
            "LOG_LEVEL": "WARNING",
            "BEHIND_HTTPS_PROXY": "true",
        }
    )
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    os.chdir(ROOT)
    figures: dict = {"load_average_before": [round(v, 2) for v in os.getloadavg()]}
    kept = Path(tempfile.gettempdir()) / f"{scratch}.json"
    reuse = args.keep_database and kept.exists()
    if not reuse:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {scratch}")
    try:
        import django

        django.setup()
        from django.db import connections

        # One backend for the whole run, so that its CPU can be read off /proc (gunicorn's workers reconnect
        # every CONN_MAX_AGE = 60 s: a connection per minute, nothing per HIT).
        connections["default"].settings_dict["CONN_MAX_AGE"] = None

        from hits_load import setup_database, table_counts

        started = time.perf_counter()
        if reuse:
            setup = json.loads(kept.read_text())
        else:
            setup = setup_database(
                candidates=args.candidates,
                synsets=args.synsets,
                clients=args.workers,
                gold_per_synset=args.gold_per_synset,
            )
            if args.keep_database:
                kept.write_text(json.dumps(setup))
        figures["setup_seconds"] = round(time.perf_counter() - started, 1)
        figures["data"] = table_counts()
        broker.flushdb()
        figures.update(
            run(
                hits=args.hits,
                setup=setup,
                profile=args.profile,
                profile_out=args.profile_out,
                accuracy=args.accuracy,
                broker=broker,
                drain_every=args.drain_every,
                warm_hits=args.warm_hits,
            )
        )
        figures["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        connections.close_all()
    finally:
        if not args.keep_database:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
        broker.flushdb()
        data_dir.cleanup()
    profile = figures.pop("profile", None)
    print(json.dumps(figures, indent=2))
    if profile:
        print(profile, file=sys.stderr)


if __name__ == "__main__":
    main()
