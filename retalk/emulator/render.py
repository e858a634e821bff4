"""The emulated result: the input video with the new audio, made with ffmpeg."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Ffmpeg = Callable[..., None]
"""Runs ffmpeg with these arguments, raising when it fails."""

_SEGMENT_S = 2
"""ffmpeg's `reverse` filter holds every frame it reverses: the video is reversed two seconds
at a time, so that a 120 s 1080p video needs 0.2 GB of memory, not 10."""
_ENCODE = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def render(
    ffmpeg: Ffmpeg,
    video: Path,
    audio: Path,
    seconds: float,
    passes: int,
    extension: bool,
    out: Path,
) -> None:
    """The input video with the new audio: cut to `seconds`, or played forward, backward,
    forward … `passes` times when extended."""
    source = video
    if extension and passes > 1:
        source = _back_and_forth(ffmpeg, video, passes, out.parent)
    ffmpeg(
        "-i", str(source), "-i", str(audio), "-map", "0:v:0", "-map", "1:a:0",
        "-t", f"{seconds:.3f}", *_ENCODE, "-c:a", "aac", "-movflags", "+faststart", str(out),
    )  # fmt: skip


def _back_and_forth(ffmpeg: Ffmpeg, video: Path, passes: int, folder: Path) -> Path:
    work = folder / "passes"
    work.mkdir(exist_ok=True)
    forward = work / "forward.mp4"
    key_every = f"expr:gte(t,n_forced*{_SEGMENT_S})"
    ffmpeg(
        "-i", str(video), "-map", "0:v:0", *_ENCODE, "-force_key_frames", key_every, str(forward)
    )
    ffmpeg(
        "-i", str(forward), "-c", "copy", "-f", "segment", "-segment_time", str(_SEGMENT_S),
        "-reset_timestamps", "1", str(work / "part%05d.mp4"),
    )  # fmt: skip
    parts = sorted(work.glob("part*.mp4"))
    for part in parts:
        ffmpeg("-i", str(part), "-vf", "reverse", *_ENCODE, str(part.with_name("r" + part.name)))
    backward = work / "backward.mp4"
    _concat(ffmpeg, [p.with_name("r" + p.name) for p in reversed(parts)], backward)
    played = work / "played.mp4"
    _concat(ffmpeg, [forward if i % 2 == 0 else backward for i in range(passes)], played)
    return played


def _concat(ffmpeg: Ffmpeg, pieces: list[Path], out: Path) -> None:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in pieces))
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out))
