"""The datasheet of a version (after Gebru et al., "Datasheets for Datasets", 2018): what is in it, how
good the labels are and how sure we are of that, who made them, at what cost and pay, and what it lacks.

Every figure is computed from the snapshot and from the append-only vote and ledger rows up to the
snapshot's high-water marks, in a fixed order and rounded, so a rebuild writes the same bytes.

Estimated precision of a synset's labels: each accepted label is right with probability equal to its
posterior (the consensus model's P(present | votes)), so the expected precision is the mean posterior p̄.
Its uncertainty is the Wilson score interval (95%) for p̄ over n labels: the count of correct labels is
Poisson-binomial, whose variance Σp(1-p) is at most the binomial n·p̄(1-p̄), so the interval is
conservative. It trusts the model's calibration; the gold check does not: accuracy of the workers' answers
on the synset's gold items (known answers), with its own Wilson interval.
"""

from __future__ import annotations

import math
from decimal import Decimal
from statistics import median

from django.db.models import Count, Max, Min, Q, Sum

from annotation.models import Candidate, GoldItem, Vote
from export import selectors
from export.models import DatasetBox, DatasetImage, DatasetLabel, DatasetVersion
from taxonomy.models import Synset, wnid_from_offset
from workers.models import LedgerEntry

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion (Wilson 1927); ``successes`` may be fractional."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def _r(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(float(value), places)


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    position = q * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _iso(value) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _per_synset(version: DatasetVersion) -> list[dict]:
    by_split = {
        (synset_id, split): n
        for synset_id, split, n in DatasetImage.objects.filter(version=version)
        .values_list("synset_id", "split").annotate(n=Count("id")).values_list("synset_id", "split", "n")
    }  # fmt: skip
    # Posteriors summed in Python in a fixed order: SQL SUM over floats may add in any order.
    sums: dict[int, list[float]] = {}
    for synset_id, direct, posterior in (
        DatasetLabel.objects.filter(version=version).order_by("synset_id", "image_id")
        .values_list("synset_id", "direct", "posterior").iterator(chunk_size=10_000)
    ):  # fmt: skip
        entry = sums.setdefault(synset_id, [0, 0, 0.0, 0])  # direct, implied, Σp, n with p
        entry[0 if direct else 1] += 1
        if direct and posterior is not None:
            entry[2] += posterior
            entry[3] += 1
    votes = dict(
        selectors.version_votes_queryset(version).filter(is_gold=False).values("candidate__synset_id")
        .annotate(n=Count("id")).values_list("candidate__synset_id", "n")
    )  # fmt: skip
    campaign_ids = list(version.campaigns.values_list("id", flat=True))
    gold_votes = Vote.objects.filter(
        is_gold=True, hit__campaign_id__in=campaign_ids, id__lte=version.vote_high_water,
        candidate__synset_id__in=list(sums),
    )  # fmt: skip
    gold = {
        synset_id: (n, correct)
        for synset_id, n, correct in gold_votes.filter(answer__lt=2)
        .values("candidate__synset_id")
        .annotate(
            n=Count("id"),
            correct=Count(
                "id",
                filter=Q(answer=1, candidate__gold__present=True) | Q(answer=0, candidate__gold__present=False),
            ),
        )
        .values_list("candidate__synset_id", "n", "correct")
    }  # fmt: skip
    names = dict(Synset.objects.filter(id__in=list(sums)).values_list("id", "words"))
    boxes = {
        synset_id: (n, images, uncovered)
        for synset_id, n, images, uncovered in DatasetBox.objects.filter(version=version)
        .values("synset_id")
        .annotate(n=Count("id"), images=Count("image_id", distinct=True),
                  uncovered=Count("image_id", distinct=True, filter=Q(covered=False)))
        .values_list("synset_id", "n", "images", "uncovered")
    }  # fmt: skip
    rows = []
    for synset_id in sorted(sums):
        direct, implied, total_p, n_p = sums[synset_id]
        mean = total_p / n_p if n_p else None
        gold_n, gold_correct = gold.get(synset_id, (0, 0))
        rows.append(
            {
                "wnid": wnid_from_offset(synset_id),
                "words": names.get(synset_id, ""),
                "images": {s: by_split.get((synset_id, i), 0) for i, s in enumerate(("train", "val", "test"))},
                "labels": direct,
                "implied_labels": implied,
                "votes": votes.get(synset_id, 0),
                "boxes": dict(
                    zip(("boxes", "images", "images_not_covered"), boxes.get(synset_id, (0, 0, 0)), strict=True)
                ),
                "precision": {
                    "mean_posterior": _r(mean),
                    "wilson95": wilson(total_p, n_p) if n_p else None,
                    "labels_with_posterior": n_p,
                },
                "gold": {
                    "answers": gold_n,
                    "accuracy": _r(gold_correct / gold_n) if gold_n else None,
                    "wilson95": wilson(gold_correct, gold_n),
                },
            }
        )
    return rows


