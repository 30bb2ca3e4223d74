"""Benchmark: full WordNet import into an empty database, and descendants of a synset with >10,000 of them.

Targets (issue 2): import at most 60 s on SQLite and on PostgreSQL; descendants at most 20 ms.
Prints one JSON object. Usage:
    .venv/bin/python benchmarks/taxonomy_import.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]
The PostgreSQL URL names a server database to connect to; a scratch database is created and dropped.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERSON = 7846  # person.n.01: 10,296 descendants

DESCENDANTS_PROBE = """
import json, statistics, time, django
django.setup()
from taxonomy import selectors
from taxonomy.models import Synset
person = Synset.objects.get(id={person})
runs = {{"ids": [], "rows": []}}
for _ in range(30):
    t = time.perf_counter(); ids = selectors.synset_descendant_ids(synset_id={person})
    runs["ids"].append(time.perf_counter() - t)
    t = time.perf_counter(); rows = list(selectors.synset_descendants(synset=person).values_list("id", "name"))
    runs["rows"].append(time.perf_counter() - t)
print(json.dumps({{"count": len(ids), "rows": len(rows),
    "ids_ms_median": 1000 * statistics.median(runs["ids"]), "ids_ms_p95": 1000 * sorted(runs["ids"])[28],
    "rows_ms_median": 1000 * statistics.median(runs["rows"])}}))
"""


def run(env: dict, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(database_url: str | None, data_dir: str) -> dict:
    env = {**os.environ, "SYNSIGHT_DATA_DIR": data_dir, "NLTK_DATA_DIR": str(ROOT / "data" / "nltk_data")}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    run(env, "migrate", "-v", "0")
    seconds = run(env, "import_wordnet", "--all", "--no-progress")
    probe = subprocess.run(
        [sys.executable, "-c", DESCENDANTS_PROBE.format(person=PERSON)],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        check=True,
        capture_output=True,
        text=True,
    )
    return {"import_seconds": round(seconds, 2), "descendants_of_person": json.loads(probe.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="server URL, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    figures = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as data_dir:
        figures["sqlite"] = measure(None, data_dir)
    if args.postgres:
        import psycopg

        scratch = f"synsight_bench_{os.getpid()}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {scratch}")
        try:
            with tempfile.TemporaryDirectory() as data_dir:
                figures["postgresql"] = measure(args.postgres.rsplit("/", 1)[0] + f"/{scratch}", data_dir)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
    figures["targets"] = {"import_seconds_max": 60, "descendants_ms_max": 20}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
