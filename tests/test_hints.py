"""The hints of `retalk check` are `fix`'s own plan: one command a file, the argv the planner
makes, the line `fix --dry-run` prints; pasted into a shell (names with a space, unicode, a
leading dash) each makes a file that passes."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from retalk.fix.plan import default_output, plan_fix
from retalk.policy import SERVICE
from retalk.preflight.check import role_of
from retalk.preflight.media import gather

Run = Callable[..., subprocess.CompletedProcess[str]]

# Fixtures whose findings fix repairs with one ffmpeg run, renamed as a user might.
HINTED = {
    "fps12.mp4": "-fps 12 é.mp4",
    "2050x640.mp4": "wide clip.mp4",
    "480x360.mp4": "small.mp4",
    "vp9.mp4": "-vp9.mp4",
    "h264.mkv": "h264 mkv.mkv",
    "120.52s.mp4": "long ü.mp4",
    "tone.m4a": "-tone.m4a",
    "121s.aac": "long speech.aac",
    "mp2-named.mp3": "mp2 é.mp3",
    "30MiB+1.wav": "big one.wav",
}


def _hints(run: Run, folder: Path, name: str) -> list[str]:
    checked = run("check", "--no-content", "--format", "json", "--", name, cwd=folder)
    findings = json.loads(checked.stdout)["findings"]
    return [f["hint"] for f in findings if f["hint"] and f["hint"].startswith("ffmpeg ")]


@pytest.mark.parametrize("recipe", sorted(HINTED))
def test_every_hint_is_the_plan_and_runs(
    recipe: str, media: Path, tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "a folder"
    folder.mkdir()
    name = HINTED[recipe]
    shutil.copyfile(media / recipe, folder / name)
    hints = _hints(run, folder, name)
    assert hints and len(set(hints)) == 1, hints  # several findings: one command
    (hint,) = set(hints)

    monkeypatch.chdir(folder)  # the plan of the name as given, relative
    planned = gather(name, content=False)
    role = role_of(planned)
    assert role is not None
    plan = plan_fix(planned, role, SERVICE, default_output(name, role, planned))
    assert plan.argv is not None and shlex.split(hint) == list(plan.argv)

    dry = run("fix", "--dry-run", "--no-content", "--", name, cwd=folder)
    assert dry.returncode == 0 and dry.stdout.strip().splitlines()[-1] == hint, dry.stdout

    done = subprocess.run(
        ["sh", "-c", hint], cwd=folder, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    output = shlex.split(hint)[-1]
    assert os.path.isfile(folder / output)
    again = run("check", "--no-content", "--no-cache", "--", output, cwd=folder)
    assert again.returncode == 0 and "File.NearLimit" not in again.stdout, again.stdout


def test_the_output_is_beside_the_input(media: Path, tmp_path: Path, run: Run) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copyfile(media / "fps12.mp4", tmp_path / "sub" / "clip.mp4")
    (hint,) = set(_hints(run, tmp_path, "sub/clip.mp4"))
    assert hint.startswith("ffmpeg -i sub/clip.mp4 ") and hint.endswith(" sub/clip-fixed.mp4")


def test_quiet_speech_gets_a_measured_gain_not_loudnorm(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "quiet-speech.wav", tmp_path / "take 1.wav")
    checked = run("check", "--format", "json", "--no-cache", "take 1.wav", cwd=tmp_path)
    (hint,) = [
        f["hint"] for f in json.loads(checked.stdout)["findings"] if f["code"] == "Audio.Quiet"
    ]
    assert "loudnorm" not in hint and "volume=" in hint and hint.endswith("'take 1-fixed.wav'")
    assert subprocess.run(["sh", "-c", hint], cwd=tmp_path, capture_output=True).returncode == 0
    fixed = tmp_path / "take 1-fixed.wav"
    rate = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate", "-of", "csv=p=0",
         str(fixed)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert rate == "22050"  # kept: not loudnorm's 192 kHz
    again = run("check", "--no-cache", str(fixed))
    assert "Audio.Quiet" not in again.stdout, again.stdout


def test_audio_given_as_the_video_says_the_roles_look_swapped(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "good.wav", tmp_path / "speech.wav")
    shutil.copyfile(media / "good.mp4", tmp_path / "clip.mp4")
    checked = run(
        "check", "--no-content", "--format", "json", "--video", "speech.wav", "--audio", "clip.mp4",
        cwd=tmp_path,
    )  # fmt: skip
    findings = json.loads(checked.stdout)["findings"]
    (wrong,) = [
        f for f in findings if f["path"] == "speech.wav" and f["code"] == "InvalidFile.Format"
    ]
    assert "roles look swapped" in wrong["hint"] and "ffmpeg" not in wrong["hint"]


def test_a_short_clip_is_not_hinted_to_exactly_the_limit(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "1.9s.mp4", tmp_path / "short.mp4")
    checked = run("check", "--no-content", "--format", "json", "short.mp4", cwd=tmp_path)
    (hint,) = [f["hint"] for f in json.loads(checked.stdout)["findings"] if f["hint"]]
    assert subprocess.run(["sh", "-c", hint], cwd=tmp_path, capture_output=True).returncode == 0
    again = run("check", "--no-content", "short-fixed.mp4", cwd=tmp_path)
    assert again.returncode == 0 and "File.NearLimit" not in again.stdout, again.stdout
