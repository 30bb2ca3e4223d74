"""An upload that meets a full disk: the uploader is told in a sentence (507), and nothing of it stays — no
batch, no item, no partly written file (it answered 500 and left the file it was writing)."""

from __future__ import annotations

import pytest

from annotation.models import ImportBatch, ImportItem
from tests.annotation.conftest import DOG
from tests.annotation.test_images_api import client_for, upload
from tests.disk import small_filesystem


@pytest.fixture
def small_disk(tmp_path):
    with small_filesystem(tmp_path / "small", "64k") as root:
        yield root


def test_an_upload_that_meets_a_full_disk_answers_507_and_leaves_nothing(
    db, settings, small_disk, dog, researcher, shapes
):
    settings.MEDIA_ROOT = small_disk
    files = [upload(f"{i}.jpg", image.jpeg) for i, image in enumerate(shapes)] * 4  # ~600 KB

    response = client_for(researcher).post(
        "/api/v1/image-imports/", {"synset": DOG, "files": files}, format="multipart"
    )

    assert response.status_code == 507
    assert response.json() == {
        "detail": "The server's storage is full, so this upload was not kept (nothing of it was saved); send it "
        "again once an admin has freed space.",
        "code": "storage_full",
    }
    assert not ImportBatch.objects.exists() and not ImportItem.objects.exists()
    assert list(small_disk.rglob("*")) == [small_disk / "imports"]  # the staging folder of every upload, empty
