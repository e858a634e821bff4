"""Every output format of the registry: a fixed report rendered in each and compared with the
expected text under tests/formats/, SARIF validated against the official schema, JUnit parsed,
`-q` in every format, and the formats offered by every command that prints a report."""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
from PIL import Image

import retalk
from retalk.codes import Severity
from retalk.findings import Finding, Input, Report
from retalk.report import FORMATS, RenderOptions, render
from retalk.units import size_text

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "formats"
SARIF_SCHEMA = json.loads((HERE / "schemas" / "sarif-schema-2.1.0.json").read_text())

VIDEO = "clips/talk ü 视频.mp4"
AUDIO = "/media/speech#1 100%.wav"
REPORT = Report(
    inputs=(
        Input(
            VIDEO,
            "video",
            "video",
            {
                "container": "mp4",
                "codec": "h264",
                "width": 1280,
                "height": 720,
                "fps": 12.0,
                "duration": 10.0,
                "size_bytes": 2202009,
            },
        ),
        Input(
            AUDIO,
            "audio",
            "audio",
            {
                "container": "wav",
                "codec": "pcm_s16le",
                "sample_rate": 44100,
                "channels": 1,
                "duration": 9.5,
                "size_bytes": 6,
            },
        ),
    ),
    findings=(
        Finding(
            "InvalidFile.FPS",
            Severity.ERROR,
            VIDEO,
            "12 fps, the service takes 15 to 60",
            expected="15 to 60 fps",
            actual="12 fps",
            hint="ffmpeg -i in.mp4 -r 30 out.mp4",
        ),
        Finding(
            "Face.Small",
            Severity.WARNING,
            VIDEO,
            "the face is 6% of the frame's shorter side",
            at=3.5,
        ),
        Finding("Audio.Silences", Severity.INFO, AUDIO, "pauses: 1.2-2.0 s", at=1.2),
    ),
    job={
        "parameters": {"video_extension": False},
        "video_duration": 10.0,
        "audio_duration": 9.5,
        "output_duration": 9.5,
        "billable_seconds": 9.5,
        "video_passes": 1,
    },
)


def _expected(name: str) -> str:
    return (EXPECTED / f"report.{name}").read_text().replace("@VERSION@", retalk.__version__)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_renders_the_fixed_report_as_expected(fmt: str) -> None:
    assert render(REPORT, fmt) + "\n" == _expected(fmt)


def test_every_format_has_its_expected_text() -> None:
    assert sorted(p.suffix.lstrip(".") for p in EXPECTED.glob("report.*")) == sorted(FORMATS)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_quiet_leaves_out_info_findings_in_every_format(fmt: str) -> None:
    loud, quiet = render(REPORT, fmt), render(REPORT, fmt, RenderOptions(quiet=True))
    assert "Audio.Silences" in loud
    assert "Audio.Silences" not in quiet
    assert "InvalidFile.FPS" in quiet and "Face.Small" in quiet


