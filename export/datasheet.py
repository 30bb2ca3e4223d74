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
import re
from decimal import Decimal
from statistics import median

from django.db.models import Count, Max, Min, Q, Sum

from annotation.models import Candidate, GoldItem, Vote
from annotation.stats import wilson
from export import selectors
from export.models import DatasetBox, DatasetImage, DatasetLabel, DatasetVersion
from taxonomy.models import Synset, wnid_from_offset
from workers.models import LedgerEntry


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
    # Posteriors summed in Python in a fixed order: SQL SUM over floats may add in any order. Precision is
    # estimated from consensus labels only: an override's posterior (if any) is what consensus said before.
    sums: dict[int, list[float]] = {}
    for synset_id in selectors.version_synset_ids(version=version) or ():
        sums[synset_id] = [0, 0, 0.0, 0, 0, 0]  # a chosen class with no image still gets its row
    for synset_id, direct, posterior, source in (
        DatasetLabel.objects.filter(version=version).order_by("synset_id", "image_id")
        .values_list("synset_id", "direct", "posterior", "source").iterator(chunk_size=10_000)
    ):  # fmt: skip
        entry = sums.setdefault(synset_id, [0, 0, 0.0, 0, 0, 0])  # direct, implied, Σp, n with p, overridden, against
        entry[0 if direct else 1] += 1
        if source != DatasetLabel.Source.CONSENSUS:
            entry[4] += 1
            entry[5] += source == DatasetLabel.Source.OVERRIDE_AGAINST
        elif direct and posterior is not None:
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
    no_object = version.frozen.get("boxes_no_object", {})
    audit = version.frozen.get("audit", {})
    rows = []
    for synset_id in sorted(sums):
        direct, implied, total_p, n_p, overridden, against = sums[synset_id]
        mean = total_p / n_p if n_p else None
        gold_n, gold_correct = gold.get(synset_id, (0, 0))
        rows.append(
            {
                "wnid": wnid_from_offset(synset_id),
                "words": names.get(synset_id, ""),
                "images": {s: by_split.get((synset_id, i), 0) for i, s in enumerate(("train", "val", "test"))},
                "labels": direct,
                "overridden_labels": overridden,
                "overrides_against_consensus": against,
                "implied_labels": implied,
                "votes": votes.get(synset_id, 0),
                "boxes": {
                    **dict(
                        zip(("boxes", "images", "images_not_covered"), boxes.get(synset_id, (0, 0, 0)), strict=True)
                    ),
                    "no_object": no_object.get(wnid_from_offset(synset_id), 0),
                },
                "precision": {
                    "mean_posterior": _r(mean),
                    "wilson95": wilson(total_p, n_p) if n_p else None,
                    "labels_with_posterior": n_p,  # consensus labels only
                },
                "gold": {
                    "answers": gold_n,
                    "accuracy": _r(gold_correct / gold_n) if gold_n else None,
                    "wilson95": wilson(gold_correct, gold_n),
                },
                "audit": _audit_row(*audit.get(wnid_from_offset(synset_id), (0, 0, 0))),
            }
        )
    return rows


def _audit_row(judged: int, correct: int, wrong_labels: int) -> dict:
    """Researchers' verdicts on accepted images their precision audit drew at random (frozen at the snapshot):
    the sampled precision, with its 95% Wilson interval, and this version's labels judged wrong."""
    return {
        "judged": judged,
        "correct": correct,
        "precision": _r(correct / judged) if judged else None,
        "wilson95": wilson(correct, judged),
        "wrong_labels": wrong_labels,
    }


def _votes_summary(version: DatasetVersion) -> dict:
    real = selectors.version_votes_queryset(version).filter(is_gold=False)
    campaign_ids = [c["id"] for c in selectors.version_campaigns(version=version)]
    totals = real.aggregate(
        n=Count("id"), workers=Count("worker_id", distinct=True), first=Min("created"), last=Max("created"),
        own=Count("id", filter=Q(hit__campaign_id__in=campaign_ids)),
    )  # fmt: skip
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
        # Candidates (hence their votes) are shared by every campaign over the same synset.
        "votes_in_these_campaigns": totals["own"],
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
    campaign_ids = [c["id"] for c in selectors.version_campaigns(version=version)]
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


