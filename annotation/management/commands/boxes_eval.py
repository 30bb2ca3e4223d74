"""``manage.py boxes_eval``: run the box aggregation methods on crowd boxes and score them against truth.

    manage.py boxes_eval --boxes boxes.csv [--truth truth.csv] [--method median ...] [--json]

Boxes have columns ``image,worker,x1,y1,x2,y2`` (a worker may draw several boxes on an image), truth
``image,x1,y1,x2,y2`` (extra columns such as demo_images' ``wnid`` are accepted; VOC's ``xmin,ymin,xmax,ymax``
and ``image_id``/``worker_id`` are read as ours). A thin wrapper over
``annotation.boxes.evaluate``, which needs no database. Prints a table per method (precision, recall and F1
at IoU >= 0.5, mean IoU of matched boxes, duplicates, boxes out, seconds) or one JSON object keyed by method.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.boxes.evaluate import METHOD_NAMES, BadInput, evaluate, load_crowd_boxes


class Command(BaseCommand):
    help = "Aggregate crowd boxes (image,worker,x1,y1,x2,y2) per method and score them against truth boxes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--boxes", required=True, help="CSV with columns image,worker,x1,y1,x2,y2")
        parser.add_argument("--truth", help="CSV with columns image,x1,y1,x2,y2 (scoring only)")
        parser.add_argument(
            "--method",
            action="append",
            dest="methods",
            metavar="METHOD",
            help=f"repeatable; one of {', '.join(METHOD_NAMES)} (default: all)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object keyed by method")

    def handle(self, *args: object, **options: object) -> None:
        methods = options.get("methods") or None
        unknown = [m for m in (methods or []) if m not in METHOD_NAMES]  # type: ignore[union-attr]
        if unknown:
            raise CommandError(f"Unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}.")
        try:
            data = load_crowd_boxes(str(options["boxes"]), options.get("truth"))  # type: ignore[arg-type]
        except BadInput as error:
            raise CommandError(str(error)) from None
        report = evaluate(data, methods)  # type: ignore[arg-type]
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        scored = data.truth is not None
        head = f"{'method':16s} {'boxes':>6s}"
        if scored:
            head += f" {'precision':>9s} {'recall':>7s} {'F1':>7s} {'meanIoU':>7s} {'dups':>5s}"
        self.stdout.write(head + f" {'seconds':>8s}  setting")
        for name, row in report.items():
            line = f"{name:16s} {row['boxes_out']:6d}"
            if scored:
                line += (
                    f" {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f} {row['mean_iou']:7.4f}"
                    f" {row['duplicates']:5d}"
                )
            self.stdout.write(line + f" {row['seconds']:8.3f}  {row['setting']}")
