"""Faces as the service sees them: found in sampled frames (or an image), the target picked by
the service's own rule (or by the reference image), followed through the video.

The scan is gathered once into a `FaceScan`; the rules in `faces.rules` judge it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retalk import limits
from retalk.preflight.faces.model import Box, FaceModel, face_model

if TYPE_CHECKING:
    from numpy.typing import NDArray

_MAX_FACES = 5
"""Faces kept per frame, largest first: the service re-voices one person."""
_FINE_PROBES = 6
"""Faceless frames searched finely before the whole video is (see `_look_all`)."""
_NMS_OVERLAP = 0.3
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
    """Degrees nodded up or down, 0 level (calibrated)."""

    def turned(self) -> bool:
        return (self.yaw is not None and abs(self.yaw) > limits.FACE_MAX_YAW) or (
            self.pitch is not None and abs(self.pitch) > limits.FACE_MAX_PITCH
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

    def to_facts(self) -> dict[str, object]:
        return {
            "sampled_frames": len(self.frames),
            "target_chosen_by": self.chosen_by if self.target_frames else None,
            "target_coverage": round(self.coverage, 3) if self.duration else None,
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

    def spans(self) -> list[tuple[float, float, FrameFaces]]:
        """Each sampled frame with the stretch of video it stands for: from halfway to the frame
        before to halfway to the frame after (the ends reach 0 and the duration)."""
        if not self.duration or not self.frames:
            return []
        times = [f.t or 0.0 for f in self.frames]
        cuts = [0.0] + [(a + b) / 2 for a, b in itertools.pairwise(times)]
        cuts.append(self.duration)
        return [(cuts[i], cuts[i + 1], f) for i, f in enumerate(self.frames)]

    @property
    def coverage(self) -> float:
        """The share of the video whose sampled frames show the target."""
        if not self.duration:
            return 0.0
        shown = sum(end - start for start, end, f in self.spans() if f.target is not None)
        return shown / self.duration


def find_faces(model: FaceModel, rgb: NDArray[Any], *, fine: bool = False) -> list[Box]:
    """Faces in a frame. The detector sees its input at 192x192, so a face under about a tenth
    of a 16:9 frame's height is lost on the whole frame: the frame is also searched in square
    tiles of its shorter side and, with `fine`, in tiles of two thirds of it (measured: faces
    of 5 % of the shorter side found in 9 of 9 places, against 0 of 9 with the coarse tiles)."""
    if fine:
        return _merge(_tiled(model, rgb, 2 / 3))
    return _merge(model.detect(rgb) + _tiled(model, rgb, 1.0))


def _tiled(model: FaceModel, rgb: NDArray[Any], share: float) -> list[Box]:
    height, width = rgb.shape[:2]
    side = int(min(width, height) * share)
    if side < 32 or (share == 1.0 and width == height):
        return []
    found = []
    for y in _starts(height, side):
        for x in _starts(width, side):
            for box in model.detect(rgb[y : y + side, x : x + side]):
                found.append(Box(box.x + x, box.y + y, box.w, box.h, box.score))
    return found


def _starts(length: int, side: int) -> list[int]:
    """Tile offsets along one axis: half a tile apart, the last flush with the edge."""
    if length <= side:
        return [0]
    starts = list(range(0, length - side + 1, max(side // 2, 1)))
    if starts[-1] != length - side:
        starts.append(length - side)
    return starts


def _merge(boxes: Iterable[Box]) -> list[Box]:
    """One box per face: overlapping finds of several tiles keep the surest."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(_overlap(box, other) < _NMS_OVERLAP for other in kept):
            kept.append(box)
    return kept


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: a face found whole and cut by a tile edge is one."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(min(a.area, b.area), 1e-9)


@dataclass
class _Seen:
    """A frame under analysis: its pixels, boxes, faces and embeddings made on demand."""

    t: float | None
    rgb: NDArray[Any]
    boxes: list[Box]
    faces: list[Face]
    embeddings: dict[int, NDArray[Any]]