def _box_notes(summary: dict, formats: list[str]) -> list[str]:
    boxed = sum(row["boxes"]["images"] for row in summary["synsets"])
    uncovered = sum(row["boxes"]["images_not_covered"] for row in summary["synsets"])
    no_object = summary["counts"]["boxes_no_object"]
    if boxed:
        note = (
            f"Bounding boxes are final boxes of the box pipeline only: {summary['counts']['boxes']} boxes on {boxed} "
            "(image, synset) pairs; an image without boxes was not boxed (collection off or not finished at the "
            "snapshot)"
            + (", or its box workers said the object is absent (below)." if no_object else ", not found empty.")
        )
        if "imagenet" in formats:
            note += " LOC_*_solution.csv list only the images with boxes."
        if uncovered:
            note += (
                f" For {uncovered} of them the box job ran out of rounds: their boxes are right but further instances "
                "may be unboxed."
            )
    else:
        missing = []
        if "imagenet" in formats:
            missing.append(
                "LOC_*_solution.csv list no image and there are no PASCAL VOC files (as in ILSVRC, only images with "
                "boxes have one)"
            )
        if "voc" in formats:
            missing.append("the VOC annotations have no objects")
        if "coco" in formats:
            missing.append("COCO 'annotations' is empty")
        if "webdataset" in formats:
            missing.append("the WebDataset samples' boxes are empty")
        note = "No bounding boxes: no label had final boxes at the snapshot (box collection off or not finished)"
        note += (", so " + "; ".join(missing) if missing else "") + ". Image-level labels are complete."
    notes = [note]
    if no_object:
        notes.append(
            f"{no_object} accepted labels disagree with their box job: the box workers said the object is absent "
            "(job ended no_object) although the label was accepted; they are exported as labels without boxes "
            "(per synset: boxes.no_object in datasheet.json). Worth a look before training a detector."
        )
    return notes


def _image_note(summary: dict, formats: list[str]) -> str:
    size = summary["options"]["image_size"]
    layouts = [name for key, name in (("imagenet", "ImageNet"), ("voc", "VOC")) if key in formats]
    jpeg = ""
    if layouts:
        which = "the ImageNet and VOC layouts re-encode" if len(layouts) > 1 else f"the {layouts[0]} layout re-encodes"
        jpeg = f" ({which} the ones that are not JPEG as JPEG)"
    if size["policy"] == "resized":
        return (
            f"Images resized: the {summary['resized_images']} images whose longer side exceeds {size['max_side']} "
            f"pixels are downscaled to {size['max_side']} (Lanczos) and re-encoded as JPEG (quality 90, EXIF "
            f"orientation applied); the others are copied byte for byte{jpeg}. Width, height and boxes are those of "
            "the exported image."
        )
    return (
        f"Originals are copied byte for byte{jpeg}, except those with a rotating EXIF orientation: re-encoded "
        "upright, so that every file's pixels match its width, height and boxes (the displayed size)."
    )


def limitations(version: DatasetVersion, summary: dict) -> list[str]:
    """Only true sentences about this version: each names only formats it contains."""
    formats = summary["options"]["formats"]
    counts = summary["counts"]
    items = [*_box_notes(summary, formats)]
    if summary["empty_classes"]:
        items.append(
            f"{len(summary['empty_classes'])} classes have no images: {', '.join(summary['empty_classes'])}. They "
            "are still categories (with 0 images) so that class indices stay stable between versions."
        )
    items += [
        "Precision is estimated from the consensus model's posteriors of consensus labels only (labels a researcher "
        "accepted by override are left out), so it is only as good as the model's calibration; the gold check "
        "measures workers' accuracy on known answers, not label precision directly.",
        "Only accepted labels are exported: an image absent from a synset was not necessarily checked for it "
        "(labels are positive-only, not exhaustive).",
    ]
    if counts["overridden_labels"]:
        items.append(
            f"{counts['overridden_labels']} labels were accepted by a researcher's override (model_version "
            f"'override'), {counts['overrides_against_consensus']} of them against consensus (which had said "
            "absent); they are kept whatever min_confidence."
        )
    if "imagenet" in formats:
        others = [name for key, name in (("coco", "COCO"), ("webdataset", "WebDataset")) if key in formats]
        if others:
            where = f"are in the {' and '.join(others)} export{'s' if len(others) > 1 else ''}"
        else:
            where = "are not in this version's image files"
            where += " (votes/consensus.csv lists them)" if "votes" in formats else ""
        items.append(
            "The ImageNet layout places each image once, under its primary synset (highest posterior); other labels "
            f"of the same image {where}."
        )
    items.append(_image_note(summary, formats))
    if summary["cost"]["ledger_entries"]:
        items.append(
            "Hourly pay counts only time spent answering (response times), an upper bound on real hourly pay; cost "
            "covers every HIT of the campaigns, including labels not exported."
        )
    else:
        crowd = summary["crowd"]
        items.append(
            "No paid work: no HIT of these campaigns was paid up to the snapshot, so there is no cost or hourly pay "
            f"to report. {crowd['votes_in_these_campaigns']} of the {crowd['votes']} votes behind the labels were "
            "cast in these campaigns' HITs; the others came from work on the same synsets in other campaigns."
        )
    if summary["options"]["include_ancestors"]:
        items.append("Ancestor labels are implied by the WordNet hierarchy, not verified by workers.")
    if any(row["gold"]["answers"] == 0 for row in summary["synsets"]):
        items.append("Some synsets had no gold answers, so their precision rests on the model alone.")
    if not summary["audit"]["judged"]:
        items.append(
            "No accepted image was audited by a researcher: the precision figures are the model's estimate, not "
            "a sampled precision."
        )
    elif summary["audit"]["wrong_labels"]:
        items.append(
            f"{summary['audit']['wrong_labels']} label(s) of this version were judged wrong in the precision audit "
            "and are still included (an override rejects them before the next version)."
        )
    return items


