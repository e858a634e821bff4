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


def test_a_clip_under_2_s_is_refused_by_the_hint_and_by_fix(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "1.9s.mp4", tmp_path / "short.mp4")
    checked = run("check", "--no-content", "--format", "json", "short.mp4", cwd=tmp_path)
    (hint,) = [f["hint"] for f in json.loads(checked.stdout)["findings"] if f["hint"]]
    assert hint.startswith("fix refuses it: 1.9 s long, under the 2 s") and "ffmpeg" not in hint
    fixed = run("fix", "--no-content", "short.mp4", cwd=tmp_path)
    assert fixed.returncode == 1
    assert fixed.stderr.strip() == f"retalk: short.mp4: {hint.removeprefix('fix refuses it: ')}"


def test_roles_swapped_in_a_job_send_no_hint_on(media: Path, tmp_path: Path, run: Run) -> None:
    shutil.copyfile(media / "quiet-speech.wav", tmp_path / "quiet.wav")
    shutil.copyfile(media / "good.mp4", tmp_path / "g.mp4")
    checked = run(
        "check", "--no-content", "--format", "json", "--video", "quiet.wav", "--audio", "g.mp4",
        cwd=tmp_path,
    )  # fmt: skip
    findings = json.loads(checked.stdout)["findings"]
    hints = {(f["path"], f["code"]): f["hint"] for f in findings}
    swapped = "the roles look swapped: give quiet.wav as the audio and g.mp4 as the video"
    assert hints[("g.mp4", "InvalidFile.Format")] == swapped, hints
    assert hints[("quiet.wav", "Job.Truncated")] == swapped, hints
    assert "roles look swapped" in hints[("quiet.wav", "InvalidFile.Format")]


def test_a_picture_too_large_to_decode_is_one_decision(tmp_path: Path, run: Run) -> None:
    from PIL import Image

    Image.new("RGB", (10000, 10000), (120, 130, 140)).save(tmp_path / "big.png")
    checked = run("check", "--no-content", "--format", "json", "big.png", cwd=tmp_path)
    (hint,) = {f["hint"] for f in json.loads(checked.stdout)["findings"]}
    fixed = run("fix", "--no-content", "big.png", cwd=tmp_path)
    assert fixed.returncode == 1
    assert fixed.stderr.strip() == f"retalk: big.png: {hint.removeprefix('fix refuses it: ')}"
    command = hint.split("shrink it first: ")[1]
    assert command == "ffmpeg -i big.png -vf scale=4096:4096 big-fixed.png"
    assert subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True).returncode == 0
    again = run("fix", "--no-content", "big-fixed.png", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_several_problems_get_one_command_that_fixes_them_all(tmp_path: Path, run: Run) -> None:
    name = "-three problems é.mkv"  # Matroska, VP9, 12 fps, 480x360
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=480x360:r=12:d=2.5",
         "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "--", f"./{name}"],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    checked = run("check", "--no-content", "--format", "json", "--", name, cwd=tmp_path)
    findings = json.loads(checked.stdout)["findings"]
    codes = {f["code"] for f in findings}
    assert {"InvalidFile.Format", "InvalidFile.FPS", "InvalidFile.Resolution"} <= codes, codes
    hints = {f["hint"] for f in findings}
    assert len(hints) == 1, hints
    (hint,) = hints
    assert subprocess.run(["sh", "-c", hint], cwd=tmp_path, capture_output=True).returncode == 0
    fixed = "-three problems é-fixed.mp4"
    again = run("check", "--no-content", "--format", "json", "--", fixed, cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["findings"] == [], again.stdout


_SLOW = (".", "noise", "8192", "claims", "12000", "13000", "16000", "strip", "2.5h", "leaves")


def test_for_every_fixture_the_hint_is_the_plans_argv_fresh_and_cached(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retalk.cache import ResultCache
    from retalk.preflight.check import check_paths

    folder = tmp_path / "sub dir"
    folder.mkdir()
    names = []
    for path in sorted(media.iterdir()):
        if path.stat().st_blocks * 512 > 50 * 2**20 or path.name.startswith(_SLOW):
            continue  # the big and the hostile ones: other tests judge them
        name = f"-{path.name}"
        (folder / name).symlink_to(path)
        names.append(name)
    monkeypatch.chdir(folder)
    cache = ResultCache(tmp_path / "cache")
    fresh = check_paths(names, content=False, cache=cache, jobs=2)
    cached = check_paths(names, content=False, cache=cache, jobs=2)
    assert cache.hits >= len(names) - 5
    assert [f.hint for f in fresh.findings] == [f.hint for f in cached.findings]
    commands = 0
    for name in names:
        hints = {
            f.hint
            for f in fresh.findings
            if f.path == name and (f.hint or "").startswith("ffmpeg ")
        }
        if not hints:
            continue
        assert len(hints) == 1, (name, hints)
        found = gather(name, content=False)
        role = role_of(found)
        assert role is not None
        plan = plan_fix(found, role, SERVICE, default_output(name, role, found), defaulted=True)
        if plan.argv is None:  # refused, or on the 2 s edge: the rule's own advice
            continue
        assert shlex.split(hints.pop()) == list(plan.argv), name
        source = plan.argv[plan.argv.index("-i") + 1]
        assert source.startswith("./-") and plan.argv[-1].startswith("./-")
        commands += 1
    assert commands >= 20
