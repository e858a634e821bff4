"""Whether a stream decodes, and how much of it: ffprobe reads headers, and a file of random
bytes can carry plausible ones (1 MB of noise named .aac reads as 12 s of AAC).

Without content analysis, the first packets of the stream are decoded until a frame comes out
(three, once a packet was refused; `limits.DECODE_FIRST_PACKETS` at most). With it, an audio
stream is decoded in full, up to `limits.ANALYSIS_MAX_S`; a video's frames are counted by the
frame sampler instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from retalk import limits
from retalk.preflight.probe import url_options
from retalk.preflight.source import pinned


@dataclass(frozen=True)
class Decoded:
    """How much of a stream decoded."""

    kind: str
    """`video` or `audio`."""
    packets: int
    """Packets given to the decoder."""
    failed: int
    """Of those, the ones the decoder refused, or made a frame of with damage concealed."""
    frames: int
    """Frames that came out (for audio, frames of samples)."""
    whole: bool
    """True when the stream was read to its end (or to `limits.ANALYSIS_MAX_S`); False when
    only its start was."""
    error: str | None = None
    """The decoder's first complaint."""
    failed_at: tuple[float, ...] = ()
    """When the first refused packets were due, in seconds (at most ten)."""
    skipped: bool = False
    """Not decoded: frames larger than `limits.VIDEO_DECODE_MAX_BYTES` (judged by their
    size alone)."""

    @property
    def nothing(self) -> bool:
        """No frame came out, or next to none (`limits.UNDECODABLE_SHARE` of ten packets or
        more refused)."""
        if self.skipped:
            return False
        return self.frames == 0 or (
            self.packets >= 10 and self.failed_share >= limits.UNDECODABLE_SHARE
        )

    def reason(self) -> str:
        """Why it counts as not decoding, for an `InvalidFile.Openerror`."""
        said = f": {self.error}" if self.error else ""
        if self.frames == 0:
            return f"no {self.kind} frame of it decodes{said}"
        return f"{self.failed} of the {self.packets} {self.kind} packets read do not decode{said}"

    @property
    def failed_share(self) -> float:
        return self.failed / self.packets if self.packets else 0.0

    def to_facts(self) -> dict[str, object]:
        return {
            "packets": self.packets,
            "failed_packets": self.failed,
            "frames": self.frames,
            "read": "none (too large)" if self.skipped else "all" if self.whole else "start",
        }


def too_large(width: int | None, height: int | None, pix_fmt: object) -> bool:
    """Whether a decoded frame of this size and pixel format would be larger than
    `limits.VIDEO_DECODE_MAX_BYTES`."""
    return frame_bytes(width or 0, height or 0, pix_fmt) > limits.VIDEO_DECODE_MAX_BYTES


def frame_bytes(width: int, height: int, pix_fmt: object) -> float:
    """Bytes of one decoded frame (8-bit 4:2:0 when the format is not known)."""
    name = str(getattr(pix_fmt, "name", pix_fmt) or "").lower()
    per_pixel = 1.5
    if name.startswith(("rgba", "bgra", "argb", "abgr", "gbrap", "yuva444")):
        per_pixel = 4.0
    elif "444" in name or name.startswith(("rgb", "bgr", "gbr")):
        per_pixel = 3.0
    elif "422" in name:
        per_pixel = 2.0
    if re.search(r"(9|10|12|14|16)(le|be)$", name):
        per_pixel *= 2
    return width * height * per_pixel