def _look(model: FaceModel, t: float | None, rgb: NDArray[Any], *, fine: bool = False) -> _Seen:
    height, width = rgb.shape[:2]
    short = min(width, height)
    found = find_faces(model, rgb, fine=fine)
    boxes, faces = [], []
    for box in sorted(found, key=lambda b: b.area, reverse=True)[:_MAX_FACES]:
        pose = model.pose(rgb, box)
        if pose is None and box.score < limits.FACE_SURE_SCORE:
            continue  # no face mesh fits it: a pattern, not a face
        boxes.append(box)
        faces.append(
            Face(
                box=(box.x / width, box.y / height, box.w / width, box.h / height),
                score=box.score,
                size=box.h / short,
                yaw=pose[0] if pose else None,
                pitch=pose[1] if pose else None,
            )
        )
    return _Seen(t, rgb, boxes, faces, {})


def _look_all(model: FaceModel, frames: Sequence[tuple[float, NDArray[Any]]]) -> list[_Seen]:
    """Every frame with the coarse search; frames where it found nothing again with the fine
    one, at first only a few spread over the video, all of them once that finds a face: a
    video with no face at all costs a bounded search, one with small faces a thorough one."""
    seen = [_look(model, t, rgb) for t, rgb in frames]
    empty = [i for i, s in enumerate(seen) if not s.faces]
    probes = [empty[i] for i in _spread(len(empty))[:_FINE_PROBES]]
    for i in probes:
        seen[i] = _look(model, seen[i].t, seen[i].rgb, fine=True)
    if any(seen[i].faces for i in probes):
        for i in set(empty) - set(probes):
            seen[i] = _look(model, seen[i].t, seen[i].rgb, fine=True)
    return seen


def _embedding(model: FaceModel, seen: _Seen, index: int) -> NDArray[Any]:
    if index not in seen.embeddings:
        seen.embeddings[index] = model.embed(seen.rgb, seen.boxes[index])
    return seen.embeddings[index]


def _distance(a: NDArray[Any], b: NDArray[Any]) -> float:
    import numpy as np

    return float(np.linalg.norm(a - b))


def scan_image(rgb: NDArray[Any]) -> tuple[FaceScan, NDArray[Any] | None]:
    """The faces of an image, and the embedding of its face when it has exactly one."""
    with face_model() as model:
        seen = _look(model, None, rgb)
        if not seen.faces:
            seen = _look(model, None, rgb, fine=True)
        embedding = _embedding(model, seen, 0) if len(seen.faces) == 1 else None
    target = 0 if len(seen.faces) == 1 else None
    return FaceScan((FrameFaces(None, tuple(seen.faces), target),)), embedding


def scan_video(
    frames: Sequence[tuple[float, NDArray[Any]]],
    duration: float,
    reference: NDArray[Any] | None = None,
) -> FaceScan:
    """The faces of sampled frames, and the target followed through them. With a reference
    embedding, the target is the face that matches it; else the service's rule picks it."""
    with face_model() as model:
        seen = _look_all(model, frames)

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
        targets = _follow(seen, anchor, embed) if anchor is not None else [None] * len(seen)
    return FaceScan(
        tuple(
            FrameFaces(s.t, tuple(s.faces), target) for s, target in zip(seen, targets, strict=True)
        ),
        duration=duration,
        chosen_by=chosen_by,
        with_reference=reference is not None,
        ref_distance=best,
        ref_frame=best_at,
    )


def _spread(count: int) -> list[int]:
    """Frame indices in an order that covers the video early: first, last, middle, quarters …"""
    order: list[int] = []
    step = count
    while step >= 1 and len(order) < count:
        for i in range(0, count, step):
            if i not in order:
                order.append(i)
        if count - 1 not in order:
            order.append(count - 1)
        step //= 2
    return order


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