def _validate_sarif(log: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    for result in log["runs"][0]["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        # The schema's `uri-reference` format is not checked without extra packages: a URI
        # reference holds printable ASCII only, with no space.
        assert re.fullmatch(r"[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]+", uri), uri


def test_sarif_is_valid_against_the_official_schema() -> None:
    log = json.loads(render(REPORT, "sarif"))
    _validate_sarif(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["InvalidFile.FPS", "Face.Small", "Audio.Silences"]
    assert [r["level"] for r in run["results"]] == ["error", "warning", "note"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("a b.mp4", "a%20b.mp4"),
        ("dir/ünï 视频.mp4", "dir/%C3%BCn%C3%AF%20%E8%A7%86%E9%A2%91.mp4"),
        ("take#2 100%.mp4", "take%232%20100%25.mp4"),
        ("a:b.mp4", "a%3Ab.mp4"),  # not read as a URI scheme `a:`
        ("./clips/x.mp4", "clips/x.mp4"),
        ("/abs/a b#.mp4", "file:///abs/a%20b%23.mp4"),
        ("bad\udcff\x1b.mp4", "bad%FF%1B.mp4"),  # a name that is not UTF-8, with an escape
    ],
)
def test_sarif_locations_are_percent_encoded_uris(path: str, uri: str) -> None:
    finding = Finding("File.Unreadable", Severity.ERROR, path, "no such file")
    log = json.loads(render(Report((Input(path, "unknown", None),), (finding,)), "sarif"))
    _validate_sarif(log)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == uri
    if not path.startswith("/"):
        assert unquote(uri, errors="surrogateescape") == os.path.normpath(path)


def test_junit_is_well_formed_whatever_the_names_hold() -> None:
    odd = 'clip\x1b[31m\x07 \u202e\ufffe\udcff <&">.mp4'
    finding = Finding("InvalidFile.FPS", Severity.ERROR, odd, "12 fps\nforged line \x00")
    report = Report((Input(odd, "video", "video"),), (finding,))
    xml = render(report, "junit")
    suite = ET.fromstring(xml.encode())
    case = suite.find("testcase")
    assert case is not None
    assert case.get("name") == 'clip\\x1b[31m\\x07 \\u202e\\ufffe\\udcff <&">.mp4'
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "12 fps\\nforged line \\x00"
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", xml)


def test_junit_counts_one_test_case_a_file_and_a_failure_an_error() -> None:
    suite = ET.fromstring(render(REPORT, "junit").encode())
    assert suite.tag == "testsuite" and suite.get("name") == "retalk"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = suite.findall("testcase")
    assert [(c.get("name"), c.get("classname")) for c in cases] == [
        (VIDEO, "video"),
        (AUDIO, "audio"),
    ]
    failures = cases[0].findall("failure")
    assert [(f.get("type"), f.get("message")) for f in failures] == [
        ("InvalidFile.FPS", "12 fps, the service takes 15 to 60")
    ]
    assert cases[1].find("failure") is None
    assert "Audio.Silences (info)" in (cases[1].findtext("system-out") or "")


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (6, "6 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KB"),
        (151 * 1024, "151 KB"),
        (2**20 - 1, "1.0 MB"),
        (2202009, "2.1 MB"),
        (300 * 2**20 + 1, "300.0 MB"),
    ],
)
def test_sizes_are_shown_in_the_unit_of_the_limits(size: int, shown: str) -> None:
    assert size_text(size) == shown


# The real command.


def test_a_tiny_file_shows_its_size_in_bytes(run, tmp_path: Path) -> None:
    (tmp_path / "six.mp4").write_bytes(b"abcdef")
    result = run("check", "--no-content", "six.mp4", cwd=tmp_path)
    assert result.stdout.splitlines()[0] == "six.mp4: unknown, 6 bytes"


def test_check_offers_every_format_of_the_registry(run) -> None:
    for command in (["check"], ["submit"]):
        result = run(*command, "--help")
        assert result.returncode == 0
        assert f"[{'|'.join(FORMATS)}]" in re.sub(r"\s+", "", result.stdout), command


def test_check_in_sarif_and_junit(run, media: Path, tmp_path: Path) -> None:
    names = ["bad 12 fps #1 100%.mp4", "ünï good.mp4"]
    shutil.copyfile(media / "fps12.mp4", tmp_path / names[0])
    shutil.copyfile(media / "good.mp4", tmp_path / names[1])
    sarif = run("check", "--no-content", "--format", "sarif", *names, cwd=tmp_path)
    assert sarif.returncode == 1, sarif.stderr
    log = json.loads(sarif.stdout)
    _validate_sarif(log)
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["InvalidFile.FPS"]
    uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert (tmp_path / unquote(uri)).is_file()

    absolute = run("check", "--no-content", "--format", "sarif", str(tmp_path / names[0]))
    uri = json.loads(absolute.stdout)["runs"][0]["results"][0]["locations"][0]
    parts = urlsplit(uri["physicalLocation"]["artifactLocation"]["uri"])
    assert parts.scheme == "file" and Path(unquote(parts.path)) == tmp_path / names[0]

    junit = run("check", "--no-content", "--format", "junit", *names, cwd=tmp_path)
    assert junit.returncode == 1, junit.stderr
    suite = ET.fromstring(junit.stdout.encode())
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == names
    assert [len(c.findall("failure")) for c in cases] == [1, 0]
    assert suite.get("failures") == "1"


