"""How `retalk fix` writes and runs: its ffmpeg dies with it, a closed terminal leaves nothing,
the output's folder and name are checked or coped with, the file size limit and a filesystem
without hard links are told or worked around; and its hints paste back into bash as the very
name, whatever characters it holds."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import retalk

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def long_encode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip whose fix takes seconds (a 1440p re-encode): time to act while ffmpeg runs."""
    source = tmp_path_factory.mktemp("long") / "big.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=2560x1440:r=12:d=10",
         "-c:v", "libx264", "-preset", "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    return source


@pytest.fixture
def encoding(long_encode: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`retalk fix` of `long_encode` in `tmp_path`, once its temporary file and its ffmpeg
    exist."""
    from tests.conftest import RETALK

    shutil.copyfile(long_encode, tmp_path / "big.mp4")
    process = subprocess.Popen(
        [RETALK, "fix", "--no-content", str(tmp_path / "big.mp4")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not any("retalk-part" in n for n in os.listdir(tmp_path)) or not _children(process.pid):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    yield process
    process.kill()
    process.wait()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listed:
            found += [int(p) for p in listed.read().split()]
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux only")
def test_sigkill_of_retalk_ends_its_ffmpeg(encoding: subprocess.Popen[bytes]) -> None:
    (ffmpeg,) = _children(encoding.pid)
    encoding.kill()
    encoding.wait()
    deadline = time.monotonic() + 5
    while _running(ffmpeg):
        assert time.monotonic() < deadline, "ffmpeg outlived retalk"
        time.sleep(0.05)


def test_a_closed_terminal_sighup_leaves_nothing(
    encoding: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    encoding.send_signal(signal.SIGHUP)
    assert encoding.wait(timeout=30) == 129
    assert os.listdir(tmp_path) == ["big.mp4"]


def test_a_signal_as_ffmpeg_starts_is_never_lost(long_encode: Path, tmp_path: Path) -> None:
    """SIGTERM the moment the temporary file appears, which is when ffmpeg is being started:
    a signal landing in the spawn's at-fork hooks was lost (1 in 5 to 10 tries), and the fix ran
    on to write its output with exit 0."""
    from tests.conftest import RETALK

    shutil.copyfile(long_encode, tmp_path / "big.mp4")
    for _ in range(20):
        process = subprocess.Popen(
            [RETALK, "fix", "--no-content", "big.mp4"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not any("retalk-part" in n for n in os.listdir(tmp_path)):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 143, err.decode()
        assert os.listdir(tmp_path) == ["big.mp4"], err.decode()


def test_the_changes_are_printed_before_the_encode(long_encode: Path, tmp_path: Path) -> None:
    from tests.conftest import RETALK

    shutil.copyfile(long_encode, tmp_path / "big.mp4")
    with open(tmp_path / "out.txt", "wb") as out, open(tmp_path / "err.txt", "wb") as err:
        process = subprocess.Popen(
            [RETALK, "fix", "--no-content", "big.mp4", "-o", "fixed.mp4"],
            cwd=tmp_path, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "encoding with ffmpeg…" not in (tmp_path / "err.txt").read_text():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        # Told while it encodes (the output not written yet): what it will change.
        assert "frame rate: 12 fps → 15 fps" in (tmp_path / "out.txt").read_text()
        assert not (tmp_path / "fixed.mp4").exists()
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()
        process.wait()
    printed = (tmp_path / "out.txt").read_text()
    assert printed.count("frame rate: 12 fps → 15 fps") == 1, printed
    assert printed.endswith("wrote fixed.mp4 (2 changed): the service takes it\n"), printed


@pytest.mark.parametrize("command", ["fix", "check"])
def test_a_file_named_like_an_option_is_told_to_follow_dashes(
    media: Path, tmp_path: Path, run: Run, command: str
) -> None:
    shutil.copyfile(media / "fps12.mp4", tmp_path / "-bad take.mp4")
    done = run(command, "-bad take.mp4", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "No such option '-b'" in done.stderr
    assert f"put -- before it (options first): retalk {command} [OPTIONS] -- '-bad take.mp4'" in (
        done.stderr
    )
    done = run(command, "--no-content", "--", "-bad take.mp4", cwd=tmp_path)
    assert done.returncode == {"fix": 0, "check": 1}[command], done.stderr
    assert "InvalidFile.FPS" in done.stdout


def test_an_output_in_a_missing_folder_is_one_line_exit_2(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "fps12.mp4", tmp_path / "clip.mp4")
    done = run("fix", "--no-content", "clip.mp4", "-o", "nodir/x.mp4", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "retalk: no folder nodir for nodir/x.mp4\n"
    assert os.listdir(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize(
    ("output", "said"),
    [
        ("folder", "folder is a folder: name the file to write"),
        ("fifo", "fifo is not a regular file (a device, a FIFO or a socket): fix writes files"),
        ("d" * 252 + ".mp4", "a name longer than the folder takes (255 bytes)"),
    ],
    ids=["folder", "fifo", "name-too-long"],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_encode(
    media: Path, tmp_path: Path, run: Run, output: str, said: str
) -> None:
    shutil.copyfile(media / "fps12.mp4", tmp_path / "clip.mp4")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for dry in ([], ["--dry-run"]):
        done = run("fix", "--no-content", *dry, "clip.mp4", "-o", output, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert said in done.stderr and "encoding" not in done.stderr, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4", "fifo", "folder"]


@pytest.mark.parametrize("recipe", ["fps12.mp4", "good.wav"], ids=["ffmpeg", "copy"])
def test_the_longest_output_name_is_written(
    recipe: str, media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / recipe, tmp_path / recipe)
    ending = os.path.splitext(recipe)[1]
    name = "é" * 60 + "a" * (255 - 120 - len(ending)) + ending  # 255 bytes
    done = run("fix", "--no-content", recipe, "-o", name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path)) == sorted([recipe, name])
    assert os.path.getsize(tmp_path / name) > 1000


@pytest.mark.parametrize("recipe", ["fps12.mp4", "good.wav"], ids=["ffmpeg", "copy"])
def test_the_file_size_limit_is_named_with_the_output(
    recipe: str, media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / recipe, tmp_path / recipe)
    ending = os.path.splitext(recipe)[1]
    limited = ["bash", "-c", 'ulimit -f 64 && exec "$@"', "bash"]  # 64 KiB
    done = run("fix", "--no-content", recipe, "-o", f"out{ending}", cwd=tmp_path, prefix=limited)
    assert done.returncode == 1, done.stderr
    assert f"cannot write out{ending}: " in done.stderr, done.stderr
    assert "the file size limit was hit (ulimit -f)" in done.stderr, done.stderr
    assert "retalk-part" not in done.stderr and "SIGXFSZ" not in done.stderr
    told = [line for line in done.stderr.splitlines() if not line.endswith("encoding with ffmpeg…")]
    assert len(told) == 1 and "Traceback" not in done.stderr, done.stderr
    assert os.listdir(tmp_path) == [recipe]


def test_without_hard_links_the_output_is_still_published(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: str) -> None:  # FAT, exFAT: link(2) is refused
        raise PermissionError(errno.EPERM, "Operation not permitted", source)

    monkeypatch.setattr(os, "link", no_links)
    for recipe in ("fps12.mp4", "good.wav"):  # an ffmpeg run, a copy
        shutil.copyfile(media / recipe, tmp_path / recipe)
        result = retalk.fix(tmp_path / recipe, content=False)
        assert result.written and os.path.getsize(result.output) > 1000
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["fps12.mp4", "fps12-fixed.mp4", "good.wav", "good-fixed.wav"]
    )


# Names a hint must quote so that the line shown is the line bash reads: each holds a character
# that is not printable (the report would otherwise show `\xa0` inside quotes, which is no name).
ODD = {
    "nbsp": "take\u00a01.mkv",
    "newline": "new\nline.mkv",
    "tab": "a\tb.mkv",
    "escape": "esc\x1b[31mred.mkv",
    "zero-width": "zero\u200bwidth.mkv",
    "ideographic": "wide\u3000space.mkv",
    "quote-and-backslash": "it's\\\u00a0x.mkv",
    "not-utf8": "bad\udcff.mkv",
}


@pytest.mark.parametrize("key", sorted(ODD))
def test_a_hint_pasted_into_bash_fixes_that_very_file(
    key: str, media: Path, tmp_path: Path, run: Run
) -> None:
    name = ODD[key]
    shutil.copyfile(media / "h264.mkv", tmp_path / name)
    # What the report shows of the name (`\n` for a line break) is another file, here too:
    decoy = name.encode("unicode_escape").decode()
    shutil.copyfile(media / "h264.mkv", tmp_path / decoy)
    checked = run("check", "--no-content", "--", name, cwd=tmp_path)
    hints = {line.split("fix: ", 1)[1] for line in checked.stdout.splitlines() if "fix: " in line}
    assert len(hints) == 1, checked.stdout
    (hint,) = hints
    assert hint.isprintable() and hint.startswith("ffmpeg "), hint
    dry = run("fix", "--dry-run", "--no-content", "--", name, cwd=tmp_path)
    assert dry.stdout.strip().splitlines()[-1] == hint, dry.stdout + dry.stderr
    done = subprocess.run(
        ["bash", "-c", hint], cwd=tmp_path, capture_output=True, text=True, errors="replace",
        timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    fixed = os.path.splitext(name)[0] + "-fixed.mp4"
    assert sorted(os.listdir(tmp_path)) == sorted([name, decoy, fixed])


def test_a_part_left_by_a_killed_fix_is_swept_and_a_live_one_is_not(
    encoding: subprocess.Popen[bytes], media: Path, tmp_path: Path, run: Run
) -> None:
    (part,) = [n for n in os.listdir(tmp_path) if "retalk-part" in n]
    shutil.copyfile(media / "good.wav", tmp_path / "good.wav")
    beside = run("fix", "--no-content", "good.wav", cwd=tmp_path)
    assert beside.returncode == 0, beside.stderr
    assert part in os.listdir(tmp_path)  # still being written: kept
    encoding.kill()
    encoding.wait()
    assert part in os.listdir(tmp_path)  # killed outright: left behind
    after = run("fix", "--no-content", "good.wav", "-o", "again.wav", cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert sorted(os.listdir(tmp_path)) == ["again.wav", "big.mp4", "good-fixed.wav", "good.wav"]
