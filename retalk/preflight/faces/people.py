"""Every person in a still image (a reference photo): how many faces it shows, wherever they are,
however large, small or turned.

mediapipe's detector sees its input at 192x192 and finds faces of roughly a tenth to four fifths
of it, turned up to about 60°. One look at the whole picture therefore misses three kinds of
faces that reference photos have: a close-up filling the frame (found once the picture is
shrunk onto a grey canvas twice its size), the small faces of a group (found in tiles of the
shorter side and of a third of it), and faces turned towards profile, which mediapipe does not
find at any scale. For those, dlib's CNN face detector gives a second opinion on a shrunk copy.

Measured on this project's 2-core machine, shared with other work (least of 3, wall clock, on a
1280x800 picture):

- mediapipe: 5-7 ms a look, whatever the size of the piece; a face mesh (the check of a box)
  5 ms. The whole picture 5 ms, the padded canvas 16 ms, tiles of the shorter side 24 ms (3),
  of a third of it 244 ms (54); of half of it 85 ms (15), left out: whatever they found, the
  other two found too, on the test pictures and on 29-face groups of faces 2.5-6 % high.
- the CNN, upsampling 0: 0.40 s on a 0.064 MP copy (320x200), 0.66 s on 0.1 MP (400x250),
  0.91 s on 0.144 MP, 1.67 s on 0.256 MP (640x400), 7.9 s on the whole 1 MP. Upsampling once
  costs what a copy twice as large does (0.064 MP upsampled: 1.64 s) and sees less than that
  copy: not used. It finds faces from about 80 px in what it is given: with 0.1 MP, the
  turned head of skimage's camera from 25 % of the shorter side of a 4:3 picture (30 % of a
  16:9 one; 0.064 MP: 30 % and 35 %; 0.144 MP: 20 % and 25 %), both ways round, and every
  close-up (up to a face 1.2 times the picture); not the faces of a group, which the tiles
  find. `_CNN_PIXELS` is 0.08 MP (0.55 s, against 0.70 s at 0.1 MP, measured alone in one
  run), about 28 % and 33 %: the whole command then keeps under 2 s.
- `find_people` with one face: 1.0-1.1 s (mediapipe 0.3, the CNN 0.65). The CNN holds the GIL
  while it runs, and mediapipe lets go of it while its graph runs: the CNN on a thread of its
  own fills those waits, 0.2-0.3 s of the check. A `retalk check` of a 1 MP photo, the whole
  command (interpreter, imports, models): see the README's Speed section; mediapipe's import
  is trimmed by 0.45 s (see `model._import_mediapipe`), and the identity models load only
  when a reference is compared with a video.

When to run the CNN: always. A photo where mediapipe found one face is the case that matters
(a second person in profile makes it `InvalidFile.Content`) and the common one, so running the
CNN only when mediapipe found none or one would save nothing where the time counts.

False positives: a mediapipe box counts if it is sure (`limits.FACE_SURE_SCORE`; a spacesuit's
neck ring scored 0.68) or a face mesh fits it, and, when it is not sure, is not centred within
the head of a larger face found already (`_within_head`): the mesh is fitted on a crop twice the
box, and next to a turned head it fits the face beside the box, so the ear of the camera's
head (boxes 0.61-0.77, 0.63-0.68 face heights from its centre) passed, 5 times in 30 random
pictures, while faces side by side stand 1.2 face heights apart or more. A box only the CNN
found counts if a face mesh fits it or its confidence is at least `limits.FACE_TURNED_SURE`
(a profile, which the mesh may not fit). On the 27 pictures of skimage's and matplotlib's
sample data (a cat, coffee, a rocket, coins, text, ...) and a mosaic of LFW's 100 non-faces,
the CNN found nothing but the two real faces (at 0.1 and 0.25 MP and at full size); clear
faces score 0.93 to 1.15, faces at its size limit 0.4 to 0.6.

Random pictures (1 to 6 faces of astronaut, Grace Hopper and camera, 4-45 % of the shorter
side, on 1280x960, 1600x900, 900x1600 and 1000x1000): 96 of 100 counted exactly, no face too
many; the 4 others each missed the camera's turned head at 4-13 % of the shorter side, too
small for the CNN, too turned for mediapipe to be sure of at that size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retalk import limits
from retalk.preflight.faces.detect import SAME_FACE, merge, overlap, tiled
from retalk.preflight.faces.model import Box, FaceModel

if TYPE_CHECKING:
    from numpy.typing import NDArray

_CANVAS = 2.0
"""The padded canvas's side over the picture's longer side: a face filling the picture fills
half of it."""
_CANVAS_SIDE = 1024
"""The padded canvas is made at most this many pixels wide (the detector sees 192)."""
_SHARES = (1.0, 1 / 3)
"""Tile sides over the picture's shorter side (squares too, but for 1, the picture itself)."""
_CNN_PIXELS = 80_000
"""The CNN sees a copy shrunk to this many pixels (see the module docstring)."""
_CNN_MIN_SIDE = 32
"""The CNN is not run on a copy with a shorter side under this many pixels: it finds no face
under about 80 pixels anyway, and dlib fails on a picture under 10 pixels a side (a
RuntimeError, after which a later call crashed the process)."""
_HEAD = 0.8
"""A head reaches this many face heights from the face's centre: no other, smaller face is
centred within it (see `_within_head`). A turned head's ear stood 0.63-0.68 face heights from
its face's centre; a second, smaller face just behind a head, 0.9 (1.0 counted it as an ear)."""
_PART = 2 / 3
"""... a detection there under this share of the face's height is a part of that head."""
_GREY = 128


