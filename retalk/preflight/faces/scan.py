"""Faces as the service sees them: found in sampled frames (or an image), the target picked by
the service's own rule (or by the reference image), followed through the video.

A video is looked at in two ways, in one pass over its frames (see `frames.sample_video`):
- analysed frames (`limits.FACE_SAMPLES`, spread evenly): every face, its head pose, and a
  small crop of it kept for the identity embedding; the target is chosen among these;
- glanced frames, at least one every `limits.FACE_SPACING_S` seconds: is each face of the
  frame before still there? One detection on a crop around each; when one is missing, the
  frame is analysed in full instead (a face found anew is then known by its identity). They
  give the timeline of the target's presence.
No frame is kept once looked at (but, for the HTML page, a small JPEG of each analysed one
when `thumbnails` asks). The scan is gathered once into a `FaceScan`; the rules in
`faces.rules` judge it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from retalk import limits
from retalk.preflight.faces.detect import find_faces
from retalk.preflight.faces.model import Box, FaceModel, face_model

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from retalk.preflight.decoding import Decoded
    from retalk.preflight.frames import Frame
    from retalk.preflight.visuals import Thumbnail

_MAX_POSED = 5
"""Faces per analysed frame whose pose and identity are read, largest first; the others are
counted only."""
_CROP_FACES = 3.0
"""The side of a glance's crop, in face sizes: room for a second's movement."""
_EMBED_SIDE = 300
"""Crops kept for identity are shrunk so that the face is at most this many pixels (dlib
aligns the face to a 150 px chip)."""
_FINE_PROBES = 6
"""Faceless analysed frames searched finely before the fine search is given up (see `_Looker`)."""
_TRACK_DISTANCE = 0.3
"""How far (in shorter sides of the frame) the target may move between two samples and still
be taken for the same face without asking the embedding."""

BY_REFERENCE = "reference"
BY_RULE = "largest face in the first frame with a face"


@dataclass(frozen=True)
class Face:
    """A face in a frame. The box is in shares of the displayed frame: x, y, width, height."""

    box: tuple[float, float, float, float]
    score: float
    size: float
    """The face's height over the frame's shorter side."""
    yaw: float | None
    """Degrees turned left or right, 0 frontal; None when no face mesh fitted."""
    pitch: float | None
    """Degrees nodded up or down, 0 level (see `pose.head_pose`)."""
    profile: bool = False
    """Found only by the detector of turned faces, and turned past what the face mesh reads."""

    def turned(self) -> bool:
        return (
            self.profile
            or (self.yaw is not None and abs(self.yaw) > limits.FACE_MAX_YAW)
            or (self.pitch is not None and abs(self.pitch) > limits.FACE_MAX_PITCH)
        )

    @property
    def where(self) -> str:
        """Where in the frame, in words: `on the left`, `in the centre`, `on the right`."""
        x = self.box[0] + self.box[2] / 2
        return "on the left" if x < 0.4 else "on the right" if x > 0.6 else "in the centre"


@dataclass(frozen=True)
class FrameFaces:
    """The faces of one sampled frame (or of an image, whose time is None)."""

    t: float | None
    faces: tuple[Face, ...]
    """Largest first."""
    target: int | None = None
    """Which of `faces` is the person the service will re-voice."""

    @property
    def target_face(self) -> Face | None:
        return self.faces[self.target] if self.target is not None else None


class Presence(NamedTuple):
    """One frame of the timeline."""

    t: float
    target: bool
    """Whether it shows the target."""
    faces: int
    """How many faces it shows (a glance counts the faces it followed, or found anew)."""


@dataclass(frozen=True)
class FaceScan:
    """What the face analysis saw in one video or image."""

    frames: tuple[FrameFaces, ...]
    duration: float | None = None
    """The video's length, for the time ranges; None for an image."""
    chosen_by: str = BY_RULE
    """How the target was picked: `BY_RULE` (the service's rule) or `BY_REFERENCE`."""
    with_reference: bool = False
    """Whether a reference face was looked for."""
    ref_distance: float | None = None
    """The least embedding distance between the reference face and any sampled face."""
    ref_frame: float | None = None
    """The time of the frame where the reference matched best."""
    timeline: tuple[Presence, ...] = ()
    """Every frame looked at, analysed or glanced, in time order: the target's presence."""
    spacing: float | None = None
    """The longest stretch of the video between two frames looked at: the accuracy of the
    times of `gaps` and of the coverage."""
    decoded: Decoded | None = None
    """How the packets decoded for the frames looked at fared; None for an image."""
    covered: float | None = None
    """Where the scan stopped when its time budget ran out (`duration` is then this): the
    video after it was not looked at. None when it was looked at to its end."""
    thumbnails: tuple[Thumbnail, ...] = ()
    """Small JPEGs of the analysed frames (or of the image), kept only for the HTML page
    (`visuals`); not in the facts."""
    face_thumbnail: Thumbnail | None = None
    """An image's largest face with a margin around it, as a small JPEG (with `thumbnails`):
    what the HTML page shows of a reference photo beside a video's frames."""

    def to_facts(self) -> dict[str, object]:
        return {
            "sampled_frames": len(self.frames),
            "timeline_frames": len(self.timeline) or None,
            "spacing_s": None if self.spacing is None else round(self.spacing, 3),
            "covered_s": None if self.covered is None else round(self.covered, 2),
            "target_chosen_by": self.chosen_by if self.target_frames else None,
            "target_coverage": round(self.coverage, 3) if self.duration else None,
            "gaps": [[round(a, 2), round(b, 2)] for a, b in self.gaps()] if self.duration else None,
            "ref_distance": None if self.ref_distance is None else round(self.ref_distance, 3),
            "frames": [
                {
                    "t": None if f.t is None else round(f.t, 3),
                    "faces": [
                        {
                            "box": [round(v, 4) for v in face.box],
                            "score": round(face.score, 3),
                            "size": round(face.size, 4),
                            "yaw": None if face.yaw is None else round(face.yaw, 1),
                            "pitch": None if face.pitch is None else round(face.pitch, 1),
                            "target": i == f.target,
                        }
                        for i, face in enumerate(f.faces)
                    ],
                }
                for f in self.frames
            ],
        }

    @property
    def by_reference(self) -> bool:
        return self.chosen_by == BY_REFERENCE

    @property
    def target_frames(self) -> list[FrameFaces]:
        return [f for f in self.frames if f.target is not None]

    @property
    def any_face(self) -> bool:
        return any(p.faces for p in self.timeline) or any(f.faces for f in self.frames)

    def spans(self) -> list[tuple[float, float, bool]]:
        """Each frame looked at with the stretch of video it stands for (from halfway to the
        frame before to halfway to the frame after; the ends reach 0 and the duration), and
        whether it shows the target."""
        seen = self.timeline or tuple(
            Presence(f.t or 0.0, f.target is not None, len(f.faces)) for f in self.frames
        )
        if not self.duration or not seen:
            return []
        times = [p.t for p in seen]
        cuts = [0.0] + [(a + b) / 2 for a, b in itertools.pairwise(times)]
        cuts.append(self.duration)
        return [(cuts[i], cuts[i + 1], p.target) for i, p in enumerate(seen)]

    def gaps(self) -> list[tuple[float, float]]:
        """The stretches without the target, `limits.FACE_GAP_MIN_S` long or more."""
        missing: list[list[float]] = []
        for start, end, shown in self.spans():
            if shown:
                continue
            if missing and abs(missing[-1][1] - start) < 1e-9:
                missing[-1][1] = end
            else:
                missing.append([start, end])
        return [(a, b) for a, b in missing if b - a >= limits.FACE_GAP_MIN_S]

    @property
    def coverage(self) -> float:
        """The share of the video whose frames looked at show the target."""
        if not self.duration:
            return 0.0
        shown = sum(end - start for start, end, target in self.spans() if target)
        return shown / self.duration


