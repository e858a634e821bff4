"""`retalk ref-frame`: a reference image cut from the video itself, which the document calls a
fine reference. The frame shows the target face most frontally and largest; the cut keeps that
one face and passes the image limits."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from retalk.findings import Report
from retalk.limits import IMAGE
from retalk.preflight.check import PathLike, check_image, inspect, judge
from retalk.preflight.faces.scan import Face, FaceScan
from retalk.preflight.frames import frame_at

_MARGIN = 3.0
"""The cut's side, in face heights, when nothing else is in the way."""
_TIGHTEST = 1.3


@dataclass(frozen=True)
class RefFrame:
    """A reference image written from a video."""

    path: str
    t: float
    """The frame's time in the video, in seconds."""
    face: Face
    """The target face in that frame."""
    box: tuple[int, int, int, int]
    """The cut, in pixels of the displayed frame: x, y, width, height."""
    report: Report
    """`check_image` of the written file."""


_IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}
"""Pillow's format for each ending of a reference image the service takes."""


def image_format(out: PathLike) -> str:
    """Pillow's format for the image file `out`, by its ending; a ValueError for an ending that
    names no format the service takes for a reference image."""
    ending = os.path.splitext(os.fspath(out))[1].lower()
    if ending not in _IMAGE_FORMATS:
        raise ValueError(
            f"{os.fspath(out)!r} does not end in {', '.join(_IMAGE_FORMATS)}: the ending says "
            "which image format to write"
        )
    return _IMAGE_FORMATS[ending]


def write_ref_frame(source: PathLike, out: PathLike) -> tuple[Report, RefFrame | None]:
    """The video's own report (faces included) and, when it shows a face, the reference image
    written to `out` in the format its ending names (`image_format`: a ValueError for any
    other, before any work)."""
    fmt = image_format(out)
    media, _ = inspect(source, "video")
    report = judge(media, "video")
    scan = media.faces
    stream = media.probe.video if media.probe is not None else None
    best = _best(scan) if scan is not None else None
    if best is None or stream is None:
        return report, None
    t, face, others = best
    frame = frame_at(media.path, t, rotation=stream.rotation)
    if frame is None:
        return report, None
    height, width = frame.rgb.shape[:2]
    box = _cut(face, others, width, height)
    _save(frame.rgb, box, os.fspath(out), fmt)
    return report, RefFrame(os.fspath(out), frame.t, face, box, check_image(out))


def _best(scan: FaceScan) -> tuple[float, Face, list[Face]] | None:
    """The sampled frame whose target face is largest and most frontal."""
    scored = []
    for f in scan.frames:
        face = f.target_face
        if face is None or f.t is None:
            continue
        frontal = math.cos(math.radians(face.yaw or 0)) * math.cos(math.radians(face.pitch or 0))
        others = [other for i, other in enumerate(f.faces) if i != f.target]
        scored.append(
            (face.size * frontal * (1 if face.yaw is not None else 0.5), f.t, face, others)
        )
    if not scored:
        return None
    _, t, face, others = max(scored, key=lambda s: s[0])
    return t, face, others


def _cut(face: Face, others: list[Face], width: int, height: int) -> tuple[int, int, int, int]:
    """A square around the face, as large as `_MARGIN` face heights allow without taking in
    another face or leaving the frame."""
    x, y, w, h = (
        face.box[0] * width,
        face.box[1] * height,
        face.box[2] * width,
        face.box[3] * height,
    )
    cx, cy = x + w / 2, y + h / 2
    side = min(max(w, h) * _MARGIN, width, height)
    while True:
        box = _square(cx, cy, side, width, height)
        if side <= max(w, h) * _TIGHTEST or not any(_meets(box, o, width, height) for o in others):
            return box
        side *= 0.9


def _square(
    cx: float, cy: float, side: float, width: int, height: int
) -> tuple[int, int, int, int]:
    s = int(side)
    x0 = int(min(max(cx - s / 2, 0), width - s))
    y0 = int(min(max(cy - s / 2, 0), height - s))
    return x0, y0, s, s


def _meets(box: tuple[int, int, int, int], face: Face, width: int, height: int) -> bool:
    x, y, w, h = box
    fx, fy = face.box[0] * width, face.box[1] * height
    fw, fh = face.box[2] * width, face.box[3] * height
    return fx < x + w and x < fx + fw and fy < y + h and y < fy + fh


def _save(rgb: object, box: tuple[int, int, int, int], out: str, fmt: str) -> None:
    from PIL import Image

    x, y, w, h = box
    image = Image.fromarray(rgb[y : y + h, x : x + w])  # type: ignore[index]
    if max(image.size) > IMAGE.max_side:
        image.thumbnail((IMAGE.max_side, IMAGE.max_side))
    image.save(out, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
