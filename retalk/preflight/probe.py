"""One ffprobe call per file, through ffmpeg-python, parsed into a typed record."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from retalk import limits
from retalk.errors import ToolKilled, ToolMissing

FFPROBE_ENV = "RETALK_FFPROBE"
"""Names the ffprobe program to run, when it is not `ffprobe` on PATH."""
FFMPEG_ENV = "RETALK_FFMPEG"
"""Names the ffmpeg program to run, when it is not `ffmpeg` on PATH."""


@dataclass(frozen=True)
class Stream:
    """One stream as ffprobe describes it; None where ffprobe does not say."""

    index: int
    codec_type: str
    codec_name: str | None
    profile: str | None = None
    width: int | None = None
    """Coded width, before any rotation."""
    height: int | None = None
    rotation: int = 0
    """Display rotation, normalised to 0, 90, 180 or 270 degrees."""
    avg_frame_rate: Fraction | None = None
    r_frame_rate: Fraction | None = None
    duration: float | None = None
    nb_frames: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    pix_fmt: str | None = None
    bit_rate: int | None = None
    attached_pic: bool = False
    """Cover art in an audio file: a picture, not a video."""

    @property
    def display_size(self) -> tuple[int, int] | None:
        """Width and height as shown: swapped when the stream is stored turned a quarter."""
        if self.width is None or self.height is None:
            return None
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class Probe:
    """What ffprobe says about a file."""

    format_name: str
    format_long_name: str | None
    duration: float | None
    bit_rate: int | None
    major_brand: str | None
    streams: tuple[Stream, ...]

    @property
    def video(self) -> Stream | None:
        """The first real video stream (cover art does not count)."""
        return next(
            (s for s in self.streams if s.codec_type == "video" and not s.attached_pic), None
        )

    @property
    def audio(self) -> Stream | None:
        return next((s for s in self.streams if s.codec_type == "audio"), None)


class ProbeFailed(Exception):
    """ffprobe ran and could not read the file; the message is ffprobe's last word."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        """It gave no answer in time: a verdict of the machine's speed, not to be kept."""


def killed(tool: str, returncode: int) -> ToolKilled:
    """The error of `tool` ended by the signal `-returncode`."""
    import signal

    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return ToolKilled(f"{tool} was ended by {name} (out of memory, or killed): nothing was judged")


def ffprobe_command() -> str:
    return os.environ.get(FFPROBE_ENV) or "ffprobe"


def ffmpeg_command() -> str:
    return os.environ.get(FFMPEG_ENV) or "ffmpeg"


def run_ffprobe(path: str, *, pass_fds: tuple[int, ...] = ()) -> dict[str, Any]:
    """ffprobe's JSON for `path` (with `pass_fds`, a `source.pinned` path to an open file).
    Raises ToolMissing when ffprobe cannot be started, ToolKilled when a signal ends it, and
    ProbeFailed when it cannot read the file or takes longer than `limits.TOOL_TIMEOUT_S`."""
    import subprocess

    from ffmpeg._utils import convert_kwargs_to_cmd_line_args

    command = ffprobe_command()
    if shutil.which(command) is None:
        raise ToolMissing(command, "install ffmpeg (Debian: apt-get install ffmpeg)")
    # `file:` and an absolute path: a name with a leading dash or a colon stays a file name.
    # A URL is a `loopback.served` one: retalk's own, on 127.0.0.1.
    url = path.startswith("http://127.0.0.1:")
    target = path if url else "file:" + os.path.abspath(path)
    # ffmpeg-python's `probe`, with a deadline (its own waits for ever): the same command line.
    args = [command, "-show_format", "-show_streams", "-of", "json"]
    options = {
        "v": "error",
        "max_alloc": str(limits.TOOL_MAX_ALLOC),
        "format_whitelist": ",".join(limits.TOOL_DEMUXERS),
    }
    if url:
        options.update(url_options())
    args += [*convert_kwargs_to_cmd_line_args(options), target]
    try:
        run = subprocess.run(
            args,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            pass_fds=pass_fds,
            timeout=limits.TOOL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        said = f"ffprobe gave no answer in {limits.TOOL_TIMEOUT_S:g} s"
        raise ProbeFailed(said, timed_out=True) from None
    except OSError as error:
        raise ToolMissing(command, str(error)) from None
    if run.returncode < 0:
        raise killed(command, run.returncode)
    if run.returncode != 0:
        raise ProbeFailed(_refused_format(run.stderr) or _ffprobe_says(run.stderr, target)
                          or "ffprobe failed")  # fmt: skip
    try:
        data: dict[str, Any] = json.loads(run.stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ProbeFailed(f"ffprobe's answer could not be read ({error})") from None
    if not isinstance(data, dict):
        raise ProbeFailed("ffprobe's answer could not be read")
    return data


def url_options() -> dict[str, str]:
    """ffmpeg's options for reading a served URL: give up on silence within the tools' time,
    and keep a small receive buffer (what is fetched ahead is counted as read)."""
    return {
        "rw_timeout": str(int(limits.TOOL_TIMEOUT_S * 1_000_000)),
        "recv_buffer_size": str(64 * 1024),
    }


def _refused_format(stderr: bytes | None) -> str | None:
    """What ffprobe's refusal of a demuxer outside `limits.TOOL_DEMUXERS` means, or None."""
    refused = re.search(rb"\[(\w+) @ 0x[0-9a-f]+\] Format not on whitelist", stderr or b"")
    if refused is None:
        return None
    guess = refused.group(1).decode()
    return f"its content is in none of the media formats retalk reads (ffmpeg's guess: {guess})"


