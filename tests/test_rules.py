"""Every metadata rule, table-driven over real files made by ffmpeg and Pillow: each code is
produced by at least one case and absent on conforming files. The expected codes are exact (info
aside). Content analysis is off here (`content=False`): test_faces.py covers faces."""

from __future__ import annotations

from pathlib import Path

import pytest

import retalk
from retalk.codes import CODES, Severity

CHECKS = {
    "video": retalk.check_video,
    "audio": retalk.check_audio,
    "ref": retalk.check_image,
    None: retalk.check_file,
}

CASES: list[tuple[str, str | None, tuple[str, ...]]] = [
    # Video that the service takes.
    ("good.mp4", "video", ()),
    ("good.mov", "video", ()),
    ("good.avi", "video", ()),
    ("hevc.mp4", "video", ()),
    ("phone.mp4", "video", ()),
    ("mov-named.mp4", "video", ()),
    # Frame rate: 15 and 60 are in, a hair under 15 is out, the average rate counts.
    ("fps12.mp4", "video", ("InvalidFile.FPS",)),
    ("fps14.985.mp4", "video", ("InvalidFile.FPS",)),
    ("fps15.mp4", "video", ()),
    ("fps60.mp4", "video", ()),
    ("fps61.mp4", "video", ("InvalidFile.FPS",)),
    ("vfr10.mp4", "video", ("InvalidFile.FPS",)),
    # Resolution: each side 640 to 2048.
    ("638x640.mp4", "video", ("InvalidFile.Resolution",)),
    ("640x640.mp4", "video", ()),
    ("2048x640.mp4", "video", ()),
    ("2050x640.mp4", "video", ("InvalidFile.Resolution",)),
    ("480x360.mp4", "video", ("InvalidFile.Resolution",)),
    # Duration: [2, 120] s, with a warning within 50 ms of either bound.
    ("1.9s.mp4", "video", ("InvalidFile.Duration",)),
    ("2s.mp4", "video", ("File.NearLimit",)),
    ("2.1s.mp4", "video", ()),
    ("119.96s.mp4", "video", ("File.NearLimit",)),
    ("120.52s.mp4", "video", ("InvalidFile.Duration",)),
    # Format by content, container and codec.
    ("vp9.mp4", "video", ("InvalidFile.Format",)),
    ("mpeg4.avi", "video", ("InvalidFile.Format",)),
    ("h264.mkv", "video", ("InvalidFile.Format",)),
    ("h264.flv", "video", ("InvalidFile.Format",)),
    ("mkv-named.mp4", "video", ("InvalidFile.Format",)),
    ("good.wav", "video", ("InvalidFile.Format",)),
    ("good.jpg", "video", ("InvalidFile.Format",)),
    ("audio-only.mp4", "video", ("InvalidFile.Openerror",)),
    # Names.
    ("mp4-named.avi", "video", ("File.ExtensionMismatch",)),
    ("mp4-named.m4v", "video", ("File.ExtensionMismatch",)),
    ("mp4-no-ending", "video", ("File.ExtensionMismatch",)),
    # Broken files.
    ("empty.mp4", "video", ("InvalidFile.Openerror",)),
    ("text.mp4", "video", ("InvalidFile.Openerror",)),
    ("cut-faststart.mp4", "video", ("InvalidFile.Openerror",)),
    ("cut-moov-at-end.mp4", "video", ("InvalidFile.Openerror",)),
    ("cut-after-moov.mp4", "video", ("InvalidFile.Openerror",)),
    ("cut.avi", "video", ("File.Truncated", "InvalidFile.Duration")),
    # Size: over 300 MiB is an error; between 300e6 bytes and 300 MiB, a warning.
    ("300e6.mp4", "video", ()),
    ("300MiB.mp4", "video", ("File.NearLimit",)),
    ("300MiB+1.mp4", "video", ("InvalidFile.Size",)),
    # Audio.
    ("good.wav", "audio", ()),
    ("good.mp3", "audio", ()),
    ("good.aac", "audio", ()),
    ("cover-art.mp3", "audio", ()),
    ("119s.aac", "audio", ()),
    ("121s.aac", "audio", ("InvalidFile.Duration",)),
    ("1.9s.wav", "audio", ("InvalidFile.Duration",)),
    ("2s.wav", "audio", ("File.NearLimit",)),
    ("2.1s.wav", "audio", ()),
    ("120.5s.mp3", "audio", ("InvalidFile.Duration",)),
    ("tone.m4a", "audio", ("InvalidFile.Format",)),
    ("tone.flac", "audio", ("InvalidFile.Format",)),
    ("tone.opus", "audio", ("InvalidFile.Format",)),
    ("mp2-named.mp3", "audio", ("InvalidFile.Format",)),
    ("good.mp4", "audio", ("InvalidFile.Format",)),
    ("wav-named.mp3", "audio", ("File.ExtensionMismatch",)),
    ("cut.wav", "audio", ("File.Truncated", "InvalidFile.Duration")),
    ("cut.aac", "audio", ("File.Truncated", "InvalidFile.Duration")),
    ("noise.wav", "audio", ("InvalidFile.Openerror",)),
    ("30MiB.wav", "audio", ("File.NearLimit",)),
    ("30MiB+1.wav", "audio", ("InvalidFile.Size",)),
    # Images.
    ("good.jpg", "ref", ()),
    ("good.png", "ref", ()),
    ("good.bmp", "ref", ()),
    ("good.webp", "ref", ()),
    ("2to1.png", "ref", ()),
    ("2.001to1.png", "ref", ("InvalidFile.ImageSize",)),
    ("4096x2048.jpg", "ref", ()),
    ("4098x2049.jpg", "ref", ("InvalidFile.ImageSize",)),
    ("5000x2000.jpg", "ref", ("InvalidFile.ImageSize", "InvalidFile.ImageSize")),
    ("big.bmp", "ref", ("InvalidFile.Size",)),
    ("photo.gif", "ref", ("InvalidFile.Format",)),
    ("photo.tiff", "ref", ("InvalidFile.Format",)),
    ("good.mp4", "ref", ("InvalidFile.Format",)),
    ("png-named.jpg", "ref", ("File.ExtensionMismatch",)),
    ("bomb.png", "ref", ("InvalidFile.Openerror",)),
    # By content: the role follows what the file is.
    ("good.mp4", None, ()),
    ("good.aac", None, ()),
    ("good.webp", None, ()),
    ("tone.m4a", None, ("InvalidFile.Format",)),
    ("text.mp4", None, ("InvalidFile.Openerror",)),
]


