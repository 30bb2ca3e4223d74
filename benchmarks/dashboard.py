"""Dashboard endpoints at scale: a campaign of 1,000 synsets with 10,000,000 votes (2,000,000 candidates,
~417,000 HITs, 2,000 workers, 14 days of minute and hour buckets, a precision audit of 50 accepted images per
synset), bulk-loaded with COPY into a scratch
PostgreSQL database; then every dashboard and synset-inspection endpoint is called through Django's test
client (the full request path: URL routing, session auth, DRF, JSON) and timed. Prints JSON with p50/p95 in
ms per endpoint and whether each stays within the 200 ms budget.

    .venv/bin/python benchmarks/dashboard.py                      # 10^7 votes, ~3 minutes to load
    .venv/bin/python benchmarks/dashboard.py --votes 1000000      # a quicker run

Needs PostgreSQL at BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432); the scratch database
``synsight_bench_dashboard`` (or BENCH_DASHBOARD_DB) is dropped and recreated. The vote table is loaded in
full (with its indexes) to show that no dashboard query touches it: the dashboard reads the rollups only.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DASHBOARD_DB", "synsight_bench_dashboard")
BUDGET_MS = 200


def scratch_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")


def copy_rows(cursor, table: str, columns: list[str], rows_text) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for chunk in rows_text:
            copy.write(chunk)


def text_chunks(arrays: list[np.ndarray], chunk: int = 500_000):
    """Tab-separated lines from column arrays, in chunks (numpy formats, Python joins)."""
    n = len(arrays[0])
    for start in range(0, n, chunk):
        cols = [a[start : start + chunk].astype(str) for a in arrays]
        lines = cols[0]
        for c in cols[1:]:
            lines = np.char.add(np.char.add(lines, "\t"), c)
        yield "\n".join(lines.tolist()) + "\n"


def load(args) -> dict:
    """Everything the dashboard reads, plus the vote table it must not read."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from annotation.models import Campaign
    from workers.roles import Role
    from workers.services import account_create

    rng = np.random.default_rng(7)
    n_synsets, n_workers, per_hit = args.synsets, args.workers, 24
    n_candidates = args.votes // 5
    per_synset = n_candidates // n_synsets
    n_hits = args.votes // per_hit
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - timedelta(days=args.days)
    t0 = time.perf_counter()
    researcher = account_create(username="researcher", password="bench-pass-1", role=Role.RESEARCHER)
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute("SET session_replication_role = replica")  # no FK triggers while bulk loading
        # Taxonomy: a root, 20 groups, n_synsets leaves, with edges and the closure.
        root, groups = 90_000_000, np.arange(90_000_001, 90_000_021)
        leaves = np.arange(91_000_000, 91_000_000 + n_synsets)
        ids = np.concatenate([[root], groups, leaves])
        names = np.array([f"bench_{i}.n.01" for i in ids])
        depth = np.concatenate([[0], np.ones(20, int), np.full(n_synsets, 2)])
        copy_rows(
            cursor,
            "taxonomy_synset",
            ["id", "name", "words", "gloss", "lexname", "depth", "sensitive"],
            text_chunks([ids, names, names, names, np.full(len(ids), "noun.artifact"), depth, np.full(len(ids), "f")]),
        )
        group_of = groups[np.arange(n_synsets) % 20]
        copy_rows(
            cursor,
            "taxonomy_synsetedge",
            ["parent_id", "child_id", "kind"],
            text_chunks(
                [
                    np.concatenate([np.full(20, root), group_of]),
                    np.concatenate([groups, leaves]),
                    np.full(20 + n_synsets, "hypernym"),
                ]
            ),
        )
        copy_rows(
            cursor,
            "taxonomy_synsetclosure",
            ["ancestor_id", "descendant_id", "distance"],
            text_chunks(
                [
                    np.concatenate([np.full(20, root), group_of, np.full(n_synsets, root)]),
                    np.concatenate([groups, leaves, leaves]),
                    np.concatenate([np.ones(20 + n_synsets, int), np.full(n_synsets, 2)]),
                ]
            ),
        )
        campaign = Campaign.objects.create(name="bench", owner=researcher, state="running", target_per_synset=1000)
        # Workers.
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM auth_user")
        first_user = cursor.fetchone()[0] + 1
        users = np.arange(first_user, first_user + n_workers)
        copy_rows(
            cursor,
            "auth_user",
            [
                "id",
                "password",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
            ],
            text_chunks(
                [
                    users,
                    np.full(n_workers, "!"),
                    np.full(n_workers, "f"),
                    np.array([f"w{i}" for i in range(n_workers)]),
                    np.full(n_workers, ""),
                    np.full(n_workers, ""),
                    np.full(n_workers, ""),
                    np.full(n_workers, "f"),
                    np.full(n_workers, "t"),
                    np.full(n_workers, now.isoformat()),
                ]
            ),
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", [int(users[-1])])
        gold_answered = rng.integers(0, 200, n_workers)
        gold_correct = (gold_answered * rng.beta(8, 2, n_workers)).astype(int)
        copy_rows(
            cursor,
            "workers_workerprofile",
            [
                "user_id",
                "hits_done",
                "answers",
                "gold_answered",
                "gold_correct",
                "answer_ms_total",
                "agreement",
                "reliability",
                "blocked",
                "blocked_reason",
                "created",
            ],
            text_chunks(
                [
                    users,
                    np.full(n_workers, 200),
                    np.full(n_workers, 5000),
                    gold_answered,
                    gold_correct,
                    np.full(n_workers, 5_000_000),
                    rng.beta(8, 2, n_workers).round(4),
                    rng.beta(8, 2, n_workers).round(4),
                    np.where(np.arange(n_workers) < 50, "t", "f"),
                    np.full(n_workers, ""),
                    np.full(n_workers, now.isoformat()),
                ]
            ),
        )
        copy_rows(
            cursor,
            "workers_qualification",
            ["worker_id", "campaign_id", "status", "blocked_reason", "attempts", "updated"],
            text_chunks(
                [
                    users,
                    np.full(n_workers, campaign.id),
                    np.where(np.arange(n_workers) < 50, "blocked", "qualified"),
                    np.where(np.arange(n_workers) < 50, "Answers in 40 ms.", ""),
                    np.ones(n_workers, int),
                    np.full(n_workers, now.isoformat()),
                ]
            ),
        )
        # Campaign synsets with counters.
        accepted = rng.integers(0, 1200, n_synsets)
        rejected = rng.integers(0, 600, n_synsets)
        unresolved = rng.integers(0, 50, n_synsets)
        copy_rows(
            cursor,
            "annotation_campaignsynset",
            ["campaign_id", "synset_id", "accepted", "rejected", "unresolved", "votes"],
            text_chunks(
                [
                    np.full(n_synsets, campaign.id),
                    leaves,
                    accepted,
                    rejected,
                    unresolved,
                    np.full(n_synsets, args.votes // n_synsets),
                ]
            ),
        )
        # Images (shared across synsets) and candidates.
        n_images = per_synset
        image_ids = np.arange(1, n_images + 1)
        hashes = np.array([f"{i:064x}" for i in image_ids])
        copy_rows(
            cursor,
            "annotation_image",
            [
                "id",
                "sha256",
                "file",
                "thumbnail",
                "medium",
                "format",
                "width",
                "height",
                "byte_size",
                "phash",
                "created",
            ],
            text_chunks(
                [
                    image_ids,
                    hashes,
                    np.char.add("images/", hashes),
                    np.char.add("thumbs/", hashes),
                    np.char.add("medium/", hashes),
                    np.full(n_images, "JPEG"),
                    np.full(n_images, 640),
                    np.full(n_images, 480),
                    np.full(n_images, 1000),
                    image_ids,
                    np.full(n_images, now.isoformat()),
                ]
            ),
        )
        cand_ids = np.arange(1, n_candidates + 1)
        cand_synset = leaves[(cand_ids - 1) // per_synset]
        votes_count = rng.integers(0, 10, n_candidates)
        yes_count = rng.binomial(votes_count, 0.6)
        state = np.where(votes_count < 2, "voting", np.where(yes_count * 2 > votes_count, "accepted", "rejected"))
        posterior = np.where(state == "accepted", rng.uniform(0.95, 1, n_candidates), rng.uniform(0, 0.6, n_candidates))
        copy_rows(
            cursor,
            "annotation_candidate",
            [
                "id",
                "image_id",
                "synset_id",
                "state",
                "created",
                "votes_count",
                "yes_count",
                "pending_count",
                "posterior",
                "priority",
                "model_version",
            ],
            text_chunks(
                [
                    cand_ids,
                    (cand_ids - 1) % per_synset + 1,
                    cand_synset,
                    state,
                    np.full(n_candidates, now.isoformat()),
                    votes_count,
                    yes_count,
                    np.zeros(n_candidates, int),
                    posterior.round(4),
                    rng.random(n_candidates).round(4),
                    np.full(n_candidates, "bench"),
                ]
            ),
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('annotation_candidate', 'id'), %s)", [n_candidates])
        # A precision audit of 50 accepted images per synset (the dashboard and the progress table read it).
        accepted_ids = np.flatnonzero(state == "accepted")
        synset_of = cand_synset[accepted_ids]
        first_of_synset = np.searchsorted(synset_of, synset_of)  # candidates are in synset order
        judged = accepted_ids[np.arange(len(accepted_ids)) - first_of_synset < 50]
        copy_rows(
            cursor,
            "annotation_auditjudgement",
            ["candidate_id", "synset_id", "campaign_id", "correct", "posterior", "judged_by_id", "judged"],
            text_chunks(
                [
                    cand_ids[judged],
                    cand_synset[judged],
                    np.full(len(judged), campaign.id),
                    np.where(rng.random(len(judged)) < 0.99, "t", "f"),
                    posterior[judged].round(4),
                    np.full(len(judged), researcher.id),
                    np.full(len(judged), now.isoformat()),
                ]
            ),
        )
        # HITs and votes.
        hit_ids = np.arange(1, n_hits + 1)
        hit_worker = users[rng.integers(0, n_workers, n_hits)]
        offsets = np.sort(rng.integers(0, args.days * 86400, n_hits))
        times = np.array([(start + timedelta(seconds=int(s))).isoformat() for s in offsets[:: max(1, n_hits // 2000)]])
        hit_times = np.repeat(times, max(1, n_hits // 2000))[:n_hits]
        hit_times = np.concatenate([hit_times, np.full(n_hits - len(hit_times), now.isoformat())])
        copy_rows(
            cursor,
            "annotation_hit",
            [
                "id",
                "campaign_id",
                "synset_id",
                "worker_id",
                "status",
                "created",
                "expires_at",
                "submitted_at",
                "idempotency_key",
                # The HIT's own figures (already added to the rollups loaded below, so not pending).
                "answers",
                "yes",
                "no",
                "gold_answered",
                "gold_correct",
                "response_ms",
                "rollup_pending",
                "consensus_pending",
            ],
            text_chunks(
                [
                    hit_ids,
                    np.full(n_hits, campaign.id),
                    leaves[hit_ids % n_synsets],
                    hit_worker,
                    np.full(n_hits, "submitted"),
                    hit_times,
                    hit_times,
                    hit_times,
                    np.char.add("k", hit_ids.astype(str)),
                    np.full(n_hits, per_hit),
                    np.zeros(n_hits, dtype=np.int64),
                    np.zeros(n_hits, dtype=np.int64),
                    np.zeros(n_hits, dtype=np.int64),
                    np.zeros(n_hits, dtype=np.int64),
                    np.zeros(n_hits, dtype=np.int64),
                    np.full(n_hits, "f"),
                    np.full(n_hits, "f"),
                ]
            ),
        )
        n_votes = n_hits * per_hit
        vote_hit = np.repeat(hit_ids, per_hit)
        copy_rows(
            cursor,
            "annotation_vote",
            ["candidate_id", "worker_id", "hit_id", "answer", "response_ms", "is_gold", "created"],
            text_chunks(
                [
                    rng.integers(1, n_candidates + 1, n_votes),
                    np.repeat(hit_worker, per_hit),
                    vote_hit,
                    rng.integers(0, 3, n_votes),
                    rng.integers(300, 5000, n_votes),
                    np.where(rng.random(n_votes) < 0.1, "t", "f"),
                    np.repeat(hit_times, per_hit),
                ]
            ),
        )
        # Rollups: minute and hour buckets over the campaign, worker totals, synset activity.
        minutes = args.days * 1440
        m_starts = np.array([(start + timedelta(minutes=i)).isoformat() for i in range(minutes)])
        per_minute = rng.poisson(args.votes / minutes, minutes)
        copy_rows(
            cursor,
            "annotation_activitybucket",
            [
                "campaign_id",
                "span",
                "start",
                "hits",
                "answers",
                "yes",
                "no",
                "gold_answered",
                "gold_correct",
                "response_ms",
                "workers",
            ],
            text_chunks(
                [
                    np.full(minutes, campaign.id),
                    np.full(minutes, "minute"),
                    m_starts,
                    per_minute // per_hit,
                    per_minute,
                    per_minute // 2,
                    per_minute // 3,
                    per_minute // 10,
                    per_minute // 12,
                    per_minute * 1500,
                    rng.integers(20, 120, minutes),
                ]
            ),
        )
        hours = args.days * 24
        per_hour = per_minute.reshape(hours, 60).sum(axis=1)
        h_starts = np.array([(start + timedelta(hours=i)).isoformat() for i in range(hours)])
        copy_rows(
            cursor,
            "annotation_activitybucket",
            [
                "campaign_id",
                "span",
                "start",
                "hits",
                "answers",
                "yes",
                "no",
                "gold_answered",
                "gold_correct",
                "response_ms",
                "workers",
            ],
            text_chunks(
                [
                    np.full(hours, campaign.id),
                    np.full(hours, "hour"),
                    h_starts,
                    per_hour // per_hit,
                    per_hour,
                    per_hour // 2,
                    per_hour // 3,
                    per_hour // 10,
                    per_hour // 12,
                    per_hour * 1500,
                    rng.integers(100, 600, hours),
                ]
            ),
        )
        w_answers = np.bincount(np.searchsorted(users, hit_worker), minlength=n_workers) * per_hit
        copy_rows(
            cursor,
            "annotation_campaignworker",
            [
                "campaign_id",
                "worker_id",
                "hits",
                "answers",
                "yes",
                "gold_answered",
                "gold_correct",
                "response_ms",
                "earned",
                "first_seen",
                "last_seen",
            ],
            text_chunks(
                [
                    np.full(n_workers, campaign.id),
                    users,
                    w_answers // per_hit,
                    w_answers,
                    w_answers // 2,
                    gold_answered,
                    gold_correct,
                    w_answers * rng.integers(800, 3000, n_workers),
                    (w_answers // per_hit * 0.10).round(2),
                    np.full(n_workers, start.isoformat()),
                    np.full(n_workers, now.isoformat()),
                ]
            ),
        )
        copy_rows(
            cursor,
            "annotation_synsetactivity",
            [
                "campaign_id",
                "synset_id",
                "hits",
                "answers",
                "yes",
                "last_answer_at",
                "candidates",
                "open_candidates",
                "gold",
                "accepted_counted",
                "accepted_posterior_sum",
                "counted_at",
            ],
            text_chunks(
                [
                    np.full(n_synsets, campaign.id),
                    leaves,
                    np.full(n_synsets, n_hits // n_synsets),
                    np.full(n_synsets, args.votes // n_synsets),
                    np.full(n_synsets, args.votes // n_synsets // 2),
                    np.full(n_synsets, now.isoformat()),
                    np.full(n_synsets, per_synset),
                    rng.integers(0, 300, n_synsets),
                    np.full(n_synsets, 20),
                    accepted,
                    (accepted * 0.97).round(3),
                    np.full(n_synsets, now.isoformat()),
                ]
            ),
        )
        cursor.execute("SET session_replication_role = origin")
        cursor.execute("ANALYZE")
    return {
        "campaign": campaign.id,
        "researcher": researcher,
        "leaf": f"n{leaves[0]:08d}",
        "load_s": time.perf_counter() - t0,
        "votes": n_votes,
        "candidates": n_candidates,
        "hits": n_hits,
        "workers": n_workers,
        "synsets": n_synsets,
    }


def reused() -> dict:
    from django.contrib.auth.models import User

    from annotation.models import Campaign, CampaignSynset, Candidate, Hit, Vote

    campaign = Campaign.objects.get(name="bench")
    leaf = CampaignSynset.objects.filter(campaign=campaign).order_by("synset_id").values_list("synset_id", flat=True)[0]
    return {
        "campaign": campaign.id,
        "researcher": User.objects.get(username="researcher"),
        "leaf": f"n{leaf:08d}",
        "load_s": 0.0,
        "votes": Vote.objects.order_by().count(),
        "candidates": Candidate.objects.count(),
        "hits": Hit.objects.count(),
        "workers": User.objects.filter(username__startswith="w").count(),
        "synsets": CampaignSynset.objects.filter(campaign=campaign).count(),
    }


def measure(client, url: str, repeat: int) -> dict:
    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - t) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    compressed = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    return {
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "bytes": len(response.content),
        "gzip_bytes": len(compressed.content),
        "within_budget": bool(p95 <= BUDGET_MS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=10_000_000)
    parser.add_argument("--synsets", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="time again on the database a previous run loaded")
    args = parser.parse_args()
    if not args.reuse:
        scratch_database()
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-benchmark-only-secret-key")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("DASHBOARD_RECOUNT_SECONDS", "86400")  # figures loaded fresh: no recount mid-run
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    if args.reuse:
        data = reused()
    else:
        data = load(args)
    from django.contrib.auth.models import User

    from workers.roles import Role
    from workers.services import account_create

    client = Client()
    client.force_login(data["researcher"])
    admin = Client()  # /metrics is for admins (or a scraper with the metrics token)
    admin.force_login(
        User.objects.filter(username="bench-admin").first()
        or account_create(username="bench-admin", password="bench-admin-password-1", role=Role.ADMIN)
    )
    base = f"/api/v1/campaigns/{data['campaign']}/"
    urls = {
        "summary": f"{base}dashboard/summary/",
        "throughput_hour": f"{base}dashboard/throughput/?window=hour",
        "throughput_day": f"{base}dashboard/throughput/?window=day",
        "throughput_all": f"{base}dashboard/throughput/?window=all",
        "progress": f"{base}dashboard/progress/",
        "progress_page": f"{base}dashboard/progress/?sort=behind&limit=100",  # what the dashboard page asks
        "progress_audit": f"{base}dashboard/progress/?sort=audit&limit=100",
        "tree": f"{base}dashboard/tree/",
        "quality": f"{base}dashboard/quality/",
        "quality_page": f"{base}dashboard/quality/?synsets=false",  # what the dashboard page asks
        "cost": f"{base}dashboard/cost/",
        "synset_overview": f"{base}synsets/{data['leaf']}/",
        "synset_candidates": f"{base}synsets/{data['leaf']}/candidates/?state=accepted",
        "synset_disagreements": f"{base}synsets/{data['leaf']}/disagreements/",
        "synset_audit": f"{base}synsets/{data['leaf']}/audit/",
        "campaign_list": "/api/v1/campaigns/",
    }
    results = {name: measure(client, url, args.repeat) for name, url in urls.items()}
    results["metrics"] = measure(admin, "/metrics", args.repeat)
    print(
        json.dumps(
            {
                "database": "postgresql",
                "votes": data["votes"],
                "candidates": data["candidates"],
                "hits": data["hits"],
                "workers": data["workers"],
                "synsets": data["synsets"],
                "days_of_buckets": args.days,
                "load_seconds": round(data["load_s"], 1),
                "budget_ms": BUDGET_MS,
                "repeat": args.repeat,
                "all_within_budget": all(r["within_budget"] for r in results.values()),
                "endpoints": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
