"""Run consensus methods on a votes CSV and score them against an optional truth CSV.

``evaluate(votes_path, truth_path=None, methods=None)`` is what ``manage.py consensus_eval`` wraps.
Truth is used only for scoring, never shown to a model. Gold is what a campaign has: items with known
answers mixed into the work. ``gold`` (a CSV like truth) and/or ``gold_fraction`` (that share of the truth,
drawn with ``seed``) are shown to ``synsight`` and ``kinds`` only — it anchors EM and decides the guard with them — and
every method is then scored on the truth items that are not gold, so the figures stay comparable. Without
gold, the figures are the unsupervised ones that published tables report. Command line:

    python -m annotation.consensus.evaluate --votes votes.csv [--truth truth.csv] [--gold gold.csv]
        [--gold-fraction 0.05 --seed 0] [--method ds ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..tables import dict_reader
from . import item_effect
from .dawid_skene import PLAIN_PRIOR, fit_dawid_skene
from .difficulty import fit_item_difficulty
from .guard import fit_consensus
from .imagenet_table import fit_imagenet_table
from .majority import majority_vote
from .subtypes import SubtypeConfig, best_fit
from .votes import prepare_votes, vote_counts


@dataclass(frozen=True)
class CodedVotes:
    """Votes with string ids coded to integers; ``*_ids[code]`` gives back the original id."""

    items: NDArray[np.int32]
    workers: NDArray[np.int32]
    labels: NDArray[np.int32]
    item_ids: list[str]
    worker_ids: list[str]
    label_ids: list[str]
    truth_items: NDArray[np.int64]
    truth_labels: NDArray[np.int64]
    gold_items: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    gold_labels: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    truth_unvoted: int = 0  # truth items nobody voted on (left out of every score)
    # Each item's group for ``kinds`` (a campaign's synsets); None: the whole file is one group.
    item_groups: NDArray[np.int64] | None = None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_workers(self) -> int:
        return len(self.worker_ids)

    @property
    def n_classes(self) -> int:
        return len(self.label_ids)


def _label_key(label: str) -> tuple[int, float | str]:
    # Numeric labels sort numerically ("2" before "10"); anything else alphabetically after them.
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


# Public crowd data comes in two layouts besides ours, accepted as they are: crowd-kit's (``worker,task,label``;
# truth ``task,true_label``) and Zheng et al. 2017's (``question,worker,answer``; truth ``question,truth``).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "item": ("item", "task", "question"),
    "worker": ("worker",),
    "label": ("label", "answer", "true_label", "truth"),
}


def resolve_columns(header: Sequence[str], columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The header's name for each wanted column (ours first, then a known alias), and the wanted ones absent."""
    found, missing = [], []
    for column in columns:
        name = next((a for a in COLUMN_ALIASES.get(column, (column,)) if a in header), None)
        if name is None:
            missing.append(column)
        else:
            found.append(name)
    return found, missing


def _same_label(label: str) -> str:
    """One spelling per label: a whole number written as a float ("1.0", which pandas writes for an integer
    column with a gap in it) is the same label as "1"."""
    try:
        number = float(label)
    except ValueError:
        return label
    return str(int(number)) if number.is_integer() else label


