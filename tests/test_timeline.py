"""The face timeline: frames sampled by time, not by keyframe, so that a face that leaves
between two keyframes is missed by no encoding; and memory that does not follow resolution."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import retalk
from retalk import limits
from retalk.preflight.frames import Frame, plan_samples, prefetched

SPACING = limits.FACE_SPACING_S


def _keyframes(path: Path) -> list[float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-skip_frame", "nokey",
         "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [float(line.strip(",")) for line in out.split()]


@pytest.mark.parametrize(
    ("keyframes", "end"),
    [
        ([0.0, 10.0, 20.0], 25.0),  # x264's default interval at 25 fps: samples between
        ([float(k) for k in range(30)], 29.9),  # a keyframe a second: the keyframes alone
        ([k / 25 for k in range(250)], 9.96),  # every frame a keyframe: thinned
        ([0.0], 120.0),  # one keyframe for two minutes
        ([0.0, 0.3, 7.9, 8.2], 9.0),  # uneven
    ],
)
def test_no_stretch_between_samples_exceeds_the_spacing(keyframes: list[float], end: float) -> None:
    analyse = [(i + 0.5) * end / 24 for i in range(24)]
    plan = plan_samples(keyframes, end, analyse, max_spacing=SPACING, min_spacing=SPACING / 2)
    edges = [0.0, *plan.times, end]
    assert max(b - a for a, b in itertools.pairwise(edges)) <= SPACING + 1e-9
    assert plan.spacing <= SPACING + 1e-9
    assert list(plan.times) == sorted(set(plan.times))
    assert len(plan.analyse) == 24
    for want in analyse:  # each analysis time has an analysed sample near it
        assert min(abs(plan.times[i] - want) for i in plan.analyse) <= end / 48 + 1e-9


def test_keyframes_are_preferred_where_they_are_close_enough() -> None:
    keyframes = [float(k) for k in range(30)]
    plan = plan_samples(keyframes, 29.9, [], max_spacing=SPACING, min_spacing=SPACING / 2)
    assert set(plan.times) - {29.9} <= set(keyframes)  # no frame decoded past a keyframe


def test_huge_frames_are_sampled_on_keyframes_only() -> None:
    plan = plan_samples(
        [0.0, 4.0, 8.0], 9.0, [1.0, 7.0], max_spacing=SPACING, min_spacing=0.5,
        keyframes_only=True,
    )  # fmt: skip
    assert plan.times == (0.0, 4.0, 8.0) and plan.spacing == 4.0
    assert plan.analyse == {0, 2}


# (file, gaps the face takes, what makes its keyframes)
LEAVING = [
    ("leaves-gop250.mp4", [(31.2, 32.7), (62.3, 64.3)], "x264's default: one in 10 s"),
    ("leaves-gop25.mp4", [(62.3, 64.3)], "one a second"),
    ("leaves-cut.mp4", [(62.3, 64.3)], "scene cuts"),
]


@pytest.mark.parametrize(("name", "gaps", "_"), LEAVING)
def test_a_face_that_leaves_is_found_whatever_the_keyframes(
    media: Path, name: str, gaps: list[tuple[float, float]], _: str
) -> None:
    path = media / name
    report = retalk.check_video(path)
    faces = report.inputs[0].facts["faces"]
    # The timeline looked at a frame at least every second, many of them between keyframes.
    assert faces["spacing_s"] <= SPACING + 0.05
    assert faces["timeline_frames"] >= 120
    found = faces["gaps"]
    assert len(found) == len(gaps), found
    accuracy = faces["spacing_s"] / 2 + 0.05
    for (start, end), (a, b) in zip(found, gaps, strict=True):
        assert start == pytest.approx(a, abs=accuracy) and end == pytest.approx(b, abs=accuracy)
    (finding,) = [f for f in report.findings if f.code == "Face.Gaps"]
    assert finding.at == pytest.approx(gaps[0][0], abs=accuracy)
    assert faces["target_coverage"] == pytest.approx(
        1 - sum(b - a for a, b in gaps) / 120, abs=0.01
    )


def test_the_gaps_lie_between_keyframes(media: Path) -> None:
    # No keyframe near them: only frames decoded forward from the keyframe before show them.
    keyframes = _keyframes(media / "leaves-gop250.mp4")
    assert len(keyframes) < 20
    assert not any(30.5 < k < 34 or 61.5 < k < 64 for k in keyframes), keyframes


def test_speech_over_the_gap_is_not_lip_synced(media: Path) -> None:
    report = retalk.check_job(video=media / "leaves-gop250.mp4", audio=media / "speech-120s.mp3")
    (finding,) = [f for f in report.findings if f.code == "Job.SpeechWithoutFace"]
    assert 30 < (finding.at or 0) < 34, finding


_MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stderr.write(done.stderr.decode())
"""