def _ffprobe_says(stderr: bytes | None, target: str) -> str:
    """ffprobe's complaint in one line, without the path it was given and the demuxer's address."""
    said = []
    for line in (stderr or b"").decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith(target + ": "):
            line = line[len(target) + 2 :]
        line = re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\] ", "", line)
        if line and line not in said:
            said.append(line)
    return "; ".join(said[-2:])


def parse_probe(data: Mapping[str, Any]) -> Probe:
    """A typed record from ffprobe's `-show_format -show_streams` JSON."""
    fmt = data.get("format", {})
    return Probe(
        format_name=str(fmt.get("format_name", "")),
        format_long_name=fmt.get("format_long_name"),
        duration=_float(fmt.get("duration")),
        bit_rate=_int(fmt.get("bit_rate")),
        major_brand=(fmt.get("tags") or {}).get("major_brand"),
        streams=tuple(_stream(s) for s in data.get("streams", [])),
    )


def _stream(s: Mapping[str, Any]) -> Stream:
    return Stream(
        index=int(s.get("index", 0)),
        codec_type=str(s.get("codec_type", "")),
        codec_name=s.get("codec_name"),
        profile=s.get("profile"),
        width=_int(s.get("width")),
        height=_int(s.get("height")),
        rotation=_rotation(s),
        avg_frame_rate=_rate(s.get("avg_frame_rate")),
        r_frame_rate=_rate(s.get("r_frame_rate")),
        duration=_float(s.get("duration")),
        nb_frames=_int(s.get("nb_frames")),
        sample_rate=_int(s.get("sample_rate")),
        channels=_int(s.get("channels")),
        pix_fmt=s.get("pix_fmt"),
        bit_rate=_int(s.get("bit_rate")),
        attached_pic=bool((s.get("disposition") or {}).get("attached_pic")),
    )


def _rotation(s: Mapping[str, Any]) -> int:
    """From the display matrix side data (ffmpeg 5 and later) or the `rotate` tag (before)."""
    for side in s.get("side_data_list") or ():
        if "rotation" in side:
            return _quarter(side["rotation"])
    tag = (s.get("tags") or {}).get("rotate")
    return _quarter(tag) if tag is not None else 0


def _quarter(value: Any) -> int:
    try:
        degrees = round(float(value))
    except (TypeError, ValueError):
        return 0
    return (round(degrees / 90) * 90) % 360


def _rate(value: Any) -> Fraction | None:
    """`30000/1001` → Fraction; `0/0` (unknown) and junk → None."""
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    try:
        rate = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number >= 0 else None  # drop NaN and negatives


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