def _votes_summary(version: DatasetVersion) -> dict:
    real = selectors.version_votes_queryset(version).filter(is_gold=False)
    totals = real.aggregate(
        n=Count("id"), workers=Count("worker_id", distinct=True), first=Min("created"), last=Max("created")
    )
    per_label = sorted(
        n for n in real.values("candidate_id").annotate(n=Count("id")).values_list("n", flat=True).iterator()
    )
    labels = DatasetLabel.objects.filter(version=version, direct=True).count()
    per_label = [0] * (labels - len(per_label)) + per_label
    candidates = Candidate.objects.filter(id__in=selectors._label_candidates(version)).aggregate(
        first=Min("created"), last=Max("created")
    )
    return {
        "votes": totals["n"],
        "workers": totals["workers"],
        "votes_per_label": {
            "mean": _r(sum(per_label) / len(per_label)) if per_label else None,
            "median": _r(median(per_label)) if per_label else None,
            "min": per_label[0] if per_label else None,
            "max": per_label[-1] if per_label else None,
        },
        "collection": {
            "first_vote": _iso(totals["first"]),
            "last_vote": _iso(totals["last"]),
            "first_candidate": _iso(candidates["first"]),
            "last_candidate": _iso(candidates["last"]),
        },
    }


def _cost(version: DatasetVersion, labels: int) -> dict:
    """Spending of the version's campaigns (all their HITs, not only the exported labels' share) and the
    workers' effective hourly pay: earnings / time spent answering (sum of response times). Response times
    leave out reading the instructions and loading pages, so this is an upper bound on hourly pay."""
    campaign_ids = list(version.campaigns.values_list("id", flat=True))
    ledger = LedgerEntry.objects.filter(hit__campaign_id__in=campaign_ids, id__lte=version.ledger_high_water)
    total = ledger.aggregate(total=Sum("amount"), entries=Count("id"))
    earned = dict(ledger.values("worker_id").annotate(s=Sum("amount")).values_list("worker_id", "s"))
    work_ms = dict(
        Vote.objects.filter(hit__campaign_id__in=campaign_ids, id__lte=version.vote_high_water)
        .values("worker_id").annotate(ms=Sum("response_ms")).values_list("worker_id", "ms")
    )  # fmt: skip
    hourly = sorted(float(earned.get(w, Decimal(0))) / (ms / 3_600_000) for w, ms in work_ms.items() if ms and ms > 0)
    total_amount = total["total"] or Decimal("0.00")
    total_hours = sum(work_ms.values()) / 3_600_000
    return {
        "currency_note": "amounts in the campaigns' currency",
        "total": str(total_amount.quantize(Decimal("0.01"))),
        "ledger_entries": total["entries"],
        "per_label": _r(float(total_amount) / labels) if labels else None,
        "workers_paid": len(earned),
        "answering_hours": _r(total_hours, 3),
        "hourly_pay": {
            "overall": _r(float(total_amount) / total_hours, 2) if total_hours else None,
            "median": _r(_quantile(hourly, 0.5), 2),
            "p10": _r(_quantile(hourly, 0.1), 2),
            "p90": _r(_quantile(hourly, 0.9), 2),
            "min": _r(hourly[0], 2) if hourly else None,
            "max": _r(hourly[-1], 2) if hourly else None,
        },
    }


def limitations(version: DatasetVersion, summary: dict) -> list[str]:
    boxed = sum(row["boxes"]["images"] for row in summary["synsets"])
    uncovered = sum(row["boxes"]["images_not_covered"] for row in summary["synsets"])
    if boxed:
        box_note = (
            f"Bounding boxes are final boxes of the box pipeline only: {summary['counts']['boxes']} boxes on {boxed} "
            "(image, synset) pairs; an image without boxes was not boxed (collection off or not finished at the "
            "snapshot), not found empty. LOC_*_solution.csv list only the images with boxes."
        )
        if uncovered:
            box_note += (
                f" For {uncovered} of them the box job ran out of rounds: their boxes are right but further instances "
                "may be unboxed."
            )
    else:
        box_note = (
            "No bounding boxes: no label had final boxes at the snapshot (box collection off or not finished), so "
            "LOC_*_solution.csv list no image, there are no PASCAL VOC files (as in ILSVRC, only images with boxes "
            "have one) and COCO 'annotations' is empty. Image-level labels are complete."
        )
    items = [
        box_note,
        "Precision is estimated from the consensus model's posteriors, so it is only as good as the model's "
        "calibration; the gold check measures workers' accuracy on known answers, not label precision directly.",
        "Only accepted labels are exported: an image absent from a synset was not necessarily checked for it "
        "(labels are positive-only, not exhaustive).",
        "The ImageNet layout places each image once, under its primary synset (highest posterior); other labels "
        "of the same image are in the COCO and WebDataset exports.",
        "Originals are copied byte for byte, except those with a rotating EXIF orientation: re-encoded upright, "
        "so that every file's pixels match its width, height and boxes (the displayed size).",
        "Hourly pay counts only time spent answering (response times), an upper bound on real hourly pay; cost "
        "covers every HIT of the campaigns, including labels not exported.",
    ]
    if summary["options"]["include_ancestors"]:
        items.append("Ancestor labels are implied by the WordNet hierarchy, not verified by workers.")
    if any(row["gold"]["answers"] == 0 for row in summary["synsets"]):
        items.append("Some synsets had no gold answers, so their precision rests on the model alone.")
    return items