def _gold_items(version: DatasetVersion, synsets: list[dict]) -> int:
    """Gold items in the version's synsets, counted at the snapshot (a gold item added since must not change
    a rebuild); live only for versions snapshotted before the count was frozen."""
    if "gold_items" in version.frozen:
        return version.frozen["gold_items"]
    return GoldItem.objects.filter(candidate__synset_id__in=[int(r["wnid"][1:]) for r in synsets]).count()


def _resized(version: DatasetVersion) -> int | None:
    """Images the size policy downscales (displayed size above max_side); None when originals are kept."""
    max_side = version.options["image_size"]["max_side"]
    if version.options["image_size"]["policy"] != "resized" or not max_side:
        return None
    return (
        DatasetImage.objects.filter(version=version)
        .filter(Q(image__width__gt=max_side) | Q(image__height__gt=max_side))
        .count()
    )


def datasheet_build(*, version: DatasetVersion, info: dict) -> dict:
    synsets = _per_synset(version)
    labels = sum(row["labels"] for row in synsets)
    sheet = {
        **info,
        "counts": {
            "images": selectors.split_counts(version=version),
            "labels": labels,
            "overridden_labels": sum(row["overridden_labels"] for row in synsets),
            "overrides_against_consensus": sum(row["overrides_against_consensus"] for row in synsets),
            "implied_labels": sum(row["implied_labels"] for row in synsets),
            "synsets": len(synsets),
            "boxes": sum(row["boxes"]["boxes"] for row in synsets),
            "boxes_no_object": sum(row["boxes"]["no_object"] for row in synsets),
        },
        "audit": _audit_row(*(sum(row["audit"][k] for row in synsets) for k in ("judged", "correct", "wrong_labels"))),
        "empty_classes": [
            wnid_from_offset(i)
            for i in selectors.version_synset_ids(version=version) or ()
            if not any(row["labels"] for row in synsets if row["wnid"] == wnid_from_offset(i))
        ],
        "splits_from": version.frozen.get("splits_from"),
        "resized_images": _resized(version),
        "synsets": synsets,
        "crowd": _votes_summary(version),
        "cost": _cost(version, labels),
        "gold_items": _gold_items(version, synsets),
    }
    sheet["known_limitations"] = limitations(version, sheet)
    return sheet


_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")
_LINE_START = re.compile(r"^([-+=>]|\d+(?=[.)]))")  # a list, quote, setext or numbered-list marker


