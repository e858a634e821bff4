"""Every person in a reference photo (`faces.people.find_people`) and the head pose
(`faces.pose`), through the real models, on pictures composed at test time from the package
photos (skimage's astronaut and camera, matplotlib's Grace Hopper; fixtures/recipes.py)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from fixtures.recipes import crowd, scene, shaded
from retalk import limits
from retalk.preflight.faces import people
from retalk.preflight.faces.model import Box, FaceModel, face_model
from retalk.preflight.faces.people import find_people
from retalk.preflight.faces.pose import TEMPLATE, make_template

Placed = tuple[str, float, float, float]
"""A face as `scene` and `crowd` take it: name, centre x, centre y, height (shares)."""

CLOSE_UP = ("astronaut", 0.5, 0.5, 0.9)
TURNED_CLOSE_UP = ("camera", 0.5, 0.5, 1.0)
TWO = (("astronaut", 0.3, 0.45, 0.35), ("camera", 0.72, 0.45, 0.35))
TWO_SMALLER_TURNED = (("astronaut", 0.35, 0.45, 0.35), ("camera", 0.8, 0.45, 0.18))
PORTRAIT_AND_SHADOW = (("grace", 0.42, 0.42, 0.4), ("astronaut", 0.86, 0.62, 0.15))
SPACESUIT = ("astronaut", 0.5, 0.35, 0.2)
EAR = ("camera", 0.6, 0.46, 0.43)
GROUP = (
    ("astronaut", 0.12, 0.25, 0.16),
    ("grace", 0.37, 0.25, 0.12),
    ("astronaut", 0.62, 0.25, 0.09),
    ("grace", 0.87, 0.25, 0.2),
    ("grace", 0.12, 0.72, 0.1),
    ("astronaut", 0.37, 0.72, 0.2),
    ("grace", 0.62, 0.72, 0.14),
    ("astronaut", 0.87, 0.72, 0.07),
)


def _alone(size: float) -> Callable[[], Any]:
    return lambda: crowd(1280, 960, ("astronaut", 0.5, 0.45, size), around=3)


# name, the picture, the faces placed in it
PEOPLE: list[tuple[str, Callable[[], Any], tuple[Placed, ...]]] = [
    ("close-up", lambda: scene(940, 940, CLOSE_UP), (CLOSE_UP,)),
    ("turned-close-up", lambda: crowd(940, 940, TURNED_CLOSE_UP, around=3), (TURNED_CLOSE_UP,)),
    ("two-one-turned", lambda: crowd(1280, 720, *TWO), TWO),
    ("two-smaller-turned", lambda: crowd(1280, 960, *TWO_SMALLER_TURNED), TWO_SMALLER_TURNED),
    (
        "second-in-shadow",
        lambda: shaded(crowd(900, 1200, *PORTRAIT_AND_SHADOW), (0.72, 0.48, 1.0, 0.8)),
        PORTRAIT_AND_SHADOW,
    ),
    ("group-of-8", lambda: crowd(2400, 1600, *GROUP), GROUP),
    # Detections that are not faces: on the spacesuit (no face mesh fits them), and on the ear
    # of a turned head (a mesh fits the crop around it: the face beside it).
    ("spacesuit", lambda: scene(900, 1600, SPACESUIT), (SPACESUIT,)),
    ("turned-head-ear", lambda: crowd(1600, 900, EAR), (EAR,)),
    *[
        (f"one-at-{size}", _alone(size), (("astronaut", 0.5, 0.45, size),))
        for size in (0.05, 0.1, 0.3, 0.6)
    ],
    ("empty", lambda: scene(1280, 960), ()),
]


@pytest.fixture
def model() -> Iterator[FaceModel]:
    with face_model() as held:
        yield held


@pytest.mark.parametrize(
    ("make", "placed"), [(make, placed) for _, make, placed in PEOPLE], ids=[p[0] for p in PEOPLE]
)
def test_every_person_is_found_once(
    model: FaceModel, make: Callable[[], Any], placed: tuple[Placed, ...]
) -> None:
    picture = make()
    found = find_people(model, np.asarray(picture))
    assert len(found) == len(placed), found
    for face in placed:  # each where it was put, found once
        assert len([box for box in found if _at(box, face, picture.size)]) == 1, (face, found)


def _at(box: Box, face: Placed, size: tuple[int, int]) -> bool:
    _, x, y, height = face
    width, tall = size
    h = height * min(width, tall)
    cx, cy = box.center
    return abs(cx - x * width) < 0.5 * h and abs(cy - y * tall) < 0.5 * h


def test_a_close_up_needs_the_shrunk_canvas(model: FaceModel) -> None:
    rgb = np.asarray(scene(940, 940, CLOSE_UP))
    assert model.detect(rgb) == []  # the whole picture alone misses a face filling it
    (found,) = people._padded(model, rgb)
    assert found.h / 940 == pytest.approx(0.9, abs=0.1)


def test_a_turned_close_up_needs_the_cnn(model: FaceModel) -> None:
    rgb = np.asarray(crowd(940, 940, TURNED_CLOSE_UP, around=3))
    assert people._frontal(model, rgb) == []  # mediapipe misses it at every scale
    (found,) = find_people(model, rgb)
    assert found.source == "cnn"
    assert found.score >= limits.FACE_TURNED_SURE


def test_no_cap_on_the_count(model: FaceModel) -> None:
    faces = [
        (("astronaut", "grace")[i % 2], (i % 10 + 0.5) / 10, 0.25 + 0.25 * (i // 10), 0.05)
        for i in range(29)
    ]
    assert len(find_people(model, np.asarray(crowd(2400, 1600, *faces, around=1.9)))) == 29


# --- Pose -------------------------------------------------------------------------------------


def _jpeg(picture: Any, quality: int = 40, blur: float = 0.0) -> Any:
    if blur:
        picture = picture.filter(ImageFilter.GaussianBlur(blur))
    data = io.BytesIO()
    picture.save(data, "JPEG", quality=quality)
    return Image.open(io.BytesIO(data.getvalue())).convert("RGB")


FRONTAL = [
    (name, pixels, canvas, finish)
    for name in ("astronaut", "grace")
    for pixels in (45, 120, 350, 600)
    for canvas in ((1600, 900), (900, 1600))
    for finish in ("png", "q40", "blur-q40")
]


def _posed(
    model: FaceModel, name: str, pixels: int, canvas: tuple[int, int], finish: str, at: float = 0.4
) -> tuple[float, float]:
    """The pose read off a face `pixels` high placed in a picture, through the box mediapipe
    would give it (the face's placed height, centred on it)."""
    width, height = canvas
    picture = scene(width, height, (name, 0.5, at, pixels / min(width, height)))
    if finish != "png":
        picture = _jpeg(picture, blur=1.0 if finish.startswith("blur") else 0.0)
    box = Box(width / 2 - pixels / 2, at * height - pixels / 2, pixels, pixels, 0.9)
    pose = model.pose(np.asarray(picture), box)
    assert pose is not None
    return pose


@pytest.mark.parametrize(("name", "pixels", "canvas", "finish"), FRONTAL)
def test_frontal_faces_read_frontal(
    model: FaceModel, name: str, pixels: int, canvas: tuple[int, int], finish: str
) -> None:
    yaw, pitch = _posed(model, name, pixels, canvas, finish)
    assert abs(yaw) < limits.FACE_MAX_YAW / 2 and abs(pitch) < limits.FACE_MAX_PITCH / 2


@pytest.mark.parametrize("pixels", [60, 200, 500])
def test_a_turned_head_reads_turned(model: FaceModel, pixels: int) -> None:
    yaw, _ = _posed(model, "camera", pixels, (1600, 900), "q40")
    assert yaw > limits.FACE_MAX_YAW


def test_a_small_frontal_face_in_a_tall_photo_is_not_turned(model: FaceModel) -> None:
    rgb = np.asarray(_jpeg(scene(900, 1600, ("astronaut", 0.5, 0.3, 0.05)), quality=75))
    (box,) = find_people(model, rgb)
    pose = model.pose(rgb, box)
    assert pose is not None
    yaw, pitch = pose
    assert abs(yaw) < limits.FACE_MAX_YAW / 2 and abs(pitch) < limits.FACE_MAX_PITCH / 2


def test_a_picture_too_small_to_look_at_is_judged_by_its_rules(
    tmp_path: Path, run: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """dlib's CNN fails on a picture under 10 pixels a side (and 1x4000 is too thin for its
    filters): such a picture is not shown to it, and gets its findings like any other."""
    sizes = [(1, 1), (3, 3), (8, 8), (1, 4000)]
    names = [str(tmp_path / f"{w}x{h}.png") for w, h in sizes]
    for (width, height), name in zip(sizes, names, strict=True):
        Image.new("RGB", (width, height), (120, 100, 90)).save(name)
    done = run("check", "--no-cache", "-j", "1", *names)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr == ""
    for name in names:
        assert f"{name}: InvalidFile.Content: no face" in done.stdout
    assert "1x4000 is 4000:1" in done.stdout
    assert "FAIL: the service would reject 4 of 4 files" in done.stdout


def test_the_template_is_what_the_calibration_makes(model: FaceModel) -> None:
    assert np.allclose(make_template(model), TEMPLATE, atol=0.01)