def test_a_face_seen_only_between_analysed_frames_is_matched(media: Path) -> None:
    report = retalk.check_job(video=media / "cutaway.mp4", ref=media / "astronaut.png")
    faces = report.inputs[0].facts["faces"]
    assert faces["target_chosen_by"] == "reference", report.findings  # not a false mismatch
    assert "InvalidFile.FaceNotMatch" not in report.codes
    assert faces["target_coverage"] == pytest.approx(1.4 / 48, abs=1.1 / 48)


def test_a_video_stream_without_frames_gives_a_report(media: Path) -> None:
    report = retalk.check_video(media / "no-frames.mkv")
    assert report.inputs[0].path.endswith("no-frames.mkv")


def test_a_picture_too_wide_for_the_face_models_gives_a_report(run, media: Path) -> None:
    # A side of 32767 px or more aborts mediapipe's OpenCV: the picture is shrunk before.
    result = run("check", "-q", str(media / "strip-32800x64.png"))
    assert result.returncode == 1, result.stderr
    assert "InvalidFile.ImageSize" in result.stdout


def _peak_rss_mb(*command: str) -> float:
    """The largest resident size of the command (or a process it ran), in MB. Measured from a
    small Python of its own: a child forked from this test process would count its size."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=True
    )
    code, peak = done.stdout.split()
    assert code in ("0", "1"), done.stderr
    return int(peak) / 1024


RETALK = str(Path(sys.executable).with_name("retalk"))


@pytest.mark.parametrize("name", ["face-4k.mp4", "face-8k.mp4"])
def test_memory_does_not_follow_the_resolution(media: Path, name: str) -> None:
    report = retalk.check_video(media / name)
    assert report.inputs[0].facts["faces"]["target_coverage"] == 1.0  # the faces were seen
    assert _peak_rss_mb(RETALK, "check", str(media / name)) < 500


def test_memory_does_not_follow_the_number_of_files(media: Path, tmp_path: Path) -> None:
    def folder(count: int) -> Path:
        path = tmp_path / f"{count}"
        path.mkdir()
        for i in range(count):
            shutil.copyfile(media / "face-4k.mp4", path / f"{i}.mp4")
        return path

    # Copies of one file: without --no-cache, the second check's would all be cache hits.
    few = _peak_rss_mb(RETALK, "check", "--no-cache", str(folder(1)))
    many = _peak_rss_mb(RETALK, "check", "--no-cache", str(folder(6)))
    assert many < few + 60, (few, many)


def _frames(count: int, fail_at: int | None = None) -> Iterator[Frame]:
    for i in range(count):
        if i == fail_at:
            raise ValueError("a broken frame")
        yield Frame(float(i), np.zeros((2, 2, 3), dtype=np.uint8))


def test_prefetching_keeps_the_order_and_hands_over_errors() -> None:
    assert [f.t for f in prefetched(_frames(50))] == [float(i) for i in range(50)]
    seen = []
    with pytest.raises(ValueError, match="a broken frame"):
        for frame in prefetched(_frames(50, fail_at=7)):
            seen.append(frame.t)
    assert seen == [float(i) for i in range(7)]


def test_leaving_a_prefetched_loop_early_stops_its_thread() -> None:
    before = {t.name for t in threading.enumerate()}
    assert "retalk-frames" not in before
    frames = prefetched(_frames(10_000))
    assert next(frames).t == 0.0
    assert "retalk-frames" in {t.name for t in threading.enumerate()}  # decoding ahead
    frames.close()
    assert "retalk-frames" not in {t.name for t in threading.enumerate()}
