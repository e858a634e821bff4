"""Gather once: everything retalk needs to judge a file, read into one typed record.

`gather` opens the file once for its first bytes and header structure, then runs one ffprobe
(audio and video) or one Pillow open (images). Nothing here judges: the rules do, from the record.
"""

from __future__ import annotations

import os
import struct
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO

from retalk import limits
from retalk.preflight import lfs, structure
from retalk.preflight.decoding import Decoded, decode_stream, too_large
from retalk.preflight.formats import Container, from_ffprobe, id3_size, sniff
from retalk.preflight.probe import Probe, ProbeFailed, parse_probe, run_ffprobe
from retalk.preflight.source import NotRegularFile, Pin, pinned

if TYPE_CHECKING:
    from retalk.preflight.faces.scan import FaceScan
    from retalk.preflight.speech import SpeechScan
    from retalk.preflight.url import UrlRead

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
    lfs: lfs.Pointer | None = None
    """What the file points to when it is a Git LFS pointer: then nothing else is read."""
    unsettled: str | None = None
    """Which tool gave no answer in time, when one did not: the result depends on the
    machine's speed (it is never stored in the result cache)."""
    decoded: Decoded | None = None
    """How much of its video (or, without one, audio) stream decoded: the start only, or all
    of it (see `decoding`); None for an image, or a file ffprobe cannot read."""
    url: UrlRead | None = None
    """How a URL input was read (None for a local file); `path` is then the URL as printed,
    its query hidden."""

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
        with pinned(name) as pin, open(pin.fd, "rb", closefd=False) as stream:
            return gather_open(name, pin, ending, stream, content)
    except NotRegularFile as error:
        return Media(name, 0, ending, unreadable=error.strerror)
    except OSError as error:
        return Media(name, 0, ending, unreadable=_os_reason(error))


def gather_open(
    name: str, pin: Pin, ending: str, stream: BinaryIO, content: bool, *, decode_image: bool = True
) -> Media:
    """`gather` on an open file: `pin` names it for the tools (a pinned file, or a URL
    `loopback` serves, with no descriptor: `fd` -1, and `size` -1 when its length is unknown),
    `stream` reads it. Without `decode_image`, an image's header is read, not its pixels."""
    size = pin.size
    if size == 0:
        return Media(name, 0, ending, open_error="the file is empty (0 bytes)")
    head = stream.read(_HEAD_BYTES)
    if lfs.looks_like(head, size):
        pointer = lfs.parse(head + stream.read(lfs.MAX_BYTES))
        if pointer is not None:
            return Media(name, size, ending, lfs=pointer)
    tag = id3_size(head)
    if tag:
        stream.seek(tag)
        container = sniff(stream.read(_HEAD_BYTES))
    else:
        container = sniff(head)

    if container is not None and container.kind == "image":
        image, error = _read_image(pin.path if pin.fd >= 0 else stream, decode=decode_image)
        return Media(name, size, ending, container, image=image, open_error=error)

    missing = 0
    adts = None
    if container is not None and size > 0:
        if container.name in ("mp4", "mov", "3gp", "m4a"):
            missing = structure.bmff_missing_bytes(stream, size)
        elif container.name in ("wav", "avi"):
            missing = structure.riff_missing_bytes(head, size)
        elif container.name == "aac":
            adts = structure.scan_adts(stream, tag)
            missing = adts.missing_bytes if adts else 0

    # The first frames are decoded while ffprobe runs, for the kind the first bytes say (and
    # again after it, when ffprobe says otherwise): opening decodes nothing, and a frame too
    # large to decode is told by the stream's size before any is.
    guess = container.kind if container is not None else None
    whole = content and guess == "audio"
    ahead = _Ahead(partial(decode_stream, pin.path, guess, whole=whole)) if guess else None
    try:
        return _probed(name, pin, ending, container, content, missing, adts, ahead)
    finally:
        if ahead is not None:
            ahead.join()  # it reads the pinned file: done before the file is let go


class _Ahead(threading.Thread):
    """A decode run beside the caller; `result()` waits for it."""

    def __init__(self, work: Callable[[], Decoded]) -> None:
        super().__init__(name="retalk-first-frames", daemon=True)
        self._work = work
        self._value: Decoded | None = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as error:  # raised in the caller
            self._error = error

    def result(self) -> Decoded | None:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


