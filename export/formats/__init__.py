"""The export formats, registered in one place. A format is a module with ``NAME`` and ``write(ctx)``
(export.formats.base.Context); add one by writing the module and listing it here."""

from collections.abc import Callable

from export.formats import coco, imagenet, voc, votes, webdataset
from export.formats.base import Context

FORMATS: dict[str, Callable[[Context], None]] = {
    imagenet.NAME: imagenet.write,
    coco.NAME: coco.write,
    voc.NAME: voc.write,
    webdataset.NAME: webdataset.write,
    votes.NAME: votes.write,
}
# What a version holds when its options name no formats: every format but PASCAL VOC, whose classification
# lists have a line per (class, image) — 10^9 lines for 1,000 classes of 10^6 images — so it is asked for.
DEFAULT_FORMATS: list[str] = [name for name in FORMATS if name != voc.NAME]
