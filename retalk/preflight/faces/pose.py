"""Head pose from the face mesh: a rigid fit of fourteen stable landmarks to a frontal template.

Why not two lines of the mesh: yaw read from the outer eye corners and pitch from forehead top
to chin needed a fixed pitch offset (10°, from two photos), and pitch hung on two points, one of
them at the hairline, under hair or a hat. Here the rotation that best carries the template onto
the mesh's points (Kabsch, both centred and scaled to unit size, so that position, size and
roll drop out) gives the pose: yaw is how far the face's left-right axis dips into the picture,
pitch how far its forehead-chin axis does. The template reads 0, 0; no offset is needed.

The landmarks (`LANDMARKS`): the four eye corners, the nose bridge (168, 6) and tip (4, 1), the
mouth corners, the chin, the middle of the forehead (151, not the hairline) and the cheeks at
the face's edge (234, 454): points on bone, but for the mouth corners, not on the eyelids or
the lips' middle, which expressions move most.

The template (`TEMPLATE`) is made by `make_template` from packages only, nothing downloaded:
skimage's astronaut, matplotlib's Grace Hopper, and the 100 faces of skimage's LFW subset (25 px
greyscale crops, found by a frontal detector, so near-frontal, in news photos' poses), each
enlarged 8 times onto a 400 px grey canvas; 101 of the 102 take a mesh (LFW 39 does not). Their
points, centred and scaled, are aligned to their mean (generalised Procrustes), turned back to
the orientation of the plain mean (so that the set's mean pose is 0), and averaged with their
mirror image, so that a face turned neither way reads yaw 0 exactly. Re-made with
`python -m retalk.preflight.faces.pose` (needs the dev extras: scikit-image, matplotlib).

Measured (degrees; old = the two lines and the fixed offset, new = this fit):

    LFW (99 faces), 5/25/50/75/95th percentiles
        old  yaw -22.5 -8.5 -2.5 2.8 10.1    pitch -20.6 -10.2 -4.7 1.6 7.6
        new  yaw -23.5 -8.9 -2.4 3.1 10.7    pitch -14.6 -5.1 0.2 5.7 12.5
        |pitch| over 20: old 7 faces, new 1; over 25 (`limits.FACE_MAX_PITCH`): old 2, new 0
    astronaut, Grace Hopper as shipped
        old  yaw -0.7, 1.6    pitch 1.7, -1.7
        new  yaw -0.8, 1.9    pitch 4.8, 1.6
    astronaut, Grace Hopper composed (faces 45-600 px high on 1600x900, 900x1600, 1000x1000,
    two places; PNG, JPEG q40, blur 1 px + q40; 251 pictures): range
        old  yaw -2.7 to 3.3      pitch -5.8 to 4.9
        new  yaw -3.0 to 3.9      pitch -1.4 to 8.2
    the same faces (45-200 px) with the box moved by 30 % and scaled 0.7-1.4, JPEG q60 (432):
        old  yaw -3.8 to 3.9      pitch -6.0 to 6.5
        new  yaw -4.0 to 4.7      pitch -1.3 to 9.2
    camera (a head turned about 55°), 45-600 px: yaw, old 50 to 59, new 50 to 59

On clean faces the two agree within a few degrees. The fit needs no offset taken from two
photos, centres LFW's pitch on 0 where the offset left it 5° low, and no single point decides:
of LFW's faces, those read past 20° up or down go from 7 to 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from retalk.preflight.faces.model import Box, FaceModel

LANDMARKS = (33, 133, 362, 263, 168, 6, 4, 1, 61, 291, 152, 151, 234, 454)
"""Face mesh indices: eye corners outer and inner (right, left as seen), nose bridge, nose tip,
mouth corners, chin, forehead, cheeks."""

MIRROR = {33: 263, 133: 362, 61: 291, 234: 454}
"""Landmarks that swap places when the face is mirrored; the others lie on its middle line."""

TEMPLATE: tuple[tuple[float, float, float], ...] = (
    (-0.7885, -0.4126, 0.0852),  # 33, outer corner of the eye on the picture's left
    (-0.3109, -0.3953, -0.0011),  # 133, its inner corner
    (0.3109, -0.3953, -0.0011),  # 362
    (0.7885, -0.4126, 0.0852),  # 263
    (0.0000, -0.4734, -0.2937),  # 168, nose bridge between the eyes
    (0.0000, -0.3401, -0.3666),  # 6
    (0.0000, 0.1941, -0.6673),  # 4, nose tip
    (0.0000, 0.3079, -0.6284),  # 1
    (-0.4593, 0.7822, -0.0011),  # 61, mouth corner
    (0.4593, 0.7822, -0.0011),  # 291
    (0.0000, 1.6062, 0.0558),  # 152, chin
    (0.0000, -1.0264, -0.2828),  # 151, forehead
    (-1.2129, -0.1085, 1.0085),  # 234, cheek at the face's edge
    (1.2129, -0.1085, 1.0085),  # 454
)
"""`LANDMARKS` of a frontal face, centred, scaled to a root mean square of 1 (see the module)."""


def head_pose(points: NDArray[Any]) -> tuple[float, float]:
    """(yaw, pitch) in degrees of the face whose mesh points (468 x 3, see
    `FaceModel.landmarks`) are given: 0, 0 frontal; yaw positive when the side of the face on
    the picture's right lies deeper than the other, pitch positive when the chin lies deeper
    than the forehead (the signs of the old reading)."""
    import numpy as np

    seen = _normalised(np.asarray(points, dtype=float)[list(LANDMARKS)])
    rotation = _rotation(np.asarray(TEMPLATE), seen)
    yaw = math.degrees(math.asin(float(np.clip(rotation[2, 0], -1.0, 1.0))))
    pitch = math.degrees(math.asin(float(np.clip(rotation[2, 1], -1.0, 1.0))))
    return yaw, pitch


def _normalised(points: NDArray[Any]) -> NDArray[Any]:
    """Centred on their mean, scaled to a root mean square distance of 1."""
    import numpy as np

    centred = points - points.mean(axis=0)
    scaled: NDArray[Any] = centred / float(np.sqrt((centred**2).sum(axis=1).mean()))
    return scaled


def _rotation(source: NDArray[Any], target: NDArray[Any]) -> NDArray[Any]:
    """The proper rotation R that best carries `source` onto `target` (both centred):
    target ≈ source @ R.T (Kabsch)."""
    import numpy as np

    u, _, vt = np.linalg.svd(source.T @ target)
    flip = float(np.sign(np.linalg.det(vt.T @ u.T)))
    rotation: NDArray[Any] = vt.T @ np.diag([1.0, 1.0, flip]) @ u.T
    return rotation


# --- Making the template (development only: needs scikit-image and matplotlib) ---------------


def calibration_set() -> Iterator[tuple[str, NDArray[Any], Box | None]]:
    """The calibration pictures: name, RGB pixels, and where the face is when the detector may
    not find it (the LFW crops are tight)."""
    import matplotlib.cbook
    import numpy as np
    import skimage.data
    from PIL import Image

    from retalk.preflight.faces.model import Box

    samples: Any = skimage.data  # untyped
    yield "astronaut", np.asarray(samples.astronaut()), None
    grace = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    yield "grace", np.asarray(Image.open(grace).convert("RGB")), None
    for i, face in enumerate(samples.lfw_subset()[:100]):  # the first 100 are faces
        grey = Image.fromarray((face * 255).round().astype("uint8"))
        canvas = Image.new("RGB", (400, 400), (128, 128, 128))
        canvas.paste(grey.resize((200, 200), Image.Resampling.BICUBIC).convert("RGB"), (100, 100))
        yield f"lfw{i}", np.asarray(canvas), Box(100, 100, 200, 200, 0.0)


def calibration_points(model: FaceModel) -> dict[str, NDArray[Any]]:
    """`LANDMARKS` of each calibration picture that a mesh fits, normalised."""
    import numpy as np

    found = {}
    for name, rgb, fallback in calibration_set():
        boxes = model.detect(rgb)
        box = max(boxes, key=lambda b: b.area) if boxes else fallback
        points = None if box is None else model.landmarks(rgb, box)
        if points is not None:
            found[name] = _normalised(np.asarray(points)[list(LANDMARKS)])
    return found


def make_template(model: FaceModel) -> tuple[tuple[float, float, float], ...]:
    """The frontal template from the calibration set (see the module docstring)."""
    import numpy as np

    faces = list(calibration_points(model).values())
    plain = _normalised(np.mean(faces, axis=0))
    shape = plain
    for _ in range(10):
        shape = _normalised(np.mean([f @ _rotation(f, shape).T for f in faces], axis=0))
    shape = shape @ _rotation(shape, plain).T
    pairs = {**MIRROR, **{b: a for a, b in MIRROR.items()}}
    swap = [LANDMARKS.index(pairs.get(i, i)) for i in LANDMARKS]
    mirrored = shape[swap] * np.array([-1.0, 1.0, 1.0])
    template = _normalised((shape + mirrored) / 2)
    return tuple((round(x, 4), round(y, 4), round(z, 4)) for x, y, z in template.tolist())


def _main() -> None:
    from retalk.preflight.faces.model import face_model

    with face_model() as model:
        template = make_template(model)
    print("TEMPLATE: tuple[tuple[float, float, float], ...] = (")
    for point, index in zip(template, LANDMARKS, strict=True):
        x, y, z = (value + 0.0 for value in point)  # no -0.0
        print(f"    ({x:.4f}, {y:.4f}, {z:.4f}),  # {index}")
    print(")")


if __name__ == "__main__":
    _main()
