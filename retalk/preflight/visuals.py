"""What the HTML page draws of a gathered file, kept only when a page is asked for.

The gather keeps no frames: with `visuals` on, the face scan keeps a small JPEG of each frame
it analyses (`Thumbnail`) and the speech analysis the peaks of the audio it decoded anyway
(`peaks`). `view_of` turns a gathered `Media` into a `MediaView`, the page's input: nothing in
it needs numpy, Pillow or a model to be drawn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retalk import limits

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from retalk.preflight.faces.scan import FaceScan
    from retalk.preflight.media import Media

THUMB_HEIGHT = 160
"""A thumbnail's height in pixels (its width follows the frame's shape)."""
THUMB_QUALITY = 70
"""JPEG quality of a thumbnail: 5 to 8 KB for a 284x160 frame."""
PEAKS = 600
"""Bars of a waveform, whatever the audio's length."""
FACE_MARGIN = 0.6
"""Around a reference photo's face on the page: this share of the face's larger side each way."""


@dataclass(frozen=True)
class Thumbnail:
    """A small JPEG of a frame looked at (or of an image)."""

    t: float | None
    """Seconds into the video; None for an image."""
    jpeg: bytes
    """The JPEG file's bytes."""
    width: int
    """Pixels."""
    height: int
    """Pixels."""


@dataclass(frozen=True)
class Box:
    """A face drawn on a thumbnail."""

    box: tuple[float, float, float, float]
    """x, y, width, height in shares of the frame."""
    target: bool
    """The person the service will re-voice."""


@dataclass(frozen=True)
class Shot:
    """A thumbnail with the faces found in it."""

    thumbnail: Thumbnail
    """The picture."""
    faces: tuple[Box, ...]
    """Largest first."""


@dataclass(frozen=True)
class Stretch:
    """A stretch of a video and what the face scan saw of the target there."""

    start: float
    """Seconds."""
    end: float
    """Seconds."""
    state: str
    """`frontal`, `turned`, `small`, `found` (followed by a glance: its pose not read) or
    `absent`."""


@dataclass(frozen=True)
class MediaView:
    """What the page draws of one input."""

    path: str
    """As the report names it."""
    analysed: bool
    """Whether its faces or speech were analysed (not with `--no-content`)."""
    duration: float | None = None
    """Seconds of video or audio looked at; None for an image."""
    length: float | None = None
    """The whole file's seconds, by its metadata, when only its first `duration` was analysed
    (`limits.ANALYSIS_MAX_S`, or the face scan stopped early); None otherwise."""
    face: Thumbnail | None = None
    """An image's largest face with a margin around it (a reference photo's, beside the
    video's frames)."""
    shots: tuple[Shot, ...] = ()
    """The frames analysed (a video) or the image, with their faces."""
    presence: tuple[Stretch, ...] = ()
    """The target along the video, in time order."""
    peaks: tuple[float, ...] = ()
    """The audio's waveform: the largest sample (0 to 1) of each of `PEAKS` equal slices."""
    speech: tuple[tuple[float, float], ...] = ()
    """Stretches of speech, seconds."""
    pauses: tuple[tuple[float, float], ...] = ()
    """Stretches without speech, seconds."""


def thumbnail(rgb: NDArray[Any], t: float | None, height: int = THUMB_HEIGHT) -> Thumbnail:
    """A JPEG of `rgb` (height x width x 3) at most `height` pixels high."""
    from PIL import Image

    picture = Image.fromarray(rgb)
    if picture.height > height:
        # A box filter by a whole factor first (Pillow's fastest), then the rest: half the
        # time of one resize, with the same look at this size.
        factor = picture.height // height
        if factor > 1:
            picture = picture.reduce(factor)
        width = max(1, round(picture.width * height / picture.height))
        picture = picture.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=THUMB_QUALITY)
    return Thumbnail(t, out.getvalue(), picture.width, picture.height)


def face_thumbnail(
    rgb: NDArray[Any], box: tuple[float, float, float, float], height: int = THUMB_HEIGHT
) -> Thumbnail:
    """The face in `box` (shares of `rgb`) with `FACE_MARGIN` around it, as a JPEG at most
    `height` pixels high."""
    rows, columns = rgb.shape[:2]
    x, y, w, h = box[0] * columns, box[1] * rows, box[2] * columns, box[3] * rows
    margin = max(w, h) * FACE_MARGIN
    x0, y0 = max(0, int(x - margin)), max(0, int(y - margin))
    x1, y1 = min(columns, int(x + w + margin) + 1), min(rows, int(y + h + margin) + 1)
    return thumbnail(rgb[y0:y1, x0:x1], None, height)