def _read_rows(path: str | Path, columns: Sequence[str]) -> list[tuple[str, ...]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet may start the file with a BOM
        reader = dict_reader(handle)
        names, missing = resolve_columns(reader.fieldnames or [], columns)
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = []
        for row in reader:
            values = tuple((row[c] or "").strip() for c in names)
            if not all(values):
                empty = ", ".join(c for c, v in zip(columns, values, strict=True) if not v)
                raise ValueError(f"{path} line {reader.line_num}: no {empty}")
            rows.append(tuple(_same_label(v) if c == "label" else v for c, v in zip(columns, values, strict=True)))
        return rows


def load_votes(
    votes_path: str | Path, truth_path: str | Path | None = None, gold_path: str | Path | None = None
) -> CodedVotes:
    """Read ``item,worker,label`` votes (and ``item,label`` truth and gold) into integer codes; crowd-kit's and
    Zheng et al.'s column names are accepted too (``COLUMN_ALIASES``).

    Items and workers are coded in order of first appearance; labels in sorted order over votes, truth
    and gold together (numeric when they all parse as numbers). Truth and gold rows for items nobody voted
    on are dropped — no method can be scored on them or learn from them.
    """
    vote_rows = _read_rows(votes_path, ("item", "worker", "label"))
    truth_rows = _read_rows(truth_path, ("item", "label")) if truth_path else []
    gold_rows = _read_rows(gold_path, ("item", "label")) if gold_path else []
    label_ids = sorted({r[2] for r in vote_rows} | {r[1] for r in truth_rows + gold_rows}, key=_label_key)
    if not vote_rows:
        raise ValueError(f"{votes_path} has a header but no votes")
    if len(label_ids) < 2:
        raise ValueError(
            f"every vote{' and truth row' if truth_rows else ''} has the label {label_ids[0]!r}: "
            "consensus needs at least two labels to choose between"
        )
    label_code = {label: i for i, label in enumerate(label_ids)}
    item_code: dict[str, int] = {}
    worker_code: dict[str, int] = {}
    items = np.fromiter((item_code.setdefault(r[0], len(item_code)) for r in vote_rows), np.int32, len(vote_rows))
    workers = np.fromiter((worker_code.setdefault(r[1], len(worker_code)) for r in vote_rows), np.int32, len(vote_rows))
    labels = np.fromiter((label_code[r[2]] for r in vote_rows), np.int32, len(vote_rows))
    truth = _one_label_per_item(truth_rows, truth_path)
    scored = [(item_code[i], label_code[lab]) for i, lab in truth.items() if i in item_code]
    gold = {
        item_code[i]: label_code[lab] for i, lab in _one_label_per_item(gold_rows, gold_path).items() if i in item_code
    }
    for path, rows, kept in ((truth_path, truth_rows, scored), (gold_path, gold_rows, gold)):
        if rows and not kept:
            raise ValueError(
                f"none of the {len(rows)} items of {path} has a vote in {votes_path} (items are matched by their "
                f"text: e.g. {rows[0][0]!r} there, {vote_rows[0][0]!r} in the votes)"
            )
    return CodedVotes(
        items=items,
        workers=workers,
        labels=labels,
        item_ids=list(item_code),
        worker_ids=list(worker_code),
        label_ids=label_ids,
        truth_items=np.array([s[0] for s in scored], dtype=np.int64),
        truth_labels=np.array([s[1] for s in scored], dtype=np.int64),
        gold_items=np.array(list(gold), dtype=np.int64),
        gold_labels=np.array(list(gold.values()), dtype=np.int64),
        truth_unvoted=len(truth) - len(scored),
    )


def _one_label_per_item(rows: list[tuple[str, ...]], path: str | Path | None) -> dict[str, str]:
    """Truth or gold rows as {item: label}; an item listed twice with one label counts once (scoring it twice
    would weigh it double), with two labels it is an error: no method can be right about it."""
    labelled: dict[str, str] = {}
    for item, label in rows:
        seen = labelled.setdefault(item, label)
        if seen != label:
            raise ValueError(f"{path} gives item {item!r} two labels, {seen!r} and {label!r}")
    return labelled


def describe(d: CodedVotes) -> dict[str, object]:
    """What the evaluation ran on, for the reader of its figures: sizes, answers per item, the labels (in code
    order, so ``labels[0]`` is the class ties go to), answers a worker gave the same item more than once (each
    counts as a vote, as in crowd-kit), and how many truth items are scored."""
    per_item = np.bincount(d.items, minlength=d.n_items)
    pairs = d.items.astype(np.int64) * max(d.n_workers, 1) + d.workers
    return {
        "votes": len(d.items),
        "items": d.n_items,
        "workers": d.n_workers,
        "labels": list(d.label_ids),
        "answers_per_item": {
            "min": int(per_item.min()),
            "median": float(np.median(per_item)),
            "max": int(per_item.max()),
        },
        "repeated_answers": int(len(pairs) - len(np.unique(pairs))),
        "truth_items": len(d.truth_items),
        "truth_items_without_votes": d.truth_unvoted,
        "gold_items": len(d.gold_items),
    }


def with_gold_from_truth(d: CodedVotes, fraction: float, seed: int = 0) -> CodedVotes:
    """``d`` with ``fraction`` of its truth items (at least one; drawn with ``seed``) added to its gold."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the gold fraction must be between 0 and 1 (exclusive), not {fraction}")
    if len(d.truth_items) == 0:
        raise ValueError("a gold fraction is drawn from the truth: give a truth file with rows")
    n = max(1, round(fraction * len(d.truth_items)))
    drawn = np.sort(np.random.default_rng(seed).choice(len(d.truth_items), size=n, replace=False))
    new = ~np.isin(d.truth_items[drawn], d.gold_items)
    return replace(
        d,
        gold_items=np.concatenate([d.gold_items, d.truth_items[drawn][new]]),
        gold_labels=np.concatenate([d.gold_labels, d.truth_labels[drawn][new]]),
    )


Predicted = NDArray[np.int64] | tuple[NDArray[np.int64], NDArray[np.float64]]


def _mv(d: CodedVotes) -> Predicted:
    return majority_vote(d.items, d.workers, d.labels, d.n_items, d.n_classes).labels


def _imagenet(d: CodedVotes) -> Predicted:
    if d.n_classes != 2:
        raise ValueError("the ImageNet table is defined for binary (present/absent) votes only")
    votes = prepare_votes(d.items, d.workers, d.labels, d.n_items, d.n_workers, 2)
    counts = vote_counts(votes)
    p_present = fit_imagenet_table(counts[:, 1], counts[:, 0]).posterior(counts[:, 1], counts[:, 0])
    return (p_present >= 0.5).astype(np.int64), np.stack((1 - p_present, p_present), axis=1)


def _ds(d: CodedVotes) -> Predicted:
    fit = fit_dawid_skene(
        d.items, d.workers, d.labels, d.n_items, d.n_workers, d.n_classes, prior=PLAIN_PRIOR, mode="map"
    )
    return fit.labels, fit.posteriors


def _difficulty(d: CodedVotes) -> Predicted:
    if d.n_classes != 2:
        raise ValueError("the item-difficulty model is defined for binary votes only")
    votes = prepare_votes(d.items, d.workers, d.labels, d.n_items, d.n_workers, 2)
    fit = fit_item_difficulty(votes)[0]
    return fit.labels, fit.posteriors


def _subtypes(d: CodedVotes) -> Predicted:
    votes = prepare_votes(d.items, d.workers, d.labels, d.n_items, d.n_workers, d.n_classes)
    config = SubtypeConfig()
    fit = best_fit(votes, config, config.n_subtypes)
    return fit.posteriors.argmax(axis=1), fit.posteriors


def _fit_synsight(d: CodedVotes):
    return fit_consensus(
        d.items, d.workers, d.labels, d.n_items, d.n_workers, d.n_classes,
        gold_items=d.gold_items, gold_labels=d.gold_labels,
    )  # fmt: skip


def _synsight(d: CodedVotes) -> Predicted:
    result = _fit_synsight(d)
    return result.labels, result.posteriors


def _kinds(d: CodedVotes) -> Predicted:
    """What a campaign's refit publishes: ``synsight``'s fit, then each group's kinds of item (look-alikes,
    item_effect.py) fitted with its worker confusions and marginalised; under the guard's majority fallback,
    the fallback's posteriors."""
    if d.n_classes != 2:
        raise ValueError("kinds of item (look-alikes) are defined for binary votes only")
    result = _fit_synsight(d)
    if result.source != "em":
        return result.labels, result.posteriors
    groups = np.zeros(d.n_items, dtype=np.intp) if d.item_groups is None else np.asarray(d.item_groups)
    n_groups = int(groups.max()) + 1 if len(groups) else 1
    _, posteriors = item_effect.fit_and_marginalise(
        d.items, d.workers, d.labels, d.n_items, result.model.confusion, result.model.class_prior, groups, n_groups,
        gold_items=d.gold_items, gold_labels=d.gold_labels,
    )  # fmt: skip
    return posteriors.argmax(axis=1), posteriors


