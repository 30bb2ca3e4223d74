"""What exports leave on disk when a process dies: the scratch folder of a build (``.partial-<id>-…``) or a
verify (``.verify-<id>-…``) killed midway, and the folder of a version whose row is gone or failed. The
periodic sweep (export.tasks.export_leftovers_remove) removes them, and never a folder a live build or
verify is writing into, nor a done version's files."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from export import services, tasks
from export.formats import FORMATS
from export.models import DatasetVersion
from tests.export.conftest import build

pytestmark = pytest.mark.django_db


def abandoned(path, age=timedelta(hours=1)):
    """A scratch folder as a killed process leaves it: a file inside, last touched ``age`` ago."""
    (path / "imagenet").mkdir(parents=True)
    (path / "imagenet" / "LOC_val_solution.csv").write_bytes(b"ImageId,PredictionString\n")
    then = (path.stat().st_mtime - age.total_seconds(),) * 2
    os.utime(path, then)
    return path


def test_the_sweep_removes_scratch_of_killed_builds_and_verifies_and_folders_of_gone_versions(
    campaign, admin, django_capture_on_commit_callbacks
) -> None:
    done = build(admin, campaign, options={"formats": ["votes"]}, capture=django_capture_on_commit_callbacks)
    gone = build(admin, campaign, name="gone", options={"formats": ["votes"]},
                 capture=django_capture_on_commit_callbacks)  # fmt: skip
    failed = build(admin, campaign, name="failed", options={"formats": ["votes"]},
                   capture=django_capture_on_commit_callbacks)  # fmt: skip
    root = services.export_root()
    killed_build = abandoned(root / f".partial-{done.id}-0badc0de")
    killed_verify = abandoned(root / f".verify-{done.id}-0badc0de")
    young = abandoned(root / f".partial-{done.id}-0000beef", age=timedelta(0))  # maybe just created: kept
    DatasetVersion.objects.filter(id=gone.id).delete()  # e.g. in the Django admin: its folder stays
    DatasetVersion.objects.filter(id=failed.id).update(status="failed")  # renamed into place, then it failed

    removed = tasks.export_leftovers_remove()

    assert removed == sorted([killed_build.name, killed_verify.name, gone.output_dir, failed.output_dir])
    assert sorted(p.name for p in root.iterdir()) == sorted([done.output_dir, young.name])
    assert (services.version_folder(done) / "manifest.json").is_file()
    assert tasks.export_leftovers_remove() == []  # nothing more on a second run


def test_the_sweep_never_removes_the_folder_a_running_build_or_verify_writes(
    campaign, admin, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    seen = []

    def sweeping_format(ctx) -> None:
        """A format that runs the sweep, with no grace for young folders, while the build writes."""
        ctx.folder.write_bytes("sweep/before.txt", b"written before the sweep\n")
        seen.append((ctx.folder.root.name, services.export_leftovers_remove(grace=timedelta(0))))
        assert ctx.folder.root.is_dir()
        ctx.folder.write_bytes("sweep/after.txt", b"written after the sweep\n")

    monkeypatch.setitem(FORMATS, "sweep", sweeping_format)
    version = build(admin, campaign, options={"formats": ["votes", "sweep"]},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    assert services.dataset_version_verify(version=version).verdict == "identical"

    (build_folder, removed_in_build), (verify_folder, removed_in_verify) = seen
    assert build_folder.startswith(f".partial-{version.id}-") and verify_folder.startswith(f".verify-{version.id}-")
    assert removed_in_build == removed_in_verify == []
    assert sorted(p.name for p in services.export_root().iterdir()) == [version.output_dir]


def test_a_full_disk_is_named_in_a_sentence_that_says_what_to_do() -> None:
    # A real ENOSPC from the kernel: /dev/full refuses every write with it.
    with pytest.raises(OSError) as raised, open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")

    assert services.public_error(raised.value) == (
        "OSError: [Errno 28] No space left on device. The disk that holds the export folder (EXPORT_ROOT) or the "
        "temporary folder is full; the files written so far were removed. Free space, then create the version "
        "again with the same name to retry."
    )