def datasheet_build(*, version: DatasetVersion, info: dict) -> dict:
    synsets = _per_synset(version)
    labels = sum(row["labels"] for row in synsets)
    sheet = {
        **info,
        "counts": {
            "images": selectors.split_counts(version=version),
            "labels": labels,
            "implied_labels": sum(row["implied_labels"] for row in synsets),
            "synsets": len(synsets),
            "boxes": sum(row["boxes"]["boxes"] for row in synsets),
        },
        "synsets": synsets,
        "crowd": _votes_summary(version),
        "cost": _cost(version, labels),
        "gold_items": GoldItem.objects.filter(candidate__synset_id__in=[int(r["wnid"][1:]) for r in synsets]).count(),
    }
    sheet["known_limitations"] = limitations(version, sheet)
    return sheet


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return f"[{value[0]:.3f}, {value[1]:.3f}]"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def datasheet_markdown(sheet: dict) -> str:
    counts, crowd, cost = sheet["counts"], sheet["crowd"], sheet["cost"]
    images = counts["images"]
    lines = [
        f"# Datasheet: {sheet['name']} v{sheet['version']}",
        "",
        sheet["notes"] or "(no notes)",
        "",
        "## Composition",
        "",
        f"- Images: {sum(images.values())} (train {images['train']}, val {images['val']}, test {images['test']})",
        f"- Labels: {counts['labels']} accepted, {counts['implied_labels']} implied ancestors, "
        f"{counts['synsets']} synsets",
        f"- Boxes: {counts['boxes']} (final boxes of the box pipeline; see the known limitations)",
        f"- Snapshot taken {sheet['snapshot_at']} from campaigns: "
        + ", ".join(f"{c['name']} (#{c['id']})" for c in sheet["campaigns"]),
        f"- Consensus model versions: {', '.join(sheet['model_versions']) or '–'}",
        f"- Options: `{sheet['options_json']}`",
        "",
        "## Labels per synset",
        "",
        "Estimated precision = mean posterior of the accepted labels, with a 95% Wilson interval; gold = "
        "workers' accuracy on the synset's gold items.",
        "",
        "| wnid | words | train | val | test | implied | votes | boxes (images) | precision | 95% | gold answers "
        "| gold acc. | 95% |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sheet["synsets"]:
        p, g = row["precision"], row["gold"]
        lines.append(
            f"| {row['wnid']} | {row['words']} | {row['images']['train']} | {row['images']['val']} | "
            f"{row['images']['test']} | {row['implied_labels']} | {row['votes']} | "
            f"{row['boxes']['boxes']} ({row['boxes']['images']}) | "
            f"{_fmt(p['mean_posterior'])} | "
            f"{_fmt(p['wilson95'])} | {g['answers']} | {_fmt(g['accuracy'])} | {_fmt(g['wilson95'])} |"
        )
    vpl, dates, pay = crowd["votes_per_label"], crowd["collection"], cost["hourly_pay"]
    lines += [
        "",
        "## Collection",
        "",
        f"- Workers: {crowd['workers']}; votes: {crowd['votes']}; gold items in these synsets: {sheet['gold_items']}",
        f"- Votes per label: mean {_fmt(vpl['mean'])}, median {_fmt(vpl['median'])}, "
        f"min {_fmt(vpl['min'])}, max {_fmt(vpl['max'])}",
        f"- Candidates collected {_fmt(dates['first_candidate'])} to {_fmt(dates['last_candidate'])}; "
        f"votes cast {_fmt(dates['first_vote'])} to {_fmt(dates['last_vote'])}",
        "",
        "## Cost and pay",
        "",
        f"- Total paid: {cost['total']} over {cost['ledger_entries']} ledger entries; per label: "
        f"{_fmt(cost['per_label'])}",
        f"- Workers paid: {cost['workers_paid']}; answering time: {_fmt(cost['answering_hours'])} h",
        f"- Effective hourly pay: overall {_fmt(pay['overall'])}, median {_fmt(pay['median'])} "
        f"(10th–90th percentile {_fmt(pay['p10'])}–{_fmt(pay['p90'])}, min {_fmt(pay['min'])}, "
        f"max {_fmt(pay['max'])})",
        "",
        "## Known limitations",
        "",
        *[f"- {item}" for item in sheet["known_limitations"]],
        "",
    ]
    return "\n".join(lines)