@dataclass
class _Seen:
    """An analysed frame: its faces and a small crop of each for identity, made on demand into
    embeddings. The frame itself is not kept."""

    t: float | None
    faces: list[Face]
    crops: list[tuple[NDArray[Any], Box]]
    embeddings: dict[int, NDArray[Any]]


def _face(box: Box, width: int, height: int, pose: tuple[float, float] | None) -> Face:
    return Face(
        box=(box.x / width, box.y / height, box.w / width, box.h / height),
        score=box.score,
        size=box.h / min(width, height),
        yaw=pose[0] if pose else None,
        pitch=pose[1] if pose else None,
        profile=box.source == "cnn" and pose is None,
    )


def _look(model: FaceModel, t: float | None, rgb: NDArray[Any], *, fine: bool = False) -> _Seen:
    height, width = rgb.shape[:2]
    found = find_faces(model, rgb, fine=fine)
    faces, crops = [], []
    for box in sorted(found, key=lambda b: b.area, reverse=True)[:_MAX_POSED]:
        pose = model.pose(rgb, box)
        if pose is None and box.score < limits.FACE_SURE_SCORE:
            continue  # no face mesh fits it: a pattern, not a face
        faces.append(_face(box, width, height, pose))
        crops.append(_crop(rgb, box))
    return _Seen(t, faces, crops, {})