def peaks(samples: NDArray[Any], bins: int = PEAKS) -> tuple[float, ...]:
    """The largest absolute sample of each of `bins` equal slices of `samples` (at most 1)."""
    import numpy as np

    if not len(samples):
        return ()
    count = min(bins, len(samples))
    edges = np.linspace(0, len(samples), count + 1).astype(int)
    loud = np.maximum.reduceat(np.abs(samples), edges[:-1])
    return tuple(round(min(float(v), 1.0), 3) for v in loud)


def view_of(media: Media) -> MediaView:
    """The page's view of a gathered file (its thumbnails and peaks, when it kept them)."""
    scan, heard = media.faces, media.speech
    if scan is None and heard is None:
        return MediaView(media.path, analysed=False)
    if heard is not None:
        return MediaView(
            media.path,
            analysed=True,
            duration=heard.duration,
            length=_length(media, heard.duration),
            peaks=heard.peaks,
            speech=heard.speech,
            pauses=heard.pauses,
        )
    assert scan is not None
    return MediaView(
        media.path,
        analysed=True,
        duration=scan.duration,
        length=_length(media, scan.duration, stopped=scan.covered is not None),
        shots=_shots(scan),
        presence=_presence(scan),
        face=scan.face_thumbnail,
    )


def partial(analysed: float, stopped: bool = False) -> bool:
    """Whether `analysed` seconds are a file's first part only: cut at `limits.ANALYSIS_MAX_S`,
    or where the face scan's time ran out (`stopped`). A decoded length a little off the
    metadata's (an MP3's estimate) is not one."""
    return stopped or analysed >= limits.ANALYSIS_MAX_S - 0.01


def _length(media: Media, analysed: float | None, *, stopped: bool = False) -> float | None:
    """The file's seconds by its metadata (its video's, else its audio's) when only the first
    `analysed` of them were analysed; else None."""
    from retalk.preflight import audio, video

    if analysed is None or not partial(analysed, stopped):
        return None
    if media.probe is not None and media.probe.video is not None:
        return video.duration_of(media)
    return audio.duration_of(media)[0]


def _shots(scan: FaceScan) -> tuple[Shot, ...]:
    by_time = {f.t: f for f in scan.frames}
    shots = []
    for thumb in scan.thumbnails:
        frame = by_time.get(thumb.t)
        faces = () if frame is None else frame.faces
        target = None if frame is None else frame.target
        shots.append(Shot(thumb, tuple(Box(face.box, i == target) for i, face in enumerate(faces))))
    return tuple(shots)


def _presence(scan: FaceScan) -> tuple[Stretch, ...]:
    """Each frame looked at, as the stretch it stands for (see `FaceScan.spans`), with the
    target's pose where the frame was analysed; neighbours of one state joined."""
    analysed = {f.t: f.target_face for f in scan.frames if f.t is not None}
    joined: list[Stretch] = []
    for start, end, shown in scan.spans():
        state = "absent"
        if shown:
            at = _nearest(analysed, start, end)
            face = analysed.get(at) if at is not None else None
            if face is None:
                state = "found"
            elif face.turned():
                state = "turned"
            elif face.size < limits.FACE_SMALL:
                state = "small"
            else:
                state = "frontal"
        joined.append(Stretch(start, end, state))
    return _joined(_posed(joined))


def _posed(stretches: list[Stretch]) -> list[Stretch]:
    """`found` (a glance: the face there, its pose not read) taken as the pose around it when
    the stretches before and after agree (or the only neighbour, at an end): a still clip
    whose glances fall between analysed frames is then frontal throughout, not frontal and
    `found` in turn."""
    posed = list(stretches)
    for i, stretch in enumerate(posed):
        if stretch.state != "found":
            continue
        before = posed[i - 1].state if i > 0 else None
        after = next((s.state for s in posed[i + 1 :] if s.state != "found"), None)
        around = {before, after} - {None}
        if len(around) == 1 and not around & {"absent", "found"}:
            posed[i] = Stretch(stretch.start, stretch.end, around.pop() or "found")
    return posed


def _joined(stretches: list[Stretch]) -> tuple[Stretch, ...]:
    """Neighbours of one state as one stretch."""
    joined: list[Stretch] = []
    for stretch in stretches:
        if joined and joined[-1].state == stretch.state:
            joined[-1] = Stretch(joined[-1].start, stretch.end, stretch.state)
        else:
            joined.append(stretch)
    return tuple(joined)


def _nearest(analysed: dict[float, Any], start: float, end: float) -> float | None:
    """The analysed frame's time within [start, end), if any."""
    return next((t for t in analysed if start <= t < end), None)
