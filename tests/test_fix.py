"""`retalk fix` and `retalk.fix`: every recipe that fails a metadata rule made into a file the
service takes (checked with retalk's own check, and ffprobed for what changed and what was
kept), conforming files copied byte for byte, refusals, atomic writes."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import retalk
from retalk.errors import FixRefused

Run = Callable[..., subprocess.CompletedProcess[str]]


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def stream(path: Path, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in probe(path)["streams"] if s["codec_type"] == kind)
    return found


def packets_md5(path: Path, kind: str = "v") -> str:
    """The MD5 of a stream's packets as stored: equal when a remux kept them."""
    return subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            f"0:{kind}:0",
            "-c",
            "copy",
            "-f",
            "md5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def fps(path: Path) -> float:
    num, den = stream(path, "video")["avg_frame_rate"].split("/")
    return int(num) / int(den)


def sides(path: Path) -> tuple[int, int]:
    s = stream(path, "video")
    return int(s["width"]), int(s["height"])


def duration(path: Path) -> float:
    return float(probe(path)["format"]["duration"])


# recipe → (output ending, what the output must show)
FIXED: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
    "fps12.mp4": ("mp4", lambda i, o: pytest.approx(15) == fps(o)),
    "fps14.985.mp4": ("mp4", lambda i, o: pytest.approx(15) == fps(o)),
    "fps61.mp4": ("mp4", lambda i, o: pytest.approx(60) == fps(o)),
    "vfr10.mp4": ("mp4", lambda i, o: 14.99 <= fps(o) <= 60),
    "638x640.mp4": ("mp4", lambda i, o: sides(o) == (640, 642)),
    "2050x640.mp4": ("mp4", lambda i, o: sides(o) == (2048, 640)),
    "480x360.mp4": ("mp4", lambda i, o: sides(o) == (854, 640)),
    "vp9.mp4": ("mp4", lambda i, o: stream(o, "video")["codec_name"] == "h264"),
    "mpeg4.avi": ("mp4", lambda i, o: stream(o, "video")["codec_name"] == "h264"),
    "h264.mkv": ("mp4", lambda i, o: packets_md5(i) == packets_md5(o)),
    "h264.flv": ("mp4", lambda i, o: packets_md5(i) == packets_md5(o)),
    "mkv-named.mp4": ("mp4", lambda i, o: packets_md5(i) == packets_md5(o)),
    "120.52s.mp4": ("mp4", lambda i, o: 118.5 < duration(o) <= 119.05),
    "119.96s.mp4": ("mp4", lambda i, o: 118.5 < duration(o) <= 119.05),
    "2s.mp4": ("mp4", lambda i, o: 2.45 < duration(o) < 2.6),
    "2s.wav": ("wav", lambda i, o: 2.45 < duration(o) < 2.55),
    "300MiB+1.mp4": ("mp4", lambda i, o: packets_md5(i) == packets_md5(o)),
    "300MiB.mp4": ("mp4", lambda i, o: packets_md5(i) == packets_md5(o)),
    "tone.m4a": ("wav", lambda i, o: stream(o, "audio")["sample_rate"] == "44100"),
    "tone.flac": ("wav", lambda i, o: stream(o, "audio")["codec_name"] == "pcm_s16le"),
    "tone.opus": ("wav", lambda i, o: stream(o, "audio")["codec_name"] == "pcm_s16le"),
    "mp2-named.mp3": ("wav", lambda i, o: stream(o, "audio")["codec_name"] == "pcm_s16le"),
    "121s.aac": ("wav", lambda i, o: 118.5 < duration(o) <= 119.05),
    "120.5s.mp3": ("mp3", lambda i, o: 118.5 < duration(o) <= 119.2),
    "2.5h.mp3": ("mp3", lambda i, o: 118.5 < duration(o) <= 119.2),
    "30MiB+1.wav": ("wav", lambda i, o: packets_md5(i, "a") == packets_md5(o, "a")),
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_every_failing_recipe_is_fixed(name: str, media: Path, tmp_path: Path, run: Run) -> None:
    source = tmp_path / name
    shutil.copyfile(media / name, source)
    before = run("check", "--no-content", "--no-cache", str(source))
    assert before.returncode == 1 or "File.NearLimit" in before.stdout, before.stdout
    fixed = run("fix", "--no-content", str(source))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    ending, shows = FIXED[name]
    output = tmp_path / f"{os.path.splitext(name)[0]}-fixed.{ending}"
    assert output.is_file(), os.listdir(tmp_path)
    assert " → " in fixed.stdout  # what it changed, before → after
    after = run("check", "--no-content", "--no-cache", str(output))
    assert after.returncode == 0, after.stdout
    assert "File.NearLimit" not in after.stdout
    assert shows(source, output), fixed.stdout
    assert sorted(os.listdir(tmp_path)) == sorted([name, output.name])  # no temporary left


