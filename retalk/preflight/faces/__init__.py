"""Face analysis: what the service will see of the people in a video or a reference image."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from retalk import limits

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from retalk.preflight.faces.scan import FaceScan
    from retalk.preflight.media import Media

__all__ = ["scan_faces"]

_worker: ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()
_generation = 0
"""Raised by `cancel_all`: scans asked for before it stop."""


def cancel_all() -> None:
    """Stop every face scan under way or waiting (on Ctrl-C): each ends at its next frame."""
    global _generation
    with _worker_lock:
        _generation += 1


def scan_faces(
    media: Media,
    role: str,
    reference: NDArray[Any] | None = None,
    *,
    identity: bool = False,
    samples: int = limits.FACE_SAMPLES,
    thumbnails: bool = False,
) -> tuple[FaceScan | None, NDArray[Any] | None]:
    """The face scan of a gathered video or image in its role (None when there is nothing to
    look at), and with `identity`, for an image with one face, that face's embedding. A video
    has `samples` frames analysed in full (the policy's `face-samples`). With `thumbnails`,
    the scan keeps small JPEGs of the frames analysed (or of the image), for the HTML page.

    Scans run one at a time on a thread of their own, whichever thread asks: the models serve
    one caller at a time anyway, and frames decoded on many threads leave each thread's malloc
    arena holding its own peak (six 4K clips checked side by side took 767 MB; on one thread,
    416 MB, as much as one)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retalk-faces")
        generation = _generation
    interrupted = threading.Event()

    def stop() -> bool:
        return interrupted.is_set() or _generation != generation

    scanned = _worker.submit(_scan, media, role, reference, identity, samples, stop, thumbnails)
    try:
        return scanned.result()
    except BaseException:
        interrupted.set()  # Ctrl-C: the scan ends at its next frame, and the process with it
        with contextlib.suppress(BaseException):
            scanned.result(timeout=5)  # and gives the terminal back (see `face_model`)
        raise


def _scan(
    media: Media,
    role: str,
    reference: NDArray[Any] | None,
    identity: bool,
    samples: int,
    stop: Callable[[], bool],
    thumbnails: bool = False,
) -> tuple[FaceScan | None, NDArray[Any] | None]:
    from dataclasses import replace

    from retalk.preflight import video
    from retalk.preflight.decoding import Tally, too_large
    from retalk.preflight.faces.scan import scan_image, scan_video
    from retalk.preflight.frames import prefetched, sample_video

    if media.open_error is not None or media.missing_bytes or stop():
        return None, None
    if role == "video" and media.probe is not None and media.probe.video is not None:
        stream = media.probe.video
        duration = video.duration_of(media)
        if not duration:
            return None, None
        if too_large(stream.width, stream.height, stream.pix_fmt):
            return None, None  # judged by its size alone (see `limits`)
        # A video longer than the service takes is rejected by its length: its first part is
        # looked at, whatever length it claims.
        duration = min(duration, limits.ANALYSIS_MAX_S)
        count = samples
        tally = Tally("video")
        _, frames = sample_video(
            media.path,
            duration,
            [(i + 0.5) * duration / count for i in range(count)],
            max_spacing=limits.FACE_SPACING_S,
            min_spacing=limits.FACE_SPACING_S / 2,
            rotation=stream.rotation,
            tally=tally,
        )
        budget = limits.FACE_SCAN_BUDGET_S
        scan = scan_video(
            prefetched(frames),
            duration,
            reference,
            stop=stop,
            budget=budget,
            thumbnails=thumbnails,
        )
        return replace(scan, decoded=tally.result()), None
    if role == "ref" and media.image is not None:
        pixels = _image_pixels(media.path)
        if pixels is None:
            return None, None
        return scan_image(pixels, identity=identity, thumbnails=thumbnails)
    return None, None


def _image_pixels(path: str) -> NDArray[Any] | None:
    """The image as shown (EXIF orientation applied), RGB, its longer side at most the
    service's limit (`limits.IMAGE.max_side`: a larger image is an `InvalidFile.ImageSize`
    anyway, and a side of 32767 px or more aborts the face models). None for an image of more
    than `limits.IMAGE_DECODE_MAX_PIXELS` but a single-scan baseline JPEG (see
    `media.decodable`): decoding it alone would take gigabytes (13000 x 13000: 2.5 GB)."""
    import warnings

    side = limits.IMAGE.max_side
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: the limits speak
            return _shown_pixels(path, side)
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, MemoryError):
        return None


def _on_white(picture: Any) -> Any:
    """The picture in RGB, its transparent parts white (as `retalk fix` flattens them): a
    plain RGB conversion would show them as whatever colour they hide, often black."""
    from PIL import Image

    keyed = picture.mode == "P" and "transparency" in picture.info
    if keyed or picture.mode in ("PA", "RGBa", "La", "LA"):
        picture = picture.convert("RGBA")
    if picture.mode != "RGBA":
        return picture.convert("RGB")
    flat = Image.new("RGB", picture.size, (255, 255, 255))
    flat.paste(picture, mask=picture.getchannel("A"))
    return flat


def _shown_pixels(path: str, side: int) -> NDArray[Any] | None:
    import numpy as np
    from PIL import Image, ImageOps

    from retalk.preflight.media import decodable
    from retalk.preflight.source import pinned

    with pinned(path) as pin, Image.open(pin.path) as image:
        if not decodable(image):
            return None
        # A JPEG is decoded at the least power-of-two fraction (to 1/8) that fits the side.
        fraction = 1
        while fraction < 8 and max(image.size) > side * fraction:
            fraction *= 2
        image.draft("RGB", (image.width // fraction, image.height // fraction))
        shown = _on_white(ImageOps.exif_transpose(image))
        if max(shown.size) > side:
            shown.thumbnail((side, side))
        return np.asarray(shown)
