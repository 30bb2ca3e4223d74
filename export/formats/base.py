"""What a format writer receives: the version's images as :class:`Item` records in a stated order, the
categories, and helpers to copy image bytes with the fewest re-encodings. Writers import nothing from
Django; they read only the :class:`Context` and write only through ``ctx.folder``."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from PIL import Image as PILImage
from PIL import ImageOps

from export.files import VersionFolder

SPLITS = ("train", "val", "test")
UPRIGHT_JPEG_QUALITY = 95  # a JPEG re-encoded only to apply its EXIF orientation
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
RESIZE_JPEG_QUALITY = 90


# Label and Item are built once per exported image and label: plain slotted dataclasses, which construct
# several times faster than frozen ones (writers only read them).
@dataclass(slots=True)
class Label:
    wnid: str
    posterior: float | None
    model_version: str
    candidate_id: int | None
    direct: bool


@dataclass(frozen=True)
class Box:
    """One box in pixels of the image as displayed (EXIF orientation applied): ``x1, y1`` inclusive,
    ``x2, y2`` exclusive, so ``x2 - x1`` is the width (as in PIL's crop and the demo generator)."""

    wnid: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(slots=True)
class Item:
    """One image of the version with its frozen labels (direct first, by wnid) and boxes."""

    image_id: int
    file: str  # name in Django storage
    format: str
    width: int
    height: int
    sha256: str
    byte_size: int
    split: str
    wnid: str  # primary synset: the class folder in the ImageNet layout
    labels: tuple[Label, ...]
    boxes: tuple[Box, ...] = ()
    # Known to need no EXIF rotation (the import kept the original as its display version, which it never
    # does for a rotated one: annotation/imaging.py). False: unknown, Context.orientation reads the header.
    upright: bool = False


@dataclass(frozen=True)
class Category:
    wnid: str
    name: str  # first lemma
    words: str  # ImageNet words.txt style
    supercategory: str
    supercategory_wnid: str
    direct: bool  # false: only present as an implied ancestor


@dataclass
class ImageData:
    """Bytes to write for one image: a stream of ``size`` bytes, its extension, and its pixel size (which
    differs from the stored one only under a resize policy; ``scale_boxes`` maps boxes onto it)."""

    stream: BinaryIO
    size: int
    ext: str
    width: int
    height: int
    reencoded: bool

    def scale_boxes(self, item: Item) -> tuple[Box, ...]:
        """The item's boxes on this image: unchanged at the stored size; scaled otherwise, each corner
        rounded to 0.01 px and kept inside the image (continuous 0-based coordinates, as COCO's; VOC and the
        LOC files round them to whole pixels, ``voc.voc_box``)."""
        if (self.width, self.height) == (item.width, item.height):
            return item.boxes
        sx, sy = self.width / item.width, self.height / item.height
        w, h = self.width, self.height
        return tuple(
            Box(b.wnid, _scaled(b.x1, sx, w), _scaled(b.y1, sy, h), _scaled(b.x2, sx, w), _scaled(b.y2, sy, h))
            for b in item.boxes
        )


def _scaled(value: float, scale: float, limit: int) -> float:
    return min(max(round(value * scale, 2), 0.0), float(limit))


def resized_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass
class Context:
    folder: VersionFolder
    version: dict  # id, name, version, notes, created, snapshot_at, options (canonical JSON values)
    mtime: int  # for tar headers: the snapshot time, so archives carry no build time
    categories: list[Category]
    classes: list[str]  # sorted wnids of the primary classes (ImageNet folders, WebDataset class indices)
    items: Callable[..., Iterator[Item]]  # items(split=..., order="class" | "shuffle")
    open_file: Callable[[str], BinaryIO]  # storage name -> binary stream
    rows: Callable[[str], Iterator[dict]]  # named row streams, e.g. rows("votes") for the votes format
    max_side: int | None = None  # image size policy: None keeps originals
    tick: Callable[[int], None] = lambda n: None  # progress: n more items done
    options: dict = field(default_factory=dict)
    # Local storage only: storage name -> absolute path (checked like open_file), so that an unchanged
    # original is hard-linked or copied by the kernel rather than streamed through Python. None elsewhere.
    source_path: Callable[[str], str] | None = None
    link_originals: bool = True  # hard-link unchanged originals where the filesystem allows
    io_threads: int = 0  # threads a writer may use for reading ahead (0: inline)
    processes: int = 0  # worker processes a writer may use (WebDataset shards; 0: inline)

    _orientations: dict[int, int] = field(default_factory=dict)  # image id -> EXIF orientation, read once

    def keeps_original(self, item: Item, *, jpeg_only: bool = False) -> bool:
        """Whether ``image()`` would give the original bytes unchanged: not resized, in a format the writer
        takes, and stored upright (an original with a rotating EXIF orientation is stored in another pixel
        frame than its width, height and boxes, which are the displayed ones; loaders that ignore EXIF,
        most of them, would read it sideways)."""
        if self.max_side and max(item.width, item.height) > self.max_side:
            return False
        if jpeg_only and item.format != "JPEG":
            return False
        return item.upright or self.orientation(item) == 1

    def orientation(self, item: Item) -> int:
        """The original's EXIF orientation (1: upright), from its header by Pillow (~60 µs an image: it reads
        the header, not the pixels). Asked only for images not known upright (``Item.upright``) and
        remembered per image for the other formats."""
        found = self._orientations.get(item.image_id)
        if found is None:
            with self.open_file(item.file) as stream:
                found = _pillow_orientation(stream)
            self._orientations[item.image_id] = found
        return found

    def place_original(self, name: str, item: Item, *, jpeg_only: bool = False) -> bool:
        """Write the original, unchanged, as ``name`` the fastest way the storage allows (a hard link, a
        kernel copy) and return True; False (nothing written) when it must be re-encoded or the storage is
        not local: then use ``image()``."""
        if self.source_path is None or not self.keeps_original(item, jpeg_only=jpeg_only):
            return False
        self.folder.add_original(
            name, self.source_path(item.file), item.byte_size, item.sha256, link=self.link_originals
        )
        return True

    def write_jpeg(self, name: str, item: Item) -> tuple[tuple[Box, ...], int, int]:
        """Write the item as the JPEG ``name`` (the original when it can stay as it is, else re-encoded) and
        return the boxes, width and height of the file written (the ImageNet and VOC layouts)."""
        if self.place_original(name, item, jpeg_only=True):
            return item.boxes, item.width, item.height
        with self.image(item, jpeg_only=True) as data:
            self.folder.copy_stream(name, data.stream)
            return data.scale_boxes(item), data.width, data.height

    @contextmanager
    def image(self, item: Item, *, jpeg_only: bool = False) -> Iterator[ImageData]:
        """The image's bytes: the original, byte for byte, when it can be (JPEG, or any format when the
        writer accepts it); otherwise one decode and one JPEG encode (EXIF orientation applied)."""
        width, height = resized_size(item.width, item.height, self.max_side)
        if self.keeps_original(item, jpeg_only=jpeg_only):
            with self.open_file(item.file) as stream:
                yield ImageData(stream, item.byte_size, EXTENSIONS.get(item.format, "bin"), width, height, False)
            return
        buffer = io.BytesIO()
        with self.open_file(item.file) as stream, PILImage.open(stream) as im:
            source = im.format
            icc = im.info.get("icc_profile")
            im = ImageOps.exif_transpose(im)  # upright, and the orientation tag dropped from its EXIF
            if (width, height) == (item.width, item.height) and (source == "JPEG" or not jpeg_only):
                # Only turned upright: in its own format (JPEG at quality 95), colour profile and EXIF kept.
                exif = im.getexif()
                exif.pop(0x0112, None)
                keep = {"icc_profile": icc} if icc else {}
                if len(exif):
                    keep["exif"] = exif.tobytes()
                if source == "JPEG":
                    im.save(buffer, "JPEG", quality=UPRIGHT_JPEG_QUALITY, optimize=False, progressive=False, **keep)
                else:
                    im.save(buffer, source, **keep)
                ext = EXTENSIONS.get(source, "bin")
            else:
                im = im.convert("RGB")
                if im.size != (width, height):
                    im = im.resize((width, height), PILImage.Resampling.LANCZOS)
                im.save(buffer, "JPEG", quality=RESIZE_JPEG_QUALITY, optimize=False, progressive=False)
                ext = "jpg"
        size = buffer.tell()
        buffer.seek(0)
        yield ImageData(buffer, size, ext, width, height, True)


def _pillow_orientation(stream: BinaryIO) -> int:
    try:
        with PILImage.open(stream) as im:
            found = im.getexif().get(0x0112, 1)
    except Exception:  # an unreadable EXIF block: upright, as annotation.imaging decided at import
        return 1
    return found if isinstance(found, int) and 1 <= found <= 8 else 1