def _crop(rgb: NDArray[Any], box: Box) -> tuple[NDArray[Any], Box]:
    """The face with a face's width of margin around it, shrunk so that the face is at most
    `_EMBED_SIDE` pixels, and the face's box within it."""
    import numpy as np
    from PIL import Image

    height, width = rgb.shape[:2]
    side = max(box.w, box.h)
    x0, y0 = int(max(0, box.x - side)), int(max(0, box.y - side))
    x1, y1 = int(min(width, box.x + box.w + side)), int(min(height, box.y + box.h + side))
    crop = rgb[y0:y1, x0:x1]
    scale = min(1.0, _EMBED_SIDE / max(side, 1.0))
    inner = Box(box.x - x0, box.y - y0, box.w, box.h, box.score)
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        inner = Box(inner.x * scale, inner.y * scale, inner.w * scale, inner.h * scale, box.score)
    return np.ascontiguousarray(crop), inner


def _glance(model: FaceModel, rgb: NDArray[Any], previous: Sequence[Face]) -> list[Face] | None:
    """The faces of the frame before, found again each in a crop around where it was; None when
    one of them is not there (or there were none): then the whole frame must be searched."""
    if not previous:
        return None
    height, width = rgb.shape[:2]
    found = []
    for face in previous:
        x, y = face.box[0] * width, face.box[1] * height
        w, h = face.box[2] * width, face.box[3] * height
        cx, cy, half = x + w / 2, y + h / 2, max(w, h) * _CROP_FACES / 2
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(width, cx + half)), int(min(height, cy + half))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        boxes = [
            Box(b.x + x0, b.y + y0, b.w, b.h, b.score) for b in model.detect(rgb[y0:y1, x0:x1])
        ]
        faces = [_face(b, width, height, None) for b in boxes]
        index = _near(face, faces)
        if index is None:
            return None
        found.append(faces[index])
    return found


@dataclass
class _Looker:
    """Looks at a video's frames one by one, in time order, and keeps what the target needs.

    The fine search (tiles of two thirds of the frame) is costly: an analysed frame where the
    coarse one found nothing gets it for the first `_FINE_PROBES` such frames, and from then
    on only if one of those found a face the coarse search missed (a video of small faces)."""

    model: FaceModel
    analysed: list[_Seen] = field(default_factory=list)
    timeline: list[tuple[float, list[Face], int | None]] = field(default_factory=list)
    """Each frame: its time, its faces, and its index in `analysed` (None for a glance)."""
    probes: int = 0
    fine_finds: bool = False
    thumbnails: list[Thumbnail] | None = None
    """With a list, a small JPEG of each analysed frame is kept in it (for the HTML page)."""

    def look(self, frame: Frame) -> None:
        if frame.analyse and self.thumbnails is not None:
            from retalk.preflight.visuals import thumbnail

            self.thumbnails.append(thumbnail(frame.rgb, frame.t))
        previous = self.timeline[-1][1] if self.timeline else []
        if not frame.analyse:
            faces = _glance(self.model, frame.rgb, previous)
            if faces is not None:
                self.timeline.append((frame.t, faces, None))
                return
        # An analysis frame; or a glance that lost a face of the frame before: looked at in
        # full, so that a face found anew (or moved far) is known by its identity.
        seen = _look(self.model, frame.t, frame.rgb)
        probe = frame.analyse and self.probes < _FINE_PROBES
        if not seen.faces and (self.fine_finds or probe):
            self.probes += probe
            seen = _look(self.model, frame.t, frame.rgb, fine=True)
            self.fine_finds |= bool(seen.faces)
        if frame.analyse or seen.faces:
            self.analysed.append(seen)
            self.timeline.append((frame.t, seen.faces, len(self.analysed) - 1))
        else:
            self.timeline.append((frame.t, [], None))


