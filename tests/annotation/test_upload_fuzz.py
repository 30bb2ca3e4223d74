"""Hostile files through every upload path (REST upload, URL list import, the import_images command):
truncated images, polyglots, decompression bombs, disguised archives, oversized payloads, damaged and
encrypted archives. Each is a clear 4xx, or a refused item with its reason in a batch, and nothing is
left behind: no staged upload, no stored file but those of accepted images.

(test_images_api.py and test_import_images.py cover the ordinary cases, zip slip, links in archives and
member/byte bombs; test_imaging.py the decoder one file at a time.)"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image as PILImage
from rest_framework.test import APIClient

from annotation.models import Candidate, Image, ImportBatch
from tests.annotation.conftest import DOG, encode, stored_files


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (10^10 by default)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def hostile(shapes) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, the refusal code we expect)."""
    jpeg = shapes[0].jpeg
    return {
        "truncated.jpg": (jpeg[: len(jpeg) // 3], "corrupt"),
        "page.jpg": (b"<!doctype html><script>alert(1)</script>", "not_an_image"),
        "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not_an_image"),
        "bomb.png": (png_bomb(), "too_many_pixels"),
        "archive.jpg": (zip_bytes({"a.jpg": jpeg}), "not_an_image"),
        "empty.jpg": (b"", "empty"),
        "header-only.gif": (b"GIF89a" + b"\0" * 7, "not_an_image"),
    }


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


@pytest.fixture
def api(researcher) -> APIClient:
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def test_hostile_uploads_are_refused_one_by_one_and_leave_nothing(
    db, media, dog, api, shapes, django_capture_on_commit_callbacks
) -> None:
    files = hostile(shapes)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/image-imports/",
            {
                "synset": DOG,
                "files": [upload(n, d) for n, (d, _) in files.items()] + [upload("ok.jpg", shapes[1].jpeg)],
            },
            format="multipart",
        )
    assert response.status_code == 202
    batch = ImportBatch.objects.get()
    outcomes = {i.name: (i.outcome, i.code) for i in batch.items.all()}
    assert outcomes == {**{n: ("rejected", code) for n, (_, code) in files.items()}, "ok.jpg": ("accepted", "")}
    assert all(i.reason for i in batch.items.filter(outcome="rejected"))
    image = Image.objects.get()
    assert stored_files(media) == sorted({image.file.name, image.thumbnail.name, image.medium.name})


def test_polyglot_is_stored_as_sent_but_served_only_as_an_image(
    db, media, dog, api, shapes, client, django_capture_on_commit_callbacks
) -> None:
    """A JPEG with a zip and a script appended decodes as a JPEG: it is accepted (originals are kept byte
    for byte), and served with its image type, nosniff and a sandboxing CSP, so a browser never runs it."""
    polyglot = shapes[2].jpeg + zip_bytes({"x.html": b"<script>alert(1)</script>"}) + b"<script>alert(2)</script>"
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/image-imports/", {"synset": DOG, "files": [upload("p.jpg", polyglot)]}, format="multipart")
    image = Image.objects.get()
    response = client.get(f"/media/{image.file.name}")
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"".join(response.streaming_content) == polyglot
    thumbnail = PILImage.open(io.BytesIO((media / image.thumbnail.name).read_bytes()))
    assert thumbnail.format in {"JPEG", "WEBP"}  # display versions are re-encoded: no trailing payload


def test_file_over_the_byte_limit_is_refused_and_its_staged_copy_removed(
    db, media, dog, api, shapes, settings, django_capture_on_commit_callbacks
) -> None:
    settings.IMAGE_MAX_BYTES = 1000
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/image-imports/", {"synset": DOG, "files": [upload("big.jpg", shapes[0].jpeg)]}, format="multipart"
        )
    assert response.status_code == 202
    item = ImportBatch.objects.get().items.get()
    assert (item.outcome, item.code) == ("rejected", "too_large")
    assert stored_files(media) == [] and not Candidate.objects.exists()


