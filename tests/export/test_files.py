"""Path safety of the version folder, deterministic tar headers, and the writers' handling of boxes and of
the resize policy (boxes fed straight to the writers here; tests/export/test_boxes.py freezes real ones)."""

from __future__ import annotations

import io
import json
import marshal
import math
import os
import tarfile
import xml.etree.ElementTree as ET

import pytest
from PIL import Image as PILImage
from pycocotools.coco import COCO

from annotation.models import Image
from export import selectors, services
from export.files import (
    TarStream,
    UnsafePath,
    VersionFolder,
    _spool_pieces,
    _tarfile_header,
    json_line,
    safe_relative,
    spool_write,
    tar_chunks,
    tar_header,
    tar_member_bytes,
)
from export.formats import webdataset
from export.formats.base import SPLITS, Box, Item, Label
from export.formats.voc import voc_box
from export.models import DatasetImage
from tests.export.conftest import build, folder_bytes


@pytest.mark.parametrize(
    "name",
    ["../escape.txt", "/etc/passwd", "a/../../b", "a//b", "", ".", "a/./b", "a\\b", "a\x00b", "~/x", "a b", "ü.txt"],
)
def test_unsafe_names_are_refused(tmp_path, name) -> None:
    folder = VersionFolder(tmp_path / "version")
    with pytest.raises(UnsafePath):
        folder.write_bytes(name, b"x")
    with pytest.raises(UnsafePath):
        safe_relative(name)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["version"]


