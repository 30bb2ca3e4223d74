"""The export formats, registered in one place. A format is a module with ``NAME`` and ``write(ctx)``
(export.formats.base.Context); add one by writing the module and listing it here."""

from collections.abc import Callable

from export.formats import coco, imagenet, votes, webdataset
from export.formats.base import Context

FORMATS: dict[str, Callable[[Context], None]] = {
    imagenet.NAME: imagenet.write,
    coco.NAME: coco.write,
    webdataset.NAME: webdataset.write,
    votes.NAME: votes.write,
}