def test_the_audio_of_a_video_is_kept(media: Path, tmp_path: Path, run: Run) -> None:
    source = tmp_path / "fps12.mp4"
    shutil.copyfile(media / "fps12.mp4", source)
    assert run("fix", "--no-content", str(source)).returncode == 0
    assert packets_md5(source, "a") == packets_md5(tmp_path / "fps12-fixed.mp4", "a")


def test_a_conforming_file_is_copied_byte_for_byte_without_ffmpeg(
    media: Path, tmp_path: Path, run: Run
) -> None:
    for name in ("good.mp4", "good.wav", "hevc.mp4", "phone.mp4", "good.mov"):
        source = tmp_path / name
        shutil.copyfile(media / name, source)
        dry = run("fix", "--dry-run", "--no-content", str(source))
        assert dry.returncode == 0 and "nothing to change" in dry.stdout, dry.stdout
        env = {**os.environ, "RETALK_FFMPEG": str(tmp_path / "no-ffmpeg")}
        done = run("fix", "--no-content", str(source), env=env)
        assert done.returncode == 0, done.stderr
        stem, ending = os.path.splitext(name)
        assert filecmp.cmp(source, tmp_path / f"{stem}-fixed{ending}", shallow=False)


def test_without_ffmpeg_a_fix_that_needs_it_exits_3(media: Path, tmp_path: Path, run: Run) -> None:
    source = tmp_path / "fps12.mp4"
    shutil.copyfile(media / "fps12.mp4", source)
    env = {**os.environ, "RETALK_FFMPEG": str(tmp_path / "no-ffmpeg")}
    done = run("fix", "--no-content", str(source), env=env)
    assert done.returncode == 3 and "no-ffmpeg not found" in done.stderr
    assert os.listdir(tmp_path) == ["fps12.mp4"]


