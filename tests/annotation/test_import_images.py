"""manage.py import_images: folders, archives with bad members, URL lists, duplicates and near-duplicates.
Every refused file has its reason, the rest of the batch imports, and nothing half-written stays."""

from __future__ import annotations

import io
import multiprocessing
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from annotation import sources
from annotation.models import Candidate, Image, ImportBatch, ImportItem
from annotation.services import images
from annotation.services.images import storage_names
from tests.annotation.conftest import CAT, DOG, decode, encode, stored_files


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_images", *args, "--no-progress", "--workers", "1", stdout=out)
    return out.getvalue()


def items(batch: ImportBatch) -> list[tuple[str, str, str]]:
    return [(i.name, i.outcome, i.code) for i in batch.items.order_by("id")]


def test_folder_import_stores_each_image_once_with_display_versions(db, media, dog, shapes, tmp_path) -> None:
    folder = tmp_path / "dogs"
    (folder / "sub").mkdir(parents=True)
    for i, im in enumerate(shapes[:3]):
        (folder / ("sub" if i == 2 else "") / f"{i}.jpg").write_bytes(im.jpeg)

    out = run("--synset", DOG, "--query-term", "dog", str(folder))

    batch = ImportBatch.objects.get()
    assert out.splitlines()[0] == (
        f"Import {batch.id} into {DOG}: 3 accepted, 0 duplicate, 0 near-duplicate, 0 rejected."
    )
    assert (batch.source, batch.status, batch.query_term, batch.total) == ("folder", "done", "dog", 3)
    assert items(batch) == [("0.jpg", "accepted", ""), ("1.jpg", "accepted", ""), ("sub/2.jpg", "accepted", "")]
    assert Candidate.objects.filter(synset=dog, state="new", batch=batch).count() == 3
    image = Image.objects.get(sha256=__import__("hashlib").sha256(shapes[0].jpeg).hexdigest())
    original, thumbnail, _ = storage_names(image.sha256, "jpg")
    assert (image.file.name, image.thumbnail.name, image.medium.name) == (original, thumbnail, original)
    assert (media / original).read_bytes() == shapes[0].jpeg  # byte-for-byte
    assert (image.width, image.height, image.format) == (shapes[0].width, shapes[0].height, "JPEG")
    assert max(decode((media / thumbnail).read_bytes()).size) == 256
    assert len(stored_files(media)) == 6  # 3 originals + 3 thumbnails; originals serve as medium


