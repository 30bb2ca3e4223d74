"""``export_dataset --verify``: the published files are checked against their manifest (damage is named, and
a rebuild that happens to match does not hide it), and a rebuild that differs says which files and which
exporter format wrote the version, so an upgrade does not read as corruption. Exit status: 0 identical,
2 damaged, 3 intact but rebuilt differently."""

from __future__ import annotations

import contextlib
import hashlib
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from export import integrity, services
from export.files import VersionFolder
from export.models import DatasetVersion
from tests.disk import small_filesystem
from tests.export.conftest import build

pytestmark = pytest.mark.django_db

OPTIONS = {"formats": ["imagenet", "votes"]}


def verify(version: DatasetVersion, *args: str) -> tuple[int, str]:
    """Run the command as an admin would: (exit status, what it printed)."""
    out = StringIO()
    try:
        call_command("export_dataset", "--verify", str(version.id), *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def _line(name: str, data: bytes) -> str:
    return json.dumps({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
                      separators=(",", ":"), sort_keys=True)  # fmt: skip


def republish(version: DatasetVersion, name: str, data: bytes) -> None:
    """What an older exporter would have published: ``name`` with other bytes, listed so in a manifest whose
    hash is the one recorded on the version (every file consistent with it)."""
    folder = services.version_folder(version)
    old = (folder / name).read_bytes()
    (folder / name).unlink()  # a new file: never write through a link into stored originals
    (folder / name).write_bytes(data)
    manifest = (folder / "manifest.json").read_text()
    assert _line(name, old) in manifest
    head = f'"total_bytes":{version.total_bytes}'
    manifest = manifest.replace(_line(name, old), _line(name, data)).replace(
        head, f'"total_bytes":{version.total_bytes - len(old) + len(data)}'
    )
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").write_text(manifest)
    DatasetVersion.objects.filter(id=version.id).update(manifest_sha256=hashlib.sha256(manifest.encode()).hexdigest())
    version.refresh_from_db()


def test_a_built_version_records_the_exporter_format_and_verifies_identical(
    campaign, admin, django_capture_on_commit_callbacks
) -> None:
    version = build(admin, campaign, options=OPTIONS, capture=django_capture_on_commit_callbacks)
    assert version.exporter_format == services.EXPORTER_FORMAT

    status, output = verify(version)

    assert status == 0
    assert f"its {version.file_count:,} files have the sizes and SHA-256 it lists" in output
    assert f"Rebuilt from the snapshot byte for byte (manifest sha256 {version.manifest_sha256})" in output
    assert not list(services.export_root().glob(".verify-*"))  # the scratch folder is gone


def test_damaged_files_are_named_even_when_the_rebuild_matches(
    campaign, admin, django_capture_on_commit_callbacks
) -> None:
    version = build(admin, campaign, options=OPTIONS, capture=django_capture_on_commit_callbacks)
    folder = services.version_folder(version)
    # One byte changed in place (same size), one file deleted, one added. None is a hard-linked original.
    sheet = bytearray((folder / "datasheet.md").read_bytes())
    sheet[10] ^= 0x20
    (folder / "datasheet.md").write_bytes(bytes(sheet))
    (folder / "imagenet" / "LOC_synset_mapping.txt").unlink()
    (folder / "imagenet" / "train" / "notes.txt").write_text("left by hand")

    status, output = verify(version)

    assert status == 2
    assert "1 file missing: imagenet/LOC_synset_mapping.txt." in output
    assert "1 file changed (size or SHA-256 not the manifest's): datasheet.md." in output
    assert "1 file not in the manifest: imagenet/train/notes.txt." in output
    # The snapshot still rebuilds the recorded bytes: the damage is in the published folder, not the data.
    assert "Rebuilt from the snapshot byte for byte" in output
    assert verify(version, "--no-rebuild")[0] == 2


def test_a_changed_manifest_is_damage(campaign, admin, django_capture_on_commit_callbacks) -> None:
    version = build(admin, campaign, options={"formats": ["votes"]}, capture=django_capture_on_commit_callbacks)
    manifest = services.version_folder(version) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes() + b"\n")

    status, output = verify(version, "--no-rebuild")

    assert status == 2
    assert "manifest.json is not the one recorded when the version was built" in output


def test_a_version_written_by_an_older_exporter_format_is_intact_and_rebuilt_differently(
    campaign, admin, django_capture_on_commit_callbacks
) -> None:
    version = build(admin, campaign, options=OPTIONS, capture=django_capture_on_commit_callbacks)
    folder = services.version_folder(version)
    # An older exporter worded the datasheet otherwise; its manifest and recorded hash say so consistently.
    republish(version, "datasheet.md", (folder / "datasheet.md").read_bytes().replace(b"images", b"pictures"))
    DatasetVersion.objects.filter(id=version.id).update(exporter_format=0)
    version.refresh_from_db()

    status, output = verify(version)

    assert status == 3
    assert "Published files intact" in output
    assert "1 file written with other bytes: datasheet.md." in output
    assert "in the published version only" not in output and "in the rebuild only" not in output
    assert (
        f"written by exporter format 0; this code writes format {services.EXPORTER_FORMAT}, so after an upgrade a "
        "rebuild with other bytes is expected and does not mean the published files are damaged." in output
    )

    DatasetVersion.objects.filter(id=version.id).update(exporter_format=None)  # built before formats had numbers
    assert "written before exporter formats were numbered" in verify(version)[1]

    # The same format: an upgrade cannot explain it, and the output does not pretend it does.
    DatasetVersion.objects.filter(id=version.id).update(exporter_format=services.EXPORTER_FORMAT)
    status, output = verify(version)
    assert status == 3
    assert f"written by this same exporter format {services.EXPORTER_FORMAT}, so an upgrade does not" in output


def test_verify_of_a_version_that_is_not_done_is_refused(campaign, admin) -> None:
    pending = services.dataset_version_create(user=admin, name="p", campaign_ids=[campaign.id], options=OPTIONS)
    status, output = verify(pending)
    assert status == 1
    assert "is pending; only a done version can be verified" in output


def _manifest(root: Path, files: list[tuple[str, bytes]]) -> Path:
    folder = VersionFolder(root)
    for name, data in files:
        folder.write_bytes(name, data)
    folder.write_manifest()
    return root / "manifest.json"


def test_manifests_compare_names_changed_moved_and_lone_files(tmp_path) -> None:
    recorded = _manifest(tmp_path / "a", [("a", b"1"), ("b", b"2"), ("c", b"3"), ("d", b"4"), ("old", b"5")])
    rebuilt = _manifest(tmp_path / "b", [("a", b"1"), ("c", b"3"), ("b", b"two"), ("d", b"4"), ("new", b"6")])

    diff = integrity.manifests_compare(recorded, rebuilt)

    assert (diff.changed.first, diff.only_recorded.first, diff.only_rebuilt.first) == (["b"], ["old"], ["new"])
    assert not integrity.manifests_compare(recorded, recorded)


@pytest.fixture
def small_export_root(settings, tmp_path):
    with small_filesystem(tmp_path / "small", "512k") as root:
        settings.EXPORT_ROOT = str(root)
        yield root


def test_a_verify_that_meets_a_full_disk_says_so_and_leaves_no_scratch(
    campaign, admin, small_export_root, django_capture_on_commit_callbacks
) -> None:
    version = build(admin, campaign, options={"formats": ["votes"]}, capture=django_capture_on_commit_callbacks)
    # The rest of the disk taken by something else.
    with open(small_export_root / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 4096)

    status, output = verify(version)
    no_rebuild = verify(version, "--no-rebuild")

    assert status == 1
    assert output.endswith(
        "The rebuild ran out of disk space in the export folder (EXPORT_ROOT); its scratch copy was removed. "
        "Free space and verify again, or check the published files alone with --no-rebuild."
    )
    assert not list(small_export_root.glob(".verify-*"))
    assert no_rebuild[0] == 0 and "Published files intact" in no_rebuild[1]
