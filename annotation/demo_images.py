"""Synthetic, photograph-like demo images of plane figures, with exact ground truth.

Each category (a WordNet 3.0 noun synset under ``plane_figure.n.01``) gets ``per_synset`` candidate images
"found by searching for it". Most contain 1-3 instances of it (sometimes next to other shapes); a share
(``negative_rate``) are negatives: either a *confusable* shape (rectangle among square candidates, ellipse
among circle candidates ...) or unrelated shapes / bare clutter. Backgrounds have gradients, textures,
stroke clutter and soft shadows; shapes are shaded; the whole image is blurred a little, noised and saved as
JPEG (quality 85), so the pictures look like small photos rather than vector art.

Ground truth per image (:class:`DemoImage`):

* ``objects`` -- every drawn category instance with its box ``(x1, y1, x2, y2)`` in pixels of the saved
  image; ``x1, y1`` inclusive, ``x2, y2`` exclusive (so ``x2 - x1`` is the width, like ``PIL.Image.crop``).
  The box is tight around the pixels the shape covers by at least half. Instances never overlap (boxes are
  kept apart), so the visible extent equals the full extent, as ImageNet boxes expect. Clutter strokes and
  dots are not category instances and have no boxes.
* ``present`` -- the synsets *directly drawn*. WordNet's hierarchy implies more: a square is a rectangle
  (square.n.01 < rectangle.n.01) and a circle is an ellipse (circle.n.01 < ellipse.n.01), so an image with
  a square is also positive for rectangle. :func:`implied` adds those ancestors, ``DemoImage.positive``
  uses it, and negatives never contain the query synset or any hyponym of it. Note that WordNet does *not*
  put square under rhombus (whose gloss says "oblique-angled"), so a square is a confusable negative there.

Deterministic: image ``i`` of category ``q`` is drawn from ``numpy.random.default_rng([seed, q, i])`` and
the JPEG bytes are identical across runs. Pure module: Pillow, numpy and the standard library only.

    python -m annotation.demo_images OUT_DIR --seed 1 --per-synset 50
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

JPEG_QUALITY = 85
SIZES: tuple[tuple[int, int], ...] = ((512, 384), (384, 512), (512, 512), (512, 320), (448, 336))
MIN_RADIUS = 14.0  # px; the smallest instance is ~28 px across
GAP = 8.0  # px kept free between the boxes of two instances
SUPERSAMPLE = 4


@dataclass(frozen=True)
class ShapeClass:
    wnid: str  # ImageNet style: "n" + 8-digit WordNet 3.0 noun offset
    name: str  # NLTK synset name
    label: str
    parent: str | None  # wnid of the nearest ancestor among SHAPES (WordNet hypernym chain)
    confusable: tuple[str, ...]  # labels drawn in hard negatives; never the class or a hyponym of it


# Checked with NLTK's WordNet 3.0 ("n%08d" % synset.offset()). Relevant hypernym chains:
#   circle.n.01 < ellipse.n.01 < conic_section.n.01 < plane_figure.n.01
#   square.n.01 < rectangle.n.01 < parallelogram.n.01 < quadrilateral.n.01 < polygon.n.01 < plane_figure.n.01
#   (square.n.01 is also < regular_polygon.n.01; it is NOT under rhombus.n.01)
#   rhombus.n.01 < parallelogram.n.01;  triangle.n.01, pentagon.n.03, hexagon.n.01 < polygon.n.01
#   star.n.05, heart.n.07 < plane_figure.n.01
SHAPES: tuple[ShapeClass, ...] = (
    ShapeClass("n13873502", "circle.n.01", "circle", "n13878306", ("ellipse", "hexagon")),
    ShapeClass("n13878306", "ellipse.n.01", "ellipse", None, ("hexagon", "heart")),
    ShapeClass("n13879320", "triangle.n.01", "triangle", None, ("pentagon", "rhombus")),
    ShapeClass("n13878634", "square.n.01", "square", "n13883346", ("rectangle", "rhombus")),
    ShapeClass("n13883346", "rectangle.n.01", "rectangle", None, ("rhombus", "hexagon")),
    ShapeClass("n13882961", "rhombus.n.01", "rhombus", None, ("square", "rectangle")),
    ShapeClass("n13882201", "pentagon.n.03", "pentagon", None, ("hexagon", "star")),
    ShapeClass("n13882276", "hexagon.n.01", "hexagon", None, ("pentagon", "circle")),
    ShapeClass("n13881644", "star.n.05", "star", None, ("pentagon", "triangle")),
    ShapeClass("n13865904", "heart.n.07", "heart", None, ("circle", "triangle")),
)
BY_WNID: dict[str, ShapeClass] = {s.wnid: s for s in SHAPES}
BY_LABEL: dict[str, ShapeClass] = {s.label: s for s in SHAPES}


def ancestors(wnid: str) -> frozenset[str]:
    """The wnid itself and its ancestors among SHAPES."""
    out: set[str] = set()
    cur: str | None = wnid
    while cur is not None:
        out.add(cur)
        cur = BY_WNID[cur].parent
    return frozenset(out)


def implied(wnids: frozenset[str] | set[str]) -> frozenset[str]:
    """Drawn synsets plus every ancestor among SHAPES (what the image is positive for)."""
    return frozenset().union(*(ancestors(w) for w in wnids))


def descendants(wnid: str) -> frozenset[str]:
    """The wnid itself and its hyponyms among SHAPES."""
    return frozenset(s.wnid for s in SHAPES if wnid in ancestors(s.wnid))


@dataclass(frozen=True)
class DemoObject:
    wnid: str
    box: tuple[int, int, int, int]  # x1, y1 inclusive; x2, y2 exclusive


@dataclass(frozen=True)
class DemoImage:
    name: str  # "<query wnid>_<index:05d>", ImageNet-like
    query_wnid: str
    kind: str  # "positive" | "confusable" | "clutter"
    objects: tuple[DemoObject, ...]
    present: frozenset[str]  # synsets directly drawn; ancestors are implied, see implied()
    jpeg: bytes
    width: int
    height: int

    @property
    def positive(self) -> bool:
        return self.query_wnid in implied(self.present)

    @property
    def file(self) -> str:
        return f"{self.query_wnid}/{self.name}.jpg"


# ---------------------------------------------------------------------------------------------- outlines
# Each returns polygon vertices around (0, 0) with max |vertex| == 1 (image axes: y points down).
# ``hard`` makes the shape closer to its confusable neighbour (near-square rectangle, near-round ellipse).

Outline = Callable[[np.random.Generator, bool], np.ndarray]


def _ring(n: int, radii: np.ndarray | float = 1.0, phase: float = -math.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([np.cos(t), np.sin(t)], axis=1) * np.reshape(radii, (-1, 1))


def _unit(p: np.ndarray) -> np.ndarray:
    p = p - (p.max(axis=0) + p.min(axis=0)) / 2
    return p / np.hypot(p[:, 0], p[:, 1]).max()


def _circle(rng: np.random.Generator, hard: bool) -> np.ndarray:
    return _ring(128)


def _ellipse(rng: np.random.Generator, hard: bool) -> np.ndarray:
    aspect = rng.uniform(1.2, 1.35) if hard else rng.uniform(1.35, 2.2)
    return _ring(128) * [1.0, 1.0 / aspect]


def _triangle(rng: np.random.Generator, hard: bool) -> np.ndarray:
    t = -math.pi / 2 + np.radians(np.array([0, 120, 240]) + rng.uniform(-25, 25, 3))  # all angles 35-85 degrees
    return _unit(np.stack([np.cos(t), np.sin(t)], axis=1))


def _square(rng: np.random.Generator, hard: bool) -> np.ndarray:
    return _unit(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float))


def _rectangle(rng: np.random.Generator, hard: bool) -> np.ndarray:
    b = 1.0 / (rng.uniform(1.2, 1.4) if hard else rng.uniform(1.4, 2.6))
    return _unit(np.array([[-1, -b], [1, -b], [1, b], [-1, b]]))


def _rhombus(rng: np.random.Generator, hard: bool) -> np.ndarray:
    a = math.radians(rng.uniform(68, 78) if hard else rng.uniform(42, 68)) / 2  # half the acute angle
    p, q = math.cos(a), math.sin(a)
    return _unit(np.array([[-p, 0], [0, -q], [p, 0], [0, q]]))


def _pentagon(rng: np.random.Generator, hard: bool) -> np.ndarray:
    return _unit(_ring(5, rng.uniform(0.92, 1.0, 5)))


def _hexagon(rng: np.random.Generator, hard: bool) -> np.ndarray:
    stretch = 1.0 if hard else rng.uniform(1.0, 1.4)
    return _unit(_ring(6, 1.0, rng.choice([0.0, math.pi / 6])) * [stretch, 1.0])


def _star(rng: np.random.Generator, hard: bool) -> np.ndarray:
    n = 5 if hard or rng.random() < 0.7 else 6
    radii = np.tile([1.0, rng.uniform(0.38, 0.5)], n)
    return _unit(_ring(2 * n, radii))


def _heart(rng: np.random.Generator, hard: bool) -> np.ndarray:
    """A diamond with semicircles on its two upper sides: round lobes, a 90-degree tip."""
    r = math.sqrt(0.5)
    left = np.radians(np.linspace(135, 315, 48))
    right = np.radians(np.linspace(225, 405, 48))
    lobes = [np.stack([c + r * np.cos(t), -0.5 + r * np.sin(t)], axis=1) for c, t in ((-0.5, left), (0.5, right))]
    return _unit(np.concatenate([[[0.0, 1.0]], *lobes]))


OUTLINES: dict[str, Outline] = {
    "circle": _circle, "ellipse": _ellipse, "triangle": _triangle, "square": _square,
    "rectangle": _rectangle, "rhombus": _rhombus, "pentagon": _pentagon, "hexagon": _hexagon,
    "star": _star, "heart": _heart,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- scene
@dataclass(frozen=True)
class _Placed:
    wnid: str
    mask: np.ndarray  # float32 coverage 0..1 over the patch
    x0: int  # patch position in the image
    y0: int
    box: tuple[int, int, int, int]


def _rasterize(points: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Anti-aliased coverage of a polygon given in image pixels: (mask, x0, y0) of the patch."""
    x0, y0 = (math.floor(v) - 1 for v in points.min(axis=0))
    x1, y1 = (math.ceil(v) + 1 for v in points.max(axis=0))
    canvas = Image.new("L", ((x1 - x0) * SUPERSAMPLE, (y1 - y0) * SUPERSAMPLE), 0)
    local = (points - [x0, y0]) * SUPERSAMPLE
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in local.tolist()], fill=255)
    mask = np.asarray(canvas.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0
    return mask, x0, y0


def _box_of(mask: np.ndarray, x0: int, y0: int) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask.max(axis=1) >= 0.5)[0], np.nonzero(mask.max(axis=0) >= 0.5)[0]
    return (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)


