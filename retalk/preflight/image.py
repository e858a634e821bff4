"""The reference image: its rules and its facts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from retalk.findings import Finding, finding
from retalk.policy import SERVICE, Policy
from retalk.preflight import common, hints
from retalk.preflight.media import Media


def shape(media: Media, policy: Policy) -> Iterator[Finding]:
    """Long side over short side at most 2, and the long side at most 4096 px (or the
    policy's stricter bounds)."""
    image = media.image
    if image is None:
        return
    mine, service = policy.image, SERVICE.image
    short, long = sorted((image.width, image.height))
    aspect = long / short if short else float("inf")
    size = f"{image.width}x{image.height}"
    fix = hints.image_shape(media.path, image.width, image.height, mine.max_aspect, mine.max_side)
    if aspect > mine.max_aspect:
        limit = (
            f"the service takes at most {service.max_aspect:g}:1"
            if aspect > service.max_aspect
            else common.project(
                f"{mine.max_aspect:g}:1", f"up to {service.max_aspect:g}:1", over=True
            )
        )
        yield finding(
            "InvalidFile.ImageSize",
            media.path,
            f"{size} is {common.number(aspect)}:1, {limit} (long side over short side)",
            expected=f"long/short at most {mine.max_aspect:g}",
            actual=f"{common.number(aspect)} ({size})",
            hint=fix,
            policy_only=aspect <= service.max_aspect,
        )
    if long > mine.max_side:
        limit = (
            f"the service takes at most {service.max_side}"
            if long > service.max_side
            else common.project(f"{mine.max_side} px", f"up to {service.max_side} px", over=True)
        )
        yield finding(
            "InvalidFile.ImageSize",
            media.path,
            f"{size}: the longest side is {long} px, {limit}",
            expected=f"longest side at most {mine.max_side} px",
            actual=f"{long} px ({size})",
            hint=fix,
            policy_only=long <= service.max_side,
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
