"""The box pipeline on the crowd simulator against the demo ground truth, and the issue's targets; prints JSON.

A fresh scratch data folder (SQLite, the shapes subtree of WordNet, the demo images) per run, a demo
campaign over the eight leaf shapes with boxes enabled, its truly positive candidates accepted (a perfect
presence stage, so the figures measure the box pipeline alone), then
``manage.py simulate_crowd --boxes --json`` in a subprocess: the default crowd (reliable 0.6, noisy 0.25,
spammer 0.1, adversarial 0.05) takes the quiz and draws / verifies through the REST API until nobody gets
work. Targets (issue #10, ILSVRC's figures): ≥ 97.9 % of images fully covered, ≥ 99.2 % of final boxes
with IoU ≥ 0.5 to a true box, mean IoU ≥ 0.85, no duplicate boxes per instance.

    .venv/bin/python benchmarks/simulate_boxes.py [--per-synset 40] [--workers 60] [--seeds 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("fully_covered", "boxes_iou_050", "mean_iou", "duplicates", "boxes_per_instance", "worker_seconds_per_box",
        "median_draw_seconds", "final_boxes", "instances", "images", "tasks", "worker_seconds_per_box_by_kind",
        "targets", "not_covered_examples", "run", "workers_blocked")  # fmt: skip

CAMPAIGN = """
from django.contrib.auth.models import User
from annotation.services import demo
from workers.roles import Role
from workers.services import account_create
owner = User.objects.filter(username="researcher").first() or account_create(
    username="researcher", password="benchmark-researcher", role=Role.RESEARCHER)
campaign, _ = demo.demo_campaign_ensure(owner=owner, name="Shapes (boxes)", wnids=demo.DEMO_WNIDS, boxes_enabled=True)
print(campaign.id)
"""


def manage(data: Path, *args: str) -> str:
    env = {**os.environ, "SYNSIGHT_DATA_DIR": str(data), "NLTK_DATA_DIR": os.environ.get("NLTK_DATA_DIR",
           str(ROOT / "data" / "nltk_data")), "LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-synset", type=int, default=40)
    parser.add_argument("--workers", type=int, default=60)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--keep", help="use (and keep) this data folder instead of a temporary one")
    args = parser.parse_args()
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        with tempfile.TemporaryDirectory(prefix="boxes-") as tmp:
            data = Path(args.keep or tmp) / f"seed{seed}"
            data.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            manage(data, "migrate", "--noinput", "-v", "0")
            manage(data, "make_demo_images", "--per-synset", str(args.per_synset), "--no-progress")
            campaign = int(manage(data, "shell", "-c", CAMPAIGN).strip().splitlines()[-1])
            setup = time.perf_counter() - started
            out = manage(data, "simulate_crowd", "--campaign", str(campaign), "--boxes", "--accept-truth",
                         "--workers", str(args.workers), "--seed", str(seed), "--json")  # fmt: skip
            report = json.loads(out)
            runs.append({"seed": seed, "setup_seconds": round(setup, 1), **{k: report.get(k) for k in KEYS}})
    print(json.dumps({
        "benchmark": "simulate_boxes", "per_synset": args.per_synset, "workers": args.workers,
        "mix": "default (reliable 0.6, noisy 0.25, spammer 0.1, adversarial 0.05)",
        "load_average": [round(x, 2) for x in os.getloadavg()], "runs": runs,
        "all_targets_met": all(t["met"] for r in runs for t in r["targets"].values()),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
