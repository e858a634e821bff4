"""The verdict line once a policy or a selection applies, through the real command: whose
verdict it is (the service's, the project's policy's), what the selection left out, files not
checked; and what no selection may do: drop a file that was not read or not judged, or match
every code with an empty prefix."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import retalk
from retalk.codes import CODES
from retalk.findings import Finding, Input, NotSelected, Report
from retalk.report.text import verdict

Run = Callable[..., subprocess.CompletedProcess[str]]

POINTER = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'a' * 64}\nsize 12345\n"

# (config, options, files, exit code, the verdict line)
VERDICTS = [
    # The service's verdict, as before.
    ("", (), ["fps12.mp4"], 1, "FAIL: the service would reject 1 of 1 file (1 error, 0 warnings)"),
    ("", (), ["good.mp4"], 0, "OK: the service would accept the 1 file (0 errors, 0 warnings)"),
    # The project's limit alone rejects it: the service takes 2048 px.
    (
        "[video]\nmax-side = 1920\n",
        (),
        ["2048x640.mp4"],
        1,
        "FAIL: the project's policy would reject 1 of 1 file (1 error, 0 warnings)",
    ),
    (
        "[video]\nmax-side = 1920\n",
        (),
        ["2048x640.mp4", "fps12.mp4"],
        1,
        "FAIL: the service would reject 1 of 2 files, the project's policy 1 more "
        "(2 errors, 0 warnings)",
    ),
    # Over the service's own limit too: the service's verdict.
    (
        "[video]\nmax-side = 1920\n",
        (),
        ["2050x640.mp4"],
        1,
        "FAIL: the service would reject 1 of 1 file (1 error, 0 warnings)",
    ),
    # The selection dropped errors: never "the service would accept".
    (
        "",
        ("--ignore", "InvalidFile.FPS"),
        ["fps12.mp4"],
        0,
        "OK for the selected codes (0 errors, 0 warnings; 1 error not selected: the service "
        "would reject 1 of 1 file)",
    ),
    (
        "[video]\nmax-side = 1920\n",
        ("--ignore", "InvalidFile.Resolution"),
        ["2048x640.mp4"],
        0,
        "OK for the selected codes (0 errors, 0 warnings; 1 error not selected: the project's "
        "policy would reject 1 of 1 file)",
    ),
    (
        "",
        ("--select", "InvalidFile.FPS"),
        ["fps12.mp4", "2s.wav"],
        1,
        "FAIL: the service would reject 1 of 2 files (1 error, 0 warnings; 1 warning not selected)",
    ),
    # Only warnings dropped: the service would still accept.
    (
        "",
        ("--ignore", "File.NearLimit"),
        ["2s.wav"],
        0,
        "OK: the service would accept the 1 file (0 errors, 0 warnings; 1 warning not selected)",
    ),
    (
        'ignore = ["InvalidFile.FPS"]\nstrict = true\n',
        (),
        ["fps12.mp4", "2s.wav"],
        1,
        "FAIL (--strict): warnings on 1 of 2 files (0 errors, 1 warning; 1 error not selected)",
    ),
    # A Git LFS pointer's file was not checked.
    (
        "",
        (),
        ["pointer.mp4", "good.mp4"],
        0,
        "OK: the service would accept the 1 checked file, 1 not checked: a Git LFS pointer "
        "(0 errors, 1 warning)",
    ),
    (
        "",
        (),
        ["pointer.mp4"],
        0,
        "OK: nothing checked: the file is a Git LFS pointer (0 errors, 1 warning)",
    ),
    (
        "",
        ("--ignore", "File.LfsPointer"),
        ["pointer.mp4", "fps12.mp4"],
        1,
        "FAIL: the service would reject 1 of 2 files, 1 not checked: a Git LFS pointer "
        "(1 error, 0 warnings; 1 warning not selected)",
    ),
]


@pytest.mark.parametrize(
    ("config", "options", "files", "code", "line"), VERDICTS, ids=[v[4][:60] for v in VERDICTS]
)
def test_the_verdict_says_whose_it_is_and_what_was_left_out(
    run: Run,
    media: Path,
    tmp_path: Path,
    config: str,
    options: tuple[str, ...],
    files: list[str],
    code: int,
    line: str,
) -> None:
    (tmp_path / ".retalk.toml").write_text(config)
    for name in files:
        if name == "pointer.mp4":
            (tmp_path / name).write_text(POINTER)
        else:
            (tmp_path / name).symlink_to(media / name)
    result = run("check", "--no-content", *options, *files, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert result.stdout.splitlines()[-1] == line


def test_json_keeps_what_the_selection_left_out(run: Run, media: Path, tmp_path: Path) -> None:
    (tmp_path / ".retalk.toml").write_text("[video]\nmax-side = 1920\n")
    for name in ("2048x640.mp4", "fps12.mp4", "2s.wav"):
        (tmp_path / name).symlink_to(media / name)
    args = ("check", "--no-content", "--format", "json", "--ignore", "InvalidFile.,File.")
    result = run(*args, "2048x640.mp4", "fps12.mp4", "2s.wav", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["findings"] == []
    assert data["not_selected"] == {
        "2048x640.mp4": {"errors": 1, "warnings": 0, "policy_only_errors": 1},
        "fps12.mp4": {"errors": 1, "warnings": 0, "policy_only_errors": 0},
        "2s.wav": {"errors": 0, "warnings": 1, "policy_only_errors": 0},
    }
    # Without the selection, each finding says whether only the policy gives it.
    whole = json.loads(run(*args[:4], "2048x640.mp4", "fps12.mp4", cwd=tmp_path).stdout)
    assert [(f["code"], f["policy_only"]) for f in whole["findings"]] == [
        ("InvalidFile.Resolution", True),
        ("InvalidFile.FPS", False),
    ]
    assert whole["not_selected"] == {}


def test_the_policy_only_mark_survives_the_cache(
    run: Run, media: Path, tmp_path: Path, result_cache: Path
) -> None:
    (tmp_path / ".retalk.toml").write_text("[video]\nmax-side = 1920\n")
    (tmp_path / "a.mp4").symlink_to(media / "2048x640.mp4")
    (tmp_path / "b.mp4").symlink_to(media / "2048x640.mp4")  # the same bytes: a hit
    first = run("check", "--no-content", "a.mp4", cwd=tmp_path)
    assert any(result_cache.rglob("*.json"))  # the first check was stored
    # No ffprobe for the second: only a cache hit can judge it.
    env = {**os.environ, "RETALK_FFPROBE": str(tmp_path / "no-ffprobe")}
    second = run("check", "--no-content", "b.mp4", cwd=tmp_path, env=env)
    assert second.returncode == 1, second.stderr
    for result in (first, second):
        assert result.stdout.splitlines()[-1].startswith("FAIL: the project's policy would")


# --- what no selection drops -------------------------------------------------------------------

# (config, options): each would drop File.Unreadable if anything could.
DROPPING = [
    ("", ("--select", "InvalidFile.")),
    ("", ("--ignore", "File.")),
    ("", ("--ignore", "File.Unreadable")),
    ('ignore = ["File."]\n', ()),
    # The README's own example: a missing drafts/typo.mp4.
    ('[per-path-ignores]\n"drafts/*" = ["File.", "Face."]\n', ()),
]


@pytest.mark.parametrize(("config", "options"), DROPPING, ids=[str(d) for d in DROPPING])
def test_a_file_not_read_never_passes(
    run: Run, tmp_path: Path, config: str, options: tuple[str, ...]
) -> None:
    (tmp_path / ".retalk.toml").write_text(config)
    (tmp_path / "drafts").mkdir()
    result = run("check", "--no-content", *options, "drafts/typo.mp4", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "drafts/typo.mp4: File.Unreadable: no such file" in lines
    assert lines[-1].startswith("FAIL:")
    # The user is told that their selection did not drop it.
    assert result.stderr == (
        "retalk: note: File.Unreadable kept although the selection drops it: a file that was "
        "not read or not judged never passes\n"
    )


def test_no_note_when_the_selection_keeps_it_anyway(run: Run, tmp_path: Path) -> None:
    result = run("check", "--no-content", "--ignore", "Face.", "typo.mp4", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == ""


def test_a_worker_crash_never_passes(run: Run, media: Path, tmp_path: Path) -> None:
    # ffprobe reads a file through a link ending as the file does: the worker probing an .avi
    # is killed (as test_many does), its file gets File.CheckFailed.
    real = shutil.which("ffprobe")
    assert real is not None
    wrapper = tmp_path / "ffprobe-wrapper"
    wrapper.write_text(
        f'#!/bin/sh\ncase "$*" in *.avi*) kill -9 "$PPID";; esac\nexec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    shutil.copyfile(media / "good.mp4", tmp_path / "doomed.avi")
    shutil.copyfile(media / "good.wav", tmp_path / "good.wav")
    env = {**os.environ, "RETALK_FFPROBE": str(wrapper)}
    args = ("check", "--no-content", "--jobs", "2", "--ignore", "File.", "doomed.avi", "good.wav")
    result = run(*args, cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "doomed.avi: File.CheckFailed: " in result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAIL:")
    assert "File.CheckFailed kept although the selection drops it" in result.stderr


def test_the_library_keeps_them_too() -> None:
    found = tuple(
        Finding(code, CODES[code].severity, "a.mp4", "m")
        for code in ("File.Unreadable", "File.CheckFailed", "File.NearLimit")
    )
    report = Report((Input("a.mp4", "unknown", None),), found)
    kept = report.filtered(ignore="File.")
    assert kept.codes == ("File.Unreadable", "File.CheckFailed")
    assert kept.not_selected == {"a.mp4": NotSelected(0, 1, 0)}
    assert not kept.ok


# --- empty prefixes and suggestions ------------------------------------------------------------

# (where the prefix is given: config text or options, the start of the one line on stderr)
EMPTY = [
    ('ignore = [""]\n', (), ".retalk.toml ignore: an empty prefix ('') would match every code"),
    ('select = [" "]\n', (), ".retalk.toml select: an empty prefix (' ') would match every code"),
    ('strict = [""]\n', (), ".retalk.toml strict: an empty prefix"),
    (
        '[per-path-ignores]\n"*" = [""]\n',
        (),
        ".retalk.toml per-path-ignores '*': an empty prefix ('') would match every code",
    ),
    ("", ("--ignore", ""), "--ignore: an empty prefix ('') would match every code"),
    ("", ("--select", ","), "--select: an empty prefix ('') would match every code"),
    ("", ("--ignore", "File.,"), "--ignore: an empty prefix ('')"),
    ("", ("--ignore", " "), "--ignore: an empty prefix ('')"),
]


@pytest.mark.parametrize(("config", "options", "said"), EMPTY, ids=[e[2][:40] for e in EMPTY])
def test_an_empty_prefix_is_a_usage_error(
    run: Run, media: Path, tmp_path: Path, config: str, options: tuple[str, ...], said: str
) -> None:
    (tmp_path / ".retalk.toml").write_text(config)
    files = (str(media / "fps12.mp4"), str(media / "2s.wav"))
    for command in (("check", "--no-content", *options, *files), ("config", *options)):
        result = run(*command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"retalk: {said}")


@pytest.mark.parametrize(
    ("prefix", "suggestion"),
    [
        ("Audio.Silense", "Audio.Silences"),  # a whole code, not the start `Audio.Silence`
        ("Face.Turnd", "Face.Turned"),
        ("File.Nearlimit", "File.NearLimit"),
        ("InvalidFile.Fomat", "InvalidFile.Format"),
        ("InvalidFle.", "InvalidFile."),  # a family stays a family
        ("Audo.", "Audio."),
    ],
)
def test_a_typo_suggests_the_whole_code_when_one_is_close(
    run: Run, media: Path, prefix: str, suggestion: str
) -> None:
    result = run("check", "--no-content", "--ignore", prefix, "fps12.mp4", cwd=media)
    assert result.returncode == 2
    assert result.stderr.endswith(f"; did you mean {suggestion}?\n"), result.stderr
    assert retalk.policy.selection.suggest(prefix) == suggestion


def test_the_verdict_of_a_report_built_by_hand() -> None:
    # The library's own Report, without any selection: the wording is the service's.
    inputs = (Input("a.mp4", "video", "video"),)
    fps = Finding("InvalidFile.FPS", CODES["InvalidFile.FPS"].severity, "a.mp4", "m")
    assert verdict(Report(inputs, (fps,))) == (
        "FAIL: the service would reject 1 of 1 file (1 error, 0 warnings)"
    )
    marked = fps._replace(policy_only=True)
    assert verdict(Report(inputs, (marked,))).startswith("FAIL: the project's policy would")
