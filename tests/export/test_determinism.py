"""The same snapshot gives the same bytes, whatever happens to consensus afterwards; snapshot options
(splits, confidence, ancestors) do what they say; the build job is idempotent."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Candidate, Hit, Vote
from export import services, tasks
from export.files import VersionFolder
from export.models import DatasetImage, DatasetLabel, DatasetVersion
from tests.export.conftest import CIRCLE, TRIANGLE, WNIDS, build, folder_bytes
from workers.models import LedgerEntry

pytestmark = pytest.mark.django_db


def test_rebuild_is_byte_identical_after_consensus_moves(
    campaign, admin, tmp_path, django_capture_on_commit_callbacks
) -> None:
    version = build(admin, campaign, capture=django_capture_on_commit_callbacks)
    before = folder_bytes(services.version_folder(version))
    assert len(before) > 50  # images, annotations, shards, votes, datasheet (no boxes here: no VOC files)

    # Consensus moves on: posteriors change, a label is withdrawn, new votes and payments arrive.
    Candidate.objects.filter(state="accepted").update(posterior=0.42, model_version="ds-2/em")
    withdrawn = Candidate.objects.filter(state="accepted").order_by("id").first()
    Candidate.objects.filter(id=withdrawn.id).update(state="rejected")
    hit = Hit.objects.first()
    Vote.objects.create(candidate=Candidate.objects.filter(state="accepted").first(), worker=hit.worker, hit=hit,
                        answer=0, response_ms=999)  # fmt: skip
    LedgerEntry.objects.create(worker=hit.worker, kind="bonus", amount="5.00", hit=None)

    rebuilt = tmp_path / "rebuilt"
    services.dataset_files_write(version=version, folder=VersionFolder(rebuilt))
    assert folder_bytes(rebuilt) == before
    assert services.dataset_version_verify(version=version).verdict == "identical"

    out = StringIO()
    call_command("export_dataset", "--verify", str(version.id), stdout=out)
    assert "Rebuilt from the snapshot byte for byte" in out.getvalue()


def test_the_build_job_is_idempotent(campaign, admin, django_capture_on_commit_callbacks) -> None:
    version = build(admin, campaign, options={"formats": ["votes"]}, capture=django_capture_on_commit_callbacks)
    finished = version.finished
    again = services.dataset_version_build(version_id=version.id)
    assert (again.status, again.finished, again.manifest_sha256) == ("done", finished, version.manifest_sha256)


def test_a_stale_running_build_is_taken_over(campaign, admin) -> None:
    version = services.dataset_version_create(user=admin, name="x", campaign_ids=[campaign.id],
                                              options={"formats": ["votes"]})  # fmt: skip
    DatasetVersion.objects.filter(id=version.id).update(status="running", heartbeat=timezone.now())
    assert services.dataset_version_build(version_id=version.id).status == "running"  # someone else's
    DatasetVersion.objects.filter(id=version.id).update(heartbeat=timezone.now() - timedelta(hours=1))
    assert services.dataset_version_build(version_id=version.id).status == "done"


def test_a_version_whose_build_job_was_lost_is_built_by_the_resume_job(campaign, admin) -> None:
    # Created outside a captured commit: the on-commit build job never runs, as with a broker down.
    lost = services.dataset_version_create(user=admin, name="lost", campaign_ids=[campaign.id],
                                           options={"formats": ["votes"]})  # fmt: skip
    young = services.dataset_version_create(user=admin, name="young", campaign_ids=[campaign.id],
                                            options={"formats": ["votes"]})  # fmt: skip
    DatasetVersion.objects.filter(id=lost.id).update(created=timezone.now() - timedelta(minutes=5))

    resumed = tasks.dataset_versions_resume()

    assert resumed == [lost.id]
    assert DatasetVersion.objects.get(id=lost.id).status == "done"
    assert DatasetVersion.objects.get(id=young.id).status == "pending"  # its own job may still be coming


def test_splits_are_stratified_per_synset_and_seeded(campaign, admin, django_capture_on_commit_callbacks) -> None:
    options = {"formats": ["votes"], "split": {"train": 0.5, "val": 0.25, "test": 0.25, "seed": 7}}
    first = build(admin, campaign, options=options, capture=django_capture_on_commit_callbacks)
    second = build(admin, campaign, name="again", options=options, capture=django_capture_on_commit_callbacks)
    other = build(admin, campaign, name="seed 8", options={**options, "split": {**options["split"], "seed": 8}},
                  capture=django_capture_on_commit_callbacks)  # fmt: skip

    def splits(version):
        return dict(DatasetImage.objects.filter(version=version).values_list("image_id", "split"))

    assert splits(first) == splits(second) != splits(other)
    for synset_id in {int(w[1:]) for w in WNIDS}:
        images = DatasetImage.objects.filter(version=first, synset_id=synset_id)
        n = images.count()
        counts = [images.filter(split=s).count() for s in (0, 1, 2)]
        val = int(n * 0.25 + 0.5)
        assert counts == [n - 2 * val, val, val], (synset_id, n, counts)


def test_min_confidence_and_ancestors(campaign, admin, django_capture_on_commit_callbacks) -> None:
    options = {"formats": ["coco"], "min_confidence": 0.6, "include_ancestors": True, "synsets": [CIRCLE, TRIANGLE]}
    version = build(admin, campaign, options=options, capture=django_capture_on_commit_callbacks)
    direct = DatasetLabel.objects.filter(version=version, direct=True)
    assert not direct.filter(posterior__lt=0.6).exists()  # the 0.5 triangle label is left out
    assert set(direct.values_list("synset_id", flat=True)) == {int(CIRCLE[1:]), int(TRIANGLE[1:])}
    ellipse = DatasetLabel.objects.filter(version=version, direct=False, synset_id=13878306)
    assert ellipse.count() == direct.filter(synset_id=int(CIRCLE[1:])).count()  # circle is an ellipse
    label = ellipse.first()
    assert label.candidate_id is None
    assert label.posterior == direct.get(image_id=label.image_id).posterior
    categories = {c.wnid: c for c in services.selectors.version_categories(version=version)}
    assert categories[CIRCLE].supercategory_wnid == "n13878306" and categories["n13878306"].direct is False
    assert "n00001740" in categories  # entity.n.01, the root
