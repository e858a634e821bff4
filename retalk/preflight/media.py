"""Gather once: everything retalk needs to judge a file, read into one typed record.

`gather` opens the file once for its first bytes and header structure, then runs one ffprobe
(audio and video) or one Pillow open (images). Nothing here judges: the rules do, from the record.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from retalk.preflight import structure
from retalk.preflight.formats import Container, from_ffprobe, id3_size, sniff
from retalk.preflight.probe import Probe, ProbeFailed, parse_probe, run_ffprobe

if TYPE_CHECKING:
    from retalk.preflight.faces.scan import FaceScan
    from retalk.preflight.speech import SpeechScan

_HEAD_BYTES = 512


@dataclass(frozen=True)
class ImageInfo:
    """An image as Pillow reads it."""

    format: str
    width: int
    """As stored; EXIF orientation may show it turned, which changes neither limit."""
    height: int
    mode: str
    frames: int
    orientation: int
    """EXIF orientation, 1 (upright) to 8."""


@dataclass(frozen=True)
class Media:
    """One file, gathered. Fields that could not be measured are None."""

    path: str
    """As the caller named it."""
    size: int
    ending: str
    """The file name's ending, lower case, without the dot; empty when there is none."""
    container: Container | None = None
    """The format by content; None when nothing recognised it."""
    probe: Probe | None = None
    image: ImageInfo | None = None
    adts: structure.AdtsScan | None = None
    missing_bytes: int = 0
    """Bytes the file lacks by its own structure (cut short)."""
    unreadable: str | None = None
    """Why the file could not be read at all."""
    open_error: str | None = None
    """Why it could not be opened as media."""
    faces: FaceScan | None = None
    """What face analysis saw; None when it did not run (`content` off, nothing to see)."""
    speech: SpeechScan | None = None
    """What speech analysis heard in an audio file; None when it did not run."""

    @property
    def kind(self) -> str:
        """`video`, `audio` or `image` by content (a broken file by its format's usual
        content); `unknown` when nothing recognised it."""
        if self.open_error is None:
            if self.image is not None:
                return "image"
            if self.probe is not None and self.probe.video is not None:
                return "video"
            if self.probe is not None and self.probe.audio is not None:
                return "audio"
        return self.container.kind if self.container is not None else "unknown"


def gather(path: str | os.PathLike[str], *, content: bool = True) -> Media:
    """Reads what there is to know about `path` (see the module docstring). With `content`
    False, images are not decoded (their header is read only).

    Raises `retalk.errors.ToolMissing` when ffprobe is needed and missing; every problem of the
    file itself ends up in the record instead."""
    name = os.fspath(path)
    ending = os.path.splitext(name)[1].lower().lstrip(".")
    try:
        info = os.stat(name)
    except OSError as error:
        return Media(name, 0, ending, unreadable=_os_reason(error))
    if stat.S_ISDIR(info.st_mode):
        return Media(name, 0, ending, unreadable="is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        return Media(name, 0, ending, unreadable="is not a regular file (a pipe, socket or device)")
    size = info.st_size
    try:
        with open(name, "rb") as stream:
            return _gather_open(name, size, ending, stream, content)
    except OSError as error:
        return Media(name, size, ending, unreadable=_os_reason(error))


def _gather_open(name: str, size: int, ending: str, stream: BinaryIO, content: bool) -> Media:
    if size == 0:
        return Media(name, 0, ending, open_error="the file is empty (0 bytes)")
    head = stream.read(_HEAD_BYTES)
    tag = id3_size(head)
    if tag:
        stream.seek(tag)
        container = sniff(stream.read(_HEAD_BYTES))
    else:
        container = sniff(head)

    if container is not None and container.kind == "image":
        image, error = _read_image(name, content)
        return Media(name, size, ending, container, image=image, open_error=error)

    missing = 0
    adts = None
    if container is not None:
        if container.name in ("mp4", "mov", "3gp", "m4a"):
            missing = structure.bmff_missing_bytes(stream, size)
        elif container.name in ("wav", "avi"):
            missing = structure.riff_missing_bytes(head, size)
        elif container.name == "aac":
            adts = structure.scan_adts(stream, tag)
            missing = adts.missing_bytes if adts else 0

    try:
        probe = parse_probe(run_ffprobe(name))
    except ProbeFailed as failure:
        return Media(name, size, ending, container, open_error=str(failure), missing_bytes=missing)
    if container is None:
        container = from_ffprobe(probe.format_name, probe.major_brand)
    # ffprobe reads any file named .txt (and a few more) as ANSI art: that is text, not media.
    if not probe.streams or probe.format_name == "tty":
        error = "ffprobe finds no audio or video stream in it"
        return Media(name, size, ending, container, probe, open_error=error, missing_bytes=missing)
    return Media(name, size, ending, container, probe, adts=adts, missing_bytes=missing)


def _read_image(name: str, content: bool) -> tuple[ImageInfo | None, str | None]:
    from PIL import Image, UnidentifiedImageError  # lazily: not needed for audio and video

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: the limits speak instead
            with Image.open(name) as image:
                width, height = image.size
                info = ImageInfo(
                    format=str(image.format),
                    width=width,
                    height=height,
                    mode=image.mode,
                    frames=int(getattr(image, "n_frames", 1)),
                    orientation=int(image.getexif().get(0x0112, 1) or 1),
                )
                if content:
                    if image.format == "JPEG":
                        # Decoding at 1/8 scale still reads every byte: a cut file still fails.
                        image.draft(image.mode, (max(width // 8, 1), max(height // 8, 1)))
                    image.load()
    except Image.DecompressionBombError as error:
        return None, f"Pillow refuses it as a decompression bomb ({error})"
    except UnidentifiedImageError:
        return None, "Pillow cannot read it as an image"
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        return None, f"the image is broken: {error}"
    return info, None


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "no permission to read it"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    return error.strerror or str(error)
