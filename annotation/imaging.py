"""Candidate image processing: decode, validate, hash and render the display versions. No Django here, so a
process pool can run it and tests and benchmarks can call it on bytes alone.

:func:`process` turns the bytes of one file into a :class:`Processed` (or raises :class:`Rejected` with a
machine code and a sentence). The original bytes are never changed; the display versions (thumbnail and
medium) have the EXIF orientation applied, so ``width`` and ``height`` are the *displayed* size, the one
boxes will be drawn on.

Formats: JPEG, PNG, WebP, GIF (first frame) and BMP — what every browser shows. TIFF, PSD, ICO, EPS and the
rest are refused: browsers cannot show them, and they are where Pillow's decoders have had most of their
security bugs.

Perceptual hash: imagehash's ``phash`` (DCT of a 32x32 grey image, 64 bits), computed on the 256-px
thumbnail so every copy is reduced the same way first. Measured on 400 demo images (seed 3, 40 per synset):

=================  ===============  ===============  ==================================
hash               re-encode q=50   half size        distinct images, same synset
                   median/p95/max   median/p95/max   pairs at distance <= 8 / <= 10
=================  ===============  ===============  ==================================
phash              0 / 2 / 8        0 / 2 / 4        1 / 2 of 7,800 (minimum 8)
dhash              0 / 2 / 5        0 / 1 / 3        minimum distance 3: too many false matches
average_hash       0 / 1 / 3        0 / 1 / 2        minimum distance 2
whash              0 / 2 / 2        0 / 0 / 2        minimum distance 2
=================  ===============  ===============  ==================================

Light crops with phash: 2 % off every side median 4, p95 8; 3 % off one side median 4, p95 8; 5 % off one
side median 6, p95 12. So phash separates copies from distinct images best, and a threshold of 8 catches
re-encoded and resized copies and most light crops (settings.IMAGE_NEAR_DUPLICATE_DISTANCE).

Colour: phash sees only grey levels, so two plain or low-texture images of different colours (a red and a blue
square, two solid test images) hash alike. A near-duplicate must therefore also have nearly the same mean
colour (:func:`mean_colour` of the thumbnail, largest difference over R, G and B:
settings.IMAGE_NEAR_DUPLICATE_COLOUR, 12 of 255). Measured on the same 400 demo images, copy against
original: re-encode q=50 median 0.3 / max 1.6, half size 0.1 / 0.4, 5 % off one side 1.0 / 5.7, 2 % off
every side 0.6 / 4.0; distinct images: 1.5 % of pairs within 12 (median 52), so the two tests together
rarely both pass by chance.

Near-duplicate lookup: :class:`HashIndex`, a growable uint64 array; one lookup is an XOR and a popcount
over the whole array (``np.bitwise_count``), about 2 ms for 1,000,000 hashes (benchmarks/near_duplicates.py).
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageFile, ImageOps, ImageStat, UnidentifiedImageError

# Pillow's own bomb guard stays on (it raises DecompressionBombError at twice this); Limits.max_pixels is
# the stricter check made on every image before decoding, and the warning is turned into a rejection.
Image.MAX_IMAGE_PIXELS = 100_000_000
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is refused, never padded with grey

FORMATS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
# What browsers show as they are, so the original can serve as the medium version when small enough.
BROWSER_NATIVE = {"JPEG", "PNG", "WEBP", "GIF"}
THUMBNAIL_QUALITY = 82
MEDIUM_QUALITY = 85


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 25 * 2**20
    max_pixels: int = 50_000_000
    min_side: int = 32
    max_aspect: int = 10
    thumbnail_side: int = 256
    medium_side: int = 1024


@dataclass(frozen=True)
class Processed:
    sha256: str
    format: str  # one of FORMATS
    width: int  # displayed (EXIF orientation applied)
    height: int
    byte_size: int
    phash: int  # signed 64-bit, as stored in a BigIntegerField
    thumbnail: bytes  # JPEG
    colour: tuple[float, float, float]  # mean R, G, B of the thumbnail
    medium: bytes | None  # JPEG; None when the original itself is fit to display

    @property
    def ext(self) -> str:
        return FORMATS[self.format]

    @property
    def pixels(self) -> int:
        return self.width * self.height


class Rejected(Exception):
    """A file that will not become a candidate, with a machine ``code`` and a sentence for people."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __reduce__(self):  # crosses process boundaries intact
        return (Rejected, (self.code, self.reason))


