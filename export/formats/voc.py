"""PASCAL VOC annotations: the XML of one image and the conversion of our boxes to VOC's pixel convention.

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

from export.formats.base import Box


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
