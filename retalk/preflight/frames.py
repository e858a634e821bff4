"""Video frames for analysis, through PyAV, sampled by time rather than by keyframe.

A sampling plan is made from the packets' times and keyframe flags (one pass that reads
packets and decodes nothing), then carried out in a second pass:

- a presence sample at least every `max_spacing` seconds, on a keyframe where one falls in
  time (a keyframe costs one frame's decode), else on a frame reached by decoding forward from
  the keyframe before it;
- the analysis times asked for, each taken by a sample already planned near it, or added.

A group of pictures is decoded only as far as its last sample and never twice; frame threads
decode it, and work no sample needs (the non-reference frames and the deblocking of H.264 and
H.265) is skipped.
Frames are turned to RGB only when a sample takes them, scaled so that the shorter side is at
most `MAX_SHORT_SIDE`: one frame at a time is held, whatever the resolution.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retalk.preflight.decoding import Tally
from retalk.preflight.source import pinned

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAX_SHORT_SIDE = 1080
"""Frames are analysed at most this size on their shorter side: the service takes at most
2048 px on a side, and the face models see 192 px crops anyway."""
MAX_LONG_SIDE = 4096
"""... and at most this on their longer side (a side of 32767 px or more aborts the face
models; the service takes 2048 at most)."""
_THREADED_PIXELS = 2048 * 2048
"""Frames up to this size are decoded by frame threads; larger ones (which the service
rejects anyway) by one thread: each frame thread holds frames of its own (an 8K clip took
443 MB with three, 249 MB with one)."""
_KEYFRAMES_ONLY_PIXELS = 4096 * 2304
"""Larger frames (8K) are sampled on keyframes only, which need no other frame held: decoding
forward holds the frames referred to, 50 MB each at 8K."""
_PAST_END_S = 2.0
"""Packets are read this far past the length analysed (their times are not in order when
frames are reordered)."""
_SKIPPABLE = {"h264", "hevc"}
"""Codecs whose decoders may skip the non-reference frames (no sample needs them) and the
deblocking filter (17 % of the decode of a 1080p clip): at the end of a 250-frame group of
pictures decoded without it, the frames differed from the filtered ones by 48 to 55 dB PSNR,
and the same face's embeddings by 0.02 to 0.05 (the same person is under 0.55)."""


@dataclass(frozen=True)
class Frame:
    t: float
    """Seconds from the start of the video."""
    rgb: NDArray[Any]
    """Height x width x 3, as displayed (the stream's rotation applied)."""
    analyse: bool = False
    """True for the frames that stand for an analysis time asked for."""


@dataclass(frozen=True)
class Plan:
    """Which times are sampled, and what that costs."""

    times: tuple[float, ...]
    """The sample times planned, ascending (the frame taken is the nearest decoded one)."""
    analyse: frozenset[int]
    """Indices into `times` of the samples that stand for an analysis time."""
    keyframes: int
    """Keyframes in the stream."""
    spacing: float
    """The longest stretch of the video between two samples (or a sample and an end)."""


@dataclass
class _Packets:
    """What the first pass learns: each packet's time and whether it is a keyframe."""

    times: list[float] = field(default_factory=list)
    keys: list[bool] = field(default_factory=list)

    @property
    def keyframe_times(self) -> list[float]:
        return sorted(t for t, key in zip(self.times, self.keys, strict=True) if key)

    def runs(self, samples: Sequence[float]) -> dict[int, int]:
        """The packets to decode, as runs from a keyframe's index to the index of the last
        packet (in decoding order) whose frame is at or before the last sample that keyframe
        serves. Without keyframe flags the first packet stands as the only keyframe."""
        if not self.times:
            return {}
        starts = [i for i, key in enumerate(self.keys) if key] or [0]
        runs: dict[int, int] = {}
        bounds = [*starts[1:], len(self.times)]
        first = sorted(zip((self.times[i] for i in starts), starts, bounds, strict=True))
        key_times = [t for t, _, _ in first]
        for t in samples:
            start, end = first[max(0, bisect.bisect_right(key_times, t + 1e-6) - 1)][1:]
            last = max((i for i in range(start, end) if self.times[i] <= t + 1e-6), default=start)
            runs[start] = max(runs.get(start, start), last)
        return runs


