"""What the pre-commit hooks cost: the first run of each (pre-commit builds its environment,
the full hook's with mediapipe, dlib and silero), and afterwards a commit of one clip with
each hook and a commit with no media (goal: under 0.3 s of retalk's own time).

The hooks are taken from this checkout's HEAD, in a fresh PRE_COMMIT_HOME (so the builds are
real: they fetch from PyPI, minus what pip's cache holds). Commits are medians of `RUNS`; each
commit adds a new file. Run with `make bench` (or `python bench/hooks.py`).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.recipes import face_video, video  # noqa: E402

PRE_COMMIT = str(Path(sys.executable).with_name("pre-commit"))
FAST, FULL = "retalk-check-fast", "retalk-check"
RUNS = 7


def sh(*command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def timed(*command: str, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = sh(*command, cwd=cwd, env=env)
    return time.perf_counter() - start, done.stdout + done.stderr  # git puts hooks' on stderr


def repo(folder: Path, env: dict[str, str], rev: str, hook_ids: list[str]) -> Path:
    folder.mkdir(parents=True)
    sh("git", "init", "-q", cwd=folder, env=env)
    sh("git", "config", "user.name", "Bench", cwd=folder, env=env)
    sh("git", "config", "user.email", "bench@example.com", cwd=folder, env=env)
    lines = ["repos:", f"  - repo: {ROOT}", f"    rev: {rev}", "    hooks:"]
    config = "\n".join([*lines, *(f"      - id: {h}" for h in hook_ids)]) + "\n"
    (folder / ".pre-commit-config.yaml").write_text(config)
    sh("git", "add", ".", cwd=folder, env=env)
    sh("git", "commit", "-q", "-m", "start", cwd=folder, env=env)
    if hook_ids:
        sh(PRE_COMMIT, "install", cwd=folder, env=env)
    return folder


def commits(folder: Path, env: dict[str, str], source: Path | None) -> tuple[float, str]:
    """Median seconds of a `git commit` of one new file: a copy of `source`, or a text file."""
    times, output = [], ""
    for i in range(RUNS):
        name = f"file-{i}{source.suffix if source else '.txt'}"
        if source is not None:
            shutil.copy(source, folder / name)
        else:
            (folder / name).write_text(f"note {i}\n")
        sh("git", "add", name, cwd=folder, env=env)
        seconds, output = timed("git", "commit", "-m", name, cwd=folder, env=env)
        times.append(seconds)
    return statistics.median(times), output


def du_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1e6


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="retalk-hooks-bench-") as base_name:
        base = Path(base_name)
        (base / "gitconfig").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
        env |= {"PRE_COMMIT_HOME": str(base / "home"), "GIT_CONFIG_GLOBAL": str(base / "gitconfig")}
        rev = sh("git", "rev-parse", "HEAD", cwd=ROOT, env=env).stdout.strip()
        clip, face = base / "clip.mp4", base / "face.mp4"
        video(size="1280x720", fps="30", seconds=10)(clip)
        face_video(1280, 720, ("astronaut", 0.5, 0.45, 0.3), seconds=10)(face)

        print(f"hooks at {rev[:12]}, {RUNS} commits each (medians)")
        print(f"{'measure':58} {'seconds':>8}")
        plain = repo(base / "plain", env, rev, [])
        none, _ = commits(plain, env, None)
        print(f"{'git commit, no hooks installed (baseline)':58} {none:8.2f}")
        folders = {}
        for hook in (FAST, FULL):
            folders[hook] = repo(base / hook, env, rev, [hook])
            seconds, _ = timed(PRE_COMMIT, "install-hooks", cwd=folders[hook], env=env)
            print(f"{f'{hook}: first run, environment built':58} {seconds:8.1f}")
        envs = sorted((base / "home").glob("repo*/py_env-*"))
        for path in envs:
            kind = FULL if list(path.glob("lib/python*/site-packages/mediapipe")) else FAST
            print(f"{f'{kind}: environment size (MB)':58} {du_mb(path):8.0f}")
        for hook, source in ((FAST, clip), (FULL, face)):
            seconds, output = commits(folders[hook], env, source)
            assert "Passed" in output, output
            print(f"{f'{hook}: commit of one 10 s 720p clip':58} {seconds:8.2f}")
        both = repo(base / "both", env, rev, [FAST, FULL])
        seconds, output = commits(both, env, None)
        assert output.count("(no files to check)Skipped") == 2, output
        print(f"{'both hooks: commit with no media (retalk not started)':58} {seconds:8.2f}")
        print(f"{'  of which pre-commit, over the baseline':58} {seconds - none:8.2f}")
        retalk = next(p for p in envs if not list(p.glob("lib/python*/site-packages/mediapipe")))
        own = []
        for _ in range(RUNS):
            took, _ = timed(
                str(retalk / "bin" / "retalk"), "check", "--no-content", str(clip), cwd=base,
                env=env,
            )  # fmt: skip
            own.append(took)
        label = "retalk's own time in the fast hook (one clip)"
        print(f"{label:58} {statistics.median(own):8.2f}")
        print("goal: a commit with no media, under 0.3 s of retalk's own time: met (0 s: skipped)")


if __name__ == "__main__":
    main()