def _place(rng: np.random.Generator, labels: list[tuple[str, bool]], w: int, h: int) -> list[_Placed]:
    """Non-overlapping instances fully inside the image; may drop late ones if the image is full."""
    placed: list[_Placed] = []
    r_max = min(w, h) * (0.42, 0.42, 0.3, 0.24)[len(labels)]
    for label, hard in labels:
        outline = OUTLINES[label](rng, hard)
        limit = math.radians(35) if label == "heart" else math.pi
        angle = rng.uniform(-limit, limit)
        rot = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
        shape = outline @ rot
        r = math.exp(rng.uniform(math.log(MIN_RADIUS), math.log(r_max)))
        for attempt in range(40):
            if attempt and attempt % 10 == 0:
                r = max(MIN_RADIUS, r * 0.8)
            pts = shape * r
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            cx = rng.uniform(3 - lo[0], w - 3 - hi[0]) if hi[0] - lo[0] < w - 6 else None
            cy = rng.uniform(3 - lo[1], h - 3 - hi[1]) if hi[1] - lo[1] < h - 6 else None
            if cx is None or cy is None:
                continue
            x1, y1, x2, y2 = cx + lo[0], cy + lo[1], cx + hi[0], cy + hi[1]
            if all(
                x2 + GAP < p.box[0] or p.box[2] + GAP < x1 or y2 + GAP < p.box[1] or p.box[3] + GAP < y1 for p in placed
            ):
                mask, x0, y0 = _rasterize(pts + np.array([cx, cy]))
                placed.append(_Placed(BY_LABEL[label].wnid, mask, x0, y0, _box_of(mask, x0, y0)))
                break
    return placed


