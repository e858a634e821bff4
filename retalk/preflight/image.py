"""The reference image: its rules and its facts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from retalk.findings import Finding, finding
from retalk.limits import IMAGE
from retalk.preflight import common, hints
from retalk.preflight.media import Media


def shape(media: Media) -> Iterator[Finding]:
    """Long side over short side at most 2, and the long side at most 4096 px."""
    image = media.image
    if image is None:
        return
    short, long = sorted((image.width, image.height))
    aspect = long / short if short else float("inf")
    size = f"{image.width}x{image.height}"
    fix = hints.image_shape(media.path, image.width, image.height)
    if aspect > IMAGE.max_aspect:
        yield finding(
            "InvalidFile.ImageSize",
            media.path,
            f"{size} is {common.number(aspect)}:1, the service takes at most "
            f"{IMAGE.max_aspect:g}:1 (long side over short side)",
            expected=f"long/short at most {IMAGE.max_aspect:g}",
            actual=f"{common.number(aspect)} ({size})",
            hint=fix,
        )
    if long > IMAGE.max_side:
        yield finding(
            "InvalidFile.ImageSize",
            media.path,
            f"{size}: the longest side is {long} px, the service takes at most {IMAGE.max_side}",
            expected=f"longest side at most {IMAGE.max_side} px",
            actual=f"{long} px ({size})",
            hint=fix,
        )


def facts(media: Media) -> dict[str, Any]:
    image = media.image
    if image is None:
        return {}
    short, long = sorted((image.width, image.height))
    return {
        "format_name": image.format,
        "width": image.width,
        "height": image.height,
        "aspect": round(long / short, 4) if short else None,
        "mode": image.mode,
        "frames": image.frames,
        "orientation": image.orientation,
    }