def test_exact_duplicates_are_reported_and_reused_across_synsets(db, media, dog, cat, shapes, tmp_path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(shapes[0].jpeg)
    (folder / "b.jpg").write_bytes(shapes[0].jpeg)  # same bytes in the same batch
    run("--synset", DOG, str(folder))
    run("--synset", DOG, str(folder))  # the whole folder again
    out = run("--synset", CAT, str(folder))  # same image, another synset

    first, second, third = ImportBatch.objects.order_by("id")
    a = Candidate.objects.get(synset=dog)
    assert [(i.outcome, i.candidate_id) for i in first.items.order_by("id")] == [
        ("accepted", a.id),
        ("duplicate", a.id),
    ]
    assert first.items.order_by("id")[1].reason == "The same file is already a candidate for this synset (a.jpg)."
    assert (second.accepted, second.duplicate) == (0, 2)
    assert second.items.first().reason == f"The same file is already a candidate for this synset (candidate {a.id})."
    assert (third.accepted, third.duplicate) == (1, 1)
    assert "1 accepted, 1 duplicate" in out
    assert Image.objects.count() == 1
    assert Candidate.objects.get(synset=cat).image_id == a.image_id
    assert len(stored_files(media)) == 2


def near_copies(data: bytes) -> dict[str, bytes]:
    image = decode(data).convert("RGB")
    w, h = image.size
    return {
        "recoded.jpg": encode(image, quality=50),
        "half.jpg": encode(image.resize((w // 2, h // 2))),
        "cropped.jpg": encode(image.crop((w // 50, h // 50, w - w // 50, h - h // 50)), quality=90),
    }


def test_near_duplicates_are_caught_and_the_largest_copy_is_kept(
    db, media, dog, shapes, tmp_path, django_capture_on_commit_callbacks
) -> None:
    original = shapes[1].jpeg
    small = tmp_path / "small"
    small.mkdir()
    half = encode(decode(original).resize((shapes[1].width // 2, shapes[1].height // 2)))
    (small / "half.jpg").write_bytes(half)
    run("--synset", DOG, str(small))
    candidate = Candidate.objects.get()
    small_image = candidate.image

    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "0-original.jpg").write_bytes(original)
    for name, data in near_copies(original).items():
        (folder / name).write_bytes(data)
    (folder / "other.jpg").write_bytes(shapes[2].jpeg)
    with django_capture_on_commit_callbacks(execute=True):  # old files are deleted once the rows are gone
        run("--synset", DOG, str(folder))

    batch = ImportBatch.objects.latest("id")
    assert items(batch) == [
        ("0-original.jpg", "accepted", "replaced"),
        ("cropped.jpg", "near_duplicate", "near_duplicate"),
        ("half.jpg", "near_duplicate", "near_duplicate"),
        ("other.jpg", "accepted", ""),
        ("recoded.jpg", "near_duplicate", "near_duplicate"),
    ]
    replaced = batch.items.get(name="0-original.jpg")
    assert replaced.reason.startswith(f"Replaced the smaller near-duplicate candidate {candidate.id} (perceptual-hash")
    near = batch.items.get(name="recoded.jpg")
    assert near.candidate_id == candidate.id
    assert near.reason.startswith("Looks like 0-original.jpg (perceptual-hash distance ")
    assert near.reason.endswith(", threshold 8); the larger copy is kept.")
    candidate.refresh_from_db()
    assert (candidate.image.width, candidate.image.height) == (shapes[1].width, shapes[1].height)
    assert candidate.batch_id == batch.id
    assert not Image.objects.filter(id=small_image.id).exists()  # the smaller copy is gone, files too
    assert not (media / small_image.file.name).exists()
    assert Candidate.objects.count() == 2 and Image.objects.count() == 2
    assert len(stored_files(media)) == 4


def test_plain_images_of_different_colours_are_not_near_duplicates(
    db, media, dog, tmp_path, django_capture_on_commit_callbacks
) -> None:
    # Their perceptual hashes are equal (phash sees grey levels, and a plain image has no structure at all);
    # their colours tell them apart. A plain image of the same colour, larger, is a copy and replaces the first.
    folder = tmp_path / "plain"
    folder.mkdir()
    for name, colour, size in [("a-red.png", (200, 30, 30), (300, 200)), ("b-blue.png", (30, 30, 200), (300, 200)),
                               ("c-grey.png", (128, 128, 128), (300, 200))]:  # fmt: skip
        PILImage.new("RGB", size, colour).save(folder / name)
    run("--synset", DOG, str(folder))
    assert items(ImportBatch.objects.get()) == [
        ("a-red.png", "accepted", ""), ("b-blue.png", "accepted", ""), ("c-grey.png", "accepted", ""),
    ]  # fmt: skip
    later = tmp_path / "later"
    later.mkdir()
    PILImage.new("RGB", (600, 400), (201, 31, 29)).save(later / "red-larger.png")
    with django_capture_on_commit_callbacks(execute=True):  # the replaced image is deleted once the chunk commits
        out = run("--synset", DOG, str(later))
    assert items(ImportBatch.objects.latest("id")) == [("red-larger.png", "accepted", "replaced")]
    assert "1 accepted (1 replacing a smaller copy), 0 duplicate" in out
    assert "accepted       red-larger.png: Replaced the smaller near-duplicate candidate" in out
    assert Candidate.objects.count() == 3 and sorted(Image.objects.values_list("width", flat=True)) == [300, 300, 600]


def test_three_different_16_bit_pngs_are_all_accepted(db, media, dog, tmp_path) -> None:
    # Converted by clipping to 8 bits they were all white: same hash, same colour, two dropped as near-duplicates.
    from tests.annotation.test_imaging import png16, three_16_bit_images

    folder = tmp_path / "deep"
    folder.mkdir()
    for name, values in zip(["across.png", "down.png", "rings.png"], three_16_bit_images(), strict=True):
        (folder / name).write_bytes(png16(values))
    run("--synset", DOG, str(folder))
    assert items(ImportBatch.objects.get()) == [
        ("across.png", "accepted", ""), ("down.png", "accepted", ""), ("rings.png", "accepted", ""),
    ]  # fmt: skip
    assert Candidate.objects.count() == 3


def test_a_candidate_whose_thumbnail_is_unreadable_is_matched_on_the_hash_alone(
    db, media, dog, shapes, tmp_path
) -> None:
    first, later = tmp_path / "first", tmp_path / "later"
    first.mkdir(), later.mkdir()
    (first / "original.jpg").write_bytes(shapes[1].jpeg)
    run("--synset", DOG, str(first))
    (media / Candidate.objects.get().image.thumbnail.name).unlink()  # storage lost the file
    (later / "recoded.jpg").write_bytes(near_copies(shapes[1].jpeg)["recoded.jpg"])
    run("--synset", DOG, str(later))
    assert items(ImportBatch.objects.latest("id")) == [("recoded.jpg", "near_duplicate", "near_duplicate")]


def test_larger_copy_does_not_replace_a_candidate_being_voted_on(db, media, dog, shapes, tmp_path) -> None:
    original = shapes[1].jpeg
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "half.jpg").write_bytes(near_copies(original)["half.jpg"])
    run("--synset", DOG, str(tmp_path / "a"))
    Candidate.objects.update(state=Candidate.State.VOTING)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "full.jpg").write_bytes(original)
    run("--synset", DOG, str(tmp_path / "b"))
    item = ImportItem.objects.get(name="full.jpg")
    assert item.outcome == "near_duplicate"
    assert item.reason.endswith("this copy is larger, but that candidate is already being labelled, so it stays.")
    assert Image.objects.count() == 1


def make_zip(path: Path, members: list[tuple[str, bytes, int | None]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


def test_zip_with_bad_members_imports_the_good_ones(db, media, dog, shapes, tmp_path) -> None:
    truncated = shapes[3].jpeg[: len(shapes[3].jpeg) // 2]
    archive = make_zip(tmp_path / "mixed.zip", [
        ("good/1.jpg", shapes[0].jpeg, None),
        ("../escape.jpg", shapes[1].jpeg, None),
        ("/etc/abs.jpg", shapes[1].jpeg, None),
        ("link.jpg", b"/etc/passwd", 0o120777),
        ("empty.jpg", b"", None),
        ("notes.txt", b"hello", None),
        ("half.jpg", truncated, None),
        ("doc.tiff", encode(decode(shapes[4].jpeg), "TIFF"), None),
        ("tall.png", encode(PILImage.new("RGB", (40, 4000)), "PNG"), None),
        ("good/2.jpg", shapes[2].jpeg, None),
    ])  # fmt: skip
    out = run("--synset", DOG, str(archive))

    batch = ImportBatch.objects.get()
    assert batch.source == "archive"
    assert out.splitlines()[0].endswith(": 2 accepted, 0 duplicate, 0 near-duplicate, 8 rejected.")
    assert items(batch) == [
        ("good/1.jpg", "accepted", ""),
        ("../escape.jpg", "rejected", "unsafe_path"),
        ("/etc/abs.jpg", "rejected", "unsafe_path"),
        ("link.jpg", "rejected", "link"),
        ("empty.jpg", "rejected", "empty"),
        ("notes.txt", "rejected", "not_an_image"),
        ("half.jpg", "rejected", "corrupt"),
        ("doc.tiff", "rejected", "unsupported_format"),
        ("tall.png", "rejected", "bad_aspect_ratio"),
        ("good/2.jpg", "accepted", ""),
    ]
    reasons = dict(batch.items.values_list("name", "reason"))
    assert reasons["../escape.jpg"] == "The member's path contains '..'; refused (zip slip)."
    assert reasons["/etc/abs.jpg"] == "The member has an absolute path; refused (zip slip)."
    assert reasons["link.jpg"] == "Links inside archives are refused."
    assert "  rejected       link.jpg: Links inside archives are refused." in out.splitlines()
    assert Candidate.objects.count() == 2 and len(stored_files(media)) == 4


def add_tar_member(archive: tarfile.TarFile, name: str, data: bytes = b"", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


def test_tar_gz_refuses_links_devices_and_escapes(db, media, dog, shapes, tmp_path) -> None:
    path = tmp_path / "mixed.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        add_tar_member(archive, "ok.jpg", shapes[0].jpeg)
        add_tar_member(archive, "sym.jpg", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add_tar_member(archive, "hard.jpg", type=tarfile.LNKTYPE, linkname="ok.jpg")
        add_tar_member(archive, "dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add_tar_member(archive, "a/../../up.jpg", shapes[1].jpeg)
        add_tar_member(archive, "ok2.jpg", shapes[2].jpeg)
    run("--synset", DOG, str(path))
    assert items(ImportBatch.objects.get()) == [
        ("ok.jpg", "accepted", ""),
        ("sym.jpg", "rejected", "link"),
        ("hard.jpg", "rejected", "link"),
        ("dev", "rejected", "special_file"),
        ("a/../../up.jpg", "rejected", "unsafe_path"),
        ("ok2.jpg", "accepted", ""),
    ]


def test_archive_bombs_stop_at_the_member_and_byte_limits(db, media, dog, shapes, settings, tmp_path) -> None:
    settings.IMAGE_ARCHIVE_MAX_MEMBERS = 3
    many = make_zip(tmp_path / "many.zip", [(f"{i}.jpg", shapes[i].jpeg, None) for i in range(5)])
    run("--synset", DOG, str(many))
    batch = ImportBatch.objects.get()
    assert items(batch)[-1] == ("3.jpg", "rejected", "archive_too_large")
    assert batch.items.last().reason == "The archive has more than 3 members; the rest was not read."
    assert (batch.accepted, batch.rejected, batch.total) == (3, 1, 4)

    settings.IMAGE_ARCHIVE_MAX_MEMBERS = 100
    settings.IMAGE_ARCHIVE_MAX_BYTES = 1_000_000
    zeros = make_zip(tmp_path / "zeros.zip", [(f"z{i}.bin", b"\0" * 600_000, None) for i in range(4)])
    assert zeros.stat().st_size < 20_000  # highly compressed: the bomb
    run("--synset", DOG, str(zeros))
    bomb = ImportBatch.objects.latest("id")
    assert [code for _, _, code in items(bomb)] == ["not_an_image", "not_an_image", "archive_too_large"]


def test_oversized_and_symlinked_folder_files_are_refused(db, media, dog, shapes, settings, tmp_path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "big.jpg").write_bytes(shapes[0].jpeg)
    (folder / "link.jpg").symlink_to(folder / "big.jpg")
    settings.IMAGE_MAX_BYTES = 1000
    run("--synset", DOG, str(folder))
    assert items(ImportBatch.objects.get()) == [("big.jpg", "rejected", "too_large"), ("link.jpg", "rejected", "link")]
    assert stored_files(media) == [] and not Candidate.objects.exists()


def test_url_list_served_on_loopback(db, media, dog, shapes, image_server, tmp_path) -> None:
    good = image_server.add("/a.jpg", shapes[0].jpeg)
    moved = image_server.add("/moved", b"", status=302, Location="/b.jpg")
    image_server.add("/b.jpg", shapes[1].jpeg)
    page = image_server.add("/page", b"<html></html>", Content_Type="text/html")
    missing = image_server.base + "/missing.jpg"
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# dogs\n{good}\n\n{moved}\n{page}\n{missing}\nftp://example.org/x.jpg\n{good}\n")

    out = run("--synset", DOG, "--query-term", "hound", str(urls))

    batch = ImportBatch.objects.get()
    assert (batch.source, batch.query_term) == ("url", "hound")
    assert items(batch) == [
        (good, "accepted", ""),
        (moved, "accepted", ""),
        (page, "rejected", "not_an_image"),
        (missing, "rejected", "http_status"),
        ("ftp://example.org/x.jpg", "rejected", "bad_url"),
        (good, "duplicate", "duplicate"),
    ]
    assert f"  rejected       {missing}: The server answered HTTP 404." in out.splitlines()
    assert Candidate.objects.count() == 2


def test_unknown_synset_and_unknown_kind_of_path_stop_the_command(db, media, tmp_path) -> None:
    with pytest.raises(CommandError, match="No synset n99999999 in this database"):
        run("--synset", "n99999999", str(tmp_path))
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(CommandError, match=r"is not a folder, a \.zip or \.tar"):
        run("--synset", DOG, str(tmp_path / "x.pdf"))
    assert not ImportBatch.objects.exists()


def test_two_worker_processes_give_the_same_result(db, media, dog, shapes, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(images, "POOL_AFTER_SECONDS", 0.0)  # the pool takes over after the first file
    folder = tmp_path / "f"
    folder.mkdir()
    for i, im in enumerate(shapes):
        (folder / f"{i}.jpg").write_bytes(im.jpeg)
    (folder / "bad.jpg").write_bytes(b"nope")
    out = io.StringIO()
    call_command("import_images", "--synset", DOG, str(folder), "--no-progress", "--workers", "2", stdout=out)
    assert out.getvalue().splitlines()[0].endswith(": 8 accepted, 0 duplicate, 0 near-duplicate, 1 rejected.")
    assert ImportItem.objects.get(name="bad.jpg").code == "not_an_image"


def test_an_import_interrupted_by_ctrl_c_is_marked_failed_and_running_it_again_finishes_it(
    db, media, dog, shapes, tmp_path, monkeypatch
) -> None:
    # Given a five-image folder, chunks of two files, and a Ctrl-C while the fifth file is read
    folder = tmp_path / "dogs"
    folder.mkdir()
    for i, im in enumerate(shapes[:5]):
        (folder / f"{i}.jpg").write_bytes(im.jpeg)
    monkeypatch.setattr(images, "CHUNK_SIZE", 2)
    real_files = sources.folder_files

    def interrupted(path, limit):
        for n, incoming in enumerate(real_files(path, limit)):
            if n == 4:
                raise KeyboardInterrupt
            yield incoming

    monkeypatch.setattr(sources, "folder_files", interrupted)

    # When the import runs
    with pytest.raises(KeyboardInterrupt):
        run("--synset", DOG, str(folder))

    # Then the batch says it was interrupted, and the two committed chunks are kept
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.total, batch.accepted, Candidate.objects.count()) == ("failed", 4, 4, 4)
    assert batch.finished is not None
    assert batch.error == (
        "The import was interrupted after 4 files. What was stored is kept; run the same import again to finish "
        "it (those files will be reported as duplicates)."
    )

    # When the same import runs again, uninterrupted
    monkeypatch.setattr(sources, "folder_files", real_files)
    out = run("--synset", DOG, str(folder))

    # Then it finishes the job: the fifth image is stored, the four others are reported as duplicates
    assert out.splitlines()[0].endswith("1 accepted, 4 duplicate, 0 near-duplicate, 0 rejected.")
    assert Candidate.objects.filter(synset=dog).count() == 5
    assert ImportBatch.objects.latest("id").status == "done"


def _ingest_watching_processes(dog, shapes, count: int) -> tuple[ImportBatch, list[int]]:
    """Ingest ``count`` images with two workers; returns the batch and how many child processes started by the
    ingest were alive each time a chunk had been committed."""
    batch = images.import_batch_create(synset=dog, source=ImportBatch.Source.FOLDER)
    incoming = [sources.Incoming(f"{i}.jpg", data=im.jpeg) for i, im in enumerate(shapes[:count])]
    before = set(multiprocessing.active_children())
    alive: list[int] = []
    batch = images.images_ingest(
        batch=batch,
        incoming=incoming,
        workers=2,
        progress=lambda n: alive.append(len(set(multiprocessing.active_children()) - before)),
    )
    return batch, alive


def test_a_small_batch_is_decoded_here_without_starting_processes(db, media, dog, shapes) -> None:
    batch, alive = _ingest_watching_processes(dog, shapes, 4)

    assert alive == [0]  # the batch ended well inside POOL_AFTER_SECONDS: no pool was spawned
    assert items(batch) == [(f"{i}.jpg", "accepted", "") for i in range(4)]


def test_a_long_batch_moves_on_to_worker_processes_and_keeps_the_files_order(
    db, media, dog, shapes, monkeypatch
) -> None:
    monkeypatch.setattr(images, "POOL_AFTER_SECONDS", 0.0)  # "long" from its first file on

    batch, alive = _ingest_watching_processes(dog, shapes, 4)

    assert alive and alive[0] >= 1  # the rest of the batch went to the pool
    assert items(batch) == [(f"{i}.jpg", "accepted", "") for i in range(4)]
    assert Candidate.objects.filter(batch=batch).count() == 4
