"""The reference image's fix (`retalk.fix.image`): planned from the gathered file, made in one
Pillow pass, and re-checked with retalk's own check, faces and all.

Pictures are made at test time from the packages' faces (skimage's astronaut, matplotlib's
Grace Hopper, see `fixtures.recipes.scene`); each output is checked for what it really is:
its size and format read back, its pixels compared with the source's, its face found again.
"""

from __future__ import annotations

import dataclasses
import filecmp
import io
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

import retalk
from fixtures.recipes import crowd, scene
from retalk import limits
from retalk.errors import FixRefused
from retalk.findings import Report
from retalk.fix.image import ImagePlan, plan_image
from retalk.policy import SERVICE, Policy
from retalk.preflight.check import inspect
from retalk.preflight.faces import rules as faces_rules

Make = Callable[[Path], Path]


def _save(name: str, picture: Any, **options: Any) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        picture().save(path, **options)
        return path

    return make


def _astronaut() -> Any:
    return scene(512, 512, ("astronaut", 0.5, 0.4, 0.35))


def _group() -> Any:
    """A 6000x2000 picture, its one face far right of the middle."""
    return scene(6000, 2000, ("astronaut", 0.8, 0.45, 0.2))


def _cmyk() -> Any:
    return _astronaut().convert("CMYK")


def _palette() -> Any:
    return _astronaut().convert("P")


def _grey16() -> Any:
    return _astronaut().convert("L").convert("I;16")


def _with_alpha() -> Any:
    picture = _astronaut().convert("RGBA")
    alpha = Image.new("L", picture.size, 255)
    alpha.paste(0, (0, 448, 512, 512))  # the bottom strip transparent
    picture.putalpha(alpha)
    return picture


def _rotated() -> Any:
    """Stored turned a quarter left, with the EXIF orientation (6) that shows it upright, and
    too wide once upright (3000x1000)."""
    return scene(3000, 1000, ("grace", 0.3, 0.5, 0.5)).transpose(Image.Transpose.ROTATE_90)


def _exif_6() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


def _animated(folder: Path) -> Path:
    path = folder / "wave.gif"
    first = _astronaut()
    others = [Image.new("RGB", first.size, colour) for colour in ((255, 0, 0), (0, 0, 255))]
    first.save(path, save_all=True, append_images=others, duration=100, loop=0)
    return path


def _noise(side: int) -> Callable[[], Any]:
    def make() -> Any:
        return Image.frombytes("RGB", (side, side), random.Random(7).randbytes(side * side * 3))

    return make


def _nothing() -> Any:
    return scene(3000, 1000)


def _small_face() -> Any:
    return scene(3000, 2000, ("astronaut", 0.3, 0.4, 0.06))


def _fixed(
    source: Path, ending: str, policy: Policy = SERVICE, *, content: bool = True
) -> tuple[ImagePlan, Path]:
    """The plan for `source` (its faces scanned with `content`), carried out beside it."""
    media, _ = inspect(source, "ref", policy=policy, content=content)
    plan = plan_image(media, policy, output_format=ending)
    out = source.with_name(f"out {source.stem}.{ending}")
    if plan.refusal is None:
        plan.apply(str(source), str(out))
    return plan, out


def _faces(report: Report) -> list[dict[str, Any]]:
    frames = report.inputs[0].facts["faces"]["frames"]
    return list(frames[0]["faces"])


