"""annotation.imaging on bytes alone: what is accepted, what is refused and why, display versions."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation import imaging
from annotation.imaging import HashIndex, Limits, Rejected
from tests.annotation.conftest import decode, encode


def photo(width: int = 640, height: int = 480, seed: int = 0) -> PILImage.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return PILImage.fromarray(small).resize((width, height), PILImage.Resampling.BICUBIC)


DEFAULTS = Limits()


def rejection(data: bytes, limits: Limits = DEFAULTS) -> tuple[str, str]:
    with pytest.raises(Rejected) as caught:
        imaging.process(data, limits)
    return caught.value.code, caught.value.reason


def test_jpeg_is_hashed_measured_and_gets_a_small_thumbnail() -> None:
    data = encode(photo(1600, 1200), quality=90)
    result = imaging.process(data)
    assert result.format == "JPEG" and result.ext == "jpg"
    assert (result.width, result.height, result.byte_size) == (1600, 1200, len(data))
    assert result.sha256 == __import__("hashlib").sha256(data).hexdigest()
    assert decode(result.thumbnail).size == (256, 192)
    assert decode(result.medium).size == (1024, 768)
    assert len(result.thumbnail) < 20_000
    assert -(2**63) <= result.phash < 2**63


def test_small_browser_image_is_its_own_medium_version() -> None:
    result = imaging.process(encode(photo(800, 600)))
    assert result.medium is None
    assert decode(result.thumbnail).size == (256, 192)


def test_a_small_cmyk_jpeg_gets_an_rgb_medium_version() -> None:
    result = imaging.process(encode(photo(800, 600).convert("CMYK")))
    assert result.format == "JPEG" and result.medium is not None
    medium = decode(result.medium)
    assert medium.mode == "RGB" and medium.size == (800, 600)


def test_exif_orientation_is_applied_to_display_versions_only() -> None:
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    data = encode(photo(400, 200), exif=exif.tobytes())
    result = imaging.process(data)
    assert (result.width, result.height) == (200, 400)
    assert decode(result.thumbnail).size == (128, 256)
    assert decode(result.medium).size == (200, 400)


def test_png_with_transparency_is_flattened_on_white() -> None:
    image = PILImage.new("RGBA", (64, 64), (255, 0, 0, 0))
    result = imaging.process(encode(image, "PNG"))
    assert result.format == "PNG"
    assert decode(result.thumbnail).convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_gif_first_frame_gets_a_still_medium_version() -> None:
    frames = [PILImage.new("P", (80, 60), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    result = imaging.process(out.getvalue())
    assert result.format == "GIF" and decode(result.medium).format == "JPEG"


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (b"", "empty", "The file is empty (0 bytes)."),
        (
            b"<html><body>not a picture</body></html>",
            "not_an_image",
            "The file is not a readable image (JPEG, PNG, WebP, GIF or BMP).",
        ),
    ],
)
def test_empty_and_non_image_files_are_refused(data: bytes, code: str, reason: str) -> None:
    assert rejection(data) == (code, reason)


def test_truncated_jpeg_is_refused_as_corrupt() -> None:
    data = encode(photo(), quality=90)
    code, reason = rejection(data[: len(data) // 2])
    assert code == "corrupt"
    assert reason.startswith("The image data is truncated or corrupt (")


def test_unsupported_format_is_named() -> None:
    assert rejection(encode(photo(), "TIFF")) == (
        "unsupported_format",
        "TIFF images are not accepted; send JPEG, PNG, WebP, GIF or BMP.",
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge canvas: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    assert rejection(png_header_only(10_000, 8_000)) == (
        "too_many_pixels",
        "The image is 10000x8000 = 80,000,000 pixels; the limit is 50,000,000.",
    )


@pytest.mark.parametrize("limit", [50_000_000, 10**12])
def test_decompression_bomb_is_refused_by_pillows_guard_too(limit: int) -> None:
    # Past Pillow's own guard (MAX_IMAGE_PIXELS, set explicitly) the open itself raises or warns; either
    # way it is this file's rejection, whatever our own limit says.
    assert rejection(png_header_only(100_000, 100_000), Limits(max_pixels=limit)) == (
        "too_many_pixels",
        "The image declares too many pixels to decode safely (a decompression bomb).",
    )


def test_absurd_dimensions_are_refused() -> None:
    assert rejection(encode(photo(2000, 40))) == (
        "bad_aspect_ratio",
        "The image is 2000x40; a side may be at most 10 times the other.",
    )
    assert rejection(png_header_only(1, 100_000)) == (
        "too_small",
        "The image is 1x100000; each side must be at least 32 px.",
    )


def test_file_over_the_byte_limit_is_refused() -> None:
    data = encode(photo())
    assert rejection(data, Limits(max_bytes=1000)) == (
        "too_large",
        f"The file has {len(data):,} bytes; the limit is 1,000.",
    )


def test_process_safely_returns_rejections_for_pools() -> None:
    result = imaging.process_safely(b"")
    assert isinstance(result, Rejected) and (result.code, result.reason) == ("empty", "The file is empty (0 bytes).")


def test_copies_hash_close_and_distinct_images_far() -> None:
    original = photo(800, 600, seed=1)
    base = imaging.process(encode(original, quality=92)).phash
    recoded = imaging.process(encode(original, quality=40)).phash
    smaller = imaging.process(encode(original.resize((400, 300)))).phash
    cropped = imaging.process(encode(original.crop((16, 12, 784, 588)))).phash
    other = imaging.process(encode(photo(800, 600, seed=2))).phash
    assert imaging.hamming(base, recoded) <= 4
    assert imaging.hamming(base, smaller) <= 4
    assert imaging.hamming(base, cropped) <= 8
    assert imaging.hamming(base, other) > 8


def test_hash_index_finds_the_nearest_within_the_threshold() -> None:
    index = HashIndex([0b1111, -1], [10, 11])
    index.add(0b1, 12)
    assert index.nearest(0b11, 8) == (12, 1)
    assert index.nearest(-2, 8) == (11, 1)
    assert index.nearest(0b1111_0000_0000, 2) is None
    index.replace(12, 0)
    assert index.nearest(0, 0) == (12, 0)
    for key in range(3000):  # grows past its initial capacity
        index.add(1 << 40, 100 + key)
    assert len(index) == 3003 and index.nearest(1 << 40, 0) == (100, 0)


def test_hash_index_lists_every_match_nearest_first_up_to_a_limit() -> None:
    index = HashIndex([0b111, 0b1, 0b0, 0b1], [5, 7, 9, 3])
    assert index.within(0b0, 2) == [(9, 0), (3, 1), (7, 1)]  # lowest key first on ties; 0b111 is 3 away
    assert index.within(0b0, 3, limit=2) == [(9, 0), (3, 1)]
    assert index.within(1 << 50, 0) == [] and HashIndex().within(0, 64) == []


def test_mean_colour_tells_plain_images_apart_and_survives_recoding() -> None:
    red, blue = PILImage.new("RGB", (300, 200), (200, 30, 30)), PILImage.new("RGB", (300, 200), (30, 30, 200))
    assert imaging.hamming(imaging.perceptual_hash(red), imaging.perceptual_hash(blue)) == 0  # why colour is needed
    recoded = imaging.process(encode(red, quality=50))
    assert imaging.colour_distance(recoded.colour, imaging.mean_colour(red)) < 6  # JPEG shifts strong colours a bit
    assert imaging.colour_distance(recoded.colour, imaging.mean_colour(blue)) > 150


def png16(values: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG (Pillow opens it as mode I;16)."""
    out = io.BytesIO()
    PILImage.fromarray(values.astype(np.uint16)).save(out, format="PNG")
    return out.getvalue()