def test_quiet_speech_is_raised_by_one_gain_keeping_the_sample_rate(
    media: Path, tmp_path: Path, run: Run
) -> None:
    source = tmp_path / "quiet.wav"
    shutil.copyfile(media / "quiet-speech.wav", source)
    done = run("fix", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loudness: -52.5 LUFS →" in done.stdout
    output = tmp_path / "quiet-fixed.wav"
    assert stream(output, "audio")["sample_rate"] == stream(source, "audio")["sample_rate"]
    assert "Audio.Quiet" not in run("check", "--no-cache", str(output)).stdout


def test_a_size_cap_keeps_the_output_under_the_policys_limit(
    media: Path, tmp_path: Path, run: Run
) -> None:
    (tmp_path / ".retalk.toml").write_text("[video]\nmax-size-mb = 1\n")
    source = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=12:d=6",
         "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    assert os.path.getsize(source) > 2 * 2**20
    done = run("fix", "--no-content", "clip.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.path.getsize(tmp_path / "clip-fixed.mp4") < 10**6


REFUSED = {
    "1.9s.mp4": (1, "under the 2 s the service takes"),
    "1.9s.wav": (1, "under the 2 s the service takes"),
    "empty.mp4": (1, "empty"),
    "text.mp4": (1, "cannot open it"),
    "cut-faststart.mp4": (1, "cut short"),
    "cut.wav": (1, "cut short"),
    "audio-only.mp4": (2, "the roles look swapped"),
    "no-frames.mkv": (1, "no video frame"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals(name: str, media: Path, tmp_path: Path, run: Run) -> None:
    source = tmp_path / name
    shutil.copyfile(media / name, source)
    done = run(
        "fix",
        "--no-content",
        "--role",
        "video" if name.endswith(("mp4", "mkv")) else "audio",
        str(source),
    )
    code, words = REFUSED[name]
    assert done.returncode == code, done.stderr
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert os.listdir(tmp_path) == [name]


def test_refusals_of_the_call(media: Path, tmp_path: Path, run: Run) -> None:
    wav = tmp_path / "speech.wav"
    shutil.copyfile(media / "good.wav", wav)
    (tmp_path / "link.wav").symlink_to(wav)
    os.link(wav, tmp_path / "hard.wav")
    (tmp_path / "taken.wav").write_bytes(b"mine")
    (tmp_path / "folder").mkdir()
    cases = [
        ((str(wav), "-o", str(wav)), 2, "the input itself"),
        ((str(wav), "-o", str(tmp_path / "link.wav")), 2, "the input itself"),
        ((str(wav), "-o", str(tmp_path / "hard.wav")), 2, "the input itself"),
        ((str(wav), "-o", str(tmp_path / "taken.wav")), 2, "give --force"),
        ((str(wav), "-o", str(tmp_path / "out.ogg")), 2, "cannot write .ogg"),
        ((str(tmp_path / "folder"),), 2, "is a folder"),
        ((str(tmp_path / "missing.wav"),), 2, "no such file"),
        ((str(wav), "--role", "video"), 2, "this looks like audio"),
        ((str(wav), "-o", str(tmp_path / "out.mp4")), 2, "the roles look swapped"),
    ]
    listing = sorted(os.listdir(tmp_path))
    for args, code, words in cases:
        done = run("fix", "--no-content", *args)
        assert done.returncode == code, (args, done.stderr)
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert sorted(os.listdir(tmp_path)) == listing
    assert (tmp_path / "taken.wav").read_bytes() == b"mine"
    forced = run("fix", "--no-content", "--force", str(wav), "-o", str(tmp_path / "taken.wav"))
    assert forced.returncode == 0 and filecmp.cmp(wav, tmp_path / "taken.wav", shallow=False)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["term", "ctrl-c"]
)
def test_a_signal_during_an_encode_leaves_nothing(
    media: Path, tmp_path: Path, signum: int, code: int
) -> None:
    from tests.conftest import RETALK

    source = tmp_path / "big.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=2560x1440:r=12:d=10",
         "-c:v", "libx264", "-preset", "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    process = subprocess.Popen(
        [RETALK, "fix", "--no-content", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not any("retalk-part" in n for n in os.listdir(tmp_path)):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signum)
    assert process.wait(timeout=30) == code
    assert os.listdir(tmp_path) == ["big.mp4"]


def test_the_library_call(media: Path, tmp_path: Path) -> None:
    source = tmp_path / "fps61.mp4"
    shutil.copyfile(media / "fps61.mp4", source)
    result = retalk.fix(source, content=False)
    assert result.written and result.ok and result.report is not None
    assert result.output == str(tmp_path / "fps61-fixed.mp4")
    assert [c.code for c in result.changes] == ["InvalidFile.FPS"]
    with pytest.raises(FixRefused, match="exists"):
        retalk.fix(source, content=False)
    planned = retalk.fix(source, tmp_path / "other.mov", content=False, dry_run=True)
    assert not planned.written and planned.plan.argv is not None
    assert not (tmp_path / "other.mov").exists()


def test_what_fix_cannot_change_is_said_and_exits_1(media: Path, tmp_path: Path, run: Run) -> None:
    source = tmp_path / "no face.mp4"
    shutil.copyfile(media / "fps12.mp4", source)  # a test pattern: no face in it
    done = run("fix", str(source))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "frame rate: 12 fps → 15 fps" in done.stdout
    assert "Face.None" in done.stderr and "it still fails" in done.stderr
    assert pytest.approx(15) == fps(tmp_path / "no face-fixed.mp4")  # written all the same


def _make(folder: Path, name: str, *args: str) -> Path:
    """A short test clip made by ffmpeg from a test source."""
    path = folder / name
    subprocess.run(["ffmpeg", "-v", "error", *args, str(path)], check=True)
    return path


ODD = {
    "odd.webm": ("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=2.5", "-vf", "scale=1281:721",
                 "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"),
    "odd10.mp4": ("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=10:d=2.5", "-vf", "scale=1281:721",
                  "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_sides_are_cropped_to_even_for_h264(name: str, tmp_path: Path, run: Run) -> None:
    source = _make(tmp_path, name, *ODD[name])
    checked = run("check", "--no-content", "--format", "json", name, cwd=tmp_path)
    (hint,) = {f["hint"] for f in json.loads(checked.stdout)["findings"]}
    done = run("fix", "--no-content", name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    said = "sides: 1281x721 → 1280x720 (cropped by a pixel: H.264 in 4:2:0 needs even sides)"
    assert f"{name}: {said}" in done.stdout.splitlines(), done.stdout
    output = tmp_path / f"{source.stem}-fixed.mp4"
    assert sides(output) == (1280, 720) and stream(output, "video")["codec_name"] == "h264"
    output.unlink()
    pasted = subprocess.run(["sh", "-c", hint], cwd=tmp_path, capture_output=True, text=True)
    assert pasted.returncode == 0, pasted.stderr
    assert sides(output) == (1280, 720)


def test_a_remux_that_fits_the_size_limit_stays_a_copy(tmp_path: Path, run: Run) -> None:
    """0.89 MiB of H.264 under a 1 MiB limit: more than the encoder's 85 % budget, yet a remux
    (its streams plus a container's few bytes) fits, so it is copied, not re-encoded."""
    (tmp_path / ".retalk.toml").write_text("[video]\nmax-size-mb = 1\n")
    source = _make(
        tmp_path, "cbr.mkv", "-f", "lavfi", "-i", "testsrc2=s=640x640:r=15:d=3", "-c:v",
        "libx264", "-preset", "ultrafast", "-b:v", "2500k", "-minrate", "2500k", "-maxrate",
        "2500k", "-bufsize", "200k", "-x264-params", "nal-hrd=cbr:filler=1",
    )  # fmt: skip
    assert 0.86 * 2**20 < os.path.getsize(source) < 0.95 * 2**20
    dry = run("fix", "--no-content", "--dry-run", "cbr.mkv", cwd=tmp_path)
    assert "-c:v copy" in dry.stdout and "libx264" not in dry.stdout, dry.stdout
    assert run("fix", "--no-content", "cbr.mkv", cwd=tmp_path).returncode == 0
    assert packets_md5(source) == packets_md5(tmp_path / "cbr-fixed.mp4")
    over = _make(
        tmp_path, "over.mkv", "-f", "lavfi", "-i", "testsrc2=s=640x640:r=15:d=3", "-c:v",
        "libx264", "-preset", "ultrafast", "-b:v", "3200k", "-minrate", "3200k", "-maxrate",
        "3200k", "-bufsize", "200k", "-x264-params", "nal-hrd=cbr:filler=1",
    )  # fmt: skip
    assert os.path.getsize(over) > 2**20
    planned = run("fix", "--no-content", "--dry-run", "over.mkv", cwd=tmp_path)
    assert "libx264" in planned.stdout and "-maxrate" in planned.stdout
    assert "size: " in planned.stdout and "(InvalidFile.Size)" in planned.stdout, planned.stdout
    edge = _make(
        tmp_path, "edge.mkv", "-f", "lavfi", "-i", "testsrc2=s=640x640:r=15:d=3", "-c:v",
        "libx264", "-preset", "ultrafast", "-b:v", "2770k", "-minrate", "2770k", "-maxrate",
        "2770k", "-bufsize", "200k", "-x264-params", "nal-hrd=cbr:filler=1",
    )  # fmt: skip
    assert os.path.getsize(edge) < 2**20  # under the limit, but not with a container's margin
    planned = run("fix", "--no-content", "--dry-run", "edge.mkv", cwd=tmp_path)
    assert "libx264" in planned.stdout, planned.stdout
    assert "edge.mkv: size: 1.0 MB → at most " in planned.stdout, planned.stdout  # said why


WAVS = {"pcm_alaw": "alaw.wav", "adpcm_ms": "adpcm.wav", "pcm_f64le": "f64.wav"}


@pytest.mark.parametrize("codec", sorted(WAVS))
def test_a_wav_that_check_passes_is_copied_byte_for_byte(
    codec: str, tmp_path: Path, run: Run
) -> None:
    name = WAVS[codec]
    source = _make(tmp_path, name, "-f", "lavfi", "-i", "sine=d=3", "-c:a", codec)
    checked = run("check", "--no-content", "--format", "json", name, cwd=tmp_path)
    assert checked.returncode == 0 and json.loads(checked.stdout)["findings"] == []
    done = run("fix", "--no-content", name, cwd=tmp_path)
    assert done.returncode == 0 and "nothing to change" in done.stdout, done.stdout
    assert filecmp.cmp(source, tmp_path / f"{source.stem}-fixed.wav", shallow=False)


def test_a_short_clip_is_encoded_without_a_rate_cap(media: Path, tmp_path: Path, run: Run) -> None:
    shutil.copyfile(media / "fps12.mp4", tmp_path / "clip.mp4")
    dry = run("fix", "--no-content", "--dry-run", "clip.mp4", cwd=tmp_path)
    assert "libx264" in dry.stdout and "-maxrate" not in dry.stdout, dry.stdout


def test_a_conversion_the_output_asks_for_carries_no_code(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "good.mov", tmp_path / "g.mov")
    done = run("fix", "--no-content", "g.mov", "-o", "g.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "g.mov: container: QuickTime MOV → MP4" in done.stdout.splitlines(), done.stdout


def test_a_misnamed_file_is_copied_under_its_right_ending_and_the_dry_run_says_so(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "good.mp4", tmp_path / "wrong.wav")
    dry = run("fix", "--no-content", "--dry-run", "wrong.wav", cwd=tmp_path)
    assert dry.returncode == 0 and "fix cannot change" not in dry.stderr, dry.stderr
    assert dry.stdout.splitlines() == [
        "wrong.wav: name: .wav → .mp4  (File.ExtensionMismatch)",
        "wrong.wav would be copied as it is to wrong-fixed.mp4",
    ]
    done = run("fix", "--no-content", "wrong.wav", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert filecmp.cmp(tmp_path / "wrong.wav", tmp_path / "wrong-fixed.mp4", shallow=False)


def test_a_dry_run_over_an_existing_output_says_the_run_needs_force(
    media: Path, tmp_path: Path, run: Run
) -> None:
    shutil.copyfile(media / "fps12.mp4", tmp_path / "clip.mp4")
    (tmp_path / "taken.mp4").write_bytes(b"mine")
    dry = run("fix", "--no-content", "--dry-run", "clip.mp4", "-o", "taken.mp4", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.strip() == "retalk: taken.mp4 exists: the real run needs --force"
    assert dry.stdout.splitlines()[-1].startswith("ffmpeg -i clip.mp4 ")
    assert (tmp_path / "taken.mp4").read_bytes() == b"mine"