def _embedding(model: FaceModel, seen: _Seen, index: int) -> NDArray[Any]:
    if index not in seen.embeddings:
        crop, box = seen.crops[index]
        seen.embeddings[index] = model.embed(crop, box)
    return seen.embeddings[index]


def _distance(a: NDArray[Any], b: NDArray[Any]) -> float:
    import numpy as np

    return float(np.linalg.norm(a - b))


def scan_image(
    rgb: NDArray[Any], *, identity: bool = False, thumbnails: bool = False
) -> tuple[FaceScan, NDArray[Any] | None]:
    """The faces of an image, every one of them (see `people.find_people`), and with
    `identity` the embedding of its face when it has exactly one; with `thumbnails`, a small
    JPEG of the image kept in the scan."""
    from retalk.preflight.faces.people import find_people

    height, width = rgb.shape[:2]
    with face_model() as model:
        boxes = find_people(model, rgb)
        faces = [
            _face(box, width, height, model.pose(rgb, box) if rank < _MAX_POSED else None)
            for rank, box in enumerate(boxes)
        ]
        embedding = model.embed(rgb, boxes[0]) if identity and len(boxes) == 1 else None
    target = 0 if len(faces) == 1 else None
    kept: tuple[Thumbnail, ...] = ()
    crop = None
    if thumbnails:
        from retalk.preflight.visuals import face_thumbnail, thumbnail

        kept = (thumbnail(rgb, None),)
        crop = face_thumbnail(rgb, faces[0].box) if faces else None
    frame = FrameFaces(None, tuple(faces), target)
    return FaceScan((frame,), thumbnails=kept, face_thumbnail=crop), embedding


def scan_video(
    frames: Iterable[Frame],
    duration: float,
    reference: NDArray[Any] | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    budget: float | None = None,
    thumbnails: bool = False,
) -> FaceScan:
    """The faces of a video's frames (analysed and glanced, in time order), and the target
    followed through them. With a reference embedding, the target is the face that matches it;
    else the service's rule picks it. Once `stop()` says so, no further frame is looked at;
    after `budget` seconds of looking, neither, and the scan covers the video up to the last
    frame looked at (`covered`). With `thumbnails`, a small JPEG of each analysed frame is kept
    in the scan (for the HTML page)."""
    covered = None
    with face_model() as model:
        looker = _Looker(model, thumbnails=[] if thumbnails else None)
        until = time.monotonic() + budget if budget is not None else None
        for frame in frames:
            if stop is not None and stop():
                break
            if until is not None and time.monotonic() > until and looker.timeline:
                covered = looker.timeline[-1][0]
                break
            looker.look(frame)
        seen = looker.analysed

        def embed(f: int, i: int) -> NDArray[Any]:
            return _embedding(model, seen[f], i)

        chosen_by, anchor, best, best_at = BY_RULE, None, None, None
        if reference is not None:
            anchor, best, best_at = _match(seen, reference, embed)
            if anchor is not None:
                chosen_by = BY_REFERENCE
        if anchor is None:
            first = next((i for i, s in enumerate(seen) if s.faces), None)
            anchor = (first, 0) if first is not None else None
        targets: list[int | None] = [None] * len(seen)
        if anchor is not None:
            targets = _follow(seen, anchor, embed)
    return FaceScan(
        tuple(
            FrameFaces(s.t, tuple(s.faces), target) for s, target in zip(seen, targets, strict=True)
        ),
        duration=duration if covered is None else covered,
        covered=covered,
        chosen_by=chosen_by,
        with_reference=reference is not None,
        ref_distance=best,
        ref_frame=best_at,
        timeline=_presence(looker.timeline, targets),
        spacing=_spacing([t for t, _, _ in looker.timeline], duration),
        thumbnails=tuple(looker.thumbnails or ()),
    )


def _spacing(times: list[float], duration: float) -> float | None:
    """The longest stretch of the video between two frames looked at, or a frame and an end."""
    if not times:
        return None
    edges = [0.0, *times, max(duration, times[-1])]
    return max(b - a for a, b in itertools.pairwise(edges))


