"""Originals with a rotating EXIF orientation: exported upright in every format, so that the pixels of each
file are in the frame its declared width, height and boxes use (loaders that ignore EXIF read it right);
the others stay byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from PIL import ImageOps

from annotation import imaging
from annotation.models import Box, BoxJob, Candidate, Image
from annotation.services.images import storage_names
from export import services
from export.files import VersionFolder, manifest_entries
from tests.export.conftest import CIRCLE, build, folder_bytes

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _rotated_jpeg(orientation: int = 6) -> bytes:
    """Stored 400x200, left half red, right half blue, EXIF orientation 6 (turn 90° clockwise to show):
    shown 200x400, red on top."""
    stored = PILImage.new("RGB", (400, 200), BLUE)
    stored.paste(RED, (0, 0, 200, 200))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Synsight test camera"  # Make: kept in the upright copy
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.django_db
def test_a_rotated_original_is_exported_upright_and_the_rest_byte_for_byte(
    campaign, admin, tmp_path, django_capture_on_commit_callbacks
) -> None:
    data = _rotated_jpeg()
    processed = imaging.process(data)
    assert (processed.width, processed.height) == (200, 400)  # the displayed size, as the app stores it
    original, thumbnail, medium = storage_names(processed.sha256, processed.ext)
    default_storage.save(original, io.BytesIO(data))
    image = Image.objects.create(
        sha256=processed.sha256, file=original, thumbnail=thumbnail, medium=medium, format="JPEG",
        width=processed.width, height=processed.height, byte_size=len(data), phash=processed.phash,
    )  # fmt: skip
    candidate = Candidate.objects.create(
        image=image, synset_id=int(CIRCLE[1:]), state="accepted", posterior=0.95, model_version="ds-1/em"
    )
    job = BoxJob.objects.create(candidate=candidate, campaign=campaign, synset_id=candidate.synset_id, state="done")
    Box.objects.create(job=job, candidate=candidate, x1=10, y1=250, x2=190, y2=390, state="accepted", posterior=0.9)
    campaign.boxes_enabled = True
    campaign.save(update_fields=["boxes_enabled"])

    version = build(admin, campaign, options={"formats": ["imagenet", "coco", "voc", "webdataset"],
                                              "split": {"train": 1.0}},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    root = services.version_folder(version)
    key = f"{image.id:012d}"
    files = {
        "imagenet": (root / f"imagenet/train/{CIRCLE}/{CIRCLE}_{image.id}.JPEG").read_bytes(),
        "coco": (root / f"coco/train/{key}.jpg").read_bytes(),
        "voc": (root / f"voc/JPEGImages/{key}.jpg").read_bytes(),
    }
    with tarfile.open(root / "webdataset/train-000000.tar") as shard:
        files["webdataset"] = shard.extractfile(f"{key}.jpg").read()
        meta = json.loads(shard.extractfile(f"{key}.json").read())
    assert (meta["width"], meta["height"], meta["boxes"]) == (200, 400, [[CIRCLE, 10, 250, 190, 390]])
    for name, written in files.items():
        with PILImage.open(io.BytesIO(written)) as im:  # as a loader that ignores EXIF reads it
            assert (im.format, im.size) == ("JPEG", (200, 400)), name
            exif = im.getexif()
            assert 0x0112 not in exif and exif[0x010F] == "Synsight test camera", name
            rgb = im.convert("RGB")
            assert all(abs(a - b) < 12 for a, b in zip(rgb.getpixel((100, 100)), RED, strict=True)), name
            assert all(abs(a - b) < 12 for a, b in zip(rgb.getpixel((100, 300)), BLUE, strict=True)), name
        assert written != data  # re-encoded, not the stored bytes
    with PILImage.open(io.BytesIO(data)) as im:  # what the app shows: the same picture
        assert ImageOps.exif_transpose(im).size == (200, 400)

    coco = json.loads((root / "coco/annotations/instances_train.json").read_text())
    entry = next(i for i in coco["images"] if i["id"] == image.id)
    assert (entry["width"], entry["height"]) == (200, 400)
    (ann,) = [a for a in coco["annotations"] if a["image_id"] == image.id]
    assert ann["bbox"] == [10, 250, 180, 140]
    xml = (root / f"voc/Annotations/{key}.xml").read_text()
    assert "<width>200</width>" in xml and "<xmin>11</xmin>" in xml and "<ymax>390</ymax>" in xml

    # The manifest states the bytes written; every other original is still the stored file, byte for byte.
    manifest = {e["path"]: e["sha256"] for e in manifest_entries(root / "manifest.json")}
    assert manifest[f"coco/train/{key}.jpg"] == hashlib.sha256(files["coco"]).hexdigest()
    others = [i for i in coco["images"] if i["id"] != image.id]
    for other in others:
        stored = Image.objects.get(id=other["id"])
        assert (root / "coco/train" / other["file_name"]).read_bytes() == default_storage.open(stored.file.name).read()
    assert others

    # The same snapshot gives the same bytes.
    rebuilt = tmp_path / "rebuilt"
    services.dataset_files_write(version=version, folder=VersionFolder(rebuilt))
    assert folder_bytes(rebuilt) == folder_bytes(root)
