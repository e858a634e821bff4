"""Broken and hostile files, through the library and the command: nothing undecodable passes,
nothing prints a traceback, nothing waits for ever, and memory follows retalk's bounds rather
than what a file claims (each measured in a process of its own)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import retalk
from fixtures.recipes import NOISE_ENDINGS
from retalk.codes import Severity
from tests.support import run_measured

Run = Callable[..., subprocess.CompletedProcess[str]]
RETALK = str(Path(sys.executable).with_name("retalk"))

ROLE_OF_ENDING = {
    **dict.fromkeys(("mp4", "mov", "avi"), "video"),
    **dict.fromkeys(("wav", "mp3", "aac"), "audio"),
    **dict.fromkeys(("jpg", "jpeg", "png", "bmp", "webp"), "ref"),
}
CHECKS = {"video": retalk.check_video, "audio": retalk.check_audio, "ref": retalk.check_image}

UNDECODABLE = [
    *((f"noise.{ending}", ROLE_OF_ENDING[ending]) for ending in NOISE_ENDINGS),
    ("id3-noise.mp3", "audio"),  # an ID3 tag, then random bytes: ffprobe reads it as MP3
    ("noise-frames.mp4", "video"),  # a whole MP4 whose every frame is noise
    ("claims-100000x100000.mp4", "video"),  # its H.264 header claims 100000 x 100000
    ("unknown-codec.mp4", "video"),  # a sample entry no decoder knows ('zzzz')
    ("unknown-codec.wav", "audio"),  # a WAV format tag no decoder knows (0x1234)
]


def _codes(report: retalk.Report) -> set[str]:
    return {f.code for f in report.findings if f.severity is not Severity.INFO}


@pytest.mark.parametrize("content", [True, False], ids=["content", "no-content"])
@pytest.mark.parametrize(("name", "role"), UNDECODABLE, ids=[n for n, _ in UNDECODABLE])
def test_undecodable_is_an_open_error(media: Path, name: str, role: str, content: bool) -> None:
    by_role = CHECKS[role](media / name, content=content)
    by_content = retalk.check_file(media / name, content=content)
    for report in (by_role, by_content):
        assert not report.ok
        assert "InvalidFile.Openerror" in _codes(report), report.findings


@pytest.mark.parametrize(("name", "role"), UNDECODABLE, ids=[n for n, _ in UNDECODABLE])
def test_undecodable_in_the_command(run: Run, media: Path, name: str, role: str) -> None:
    done = run("check", f"--{'ref' if role == 'ref' else role}", str(media / name))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "InvalidFile.Openerror" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_folder_of_noise_is_reported_whole(run: Run, media: Path, tmp_path: Path) -> None:
    for name, _ in UNDECODABLE:
        shutil.copyfile(media / name, tmp_path / name)
    done = run("check", "--format", "json", str(tmp_path))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr

    inputs = json.loads(done.stdout)["inputs"]
    assert len(inputs) == len(UNDECODABLE)


def test_damaged_packets_cost_only_their_own_frames(media: Path) -> None:
    """One packet in fifteen refused by the decoder: the rest is analysed (as many frames
    sampled as from the whole file), and a warning says how much did not decode."""
    whole = retalk.check_video(media / "640x640.mp4")
    damaged = retalk.check_video(media / "damaged.mp4")
    decoded = damaged.inputs[0].facts["decoded"]
    assert decoded["failed_packets"] > 0  # the damage was met ...
    assert decoded["frames"] > 0
    sampled = damaged.inputs[0].facts["faces"]["sampled_frames"]
    assert sampled == whole.inputs[0].facts["faces"]["sampled_frames"] > 0  # ... and cost no sample
    assert damaged.ok
    found = [f for f in damaged.findings if f.code == "File.Damaged"]
    assert len(found) == 1 and found[0].severity is Severity.WARNING
    assert f"{decoded['failed_packets']} of the {decoded['packets']}" in found[0].message
    assert "File.Damaged" not in _codes(whole)


# The peak of this process is read from /proc (VmHWM: its own memory since it started), not
# from getrusage, which on Linux keeps across exec the peak of the process it was forked from
# (pytest, with the face models loaded). Its children's peaks (ffprobe, ffmpeg) count that way
# the peak of this process at the fork, at most: an upper bound either way.
def test_damage_the_decoder_conceals_is_counted(media: Path, tmp_path: Path) -> None:
    """Bytes spoiled inside frames, not in their headers: the decoder refuses nothing and
    guesses the damaged blocks from around them; such frames count as damaged too."""
    listed = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pos,size",
         "-of", "json", str(media / "640x640.mp4")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = bytearray((media / "640x640.mp4").read_bytes())
    for i, packet in enumerate(json.loads(listed)["packets"]):
        if i % 10 == 5 and int(packet["size"]) > 400:
            middle = int(packet["pos"]) + int(packet["size"]) // 2
            data[middle : middle + 64] = bytes(range(64))
    spoiled = tmp_path / "spoiled.mp4"
    spoiled.write_bytes(bytes(data))
    report = retalk.check_video(spoiled)
    decoded = report.inputs[0].facts["decoded"]
    assert decoded["failed_packets"] > 0, decoded
    [found] = [f for f in report.findings if f.code == "File.Damaged"]
    assert "damage concealed by the decoder" in found.message


HUGE_CLAIMS = [
    ("8192x8192.mp4", "InvalidFile.Resolution"),  # 60 KB of H.264 claiming 67 megapixels
    ("8192x8192-444p10.mp4", "InvalidFile.Resolution"),  # 400 MB a frame once decoded
    ("16000x8000-progressive.jpg", "InvalidFile.ImageSize"),  # every coefficient held
    ("13000x13000-multiscan.jpg", "InvalidFile.ImageSize"),  # the same, baseline in 3 scans
    ("12000x12000.png", "InvalidFile.ImageSize"),  # 420 KB that decode to 432 MB
    ("2.5h.mp3", "InvalidFile.Duration"),  # 9 MB of MP3 lasting 9000 s
]


@pytest.mark.parametrize("content", [True, False], ids=["content", "no-content"])
@pytest.mark.parametrize(("name", "code"), HUGE_CLAIMS, ids=[n for n, _ in HUGE_CLAIMS])
def test_memory_follows_bounds_not_claims(media: Path, name: str, code: str, content: bool) -> None:
    args = ["check", str(media / name), *([] if content else ["--no-content"])]
    done, peak_mb = run_measured(args, timeout=300)
    assert done.returncode == 1, done.stderr
    assert code in done.stdout
    assert "Traceback" not in done.stderr
    assert peak_mb < 500, f"{name}: {peak_mb:.0f} MB"


def test_a_pipe_is_refused_without_waiting(run: Run, tmp_path: Path) -> None:
    pipe = tmp_path / "talk.mp4"
    os.mkfifo(pipe)
    done = run("check", str(pipe))  # the fixture's timeout: opening a pipe to read would hang
    assert done.returncode == 1
    assert "File.Unreadable" in done.stdout and "not a regular file" in done.stdout


def test_a_path_swapped_for_a_pipe_never_hangs(run: Run, media: Path, tmp_path: Path) -> None:
    """The path turns into a pipe and back hundreds of times a second while it is checked:
    each check ends, with a verdict on the file or on the pipe, never waiting on the pipe."""
    path = tmp_path / "swapped.wav"
    shutil.copyfile(media / "speech.wav", path)
    real = tmp_path / "real.wav"
    shutil.copyfile(media / "speech.wav", real)
    stop = threading.Event()
    swaps = [0]

    def swap() -> None:
        while not stop.is_set():
            spare = tmp_path / "spare"
            if swaps[0] % 2:
                os.link(real, spare)
            else:
                os.mkfifo(spare)
            os.replace(spare, path)
            swaps[0] += 1

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        for options in [["--no-content"]] * 8 + [[]] * 2:
            done = run("check", *options, "--audio", str(path))
            assert "Traceback" not in done.stderr
            assert done.returncode in (0, 1), done.stderr
    finally:
        stop.set()
        swapper.join()
    assert swaps[0] > 100  # the path did change under the checks


def test_control_characters_in_names_are_escaped(run: Run, media: Path, tmp_path: Path) -> None:
    forged = tmp_path / "x.wav\nOK: the service would accept all 9 files (0 errors).wav"
    shutil.copyfile(media / "good.wav", forged)
    done = run("check", "--no-content", str(forged))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("OK:")] == [lines[-1]]
    assert "x.wav\\nOK: the service" in done.stdout


def test_a_name_that_is_not_utf8_is_reported(run: Run, media: Path, tmp_path: Path) -> None:
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9 \x1b[31m.wav")
    shutil.copyfile(media / "good.wav", odd)
    done = run("check", "--no-content", os.fsdecode(odd))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "\x1b" not in done.stdout and "\\x1b[31m" in done.stdout
    as_json = subprocess.run(
        [RETALK, "check", "--no-content", "--format", "json", os.fsdecode(odd)],
        capture_output=True,
        timeout=60,
    )  # bytes: the JSON must be UTF-8 whatever the name
    [item] = json.loads(as_json.stdout.decode("utf-8"))["inputs"]
    assert os.fsencode(item["path"]) == odd


def test_sigterm_leaves_nothing_behind(media: Path, tmp_path: Path) -> None:
    """Ended by SIGTERM mid-check, the command exits 143 and removes its temporary links."""
    import signal
    import time

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    checking = subprocess.Popen(
        [RETALK, "check", str(media / "leaves-gop250.mp4"), str(media / "speech-120s.mp3")],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(scratch.iterdir())  # it was at work, its links made
    checking.send_signal(signal.SIGTERM)
    _, stderr = checking.communicate(timeout=60)
    assert checking.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert list(scratch.iterdir()) == []


def test_what_a_killed_check_left_is_removed_by_the_next(
    run: Run, media: Path, tmp_path: Path
) -> None:
    """kill -9 gives no chance to clean up: the next check removes the dead one's links."""
    import signal
    import time

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    checking = subprocess.Popen(
        [RETALK, "check", str(media / "leaves-gop250.mp4")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not any(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    checking.send_signal(signal.SIGKILL)
    checking.wait(timeout=30)
    left = list(scratch.iterdir())
    assert left and str(checking.pid) in left[0].name  # the killed check's folder stayed ...
    done = run("check", "--no-content", str(media / "good.wav"), env=env)
    assert done.returncode == 0, done.stderr
    assert list(scratch.iterdir()) == []  # ... until the next one


def test_a_scan_out_of_time_says_how_far_it_came(
    media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retalk import limits

    monkeypatch.setattr(limits, "FACE_SCAN_BUDGET_S", 0.5)
    report = retalk.check_job(video=media / "leaves-gop250.mp4", audio=media / "speech-120s.mp3")
    covered = report.inputs[0].facts["faces"]["covered_s"]
    assert 0 < covered < 100  # the budget stopped it ...
    [partial] = [f for f in report.findings if f.code == "Face.Partial"]
    assert partial.severity is Severity.WARNING and partial.at == pytest.approx(covered, abs=0.01)
    # ... and what it did not look at is not called faceless: the face leaves at 62.3 s only
    assert not [f for f in report.findings if f.code == "Job.SpeechWithoutFace"]


def test_an_ffprobe_that_never_answers_is_stopped(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retalk import limits

    stuck = tmp_path / "ffprobe"
    stuck.write_text("#!/bin/sh\nexec sleep 600\n")
    stuck.chmod(0o755)
    monkeypatch.setenv("RETALK_FFPROBE", str(stuck))
    monkeypatch.setattr(limits, "TOOL_TIMEOUT_S", 1.0)
    report = retalk.check_video(media / "good.mp4", content=False)
    [found] = [f for f in report.findings if f.code == "InvalidFile.Openerror"]
    assert "ffprobe gave no answer in 1 s" in found.message