def _codes(report: retalk.Report) -> tuple[str, ...]:
    return tuple(sorted(f.code for f in report.findings if f.severity is not Severity.INFO))


@pytest.mark.parametrize(("name", "role", "expected"), CASES, ids=[f"{r}:{n}" for n, r, _ in CASES])
def test_rule(media: Path, name: str, role: str | None, expected: tuple[str, ...]) -> None:
    report = CHECKS[role](media / name, content=False)
    assert _codes(report) == tuple(sorted(expected)), report.findings
    assert report.ok == (not any(CODES[c].severity is Severity.ERROR for c in expected))
    assert all(f.path == str(media / name) for f in report.findings)


def test_every_file_code_is_produced_by_a_case() -> None:
    produced = {code for _, _, codes in CASES for code in codes}
    # File.Unreadable, File.Unmeasured, File.Damaged and File.LfsPointer have cases of their
    # own (test_cli, test_probe, test_hostile_media, test_lfs), File.CheckFailed in test_many;
    # the face, speech and job codes theirs (test_faces, test_speech), InvalidParameter (a job
    # without an input) test_policy's; the URL codes test_urls'.
    own = ("Face.", "Audio.", "Job.", "InvalidURL.", "URL.")
    file_codes = {c for c in CODES if not c.startswith(own)} - {
        "InvalidFile.Content",
        "InvalidFile.FaceNotMatch",
        "InvalidParameter",
    }
    own_cases = {
        "File.Unreadable",
        "File.Unmeasured",
        "File.Damaged",
        "File.LfsPointer",
        "File.CheckFailed",
    }
    assert file_codes - produced == own_cases


@pytest.mark.parametrize(
    ("name", "kind", "role"),
    [
        ("good.mp4", "video", "video"),
        ("good.mp3", "audio", "audio"),
        ("cover-art.mp3", "audio", "audio"),
        ("audio-only.mp4", "audio", "audio"),
        ("good.png", "image", "ref"),
        ("text.mp4", "unknown", "video"),  # nothing opens it: the name says the role
    ],
)
def test_check_file_takes_the_role_from_the_content(
    media: Path, name: str, kind: str, role: str | None
) -> None:
    (item,) = retalk.check_file(media / name, content=False).inputs
    assert (item.kind, item.role) == (kind, role)


def test_size_is_judged_without_reading_the_file(media: Path) -> None:
    # The padded file is sparse and its padding is never read: were it read, it would be
    # 300 MiB of zeros that ffprobe rejects; instead only the size speaks.
    report = retalk.check_video(media / "300MiB+1.mp4", content=False)
    (item,) = report.inputs
    assert item.facts["size_bytes"] == 300 * 1024 * 1024 + 1
    assert item.facts["codec"] == "h264"


