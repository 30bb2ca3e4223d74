"""COCO JSON, one file per split, with the images beside it:

    coco/annotations/instances_<split>.json
    coco/<split>/<image id, 12 digits>.<jpg|png|…>   (originals byte for byte; re-encoded only when resized)

Categories are every labelled synset (ids 1..K by wnid), each with its ``wnid``, ``words`` and a
``supercategory`` from the hierarchy: the nearest exported ancestor, else the WordNet parent. Image-level
labels, which COCO has no standard field for, are on each image as ``labels`` (category id, wnid, posterior,
model version, direct or implied ancestor). ``annotations`` holds one entry per box (``bbox`` = x, y, w, h):
until boxes are collected it is empty. As in COCO, ``bbox`` is in continuous 0-based pixel coordinates of the
image as written (a box over the pixels 0..9 is ``[0, …, 10, …]``): whole numbers at the stored size;
scaled, to 0.01 px and inside the image, under a resize policy. The file is streamed: images are written as
they come, the annotations go through a temporary file, so memory stays flat.
"""

from __future__ import annotations

import json
import shutil
import tempfile

from export.files import json_bytes
from export.formats.base import EXTENSIONS, Context

NAME = "coco"
ROOT = "coco"


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _extent(start: float, end: float) -> float:
    """A box side: exact for whole pixels; for scaled (fractional) corners rounded like them, to 0.01 px, so
    that a resized box reads ``15.23`` rather than ``15.229999999999997``."""
    return end - start if type(start) is int and type(end) is int else round(end - start, 2)


def write(ctx: Context) -> None:
    categories = [
        {
            "id": i + 1,
            "name": c.name,
            "wnid": c.wnid,
            "words": c.words,
            "supercategory": c.supercategory,
            "supercategory_wnid": c.supercategory_wnid,
            "direct": c.direct,
        }
        for i, c in enumerate(ctx.categories)
    ]
    category_id = {c["wnid"]: c["id"] for c in categories}
    info = {
        "description": ctx.version["name"],
        "version": str(ctx.version["version"]),
        "year": int(ctx.version["snapshot_at"][:4]),
        "date_created": ctx.version["snapshot_at"],
        "contributor": "Synsight",
        "url": "",
    }
    for split in ("train", "val", "test"):
        with ctx.folder.open(f"{ROOT}/annotations/instances_{split}.json") as out, tempfile.TemporaryFile() as anns:
            out.write(f'{{"info":{_dumps(info)},"licenses":[],"categories":{_dumps(categories)},"images":['.encode())
            next_ann = 1
            first = True
            for item in ctx.items(split=split, order="class"):
                file_name = f"{item.image_id:012d}.{EXTENSIONS.get(item.format, 'bin')}"
                if ctx.place_original(f"{ROOT}/{split}/{file_name}", item):
                    boxes, width, height = item.boxes, item.width, item.height
                else:
                    with ctx.image(item) as data:
                        file_name = f"{item.image_id:012d}.{data.ext}"
                        ctx.folder.copy_stream(f"{ROOT}/{split}/{file_name}", data.stream)
                        boxes = data.scale_boxes(item)
                        width, height = data.width, data.height
                image = {
                    "id": item.image_id,
                    "file_name": file_name,
                    "width": width,
                    "height": height,
                    "sha256": item.sha256,
                    "labels": [
                        {
                            "category_id": category_id[label.wnid],
                            "wnid": label.wnid,
                            "posterior": label.posterior,
                            "model_version": label.model_version,
                            "direct": label.direct,
                        }
                        for label in item.labels
                    ],
                }
                out.write((("" if first else ",") + _dumps(image)).encode())
                first = False
                for box in boxes:
                    w, h = _extent(box.x1, box.x2), _extent(box.y1, box.y2)
                    ann = {
                        "id": next_ann,
                        "image_id": item.image_id,
                        "category_id": category_id[box.wnid],
                        "bbox": [box.x1, box.y1, w, h],
                        "area": w * h if type(w) is int and type(h) is int else round(w * h, 2),
                        "iscrowd": 0,
                    }
                    anns.write((b"," if next_ann > 1 else b"") + _dumps(ann).encode())
                    next_ann += 1
                ctx.tick(1)
            out.write(b'],"annotations":[')
            anns.seek(0)
            shutil.copyfileobj(anns, out)
            out.write(b"]}\n")
    ctx.folder.write_bytes(f"{ROOT}/categories.json", json_bytes(categories))