def _difference(a: Any, b: Any) -> float:
    """The mean absolute difference of two RGB pictures of one size, 0 to 255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return float(sum(ImageStat.Stat(diff).mean) / 3)


_AS = ""
"""The code of a conversion between formats the service takes: none (the output's name asks
for it; no rule does)."""

# name, make, output ending, the codes of the plan's changes, the output's size and mode
CASES: list[tuple[str, Make, str, set[str], tuple[int, int], str]] = [
    ("no face", _save("wall.png", _nothing), "png", {"InvalidFile.ImageSize"}, (2000, 1000), "RGB"),
    (
        "longest side",
        _save("tall.jpg", lambda: scene(3000, 5000, ("grace", 0.5, 0.4, 0.3))),
        "jpg",
        {"InvalidFile.ImageSize"},
        (2458, 4096),
        "RGB",
    ),
    ("CMYK JPEG", _save("cmyk.jpg", _cmyk), "png", {_AS}, (512, 512), "RGB"),
    ("alpha to JPEG", _save("alpha.png", _with_alpha), "jpg", {_AS}, (512, 512), "RGB"),
    ("palette GIF", _save("photo.gif", _palette), "jpg", {"InvalidFile.Format"}, (512, 512), "RGB"),
    ("TIFF", _save("photo.tiff", _astronaut), "png", {"InvalidFile.Format"}, (512, 512), "RGB"),
    ("16-bit PNG", _save("deep.png", _grey16), "jpg", {_AS}, (512, 512), "L"),
    ("animated GIF", _animated, "png", {"InvalidFile.Format"}, (512, 512), "RGB"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "ending", "codes", "size", "mode"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_fixed_image_passes_the_check(
    tmp_path: Path, make: Make, ending: str, codes: set[str], size: tuple[int, int], mode: str
) -> None:
    source = make(tmp_path)
    faceless = source.name == "wall.png"
    plan, out = _fixed(source, ending, content=False)  # none of these is cut around a face
    assert plan.refusal is None
    assert {change.code for change in plan.changes} == codes
    assert not plan.copy
    with Image.open(out) as written:
        assert written.format == ("JPEG" if ending == "jpg" else "PNG")
        assert getattr(written, "n_frames", 1) == 1
        assert written.mode == mode
        assert written.size == size
        short, long = sorted(written.size)
        assert long <= limits.IMAGE.max_side and long <= short * limits.IMAGE.max_aspect
    assert out.stat().st_size <= limits.IMAGE.max_bytes_decimal
    report = retalk.check_image(out, content=not faceless)
    assert report.ok, report.findings
    assert "Face.Small" not in report.codes
    assert faceless or len(_faces(report)) == 1  # the face still found


def test_group_photo_is_cut_around_the_face(tmp_path: Path) -> None:
    """The 6000x2000 picture's face lies at 80% of its width: the 4000 px cut is pushed to the
    right edge, and the face is found whole in it, at its own size."""
    source = _save("group.png", _group)(tmp_path)
    media, _ = inspect(source, "ref")
    assert media.faces is not None
    (seen,) = media.faces.frames[0].faces
    plan = plan_image(media, SERVICE, output_format="jpg")
    assert [str(change) for change in plan.changes] == [
        "format: PNG image → JPEG image",
        "aspect: 3:1 (6000x2000) → 2:1 (4000x2000, around the face)  (InvalidFile.ImageSize)",
    ]
    out = tmp_path / "group fixed.jpg"
    plan.apply(str(source), str(out))
    assert plan.crop == (2000, 0, 6000, 2000)
    assert plan.face_box == seen.box
    report = retalk.check_image(out)
    assert report.ok, report.findings
    (face,) = _faces(report)
    x, y, w, h = face["box"]
    assert x > 0 and x + w < 1 and y > 0 and y + h < 1  # whole, with room around it
    with Image.open(out) as written:
        assert written.size == (4000, 2000)
    # The face sits where it was, shifted by the cut: 2000 px of 6000, in a 4000 px picture
    # (the detector's box moves by a few percent of the face from one framing to another).
    old_x, _, old_w, old_h = seen.box
    assert (x + w / 2) * 4000 == pytest.approx((old_x + old_w / 2) * 6000 - 2000, abs=old_w * 600)
    assert h * 2000 == pytest.approx(old_h * 2000, rel=0.1)


def test_crop_is_centred_on_a_face_away_from_the_edges(tmp_path: Path) -> None:
    picture = scene(3000, 600, ("astronaut", 0.45, 0.5, 0.5))
    source = tmp_path / "wide.png"
    picture.save(source)
    plan, out = _fixed(source, "png")
    assert plan.crop is not None and plan.face_box is not None
    left, _, right, _ = plan.crop
    x, _, w, _ = plan.face_box
    assert right - left == 1200
    assert (left + right) / 2 == pytest.approx((x + w / 2) * 3000, abs=1)
    with Image.open(out) as written:
        assert _difference(written, picture.crop(plan.crop)) == 0  # PNG: the very pixels


def test_no_face_keeps_the_middle(tmp_path: Path) -> None:
    source = _save("wall.png", _nothing)(tmp_path)
    plan, _ = _fixed(source, "png", content=False)
    assert plan.face_box is None
    assert plan.crop == (500, 0, 2500, 1000)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """Stored on its side with orientation 6: planned and cut as shown, and written upright,
    the face found upright (a frontal pose) where it is in the picture as shown."""
    source = _save("turned.jpg", _rotated, exif=_exif_6())(tmp_path)
    plan, out = _fixed(source, "jpg")
    upright = scene(3000, 1000, ("grace", 0.3, 0.5, 0.5))
    assert plan.crop == (0, 0, 2000, 1000) and plan.face_box is not None  # the face at 30 %
    with Image.open(out) as written:
        assert written.getexif().get(0x0112, 1) == 1
        assert _difference(written, upright.crop(plan.crop)) < 4
    report = retalk.check_image(out)
    assert report.ok, report.findings
    (face,) = _faces(report)
    assert abs(face["yaw"]) < 20 and abs(face["pitch"]) < 25


def test_alpha_is_flattened_on_white(tmp_path: Path) -> None:
    source = _save("alpha.png", _with_alpha)(tmp_path)
    _, out = _fixed(source, "jpg", content=False)
    with Image.open(out) as written:
        strip = written.convert("RGB").crop((0, 460, 512, 512))
        assert min(ImageStat.Stat(strip).mean) > 250
        top = written.convert("RGB").crop((0, 0, 512, 400))
        assert _difference(top, _astronaut().crop((0, 0, 512, 400))) < 4


def test_cmyk_comes_out_in_its_colours(tmp_path: Path) -> None:
    source = _save("cmyk.jpg", lambda: _astronaut().convert("CMYK"))(tmp_path)
    _, out = _fixed(source, "png", content=False)
    with Image.open(out) as written, Image.open(source) as original:
        assert _difference(written, original.convert("RGB")) < 1
        assert _difference(written, _astronaut()) < 8


def test_animation_keeps_its_first_frame(tmp_path: Path) -> None:
    source = _animated(tmp_path)
    plan, out = _fixed(source, "png", content=False)
    assert any(change.what == "frames" for change in plan.changes)
    with Image.open(out) as written, Image.open(source) as original:
        assert _difference(written, original.convert("RGB")) == 0


def test_size_limit_lowers_jpeg_quality_first(tmp_path: Path) -> None:
    """Noise is the hardest picture to compress: as PNG it must shrink, as JPEG it keeps its
    size at a lower quality; each within the limit."""
    source = _save("noise.png", _noise(2000))(tmp_path)
    assert source.stat().st_size > limits.IMAGE.max_bytes
    plan, png = _fixed(source, "png", content=False)
    assert [change.code for change in plan.changes] == ["InvalidFile.Size"]
    _, jpg = _fixed(source, "jpg", content=False)
    for out in (png, jpg):
        assert out.stat().st_size <= limits.IMAGE.max_bytes_decimal
    with Image.open(png) as small, Image.open(jpg) as kept:
        assert small.width < 2000 and small.width == small.height
        assert kept.size == (2000, 2000)
    assert retalk.check_image(png, content=False).ok
    assert retalk.check_image(jpg, content=False).ok


def test_conforming_image_needs_nothing(tmp_path: Path) -> None:
    source = _save("good.jpg", _astronaut, quality=90)(tmp_path)
    media, _ = inspect(source, "ref")
    plan = plan_image(media, SERVICE, output_format="jpg")
    assert plan.changes == () and plan.copy and plan.refusal is None
    # The same picture wanted as PNG is no copy: a conversion with nothing else changed.
    as_png = plan_image(media, SERVICE, output_format="png")
    assert [str(change) for change in as_png.changes] == ["format: JPEG image → PNG image"]
    assert not as_png.copy


def test_the_policy_limits_are_obeyed(tmp_path: Path) -> None:
    """A project's stricter limits (here 1024 px, 1.5:1), never the service's literals."""
    stricter = dataclasses.replace(
        SERVICE, image=dataclasses.replace(limits.IMAGE, max_side=1024, max_aspect=1.5)
    )
    source = _save("wide.jpg", lambda: scene(2400, 1200, ("astronaut", 0.5, 0.45, 0.4)))(tmp_path)
    plan, out = _fixed(source, "jpg", stricter)
    with Image.open(out) as written:
        assert written.size == (1024, 683)
    assert retalk.check_image(out, policy=stricter).ok
    assert [c.what for c in plan.changes] == ["aspect", "longest side"]


def test_small_face_is_cut_closer(tmp_path: Path) -> None:
    source = _save("far.png", _small_face)(tmp_path)
    before = retalk.check_image(source)
    (small,) = [f for f in before.findings if f.code == "Face.Small"]
    assert small.hint is not None and small.hint.startswith("retalk fix ")  # fix's own command
    # The rule's own hint speaks of the photo's limits, not of a video's 640 px sides.
    media, _ = inspect(source, "ref")
    (own,) = faces_rules.small(media, SERVICE)
    assert own.hint is not None and "640" not in own.hint and "retalk fix" in own.hint
    assert f"{limits.IMAGE.max_side} px" in own.hint
    plan, out = _fixed(source, "jpg")
    assert plan.crop is not None and plan.face_box is not None
    left, top, right, bottom = plan.crop
    assert (right - left) / (bottom - top) == pytest.approx(1.5, abs=0.01)  # the photo's shape
    x, y, w, h = plan.face_box
    assert left < x * 3000 and (x + w) * 3000 < right and top < y * 2000 and (y + h) * 2000 < bottom
    after = retalk.check_image(out)
    (face,) = _faces(after)
    assert face["size"] >= 1.5 * limits.FACE_SMALL
    assert "Face.Small" not in after.codes and after.ok


def test_several_people_are_cut_to_the_largest_face(tmp_path: Path) -> None:
    """A group of three (the service refuses a reference with several people): cut to the
    largest face alone, the others left out, and the cut still within the aspect limit."""
    picture = crowd(
        6000,
        2000,
        ("grace", 0.2, 0.4, 0.12),
        ("astronaut", 0.5, 0.45, 0.15),
        ("camera", 0.8, 0.5, 0.1),
    )
    source = tmp_path / "three.png"
    picture.save(source)
    plan, out = _fixed(source, "jpg")
    assert [change.code for change in plan.changes] == [
        _AS,
        "InvalidFile.Content",
        "InvalidFile.ImageSize",
    ]
    assert plan.crop is not None and plan.face_box is not None
    left, _, right, _ = plan.crop
    assert left < 0.5 * 6000 < right  # the astronaut in, the others out
    assert right < 0.8 * 6000 - 100 and left > 0.2 * 6000 + 100
    report = retalk.check_image(out)
    assert report.ok, report.findings
    assert len(_faces(report)) == 1
    with Image.open(out) as written:
        assert _difference(written, picture.crop(plan.crop)) < 4


def test_a_large_jpeg_is_decoded_at_a_fraction(tmp_path: Path) -> None:
    """9000x3000 (27 MP, over what retalk decodes whole for other formats): planned, cut and
    shrunk to 4096x2048."""
    source = tmp_path / "huge.jpg"
    scene(9000, 3000, ("astronaut", 0.5, 0.45, 0.3)).save(source, quality=80)
    plan, out = _fixed(source, "jpg", content=False)
    with Image.open(out) as written:
        assert written.size == (4096, 2048)
    assert plan.size == (4096, 2048)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("notes.png", b"not a picture at all", "not a picture"),
        ("sound.jpg", b"RIFF\x24\0\0\0WAVEfmt ", "not a picture"),
    ],
)
def test_refusals(tmp_path: Path, name: str, content: bytes, says: str) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    media, _ = inspect(source, "ref", content=False)
    plan = plan_image(media, SERVICE, output_format="jpg")
    assert plan.refusal is not None and says in plan.refusal
    with pytest.raises(ValueError, match=says):
        plan.apply(str(source), str(tmp_path / "out.jpg"))
    assert not (tmp_path / "out.jpg").exists()


def test_too_many_pixels_to_decode_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "huge.png"
    Image.new("L", (6000, 4200)).save(source)
    media, _ = inspect(source, "ref", content=False)
    plan = plan_image(media, SERVICE, output_format="png")
    assert plan.refusal is not None and "too large to decode" in plan.refusal


def test_a_policy_without_the_output_format_refuses(tmp_path: Path) -> None:
    only_jpeg = dataclasses.replace(
        SERVICE, image=dataclasses.replace(limits.IMAGE, formats=("jpeg", "jpg"))
    )
    source = _save("good.jpg", _astronaut)(tmp_path)
    media, _ = inspect(source, "ref", content=False)
    plan = plan_image(media, only_jpeg, output_format="png")
    assert plan.refusal is not None and "png" in plan.refusal


def test_odd_names(tmp_path: Path) -> None:
    folder = tmp_path / "dossier é"
    folder.mkdir()
    source = _save("-ünï côde.gif", lambda: _astronaut().convert("P"))(folder)
    plan, out = _fixed(source, "jpg", content=False)
    assert plan.refusal is None and out.exists()
    with open(out, "rb") as stream:
        assert Image.open(io.BytesIO(stream.read())).format == "JPEG"
    assert os.path.dirname(out) == str(folder)


# Through `retalk fix`: every image recipe that fails a metadata rule, and the output's size.
Run = Callable[..., subprocess.CompletedProcess[str]]
RECIPES = {
    "2.001to1.png": ("png", (2000, 1000)),
    "4098x2049.jpg": ("jpg", (4096, 2048)),
    "5000x2000.jpg": ("jpg", (4000, 2000)),
    "big.bmp": ("jpg", (1920, 1920)),
    "photo.gif": ("jpg", (800, 600)),
    "photo.tiff": ("png", (800, 600)),
    "strip-32800x64.png": ("png", (128, 64)),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_failing_image_recipe_is_fixed(
    name: str, media: Path, tmp_path: Path, run: Run
) -> None:
    source = tmp_path / name
    shutil.copyfile(media / name, source)
    assert run("check", "--no-content", "--no-cache", str(source)).returncode == 1
    ending, size = RECIPES[name]
    out = tmp_path / f"fixed ü.{ending}"
    done = run("fix", "--no-content", str(source), "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert " → " in done.stdout
    with Image.open(out) as written:
        assert written.size == size
        assert written.format == ("JPEG" if ending == "jpg" else "PNG")
    after = run("check", "--no-content", "--no-cache", str(out))
    assert after.returncode == 0 and "(warning)" not in after.stdout, after.stdout
    assert sorted(os.listdir(tmp_path)) == sorted([name, out.name])  # no temporary left


def test_fix_command_cuts_around_the_face(tmp_path: Path, run: Run) -> None:
    """With the face scan: the group photo through the command, named with a leading dash."""
    source = _save("-group photo.png", lambda: scene(3000, 1000, ("astronaut", 0.8, 0.45, 0.3)))(
        tmp_path
    )
    done = run("fix", "-o", "ref é.jpg", "--", source.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "around the face" in done.stdout
    report = retalk.check_image(tmp_path / "ref é.jpg")
    assert report.ok and len(_faces(report)) == 1


def test_fix_command_copies_or_converts_a_conforming_image(
    media: Path, tmp_path: Path, run: Run
) -> None:
    source = tmp_path / "good.jpg"
    shutil.copyfile(media / "good.jpg", source)
    assert run("fix", "--no-content", str(source)).returncode == 0
    assert filecmp.cmp(source, tmp_path / "good-fixed.jpg", shallow=False)
    png = tmp_path / "good.png"
    shutil.copyfile(media / "good.png", png)
    done = run("fix", "--no-content", str(png), "-o", str(tmp_path / "as.jpg"))
    assert done.returncode == 0, done.stdout + done.stderr
    with Image.open(tmp_path / "as.jpg") as written:
        assert written.format == "JPEG"  # converted, not a PNG named .jpg


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("16000x8000-progressive.jpg", "too large to decode"),
        ("12000x12000.png", "too large to decode"),
        ("bomb.png", "decompression bomb"),
        ("cut.jpg", "broken"),
    ],
)
def test_fix_command_refusals(name: str, says: str, media: Path, tmp_path: Path, run: Run) -> None:
    source = tmp_path / name
    shutil.copyfile(media / name, source)
    done = run("fix", "--no-content", str(source), "-o", str(tmp_path / "out.jpg"))
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert says in line and "Traceback" not in done.stderr
    assert os.listdir(tmp_path) == [name]


def test_a_source_changed_or_gone_since_the_plan_is_refused(tmp_path: Path) -> None:
    source = _save("wide.png", _nothing)(tmp_path)
    media, _ = inspect(source, "ref", content=False)
    plan = plan_image(media, SERVICE, output_format="jpg")
    out = tmp_path / "out.jpg"
    Image.new("RGB", (1000, 3000)).save(source)  # turned the other way
    with pytest.raises(FixRefused, match="changed meanwhile"):
        plan.apply(str(source), str(out))
    source.write_bytes(b"no longer a picture")
    with pytest.raises(FixRefused, match="does not decode"):
        plan.apply(str(source), str(out))
    source.unlink()
    with pytest.raises(FixRefused, match="No such file"):
        plan.apply(str(source), str(out))
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "code"),
    [("group-of-8.jpg", "InvalidFile.Content"), ("small-face.png", "Face.Small")],
)
def test_fix_command_on_the_face_recipes(
    name: str, code: str, media: Path, tmp_path: Path, run: Run
) -> None:
    """Eight people cut to the largest one; a small face cut closer: each output re-checked
    with its faces, one face, found again, no finding left."""
    source = tmp_path / name
    shutil.copyfile(media / name, source)
    done = run("fix", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"({code})" in done.stdout
    stem, ending = os.path.splitext(name)
    report = retalk.check_image(tmp_path / f"{stem}-fixed{ending}")
    assert report.findings == () and len(_faces(report)) == 1
