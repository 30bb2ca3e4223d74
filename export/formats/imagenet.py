"""ImageNet (ILSVRC CLS-LOC) layout, as torchvision's ImageFolder and the Kaggle ImageNet files expect:

    imagenet/LOC_synset_mapping.txt            "n01440764 tench, Tinca tinca", one class per line, by wnid
    imagenet/train/<wnid>/<wnid>_<image id>.JPEG
    imagenet/val/ILSVRC2012_val_00000001.JPEG  numbered 1..N in the version's seeded shuffle order
    imagenet/test/ILSVRC2012_test_00000001.JPEG
    imagenet/ILSVRC2012_validation_ground_truth.txt   one 1-based index into LOC_synset_mapping.txt per line
    imagenet/ILSVRC2012_test_ground_truth.txt
    imagenet/LOC_train_solution.csv, LOC_val_solution.csv, LOC_test_solution.csv
                                               "ImageId,PredictionString", groups "wnid xmin ymin xmax ymax"
    imagenet/Annotations/<split>/[<wnid>/]<image name>.xml   PASCAL VOC, one per image with boxes

Box numbers in the VOC files and the LOC_*_solution.csv rows are the same: whole pixels, 1-based and
inclusive as in the VOC devkit (export/formats/voc.py; a box over the pixels 0..9 is ``1 … 10``), on the image
as written (scaled and rounded under a resize policy).

Each image appears once, under its primary synset (ImageFolder is single-label); the other labels are in the
COCO and WebDataset exports. LOC_*_solution.csv list the images that have boxes (as ImageNet's do), and the
VOC files carry one <object> per box (the snapshot's final boxes). As in ILSVRC's Annotations/CLS-LOC, only
images with boxes have a VOC file (ILSVRC has boxes, hence files, for a subset of train). On local storage
an unchanged original is hard-linked (or kernel-copied) into place (``Context.place_original``) and its
manifest entry reuses the stored SHA-256.
"""

from __future__ import annotations

from export.formats.base import Context
from export.formats.voc import prediction_string, voc_xml

NAME = "imagenet"
ROOT = "imagenet"
VAL_NAME = {"val": "ILSVRC2012_val_{:08d}", "test": "ILSVRC2012_test_{:08d}"}
GROUND_TRUTH = {"val": "ILSVRC2012_validation_ground_truth.txt", "test": "ILSVRC2012_test_ground_truth.txt"}


def write(ctx: Context) -> None:
    folder = ctx.folder
    mapping = {c.wnid: c.words for c in ctx.categories}
    lines = "".join(f"{wnid} {mapping[wnid]}\n" for wnid in ctx.classes)
    folder.write_bytes(f"{ROOT}/LOC_synset_mapping.txt", lines.encode())
    index = {wnid: i + 1 for i, wnid in enumerate(ctx.classes)}
    for split in ("train", "val", "test"):
        with folder.open(f"{ROOT}/LOC_{split}_solution.csv") as solution:
            solution.write(b"ImageId,PredictionString\n")
            if split == "train":
                items = ctx.items(split=split, order="class")
                names = ((item, f"{item.wnid}_{item.image_id}", f"{item.wnid}/") for item in items)
                _write_split(ctx, split, names, solution, truth=None)
            else:
                items = ctx.items(split=split, order="shuffle")
                names = ((item, VAL_NAME[split].format(n), "") for n, item in enumerate(items, start=1))
                with folder.open(f"{ROOT}/{GROUND_TRUTH[split]}") as truth:
                    _write_split(ctx, split, names, solution, truth=(truth, index))


def _write_split(ctx: Context, split: str, names, solution, truth) -> None:
    folder = ctx.folder
    for item, stem, subfolder in names:
        boxes, width, height = ctx.write_jpeg(f"{ROOT}/{split}/{subfolder}{stem}.JPEG", item)
        if boxes:  # as in ILSVRC: an annotation file, and a solution line, for each image with boxes
            xml = voc_xml(subfolder.rstrip("/") or split, stem, width, height, boxes)
            folder.write_bytes(f"{ROOT}/Annotations/{split}/{subfolder}{stem}.xml", xml)
            solution.write(f"{stem},{prediction_string(boxes, width, height)}\n".encode())
        if truth is not None:
            out, index = truth
            out.write(b"%d\n" % index[item.wnid])
        ctx.tick(1)
