"""The `retalk` command run for real: exit codes, output formats, and bad input of every kind
ending in a clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import retalk


def test_version(run) -> None:
    result = run("--version")
    assert result.returncode == 0
    assert retalk.__version__ in result.stdout


def test_clean_file_exits_0_with_a_verdict(run, media: Path) -> None:
    result = run("check", "--no-content", str(media / "good.mp4"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{media / 'good.mp4'}: video, MP4, h264 1280x720, 30 fps, 3 s")
    assert lines[-1] == "OK: the service would accept the 1 file (0 errors, 0 warnings)"


def test_error_line_names_code_value_and_limit(run, media: Path) -> None:
    result = run("check", "--no-content", "fps12.mp4", cwd=media)
    assert result.returncode == 1
    assert "fps12.mp4: InvalidFile.FPS: 12 fps, the service takes 15 to 60" in result.stdout
    assert "    fix: ffmpeg -i fps12.mp4 -map 0:v:0 -map '0:a:0?' -vf fps=15 " in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "FAIL: the service would reject 1 of 1 file (1 error, 0 warnings)"
    )


def test_warnings_alone_exit_0_unless_strict(run, media: Path) -> None:
    assert run("check", "--no-content", str(media / "2s.wav")).returncode == 0
    assert run("check", "--no-content", "--strict", str(media / "2s.wav")).returncode == 1


def test_quiet_prints_only_findings(run, media: Path) -> None:
    result = run("check", "--no-content", "-q", "fps12.mp4", "good.wav", cwd=media)
    assert result.returncode == 1
    assert result.stdout == "fps12.mp4: InvalidFile.FPS: 12 fps, the service takes 15 to 60\n"


def test_json_output_is_one_documented_object(run, media: Path) -> None:
    result = run("check", "--no-content", "--format", "json", "fps12.mp4", "good.png", cwd=media)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["version"] == 1
    assert data["ok"] is False
    assert [(i["path"], i["kind"], i["role"]) for i in data["inputs"]] == [
        ("fps12.mp4", "video", "video"),
        ("good.png", "image", "ref"),
    ]
    assert set(data["inputs"][0]) == {"path", "kind", "role", "facts"}
    assert data["inputs"][0]["facts"]["fps"] == 12
    (finding,) = data["findings"]
    assert set(finding) == {
        "code",
        "severity",
        "path",
        "message",
        "expected",
        "actual",
        "hint",
        "at",
        "policy_only",
        "blocking",
    }
    assert finding["policy_only"] is False and finding["blocking"] is True
    assert data["not_selected"] == {}
    assert (finding["code"], finding["severity"], finding["actual"]) == (
        "InvalidFile.FPS",
        "error",
        "12 fps",
    )


def test_github_annotations(run, media: Path) -> None:
    result = run("check", "--no-content", "--format", "github", "fps12.mp4", "2s.wav", cwd=media)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error file=fps12.mp4,title=InvalidFile.FPS::12 fps")
    assert lines[1].startswith("::warning file=2s.wav,title=File.NearLimit::")


def test_select_and_ignore_by_code_prefix(run, media: Path) -> None:
    args = ("check", "--no-content", "-q", "fps12.mp4", "2s.wav", "png-named.jpg")
    assert run(*args, "--ignore", "InvalidFile", cwd=media).stdout.count("\n") == 2
    selected = run(*args, "--select", "File.NearLimit,File.Ext", cwd=media)
    assert selected.returncode == 0  # the FPS error was not selected
    assert [line.split(": ")[1] for line in selected.stdout.splitlines()] == [
        "File.NearLimit (warning)",
        "File.ExtensionMismatch (warning)",
    ]


def test_the_old_face_mismatch_spelling_selects_and_ignores(run, media: Path) -> None:
    job = ("check", "--format", "json", "--video", "face.mp4", "--audio", "speech.wav")
    job += ("--ref", "grace.jpg")  # someone else's face: the reference matches no one
    selected = run(*job, "--select", "InvalidFile.FaceNotMach", cwd=media)
    assert selected.returncode == 1, selected.stderr
    codes = [f["code"] for f in json.loads(selected.stdout)["findings"]]
    assert codes == ["InvalidFile.FaceNotMatch"]
    ignored = run(*job, "--ignore", "InvalidFile.FaceNotMach", cwd=media)
    assert ignored.returncode == 0, ignored.stderr
    data = json.loads(ignored.stdout)
    assert data["ok"] is True
    assert data["findings"] and "InvalidFile.FaceNotMatch" not in [
        f["code"] for f in data["findings"]
    ]


def test_job_form_checks_each_role(run, media: Path) -> None:
    result = run(
        "check", "--video", "good.wav", "--audio", "good.mp4", "--ref", "good.png", cwd=media
    )
    assert result.returncode == 1
    assert "good.wav: InvalidFile.Format: holds WAV audio (named .wav)" not in result.stdout
    assert "good.wav: InvalidFile.Format: holds WAV audio; the service takes MP4, AVI, MOV" in (
        result.stdout
    )
    assert "good.mp4: InvalidFile.Format: holds MP4; the service takes WAV, MP3, AAC" in (
        result.stdout
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check",),
        ("check", "--video", "a.mp4", "b.mp4"),
        ("check", "--video-extension", "a.mp4"),
        ("check", "--format", "xml", "a.mp4"),
        ("check", "--bogus"),
        ("nosuchcommand",),
    ],
)
def test_usage_errors_exit_2(run, args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error" in result.stderr or "Usage" in result.stderr


def test_folder_without_media_is_a_usage_error(run, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = run("check", "--no-content", str(tmp_path))
    assert result.returncode == 2
    assert "no media files found" in result.stderr


@pytest.mark.parametrize(
    "name", ["with space.mp4", "ünïcødé 视频.mp4", "-odd.mp4", "--odder.mp4", "a:b.mp4"]
)
def test_awkward_names_work(run, media: Path, tmp_path: Path, name: str) -> None:
    shutil.copyfile(media / "fps12.mp4", tmp_path / name)
    result = run("check", "--no-content", "-q", "--", name, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"{name}: InvalidFile.FPS: 12 fps, the service takes 15 to 60\n"


def _bad_inputs(media: Path, tmp: Path) -> dict[str, tuple[str, str]]:
    """name → (path, the code it must get)."""
    folder = tmp / "a folder.mp4"
    folder.mkdir()
    fifo = tmp / "pipe.mp4"
    os.mkfifo(fifo)
    return {
        "missing": (str(tmp / "missing.mp4"), "File.Unreadable"),
        "folder given as a role": (str(folder), "File.Unreadable"),
        "pipe": (str(fifo), "File.Unreadable"),
        "zero bytes": (str(media / "empty.mp4"), "InvalidFile.Openerror"),
        "text renamed .mp4": (str(media / "text.mp4"), "InvalidFile.Openerror"),
        "truncated": (str(media / "cut-faststart.mp4"), "InvalidFile.Openerror"),
        "wrong extension": (str(media / "mkv-named.mp4"), "InvalidFile.Format"),
    }


def test_bad_inputs_get_a_finding_and_exit_1(run, media: Path, tmp_path: Path) -> None:
    for label, (path, code) in _bad_inputs(media, tmp_path).items():
        result = run("check", "--no-content", "-q", "--video", path)
        assert result.returncode == 1, (label, result.stdout, result.stderr)
        assert f"{path}: {code}: " in result.stdout, label
        assert "Traceback" not in result.stdout + result.stderr, label


def _without_override() -> list[str]:
    """A prefix that runs a command without the power to read what its modes forbid. Root
    reads everything: its capabilities to override file modes are dropped (from the inherited,
    the ambient and the bounding set, so that the command cannot get them back), while it stays
    root, so that it still reaches a clone in a folder only root may enter (`nobody` could
    not reach that clone's virtual environment)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root's override"
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--ambient-caps={caps}", f"--bounding-set={caps}"]


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder traversable by all, so that only the modes inside it speak."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for below in (folder, *folder.rglob("*")):
            below.chmod(0o755)
        shutil.rmtree(folder)


def test_unreadable_file(run, media: Path, open_folder: Path) -> None:
    locked = open_folder / "locked.mp4"
    shutil.copyfile(media / "good.mp4", locked)
    locked.chmod(0)
    readable = run("check", "--no-content", "-q", str(locked))
    result = run("check", "--no-content", "-q", str(locked), prefix=_without_override())
    # Root, with its override, reads the mode-000 file: so the verdict below comes from the
    # dropped override, not from something else that fails.
    assert readable.returncode == (1 if os.geteuid() != 0 else 0), readable.stdout
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"{locked}: File.Unreadable: no permission to read it\n"


def test_unreadable_folder(run, media: Path, open_folder: Path) -> None:
    shutil.copyfile(media / "good.mp4", open_folder / "good.mp4")
    locked = open_folder / "locked"
    locked.mkdir()
    shutil.copyfile(media / "fps12.mp4", locked / "inside.mp4")
    locked.chmod(0)
    prefix = _without_override()
    # Given itself, and met while searching the folder above it: File.Unreadable either way,
    # and the readable clip beside it is still checked.
    alone = run("check", "--no-content", "-q", str(locked), prefix=prefix)
    assert alone.returncode == 1, alone.stderr
    assert alone.stdout.startswith(f"{locked}: File.Unreadable: "), alone.stdout
    searched = run("check", "--no-content", str(open_folder), prefix=prefix)
    assert searched.returncode == 1, searched.stderr
    lines = searched.stdout.splitlines()
    assert lines[0].startswith(f"{open_folder / 'good.mp4'}: video, MP4"), lines
    assert any(line.startswith(f"{locked}: File.Unreadable: ") for line in lines), lines
    assert "inside.mp4" not in searched.stdout
    assert "Traceback" not in searched.stderr + alone.stderr


def test_ffprobe_missing_exits_3(run, media: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH with no ffprobe on it
    env.pop("RETALK_FFPROBE", None)
    result = run("check", "--no-content", str(media / "good.mp4"), env=env)
    assert result.returncode == 3
    assert result.stderr == (
        "retalk: ffprobe not found: install ffmpeg (Debian: apt-get install ffmpeg)\n"
    )
    assert result.stdout == ""


def test_images_need_no_ffprobe(run, media: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "RETALK_FFPROBE": "/nonexistent/ffprobe"}
    assert run("check", "--no-content", str(media / "good.png"), env=env).returncode == 0


@pytest.mark.parametrize("cached", [False, True], ids=["fresh", "from-the-cache"])
def test_a_hint_for_a_name_with_a_leading_dash_runs(
    run, media: Path, tmp_path: Path, cached: bool
) -> None:
    """`-fps12.mp4` would be an option to ffmpeg: the hint writes `./-fps12.mp4`, and its output
    `./-fps12-fixed.mp4`; pasted into a shell, it runs and makes a file that passes."""
    import shlex
    import subprocess

    shutil.copy(media / "fps12.mp4", tmp_path / "-fps12.mp4")
    if cached:  # a first check stores the report judged under a stand-in name
        assert run("check", "--no-content", "--", "-fps12.mp4", cwd=tmp_path).returncode == 1
    result = run("check", "--no-content", "--format", "json", "--", "-fps12.mp4", cwd=tmp_path)
    (hint,) = [f["hint"] for f in json.loads(result.stdout)["findings"] if f["hint"]]
    assert "./-fps12.mp4" in hint and "./-fps12-fixed.mp4" in hint, hint
    fixed = subprocess.run(
        shlex.split(hint.replace("ffmpeg ", "ffmpeg -nostdin -loglevel error ", 1)),
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    again = run("check", "--no-content", "--", "-fps12-fixed.mp4", cwd=tmp_path)
    assert "InvalidFile.FPS" not in again.stdout, again.stdout
