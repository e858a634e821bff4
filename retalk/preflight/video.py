"""The video input: its rules and its facts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from retalk import limits
from retalk.findings import Finding, finding
from retalk.policy import SERVICE, Policy
from retalk.preflight import common, hints
from retalk.preflight.media import Media
from retalk.preflight.probe import Stream

_CODEC_LABELS = {"h264": "H.264", "hevc": "H.265", "vp9": "VP9", "av1": "AV1", "mpeg4": "MPEG-4"}


def _stream(media: Media) -> Stream | None:
    return media.probe.video if media.probe is not None else None


def duration_of(media: Media) -> float | None:
    """The video stream's own duration; the container's when the stream does not say."""
    stream = _stream(media)
    if stream is not None and stream.duration:
        return stream.duration
    return media.probe.duration if media.probe is not None else None


def fps_of(stream: Stream) -> tuple[float | None, str | None]:
    """The average frame rate (frames over time, right for variable-rate phone videos), else
    frames over duration, else the nominal rate; with where it came from."""
    if stream.avg_frame_rate:
        return float(stream.avg_frame_rate), "avg_frame_rate"
    if stream.nb_frames and stream.duration:
        return stream.nb_frames / stream.duration, "frames/duration"
    if stream.r_frame_rate and stream.r_frame_rate <= 240:
        return float(stream.r_frame_rate), "r_frame_rate"
    return None, None


def has_video(media: Media, policy: Policy) -> Iterator[Finding]:
    """An MP4, MOV or AVI without a video stream."""
    if media.probe is None or media.open_error or _stream(media) is not None:
        return
    if media.container is None or media.container.name not in ("mp4", "mov", "3gp", "avi"):
        return  # a wrong format: the format finding speaks
    yield finding(
        "InvalidFile.Openerror",
        media.path,
        "has no video stream (audio only?)",
        actual="no video stream",
        expected="one H.264 or H.265 video stream",
    )


def codec(media: Media, policy: Policy) -> Iterator[Finding]:
    """A video codec other than H.264 or H.265."""
    stream = _stream(media)
    if stream is None or stream.codec_name in policy.video.codecs:
        return
    name = stream.codec_name or "unknown"
    label = _CODEC_LABELS.get(name, name)
    yield finding(
        "InvalidFile.Format",
        media.path,
        f"video codec {label}; the service takes H.264 or H.265",
        expected="H.264 or H.265",
        actual=label,
        hint=hints.codec(media.path),
    )


def duration(media: Media, policy: Policy) -> Iterator[Finding]:
    """The video stream's length outside the limits, or on their unclear edge."""
    if _stream(media) is not None:
        yield from common.duration(
            media, duration_of(media), policy.video.duration, SERVICE.video.duration, "video"
        )


def frame_rate(media: Media, policy: Policy) -> Iterator[Finding]:
    """The average frame rate outside the limits (within ffprobe's rounding)."""
    stream = _stream(media)
    if stream is None:
        return
    fps, _ = fps_of(stream)
    span, service = policy.video.fps, SERVICE.video.fps
    if fps is None:
        yield finding(
            "File.Unmeasured",
            media.path,
            f"the file does not say its frame rate; the service takes {service.describe()}",
            expected=span.describe(),
        )
        return
    tolerance = limits.FPS_TOLERANCE
    if span.low - tolerance <= fps <= span.high + tolerance:
        return
    inside = replace(service, low=service.low - tolerance, high=service.high + tolerance)
    taken = f"{common.number(service.low)} to {common.number(service.high)}"
    yield finding(
        "InvalidFile.FPS",
        media.path,
        f"{common.number(fps)} fps, "
        + (common.beyond(fps, span, service) if fps in inside else f"the service takes {taken}"),
        expected=span.describe(),
        actual=f"{common.number(fps)} fps",
        hint=hints.frame_rate(media.path, span),
        policy_only=fps in inside,
    )


def resolution(media: Media, policy: Policy) -> Iterator[Finding]:
    """A displayed side outside the limits."""
    stream = _stream(media)
    size = stream.display_size if stream is not None else None
    if size is None:
        return
    width, height = size
    if width <= 0 or height <= 0:
        return  # no picture size: what cannot be decoded is `openable`'s finding
    span, service = policy.video.side, SERVICE.video.side
    if width in span and height in span:
        return
    turned = " as displayed" if stream is not None and stream.rotation in (90, 270) else ""
    if width in service and height in service:
        worst = max(width, height) if max(width, height) > span.high else min(width, height)
        limit = common.beyond(worst, span, service)
    else:
        limit = f"the service takes {service.describe()} on each side"
    yield finding(
        "InvalidFile.Resolution",
        media.path,
        f"{width}x{height}{turned}, {limit}",
        expected=f"{span.describe()} on each side",
        actual=f"{width}x{height}",
        hint=hints.resolution(media.path, width, height, span),
        policy_only=width in service and height in service,
    )


def facts(media: Media) -> dict[str, Any]:
    stream = _stream(media)
    result: dict[str, Any] = {}
    if media.probe is not None:
        result["format_name"] = media.probe.format_name
    if stream is None:
        return result
    fps, fps_source = fps_of(stream)
    width, height = stream.display_size or (None, None)
    audio = media.probe.audio if media.probe is not None else None
    result.update(
        codec=stream.codec_name,
        profile=stream.profile,
        pix_fmt=stream.pix_fmt,
        width=width,
        height=height,
        coded_width=stream.width,
        coded_height=stream.height,
        rotation=stream.rotation,
        fps=round(fps, 3) if fps is not None else None,
        fps_source=fps_source,
        duration=duration_of(media),
        bit_rate=stream.bit_rate or (media.probe.bit_rate if media.probe else None),
        audio_codec=audio.codec_name if audio else None,
    )
    return result
