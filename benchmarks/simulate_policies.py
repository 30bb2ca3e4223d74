"""Adaptive votes vs a fixed 5-votes majority, and the spam scenario, on the crowd simulator; prints JSON.

Each run gets a fresh scratch data folder (SQLite, the shapes subtree of WordNet, the demo images drawn
once and copied, a new demo campaign), because candidates belong to synsets, not campaigns: two policies
on one database would share their votes. Runs `manage.py simulate_crowd --json` in a subprocess per
scenario:

* default mix (reliable 0.6, noisy 0.25, spammer 0.1, adversarial 0.05): --policy adaptive and fixed:5;
  the figure of merit is adaptive votes / fixed votes (issue: at most 0.6) at precision >= 0.997;
* spam mix (20% spammers: random, always-yes, always-no, copycat): adaptive; every spammer blocked within
  a median of 3 HITs, precision >= 0.997.

    .venv/bin/python benchmarks/simulate_policies.py [--per-synset 100] [--workers 200] [--seeds 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIX = "reliable:0.6,noisy:0.25,spammer:0.1,adversarial:0.05"
SPAM_MIX = "reliable:0.55,noisy:0.25,spammer:0.2"


def manage(data: Path, *args: str) -> str:
    env = {**os.environ, "SYNSIGHT_DATA_DIR": str(data), "NLTK_DATA_DIR": os.environ.get("NLTK_DATA_DIR",
           str(ROOT / "data" / "nltk_data")), "LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


CAMPAIGN = """
from django.contrib.auth.models import User
from annotation.services import demo
from workers.roles import Role
from workers.services import account_create
owner = User.objects.filter(username="researcher").first() or account_create(
    username="researcher", password="benchmark-researcher", role=Role.RESEARCHER)
campaign, _ = demo.demo_campaign_ensure(owner=owner, name=demo.DEMO_CAMPAIGN, wnids=demo.DEMO_WNIDS)
print(campaign.id)
"""


def template_make(base: Path, per_synset: int) -> Path:
    """A data folder with the migrated database, the shapes subtree and the demo images imported."""
    data = base / "template"
    data.mkdir()
    manage(data, "migrate", "--noinput", "-v", "0")
    manage(data, "import_wordnet", "--root", "plane_figure.n.01", "--no-progress")
    manage(data, "make_demo_images", "--per-synset", str(per_synset), "--no-progress")
    return data


def scratch(base: Path, template: Path) -> tuple[Path, int]:
    """A fresh copy of the template with a new demo campaign."""
    data = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    shutil.copytree(template, data, dirs_exist_ok=True)
    campaign = int(manage(data, "shell", "-c", CAMPAIGN).strip().splitlines()[-1])
    return data, campaign


def summary(report: dict) -> dict:
    o, s = report["overall"], report["spammers"]
    return {
        "precision": o["precision"], "recall": o["recall"], "votes": o["votes"], "candidates": o["candidates"],
        "votes_per_candidate": o["votes_per_candidate"], "open": o["open"], "unresolved": o["unresolved"],
        "hits": report["hits"], "cost": report["cost"], "simulated_worker_hours": report["simulated_worker_hours"],
        "spammers": s["total"], "spammers_failed_quiz": s["failed_quiz"], "spammers_blocked": s["blocked"],
        "spammers_not_stopped": len(s["not_stopped"]), "median_hits_before_block": s["median_hits_before_block"],
        "median_hits_before_stopped": s["median_hits_before_stopped"], "hits_by_spammers": s["hits_by_spammers"],
        "honest_false_blocks": len(report["honest"]["false_blocks"]), "wall_seconds": report["wall_seconds"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-synset", type=int, default=100)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--seeds", default="1")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="synsight-bench-"))
    try:
        template = template_make(base, args.per_synset)  # images drawn and imported once, then copied
        out: dict = {"per_synset": args.per_synset, "workers": args.workers, "runs": []}
        for seed in (int(s) for s in args.seeds.split(",")):
            run: dict = {"seed": seed}
            for name, mix, policy in (("adaptive", DEFAULT_MIX, "adaptive"), ("fixed:5", DEFAULT_MIX, "fixed:5"),
                                      ("spam20_adaptive", SPAM_MIX, "adaptive")):  # fmt: skip
                data, campaign = scratch(base, template)
                report = json.loads(manage(data, "simulate_crowd", "--campaign", str(campaign), "--workers",
                                           str(args.workers), "--mix", mix, "--seed", str(seed), "--policy", policy,
                                           "--json"))  # fmt: skip
                run[name] = summary(report)
                shutil.rmtree(data, ignore_errors=True)
            run["vote_ratio_adaptive_vs_fixed5"] = round(run["adaptive"]["votes"] / run["fixed:5"]["votes"], 4)
            out["runs"].append(run)
        print(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
