"""Faces found in pixels: mediapipe's detector over the whole picture and over tiles of it,
its finds merged into one box per face. The scan (frames) and `people` (still images) build
their searches from these."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from retalk.preflight.faces.model import Box, FaceModel

if TYPE_CHECKING:
    from numpy.typing import NDArray

SAME_FACE = 0.3
"""Boxes that overlap more than this (intersection over the smaller) are one face."""


def find_faces(model: FaceModel, rgb: NDArray[Any], *, fine: bool = False) -> list[Box]:
    """Faces in a frame. The detector sees its input at 192x192, so a face under about a tenth
    of a 16:9 frame's height is lost on the whole frame: the frame is also searched in square
    tiles of its shorter side and, with `fine`, in tiles of two thirds of it (measured: faces
    of 5 % of the shorter side found in 9 of 9 places, against 0 of 9 with the coarse tiles)."""
    if fine:
        return merge(tiled(model, rgb, 2 / 3))
    return merge(model.detect(rgb) + tiled(model, rgb, 1.0))


def tiled(model: FaceModel, rgb: NDArray[Any], share: float) -> list[Box]:
    """The detector's finds in square tiles of `share` of the shorter side, overlapping by at
    least half a tile (none for a whole square picture: that is the picture itself)."""
    height, width = rgb.shape[:2]
    side = int(min(width, height) * share)
    if side < 32 or (share == 1.0 and width == height):
        return []
    found = []
    for y in _starts(height, side):
        for x in _starts(width, side):
            for box in model.detect(rgb[y : y + side, x : x + side]):
                found.append(Box(box.x + x, box.y + y, box.w, box.h, box.score))
    return found


def _starts(length: int, side: int) -> list[int]:
    """Tile offsets along one axis, evenly spread, at most half a tile apart, the first and the
    last flush with the edges."""
    if length <= side:
        return [0]
    # A step a few per cent over half a tile does no harm; one tile more for it costs 5 ms.
    count = math.ceil((length - side) / max(side / 2, 1) - 0.05) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def merge(boxes: Iterable[Box]) -> list[Box]:
    """One box per face: overlapping finds of several tiles keep the surest."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(overlap(box, other) < SAME_FACE for other in kept):
            kept.append(box)
    return kept


def overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: a face found whole and cut by a tile edge is one."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(min(a.area, b.area), 1e-9)
