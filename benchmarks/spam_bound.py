"""How soon can *any* screen tell a coin-flipping spammer from the simulated honest crowd? Prints JSON.

Issue #9 asks every spammer (random, always-yes, always-no, copycat) blocked within a median of 3 HITs,
without changing label precision. Constant answerers and copycats are caught in 1-3 HITs by
annotation/services/screening.py; coin-flippers ("random": "present" with probability 1/2 whatever the
image) are caught after 25-28 HITs or not at all. This benchmark asks what an oracle screen could do: it
knows the true distribution of honest workers' sensitivity and specificity (the simulator's, a large
sample of it), every answer is scored against the true label (a perfect reference, as gold), and the test
is the Bayes factor

    log [ max_q L(coin flipper answering "present" with probability q) / mean_k L(honest worker k) ]

— the likelihood ratio against the whole honest population, which is the most powerful test for a
worker drawn from it. For n answers it sets the block threshold at the honest workers' (1 - fp) quantile
(fp = honest workers blocked per look; a real screen looks after every HIT, so its real rate is higher)
and reports the share of coin-flippers above it. Next to it, the screen's own test (spam_log_lr: honest
sensitivity and specificity each >= HONEST_MIN_RATE, SPAM_LOG_LR nats) on the same answers.

Items are drawn as in the demo campaign (shares of positives, easy and confusable negatives as in
adaptive_bound.py); honest workers err HARD_FACTOR times more on confusable negatives.

    .venv/bin/python benchmarks/spam_bound.py [--answers 24,48,72,120,240] [--honest 4000] [--seed 1]

n = 72 is three 24-image HITs in which every answer has a reference; in a real HIT only gold items and
candidates that others have already voted on confidently are references.

Measured 2026-12-02 (--honest 3000, seed 1): with 72 answers the oracle catches 54% of coin-flippers when it
may block 0.5% of honest workers per look, 79% at 1%, 99% at 5% (27% at 0.1%, a noisy quantile); with 240
answers, 87% at 0.5%. The screen's test (floor 0.6, 10 nats) catches none at 72 answers, 8% at 240, and
blocked no honest worker at any n. A plain raise of its floor or cut of its bar trades the same way (floor
0.65 at 6 nats: 18% of coin-flippers at 72 answers for 0.13% of honest workers per look, 90% at 240 for
0.5%). So "every coin-flipper blocked within 3 HITs" costs, on this crowd, about one honest worker in 50
to 100 blocked (three looks), even for a screen that knows the crowd exactly and has a reference for
every answer: the noisiest honest workers (accuracy from Beta(16, 4.5), 2.5 times the error on confusable
negatives) answer nearly at chance on confusable images.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # screening.py, whose test this measures, imports the models

django.setup()
from adaptive_bound import SHARES  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from annotation.services.screening import (  # noqa: E402
    ACCURACY_LOG_LR,
    ACCURACY_MIN_ANSWERS,
    HONEST_MIN_RATE,
    SPAM_LOG_LR,
    spam_log_lr,
)
from annotation.simulator.workers import HARD_FACTOR, MAX_HARD_ERROR, crowd_make  # noqa: E402

HONEST_MIX = "reliable:0.55,noisy:0.25"  # the honest part of the spam20 scenario's mix


def yes_rates(n: int, seed: int) -> np.ndarray:
    """(workers, 3): P("present") on a positive, an easy negative, a confusable negative."""
    workers = crowd_make(n, HONEST_MIX, seed=seed)
    se = np.array([w.sensitivity for w in workers])
    fp = 1 - np.array([w.specificity for w in workers])
    return np.stack([se, fp, np.minimum(MAX_HARD_ERROR, fp * HARD_FACTOR)], axis=1)


def answer(rates: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Per worker, answers to n random items: ("present" counts, item counts), each (workers, 3)."""
    kind = rng.choice(3, size=(len(rates), n), p=SHARES)
    items = np.stack([(kind == k).sum(axis=1) for k in range(3)], axis=1)
    return rng.binomial(items, rates), items


def bayes_factor(yes: np.ndarray, items: np.ndarray, population: np.ndarray) -> np.ndarray:
    """log max_q L(coin) - log mean_k L(population[k]) per worker."""
    log_yes, log_no = np.log(population), np.log1p(-population)
    lik = yes @ log_yes.T + (items - yes) @ log_no.T  # (workers, population)
    top = lik.max(axis=1)
    honest = top + np.log(np.exp(lik - top[:, None]).mean(axis=1))
    n, k = items.sum(axis=1), yes.sum(axis=1)
    q = np.clip(k / n, 1e-9, 1 - 1e-9)
    return k * np.log(q) + (n - k) * np.log1p(-q) - honest


def screen_statistic(yes: np.ndarray, items: np.ndarray, rng) -> np.ndarray:
    """The screen's reference test on the same answers, references exact (0 or 1)."""
    out = np.empty(len(yes))
    for w in range(len(yes)):
        truth = np.repeat([1.0, 0.0, 0.0], items[w])
        said = np.concatenate([rng.permutation(np.arange(m) < y) for m, y in zip(items[w], yes[w], strict=True)])
        out[w] = spam_log_lr(np.zeros(len(said), dtype=np.intp), said.astype(float), truth, 1)[0]
    return out


GOLD_SHARES = (0.5, 0.5 * SHARES[1] / (SHARES[1] + SHARES[2]), 0.5 * SHARES[2] / (SHARES[1] + SHARES[2]))
BANDS = (0.55, 0.6, 0.65, 0.7, 0.75, 0.8)


