"""``manage.py consensus_eval``: accuracy and time of each consensus method on a votes CSV.

    manage.py consensus_eval --votes votes.csv [--truth truth.csv] [--method mv --method ds ...] [--json]
        [--gold gold.csv] [--gold-fraction 0.05 [--seed 0]]
    manage.py consensus_eval --campaign 1 [--method ...] [--json] [--gold-fraction 0.05 [--seed 0]]

A thin wrapper over ``annotation.consensus.evaluate.evaluate`` (the engine needs no database): votes
have columns ``item,worker,label``, truth ``item,label`` and is used for scoring only, never shown to a
model (crowd-kit's ``task,worker,label`` / ``task,true_label`` and Zheng et al.'s ``question,worker,answer`` /
``question,truth`` are read as they are). Gold (``--gold``, or ``--gold-fraction`` of the truth) is what a
campaign mixes into its HITs: it is shown to ``synsight`` only, and every method is scored on the truth items
that are not gold. Prints a table (method, accuracy, correct/scored, seconds) or, with ``--json``, one JSON
object keyed by method.
``--campaign N`` reads a campaign's votes from the database instead (the simulator's data inside the app):
its gold items as gold, the demo ground truth as truth (annotation/selectors/consensus_eval.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.consensus.evaluate import METHODS, CodedVotes, describe, evaluate_coded, load_votes, resolve_columns
from annotation.tables import dict_reader

VOTE_COLUMNS = ("item", "worker", "label")
TRUTH_COLUMNS = ("item", "label")


def _check_csv(path: str, columns: tuple[str, ...], what: str, need_rows: bool) -> None:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"The {what} file {path} does not exist.")
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = dict_reader(handle)
            header = reader.fieldnames
            has_row = next(reader, None) is not None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CommandError(f"The {what} file {path} cannot be read as CSV: {error}.") from error
    if not header:
        raise CommandError(f"The {what} file {path} is empty; expected a header with columns {','.join(columns)}.")
    _, missing = resolve_columns(header, columns)
    if missing:
        raise CommandError(
            f"The {what} file {path} lacks the column(s) {', '.join(missing)}; expected {','.join(columns)} "
            f"(also read: task or question for item; answer, true_label or truth for label; found {','.join(header)})."
        )
    if need_rows and not has_row:
        raise CommandError(f"The {what} file {path} has a header but no rows.")


class Command(BaseCommand):
    help = "Run consensus methods on a votes CSV (item,worker,label) and report accuracy against a truth CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--votes", help="CSV with columns item,worker,label")
        source.add_argument(
            "--campaign",
            type=int,
            help="a campaign's votes from the database instead (items are candidates; its gold items are shown "
            "to synsight; scored against the demo ground truth when its images are demo images)",
        )
        parser.add_argument("--truth", help="CSV with columns item,label (used for scoring only)")
        parser.add_argument(
            "--method",
            action="append",
            dest="methods",
            metavar="METHOD",
            help=f"repeatable; one of {', '.join(METHODS)} (default: all that apply)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object keyed by method")
        parser.add_argument(
            "--gold", help="CSV with columns item,label: gold answers shown to synsight (as a campaign's gold items)"
        )
        parser.add_argument(
            "--gold-fraction",
            type=float,
            default=0.0,
            help="use this share of the truth (drawn with --seed) as gold; scoring skips gold items",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the --gold-fraction draw (default 0)")

    def handle(self, *args: object, **options: object) -> None:
        truth = options.get("truth")
        methods = options.get("methods") or None
        unknown = [m for m in (methods or []) if m not in METHODS]  # type: ignore[union-attr]
        if unknown:
            raise CommandError(f"Unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}.")
        if options.get("campaign") is not None:
            return self._campaign(options)
        votes = str(options["votes"])
        _check_csv(votes, VOTE_COLUMNS, "votes", need_rows=True)
        if truth:
            _check_csv(str(truth), TRUTH_COLUMNS, "truth", need_rows=False)
        gold = options.get("gold")
        if gold:
            _check_csv(str(gold), TRUTH_COLUMNS, "gold", need_rows=True)
        fraction = float(options.get("gold_fraction") or 0.0)
        if fraction and not 0.0 < fraction < 1.0:
            raise CommandError(f"--gold-fraction must be between 0 and 1 (exclusive), not {fraction}.")
        if fraction and not truth:
            raise CommandError("--gold-fraction draws gold items from the truth: give --truth too.")
        try:
            data = load_votes(votes, truth, gold)  # type: ignore[arg-type]
            report = evaluate_coded(data, methods, gold_fraction=fraction, seed=int(options.get("seed") or 0))
        except (ValueError, KeyError) as error:
            raise CommandError(f"Cannot evaluate {votes}: {error}.") from error
        if not options["json"]:
            self._describe(data)
        self._print(report, bool(options["json"]))

    def _campaign(self, options: dict) -> None:
        """``--campaign N``: the campaign's votes, gold and (demo) truth, read from the database."""
        from annotation.models import Campaign
        from annotation.selectors.consensus_eval import campaign_eval_data

        for name in ("truth", "gold"):
            if options.get(name):
                raise CommandError(
                    f"--{name} goes with --votes; with --campaign the campaign's gold items and the demo ground "
                    "truth are used."
                )
        campaign = Campaign.objects.filter(id=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"Campaign {options['campaign']} does not exist.")
        data, has_truth = campaign_eval_data(campaign=campaign)
        if not len(data.items):
            raise CommandError(f"Campaign {campaign.id} (“{campaign.name}”) has no votes yet.")
        fraction = float(options.get("gold_fraction") or 0.0)
        if fraction and not 0.0 < fraction < 1.0:
            raise CommandError(f"--gold-fraction must be between 0 and 1 (exclusive), not {fraction}.")
        if fraction and not has_truth:
            raise CommandError(
                f"--gold-fraction draws gold items from the truth, and campaign {campaign.id}'s images are not demo "
                "images with a known truth."
            )
        report = evaluate_coded(
            data, options.get("methods") or None, gold_fraction=fraction, seed=int(options.get("seed") or 0)
        )
        if not options["json"]:
            self._describe(data)
        self._print(report, bool(options["json"]))
        if not options["json"] and not has_truth:
            self.stdout.write(f"Campaign {campaign.id}'s images are not demo images: no truth to score against.")

    def _describe(self, data: CodedVotes) -> None:
        """One paragraph on what the figures below are measured on (the table alone hides a truth file that
        mostly missed the votes, or answers given twice)."""
        d = describe(data)
        per = d["answers_per_item"]
        labels = ", ".join(d["labels"][:6]) + (f" … ({len(d['labels'])})" if len(d["labels"]) > 6 else "")
        lines = [
            f"{d['votes']:,} answers by {d['workers']:,} workers on {d['items']:,} items ({per['min']}-{per['max']} "
            f"per item, median {per['median']:g}); labels {labels} (majority-vote ties go to {d['labels'][0]})."
        ]
        if d["repeated_answers"]:
            lines.append(
                f"Answers repeating a worker's answer on the same item: {d['repeated_answers']:,} (each counts)."
            )
        if d["truth_items"]:
            lines.append(f"Scored on {d['truth_items']:,} truth items.")
        if d["truth_items_without_votes"]:
            lines.append(f"Truth items nobody voted on, left out: {d['truth_items_without_votes']:,}.")
        self.stdout.write("\n".join(lines))

    def _print(self, report: dict, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(f"{'method':10s} {'accuracy':>8s} {'correct/scored':>15s} {'log loss':>9s} {'seconds':>9s}")
        for name, row in report.items():
            if "error" in row:
                self.stdout.write(f"{name:10s} {'n/a':>8s} {'':>15s} {'':>9s} {'':>9s}  {row['error']}")
                continue
            accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
            scored = f"{row['correct']}/{row['scored']}" if row["scored"] else "-"
            loss = "-" if row.get("log_loss") is None else f"{row['log_loss']:.4f}"
            self.stdout.write(f"{name:10s} {accuracy:>8s} {scored:>15s} {loss:>9s} {row['seconds']:9.3f}")
        gold_count = max((row.get("gold") or 0 for row in report.values()), default=0)
        if gold_count:
            self.stdout.write(
                f"synsight and kinds were shown {gold_count} gold items; every method is scored on the truth items "
                "that are not gold."
            )