def _hsv(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    hue, sat, val = rng.random(), rng.uniform(*s), rng.uniform(*v)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return 255 * val * (1 - sat * np.clip(np.minimum(k, 4 - k), 0, 1))


def _luma(c: np.ndarray) -> np.ndarray:
    return c @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Channel-first float32 (3, h, w): two-colour gradient, tinted blotches, grain, stripes or tiles."""
    xx, yy = np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
    theta = rng.uniform(0, 2 * math.pi)
    t = xx * np.float32(math.cos(theta)) + yy * np.float32(math.sin(theta))
    t = (t - t.min()) / (t.max() - t.min())
    c1, c2 = _hsv(rng, (0.05, 0.6), (0.2, 0.95)), _hsv(rng, (0.05, 0.6), (0.2, 0.95))
    blotch = rng.random((int(rng.integers(3, 9)), int(rng.integers(3, 9)))).astype(np.float32)
    blotch = np.asarray(Image.fromarray(blotch, "F").resize((w, h), Image.Resampling.BICUBIC))
    blotch = (blotch - np.float32(0.5)) * np.float32(rng.uniform(10, 50))
    tint = _hsv(rng, (0.0, 0.4), (0.8, 1.0)) / 255
    texture, amp = int(rng.integers(4)), np.float32(rng.uniform(3, 12))
    if texture == 1:  # stripes / wood grain
        phi, freq, wobble = rng.uniform(0, math.pi), rng.uniform(0.15, 0.8), rng.uniform(0.01, 0.05)
        u = xx * np.float32(math.cos(phi)) + yy * np.float32(math.sin(phi))
        u += 6 * np.sin(yy * np.float32(wobble))
        light = amp * np.sin(u * np.float32(freq))
    elif texture == 2:  # tiles
        cell = int(rng.integers(12, 48))
        parity = (np.arange(w)[None, :] // cell + np.arange(h)[:, None] // cell) & 1
        light = amp * parity.astype(np.float32) - amp / 2
    elif texture == 3:  # grain
        light = np.frombuffer(rng.bytes(h * w), np.uint8).reshape(h, w) * (amp / 255) - amp / 2
    else:
        light = np.zeros((h, w), np.float32)
    img = np.empty((3, h, w), np.float32)
    for ch in range(3):
        img[ch] = t * np.float32(c2[ch] - c1[ch])
        img[ch] += blotch * np.float32(tint[ch])
        img[ch] += light + np.float32(c1[ch])
    return img


def _clutter(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Strokes, open arcs and specks on the background: plainly no category instances, never boxed."""
    h, w = img.shape[1:]
    layer = _to_image(img)
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(0, 14))):
        colour = tuple(int(c) for c in _hsv(rng, (0.0, 0.7), (0.1, 1.0)))
        kind = rng.random()
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        if kind < 0.4:
            pts = [(x, y)]
            for _ in range(int(rng.integers(1, 3))):  # open: at most a V, never a closed outline
                x, y = x + float(rng.normal(0, 60)), y + float(rng.normal(0, 60))
                pts.append((x, y))
            draw.line(pts, fill=colour, width=int(rng.integers(1, 4)))
        elif kind < 0.65:
            r, start = float(rng.uniform(10, 60)), float(rng.uniform(0, 360))
            end, width = start + float(rng.uniform(40, 160)), int(rng.integers(1, 3))
            draw.arc((x - r, y - r, x + r, y + r), start, end, fill=colour, width=width)
        else:
            r = float(rng.uniform(1, 3.5))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return np.stack([np.asarray(band) for band in layer.split()]).astype(np.float32)


