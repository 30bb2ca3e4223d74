"""An API import stopped by an unexpected error shows its kind and message without the server's paths (the
researcher who reads it has no business knowing where the server keeps its files; the log has the whole error)."""

from __future__ import annotations

from annotation.models import ImportBatch
from tests.annotation.conftest import DOG
from tests.annotation.test_images_api import client_for, upload


def test_a_failed_api_import_names_the_error_without_server_paths(
    db, media, dog, researcher, shapes, django_capture_on_commit_callbacks
):
    (media / "images").write_bytes(b"")  # a file where the originals' folder goes: every store fails

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(researcher).post(
            "/api/v1/image-imports/", {"synset": DOG, "files": [upload("0.jpg", shapes[0].jpeg)]}, format="multipart"
        )

    assert response.status_code == 202
    batch = ImportBatch.objects.get()
    assert batch.status == "failed"
    assert batch.error.startswith("The import stopped: ")
    assert "Error: " in batch.error  # the kind of error, e.g. FileExistsError or NotADirectoryError
    assert str(media) not in batch.error and "…/" in batch.error
