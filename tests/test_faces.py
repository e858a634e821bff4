"""Faces with the real models, on real faces shipped in packages (skimage's astronaut and
camera, matplotlib's Grace Hopper), composed into images and videos by fixtures/recipes.py."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

import retalk
from retalk.codes import CODES
from retalk.preflight.check import judge
from retalk.preflight.faces.detect import find_faces
from retalk.preflight.faces.model import face_model
from retalk.preflight.faces.scan import BY_REFERENCE, FaceScan, scan_video
from retalk.preflight.frames import sample_frames
from retalk.preflight.media import Media

FACE_CODES = {c for c in CODES if c.startswith("Face.")} | {
    "InvalidFile.Content",
    "InvalidFile.FaceNotMatch",
}

VIDEOS = [
    ("face.mp4", ()),
    ("phone-face.mp4", ()),
    ("two-faces.mp4", ("Face.Several",)),
    ("small-face.mp4", ("Face.Small",)),
    ("small-face-portrait.mp4", ("Face.Small",)),
    ("turned.mp4", ("Face.Turned",)),
    ("half-face.mp4", ("Face.Gaps",)),
    ("good.mp4", ("Face.None",)),
]

IMAGES = [
    ("astronaut.png", ()),
    ("grace.jpg", ()),
    ("camera.png", ("Face.Turned",)),
    ("small-face.png", ("Face.Small",)),
    ("two-people.png", ("InvalidFile.Content",)),
    ("close-up.jpg", ()),
    ("two-one-turned.jpg", ("InvalidFile.Content",)),
    ("second-in-shadow.jpg", ("InvalidFile.Content",)),
    ("group-of-8.jpg", ("InvalidFile.Content",)),
    ("good.png", ("InvalidFile.Content",)),
]

JOBS = [
    ("face.mp4", "astronaut.png", ()),
    ("two-faces.mp4", "grace.jpg", ()),
    ("face.mp4", "grace.jpg", ("InvalidFile.FaceNotMatch",)),
    ("good.mp4", "astronaut.png", ("Face.None", "InvalidFile.FaceNotMatch")),
    ("two-faces.mp4", "two-people.png", ("Face.Several", "InvalidFile.Content")),
    # A reference of two people is refused as such, not taken for a mismatch.
    ("face.mp4", "two-one-turned.jpg", ("InvalidFile.Content",)),
]


def _face_codes(report: retalk.Report) -> list[str]:
    return sorted(c for c in report.codes if c in FACE_CODES)


@pytest.mark.parametrize(("name", "expected"), VIDEOS)
def test_video_faces(media: Path, name: str, expected: tuple[str, ...]) -> None:
    report = retalk.check_video(media / name)
    assert _face_codes(report) == sorted(expected), report.findings
    assert report.ok


@pytest.mark.parametrize(("name", "expected"), IMAGES)
def test_image_faces(media: Path, name: str, expected: tuple[str, ...]) -> None:
    report = retalk.check_image(media / name)
    assert _face_codes(report) == sorted(expected), report.findings


@pytest.mark.parametrize(("video", "ref", "expected"), JOBS)
def test_reference_against_video(
    media: Path, video: str, ref: str, expected: tuple[str, ...]
) -> None:
    report = retalk.check_job(video=media / video, ref=media / ref)
    assert _face_codes(report) == sorted(expected), report.findings


@pytest.mark.parametrize(
    ("name", "said"),
    [("two-one-turned.jpg", "2 faces"), ("second-in-shadow.jpg", "2 faces"),
     ("group-of-8.jpg", "8 faces")],
)  # fmt: skip
def test_every_person_in_a_reference_is_counted(media: Path, name: str, said: str) -> None:
    (content,) = [
        f for f in retalk.check_image(media / name).findings if f.code.endswith("Content")
    ]
    assert content.actual == said


def test_every_face_code_has_a_case() -> None:
    produced = {c for table in (VIDEOS, IMAGES) for _, codes in table for c in codes}
    produced |= {c for _, _, codes in JOBS for c in codes}
    # test_uncertain_match, below; test_hostile_media's scan out of time
    assert FACE_CODES - produced == {"Face.MatchUncertain", "Face.Partial"}


def test_no_content_skips_faces(media: Path) -> None:
    report = retalk.check_video(media / "two-faces.mp4", content=False)
    assert report.codes == ()
    assert "faces" not in report.inputs[0].facts


def test_the_reference_picks_the_target(media: Path) -> None:
    report = retalk.check_job(video=media / "two-faces.mp4", ref=media / "grace.jpg")
    faces = report.inputs[0].facts["faces"]
    assert faces["target_chosen_by"] == BY_REFERENCE
    assert faces["ref_distance"] < 0.55
    for frame in faces["frames"]:
        (target,) = [f for f in frame["faces"] if f["target"]]
        assert target["box"][0] > 0.5  # Grace Hopper stands on the right


def test_without_reference_the_service_rule_picks_the_largest_face(media: Path) -> None:
    report = retalk.check_video(media / "two-faces.mp4")
    (several,) = [f for f in report.findings if f.code == "Face.Several"]
    assert "the one on the left" in several.message
    frame = report.inputs[0].facts["faces"]["frames"][0]
    (target,) = [f for f in frame["faces"] if f["target"]]
    assert target["box"][0] < 0.5


def test_gaps_say_where_the_face_is_missing(media: Path) -> None:
    report = retalk.check_video(media / "half-face.mp4")
    (gaps,) = [f for f in report.findings if f.code == "Face.Gaps"]
    assert gaps.severity is retalk.Severity.INFO
    assert gaps.at == pytest.approx(2.0, abs=0.2)
    assert "-4 s" in gaps.message
    assert report.inputs[0].facts["faces"]["target_coverage"] == pytest.approx(0.5, abs=0.1)


def test_a_sideways_phone_clip_is_stood_up_before_detection(media: Path) -> None:
    path = str(media / "phone-face.mp4")
    stored = sample_frames(path, 3.0, 25.0, count=6, rotation=0)
    shown = sample_frames(path, 3.0, 25.0, count=6, rotation=90)
    assert stored[0].rgb.shape[:2] == (720, 1280) and shown[0].rgb.shape[:2] == (1280, 720)

    def centres(scan: FaceScan) -> list[tuple[float, float]]:
        return [
            (round(face.box[0] + face.box[2] / 2, 1), round(face.box[1] + face.box[3] / 2, 1))
            for f in scan.frames
            if (face := f.target_face) is not None and not face.turned()
        ]

    # Stood up, the face is frontal and stands where the scene put it (x 0.5, y 0.4 of the
    # upright picture); lying on its side, it stands elsewhere.
    assert centres(scan_video(shown, 3.0)) == [(0.5, 0.4)] * len(shown)
    assert (0.5, 0.4) not in centres(scan_video(stored, 3.0))


def test_small_faces_need_the_tiles(media: Path) -> None:
    (frame,) = sample_frames(str(media / "small-face.mp4"), 3.0, 25.0, count=1)
    with face_model() as model:
        assert model.detect(frame.rgb) == []  # the whole frame alone misses a 6 % face
        (found,) = find_faces(model, frame.rgb, fine=True)
    assert found.h / 720 == pytest.approx(0.06, abs=0.015)


def test_frames_are_spread_over_the_video(media: Path) -> None:
    (item,) = retalk.check_video(media / "half-face.mp4").inputs
    times = [f["t"] for f in item.facts["faces"]["frames"]]
    # The 24 planned, and the first glance (at 0 s, with no face before it to follow),
    # analysed in full.
    assert len(times) == 25 and times[0] == 0.0
    planned = times[1:]
    assert planned[0] < 0.2 and planned[-1] > 3.7
    assert max(b - a for a, b in itertools.pairwise(planned)) < 0.25
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("distance", "codes"),
    [
        (0.3, []),
        (0.6, ["Face.MatchUncertain"]),
        (0.7, ["InvalidFile.FaceNotMatch"]),
        (None, ["InvalidFile.FaceNotMatch"]),
    ],
)
def test_uncertain_match(distance: float | None, codes: list[str]) -> None:
    # The rules are pure: a scan made up in place stands for any pair of faces.
    scan = FaceScan((), duration=3.0, with_reference=True, ref_distance=distance, ref_frame=1.0)
    media = Media("v.mp4", 1000, "mp4", faces=scan)
    assert sorted(judge(media, "video").codes) == codes


def test_faces_in_the_json_facts(run, media: Path) -> None:
    # No audio: the job's InvalidParameter is set aside, only the faces are looked at here.
    job = ("--video", "face.mp4", "--ref", "astronaut.png", "--ignore", "InvalidParameter")
    result = run("check", "--format", "json", *job, cwd=media)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # the models' own logging stays off the terminal
    video, _ = json.loads(result.stdout)["inputs"]
    faces = video["facts"]["faces"]
    assert faces["sampled_frames"] == 24 and faces["target_coverage"] == 1.0
    face = faces["frames"][0]["faces"][0]
    assert set(face) == {"box", "score", "size", "yaw", "pitch", "target"}
    assert abs(face["yaw"]) < 10 and abs(face["pitch"]) < 10


def test_ref_frame_writes_a_reference_that_passes(run, media: Path, tmp_path: Path) -> None:
    out = tmp_path / "ref.jpg"
    result = run("ref-frame", str(media / "two-faces.mp4"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: the frame at ")
    report = retalk.check_image(out)
    assert report.codes == ()  # one face, frontal, large, within the image limits
    # And it is the person the service would pick: the video matches it.
    report = retalk.check_job(video=media / "two-faces.mp4", ref=out)
    assert report.filtered(ignore="InvalidParameter").codes == ()  # no audio given


def test_ref_frame_without_a_face(run, media: Path, tmp_path: Path) -> None:
    result = run("ref-frame", str(media / "good.mp4"), "-o", str(tmp_path / "ref.jpg"))
    assert result.returncode == 1
    assert "no reference written" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ref.jpg").exists()