def test_phone_video_limits_apply_to_the_displayed_frame(media: Path) -> None:
    (item,) = retalk.check_video(media / "phone.mp4", content=False).inputs
    facts = item.facts
    assert (facts["coded_width"], facts["coded_height"]) == (1280, 720)
    assert (facts["width"], facts["height"], facts["rotation"]) == (720, 1280, 90)


def test_raw_aac_duration_is_counted_not_estimated(media: Path) -> None:
    (item,) = retalk.check_audio(media / "119s.aac", content=False).inputs
    facts = item.facts
    assert facts["duration_source"] == "frame count"
    # 119 s of tone plus the encoder's 1024 priming samples.
    assert facts["duration"] == pytest.approx(119.023, abs=0.005)
    assert abs(facts["ffprobe_duration"] - 119.0) > 0.5  # ffprobe's bit-rate estimate is off


def test_variable_frame_rate_uses_the_average(media: Path) -> None:
    (item,) = retalk.check_video(media / "vfr10.mp4", content=False).inputs
    assert item.facts["fps_source"] == "avg_frame_rate"
    assert item.facts["fps"] < 15


def test_no_content_still_decodes_the_picture(media: Path) -> None:
    # A JPEG cut in half has a whole header: only decoding its pixels finds the cut, which a
    # metadata-only check does too (at an eighth of the size: tests/test_hostile_media.py
    # holds it to its memory bound).
    for content in (False, True):
        report = retalk.check_image(media / "cut.jpg", content=content)
        assert [f.code for f in report.errors] == ["InvalidFile.Openerror"]


def test_job_checks_each_input_in_its_role(media: Path) -> None:
    report = retalk.check_job(
        video=media / "fps12.mp4", audio=media / "tone.m4a", ref=media / "good.png", content=False
    )
    assert [(i.role, i.kind) for i in report.inputs] == [
        ("video", "video"),
        ("audio", "audio"),
        ("ref", "image"),
    ]
    assert sorted(report.codes) == ["InvalidFile.FPS", "InvalidFile.Format"]
    assert not report.ok


def test_check_paths_searches_folders_in_order(media: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for target in ("b/clip.mp4", "a.wav", ".hidden/skip.mp4"):
        (tmp_path / target).symlink_to(
            media / ("good.wav" if target.endswith("wav") else "good.mp4")
        )
    (tmp_path / "notes.txt").write_text("not media")
    report = retalk.check_paths([tmp_path], content=False)
    assert [Path(i.path).relative_to(tmp_path).as_posix() for i in report.inputs] == [
        "a.wav",
        "b/clip.mp4",
    ]
    assert report.ok


def test_a_file_no_one_can_open_with_no_media_name_has_no_role(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n" * 100)
    report = retalk.check_file(notes, content=False)
    assert [(i.kind, i.role) for i in report.inputs] == [("unknown", None)]
    assert report.codes == ("InvalidFile.Openerror",)


def test_the_old_face_mismatch_spelling_filters_as_an_alias() -> None:
    found = (
        retalk.Finding("InvalidFile.FaceNotMatch", Severity.ERROR, "a.mp4", "m"),
        retalk.Finding("InvalidFile.FPS", Severity.ERROR, "a.mp4", "m"),
        retalk.Finding("File.NearLimit", Severity.WARNING, "b.wav", "m"),
    )
    report = retalk.Report((), found)
    assert report.filtered(ignore=["InvalidFile.FaceNotMach"]).codes == (
        "InvalidFile.FPS",
        "File.NearLimit",
    )
    assert report.filtered(select=["InvalidFile.FaceNotMach"]).codes == (
        "InvalidFile.FaceNotMatch",
    )
    assert report.filtered(select=["File.", "InvalidFile.FaceNotMach"]).codes == (
        "InvalidFile.FaceNotMatch",
        "File.NearLimit",
    )
    # Prefixes stay prefixes: the family drops both spellings, a longer name neither.
    assert report.filtered(ignore=["InvalidFile."]).codes == ("File.NearLimit",)
    assert report.filtered(ignore=["InvalidFile.FaceNotMachX"]).codes == report.codes
    assert "InvalidFile.FaceNotMach" not in CODES
    # One string is one prefix, not a set of one-letter prefixes.
    assert report.filtered(ignore="File.").codes == ("InvalidFile.FaceNotMatch", "InvalidFile.FPS")
    assert report.filtered(select="File.").codes == ("File.NearLimit",)
