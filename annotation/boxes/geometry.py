"""Box geometry on numpy arrays: IoU and ILSVRC's small-object tolerance. No Django.

Convention (the same as ``annotation.demo_images`` and ``PIL.Image.crop``): a box is ``(x1, y1, x2, y2)`` in
pixels of the displayed (EXIF-transposed) image, ``x1, y1`` inclusive and ``x2, y2`` exclusive, so its width
is ``x2 - x1`` and its area ``(x2 - x1) * (y2 - y1)``. Arrays of boxes have shape ``(n, 4)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def as_boxes(boxes: ArrayLike) -> FloatArray:
    """``boxes`` as a float64 ``(n, 4)`` array; raises ValueError on a wrong shape, a non-finite coordinate
    or a box without positive width and height."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("box coordinates must be finite numbers")
    if ((arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])).any():
        raise ValueError("every box needs x2 > x1 and y2 > y1")
    return arr


def areas(boxes: ArrayLike) -> FloatArray:
    b = as_boxes(boxes)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou_matrix(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Intersection over union of every box of ``a`` with every box of ``b``: shape ``(len(a), len(b))``."""
    a = as_boxes(a)
    b = as_boxes(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def small_object_threshold(boxes: ArrayLike, base: float = 0.5) -> FloatArray:
    """ILSVRC's IoU threshold per reference box: ``min(base, w*h / ((w + 10) * (h + 10)))``.

    Russakovsky et al., "ImageNet Large Scale Visual Recognition Challenge" (IJCV 2015), section 4.3: a
    5-pixel error on each side of a tiny box already costs more than half its IoU, so small objects get a
    looser threshold. A 10x10 box needs IoU 0.25, a 30x30 box 0.5625 → 0.5."""
    b = as_boxes(boxes)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return np.minimum(base, (w * h) / ((w + 10.0) * (h + 10.0)))
