"""Benchmark the consensus refit and the per-HIT incremental update; prints one JSON object.

    .venv/bin/python benchmarks/consensus_refit.py [--items 1000000] [--votes-per-item 10] [--runs 3]
        [--crowdkit] [--crowdkit-items N] [--crowdkit-runs 3]

Simulated crowd: binary presence task (30% present), workers with skewed activity (log-normal) and a
mix of reliable (sensitivity/specificity 0.80-0.97), mediocre (0.60-0.75), uniform spammers and
"always yes" spammers. ``refit.seconds`` is the median wall time of ``fit_consensus`` (the guarded
refit: validation, majority vote, EM, guard) over ``--runs`` runs. ``kinds`` times what a campaign's refit
does next (each synset's look-alike kinds, annotation/consensus/item_effect.py, with the items dealt to
``--synsets`` synsets) and the per-HIT update with kinds; ``refit_with_kinds_seconds`` is the sum.

``--crowdkit`` fits crowd-kit's ``DawidSkene(n_iter=100)`` on the *same votes* in a throwaway venv
(/tmp/ck, created on demand) in a subprocess, ``--crowdkit-runs`` times, each run interleaved with one
more run of ours (the machine is shared, so its load drifts: pairing keeps both engines under the same
load), and reports ``ratio = median crowd-kit seconds / median of our seconds`` together with each
pair's ratio and the load average before and after. By default it gets all the votes (10M: ~1.7 GB,
~30 s per run); ``--crowdkit-items N`` limits both engines to the first N items' votes instead. A
subset keeps all 20,000 workers with a tenth of the answers each, which is a different (harder) fit,
not a scaled-down one: at 100,000 items our EM needs 37 steps (crowd-kit 20), against 9 (crowd-kit 8)
on the full 10M votes, so subset ratios are not the 10M ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotation.consensus import fit_consensus, item_effect, item_posteriors, majority_vote

CROWDKIT_VENV = Path("/tmp/ck")
CROWDKIT_SCRIPT = """
import sys, time
import numpy as np, pandas as pd
from crowdkit.aggregation import DawidSkene
data = np.load(sys.argv[1])
df = pd.DataFrame({"task": data["items"], "worker": data["workers"], "label": data["labels"]})
start = time.perf_counter()
model = DawidSkene(n_iter=100)
result = model.fit_predict(df)
seconds = time.perf_counter() - start
predicted = result.sort_index()
accuracy = float(np.mean(predicted.to_numpy() == data["truth"][predicted.index.to_numpy()]))
print(seconds, accuracy, len(model.loss_history_))
"""


def simulate(n_items: int, n_workers: int, votes_per_item: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.3).astype(np.int8)
    kind = rng.choice(4, size=n_workers, p=[0.70, 0.18, 0.08, 0.04])  # reliable, mediocre, random, yes-man
    sens = np.where(kind == 0, rng.uniform(0.80, 0.97, n_workers), rng.uniform(0.60, 0.75, n_workers))
    spec = np.where(kind == 0, rng.uniform(0.80, 0.97, n_workers), rng.uniform(0.60, 0.75, n_workers))
    sens[kind == 2], spec[kind == 2] = 0.5, 0.5
    sens[kind == 3], spec[kind == 3] = 1.0, 0.0
    activity = rng.lognormal(0.0, 1.0, n_workers)
    items = np.repeat(np.arange(n_items, dtype=np.int32), votes_per_item)
    workers = rng.choice(n_workers, size=items.size, p=activity / activity.sum()).astype(np.int32)
    p_yes = np.where(truth[items] == 1, sens[workers], 1.0 - spec[workers])
    labels = (rng.random(items.size) < p_yes).astype(np.int32)
    return {"items": items, "workers": workers, "labels": labels, "truth": truth}


def time_refit(data: dict[str, np.ndarray], n_workers: int, runs: int) -> dict[str, float | int | list]:
    n_items = int(data["truth"].size)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fit_consensus(data["items"], data["workers"], data["labels"], n_items, n_workers, 2)
        seconds.append(time.perf_counter() - start)
    mv = majority_vote(data["items"], data["workers"], data["labels"], n_items, 2)
    return {
        "seconds": round(statistics.median(seconds), 3),
        "seconds_runs": [round(s, 3) for s in seconds],
        "iterations": result.em.iterations,
        "converged": result.em.converged,
        "source": result.source,
        "accuracy": float(np.mean(result.labels == data["truth"])),
        "majority_vote_accuracy": float(np.mean(mv.labels == data["truth"])),
        "_result": result,  # removed before printing
    }


def time_refit_once(data: dict[str, np.ndarray], n_workers: int) -> float:
    start = time.perf_counter()
    fit_consensus(data["items"], data["workers"], data["labels"], int(data["truth"].size), n_workers, 2)
    return time.perf_counter() - start


def time_incremental(data: dict[str, np.ndarray], result, repeats: int = 2000) -> dict[str, float]:
    """One HIT = 24 answers on 24 candidates: recompute those candidates from all their votes."""
    rng = np.random.default_rng(3)
    vpi = int(data["items"].size // data["truth"].size)
    touched = rng.choice(data["truth"].size, size=24, replace=False)
    rows = (touched[:, None] * vpi + np.arange(vpi)).ravel()
    local = np.repeat(np.arange(24), vpi)
    workers, labels = data["workers"][rows], data["labels"][rows]
    conf, prior = result.model.confusion, result.model.class_prior
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        item_posteriors(local, workers, labels, 24, conf, prior)
        timings.append(time.perf_counter() - start)
    return {
        "answers_in_hit": 24,
        "votes_recomputed": int(rows.size),
        "median_ms": round(statistics.median(timings) * 1e3, 4),
        "p99_ms": round(float(np.quantile(timings, 0.99)) * 1e3, 4),
    }


def time_kinds(data: dict[str, np.ndarray], result, n_groups: int, repeats: int = 2000) -> dict[str, object]:
    """The step a campaign's refit adds after ``fit_consensus``: each synset's kinds of image (look-alikes,
    item_effect.py) fitted with the refit's worker confusions, and every item's posterior with its kind
    marginalised; items are dealt to ``n_groups`` synsets. Also the per-HIT update with kinds (24 answers)."""
    n_items = int(data["truth"].size)
    groups = np.arange(n_items) % n_groups
    conf, prior = result.model.confusion, result.model.class_prior
    start = time.perf_counter()
    loglik = item_effect.kind_log_likelihood(data["items"], data["workers"], data["labels"], n_items, conf)
    loglik_seconds = time.perf_counter() - start
    shares = item_effect.fit_item_kinds(loglik, np.bincount(data["items"], minlength=n_items), prior, groups, n_groups)
    fit_seconds = time.perf_counter() - start - loglik_seconds
    posteriors = item_effect.posteriors(loglik, shares[groups], prior)
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(3)
    vpi = int(data["items"].size // n_items)
    touched = rng.choice(n_items, size=24, replace=False)
    rows = (touched[:, None] * vpi + np.arange(vpi)).ravel()
    local = np.repeat(np.arange(24), vpi)
    timings = []
    for _ in range(repeats):
        begin = time.perf_counter()
        hit = item_effect.kind_log_likelihood(local, data["workers"][rows], data["labels"][rows], 24, conf)
        item_effect.posteriors(hit, shares[groups[touched]], prior)
        timings.append(time.perf_counter() - begin)
    return {
        "synsets": n_groups,
        "seconds": round(seconds, 3),
        "log_likelihood_seconds": round(loglik_seconds, 3),
        "fit_seconds": round(fit_seconds, 3),
        "accuracy": float(np.mean(posteriors.argmax(axis=1) == data["truth"])),
        "incremental_median_ms": round(statistics.median(timings) * 1e3, 4),
        "incremental_p99_ms": round(float(np.quantile(timings, 0.99)) * 1e3, 4),
    }


def run_crowdkit(
    data: dict[str, np.ndarray], n_workers: int, n_items: int, runs: int
) -> dict[str, float | int | list | str]:
    """``runs`` pairs (our refit, crowd-kit's DawidSkene) on the first ``n_items`` items' votes."""
    if not (CROWDKIT_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(CROWDKIT_VENV)], check=True)
        subprocess.run([str(CROWDKIT_VENV / "bin" / "pip"), "install", "-q", "crowd-kit"], check=True)
    mask = data["items"] < n_items
    subset = {k: v[mask] if k != "truth" else v[:n_items] for k, v in data.items()}
    load_before = os.getloadavg()
    ours, theirs, iterations, accuracy = [], [], 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "votes.npz"
        np.savez(path, **subset)
        for _ in range(runs):
            ours.append(time_refit_once(subset, n_workers))
            out = subprocess.run(
                [str(CROWDKIT_VENV / "bin" / "python"), "-c", CROWDKIT_SCRIPT, str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            theirs.append(float(out[0]))
            accuracy, iterations = float(out[1]), int(out[2])
    return {
        "votes": int(mask.sum()),
        "seconds": round(statistics.median(theirs), 3),
        "seconds_runs": [round(t, 3) for t in theirs],
        "iterations": iterations,
        "accuracy": accuracy,
        "ours_seconds_same_votes": round(statistics.median(ours), 3),
        "ours_seconds_runs": [round(t, 3) for t in ours],
        "ratio": round(statistics.median(theirs) / statistics.median(ours), 1),
        "ratio_per_pair": [round(t / o, 1) for t, o in zip(theirs, ours, strict=True)],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="consensus refit benchmark")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--votes-per-item", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--synsets", type=int, default=1_000, help="synsets the items are dealt to (kinds)")
    parser.add_argument("--crowdkit", action="store_true")
    parser.add_argument("--crowdkit-items", type=int, default=0, help="0 = all items (same votes as the refit)")
    parser.add_argument("--crowdkit-runs", type=int, default=3)
    args = parser.parse_args()

    data = simulate(args.items, args.workers, args.votes_per_item)
    load_before = os.getloadavg()
    refit = time_refit(data, args.workers, args.runs)
    result = refit.pop("_result")
    report: dict[str, object] = {
        "votes": int(data["items"].size),
        "items": args.items,
        "workers": args.workers,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_before": [round(x, 2) for x in load_before],
        "refit": refit,
        "incremental": time_incremental(data, result),
        "kinds": time_kinds(data, result, args.synsets),
    }
    report["refit_with_kinds_seconds"] = round(refit["seconds"] + report["kinds"]["seconds"], 3)
    if args.crowdkit:
        ck_items = args.crowdkit_items or args.items
        report["crowdkit"] = {
            **run_crowdkit(data, args.workers, ck_items, args.crowdkit_runs),
            "note": "crowd-kit DawidSkene(n_iter=100, default tol) vs fit_consensus on the same votes, same machine,"
            " each crowd-kit run right after one of ours",
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
