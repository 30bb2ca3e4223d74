"""An import that meets a full disk while it stores images: the batch fails with a sentence that says what to do
(it showed the raw "[Errno 28] No space left on device: '/srv/…'"), the chunks stored before are kept, and no
file stays half-written or unnamed by an Image row (a truncated original, found by a later import under its
content-addressed name, would have been served as the image for ever)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Candidate, Image, ImportBatch
from tests.annotation.conftest import DOG
from tests.annotation.test_images_api import client_for, upload
from tests.disk import small_filesystem


@pytest.fixture
def small_media(settings, tmp_path):
    """MEDIA_ROOT on a 320 KB disk: eight shapes (150 KB) stage, but storing them (originals and thumbnails)
    runs out of space midway; three files per chunk, so some chunks commit before it does."""
    with small_filesystem(tmp_path / "small", "320k") as root:
        settings.MEDIA_ROOT = root
        settings.IMAGE_IMPORT_WORKERS = 1
        yield root


def assert_every_file_whole_and_named(root: Path) -> None:
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    named = {name for row in Image.objects.values_list("file", "thumbnail", "medium") for name in row}
    assert on_disk == named
    for image in Image.objects.all():
        assert hashlib.sha256((root / image.file.name).read_bytes()).hexdigest() == image.sha256


def test_an_upload_whose_import_meets_a_full_disk_fails_with_a_sentence_and_leaves_nothing_half_written(
    db, small_media, dog, researcher, shapes, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("annotation.services.images.CHUNK_SIZE", 3)
    files = [upload(f"{i}.jpg", image.jpeg) for i, image in enumerate(shapes)]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(researcher).post(
            "/api/v1/image-imports/", {"synset": DOG, "files": files}, format="multipart"
        )

    assert response.status_code == 202
    batch = ImportBatch.objects.get()
    stored = Candidate.objects.count()
    assert batch.status == "failed" and 0 < stored < len(shapes) and batch.processed == stored
    assert_every_file_whole_and_named(small_media)  # no staged upload either
    assert batch.error == (
        f"The server's storage is full, so the import stopped after {stored} of 8 files; those are kept, and "
        "nothing half-written stays. The uploaded files not yet stored were discarded: upload them again once an "
        "admin has freed space (those already stored will be reported as duplicates)."
    )


def test_import_images_on_a_full_disk_says_so_and_leaves_nothing_half_written(
    db, small_media, dog, shapes, monkeypatch, tmp_path
):
    monkeypatch.setattr("annotation.services.images.CHUNK_SIZE", 3)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, image in enumerate(shapes):
        (folder / f"{i:02}.jpg").write_bytes(image.jpeg)
    (small_media / "filler").write_bytes(b"\0" * 200_000)  # what else is on the disk

    with pytest.raises(CommandError) as raised:
        call_command("import_images", "--synset", DOG, "--no-progress", "--workers", "1", str(folder))

    batch = ImportBatch.objects.get()
    stored = batch.total
    assert batch.status == "failed" and 0 < stored < len(shapes)
    (small_media / "filler").unlink()
    assert_every_file_whole_and_named(small_media)
    assert (
        str(raised.value)
        == batch.error
        == (
            f"The import stopped after {stored} files because the server's storage (MEDIA_ROOT) is full; what was "
            "stored is kept, and nothing half-written stays. Free space, then run the same import again to finish it "
            "(those files will be reported as duplicates)."
        )
    )
