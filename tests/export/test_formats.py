"""An export of the demo campaign in every format, read back with the libraries people use."""

from __future__ import annotations

import csv
import hashlib
import json
import tarfile
import tempfile
from pathlib import Path

import pytest
import webdataset as wds
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from pycocotools.coco import COCO

from annotation.models import Candidate, Image
from export import services
from export.files import VersionFolder
from export.formats import webdataset
from export.models import DatasetImage, DatasetLabel
from tests.export.conftest import CIRCLE, TRIANGLE, WNIDS, build, folder_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(campaign, admin, django_capture_on_commit_callbacks):
    return build(admin, campaign, capture=django_capture_on_commit_callbacks)


@pytest.fixture
def folder(version) -> Path:
    return services.version_folder(version)


def image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """torchvision.datasets.ImageFolder's rule, without torch: classes are the sorted sub-folders, samples
    every image file under them with its class index."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    samples = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).iterdir()) if f.suffix == ".JPEG"]
    return classes, samples


def test_imagenet_layout_loads_as_image_folder_with_original_bytes(version, folder) -> None:
    root = folder / "imagenet"
    classes, samples = image_folder(root / "train")
    mapping = [line.split(" ", 1) for line in (root / "LOC_synset_mapping.txt").read_text().splitlines()]
    assert [w for w, _ in mapping] == sorted(WNIDS) == classes
    assert dict(mapping)[CIRCLE] == "circle"
    train = DatasetImage.objects.filter(version=version, split=DatasetImage.Split.TRAIN)
    assert len(samples) == train.count() > 0
    for path, index in samples:
        wnid, image_id = path.stem.split("_")
        assert wnid == classes[index]
        image = Image.objects.get(id=int(image_id))
        with default_storage.open(image.file.name, "rb") as original:
            assert path.read_bytes() == original.read()  # copied, not re-encoded
        with PILImage.open(path) as im:
            assert im.size == (image.width, image.height)


def test_val_and_test_use_ilsvrc_names_and_ground_truth_indices(version, folder) -> None:
    root = folder / "imagenet"
    classes = [line.split(" ")[0] for line in (root / "LOC_synset_mapping.txt").read_text().splitlines()]
    truths = {"val": "ILSVRC2012_validation_ground_truth.txt", "test": "ILSVRC2012_test_ground_truth.txt"}
    for split, truth_name in truths.items():
        files = sorted((root / split).iterdir())
        prefix = "ILSVRC2012_val_" if split == "val" else "ILSVRC2012_test_"
        assert [f.name for f in files] == [f"{prefix}{n:08d}.JPEG" for n in range(1, len(files) + 1)]
        truth = [int(x) for x in (root / truth_name).read_text().split()]
        expected = DatasetImage.objects.filter(version=version, split=["train", "val", "test"].index(split))
        assert len(truth) == len(files) == expected.count() > 0
        wanted = sorted(wnid for wnid in (f"n{s:08d}" for s in expected.values_list("synset_id", flat=True)))
        assert sorted(classes[i - 1] for i in truth) == wanted
        for f in files:
            with PILImage.open(f) as im:
                im.verify()


def test_without_boxes_there_is_no_voc_file_and_no_solution_line(version, folder) -> None:
    """As in ILSVRC, a VOC file and a LOC_*_solution.csv line exist for the images with boxes only (this
    snapshot has none; tests/export/test_boxes.py parses them)."""
    root = folder / "imagenet"
    assert not (root / "Annotations").exists()
    for split in ("train", "val", "test"):
        assert (root / f"LOC_{split}_solution.csv").read_text() == "ImageId,PredictionString\n"


def test_coco_loads_in_pycocotools_with_wnids_supercategories_and_labels(version, folder) -> None:
    seen = 0
    for split in ("train", "val", "test"):
        coco = COCO(str(folder / "coco" / "annotations" / f"instances_{split}.json"))
        cats = coco.loadCats(coco.getCatIds())
        assert sorted(c["wnid"] for c in cats) == sorted(WNIDS)
        by_wnid = {c["wnid"]: c for c in cats}
        assert (by_wnid[CIRCLE]["name"], by_wnid[CIRCLE]["supercategory"]) == ("circle", "ellipse")
        assert by_wnid[CIRCLE]["supercategory_wnid"] == "n13878306"
        images = coco.loadImgs(coco.getImgIds())
        seen += len(images)
        for image in images:
            path = folder / "coco" / split / image["file_name"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == image["sha256"]
            assert {lab["category_id"] for lab in image["labels"]} <= set(coco.getCatIds())
        assert coco.getAnnIds() == []
    assert seen == version.images
    double = DatasetLabel.objects.filter(version=version, synset_id=int(TRIANGLE[1:]), posterior=0.5).get()
    all_images = {}
    for split in ("train", "val", "test"):
        data = json.loads((folder / "coco/annotations" / f"instances_{split}.json").read_text())
        all_images.update({i["id"]: i for i in data["images"]})
    labels = sorted((lab["wnid"], lab["posterior"]) for lab in all_images[double.image_id]["labels"])
    assert labels[1] == (TRIANGLE, 0.5)


def test_webdataset_shards_load_in_the_webdataset_package(campaign, admin, django_capture_on_commit_callbacks) -> None:
    version = build(admin, campaign, options={"formats": ["webdataset"], "shard_max_images": 7},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    root = services.version_folder(version) / "webdataset"
    classes = (root / "classes.txt").read_text().split()
    total = 0
    for split in ("train", "val", "test"):
        shards = sorted(str(p) for p in root.glob(f"{split}-*.tar"))
        dataset = wds.WebDataset(shards, shardshuffle=False).decode("pil").to_tuple("jpg", "json", "cls")
        samples = list(dataset)
        expected = DatasetImage.objects.filter(version=version, split=["train", "val", "test"].index(split))
        assert len(samples) == expected.count()
        assert len(shards) == -(-len(samples) // 7)
        for image, meta, cls in samples:
            assert image.size == (meta["width"], meta["height"])
            assert classes[cls] == meta["label"] == meta["labels"][0]["wnid"]
            assert meta["split"] == split and meta["boxes"] == []
        total += len(samples)
    assert total == version.images


@pytest.mark.parametrize("max_bytes", [1_000_000_000, 40_000])
def test_webdataset_shards_are_the_same_bytes_for_any_number_of_processes(
    campaign, admin, tmp_path, settings, monkeypatch, max_bytes, django_capture_on_commit_callbacks
) -> None:
    """Shards planned here and written by worker processes (local storage) equal those written inline and
    those of the streaming writer (other storage), with the image-count and the byte limits; the manifest
    lists them in order."""
    version = build(admin, campaign, options={"formats": ["webdataset"], "shard_max_images": 7},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    version.options = {**version.options, "shard_max_bytes": max_bytes}  # below the API's minimum: not saved
    monkeypatch.setattr(webdataset, "PARALLEL_MIN_SAMPLES", 1)  # processes even for these tiny shards
    built = {}
    for processes in (0, 2):
        settings.EXPORT_PROCESSES = processes
        services.dataset_files_write(version=version, folder=VersionFolder(tmp_path / f"p{processes}"))
        built[processes] = folder_bytes(tmp_path / f"p{processes}")
    monkeypatch.setattr(services, "_source_path", lambda: None)  # as on non-local storage: the streaming writer
    services.dataset_files_write(version=version, folder=VersionFolder(tmp_path / "streamed"))
    assert built[0] == built[2] == folder_bytes(tmp_path / "streamed")
    order = ("train", "val", "test")
    shards = sorted((n for n in built[0] if n.endswith(".tar")), key=lambda n: (order.index(n[11:].split("-")[0]), n))
    by_count = sum(-(-n // 7) for n in services.selectors.split_counts(version=version).values())
    assert len(shards) > by_count if max_bytes < 1 << 20 else len(shards) == by_count
    manifest = [e["path"] for e in services.manifest_entries(tmp_path / "p2") if e["path"].endswith(".tar")]
    assert manifest == shards  # in write order: train, val, test, each by number
    for name in shards:
        with tarfile.open(tmp_path / "p2" / name) as shard:
            samples = sum(1 for m in shard.getnames() if m.endswith(".json"))
        assert 1 <= samples <= 7
        assert len(built[0][name]) <= max_bytes or samples == 1  # only a single sample may pass the limit


def test_a_shard_writer_failure_fails_the_build_and_leaves_no_spool(
    campaign, admin, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """A worker process that cannot read an original (deleted from storage) fails the build with its error;
    no spool file is left behind."""
    version = build(admin, campaign, options={"formats": ["webdataset"], "shard_max_images": 7},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    monkeypatch.setattr(webdataset, "PARALLEL_MIN_SAMPLES", 1)
    settings.EXPORT_PROCESSES = 2
    missing = Image.objects.get(
        id=DatasetImage.objects.filter(version=version, split=0).order_by("shuffle")[0].image_id
    )
    Path(default_storage.path(missing.file.name)).unlink()
    with pytest.raises(OSError, match="No such file"):
        services.dataset_files_write(version=version, folder=VersionFolder(tmp_path / "out"))
    assert list(spools.iterdir()) == []


@pytest.mark.parametrize("processes", [0, 2])
def test_shard_spools_have_no_name_so_a_killed_build_leaves_none(
    campaign, admin, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks, processes
) -> None:
    """A shard's spool is an unnamed temporary file, handed to the worker process as an open descriptor: a build
    killed midway (nothing of it runs to clean up) leaves nothing in the temporary folder. They were named
    ``synsight-shard-*.spool`` there and stayed for ever, outside the scratch folder the leftovers sweep removes.
    Looked at when each shard is handed over, its spool complete; the shards are still the same bytes."""
    version = build(admin, campaign, options={"formats": ["webdataset"], "shard_max_images": 7},
                    capture=django_capture_on_commit_callbacks)  # fmt: skip
    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    monkeypatch.setattr(webdataset, "PARALLEL_MIN_SAMPLES", 1)
    settings.EXPORT_PROCESSES = processes
    seen = []
    submit = webdataset._ShardPool.submit

    def looking(pool, name, spool, count):
        seen.append(sorted(path.name for path in spools.iterdir()))
        return submit(pool, name, spool, count)

    monkeypatch.setattr(webdataset._ShardPool, "submit", looking)
    services.dataset_files_write(version=version, folder=VersionFolder(tmp_path / "out"))

    assert len(seen) > 3 and all(names == [] for names in seen), seen
    monkeypatch.undo()
    services.dataset_files_write(version=version, folder=VersionFolder(tmp_path / "inline"))
    assert folder_bytes(tmp_path / "out") == folder_bytes(tmp_path / "inline")


def test_votes_and_consensus_with_anonymous_workers(version, folder) -> None:
    votes = list(csv.DictReader((folder / "votes" / "votes.csv").open()))
    assert len(votes) == 60  # 3 workers x 20 accepted candidates; gold answers are on a gold item, not a label
    assert {len(v["worker"]) for v in votes} == {16}
    assert len({v["worker"] for v in votes}) == 3
    assert not {v["worker"] for v in votes} & {"crowd0", "crowd1", "crowd2"}
    consensus = list(csv.DictReader((folder / "votes" / "consensus.csv").open()))
    assert len(consensus) == DatasetLabel.objects.filter(version=version, direct=True).count()
    voted = [row for row in consensus if row["votes"] != "0"]
    assert len(voted) == 20 and all(row["workers"] == "3" for row in voted)
    first = Candidate.objects.get(id=int(voted[0]["candidate_id"]))
    assert float(voted[0]["posterior"]) == first.posterior
    lines = [json.loads(x) for x in (folder / "votes" / "consensus.jsonl").read_text().splitlines()]
    assert [str(x["candidate_id"]) for x in lines] == [row["candidate_id"] for row in consensus]


def test_manifest_lists_every_file_with_size_and_sha256(version, folder) -> None:
    manifest = json.loads((folder / "manifest.json").read_bytes())
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted([f["path"] for f in manifest["files"]] + ["manifest.json"]) == on_disk
    for entry in manifest["files"]:
        data = (folder / entry["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    assert hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest() == version.manifest_sha256
    assert (manifest["file_count"], manifest["total_bytes"]) == (version.file_count, version.total_bytes)


def test_datasheet_counts_precision_crowd_and_pay(version, folder) -> None:
    sheet = json.loads((folder / "datasheet.json").read_text())
    labels = DatasetLabel.objects.filter(version=version, direct=True)
    assert sheet["counts"]["labels"] == labels.count()
    assert sum(sheet["counts"]["images"].values()) == version.images
    circle = next(row for row in sheet["synsets"] if row["wnid"] == CIRCLE)
    posteriors = list(labels.filter(synset_id=int(CIRCLE[1:])).values_list("posterior", flat=True))
    assert circle["precision"]["mean_posterior"] == round(sum(posteriors) / len(posteriors), 4)
    low, high = circle["precision"]["wilson95"]
    assert low < circle["precision"]["mean_posterior"] < high
    assert circle["gold"] == {"answers": 3, "accuracy": 0.6667, "wilson95": [0.2077, 0.9385]}
    assert sheet["crowd"]["workers"] == 3 and sheet["crowd"]["votes"] == 60
    assert sheet["cost"]["total"] == "0.30" and sheet["cost"]["workers_paid"] == 3
    # crowd0 answered 21 items at 1.5 s (gold at 2 s): 0.10 for 33.5 s of answering = 10.75 per hour.
    assert sheet["cost"]["hourly_pay"]["max"] == round(0.10 / ((20 * 1500 + 2000) / 3_600_000), 2)
    markdown = (folder / "datasheet.md").read_text()
    assert "## Known limitations" in markdown and "No bounding boxes: no label had final boxes" in markdown
    assert f"| {CIRCLE} | circle |" in markdown