def plan_samples(
    keyframes: Sequence[float],
    end: float,
    analyse: Sequence[float],
    *,
    max_spacing: float,
    min_spacing: float,
    keyframes_only: bool = False,
) -> Plan:
    """Sample times for a video whose frames run from 0 to `end` with keyframes at `keyframes`:
    no two consecutive samples more than `max_spacing` apart, keyframes preferred (those less
    than `min_spacing` after the sample before are passed over), and each of `analyse` taken by
    a sample within half the analysis spacing of it, or added. With `keyframes_only`, the
    keyframes alone, each analysis time taken by the nearest."""
    keys = sorted(k for k in keyframes if 0 <= k <= end) or [0.0]
    if keyframes_only:
        times = [keys[0]]
        for k in keys[1:]:
            if k - times[-1] >= min_spacing:
                times.append(k)
        picked = {min(times, key=lambda t: abs(t - want)) for want in analyse}
        return _plan(times, picked, len(keyframes), end)
    times = [keys[0]] if keys[0] <= max_spacing else [0.0]
    while end - times[-1] > max_spacing:
        last = times[-1]
        lo = bisect.bisect_right(keys, last + min_spacing - 1e-9)
        hi = bisect.bisect_right(keys, last + max_spacing + 1e-9)
        times.append(keys[hi - 1] if hi > lo else last + max_spacing)
    if end - times[-1] > min_spacing / 2:
        times.append(end)
    tolerance = min(max_spacing, _step(analyse)) / 2
    chosen: set[float] = set()
    for want in analyse:
        i = bisect.bisect_left(times, want)
        near = min(
            (t for t in times[max(0, i - 1) : i + 1] if t not in chosen),
            key=lambda t: abs(t - want),
            default=None,
        )
        if near is None or abs(near - want) > tolerance:
            near = want
            if want not in times:
                bisect.insort(times, want)
        chosen.add(near)
    return _plan(times, chosen, len(keyframes), end)


def _plan(times: list[float], chosen: set[float], keyframes: int, end: float) -> Plan:
    gaps = [b - a for a, b in zip([0.0, *times], [*times, end], strict=True)]
    return Plan(
        tuple(times),
        frozenset(i for i, t in enumerate(times) if t in chosen),
        keyframes,
        max(gaps),
    )