METHODS: dict[str, Callable[[CodedVotes], Predicted]] = {
    "mv": _mv,
    "imagenet": _imagenet,
    "ds": _ds,
    "difficulty": _difficulty,
    "subtypes": _subtypes,
    "synsight": _synsight,
    "kinds": _kinds,
}
"""``mv`` majority vote (ties to the lowest class); ``imagenet`` Deng et al. 2009 table (binary);
``ds`` plain maximum-likelihood Dawid–Skene; ``difficulty`` the item-difficulty model alone (binary,
always used); ``subtypes`` the subtype model alone (workers who err together, Li et al. 2019; always used);
``synsight`` the guarded worker-aware model (DS or, when held-out votes ask for it, the item-difficulty model,
or, when the votes' evidence asks for it, the subtype model); ``kinds`` (binary) ``synsight`` with look-alikes
marginalised, the posteriors a campaign's refit publishes (per synset with ``--campaign``, one group for a
CSV). ``synsight`` and ``kinds`` are the only methods shown gold, as in a campaign. Every method but ``mv`` also
gives posteriors, scored by their log loss."""
GOLD_METHODS = ("synsight", "kinds")
BINARY_ONLY = ("imagenet", "difficulty", "kinds")


def log_loss(posteriors: NDArray[np.float64], items: NDArray, labels: NDArray) -> float:
    """Mean ``-ln P(true label)`` over the scored items (posteriors clipped at 1e-12): what a confident
    wrong answer costs. 0.693 is a coin on binary labels."""
    return float(-np.log(np.clip(posteriors[items, labels], 1e-12, 1.0)).mean())


