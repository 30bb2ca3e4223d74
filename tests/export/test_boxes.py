"""Boxes of the box pipeline in the snapshot (DatasetBox) and in every format, read back with the libraries
people use: pycocotools for COCO, an XML parser for VOC, the Kaggle LOC_*_solution.csv grammar, the
webdataset package for shards. Only final boxes (accepted, job done or unresolved) are frozen."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import pytest
import webdataset as wds
from PIL import Image as PILImage
from pycocotools.coco import COCO

from annotation.models import Box, BoxJob, Candidate
from export import services
from export.files import VersionFolder
from export.models import DatasetBox, DatasetImage, DatasetLabel
from tests.export.conftest import CIRCLE, build, folder_bytes

pytestmark = pytest.mark.django_db
SPLITS = ("train", "val", "test")


def _job(campaign, candidate: Candidate, state: str) -> BoxJob:
    return BoxJob.objects.create(candidate=candidate, campaign=campaign, synset_id=candidate.synset_id, state=state)


def _box(job: BoxJob, coords: tuple[int, int, int, int], state: str = "accepted", **extra) -> Box:
    x1, y1, x2, y2 = coords
    return Box.objects.create(job=job, candidate=job.candidate, x1=x1, y1=y1, x2=x2, y2=y2, state=state,
                              posterior=0.97, **extra)  # fmt: skip


@pytest.fixture
def boxed(campaign) -> dict[int, list[tuple[str, int, int, int, int]]]:
    """Box jobs on twelve accepted candidates (spread over every synset): done (two accepted boxes, plus a
    rejected one and a merged member), unresolved (one accepted box) or still in coverage (one accepted box,
    not final). Returns the boxes the export must carry, by image id: (wnid, x1, y1, x2, y2)."""
    campaign.boxes_enabled = True
    campaign.save(update_fields=["boxes_enabled"])
    accepted = list(Candidate.objects.filter(state="accepted").select_related("image").order_by("synset_id", "id"))
    chosen = accepted[::3][:12]
    expected: dict[int, list[tuple[str, int, int, int, int]]] = {}
    for n, candidate in enumerate(chosen):
        w, h = candidate.image.width, candidate.image.height
        wnid = f"n{candidate.synset_id:08d}"
        state = ("done", "unresolved", "coverage")[n % 3]
        job = _job(campaign, candidate, state)
        first = _box(job, (1, 2, w // 2, h // 2))
        if state == "done":
            second = _box(job, (w // 2, h // 3, w, h))
            _box(job, (0, 0, 5, 5), state="rejected")
            _box(job, (w // 2 + 1, h // 3, w, h), state="merged", merged_into=second)
            boxes = [first, second]
        else:
            boxes = [first]
        if state != "coverage":
            expected.setdefault(candidate.image_id, []).extend((wnid, *b.coords) for b in boxes)
    for value in expected.values():
        value.sort()
    return expected


def _stems(version) -> dict[int, tuple[str, str, str]]:
    """Image id -> (split, ImageNet stem, sub-folder) as the ImageNet writer names them."""
    names = {}
    for index, split in enumerate(SPLITS):
        rows = DatasetImage.objects.filter(version=version, split=index)
        if split == "train":
            for image_id, synset_id in rows.values_list("image_id", "synset_id"):
                wnid = f"n{synset_id:08d}"
                names[image_id] = (split, f"{wnid}_{image_id}", f"{wnid}/")
        else:
            prefix = "ILSVRC2012_val_" if split == "val" else "ILSVRC2012_test_"
            ordered = rows.order_by("shuffle", "image_id").values_list("image_id", flat=True)
            names.update({image_id: (split, f"{prefix}{n:08d}", "") for n, image_id in enumerate(ordered, 1)})
    return names


def test_snapshot_freezes_final_accepted_boxes_only(campaign, boxed, admin, django_capture_on_commit_callbacks) -> None:
    version = build(admin, campaign, options={"formats": ["votes"]},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    rows = DatasetBox.objects.filter(version=version)
    assert version.boxes == rows.count() == sum(len(v) for v in boxed.values()) == 12
    frozen = {}
    for image_id, synset_id, *coords in rows.values_list("image_id", "synset_id", "x1", "y1", "x2", "y2"):
        frozen.setdefault(image_id, []).append((f"n{synset_id:08d}", *coords))
    assert {k: sorted(v) for k, v in frozen.items()} == boxed
    assert rows.filter(covered=False).count() == 4  # the unresolved jobs' boxes
    assert not Box.objects.filter(state__in=["rejected", "merged"], id__in=rows.values("box_id")).exists()
    # Boxes accepted after the snapshot, and state changes, do not reach a version that exists.
    Box.objects.filter(state="accepted").update(state="rejected")
    assert DatasetBox.objects.filter(version=version).count() == 12


def test_every_format_carries_the_boxes(campaign, boxed, admin, django_capture_on_commit_callbacks) -> None:
    version = build(admin, campaign, capture=django_capture_on_commit_callbacks)
    root = services.version_folder(version)
    names = _stems(version)

    # ImageNet: LOC_*_solution.csv lists exactly the boxed images, "wnid xmin ymin xmax ymax" groups.
    solutions = {}
    for split in SPLITS:
        with (root / f"imagenet/LOC_{split}_solution.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            groups = row["PredictionString"].split()
            assert len(groups) % 5 == 0
            boxes = [(groups[i], *map(int, groups[i + 1 : i + 5])) for i in range(0, len(groups), 5)]
            solutions[(split, row["ImageId"])] = sorted(boxes)
    # Both in VOC's convention: 1-based inclusive pixels, so [x1, x2) becomes xmin = x1 + 1, xmax = x2.
    voc = {i: sorted((w, x1 + 1, y1 + 1, x2, y2) for w, x1, y1, x2, y2 in boxes) for i, boxes in boxed.items()}
    assert solutions == {(names[i][0], names[i][1]): boxes for i, boxes in voc.items()}

    # VOC: one <object><bndbox> per box; a file for each image with boxes, none for the others (as ILSVRC).
    for image_id, (split, stem, subfolder) in names.items():
        path = root / f"imagenet/Annotations/{split}/{subfolder}{stem}.xml"
        assert path.exists() == (image_id in boxed)
        if not path.exists():
            continue
        xml = ET.parse(path).getroot()
        assert xml.findtext("filename") == stem
        width, height = int(xml.findtext("size/width")), int(xml.findtext("size/height"))
        objects = sorted(
            (o.findtext("name"), *(int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")))
            for o in xml.iter("object")
        )
        assert objects == voc[image_id]
        assert all(1 <= x1 <= x2 <= width and 1 <= y1 <= y2 <= height for _, x1, y1, x2, y2 in objects)

    # COCO: pycocotools loads the annotations, [x, y, w, h] with area, category = the box's synset.
    seen: dict[int, list] = {}
    for split in SPLITS:
        coco = COCO(str(root / f"coco/annotations/instances_{split}.json"))
        for ann in coco.loadAnns(coco.getAnnIds()):
            x, y, w, h = ann["bbox"]
            assert ann["area"] == w * h and ann["iscrowd"] == 0
            wnid = coco.loadCats(ann["category_id"])[0]["wnid"]
            seen.setdefault(ann["image_id"], []).append((wnid, x, y, x + w, y + h))
            assert coco.imgs[ann["image_id"]]["id"] == ann["image_id"]
        ids = coco.getAnnIds()
        assert ids == list(range(1, len(ids) + 1))
    assert {k: sorted(v) for k, v in seen.items()} == boxed

    # WebDataset: the JSON of each sample, read by the webdataset package.
    seen = {}
    for split in SPLITS:
        shards = sorted(str(p) for p in (root / "webdataset").glob(f"{split}-*.tar"))
        for meta in wds.WebDataset(shards, shardshuffle=False).decode().to_tuple("json"):
            (meta,) = meta
            if meta["boxes"]:
                seen[meta["image_id"]] = sorted(tuple(b) for b in meta["boxes"])
    assert seen == boxed

    sheet = json.loads((root / "datasheet.json").read_text())
    assert sheet["counts"]["boxes"] == 12
    assert sum(row["boxes"]["images_not_covered"] for row in sheet["synsets"]) == 4
    assert "ran out of rounds" in (root / "datasheet.md").read_text()


def test_rebuild_with_boxes_is_byte_identical(
    campaign, boxed, admin, tmp_path, django_capture_on_commit_callbacks
) -> None:
    version = build(admin, campaign, options={"formats": ["imagenet", "coco", "webdataset"]},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    before = folder_bytes(services.version_folder(version))
    # The pipeline moves on: boxes rejected, new ones accepted. The version's files do not change.
    Box.objects.filter(state="accepted").update(state="rejected")
    job = BoxJob.objects.filter(state="coverage").first()
    BoxJob.objects.filter(id=job.id).update(state="done")
    rebuilt = tmp_path / "rebuilt"
    services.dataset_files_write(version=version, folder=VersionFolder(rebuilt))
    assert folder_bytes(rebuilt) == before


def _parse_voc_xml(node: ET.Element) -> dict:
    """torchvision's VOCDetection.parse_voc_xml: the element tree as nested dicts, objects as a list."""
    children = list(node)
    if not children:
        return {node.tag: node.text}
    grouped: dict[str, list] = {}
    for child in map(_parse_voc_xml, children):
        for key, value in child.items():
            grouped.setdefault(key, []).append(value)
    return {node.tag: {k: v if k == "object" else v[0] for k, v in grouped.items()}}