def _to_image(img: np.ndarray) -> Image.Image:
    """(3, h, w) float -> RGB image."""
    u8 = np.clip(img, 0, 255).astype(np.uint8)
    return Image.merge("RGB", [Image.fromarray(u8[ch]) for ch in range(3)])


def _patch(x0: int, y0: int, ph: int, pw: int, h: int, w: int) -> tuple[slice, slice, slice, slice]:
    """Image slices and patch slices of a patch at (x0, y0) clipped to the image."""
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + pw, w), min(y0 + ph, h)
    return slice(iy0, iy1), slice(ix0, ix1), slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0)


def render(
    rng: np.random.Generator, labels: list[tuple[str, bool]], w: int, h: int, *, draw_objects: bool = True
) -> tuple[Image.Image, list[_Placed]]:
    """The scene as an RGB image (before JPEG) and the placed instances.

    ``draw_objects=False`` renders the identical scene without the instances' fill (shadows, clutter and
    noise stay); tests use it to check that the boxes are tight around what was drawn.
    """
    img = _clutter(rng, _background(rng, w, h))
    placed = _place(rng, labels, w, h)
    sun = rng.uniform(0, 2 * math.pi)  # direction towards the light
    shadow_k, shadow_d, shadow_blur = rng.uniform(0.0, 0.4), rng.uniform(2, 6), rng.uniform(1.5, 4)
    softs = []  # blurred masks: the shadow, and a darker rim that makes the shapes look rounded
    pad = 12
    for p in placed:  # soft shadows, cast away from the light
        ph, pw = p.mask.shape
        canvas = np.zeros((ph + 2 * pad, pw + 2 * pad), np.uint8)
        canvas[pad : pad + ph, pad : pad + pw] = p.mask * 255
        soft = np.asarray(Image.fromarray(canvas).filter(ImageFilter.GaussianBlur(shadow_blur)))
        softs.append(soft[pad : pad + ph, pad : pad + pw] / np.float32(255))
        sx = p.x0 - pad - round(shadow_d * math.cos(sun))
        sy = p.y0 - pad - round(shadow_d * math.sin(sun))
        iy, ix, py, px = _patch(sx, sy, *soft.shape, h, w)
        img[:, iy, ix] *= 1 - soft[py, px] * np.float32(shadow_k / 255)
    for p, soft in zip(placed, softs, strict=True):
        ph, pw = p.mask.shape
        iy, ix, py, px = _patch(p.x0, p.y0, ph, pw, h, w)
        a = p.mask[py, px]
        yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]].astype(np.float32)
        across = (xx - pw / 2) * math.cos(sun) + (yy - ph / 2) * math.sin(sun)
        shade = 1 + np.float32(rng.uniform(0.15, 0.4) / max(ph, pw)) * across  # the lit side is brighter
        shade *= 1 - np.float32(rng.uniform(0.0, 0.3)) * (1 - soft[py, px])
        inside = a >= 0.5
        lo, hi = np.percentile(_luma(img[:, iy, ix][:, inside].T), [2, 98])
        dark, bright = float(shade[inside].min()), float(shade[inside].max())
        for _ in range(40):  # a colour that stands out from the local background everywhere
            colour = _hsv(rng, (0.0, 1.0), (0.1, 1.0))
            luma = float(_luma(colour))
            if luma * dark >= hi + 35 or luma * bright <= lo - 35:
                break
        else:
            colour = np.full(3, 10.0 if 255 - hi < lo else 245.0)
        if draw_objects:
            region = img[:, iy, ix]
            fill = np.clip(colour.astype(np.float32)[:, None, None] * shade, 0, 255)
            img[:, iy, ix] = region + (fill - region) * a
    return _camera(rng, img), placed


