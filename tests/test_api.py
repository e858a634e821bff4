"""The public API is curated: what `retalk.__all__` names, and nothing heavy at import."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import retalk

PUBLIC = {
    "CODES",
    "EnvironmentProblem",
    "Finding",
    "FixRefused",
    "FixResult",
    "Input",
    "LedgerBusy",
    "LedgerError",
    "ModelUnavailable",
    "Policy",
    "PolicyError",
    "RefFrame",
    "Report",
    "RetalkError",
    "Severity",
    "ToolKilled",
    "ToolMissing",
    "__version__",
    "check",
    "check_audio",
    "check_file",
    "check_image",
    "check_job",
    "check_paths",
    "check_url",
    "check_video",
    "find_media",
    "fix",
    "load_policy",
    "write_ref_frame",
}


def test_all_is_the_curated_list() -> None:
    assert set(retalk.__all__) == PUBLIC
    for name in retalk.__all__:
        assert getattr(retalk, name) is not None


def test_version_matches_the_package_metadata() -> None:
    assert retalk.__version__ == importlib.metadata.version("retalk")


def test_exceptions_form_one_tree() -> None:
    assert issubclass(retalk.ToolMissing, retalk.EnvironmentProblem)
    assert issubclass(retalk.ModelUnavailable, retalk.EnvironmentProblem)
    assert issubclass(retalk.EnvironmentProblem, retalk.RetalkError)


def test_report_filters_by_code_prefix() -> None:
    found = [
        retalk.Finding("InvalidFile.FPS", retalk.Severity.ERROR, "a.mp4", "m"),
        retalk.Finding("File.NearLimit", retalk.Severity.WARNING, "a.mp4", "m"),
    ]
    report = retalk.Report((), tuple(found))
    assert not report.ok
    assert report.filtered(ignore=["InvalidFile."]).ok
    assert report.filtered(select=["File."]).codes == ("File.NearLimit",)
    assert report.filtered(select=["File."], ignore=["File.Near"]).codes == ()


def test_import_and_cli_start_without_heavy_modules() -> None:
    # `retalk --help` and metadata checks must stay fast: Pillow and ffmpeg-python load lazily.
    code = (
        "import sys, retalk, retalk.cli;"
        "heavy = {'PIL', 'ffmpeg', 'numpy', 'av', 'mediapipe', 'dlib', 'cv2'};"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_takes_a_job_value(media: Path) -> None:
    from retalk.job import Job, Parameters

    video, audio = str(media / "fps12.mp4"), str(media / "speech.wav")
    job = Job(video, audio, parameters=Parameters(video_extension=True))
    report = retalk.check(job, content=False)
    same = retalk.check_job(video=video, audio=audio, video_extension=True, content=False)
    assert report.codes == same.codes and "InvalidFile.FPS" in report.codes
    assert report.job == same.job and report.job is not None
    assert report.job["parameters"] == {"video_extension": True}
    assert report.job["cost_cny"] == round(report.job["billable_seconds"] * 0.08, 2)