def test_voc_layout_loads_like_torchvision_and_lists_every_label(
    campaign, boxed, admin, django_capture_on_commit_callbacks
) -> None:
    version = build(admin, campaign, options={"formats": ["voc"]}, capture=django_capture_on_commit_callbacks)
    root = services.version_folder(version) / "voc"
    main = root / "ImageSets/Main"
    labels = {}
    for image_id, synset_id in DatasetLabel.objects.filter(version=version).values_list("image_id", "synset_id"):
        labels.setdefault(image_id, set()).add(f"n{synset_id:08d}")
    splits = dict(DatasetImage.objects.filter(version=version).values_list("image_id", "split"))
    classes = sorted({w for ws in labels.values() for w in ws})
    lines = [line.split(" ", 1) for line in (root / "labels.txt").read_text().splitlines()]
    assert [w for w, _ in lines] == classes and dict(lines)[CIRCLE] == "circle"
    seen = {}
    for index, split in enumerate(SPLITS):
        ids = (main / f"{split}.txt").read_text().split()
        assert ids == sorted(f"{i:012d}" for i, s in splits.items() if s == index) and ids
        for image_id in ids:  # what VOCDetection does for each index
            target = _parse_voc_xml(ET.parse(root / "Annotations" / f"{image_id}.xml").getroot())["annotation"]
            with PILImage.open(root / "JPEGImages" / f"{image_id}.jpg") as im:
                im.load()
                assert im.format == "JPEG"
                assert im.size == (int(target["size"]["width"]), int(target["size"]["height"]))
            assert target["filename"] == f"{image_id}.jpg" and target["segmented"] == "0"
            assert target["size"]["depth"] == "3" and target["source"]["database"] == "Synsight"
            objects = target.get("object", [])
            assert all(o["pose"] == "Unspecified" and o["truncated"] == o["difficult"] == "0" for o in objects)
            boxes = sorted(
                (o["name"], *(int(o["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax"))) for o in objects
            )
            if boxes:
                seen[int(image_id)] = boxes
        # VOC's classification lists: every id of the split once per class, 1 where the image has the label.
        for wnid in classes:
            rows = [line.split() for line in (main / f"{wnid}_{split}.txt").read_text().splitlines()]
            assert [r[0] for r in rows] == ids
            assert {r[0]: r[1] for r in rows} == {i: "1" if wnid in labels[int(i)] else "-1" for i in ids}
    # Objects only where boxes exist, in VOC's 1-based inclusive pixels.
    assert seen == {i: sorted((w, x1 + 1, y1 + 1, x2, y2) for w, x1, y1, x2, y2 in b) for i, b in boxed.items()}
    # An image labelled but not boxed is still found through the class lists.
    unboxed = next(i for i in labels if i not in boxed)
    split = SPLITS[splits[unboxed]]
    wnid = sorted(labels[unboxed])[0]
    assert f"{unboxed:012d}  1" in (main / f"{wnid}_{split}.txt").read_text().splitlines()
    assert (main / "trainval.txt").read_text().split() == sorted(
        (main / "train.txt").read_text().split() + (main / "val.txt").read_text().split()
    )
