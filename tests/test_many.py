"""Many files: worker processes, the order of the output, a worker that dies, Ctrl-C.

Which process checked a file is seen from the outside: an ffprobe wrapper (`RETALK_FFPROBE`)
records its parent's pid, which is the worker's."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RETALK

Run = Callable[..., subprocess.CompletedProcess[str]]


def _wrapper(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    log = tmp_path / "ffprobe.log"
    log.touch()
    real = shutil.which("ffprobe")
    assert real is not None
    wrapper = tmp_path / "ffprobe-wrapper"
    wrapper.write_text(
        f'#!/bin/sh\necho "$PPID" >> {shlex.quote(str(log))}\n{extra}exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, log


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def test_the_order_is_the_inputs_whatever_ends_first(run: Run, media: Path, tmp_path: Path) -> None:
    wrapper, log = _wrapper(tmp_path)
    env = {**os.environ, "RETALK_FFPROBE": str(wrapper)}
    # The long face scan first: the small files after it end long before it does.
    names = ["face-9s.mp4", "fps12.mp4", "good.wav", "png-named.jpg", "2s.wav"]
    args = ("check", "--no-cache", "--format", "json", *names)
    pooled = run(*args, "--jobs", "2", cwd=media, env=env)
    assert pooled.returncode == 1, pooled.stderr
    parents = set(log.read_text().split())
    assert len(parents) == 2  # two workers probed ...
    log.write_text("")
    alone = run(*args, "--jobs", "1", cwd=media, env=env)
    assert len(set(log.read_text().split())) == 1  # ... where one process did it all
    report = json.loads(pooled.stdout)
    assert [i["path"] for i in report["inputs"]] == names
    assert report == json.loads(alone.stdout)
    paths = [f["path"] for f in report["findings"]]
    assert paths == sorted(paths, key=names.index)


def test_a_worker_that_dies_costs_its_file_only(run: Run, media: Path, tmp_path: Path) -> None:
    # ffprobe reads a file through a link ending as the file does: a worker probing an .avi
    # is killed (as by the OOM killer, or a crash in a decoder).
    wrapper, _ = _wrapper(tmp_path, 'case "$*" in *.avi*) kill -9 "$PPID";; esac\n')
    shutil.copyfile(media / "good.mp4", tmp_path / "doomed.avi")
    for name in ("fps12.mp4", "good.wav", "2s.wav"):
        shutil.copyfile(media / name, tmp_path / name)
    names = ["fps12.mp4", "doomed.avi", "good.wav", "2s.wav"]
    env = {**os.environ, "RETALK_FFPROBE": str(wrapper)}
    started = time.monotonic()
    done = run("check", "--no-content", "--jobs", "2", "--format", "json", *names,
               cwd=tmp_path, env=env)  # fmt: skip
    assert time.monotonic() - started < 60
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert [i["path"] for i in report["inputs"]] == names
    codes = {(f["path"], f["code"]) for f in report["findings"]}
    assert ("doomed.avi", "File.CheckFailed") in codes
    [failed] = [f for f in report["findings"] if f["code"] == "File.CheckFailed"]
    assert "SIGKILL" in failed["message"]
    assert ("fps12.mp4", "InvalidFile.FPS") in codes  # the others were judged
    assert ("2s.wav", "File.NearLimit") in codes
    assert [i["kind"] for i in report["inputs"]] == ["video", "unknown", "audio", "audio"]


@pytest.mark.parametrize(
    ("stop", "code", "said"),
    [(signal.SIGINT, 130, "retalk: interrupted\n"), (signal.SIGTERM, 143, "")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_sigterm_ends_the_workers_and_leaves_nothing(
    media: Path, tmp_path: Path, stop: signal.Signals, code: int, said: str
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    checking = subprocess.Popen(
        [RETALK, "check", "--no-cache", "--jobs", "2",
         str(media / "leaves-gop250.mp4"), str(media / "face-9s.mp4")],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a group of its own, as a terminal's foreground job
        # Ctrl-C heard, as from a terminal: a test run started in the background (`make test &`)
        # hands its children SIGINT ignored, and Python then installs no handler for it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline:
        workers = _children(checking.pid)
        links = [p for p in scratch.iterdir() if p.name.startswith("retalk-links-")]
        if len(workers) == 2 and len(links) == 2:
            break
        time.sleep(0.05)
    assert len(workers) == 2, "the two workers were at work, their links made"
    os.killpg(checking.pid, stop)  # to the command's group, as a terminal's Ctrl-C
    _, stderr = checking.communicate(timeout=60)
    assert checking.returncode == code, stderr
    assert stderr == said
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert list(scratch.iterdir()) == []


def test_jobs_must_be_one_or_more(run: Run, media: Path) -> None:
    done = run("check", "--jobs", "0", str(media / "good.wav"))
    assert done.returncode == 2
    assert "--jobs" in done.stderr and "Traceback" not in done.stderr


def test_a_progress_bar_on_a_terminal_only(media: Path, tmp_path: Path) -> None:
    import pty

    names = ["fps12.mp4", "good.wav", "2s.wav"]
    main, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [RETALK, "check", "--no-content", *names], cwd=media, stdout=subprocess.PIPE,
            stderr=secondary, stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 1
    assert b"3/3" in shown and b"checking [" in shown
    assert shown.endswith(b"\r\x1b[K")  # erased at the end
    assert b"checking" not in done.stdout
    piped = subprocess.run(
        [RETALK, "check", "--no-content", *names], cwd=media, capture_output=True, timeout=120
    )
    assert piped.stderr == b""


def test_workers_that_cannot_start_lose_no_file(media: Path, tmp_path: Path) -> None:
    """64 open files at most: of 40 workers, some cannot be started (their pipes would pass
    the limit); the files go to those that could, or to this process, and none is lost."""
    import resource

    names = [f"{i:02}.wav" for i in range(80)]
    for name in names:
        shutil.copyfile(media / "good.wav", tmp_path / name)

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    started = time.monotonic()
    done = subprocess.run(
        [RETALK, "check", "--no-content", "--no-cache", "-j", "40", "--format", "json", *names],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, preexec_fn=few_files,
    )  # fmt: skip
    assert time.monotonic() - started < 120
    assert re.fullmatch(
        r"retalk: \d+ worker processes could not be started \(OSError: \[Errno 24\] Too many "
        r"open files\): checked with \d+(, and \d+ files in this process)?\n",
        done.stderr,
    ), done.stderr
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert [i["path"] for i in report["inputs"]] == names
    assert report["findings"] == []
    assert {i["kind"] for i in report["inputs"]} == {"audio"}


def test_jobs_beyond_the_files_start_no_more_workers(run: Run, media: Path, tmp_path: Path) -> None:
    wrapper, log = _wrapper(tmp_path)
    names = [f"{i}.wav" for i in range(3)]
    for name in names:
        shutil.copyfile(media / "good.wav", tmp_path / name)
    env = {**os.environ, "RETALK_FFPROBE": str(wrapper)}
    done = run("check", "--no-content", "--no-cache", "-j", "500", *names, cwd=tmp_path, env=env)
    assert done.returncode == 0 and done.stderr == ""
    assert len(set(log.read_text().split())) <= len(names)  # no more workers than files


def test_when_no_worker_can_start_the_files_are_checked_here(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import sys

    import retalk

    files = [media / "fps12.mp4", media / "good.wav", media / "good.jpg"]
    alone = retalk.check_paths(files, content=False, jobs=1)
    capfd.readouterr()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))  # the workers' program
    pooled = retalk.check_paths(files, content=False, jobs=3)
    said = capfd.readouterr().err
    assert said.startswith("retalk: no worker process could be started (FileNotFoundError: ")
    assert said.endswith("): checked in this process\n") and said.count("\n") == 1
    assert pooled == alone