def find_people(model: FaceModel, rgb: NDArray[Any]) -> list[Box]:
    """Every face in a still image, largest first, one box per face, no cap on their number.

    `model` is the process's model, held by the caller (`with face_model() as model`); `rgb`
    the image as shown (EXIF orientation applied), height x width x 3, uint8 RGB.

    Boxes are in the image's pixels (they may reach past its edges for a face cut by them),
    and each is already judged a face: callers must not filter them again, nor drop those no
    face mesh fits. `source` says who found it: "mediapipe" (score 0.5-1, the geometry of the
    scan's boxes), or "cnn" for a face only dlib's CNN found (score its confidence, about 1;
    its box about mediapipe's, smaller on a close-up): a face turned towards profile or one
    filling the picture. `FaceModel.pose` may return None for such a face: it is turned past
    what the mesh reads.

    Costs about a second on a 1 MP picture, mostly the CNN (a face adds at most a mesh, 5 ms;
    see the module docstring); the CNN loads on the first call."""
    from concurrent.futures import ThreadPoolExecutor

    # The CNN holds the GIL while it runs; mediapipe lets go of it while its graph runs: the
    # CNN on a thread of its own fills those waits (measured: 0.2-0.3 s of a 2 s check).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="retalk-cnn") as pool:
        turned = pool.submit(_turned, model, rgb)
        frontal = _frontal(model, rgb)
        turned_boxes = turned.result()
    faces: list[Box] = []
    for box in _largest_first(merge(frontal)):
        if _is_face(model, rgb, box, faces):
            faces.append(box)
    for box in _largest_first(merge(turned_boxes)):
        new = all(overlap(box, face) < SAME_FACE for face in faces)
        if new and _is_face(model, rgb, box, faces):
            faces.append(box)
    return _largest_first(faces)


def _largest_first(boxes: list[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def _frontal(model: FaceModel, rgb: NDArray[Any]) -> list[Box]:
    """mediapipe's finds at every scale: the whole picture, the padded canvas, the tiles."""
    found = model.detect(rgb) + _padded(model, rgb)
    for share in _SHARES:
        found += tiled(model, rgb, share)
    return found


def _padded(model: FaceModel, rgb: NDArray[Any]) -> list[Box]:
    """The picture shrunk onto the middle of a grey canvas `_CANVAS` times its longer side: a
    close-up face becomes a face of the size the detector knows."""
    import numpy as np

    height, width = rgb.shape[:2]
    side = _CANVAS * max(width, height)
    scale = min(1.0, _CANVAS_SIDE / side)
    small, scale = _shrunk(rgb, scale)
    canvas = np.full((round(side * scale), round(side * scale), 3), _GREY, dtype=np.uint8)
    x0 = (canvas.shape[1] - small.shape[1]) // 2
    y0 = (canvas.shape[0] - small.shape[0]) // 2
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return [_scaled(box, scale, x0, y0) for box in model.detect(canvas)]


def _turned(model: FaceModel, rgb: NDArray[Any]) -> list[Box]:
    """dlib's CNN on a copy of `_CNN_PIXELS` pixels (never enlarged); none on a picture too
    thin for it (`_CNN_MIN_SIDE`)."""
    height, width = rgb.shape[:2]
    small, scale = _shrunk(rgb, min(1.0, (_CNN_PIXELS / (width * height)) ** 0.5))
    if min(small.shape[:2]) < _CNN_MIN_SIDE:
        return []
    return [_scaled(box, scale) for box in model.detect_turned(small)]


def _is_face(model: FaceModel, rgb: NDArray[Any], box: Box, larger: list[Box]) -> bool:
    """Its detector is sure; or a face mesh fits it and it is not a part of the head of a
    larger face already found (see the module docstring)."""
    sure = limits.FACE_TURNED_SURE if box.source == "cnn" else limits.FACE_SURE_SCORE
    if box.score >= sure:
        return True
    if any(_within_head(box, face) for face in larger):
        return False
    return model.landmarks(rgb, box) is not None


def _within_head(box: Box, face: Box) -> bool:
    """Whether `box` is smaller than `face` and centred within its head."""
    (x, y), (fx, fy) = box.center, face.center
    near = ((x - fx) ** 2 + (y - fy) ** 2) ** 0.5 < _HEAD * face.h
    return near and box.h < _PART * face.h


def _shrunk(rgb: NDArray[Any], scale: float) -> tuple[NDArray[Any], float]:
    """The picture scaled by `scale` (at most 1), and the scale it got after rounding."""
    import numpy as np
    from PIL import Image

    height, width = rgb.shape[:2]
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(small), size[0] / width


def _scaled(box: Box, scale: float, x0: float = 0.0, y0: float = 0.0) -> Box:
    """A box found in a shrunk copy placed at (x0, y0), in the picture's pixels."""
    return Box(
        (box.x - x0) / scale,
        (box.y - y0) / scale,
        box.w / scale,
        box.h / scale,
        box.score,
        box.source,
    )