class Tally:
    """Counts kept while a stream is decoded elsewhere (the frame sampler)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.packets = 0
        self.failed = 0
        self.frames = 0
        self.error: str | None = None
        self.failed_at: list[float] = []
        self.whole = False

    def refused(self, error: Exception | str, t: float) -> None:
        self.failed += 1
        self.error = self.error or (error if isinstance(error, str) else _reason(error))
        if len(self.failed_at) < 10:
            self.failed_at.append(round(t, 3))

    def decoded(self, frames: list[Any], t: float) -> list[Any]:
        """Counts `frames`, decoded from one packet due at `t`: one the decoder made by
        concealing damage (its macroblocks guessed from around them) counts as refused."""
        self.frames += len(frames)
        if any(getattr(frame, "is_corrupt", False) for frame in frames):
            self.refused("damage concealed by the decoder", t)
        return frames

    def result(self) -> Decoded:
        return Decoded(
            self.kind,
            self.packets,
            self.failed,
            self.frames,
            self.whole,
            self.error,
            tuple(self.failed_at),
        )


def decode_stream(path: str, kind: str, *, whole: bool) -> Decoded:
    """Decodes the first video (or audio) stream of `path`: its start only, or with `whole`
    all of it up to `limits.ANALYSIS_MAX_S`. A file PyAV cannot open at all is one that
    decodes nothing."""
    import av

    tally = Tally(kind)
    try:
        with _opened(path) as (name, options), av.open(name, options=options) as container:
            streams = [
                s
                for s in (container.streams.video if kind == "video" else container.streams.audio)
                if not (s.disposition & av.stream.Disposition.attached_pic)
            ]
            if not streams:
                return Decoded(kind, 0, 0, 0, True, f"no {kind} stream to decode")
            stream = streams[0]
            context = stream.codec_context
            if context is None:
                return Decoded(kind, 0, 0, 0, True, f"there is no decoder for its {kind}")
            if kind == "video" and too_large(
                getattr(context, "width", 0),
                getattr(context, "height", 0),
                context.format or _WORST_FORMAT,  # not known until a frame is decoded
            ):
                return Decoded(kind, 0, 0, 0, False, skipped=True)
            context.thread_count = 1  # one frame held, whatever size it claims
            if kind == "video" and context.name in ("h264", "hevc"):
                context.skip_frame = "NONREF"
            _read(container, stream, context, tally, whole)
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as error:
        tally.error = tally.error or _reason(error)
    return tally.result()


@contextmanager
def _opened(path: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The name PyAV opens and its options: the pinned file, or a URL `loopback` serves."""
    # `skip_frame`: opening decodes no frame to learn the stream's parameters (a frame
    # claiming 8192 x 8192 in 10-bit 4:4:4 took 476 MB right there).
    if path.startswith("http://127.0.0.1:"):
        # With no frame decoded, PyAV's stream probe reads on to its 5 MB: the whole of a
        # short clip, which over a URL is a download. The first 32 KB tell the streams.
        yield path, {"skip_frame": "all", "probesize": str(_URL_PROBE_BYTES), **url_options()}
        return
    with pinned(path) as pin:
        yield pin.path, {"skip_frame": "all"}


def _read(container: Any, stream: Any, context: Any, tally: Tally, whole: bool) -> None:
    base = float(stream.time_base or 0) or 1 / 90000
    start = stream.start_time or 0
    before_key = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        skippable = tally.kind == "video" and not tally.packets and not packet.is_keyframe
        if skippable and before_key < _BEFORE_KEY:
            before_key += 1  # a stream cut mid-group: what comes before its first keyframe
            continue  # cannot be decoded by any player
        stamp = packet.pts if packet.pts is not None else packet.dts
        t = max(0.0, (stamp - start) * base) if stamp is not None else 0.0
        if t > limits.ANALYSIS_MAX_S:
            tally.whole = True
            return
        tally.packets += 1
        try:
            tally.decoded(context.decode(packet), t)
        except _errors() as error:
            tally.refused(error, t)
        enough = 1 if not tally.failed else _FIRST_FRAMES
        if not whole and (tally.frames >= enough or tally.packets >= limits.DECODE_FIRST_PACKETS):
            return
    try:
        tally.frames += len(context.decode(None))
    except _errors():
        pass
    tally.whole = True


_URL_PROBE_BYTES = 32 * 1024
_WORST_FORMAT = "yuv444p16le"
"""The pixel format assumed for a frame's size before one is decoded: the largest."""
_BEFORE_KEY = 600
"""Packets skipped at most while looking for the first keyframe (a stream whose packets carry
no keyframe flag is decoded from there on)."""
_FIRST_FRAMES = 3
"""Frames decoded from the start, when that is all and a packet was refused on the way: one
frame of noise can come out of random bytes, three hardly. With no refusal, one frame will do."""


def _errors() -> tuple[type[Exception], ...]:
    import av

    return (av.error.FFmpegError, ValueError)


def _reason(error: BaseException) -> str:
    said = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return str(said).strip().rstrip(".")
