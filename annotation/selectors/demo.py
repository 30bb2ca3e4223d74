"""The demo's ground truth in the database's terms: which candidate shows what.

``make_demo_images`` writes DATA_DIR/demo/truth.jsonl (one line per image file: ``file`` =
``<wnid>/<wnid>_<i>.jpg``, ``query_wnid``, ``present`` = shapes drawn) and imports each synset's folder as
a demo ImportBatch whose ImportItem.name is the file name inside that folder. Joining the two gives
candidate → truth; only accepted items (those that became a candidate) count.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from annotation.models import Campaign, Candidate, ImportBatch, ImportItem
from annotation.selectors.images import image_urls
from annotation.simulator.workers import ItemTruth


class DemoTruthMissing(Exception):
    pass


def demo_truth_file(data_dir: Path | None = None) -> Path:
    return Path(data_dir or settings.DATA_DIR) / "demo" / "truth.jsonl"


def demo_truth_records(*, data_dir: Path | None = None) -> dict[str, dict]:
    """truth.jsonl keyed by file (``<wnid>/<name>.jpg``)."""
    path = demo_truth_file(data_dir)
    if not path.exists():
        raise DemoTruthMissing(f"No demo ground truth at {path}: run `manage.py make_demo_images` first.")
    with path.open() as lines:
        return {record["file"]: record for record in map(json.loads, lines)}


def demo_truth_by_candidate(
    *, synset_ids: list[int] | None = None, data_dir: Path | None = None
) -> dict[int, ItemTruth]:
    """Candidate id → what its image shows, for every candidate imported from the demo images."""
    records = demo_truth_records(data_dir=data_dir)
    items = ImportItem.objects.filter(
        batch__source=ImportBatch.Source.DEMO, outcome=ImportItem.Outcome.ACCEPTED, candidate__isnull=False
    )
    if synset_ids is not None:
        items = items.filter(batch__synset_id__in=synset_ids)
    truth: dict[int, ItemTruth] = {}
    for candidate_id, name, synset_id in items.values_list("candidate_id", "name", "batch__synset_id"):
        file = f"n{synset_id:08d}/{name}"
        record = records.get(file)
        if record is not None:
            truth[candidate_id] = ItemTruth(
                key=file, query_wnid=record["query_wnid"], present=frozenset(record["present"])
            )
    return truth


def campaign_synset_ids(campaign: Campaign) -> list[int]:
    return list(campaign.campaign_synsets.values_list("synset_id", flat=True))


def demo_oracle(*, campaign: Campaign, data_dir: Path | None = None) -> dict[tuple[str, str], ItemTruth]:
    """(synset wnid, thumbnail URL path) → truth for the campaign's demo candidates (gold included): what a
    simulated worker "sees" when the API shows it an image."""
    truth = demo_truth_by_candidate(synset_ids=campaign_synset_ids(campaign), data_dir=data_dir)
    oracle = {}
    for candidate in Candidate.objects.filter(id__in=list(truth)).select_related("image", "synset"):
        oracle[(candidate.synset.wnid, image_urls(candidate.image)["thumbnail"])] = truth[candidate.id]
    return oracle