def three_16_bit_images() -> list[np.ndarray]:
    """Visibly different (a bright ramp, a darker ramp the other way, rings), and every value above 255: what
    an 8-bit conversion clipped to plain white."""
    y, x = np.mgrid[0:240, 0:320]
    across = 1_000 + x * (64_000 / 319)
    down = 1_000 + y * (30_000 / 239)
    rings = 1_000 + 64_000 * ((np.hypot(x - 160, y - 120) // 30) % 2)
    return [across, down, rings]


def test_a_16_bit_gradient_gives_a_gradient_thumbnail_scaled_by_257() -> None:
    ramp = np.tile(np.linspace(0, 65_535, 512), (256, 1))
    data = png16(ramp)
    assert PILImage.open(io.BytesIO(data)).mode == "I;16"

    result = imaging.process(data)

    thumbnail = np.asarray(decode(result.thumbnail).convert("L"), dtype=float)
    assert thumbnail.shape == (128, 256)
    columns = thumbnail.mean(axis=0)
    assert columns[0] < 3 and columns[-1] > 252  # black to white, as a browser shows the file
    assert abs(columns[128] - 128) < 4
    assert np.all(np.diff(columns[4:-4]) > -2)  # rising left to right (JPEG noise aside)
    assert result.colour == pytest.approx((127.5, 127.5, 127.5), abs=1.5)


def test_three_different_16_bit_images_get_different_hashes_and_colours() -> None:
    results = [imaging.process(png16(values)) for values in three_16_bit_images()]
    for i, a in enumerate(results):
        for b in results[i + 1 :]:
            far = imaging.hamming(a.phash, b.phash) > 8
            assert far or imaging.colour_distance(a.colour, b.colour) > 12, (a.phash, b.phash)
    assert all(min(r.colour) < 200 for r in results)  # none came out white


def test_32_bit_and_float_greyscale_is_stretched_from_its_minimum_to_its_maximum() -> None:
    values = np.array([[-500, 0], [1_500, 3_500]])
    for image in (PILImage.fromarray(values.astype(np.int32)), PILImage.fromarray(values.astype(np.float32))):
        assert image.mode in {"I", "F"}
        assert np.asarray(imaging._eight_bit(image)).tolist() == [[0, 32], [128, 255]]
