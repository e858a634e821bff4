"""How to fix what a finding names: mostly an ffmpeg command line, ready to paste."""

from __future__ import annotations

import os
import shlex

from retalk.limits import BY_ROLE, Span

_OUT = {"video": "mp4", "audio": "wav", "ref": "jpg"}


def _io(path: str, role: str, *, same_format: bool = False) -> tuple[str, str]:
    """The input quoted for a shell, and an output name beside it: `clip-fixed.mp4`. With
    `same_format`, the output keeps the input's ending where the service takes it."""
    folder, name = os.path.split(path)
    stem, ending = os.path.splitext(name)
    ending = ending.lower().lstrip(".")
    keep = same_format and ending in BY_ROLE[role].formats
    fixed = f"{stem or 'input'}-fixed.{ending if keep else _OUT[role]}"
    return shell_path(path), shell_path(os.path.join(folder, fixed))


def shell_path(path: str) -> str:
    """`path` quoted for a shell, and never taken for an option: `-take2.mp4` is written
    `./-take2.mp4`, which ffmpeg reads as a file."""
    return shell_quote(tool_path(path))


def shell_quote(word: str) -> str:
    """`word` quoted for a shell, and printable: a word holding a character that is not (a
    line break, a tab, an escape, a no-break or zero-width space) is written in bash's ANSI-C
    quotes, that character as the `\\xHH` escapes of its bytes (`$'take\\xc2\\xa01.mkv'`), so
    that what a report shows is what bash reads back when pasted, byte for byte."""
    if word.isprintable():
        return shlex.quote(word)
    return "$'" + "".join(_ansi_c(c) for c in word) + "'"


def _ansi_c(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    if char.isprintable():
        return char
    return "".join(f"\\x{b:02x}" for b in char.encode("utf-8", "surrogateescape"))


def tool_path(path: str) -> str:
    """A path as a program's argument: never taken for an option (`./-dash.mp4`) or, by
    ffmpeg, for a protocol (`./a:b.mp4`)."""
    if path.startswith("-") or (":" in path.split("/")[0] and not path.startswith("/")):
        return f"./{path}"
    return path


def convert(path: str, role: str) -> str:
    src, out = _io(path, role)
    if role == "video":
        return f"ffmpeg -i {src} -c:v libx264 -crf 18 -c:a aac {out}"
    if role == "audio":
        return f"ffmpeg -i {src} -vn -ac 1 -ar 44100 {out}"
    return f"ffmpeg -i {src} -frames:v 1 -q:v 2 {out}"


def shrink(path: str, role: str) -> str:
    src, out = _io(path, role)
    if role == "video":
        return f"ffmpeg -i {src} -c:v libx264 -crf 23 -preset slow -c:a aac {out}"
    if role == "audio":
        return f"ffmpeg -i {src} -vn -ac 1 -ar 44100 {out}"
    return f"ffmpeg -i {src} -frames:v 1 -q:v 4 {out}"


def trim(path: str, role: str, *, too_long: bool, limit: Span) -> str:
    src, out = _io(path, role, same_format=True)
    if too_long:
        return f"ffmpeg -i {src} -t {limit.high - 1:g} {out}"
    target = f"{limit.low + 0.5:g}"  # clear of the edge (`File.NearLimit`)
    if role == "video":
        return f"ffmpeg -stream_loop -1 -i {src} -t {target} {out}"
    return f"ffmpeg -i {src} -af apad=whole_dur={target} {out}"


def frame_rate(path: str, fps: Span) -> str:
    """Re-time to 30 fps, or the nearest rate `fps` allows."""
    src, out = _io(path, "video")
    rate = min(max(30.0, fps.low), fps.high)
    return f"ffmpeg -i {src} -r {rate:g} -c:v libx264 -crf 18 -c:a copy {out}"


def codec(path: str) -> str:
    src, out = _io(path, "video")
    return f"ffmpeg -i {src} -c:v libx264 -crf 18 -c:a copy {out}"


def resolution(path: str, width: int, height: int, side: Span) -> str:
    """Scale so that both sides land in `side`, keeping the shape, when one scale can."""
    src, out = _io(path, "video")
    low, high = side.low, side.high
    short, long = min(width, height), max(width, height)
    if long / short > high / low:
        return f"{long}:{short} is too elongated for {low:g} to {high:g} px: crop it first"
    factor = low / short if short < low else high / long
    w, h = _even(width * factor), _even(height * factor)
    return f"ffmpeg -i {src} -vf scale={w}:{h} -c:v libx264 -crf 18 -c:a copy {out}"


def image_shape(path: str, width: int, height: int, max_aspect: float, max_side: int) -> str:
    """Crop to the largest centred part within the aspect limit, then scale within the side."""
    src, out = _io(path, "ref")
    short, long = min(width, height), max(width, height)
    long = min(long, int(short * max_aspect))
    w, h = (long, short) if width >= height else (short, long)
    scale = min(1.0, max_side / max(w, h))
    filters = f"crop={w}:{h}"
    if scale < 1:
        filters += f",scale={_even(w * scale)}:{_even(h * scale)}"
    return f"ffmpeg -i {src} -vf {filters} -frames:v 1 -q:v 2 {out}"


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