def test_a_symlink_out_of_the_folder_is_refused(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = VersionFolder(tmp_path / "version")
    (folder.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath):
        folder.write_bytes("link/evil.txt", b"x")
    (folder.root / "file").symlink_to(outside / "target")
    with pytest.raises(UnsafePath):
        folder.write_bytes("file", b"x")
    assert list(outside.iterdir()) == []
    with pytest.raises(UnsafePath):
        list(tar_chunks(folder.root, [("link/../../outside", 1)], 0))


def test_a_name_is_written_once(tmp_path) -> None:
    folder = VersionFolder(tmp_path / "v")
    folder.write_bytes("a/b.txt", b"one")
    with pytest.raises(FileExistsError):
        folder.write_bytes("a/b.txt", b"two")
    assert [(r.path, r.size) for r in folder.records()] == [("a/b.txt", 3)]


def test_tar_members_have_fixed_headers_and_stream(tmp_path) -> None:
    out = io.BytesIO()
    tar = TarStream(out, mtime=1_700_000_000)
    tar.add_bytes("x.json", b"{}")
    tar.add_stream("y.jpg", io.BytesIO(b"\xff" * 1000), 1000)
    tar.close()
    again = io.BytesIO()
    tar = TarStream(again, mtime=1_700_000_000)
    tar.add_bytes("x.json", b"{}")
    tar.add_stream("y.jpg", io.BytesIO(b"\xff" * 1000), 1000)
    tar.close()
    assert out.getvalue() == again.getvalue()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as reader:
        assert [(m.name, m.size, m.mtime, m.uid, m.uname, m.mode) for m in reader] == [
            ("x.json", 2, 1_700_000_000, 0, "", 0o644),
            ("y.jpg", 1000, 1_700_000_000, 0, "", 0o644),
        ]
    with pytest.raises(OSError, match="expected 5"):
        TarStream(io.BytesIO(), 0).add_stream("z", io.BytesIO(b"abc"), 5)


def _split_images(version, split, order):
    """A split's DatasetImage rows in its item order: what selectors.version_boxes yields boxes in."""
    return DatasetImage.objects.filter(version=version, split=SPLITS.index(split)).order_by(
        selectors.ITEM_ORDER[order], "image_id"
    )


@pytest.mark.django_db
def test_boxes_reach_voc_loc_csv_coco_and_webdataset(
    campaign, admin, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    def boxes(*, version, split, order):
        rows = _split_images(version, split, order).values_list("image_id", "synset_id")
        return ((i, [Box(f"n{s:08d}", 10, 20, 110, 70), Box(f"n{s:08d}", 0, 0, 5, 5)]) for i, s in rows)

    monkeypatch.setattr(selectors, "version_boxes", boxes)
    version = build(admin, campaign, capture=django_capture_on_commit_callbacks)
    root = services.version_folder(version)
    val = (root / "imagenet/LOC_val_solution.csv").read_text().splitlines()
    assert val[0] == "ImageId,PredictionString"
    stem, groups = val[1].split(",")
    assert stem == "ILSVRC2012_val_00000001"
    wnid = groups.split()[0]
    assert groups == f"{wnid} 11 21 110 70 {wnid} 1 1 5 5"  # VOC's 1-based inclusive pixels, as the XML
    xml = ET.parse(root / "imagenet/Annotations/val/ILSVRC2012_val_00000001.xml").getroot()
    assert [(o.findtext("name"), o.findtext("bndbox/xmin"), o.findtext("bndbox/ymax")) for o in xml.iter("object")] == [
        (wnid, "11", "70"),
        (wnid, "1", "5"),
    ]
    coco = COCO(str(root / "coco/annotations/instances_train.json"))
    image_id = coco.getImgIds()[0]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    assert [(a["bbox"], a["area"]) for a in anns] == [([10, 20, 100, 50], 5000), ([0, 0, 5, 5], 25)]
    assert (
        coco.loadCats(anns[0]["category_id"])[0]["wnid"]
        == f"n{DatasetImage.objects.get(version=version, image_id=image_id).synset_id:08d}"
    )
    with tarfile.open(root / "webdataset/train-000000.tar") as shard:
        meta = json.loads(shard.extractfile(next(m for m in shard if m.name.endswith(".json"))).read())
    assert meta["boxes"][0][1:] == [10, 20, 110, 70]


@pytest.mark.django_db
def test_resized_policy_reencodes_once_and_scales_boxes(
    campaign, admin, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(
        selectors,
        "version_boxes",
        lambda *, version, split, order: (
            (i, [Box("n13873502", 0, 0, 256, 128)])
            for i in _split_images(version, split, order).values_list("image_id", flat=True)
        ),
    )
    version = build(admin, campaign, options={"image_size": {"policy": "resized", "max_side": 128},
                                              "formats": ["imagenet", "coco"]},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    root = services.version_folder(version)
    coco = json.loads((root / "coco/annotations/instances_train.json").read_text())
    for image, ann in zip(coco["images"], coco["annotations"], strict=True):
        assert max(image["width"], image["height"]) == 128
        assert image["file_name"].endswith(".jpg")
        with PILImage.open(root / "coco/train" / image["file_name"]) as im:
            assert im.size == (image["width"], image["height"]) and im.format == "JPEG"
        original = Image.objects.get(id=image["id"])
        assert max(original.width, original.height) > 128
        sx, sy = image["width"] / original.width, image["height"] / original.height
        assert ann["bbox"] == [0, 0, round(256 * sx, 2), round(128 * sy, 2)]


@pytest.mark.parametrize(
    ("name", "size", "mtime"),
    [("a.jpg", 0, 0), ("000000000123.json", 12345, 1_700_000_000), ("x" * 100, 5, 1), ("x" * 101, 5, 1),
     ("ü.txt", 3, 3), ("train/n01440764/n01440764_1.JPEG", 2**33 - 1, 123)],
)  # fmt: skip
def test_fast_tar_header_equals_tarfiles_own(name, size, mtime) -> None:
    assert tar_header(name, size, mtime) == _tarfile_header(name, size, mtime)


@pytest.mark.parametrize(
    ("labels", "boxes"),
    [
        ((), ()),
        ((Label("n13873502", 0.9731, "ds-1/em", 5, True), Label("n13878306", None, "", None, False)), ()),
        ((Label("n1", 1.0, 'quote " back\\slash \u00e9 \n', 1, True),), (Box("n1", 0, 0, 5, 5),)),
        ((Label("n1", 1e-7, "x", 1, True),), (Box("n1", 1.5, 2.25, 100.0, 7.123456789), Box("n2", 3, 4, 5, 6))),
    ],
)
def test_webdataset_sample_json_equals_the_canonical_json(labels, boxes) -> None:
    item = Item(image_id=12, file="x.jpg", format="JPEG", width=160, height=120, sha256="ab" * 32, byte_size=3,
                split="val", wnid="n13873502", labels=labels, boxes=boxes)  # fmt: skip
    fast = webdataset.sample_json(item, "val", 3, boxes, 160, 120)
    assert fast == json_line(webdataset.sample_meta(item, "val", 3, boxes, 160, 120))
    with pytest.raises(ValueError):
        webdataset.sample_json(item, "val", 3, (Box("n1", float("nan"), 0, 1, 1),), 160, 120)


@pytest.mark.parametrize("link", [True, False])
def test_an_original_is_placed_unchanged_linked_or_copied(tmp_path, link) -> None:
    source = tmp_path / "media" / "ab" / "original.jpg"
    source.parent.mkdir(parents=True)
    data = bytes(range(256)) * 50
    source.write_bytes(data)
    folder = VersionFolder(tmp_path / "version")
    folder.add_original("train/n1/n1_1.JPEG", str(source), len(data), "f" * 64, link=link)
    out = folder.root / "train/n1/n1_1.JPEG"
    assert out.read_bytes() == data
    assert (os.stat(out).st_ino == os.stat(source).st_ino) == link  # a hard link shares the inode
    assert [(r.path, r.size, r.sha256) for r in folder.records()] == [("train/n1/n1_1.JPEG", len(data), "f" * 64)]
    with pytest.raises(FileExistsError):  # never overwritten
        folder.add_original("train/n1/n1_1.JPEG", str(source), len(data), "f" * 64, link=link)
    with pytest.raises(OSError, match="recorded as"):  # a stored file that is not what the database says
        folder.add_original("train/n1/n1_2.JPEG", str(source), len(data) - 1, "f" * 64, link=link)
    with pytest.raises(UnsafePath):
        folder.add_original("../n1_3.JPEG", str(source), len(data), "f" * 64, link=link)
    (folder.root / "evil.JPEG").symlink_to(tmp_path / "elsewhere.JPEG")
    with pytest.raises(UnsafePath):
        folder.add_original("evil.JPEG", str(source), len(data), "f" * 64, link=link)
    assert not (tmp_path / "elsewhere.JPEG").exists()


def test_parallel_io_writes_the_same_files_and_manifest_and_raises_failures(tmp_path) -> None:
    source = tmp_path / "original.jpg"
    source.write_bytes(b"\xff\xd8" + b"x" * 3000)

    def fill(folder: VersionFolder) -> None:
        for i in range(300):
            folder.add_original(f"train/n{i % 7}/n{i % 7}_{i}.JPEG", str(source), 3002, f"{i:064x}", link=i % 2 == 0)
            folder.write_bytes(f"Annotations/n{i % 7}/n{i % 7}_{i}.xml", f"<a>{i}</a>\n".encode())
        folder.write_manifest()

    inline = VersionFolder(tmp_path / "inline")
    fill(inline)
    threaded = VersionFolder(tmp_path / "threaded")
    with threaded.parallel(4):
        fill(threaded)
    assert folder_bytes(threaded.root) == folder_bytes(inline.root)
    assert len(folder_bytes(inline.root)) == 601

    broken = VersionFolder(tmp_path / "broken")
    with pytest.raises(OSError, match="recorded as"), broken.parallel(2):
        broken.add_original("a.JPEG", str(source), 10, "0" * 64)
    assert not (broken.root / "a.JPEG").exists()


def test_a_shard_spool_is_read_back_and_a_foreign_one_refused(tmp_path) -> None:
    """Pieces written by spool_write come back whole; a file that is not a spool (here: the pieces without
    their length, as marshal.dump wrote them) or a truncated spool is refused with OSError, not read as a
    length of gigabytes."""
    samples = [("000000000001", "jpg", b"3", b"{}\n", None, 3, b"abc")]
    spool = tmp_path / "good.spool"
    with open(spool, "wb") as out:
        spool_write(out, samples)
        spool_write(out, samples * 2)
    with open(spool, "rb") as pieces:
        assert list(_spool_pieces(pieces)) == [samples, samples * 2]
    foreign = tmp_path / "foreign.spool"
    foreign.write_bytes(marshal.dumps(samples) * 3)
    truncated = tmp_path / "truncated.spool"
    truncated.write_bytes(spool.read_bytes()[:-1])
    for path in (foreign, truncated):
        with open(path, "rb") as pieces, pytest.raises(OSError, match="Not a shard spool"):
            list(_spool_pieces(pieces))


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((0, 0, 10, 10), (1, 1, 10, 10)),  # the pixels 0..9: VOC's 1..10
        ((10, 20, 110, 70), (11, 21, 110, 70)),
        ((0, 0, 160, 120), (1, 1, 160, 120)),  # the whole image
        ((15.23, 4.5, 40.49, 9.51), (16, 6, 40, 10)),  # scaled corners: the nearest pixel edge, halves up
        ((159.8, 119.9, 160.0, 120.0), (160, 120, 160, 120)),  # rounds to nothing: still one pixel, inside
        ((-2, -1, 170, 130), (1, 1, 160, 120)),  # clamped to the image
    ],
)
def test_voc_box_is_whole_1_based_inclusive_pixels_inside_the_image(box, expected) -> None:
    assert voc_box(Box("n13873502", *box), 160, 120) == expected
    assert all(type(v) is int for v in voc_box(Box("n13873502", *box), 160, 120))


@pytest.mark.django_db
def test_resized_boxes_are_whole_pixels_in_voc_and_loc_and_fractional_in_coco(
    campaign, admin, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    sizes = {i: (w, h) for i, w, h in Image.objects.values_list("id", "width", "height")}

    def boxes(*, version, split, order):
        for image_id, synset_id in _split_images(version, split, order).values_list("image_id", "synset_id"):
            w, h = sizes[image_id]
            yield image_id, [Box(f"n{synset_id:08d}", 3, 7, w - 5, h - 1), Box(f"n{synset_id:08d}", 0, 0, w, h)]

    monkeypatch.setattr(selectors, "version_boxes", boxes)
    version = build(admin, campaign, options={"image_size": {"policy": "resized", "max_side": 100},
                                              "formats": ["imagenet", "coco"]},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    root = services.version_folder(version)
    stems = {}
    for xml_path in sorted((root / "imagenet/Annotations").rglob("*.xml")):
        xml = ET.parse(xml_path).getroot()
        width, height = int(xml.findtext("size/width")), int(xml.findtext("size/height"))
        image_id = int(xml.findtext("filename").rsplit("_", 1)[1]) if "train" in xml_path.parts else None
        objects = [tuple(int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
                   for o in xml.iter("object")]  # fmt: skip
        assert objects[1] == (1, 1, width, height)  # the whole image stays the whole image
        assert all(1 <= x1 <= x2 <= width and 1 <= y1 <= y2 <= height for x1, y1, x2, y2 in objects)
        if image_id is not None:
            w, h = sizes[image_id]
            sx, sy = width / w, height / h
            assert objects[0] == (math.floor(3 * sx + 0.5) + 1, math.floor(7 * sy + 0.5) + 1,
                                  math.floor((w - 5) * sx + 0.5), math.floor((h - 1) * sy + 0.5))  # fmt: skip
        stems[xml.findtext("filename")] = [n for box in objects for n in box]
    assert stems
    rows = {}
    for split in SPLITS:
        for line in (root / f"imagenet/LOC_{split}_solution.csv").read_text().splitlines()[1:]:
            stem, groups = line.split(",")
            numbers = groups.split()
            rows[stem] = [int(numbers[i]) for i in range(len(numbers)) if i % 5]  # int() of every coordinate
    assert rows == stems  # the CSV repeats the XML's numbers
    for split in SPLITS:
        coco = json.loads((root / f"coco/annotations/instances_{split}.json").read_text())
        images = {i["id"]: i for i in coco["images"]}
        for first, whole in zip(coco["annotations"][::2], coco["annotations"][1::2], strict=True):
            image = images[first["image_id"]]
            assert whole["bbox"] == [0, 0, image["width"], image["height"]]
            x, y, bw, bh = first["bbox"]
            sx = image["width"] / sizes[image["id"]][0]
            assert x == round(3 * sx, 2) and bw == round(round((sizes[image["id"]][0] - 5) * sx, 2) - x, 2)
            assert x + bw <= image["width"] and y + bh <= image["height"]
            assert first["area"] == round(bw * bh, 2)


def test_voc_is_exported_on_request_only() -> None:
    assert services.options_normalise({})["formats"] == ["imagenet", "coco", "webdataset", "votes"]
    assert services.options_normalise({"formats": ["voc", "coco"]})["formats"] == ["coco", "voc"]


def test_a_ranged_tar_stream_is_the_whole_streams_slice_long_names_included(tmp_path) -> None:
    """files.tar_chunks's start/stop against the whole stream, at every offset of a small archive whose second
    member has a name longer than a ustar header holds (a PAX header: more than one block), and the length
    tar_member_bytes gives for it."""
    folder = VersionFolder(tmp_path / "v")
    long_name = "a" * 70 + "/" + "b" * 70 + ".txt"
    members = [("x.txt", 700), (long_name, 5), ("manifest.json", 1024)]
    for name, size in members:
        folder.write_bytes(name, bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    whole = b"".join(tar_chunks(folder.root, members, 1_700_000_000, prefix="dataset-9/"))

    assert len(whole) == 1024 + sum(tar_member_bytes(s, "dataset-9/" + n, 1_700_000_000) for n, s in members)
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        assert [m.name for m in tar.getmembers()] == ["dataset-9/" + n for n, _ in members]
        assert tar.getmembers()[1].offset_data - tar.getmembers()[1].offset > tarfile.BLOCKSIZE
    for start in range(0, len(whole) + 1, 7):
        for stop in (None, start + 1, start + 600):
            part = b"".join(
                tar_chunks(folder.root, members, 1_700_000_000, prefix="dataset-9/", start=start, stop=stop)
            )
            assert part == whole[start:stop], (start, stop)