def test_quiet_json_drops_the_info_findings(run, media: Path) -> None:
    job = ["--video", str(media / "good.mp4"), "--audio", str(media / "speech.wav")]
    args = ["check", "--no-content", "--format", "json", *job, "--video-extension"]
    loud, quiet = run(*args), run(*args, "-q")
    assert loud.returncode == quiet.returncode == 0, loud.stderr + quiet.stderr
    severities = [f["severity"] for f in json.loads(loud.stdout)["findings"]]
    assert "info" in severities  # Job.Extended: so that -q has something to drop
    kept = json.loads(quiet.stdout)
    assert [f for f in kept["findings"] if f["severity"] == "info"] == []
    assert kept["inputs"] == json.loads(loud.stdout)["inputs"]


def test_submit_prints_the_preflight_in_the_format_asked(run, media: Path, tmp_path: Path) -> None:
    from retalk.emulator import Emulator

    job = ["--video", str(media / "fps12.mp4"), "--audio", str(media / "speech.wav")]
    # The key and the address are checked before the preflight: a service is needed.
    with Emulator(storage=tmp_path / "emulator") as emulator:
        env = {
            **os.environ,
            "DASHSCOPE_API_KEY": "sk-any",
            "DASHSCOPE_HTTP_BASE_URL": emulator.base_url,
        }
        result = run("submit", "--no-content", *job, "--report-format", "sarif", env=env)
    assert result.returncode == 1, result.stderr
    *report, last = result.stderr.splitlines()
    assert last.startswith("retalk: the service would reject this job: nothing was uploaded")
    log = json.loads("\n".join(report))
    _validate_sarif(log)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["InvalidFile.FPS"]


def test_no_help_promises_what_is_missing(run) -> None:
    from retalk.cli import main

    for name in ["", *main.commands]:
        result = run(*([name] if name else []), "--help")
        assert result.returncode == 0, name
        assert not re.search(r"\(later\)|not yet|todo|coming soon", result.stdout, re.I), name


@pytest.mark.parametrize(("ending", "pillow"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_ref_frame_writes_the_format_its_ending_names(
    run, media: Path, tmp_path: Path, ending: str, pillow: str
) -> None:
    out = tmp_path / f"ref.{ending}"
    result = run("ref-frame", str(media / "face.mp4"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == pillow


def test_ref_frame_refuses_another_ending_before_any_work(run, tmp_path: Path) -> None:
    # The video does not exist: the ending is refused before it is looked for.
    result = run("ref-frame", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "ref.gif"))
    assert result.returncode == 2
    assert "ref.gif" in result.stderr and ".png" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ref.gif").exists()


@pytest.mark.parametrize("strict", [True, ("Face.",)])
def test_a_warning_that_fails_the_check_fails_in_every_machine_format(
    strict: bool | tuple[str, ...],
) -> None:
    """Under `--strict` (or a strict list naming it), the Face.Small warning fails the check:
    each format says so, as the exit code does; without it, it does not."""
    failing = RenderOptions(strict=strict)
    data = json.loads(render(REPORT, "json", failing))
    assert data["ok"] is False  # the service's verdict, as ever (the FPS error)
    assert data["passed"] is False
    assert [f["blocking"] for f in data["findings"]] == [True, True, False]
    assert json.loads(render(REPORT, "json"))["passed"] is False  # the FPS error alone
    assert f"::error file={VIDEO},title=Face.Small::" in render(REPORT, "github", failing)
    assert f"::warning file={VIDEO},title=Face.Small::" in render(REPORT, "github")
    levels = [
        r["level"] for r in json.loads(render(REPORT, "sarif", failing))["runs"][0]["results"]
    ]
    assert levels == ["error", "error", "note"]
    suite = ET.fromstring(render(REPORT, "junit", failing))
    assert [f.get("type") for f in suite.iter("failure")] == ["InvalidFile.FPS", "Face.Small"]
    assert suite.get("failures") == "1"  # failed test cases: both findings are the video's
