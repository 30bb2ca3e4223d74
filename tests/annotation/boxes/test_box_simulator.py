"""The box pipeline driven end to end by the simulated default crowd over HTTP (a live server): quiz, then
draw → quality → coverage until nobody gets work; the final boxes meet the issue's targets against the
demo ground truth on a small fixed seed (the full-size figures: benchmarks/simulate_boxes.py).

Deterministic: the workers' answers come from the seed, the client runs one request at a time in a seeded
order, and the server's draws (the order it tries synsets in) are seeded by worker, campaign and task ordinal
(annotation/services/draws.py) — so the database is flushed first, to hand out the same ids every run (in a
shared test database they depend on the tests run before); no gold boxes exist, so the gold rate is 0
(otherwise empty gold slots shrink tasks at random)."""

import pytest
from django.core.management import call_command

from annotation import demo_images as demo
from annotation.models import BoxJob, Candidate
from annotation.services import demo as demo_service
from annotation.services import demo_boxes
from tests.simulator.conftest import fresh_database
from workers.roles import Role
from workers.services import account_create

SYNSETS = [demo.BY_LABEL[label].wnid for label in ("circle", "square")]
PER_SYNSET = 25
SEED = 1


@pytest.fixture
def box_demo_campaign(transactional_db, settings, tmp_path):
    fresh_database(settings)
    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGE_IMPORT_WORKERS = 1
    call_command("make_demo_images", "--seed", str(SEED), "--per-synset", str(PER_SYNSET), "--no-progress")
    owner = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign, _ = demo_service.demo_campaign_ensure(
        owner=owner, name="box shapes", wnids=SYNSETS, boxes_enabled=True, gold_rate=0.0
    )
    assert demo_boxes.accept_true_positives(campaign=campaign) > 30
    # Labels taken from the demo's truth say so (an export lists the model version), not "no source".
    accepted = Candidate.objects.filter(state=Candidate.State.ACCEPTED)
    assert set(accepted.values_list("model_version", flat=True)) == {demo_boxes.DEMO_TRUTH_MODEL_VERSION}
    return campaign


def test_the_default_crowd_boxes_every_image_tightly_without_duplicates(box_demo_campaign, live_server):
    options = demo_boxes.BoxSimulationOptions(workers=20, seed=SEED, prefix="boxsim")
    report = demo_boxes.box_simulate(campaign=box_demo_campaign, options=options, base_url=live_server.url)
    print(demo_boxes.format_box_report(report))
    assert report["run"]["errors"] == []
    assert report["images"]["with_instances"] == report["images"]["total"] > 30
    # The pipeline ran to the end: no image is left waiting for work.
    active = BoxJob.objects.filter(campaign=box_demo_campaign, state__in=["draw", "quality", "coverage"])
    assert not active.exists()
    assert report["tasks"].keys() == {"draw", "quality", "coverage"}
    assert report["fully_covered"] >= 0.979
    assert report["boxes_iou_050"] >= 0.992
    assert report["mean_iou"] >= 0.85
    assert report["duplicates"] == 0
    assert report["boxes_per_instance"] == 1.0
    assert all(target["met"] for target in report["targets"].values())
    assert 10 < report["worker_seconds_per_box"] < 200