def md_inline(text: str) -> str:
    """User text (a version or campaign name) as one line of Markdown that reads as itself: every run of
    whitespace (newlines included) becomes one space, and the characters that make emphasis, code, links,
    HTML, tables or headings are backslash-escaped."""
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def md_quote(text: str) -> list[str]:
    """User notes as a quoted block: each line prefixed "> ", its inline markers escaped as in md_inline and a
    leading list, heading, quote, rule or numbered-list marker escaped, so notes can add no heading, list item
    or figure of their own to the datasheet."""
    lines = []
    for line in text.splitlines() or [""]:
        line = _INLINE_SPECIAL.sub(r"\\\1", line.strip())
        match = _LINE_START.match(line)
        if match:  # "\-" for a marker; "1\." for a numbered item (a backslash before a digit is literal)
            end = match.end()
            line = line[:end] + "\\" + line[end:] if line[0].isdigit() else "\\" + line
        lines.append(f"> {line}" if line else ">")
    return lines


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
    splits_from = sheet.get("splits_from")
    lines = [
        f"# Datasheet: {md_inline(sheet['name'])} v{sheet['version']}",
        "",
        *(md_quote(sheet["notes"]) if sheet["notes"].strip() else ["(no notes)"]),
        "",
        "## Composition",
        "",
        f"- Images: {sum(images.values())} (train {images['train']}, val {images['val']}, test {images['test']}); "
        + (
            f"splits carried over from version {splits_from} (its images keep their split; new images fill each "
            "class toward the target sizes)"
            if splits_from is not None
            else "splits drawn per class in seeded shuffle order"
        ),
        f"- Labels: {counts['labels']} accepted ({counts.get('overridden_labels', 0)} by a researcher's override, "
        f"{counts.get('overrides_against_consensus', 0)} of them against consensus), {counts['implied_labels']} "
        f"implied ancestors, {counts['synsets']} synsets",
        f"- Boxes: {counts['boxes']} (final boxes of the box pipeline; see the known limitations)",
        f"- Snapshot taken {sheet['snapshot_at']} of the synsets of campaigns: "
        + ", ".join(f"{md_inline(c['name'])} (#{c['id']})" for c in sheet["campaigns"])
        + f"; the {crowd['votes']} votes behind the labels come from work on these synsets, "
        f"{crowd.get('votes_in_these_campaigns', crowd['votes'])} of them in these campaigns' HITs",
        f"- Consensus model versions: {', '.join(sheet['model_versions']) or '–'}",
        f"- Options: `{sheet['options_json']}`",
        "",
        "## Labels per synset",
        "",
        "Estimated precision = mean posterior of the labels accepted by consensus (overridden labels left out), "
        "with a 95% Wilson interval; gold = workers' accuracy on the synset's gold items.",
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
    audit = sheet["audit"]
    lines += [
        "",
        "## Precision audit",
        "",
        "Researchers judged accepted images drawn at random (an order fixed per synset, not chosen by anyone); "
        "every verdict up to the snapshot counts, on labels since rejected too.",
        "",
    ]
    if audit["judged"]:
        lines += [
            f"- Sampled precision: {audit['correct']} of {audit['judged']} judged right, {_fmt(audit['precision'])} "
            f"(95% {_fmt(audit['wilson95'])}); labels of this version judged wrong: {audit['wrong_labels']}",
            "",
            "| wnid | judged | right | precision | 95% | labels judged wrong |",
            "|---|---|---|---|---|---|",
            *[
                f"| {row['wnid']} | {a['judged']} | {a['correct']} | {_fmt(a['precision'])} | {_fmt(a['wilson95'])} "
                f"| {a['wrong_labels']} |"
                for row in sheet["synsets"]
                if (a := row["audit"])["judged"]
            ],
        ]
    else:
        lines.append("- No accepted image was audited.")
    vpl, dates, pay = crowd["votes_per_label"], crowd["collection"], cost["hourly_pay"]
    if pay["median"] is None:
        hourly = "no paid work" if not cost["ledger_entries"] else "no answering time recorded"
    else:
        hourly = (
            f"overall {_fmt(pay['overall'])}, median {_fmt(pay['median'])} (10th–90th percentile "
            f"{_fmt(pay['p10'])} to {_fmt(pay['p90'])}, min {_fmt(pay['min'])}, max {_fmt(pay['max'])})"
        )
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
        (
            f"- Total paid: {cost['total']} over {cost['ledger_entries']} ledger entries; per label: "
            f"{_fmt(cost['per_label'])}"
            if cost["ledger_entries"]
            else "- Total paid: no paid work in these campaigns' HITs up to the snapshot"
        ),
        f"- Workers paid: {cost['workers_paid']}; answering time: {_fmt(cost['answering_hours'])} h",
        f"- Effective hourly pay: {hourly}",
        "",
        "## Known limitations",
        "",
        *[f"- {item}" for item in sheet["known_limitations"]],
        "",
    ]
    return "\n".join(lines)