def _step(times: Sequence[float]) -> float:
    return min((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


def sample_video(
    path: str,
    duration: float,
    analyse: Sequence[float],
    *,
    max_spacing: float,
    min_spacing: float,
    rotation: int = 0,
    tally: Tally | None = None,
) -> tuple[Plan, Iterator[Frame]]:
    """The plan for `path` and its frames, one at a time, in time order. A frame that cannot
    be decoded is left out, and counted in `tally` with the packets decoded."""
    import av

    packets = _Packets()
    pixels = 0
    try:
        with pinned(path) as pin, av.open(pin.path) as container:
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise ValueError("no decoder")
            pixels = (stream.codec_context.width or 0) * (stream.codec_context.height or 0)
            clock = _Clock(stream)
            previous = 0.0
            for packet in container.demux(stream):
                if packet.pts is None and packet.dts is None and packet.size == 0:
                    continue
                t = clock.of_packet(packet, previous)
                if t > duration + _PAST_END_S:
                    break  # a stream that runs on past what is analysed: not read further
                packets.times.append(t)
                packets.keys.append(bool(packet.is_keyframe))
                previous = t
    except (av.error.FFmpegError, ValueError, IndexError, OSError):
        pass  # what was read stands; an unreadable video is ffprobe's finding
    end = max(0.0, min(duration, max(packets.times, default=0.0)))
    keyframes = packets.keyframe_times or packets.times[:1] or [0.0]
    huge = pixels > _KEYFRAMES_ONLY_PIXELS
    plan = plan_samples(
        keyframes,
        end,
        analyse,
        max_spacing=max_spacing,
        min_spacing=min_spacing,
        keyframes_only=huge,
    )
    runs = packets.runs(plan.times)
    tally = tally or Tally("video")
    return plan, _decode(path, plan, runs, rotation, threads=not huge, tally=tally)


def prefetched(frames: Iterator[Frame], depth: int = 2) -> Iterator[Frame]:
    """`frames`, decoded on a thread of their own up to `depth` frames ahead, so that the
    decoding of the next frames and the analysis of this one share the cores (PyAV lets go of
    the GIL while it decodes). An error in the decoding is raised here; leaving the loop early
    stops the decoding."""
    import queue
    import threading

    done = object()
    ahead: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    worker = threading.Thread(target=decode, name="retalk-frames", daemon=True)
    worker.start()
    try:
        while True:
            item = ahead.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Frame)
            yield item
    finally:
        stop.set()
        worker.join()


def sample_frames(
    path: str, duration: float, fps: float, *, count: int, rotation: int = 0
) -> list[Frame]:
    """`count` frames, one near the middle of each of `count` equal slices of the video."""
    del fps  # the times are planned from the packets
    targets = [(i + 0.5) * duration / count for i in range(count)]
    _, frames = sample_video(
        path, duration, targets, max_spacing=duration, min_spacing=duration, rotation=rotation
    )
    return [f for f in frames if f.analyse]


def _decode(
    path: str, plan: Plan, runs: dict[int, int], rotation: int, *, threads: bool, tally: Tally
) -> Iterator[Frame]:
    """Each planned sample's frame: the packets of each run (first index: last index) are
    decoded, then the decoder is drained and reset; the packets between runs are skipped."""
    import av

    if not plan.times:
        return
    try:
        with pinned(path) as pin, av.open(pin.path) as container:
            stream = container.streams.video[0]
            context = stream.codec_context
            if context is None:
                raise ValueError("no decoder")
            if threads and (context.width or 0) * (context.height or 0) <= _THREADED_PIXELS:
                stream.thread_type = "AUTO"
            if context.name in _SKIPPABLE:
                context.skip_frame = "NONREF"
                context.options = {"skip_loop_filter": "all"}
            picker = _Picker(plan, rotation, _Clock(stream))
            index, stop = -1, None
            for packet in container.demux(stream):
                if packet.pts is None and packet.dts is None and packet.size == 0:
                    continue
                index += 1
                if index in runs:
                    if stop is not None:
                        yield from picker.take(_drain(context, tally))
                        context.flush_buffers()
                    stop = runs[index]
                if stop is None:
                    continue
                yield from picker.take(_decode_packet(context, packet, tally, picker.clock))
                if index >= stop:
                    yield from picker.take(_drain(context, tally))
                    context.flush_buffers()
                    stop = None
            if stop is not None:
                yield from picker.take(_drain(context, tally))
            tally.whole = True
            yield from picker.finish()
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as error:
        tally.error = tally.error or str(error)


def _decode_packet(context: Any, packet: Any, tally: Tally, clock: _Clock) -> list[Any]:
    import av

    tally.packets += 1
    t = clock.of_packet(packet, 0.0)
    try:
        return tally.decoded(list(context.decode(packet)), t)
    except (av.error.FFmpegError, ValueError) as error:
        tally.refused(error, t)
        return []  # a damaged packet costs its own frames only


def _drain(context: Any, tally: Tally) -> list[Any]:
    import av

    try:
        frames = list(context.decode(None))
    except (av.error.FFmpegError, ValueError):
        return []
    tally.frames += len(frames)
    return frames


class _Picker:
    """Gives each planned time the decoded frame nearest to it (frames come in time order),
    converting only the frames so chosen, each once."""

    def __init__(self, plan: Plan, rotation: int, clock: _Clock) -> None:
        self.times = plan.times
        self.analyse = plan.analyse
        self.rotation = rotation
        self.clock = clock
        self.next = 0
        """The first planned time not yet given a frame."""
        self.previous: tuple[float, Any] | None = None
        """The last frame seen."""
        self.chosen: tuple[float, NDArray[Any], bool] | None = None
        """A frame given to planned times, not yet handed out (as RGB: a decoded frame held
        keeps the decoder's buffer from being reused), and whether one is analysed."""

    def served(self, goal: float) -> bool:
        """Whether every planned time up to `goal` has its frame."""
        return self.next >= len(self.times) or self.times[self.next] > goal

    def take(self, frames: list[Any]) -> Iterator[Frame]:
        for frame in frames:
            t = self.clock.seconds(frame)
            if self.previous is not None and t <= self.previous[0]:
                continue  # left in the decoder from before a skip
            while self.next < len(self.times) and t > self.times[self.next]:
                want = self.times[self.next]
                nearer = self.previous
                if nearer is None or abs(t - want) < abs(nearer[0] - want):
                    nearer = (t, frame)
                yield from self._give(nearer)
            self.previous = (t, frame)

    def finish(self) -> Iterator[Frame]:
        """At the end of the stream, the last frame stands for the times after it."""
        if self.previous is not None:
            while self.next < len(self.times):
                yield from self._give(self.previous)
        if self.chosen is not None:
            yield Frame(*self.chosen)
            self.chosen = None

    def _give(self, candidate: tuple[float, Any]) -> Iterator[Frame]:
        analyse = self.next in self.analyse
        self.next += 1
        t, frame = candidate
        if self.chosen is not None and self.chosen[0] == t:
            self.chosen = (t, self.chosen[1], self.chosen[2] or analyse)
            return
        if self.chosen is not None:
            yield Frame(*self.chosen)
        self.chosen = (t, _rgb(frame, self.rotation), analyse)


def _rgb(frame: Any, rotation: int) -> NDArray[Any]:
    short, long = min(frame.width, frame.height), max(frame.width, frame.height)
    if short > MAX_SHORT_SIDE or long > MAX_LONG_SIDE:
        scale = min(MAX_SHORT_SIDE / short, MAX_LONG_SIDE / long)
        width = max(2, round(frame.width * scale / 2) * 2)
        height = max(2, round(frame.height * scale / 2) * 2)
        return _upright(frame.to_ndarray(format="rgb24", width=width, height=height), rotation)
    return _upright(frame.to_ndarray(format="rgb24"), rotation)


def frame_at(path: str, t: float, *, rotation: int = 0) -> Frame | None:
    """The frame shown at `t` seconds, at full size, decoded from the keyframe before it; None
    when none decodes."""
    import av

    try:
        return _frame_at(path, t, rotation)
    except (av.error.FFmpegError, ValueError, IndexError, OSError, MemoryError):
        return None


def _frame_at(path: str, t: float, rotation: int) -> Frame | None:
    import av

    with pinned(path) as pin, av.open(pin.path) as container:
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
        rate = stream.average_rate or stream.guessed_rate
        self.frame = 1 / float(rate) if rate else 1 / 25

    def seconds(self, frame: Any) -> float:
        return max(0.0, (frame.pts - self.start) * self.base) if frame.pts is not None else 0.0

    def of_packet(self, packet: Any, previous: float) -> float:
        """A packet's presentation time (its decoding time where it has none; one frame after
        the packet before where it has neither)."""
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            return previous + self.frame
        return max(0.0, float(stamp - self.start) * self.base)

    def pts(self, t: float) -> int:
        return int(self.start + t / self.base)


def _upright(rgb: NDArray[Any], rotation: int) -> NDArray[Any]:
    """Turn a stored frame the way a player shows it (ffprobe's rotation is counter-clockwise),
    as ffmpeg's own autorotation does."""
    import numpy as np

    if rotation % 360 == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=(rotation // 90) % 4))
