"""The audio input: its rules and its facts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from retalk.findings import Finding, finding
from retalk.policy import SERVICE, Policy
from retalk.preflight import common, hints
from retalk.preflight.media import Media
from retalk.preflight.probe import Stream

# The codec each accepted container must carry: an MPEG layer II stream in a .mp3 is no MP3.
_CODEC_OF = {"mp3": "mp3", "aac": "aac"}


def _stream(media: Media) -> Stream | None:
    return media.probe.audio if media.probe is not None else None


def duration_of(media: Media) -> tuple[float | None, str | None]:
    """Raw AAC by its frame count (ffprobe only estimates it); else the stream's own duration,
    else the container's; with where it came from."""
    if media.adts is not None:
        return media.adts.duration, "frame count"
    stream = _stream(media)
    if stream is not None and stream.duration:
        return stream.duration, "audio stream"
    if media.probe is not None and media.probe.duration:
        return media.probe.duration, "container"
    return None, None


def codec_fits(media: Media) -> bool:
    """Whether the container holds the codec its name promises (the `codec` rule's test, which
    `fix`'s planner shares): any codec in a WAV, MP3 in an MP3, AAC in raw AAC."""
    stream = _stream(media)
    if stream is None or media.container is None:
        return True
    wanted = _CODEC_OF.get(media.container.name)
    return wanted is None or stream.codec_name == wanted


def codec(media: Media, policy: Policy) -> Iterator[Finding]:
    """A container the service takes, holding another codec (MPEG layer II in a .mp3)."""
    if codec_fits(media):
        return
    stream, found = _stream(media), media.container
    assert stream is not None and found is not None
    wanted = _CODEC_OF[found.name]
    yield finding(
        "InvalidFile.Format",
        media.path,
        f"{found.label} holding {stream.codec_name} audio, not {wanted}",
        expected=wanted,
        actual=str(stream.codec_name),
        hint=hints.convert(media.path, "audio"),
    )


def duration(media: Media, policy: Policy) -> Iterator[Finding]:
    """The audio's length outside the limits, or on their unclear edge."""
    if _stream(media) is not None:
        yield from common.duration(
            media, duration_of(media)[0], policy.audio.duration, SERVICE.audio.duration, "audio"
        )


def facts(media: Media) -> dict[str, Any]:
    stream = _stream(media)
    result: dict[str, Any] = {}
    if media.probe is not None:
        result["format_name"] = media.probe.format_name
    if stream is None:
        return result
    seconds, source = duration_of(media)
    result.update(
        codec=stream.codec_name,
        sample_rate=stream.sample_rate,
        channels=stream.channels,
        duration=seconds,
        duration_source=source,
        bit_rate=stream.bit_rate or (media.probe.bit_rate if media.probe else None),
    )
    if media.adts is not None and media.probe is not None and media.probe.duration:
        result["ffprobe_duration"] = media.probe.duration
    return result