def test_too_many_files_in_one_request_is_a_400_with_a_sentence(db, media, dog, api, shapes, settings) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [upload(f"{i}.jpg", shapes[0].jpeg) for i in range(4)]
    response = api.post("/api/v1/image-imports/", {"synset": DOG, "files": files}, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"] == "At most 3 files per upload request."
    assert not ImportBatch.objects.exists() and stored_files(media) == []


def test_a_body_that_is_not_multipart_nor_json_is_a_400_or_415(db, media, dog, api) -> None:
    garbage = api.generic(
        "POST",
        "/api/v1/image-imports/",
        b"--x\r\nContent-Disposition: form-data; name=",
        "multipart/form-data; boundary=x",
    )
    unknown = api.generic("POST", "/api/v1/image-imports/", b"\x00\x01", "application/x-tar")
    assert garbage.status_code == 400 and garbage.json()["detail"]
    assert unknown.status_code == 415 and unknown.json()["detail"]
    assert not ImportBatch.objects.exists() and stored_files(media) == []


def test_hostile_urls_are_refused_one_by_one(
    db, media, dog, api, shapes, image_server, django_capture_on_commit_callbacks
) -> None:
    urls = {image_server.add(f"/{name}", data): code for name, (data, code) in hostile(shapes).items()}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/image-imports/", {"synset": DOG, "urls": list(urls)}, format="json")
    assert response.status_code == 202
    got = {i.name: (i.outcome, i.code) for i in ImportBatch.objects.get().items.all()}
    assert got == {url: ("rejected", code) for url, code in urls.items()}
    assert stored_files(media) == []


def run_command(*args: str) -> None:
    call_command("import_images", *args, "--no-progress", "--workers", "1", stdout=io.StringIO())


def test_hostile_archive_members_are_refused_one_by_one(db, media, dog, shapes, tmp_path) -> None:
    members = {name: data for name, (data, _) in hostile(shapes).items()}
    path = tmp_path / "hostile.zip"
    path.write_bytes(
        zip_bytes({**members, "inner.zip": zip_bytes({"a.jpg": shapes[0].jpeg}), "ok.jpg": shapes[1].jpeg})
    )
    run_command("--synset", DOG, str(path))
    got = {i.name: (i.outcome, i.code) for i in ImportBatch.objects.get().items.all()}
    assert got == {**{n: ("rejected", c) for n, (_, c) in hostile(shapes).items()},
                   "inner.zip": ("rejected", "not_an_image"), "ok.jpg": ("accepted", "")}  # fmt: skip
    assert len(stored_files(media)) == 2  # the accepted original and its thumbnail


@pytest.mark.parametrize("suffix", ["zip", "tar.gz"])
def test_truncated_archive_keeps_what_was_readable_and_says_the_rest_is_damaged(
    db, media, dog, shapes, tmp_path, suffix
) -> None:
    path = tmp_path / f"cut.{suffix}"
    if suffix == "zip":
        whole = zip_bytes({"a.jpg": shapes[0].jpeg, "b.jpg": shapes[1].jpeg})
    else:
        import tarfile

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in [("a.jpg", shapes[0].jpeg), ("b.jpg", shapes[1].jpeg)]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        whole = buffer.getvalue()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    run_command("--synset", DOG, str(path))
    batch = ImportBatch.objects.get()
    items = list(batch.items.order_by("id").values_list("outcome", "code"))
    assert items[-1] == ("rejected", "bad_archive")
    assert batch.items.get(code="bad_archive").reason.startswith("The archive is damaged")
    assert len(stored_files(media)) == 2 * batch.accepted


def test_encrypted_zip_member_is_refused_with_a_reason(db, media, dog, shapes, tmp_path) -> None:
    data = bytearray(zip_bytes({"secret.jpg": shapes[0].jpeg}))
    # Set the "encrypted" flag in the local and central headers (zipfile then asks for a password).
    data[6] |= 1
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 1
    path = tmp_path / "locked.zip"
    path.write_bytes(bytes(data))
    run_command("--synset", DOG, str(path))
    item = ImportBatch.objects.get().items.get()
    assert (item.outcome, item.code) == ("rejected", "bad_archive")
    assert "Cannot unpack" in item.reason
    assert stored_files(media) == []


def test_bomb_is_refused_before_decoding_in_every_path(db, media, dog, tmp_path, shapes) -> None:
    """The same 10^10-pixel PNG as a single file in a folder: refused by its header, nothing decoded."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_bomb())
    (folder / "flat.png").write_bytes(encode(PILImage.new("RGB", (64, 64)), "PNG"))
    run_command("--synset", DOG, str(folder))
    got = {i.name: i.code for i in ImportBatch.objects.get().items.all()}
    assert got == {"bomb.png": "too_many_pixels", "flat.png": ""}