def _camera(rng: np.random.Generator, img: np.ndarray) -> Image.Image:
    """Vignette, a slight separable blur and sensor noise."""
    h, w = img.shape[1:]
    xx, yy = np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    field = 1 - np.float32(rng.uniform(0.0, 0.12)) * r2
    a = np.float32(rng.uniform(0.08, 0.22))  # 3-tap kernel [a, 1 - 2a, a] along x, then y
    noise = np.frombuffer(rng.bytes(h * w), np.uint8).reshape(h, w)
    k = np.float32(rng.uniform(4, 16))
    noise = noise * (k / 255) - k / 2
    for ch in range(3):
        c = img[ch] * field
        for axis in (1, 0):
            out = c * (1 - 2 * a)
            first, last = [slice(None)] * 2, [slice(None)] * 2
            first[axis], last[axis] = slice(None, -1), slice(1, None)
            out[tuple(last)] += a * c[tuple(first)]
            out[tuple(first)] += a * c[tuple(last)]
            first[axis], last[axis] = slice(0, 1), slice(-1, None)  # replicate the border
            out[tuple(first)] += a * c[tuple(first)]
            out[tuple(last)] += a * c[tuple(last)]
            c = out
        img[ch] = c + noise
    return _to_image(img)


# ---------------------------------------------------------------------------------------------- dataset
def _labels(rng: np.random.Generator, query: ShapeClass, kind: str) -> list[tuple[str, bool]]:
    banned = descendants(query.wnid)
    labels_all = [s.label for s in SHAPES]
    others = [s.label for s in SHAPES if s.wnid not in banned]
    if kind == "positive":
        n = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
        extra = int(rng.integers(0, 4 - n)) if rng.random() < 0.4 else 0
        labels = [(query.label, False)] * n + [(str(rng.choice(labels_all)), False) for _ in range(extra)]
    elif kind == "confusable":
        n = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        labels = [(str(rng.choice(query.confusable)), True) for _ in range(n)]
    else:
        n = int(rng.choice([0, 1, 2], p=[0.3, 0.45, 0.25]))
        labels = [(str(rng.choice(others)), False) for _ in range(n)]
    return labels  # placed in this order; only the first is sure to fit, so the query comes first


