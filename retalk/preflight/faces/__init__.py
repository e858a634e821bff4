"""Face analysis: what the service will see of the people in a video or a reference image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retalk import limits

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from retalk.preflight.faces.scan import FaceScan
    from retalk.preflight.media import Media

__all__ = ["scan_faces"]


def scan_faces(
    media: Media, role: str, reference: NDArray[Any] | None = None
) -> tuple[FaceScan | None, NDArray[Any] | None]:
    """The face scan of a gathered video or image in its role (None when there is nothing to
    look at), and for an image with one face, that face's embedding."""
    from retalk.preflight import video
    from retalk.preflight.faces.scan import scan_image, scan_video
    from retalk.preflight.frames import sample_frames

    if media.open_error is not None or media.missing_bytes:
        return None, None
    if role == "video" and media.probe is not None and media.probe.video is not None:
        stream = media.probe.video
        duration = video.duration_of(media)
        fps = video.fps_of(stream)[0]
        if not duration:
            return None, None
        frames = sample_frames(
            media.path,
            duration,
            fps or 25.0,
            count=limits.FACE_SAMPLES,
            rotation=stream.rotation,
        )
        return scan_video([(f.t, f.rgb) for f in frames], duration, reference), None
    if role == "ref" and media.image is not None:
        pixels = _image_pixels(media.path)
        return scan_image(pixels) if pixels is not None else (None, None)
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
