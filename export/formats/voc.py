"""PASCAL VOC, in the VOC2012 layout that torchvision's ``VOCDetection`` and mmdet's ``VOCDataset`` load:

    voc/JPEGImages/<id>.jpg             every image, JPEG (the original when it is one and is kept as it is)
    voc/Annotations/<id>.xml            every image: folder, filename, source, size, segmented 0, and one
                                        <object> (name = wnid, pose, truncated, difficult, bndbox) per box
    voc/ImageSets/Main/<split>.txt      the ids of each split (train, val, test; trainval = train + val)
    voc/ImageSets/Main/<wnid>_<split>.txt   VOC's classification lists: every id of the split, `` 1`` if the
                                        image has the label (direct, or an implied ancestor), ``-1`` if not
    voc/labels.txt                      ``<wnid> <lemma>``: the object names and class files, one per line

``<id>`` is the image id in 12 digits; the ImageSets list ids in that order. VOC has no image-level label
without a box: objects exist only for boxed images (the box pipeline's final boxes), and an image labelled
but not boxed is found through the ``<wnid>_<split>.txt`` lists. The classification lists hold one line per
(class, image): classes × images lines in all, which is why this format is exported on request only
(``formats``). torchvision wants the folder at ``<root>/VOCdevkit/VOC2012``: a symbolic link will do.

Box coordinates:

Our boxes (``base.Box``) are in pixels of the displayed image, 0-based, ``x1, y1`` inclusive and ``x2, y2``
exclusive (``PIL.Image.crop``), possibly fractional after a resize. The VOC devkit (VOC2012
``devkit_doc``, ``PASreadrecord``/``VOCreadxml``; torchvision's ``VOCDetection`` and mmdet's ``VOCDataset``
read the same files) uses integer, 1-based, inclusive pixel indices: a box over the pixels 0..9 (ours
``[0, 10)``) is ``xmin=1, xmax=10``. So ``xmin = x1 + 1`` and ``xmax = x2`` (the last pixel ``x2 - 1``,
plus one), after rounding fractional corners to the nearest pixel edge and clamping to the image, so that
every box holds at least one pixel and ``1 <= xmin <= xmax <= width``. ILSVRC's CLS-LOC annotations are
VOC files, and the ``LOC_*_solution.csv`` rows repeat their numbers, so ours do too (:func:`voc_box`).
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

from export.formats.base import SPLITS, Box, Context

NAME = "voc"
ROOT = "voc"


def _edge(value: float) -> int:
    """The nearest pixel edge, halves up (not Python's round-half-to-even, which depends on parity)."""
    return math.floor(value + 0.5)


def voc_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """``(xmin, ymin, xmax, ymax)``: VOC's 1-based inclusive pixel indices of ``box`` on a ``width`` x
    ``height`` image, at least one pixel, inside the image."""
    x0 = min(max(_edge(box.x1), 0), width - 1)
    y0 = min(max(_edge(box.y1), 0), height - 1)
    x_end = min(max(_edge(box.x2), x0 + 1), width)
    y_end = min(max(_edge(box.y2), y0 + 1), height)
    return x0 + 1, y0 + 1, x_end, y_end


def prediction_string(boxes: tuple[Box, ...], width: int, height: int) -> str:
    """Kaggle's LOC_*_solution format: space-separated groups ``wnid xmin ymin xmax ymax``, the numbers of
    the image's VOC file (:func:`voc_box`)."""
    return " ".join(" ".join((b.wnid, *map(str, voc_box(b, width, height)))) for b in boxes)


_VOC = (
    "<annotation>\n\t<folder>%s</folder>\n\t<filename>%s</filename>\n"
    "\t<source>\n\t\t<database>Synsight</database>\n\t</source>\n"
    "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n\t\t<depth>3</depth>\n\t</size>\n"
    "\t<segmented>0</segmented>\n%s</annotation>\n"
)
_OBJECT = (
    "\t<object>\n\t\t<name>%s</name>\n"
    "\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n"
    "\t\t<bndbox>\n\t\t\t<xmin>%d</xmin>\n\t\t\t<ymin>%d</ymin>\n\t\t\t<xmax>%d</xmax>\n\t\t\t<ymax>%d</ymax>\n"
    "\t\t</bndbox>\n\t</object>\n"
)


def voc_xml(folder: str, filename: str, width: int, height: int, boxes: tuple[Box, ...]) -> bytes:
    """One image's PASCAL VOC annotation: folder, filename, source, size (depth 3: every exported image
    decodes to RGB in the loaders), segmented 0, and an ``<object>`` per box."""
    objects = "".join(_OBJECT % (escape(b.wnid), *voc_box(b, width, height)) for b in boxes)
    return (_VOC % (escape(folder), escape(filename), width, height, objects)).encode()


def write(ctx: Context) -> None:
    folder = ctx.folder
    words = {c.wnid: c.name for c in ctx.categories}
    classes = sorted(words)
    folder.write_bytes(f"{ROOT}/labels.txt", "".join(f"{w} {words[w]}\n" for w in classes).encode())
    trainval: list[str] = []
    for split in SPLITS:
        ids: list[tuple[int, str]] = []
        positives: dict[str, list[int]] = {w: [] for w in classes}  # wnid -> image ids with that label
        for item in ctx.items(split=split, order="class"):
            stem = f"{item.image_id:012d}"
            boxes, width, height = ctx.write_jpeg(f"{ROOT}/JPEGImages/{stem}.jpg", item)
            folder.write_bytes(f"{ROOT}/Annotations/{stem}.xml", voc_xml(ROOT, f"{stem}.jpg", width, height, boxes))
            ids.append((item.image_id, stem))
            for label in item.labels:
                positives[label.wnid].append(item.image_id)
            ctx.tick(1)
        ids.sort()
        stems = [stem for _, stem in ids]
        folder.write_bytes(f"{ROOT}/ImageSets/Main/{split}.txt", "".join(f"{s}\n" for s in stems).encode())
        if split != "test":
            trainval += stems
        _write_class_lists(ctx, split, ids, positives)
    folder.write_bytes(f"{ROOT}/ImageSets/Main/trainval.txt", "".join(f"{s}\n" for s in sorted(trainval)).encode())


def _write_class_lists(ctx: Context, split: str, ids: list[tuple[int, str]], positives: dict[str, list[int]]) -> None:
    """``<wnid>_<split>.txt`` for every class: each id of the split with `` 1`` or ``-1`` (VOC's
    ``2008_000008  1`` / ``2008_000002 -1``), in id order. The negative lines are made once per split and
    each class copies them and marks its positives."""
    position = {image_id: n for n, (image_id, _) in enumerate(ids)}
    negative = [f"{stem} -1\n" for _, stem in ids]
    for wnid, image_ids in positives.items():
        lines = negative.copy()
        for image_id in image_ids:
            lines[position[image_id]] = f"{ids[position[image_id]][1]}  1\n"
        ctx.folder.write_bytes(f"{ROOT}/ImageSets/Main/{wnid}_{split}.txt", "".join(lines).encode())