def evaluate(
    votes_path: str | Path,
    truth_path: str | Path | None = None,
    methods: Iterable[str] | None = None,
    *,
    gold_path: str | Path | None = None,
    gold_fraction: float = 0.0,
    seed: int = 0,
) -> dict[str, dict[str, float | int | str | None]]:
    """Run each method on the CSV files; see ``evaluate_coded`` for the report."""
    data = load_votes(votes_path, truth_path, gold_path)
    return evaluate_coded(data, methods, gold_fraction=gold_fraction, seed=seed)


def evaluate_coded(
    data: CodedVotes, methods: Iterable[str] | None = None, *, gold_fraction: float = 0.0, seed: int = 0
) -> dict[str, dict[str, float | int | str | None]]:
    """Run each method; return ``{method: {accuracy, correct, scored, log_loss, gold, seconds}}`` (JSON-ready).

    ``accuracy`` is over items that have truth and votes and are not gold (``None`` without a truth
    file); ``log_loss`` over the same items (``None`` for ``mv``, which gives no posteriors, or without
    truth); ``gold`` is the number of gold items the method was shown (``synsight`` and ``kinds`` only; see
    the module docstring). A method that does not apply (``imagenet`` or ``difficulty`` on non-binary data) reports
    ``error`` instead. ``seconds`` is the wall time of the method alone, CSV loading excluded.
    """
    if gold_fraction:
        data = with_gold_from_truth(data, gold_fraction, seed)
    not_gold = ~np.isin(data.truth_items, data.gold_items)
    truth_items, truth_labels = data.truth_items[not_gold], data.truth_labels[not_gold]
    names = list(methods) if methods else [m for m in METHODS if m not in BINARY_ONLY or data.n_classes == 2]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    report: dict[str, dict[str, float | int | str | None]] = {}
    for name in names:
        start = time.perf_counter()
        try:
            predicted = METHODS[name](data)
        except ValueError as error:
            report[name] = {"error": str(error)}
            continue
        seconds = time.perf_counter() - start
        predicted, posteriors = predicted if isinstance(predicted, tuple) else (predicted, None)
        scored = len(truth_items)
        correct = int(np.sum(predicted[truth_items] == truth_labels)) if scored else 0
        report[name] = {
            "accuracy": correct / scored if scored else None,
            "correct": correct,
            "scored": scored,
            "log_loss": round(log_loss(posteriors, truth_items, truth_labels), 4)
            if scored and posteriors is not None
            else None,
            "gold": len(data.gold_items) if name in GOLD_METHODS else 0,
            "seconds": round(seconds, 4),
        }
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", required=True, help="CSV with columns item,worker,label")
    parser.add_argument("--truth", help="CSV with columns item,label (scoring only)")
    parser.add_argument("--gold", help="CSV with columns item,label: gold shown to synsight, not scored")
    parser.add_argument("--gold-fraction", type=float, default=0.0, help="share of the truth used as gold")
    parser.add_argument("--seed", type=int, default=0, help="draws the --gold-fraction items")
    parser.add_argument("--method", action="append", choices=sorted(METHODS), help="repeatable; default all")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by method")
    args = parser.parse_args(argv)
    report = evaluate(
        args.votes, args.truth, args.method, gold_path=args.gold, gold_fraction=args.gold_fraction, seed=args.seed
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, row in report.items():
        if "error" in row:
            print(f"{name:10s} {row['error']}")
        elif row["accuracy"] is None:
            print(f"{name:10s} {'-':>8s} {row['seconds']:8.3f}s")
        else:
            loss = "" if row["log_loss"] is None else f"  log loss {row['log_loss']:.4f}"
            print(f"{name:10s} {row['accuracy']:8.4f} {row['seconds']:8.3f}s  ({row['correct']}/{row['scored']}){loss}")


if __name__ == "__main__":
    main()