def _probed(
    name: str,
    pin: Pin,
    ending: str,
    container: Container | None,
    content: bool,
    missing: int,
    adts: structure.AdtsScan | None,
    ahead: _Ahead | None,
) -> Media:
    size = pin.size
    try:
        fds = (pin.fd,) if pin.fd >= 0 else ()
        probe = parse_probe(run_ffprobe(pin.path, pass_fds=fds))
    except ProbeFailed as failure:
        late = str(failure) if failure.timed_out else None
        return Media(
            name, size, ending, container, open_error=str(failure), missing_bytes=missing,
            unsettled=late,
        )  # fmt: skip
    if container is None and _image_demuxer(probe.format_name):
        # Named as a picture (ffmpeg reads .jpg, .png … as one by name), but Pillow and the
        # first bytes know no picture format in it.
        return Media(name, size, ending, open_error="it is no picture that can be read")
    if container is None:
        container = from_ffprobe(probe.format_name, probe.major_brand)
    # ffprobe reads any file named .txt (and a few more) as ANSI art: that is text, not media.
    if not probe.streams or probe.format_name == "tty":
        error = "ffprobe finds no audio or video stream in it"
        return Media(name, size, ending, container, probe, open_error=error, missing_bytes=missing)
    kind = "video" if probe.video is not None else "audio" if probe.audio is not None else None
    if kind is None:
        return Media(name, size, ending, container, probe, adts=adts, missing_bytes=missing)
    whole = content and kind == "audio"
    early = ahead.result() if ahead is not None else None
    seen = probe.video
    if kind == "video" and seen is not None and too_large(seen.width, seen.height, seen.pix_fmt):
        decoded = Decoded(kind, 0, 0, 0, False, skipped=True)
    elif early is not None and early.kind == kind and (early.whole or not whole):
        decoded = early
    else:
        decoded = decode_stream(pin.path, kind, whole=whole)
    return Media(
        name, size, ending, container, probe, adts=adts, missing_bytes=missing, decoded=decoded,
        open_error=decoded.reason() if decoded.nothing else None,
    )  # fmt: skip


def _read_image(
    name: str | BinaryIO, *, decode: bool = True
) -> tuple[ImageInfo | None, str | None]:
    """The image's header, and (with `decode`) its pixels decoded (a file passes only if it
    decodes), within bounds (`decodable`; a larger picture is rejected by its size alone): a
    JPEG at an eighth of its size, which still reads every byte (a cut file fails)."""
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
                    orientation=_orientation(image),
                )
                if width <= 0 or height <= 0:
                    return None, f"the image claims a size of {width}x{height}"
                if decode and decodable(image):
                    if image.format == "JPEG":
                        image.draft(image.mode, (max(width // 8, 1), max(height // 8, 1)))
                    image.load()
    except Image.DecompressionBombError as error:
        return None, f"Pillow refuses it as a decompression bomb ({error})"
    except UnidentifiedImageError:
        return None, "Pillow cannot read it as an image"
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        return None, f"the image is broken: {error}"
    except (MemoryError, RecursionError, ZeroDivisionError, TypeError, KeyError) as error:
        return None, f"the image is broken: {type(error).__name__}"
    return info, None


def decodable(image: Any) -> bool:
    """Whether an opened picture may be decoded within bounds: one of at most
    `limits.IMAGE_DECODE_MAX_PIXELS`, or a baseline JPEG in one scan of any size (decoded at a
    fraction of it, row by row). A progressive or multi-scan JPEG holds every coefficient of
    the full picture however small it is decoded (16000 x 8000: 1.5 GB); a larger picture of
    another format is decoded whole."""
    if image.width * image.height <= limits.IMAGE_DECODE_MAX_PIXELS:
        return True
    if image.format != "JPEG" or image.info.get("progressive") or image.info.get("progression"):
        return False
    # A baseline JPEG in several scans (one a component) is held whole too: 13000 x 13000 in
    # four took 1.35 GB. A start-of-scan marker cannot occur inside the coded data.
    return _scans(str(getattr(image, "filename", "") or ""), most=2) == 1


def _scans(path: str, most: int) -> int:
    """Start-of-scan markers in a JPEG file, counted up to `most`."""
    found, carry = 0, b""
    try:
        with open(path, "rb") as stream:
            while found < most and (chunk := stream.read(1 << 20)):
                data = carry + chunk
                found += data.count(b"\xff\xda")
                carry = data[-1:]
    except OSError:
        return most
    return found


def _orientation(image: Any) -> int:
    """EXIF orientation, 1 when it is missing or unreadable."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # Pillow would decode every pixel to look for an eXIf chunk after them
    try:
        value = image.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:  # a broken EXIF block is no reason to refuse the picture
        return 1


def _image_demuxer(format_name: str) -> bool:
    return format_name.startswith("image2") or format_name.endswith("_pipe")


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "no permission to read it"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    return error.strerror or str(error)