def process(data: bytes, limits: Limits = Limits()) -> Processed:
    """Validate and prepare one image. Raises :class:`Rejected` for anything that is not a usable image."""
    if not data:
        raise Rejected("empty", "The file is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise Rejected("too_large", f"The file has {len(data):,} bytes; the limit is {limits.max_bytes:,}.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _process(data, limits)
        except Rejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Rejected(
                "too_many_pixels", "The image declares too many pixels to decode safely (a decompression bomb)."
            ) from None
        except UnidentifiedImageError:
            raise Rejected("not_an_image", "The file is not a readable image (JPEG, PNG, WebP, GIF or BMP).") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
            raise Rejected("corrupt", f"The image data is truncated or corrupt ({_short(error)}).") from None


def process_safely(data: bytes, limits: Limits = Limits()) -> Processed | Rejected:
    """:func:`process` that returns the rejection instead of raising it, for process pools. Decoders fed
    hostile bytes can raise almost anything; every such failure is this file's rejection, not the batch's."""
    try:
        return process(data, limits)
    except Rejected as rejected:
        return rejected
    except Exception as error:
        return Rejected("corrupt", f"The image could not be decoded ({type(error).__name__}: {_short(error)}).")


def _short(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:120].rstrip(".")


def _process(data: bytes, limits: Limits) -> Processed:
    image = Image.open(io.BytesIO(data))
    if image.format not in FORMATS:
        raise Rejected(
            "unsupported_format",
            f"{image.format} images are not accepted; send JPEG, PNG, WebP, GIF or BMP.",
        )
    width, height = image.size
    if width * height > limits.max_pixels:
        raise Rejected(
            "too_many_pixels",
            f"The image is {width}x{height} = {width * height:,} pixels; the limit is {limits.max_pixels:,}.",
        )
    if min(width, height) < limits.min_side:
        raise Rejected("too_small", f"The image is {width}x{height}; each side must be at least {limits.min_side} px.")
    if max(width, height) > limits.max_aspect * min(width, height):
        raise Rejected(
            "bad_aspect_ratio",
            f"The image is {width}x{height}; a side may be at most {limits.max_aspect} times the other.",
        )
    orientation = _orientation(image)
    rotated = orientation in {2, 3, 4, 5, 6, 7, 8}
    needs_medium = (
        image.format not in BROWSER_NATIVE
        or rotated
        or max(width, height) > limits.medium_side
        or image.format == "GIF"  # animated GIFs would play in the box-drawing view
        # CMYK JPEGs (print workflows): browsers differ on them (Adobe's inverted CMYK, no colour management), so
        # workers would not all see the colours our thumbnail shows; the medium version is RGB.
        or image.mode == "CMYK"
    )
    if image.format == "JPEG":
        # DCT scaling decodes at 1/2, 1/4 or 1/8 size: two to four times faster for the sizes we need.
        side = limits.medium_side if needs_medium else limits.thumbnail_side
        image.draft("RGB", (side, side))
    image.load()  # decodes everything: truncated or corrupt data fails here
    display = _rgb(ImageOps.exif_transpose(image) if rotated else image)
    disp_w, disp_h = (height, width) if orientation in {5, 6, 7, 8} else (width, height)

    medium = None
    if needs_medium:
        copy = display.copy()
        copy.thumbnail((limits.medium_side, limits.medium_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        medium = _jpeg(copy, MEDIUM_QUALITY)
    thumb = display
    thumb.thumbnail((limits.thumbnail_side, limits.thumbnail_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return Processed(
        sha256=hashlib.sha256(data).hexdigest(),
        format=image.format,
        width=disp_w,
        height=disp_h,
        byte_size=len(data),
        phash=perceptual_hash(thumb),
        thumbnail=_jpeg(thumb, THUMBNAIL_QUALITY),
        colour=mean_colour(thumb),
        medium=medium,
    )


def _orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except Exception:  # a broken EXIF block must not reject an otherwise good image
        return None


def _rgb(image: Image.Image) -> Image.Image:
    """RGB for display; transparency is composited on white (what a browser shows on a white page), and
    greyscale of more than 8 bits brought to 8 first (:func:`_eight_bit`)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode in {"I", "F"}:
        image = _eight_bit(image)
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _eight_bit(image: Image.Image) -> Image.Image:
    """Greyscale deeper than 8 bits as an 8-bit "L" image. Pillow's convert() clips such values to 0-255, so a
    16-bit PNG came out white, and visibly different 16-bit images got the same thumbnail, perceptual hash and
    mean colour and were dropped as near-duplicates (QA).

    16-bit ("I;16…", what Pillow opens a 16-bit greyscale PNG as): divided by 257, rounded, so 0-65535 maps
    onto 0-255 exactly — the levels a browser shows the worker for the same file, so a dark 12-bit scan stays
    dark. 32-bit integer ("I") and float ("F") have no fixed range (no format we accept produces them; a
    future decoder might): stretched from their minimum to their maximum; a constant image keeps its value,
    clipped to 0-255."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def perceptual_hash(image: Image.Image) -> int:
    """imagehash's 64-bit phash as a signed integer (PostgreSQL's bigint is signed)."""
    bits = imagehash.phash(image).hash.flatten()
    value = int(np.packbits(bits).view(">u8")[0])
    return value - (1 << 64) if value >= 1 << 63 else value


def mean_colour(image: Image.Image) -> tuple[float, float, float]:
    """Mean R, G and B of an image (its thumbnail), rounded to 0.1."""
    r, g, b = ImageStat.Stat(image.convert("RGB")).mean
    return (round(r, 1), round(g, 1), round(b, 1))


def file_colour(handle) -> tuple[float, float, float]:
    """:func:`mean_colour` of an image file (a stored thumbnail)."""
    with Image.open(handle) as image:
        return mean_colour(image)


def colour_distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The largest difference between two mean colours over R, G and B (0-255)."""
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


class HashIndex:
    """Perceptual hashes with an integer key each; finds the nearest stored hash within a distance.

    Append-only with in-place updates; arrays grow by doubling, so adding n hashes costs O(n).
    """

    def __init__(self, hashes=(), keys=()):
        hashes = np.asarray(hashes, dtype=np.int64).view(np.uint64)
        keys = np.asarray(keys, dtype=np.int64)
        self._size = len(hashes)
        capacity = max(1024, 2 * self._size)
        self._hashes = np.zeros(capacity, dtype=np.uint64)
        self._keys = np.zeros(capacity, dtype=np.int64)
        self._hashes[: self._size] = hashes
        self._keys[: self._size] = keys

    def __len__(self) -> int:
        return self._size

    def add(self, phash: int, key: int) -> None:
        if self._size == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._keys = np.concatenate([self._keys, np.zeros_like(self._keys)])
        self._hashes[self._size] = np.int64(phash).view(np.uint64)
        self._keys[self._size] = key
        self._size += 1

    def replace(self, key: int, phash: int) -> None:
        """Give every entry with ``key`` a new hash."""
        where = np.flatnonzero(self._keys[: self._size] == key)
        self._hashes[where] = np.int64(phash).view(np.uint64)

    def within(self, phash: int, max_distance: int, limit: int = 8) -> list[tuple[int, int]]:
        """Up to ``limit`` (key, distance) pairs within ``max_distance``, nearest first (lowest key on ties)."""
        if not self._size:
            return []
        distances = np.bitwise_count(self._hashes[: self._size] ^ np.int64(phash).view(np.uint64))
        close = np.flatnonzero(distances <= max_distance)
        keys = self._keys[close]
        order = np.lexsort((keys, distances[close]))[:limit]
        return [(int(keys[i]), int(distances[close][i])) for i in order]

    def nearest(self, phash: int, max_distance: int) -> tuple[int, int] | None:
        """(key, distance) of the closest stored hash within ``max_distance``, the lowest key on ties."""
        if not self._size:
            return None
        distances = np.bitwise_count(self._hashes[: self._size] ^ np.int64(phash).view(np.uint64))
        best = int(distances.min())
        if best > max_distance:
            return None
        return int(self._keys[: self._size][distances == best].min()), best