def candidate(
    seed: int,
    wnid: str,
    index: int,
    kind: str,
    size: tuple[int, int] | None = None,
    *,
    draw_objects: bool = True,
) -> tuple[Image.Image, list[_Placed]]:
    """Render one candidate (before JPEG); ``generate`` encodes exactly this image."""
    rng = np.random.default_rng([seed, SHAPES.index(BY_WNID[wnid]), index])
    w, h = size if size is not None else SIZES[int(rng.integers(len(SIZES)))]
    return render(rng, _labels(rng, BY_WNID[wnid], kind), w, h, draw_objects=draw_objects)


def generate(
    *,
    seed: int,
    per_synset: int,
    size: tuple[int, int] | None = None,
    negative_rate: float = 0.3,
    synsets: tuple[str, ...] | None = None,
) -> Iterator[DemoImage]:
    """Yield ``per_synset`` candidates per category (wnids in ``synsets``, default all of SHAPES).

    ``size`` is (width, height); ``None`` varies it per image over SIZES. Exactly
    ``round(per_synset * negative_rate)`` candidates per category are negatives, half of them confusable.
    """
    if seed < 0 or per_synset < 0 or not 0 <= negative_rate <= 1:
        raise ValueError("seed and per_synset must be >= 0 and negative_rate within [0, 1]")
    if size is not None and min(size) < 128:
        raise ValueError("images must be at least 128 px on each side")
    wnids = synsets if synsets is not None else tuple(s.wnid for s in SHAPES)
    n_neg = round(per_synset * negative_rate)
    for wnid in wnids:
        query = BY_WNID[wnid]
        q = SHAPES.index(query)
        perm = np.random.default_rng([seed, q, 1 << 30]).permutation(per_synset)
        kinds = {int(i): "confusable" if k % 2 == 0 else "clutter" for k, i in enumerate(perm[:n_neg])}
        for i in range(per_synset):
            kind = kinds.get(i, "positive")
            image, placed = candidate(seed, wnid, i, kind, size)
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=JPEG_QUALITY)
            objects = tuple(DemoObject(p.wnid, p.box) for p in placed)
            yield DemoImage(
                name=f"{wnid}_{i:05d}",
                query_wnid=wnid,
                kind=kind,
                objects=objects,
                present=frozenset(o.wnid for o in objects),
                jpeg=buf.getvalue(),
                width=image.width,
                height=image.height,
            )


def write_dataset(
    out_dir: Path,
    *,
    seed: int,
    per_synset: int,
    size: tuple[int, int] | None = None,
    negative_rate: float = 0.3,
) -> Path:
    """Write ``OUT/<wnid>/<wnid>_<i>.jpg``, ``OUT/truth.jsonl`` and ``OUT/truth.csv``; return OUT.

    truth.jsonl has one object per image: file, query_wnid, kind, width, height, present (drawn),
    implied (drawn plus WordNet ancestors), positive, boxes [{wnid, x1, y1, x2, y2}].
    truth.csv has one row per box: image,wnid,x1,y1,x2,y2 (image = the relative file path).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "truth.jsonl").open("w") as jl, (out_dir / "truth.csv").open("w", newline="") as cf:
        rows = csv.writer(cf)
        rows.writerow(["image", "wnid", "x1", "y1", "x2", "y2"])
        for im in generate(seed=seed, per_synset=per_synset, size=size, negative_rate=negative_rate):
            path = out_dir / im.file
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(im.jpeg)
            boxes = [{"wnid": o.wnid, "x1": o.box[0], "y1": o.box[1], "x2": o.box[2], "y2": o.box[3]}
                     for o in im.objects]  # fmt: skip
            record = {
                "file": im.file, "query_wnid": im.query_wnid, "kind": im.kind,
                "width": im.width, "height": im.height, "present": sorted(im.present),
                "implied": sorted(implied(im.present)), "positive": im.positive, "boxes": boxes,
            }  # fmt: skip
            jl.write(json.dumps(record) + "\n")
            rows.writerows([im.file, o.wnid, *o.box] for o in im.objects)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write synthetic demo images of plane figures with ground truth.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-synset", type=int, default=50)
    parser.add_argument("--negative-rate", type=float, default=0.3)
    parser.add_argument("--size", help="WIDTHxHEIGHT for every image (default: varied)")
    args = parser.parse_args(argv)
    size = None
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
        size = (width, height)
    started = time.perf_counter()
    out = write_dataset(
        args.out_dir, seed=args.seed, per_synset=args.per_synset, size=size, negative_rate=args.negative_rate
    )
    n = args.per_synset * len(SHAPES)
    took = time.perf_counter() - started
    print(f"{n} images in {out} ({took:.1f} s, {1000 * took / max(n, 1):.1f} ms/image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