def _presence(
    timeline: list[tuple[float, list[Face], int | None]], targets: list[int | None]
) -> tuple[Presence, ...]:
    """The target in every frame of the timeline: in an analysed frame as chosen there; in a
    glanced one, the face that stands where the target stood in the frame before (following it
    forward from each analysed frame) or in the frame after (backward)."""
    found: list[Face | None] = []
    for _, faces, index in timeline:
        target = None if index is None else targets[index]
        found.append(None if target is None else faces[target])
    glanced = [index is None for _, _, index in timeline]
    for order in (range(1, len(timeline)), range(len(timeline) - 2, -1, -1)):
        step = 1 if order.step == 1 else -1
        for i in order:
            before = found[i - step]
            if not glanced[i] or found[i] is not None or before is None:
                continue
            faces = timeline[i][1]
            near = _near(before, faces)
            found[i] = faces[near] if near is not None else None
    return tuple(
        Presence(t, face is not None, len(faces))
        for (t, faces, _), face in zip(timeline, found, strict=True)
    )


def _match(
    seen: list[_Seen], reference: NDArray[Any], embed: Callable[[int, int], NDArray[Any]]
) -> tuple[tuple[int, int] | None, float | None, float | None]:
    """The face nearest the reference, frame by frame, stopping at the first sure match. A face
    that stands where a face of the frame before stood is that person again: it takes over the
    distance found for them instead of being embedded anew (an embedding costs 0.1 s), unless
    that was near the threshold or read off a turned face."""
    best: tuple[float, int, int] | None = None
    previous: list[tuple[Face, float]] = []
    for f, frame in enumerate(seen):
        current = []
        for i, face in enumerate(frame.faces):
            known = _tracked(face, previous)
            distance = _distance(embed(f, i), reference) if known is None else known
            current.append((face, distance))
            if best is None or distance < best[0]:
                best = (distance, f, i)
            if distance < limits.FACE_SAME_PERSON:
                return (f, i), distance, frame.t
        if current:
            previous = current
    if best is None:
        return None, None, None
    anchor = (best[1], best[2]) if best[0] < limits.FACE_OTHER_PERSON else None
    return anchor, best[0], seen[best[1]].t


def _tracked(face: Face, previous: list[tuple[Face, float]]) -> float | None:
    """The distance already known for this face's person, when it can be trusted."""
    index = _near(face, [known for known, _ in previous])
    if index is None:
        return None
    known, distance = previous[index]
    doubtful = distance < limits.FACE_OTHER_PERSON + 0.1 or (known.turned() and not face.turned())
    return None if doubtful else distance


def _follow(
    seen: list[_Seen], anchor: tuple[int, int], embed: Callable[[int, int], NDArray[Any]]
) -> list[int | None]:
    """The target in every frame: near where it was in the frame before (forward and backward
    from the anchor); where no face is near, the one whose embedding matches the anchor's."""
    targets: list[int | None] = [None] * len(seen)
    first, index = anchor
    targets[first] = index
    for order in (range(first + 1, len(seen)), range(first - 1, -1, -1)):
        last = anchor
        for f in order:
            found = _near(seen[last[0]].faces[last[1]], seen[f].faces)
            if found is None and seen[f].faces:
                found = _same_person(embed(*anchor), f, seen[f].faces, embed)
            targets[f] = found
            if found is not None:
                last = (f, found)
    return targets


def _near(previous: Face, faces: Sequence[Face]) -> int | None:
    """The face of `faces` that stands where `previous` stood, about as large."""
    px, py = previous.box[0] + previous.box[2] / 2, previous.box[1] + previous.box[3] / 2
    best = None
    for i, face in enumerate(faces):
        x, y = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
        apart = math.hypot(x - px, y - py)
        alike = 0.5 < face.size / max(previous.size, 1e-9) < 2
        if apart < _TRACK_DISTANCE and alike and (best is None or apart < best[0]):
            best = (apart, i)
    return best[1] if best else None


def _same_person(
    target: NDArray[Any], f: int, faces: Sequence[Face], embed: Callable[[int, int], NDArray[Any]]
) -> int | None:
    distances = [(_distance(embed(f, i), target), i) for i in range(len(faces))]
    distance, index = min(distances)
    return index if distance < limits.FACE_SAME_PERSON else None
