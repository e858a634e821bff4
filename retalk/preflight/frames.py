"""Video frames for analysis, through PyAV: a few frames spread over the whole video, each
reached by seeking to the keyframe before it. A long video is never decoded whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

FORWARD_FRAMES = 12
"""Frames decoded past a keyframe to reach a sample's time, at most. A video of at most
`count * FORWARD_FRAMES` frames is decoded straight through instead: that costs no more."""


@dataclass(frozen=True)
class Frame:
    t: float
    """Seconds from the start of the video."""
    rgb: NDArray[Any]
    """Height x width x 3, as displayed (the stream's rotation applied)."""


def sample_frames(
    path: str, duration: float, fps: float, *, count: int, rotation: int = 0
) -> list[Frame]:
    """Up to `count` frames, one near the middle of each of `count` equal slices of the video.
    Where keyframes are further apart than the slices, a slice may get the keyframe before it,
    and two slices never share a frame: fewer frames come back."""
    import av

    targets = [(i + 0.5) * duration / count for i in range(count)]
    found: list[tuple[float, Any]] = []
    try:
        with av.open(os.path.abspath(path)) as container:
            stream = container.streams.video[0]
            clock = _Clock(stream)
            if duration * fps <= count * FORWARD_FRAMES:
                found = _straight_through(container, stream, clock, targets)
            else:
                found = _by_seeking(container, stream, clock, targets, fps)
    except (av.error.FFmpegError, ValueError, IndexError):
        pass  # what was read stands; an unreadable video is ffprobe's finding
    frames: list[Frame] = []
    for t, frame in found:
        if frames and abs(frames[-1].t - t) < 1e-6:
            continue
        frames.append(Frame(t, _upright(frame.to_ndarray(format="rgb24"), rotation)))
    return frames


def frame_at(path: str, t: float, *, rotation: int = 0) -> Frame | None:
    """The frame shown at `t` seconds, decoded from the keyframe before it."""
    import av

    with av.open(os.path.abspath(path)) as container:
        stream = container.streams.video[0]
        clock = _Clock(stream)
        container.seek(clock.pts(t), stream=stream, backward=True)
        best = None
        for frame in container.decode(stream):
            if best is not None and clock.seconds(frame) > t + 1e-3:
                break
            best = frame
        if best is None:
            return None
        return Frame(clock.seconds(best), _upright(best.to_ndarray(format="rgb24"), rotation))


class _Clock:
    def __init__(self, stream: Any) -> None:
        self.base = float(stream.time_base or 0) or 1 / 90000
        self.start = stream.start_time or 0

    def seconds(self, frame: Any) -> float:
        return max(0.0, (frame.pts - self.start) * self.base) if frame.pts is not None else 0.0

    def pts(self, t: float) -> int:
        return int(self.start + t / self.base)


def _straight_through(
    container: Any, stream: Any, clock: _Clock, targets: list[float]
) -> list[tuple[float, Any]]:
    found = []
    pending = iter(targets)
    target = next(pending, None)
    previous = None
    for frame in container.decode(stream):
        t = clock.seconds(frame)
        while target is not None and t > target:
            found.append(previous if previous is not None else (t, frame))
            target = next(pending, None)
        if target is None:
            break
        previous = (t, frame)
    if target is not None and previous is not None:
        found.append(previous)
    return found


def _by_seeking(
    container: Any, stream: Any, clock: _Clock, targets: list[float], fps: float
) -> list[tuple[float, Any]]:
    found = []
    reach = FORWARD_FRAMES / fps if fps else 0.0
    for target in targets:
        container.seek(clock.pts(target), stream=stream, backward=True)
        best = None
        for decoded, frame in enumerate(container.decode(stream)):
            t = clock.seconds(frame)
            if best is not None and t > target:
                break
            best = (t, frame)
            if decoded == 0 and target - t > reach:
                break  # too far to walk: the keyframe stands for this slice
            if decoded >= FORWARD_FRAMES:
                break
        if best is not None:
            found.append(best)
    return found


def _upright(rgb: NDArray[Any], rotation: int) -> NDArray[Any]:
    """Turn a stored frame the way a player shows it (ffprobe's rotation is counter-clockwise),
    as ffmpeg's own autorotation does."""
    import numpy as np

    if rotation % 360 == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=(rotation // 90) % 4))
