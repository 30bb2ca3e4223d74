"""The benchmarks that bulk-load tables behind the ORM's back break silently when a model gains a column: run
them at a toy size so the suite notices (no timing is asserted; the figures come from the full runs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark bulk-loads PostgreSQL with COPY")
def test_the_dashboard_benchmark_loads_its_tables_and_every_endpoint_answers():
    import psycopg

    db = connection.settings_dict
    server = f"postgres://{db['USER']}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}@{db['HOST']}:{db['PORT']}"
    scratch = f"synsight_bench_dashboard_test_{os.getpid()}"
    env = {**os.environ, "BENCH_POSTGRES": server, "BENCH_DASHBOARD_DB": scratch}
    try:
        toy = ["--votes", "4800", "--synsets", "10", "--workers", "20", "--days", "1", "--repeat", "1"]
        done = subprocess.run(
            [sys.executable, "benchmarks/dashboard.py", *toy],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert (figures["votes"], figures["synsets"], figures["workers"]) == (4800, 10, 20)
    assert {"summary", "progress", "progress_page", "tree", "quality", "quality_page", "cost", "metrics"} <= set(
        figures["endpoints"]
    )
    assert all(e["bytes"] > 0 for e in figures["endpoints"].values())


def test_the_policy_comparison_says_when_a_used_up_crowd_makes_the_vote_ratio_meaningless():
    import importlib.util

    spec = importlib.util.spec_from_file_location("simulate_policies", ROOT / "benchmarks" / "simulate_policies.py")
    simulate_policies = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(simulate_policies)

    def run(votes: int, open_: int) -> dict:
        return {"votes": votes, "candidates": 1000, "open": open_, "accepted": 400, "false_accepts": 0,
                "honest_false_blocks": 0}  # fmt: skip

    done = simulate_policies.pooled(
        [{"seed": 1, "adaptive": run(2500, 5), "fixed5": run(5000, 0)}], ["adaptive", "fixed5"]
    )
    assert done["adaptive"]["votes_vs_fixed5"] == 0.5 and done["adaptive"]["comparable"] is True
    assert "note" not in done["adaptive"]

    cut = simulate_policies.pooled(
        [{"seed": 1, "adaptive": run(4800, 600), "fixed5": run(4900, 300)}], ["adaptive", "fixed5"]
    )
    assert cut["adaptive"]["comparable"] is False
    assert cut["adaptive"]["note"].startswith(
        "The crowd ran out before the work did (adaptive: 600 of 1000 candidates still open, fixed5: 300 of 1000"
    )
