"""manage.py make_demo_images: the shapes images become candidates, the truth stays on disk, re-runs add
nothing."""

import io
import json

from django.core.management import call_command

from annotation import demo_images as demo
from annotation.models import Candidate, ImportBatch, ImportItem


def test_demo_images_are_imported_once_with_their_ground_truth(db, media, settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path / "data"
    out = io.StringIO()
    call_command("make_demo_images", "--seed", "2", "--per-synset", "4", "--no-progress", stdout=out)

    truth = [json.loads(line) for line in (tmp_path / "data" / "demo" / "truth.jsonl").read_text().splitlines()]
    assert len(truth) == 40 and ImportBatch.objects.filter(source="demo", status="done").count() == 10
    assert ImportItem.objects.count() == 40
    counts = ImportItem.objects.values_list("outcome", flat=True)
    assert Candidate.objects.count() == sum(1 for o in counts if o == "accepted")
    assert Candidate.objects.count() >= 38  # near-duplicates among distinct drawings are rare
    square = Candidate.objects.filter(synset_id=int(demo.BY_LABEL["square"].wnid[1:]))
    assert square.count() == ImportItem.objects.filter(batch__query_term="square", outcome="accepted").count()
    first = out.getvalue()

    again = io.StringIO()
    call_command("make_demo_images", "--seed", "2", "--per-synset", "4", "--no-progress", stdout=again)
    assert ImportBatch.objects.count() == 10 and ImportItem.objects.count() == 40
    assert again.getvalue().splitlines() == first.splitlines()[-1:]  # only the closing line
