"""How few votes can *any* per-image stopping rule spend on the simulated crowd? Prints JSON.

Issue #5/#6 ask adaptive votes to reach >= 99.7% precision with at most 60% of the votes of fixed-5
majority. This benchmark asks what an oracle would spend: a decision maker who knows every worker's true
sensitivity and specificity, knows the true mix of positives, easy negatives and hard (confusable)
negatives, and computes the exact posterior of every candidate after every vote — no estimation error,
no spammers (the quiz and the screen are assumed perfect), votes bought one at a time where they are
still needed. Synsight's model can only approach it; if the oracle cannot meet a target at some bar, no
per-image rule can.

The crowd is the simulator's (annotation/simulator/workers.py: ``crowd_make`` with the honest part of the
mix, hard negatives answered with ``HARD_FACTOR`` times the error, capped at ``MAX_HARD_ERROR``). Candidate
shares default to what the demo campaign's truth holds (measured on the 8-shape demo with 300 images per
shape: 72.3% positive, 9.5% easy negative, 18.2% confusable negative).

Rules compared, all with the demo policy's min 2 / max 8 votes and rejection at P(absent) >= 0.95:

* ``oracle@<bar>`` — accept at P(present) >= bar with the exact mixture posterior;
* ``naive@<bar>`` — knows each worker exactly but treats every negative as easy (what a worker-aware
  model without item difficulty computes): cheaper, and over-confident on confusable negatives;
* ``fixed5`` — five votes, majority.

    .venv/bin/python benchmarks/adaptive_bound.py [--items 200000] [--bars 0.99,0.993,0.995,0.997,0.999]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from annotation.simulator.workers import HARD_FACTOR, MAX_HARD_ERROR, crowd_make

HONEST_MIX = "reliable:0.6,noisy:0.25"
SHARES = (0.723, 0.095, 0.182)  # positive, easy negative, hard negative
REJECT_BAR, MIN_VOTES, MAX_VOTES = 0.95, 2, 8


def crowd(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(yes) of each worker on a positive, an easy negative and a hard negative."""
    workers = crowd_make(n, HONEST_MIX, seed=seed)
    se = np.array([w.sensitivity for w in workers])
    sp = np.array([w.specificity for w in workers])
    return se, 1 - sp, np.minimum(MAX_HARD_ERROR, (1 - sp) * HARD_FACTOR)


def run(rule: str, bar: float, kind: np.ndarray, yes_rates: np.ndarray, shares, rng) -> dict:
    """Buy votes one at a time for every open candidate until the rule stops it."""
    n_items, n_workers = len(kind), yes_rates.shape[1]
    believed = yes_rates.copy()
    if rule == "naive":
        believed[2] = believed[1]
    log_lik = np.zeros((n_items, 3))
    votes = np.zeros(n_items, dtype=np.int64)
    state = np.zeros(n_items, dtype=np.int8)  # 0 open, 1 accepted, 2 rejected, 3 unresolved
    log_prior = np.log(np.asarray(shares))
    for _ in range(MAX_VOTES):
        open_ = np.flatnonzero(state == 0)
        if not len(open_):
            break
        worker = rng.integers(0, n_workers, len(open_))
        says_yes = rng.random(len(open_)) < yes_rates[kind[open_], worker]
        p_yes = believed[:, worker].T
        log_lik[open_] += np.where(says_yes[:, None], np.log(p_yes), np.log1p(-p_yes))
        votes[open_] += 1
        post = log_lik[open_] + log_prior
        post = np.exp(post - post.max(axis=1, keepdims=True))
        p_present = post[:, 0] / post.sum(axis=1)
        enough = votes[open_] >= MIN_VOTES
        accept = enough & (p_present >= bar)
        reject = enough & ~accept & (1 - p_present >= REJECT_BAR)
        state[open_[accept]], state[open_[reject]] = 1, 2
        state[open_[(state[open_] == 0) & (votes[open_] >= MAX_VOTES)]] = 3
    return figures(votes, state == 1, kind)


def fixed5(kind: np.ndarray, yes_rates: np.ndarray, rng) -> dict:
    worker = rng.integers(0, yes_rates.shape[1], (len(kind), 5))
    yes = (rng.random((len(kind), 5)) < yes_rates[kind[:, None], worker]).sum(axis=1)
    return figures(np.full(len(kind), 5), yes >= 3, kind)


def figures(votes: np.ndarray, accepted: np.ndarray, kind: np.ndarray) -> dict:
    true = accepted & (kind == 0)
    return {
        "votes_per_candidate": round(float(votes.mean()), 4),
        "precision": round(float(true.sum() / max(accepted.sum(), 1)), 5),
        "recall": round(float(true.sum() / max((kind == 0).sum(), 1)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2_000)
    parser.add_argument("--bars", default="0.99,0.993,0.995,0.997,0.999")
    parser.add_argument("--shares", default=",".join(map(str, SHARES)), help="positive,easy negative,hard negative")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    shares = np.array([float(s) for s in args.shares.split(",")])
    shares /= shares.sum()
    rng = np.random.default_rng(args.seed)
    kind = rng.choice(3, size=args.items, p=shares)
    yes_rates = np.stack(crowd(args.workers, args.seed))
    base = fixed5(kind, yes_rates, rng)
    out = {"items": args.items, "workers": args.workers, "shares": shares.round(4).tolist(), "fixed5": base}
    for rule in ("oracle", "naive"):
        for bar in (float(b) for b in args.bars.split(",")):
            result = run(rule, bar, kind, yes_rates, shares, rng)
            result["votes_vs_fixed5"] = round(result["votes_per_candidate"] / base["votes_per_candidate"], 4)
            out[f"{rule}@{bar}"] = result
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
