"""Face analysis: what the service will see of the people in a video or a reference image."""

from __future__ import annotations

import threading
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


def scan_faces(
    media: Media, role: str, reference: NDArray[Any] | None = None, *, identity: bool = False
) -> tuple[FaceScan | None, NDArray[Any] | None]:
    """The face scan of a gathered video or image in its role (None when there is nothing to
    look at), and with `identity`, for an image with one face, that face's embedding.

    Scans run one at a time on a thread of their own, whichever thread asks: the models serve
    one caller at a time anyway, and frames decoded on many threads leave each thread's malloc
    arena holding its own peak (six 4K clips checked side by side took 767 MB; on one thread,
    416 MB, as much as one)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retalk-faces")
    stop = threading.Event()
    scanned = _worker.submit(_scan, media, role, reference, identity, stop)
    try:
        return scanned.result()
    except BaseException:
        stop.set()  # Ctrl-C: the scan ends at its next frame, and the process with it
        raise


def _scan(
    media: Media,
    role: str,
    reference: NDArray[Any] | None,
    identity: bool,
    stop: threading.Event,
) -> tuple[FaceScan | None, NDArray[Any] | None]:
    from retalk.preflight import video
    from retalk.preflight.faces.scan import scan_image, scan_video
    from retalk.preflight.frames import prefetched, sample_video

    if media.open_error is not None or media.missing_bytes:
        return None, None
    if role == "video" and media.probe is not None and media.probe.video is not None:
        stream = media.probe.video
        duration = video.duration_of(media)
        if not duration:
            return None, None
        count = limits.FACE_SAMPLES
        _, frames = sample_video(
            media.path,
            duration,
            [(i + 0.5) * duration / count for i in range(count)],
            max_spacing=limits.FACE_SPACING_S,
            min_spacing=limits.FACE_SPACING_S / 2,
            rotation=stream.rotation,
        )
        return scan_video(prefetched(frames), duration, reference, stop=stop), None
    if role == "ref" and media.image is not None:
        pixels = _image_pixels(media.path)
        return scan_image(pixels, identity=identity) if pixels is not None else (None, None)
    return None, None


def _image_pixels(path: str) -> NDArray[Any] | None:
    """The image as shown (EXIF orientation applied), RGB."""
    import numpy as np
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, ValueError, SyntaxError):
        return None