def bar_sequential(rates: np.ndarray, bar: float, threshold: float, looks: list[int], shares, rng) -> np.ndarray:
    """The accuracy-bar test (spam_log_lr with the honest floor at ``bar``) looked at after each of ``looks``
    reference answers (exact references, item kinds drawn with ``shares``), as the per-HIT screen does; per
    worker the first look at which it reached ``threshold`` (index into looks), or len(looks) if none."""
    n = max(looks)
    kind = rng.choice(3, size=(len(rates), n), p=shares)
    said = (rng.random((len(rates), n)) < np.take_along_axis(rates, kind, axis=1)).astype(float)
    truth = (kind == 0).astype(float)
    first = np.full(len(rates), len(looks))
    for i, m in reversed(list(enumerate(looks))):
        workers = np.repeat(np.arange(len(rates)), m)
        llr = spam_log_lr(workers, said[:, :m].ravel(), truth[:, :m].ravel(), len(rates), floor=bar)
        first[llr >= threshold] = i
    return first


def bar_report(args, rng) -> dict:
    """Coin-flippers caught and honest workers blocked by the accuracy-bar test, looks every --look answers."""
    looks = [m for m in range(args.look, args.bar_answers + 1, args.look) if m >= ACCURACY_MIN_ANSWERS]
    shares = GOLD_SHARES if args.references == "gold" else SHARES
    honest = yes_rates(args.honest, args.seed + 2000)
    true_se = honest[:, 0]
    true_sp = (shares[1] * (1 - honest[:, 1]) + shares[2] * (1 - honest[:, 2])) / (shares[1] + shares[2])
    low = np.minimum(true_se, true_sp)
    out = {"bar": args.bar, "threshold_nats": args.threshold, "references": args.references, "looks": looks}
    coins = bar_sequential(np.full((args.coins, 3), 0.5), args.bar, args.threshold, looks, shares, rng)
    out["coins_caught_by"] = {m: round(float((coins <= i).mean()), 3) for i, m in enumerate(looks)}
    caught = coins[coins < len(looks)]
    out["coins_median_answers"] = float(np.median([looks[i] for i in caught])) if len(caught) else None
    first = bar_sequential(honest, args.bar, args.threshold, looks, shares, rng)
    edges = (0.0, *BANDS, 1.01)
    bands = {}
    for a, b in itertools.pairwise(edges):
        inside = (low >= a) & (low < b)
        if inside.any():
            bands[f"{a:.2f}-{min(b, 1):.2f}"] = [int(inside.sum()), int((first[inside] < len(looks)).sum())]
    out["honest_by_true_accuracy"] = bands  # [workers, blocked within the looks], accuracy = min(se, sp)
    out["honest_blocked"] = round(float((first < len(looks)).mean()), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", default="24,48,72,120,240")
    parser.add_argument("--honest", type=int, default=4000, help="honest workers tested (and as many as the prior)")
    parser.add_argument("--coins", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bar", type=float, help="only the accuracy-bar test at this campaign bar (e.g. 0.65)")
    parser.add_argument("--threshold", type=float, default=ACCURACY_LOG_LR, help="its block threshold, nats")
    parser.add_argument("--bar-answers", type=int, default=240, help="reference answers per worker")
    parser.add_argument("--look", type=int, default=12, help="reference answers between looks")
    parser.add_argument("--references", choices=["gold", "candidates"], default="gold",
                        help="item mix: gold (half present) or candidates (demo shares)")  # fmt: skip
    args = parser.parse_args()
    if args.bar is not None:
        print(json.dumps(bar_report(args, np.random.default_rng(args.seed)), indent=2))
        return
    rng = np.random.default_rng(args.seed)
    population = yes_rates(args.honest, args.seed)  # what the oracle believes honest workers are
    tested = yes_rates(args.honest, args.seed + 1000)  # fresh honest workers to test
    coins = np.full((args.coins, 3), 0.5)
    out = {"honest_mix": HONEST_MIX, "item_shares": list(SHARES), "honest_tested": args.honest, "coins": args.coins}
    rows = []
    for n in (int(a) for a in args.answers.split(",")):
        h_yes, h_items = answer(tested, n, rng)
        c_yes, c_items = answer(coins, n, rng)
        honest_bf, coin_bf = bayes_factor(h_yes, h_items, population), bayes_factor(c_yes, c_items, population)
        m = min(500, args.coins)
        honest_screen = screen_statistic(h_yes[:m], h_items[:m], rng)
        coin_screen = screen_statistic(c_yes[:m], c_items[:m], rng)
        row = {"answers": n, "hits_if_all_referenced": round(n / 24, 1)}
        for fp in (0.001, 0.005, 0.01, 0.05):
            threshold = float(np.quantile(honest_bf, 1 - fp))
            row[f"oracle_caught_at_honest_fp_{fp}"] = round(float((coin_bf > threshold).mean()), 3)
        row["screen_caught"] = round(float((coin_screen >= SPAM_LOG_LR).mean()), 3)
        row["screen_honest_blocked"] = round(float((honest_screen >= SPAM_LOG_LR).mean()), 4)
        rows.append(row)
    out["by_answers"] = rows
    out["screen"] = {"honest_min_rate": HONEST_MIN_RATE, "spam_log_lr": SPAM_LOG_LR}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
