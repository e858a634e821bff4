"""How fast `retalk check` answers, measured side by side with ffprobe in one run.

Prints ratios (medians of interleaved runs), against the goals of the first issue:
  retalk check --no-content FILE   vs  a bare ffprobe of FILE     goal <= 3x
  retalk.check_video(FILE) in-process vs a bare ffprobe of FILE   goal <= 1.2x
  retalk --version                  vs  ffprobe -version           goal <= 3x
  a 301 MB file                     vs  a 3 MB one (size is read from the directory, not the file)
and of the faces-on-real-media issue, each against `ffmpeg -i V -f null -` (a full decode) of
the same 120 s 1080p30 talking head, x264 veryfast with B-frames:
  retalk check V, a keyframe a second                                          goal <= 0.35x
  retalk check V, x264's default keyframe interval (250 frames)                goal <= 0.75x
  retalk check --video V --audio A (120 s MP3) --ref R, a keyframe a second    goal <= 0.45x
  the peak memory of that job check                                            goal <= 500 MB
  retalk check R, a 1 MP reference photo, the whole command (every person counted)  goal <= 2 s
(looser than the figures of the keyframe-only sampling before them, on purpose: it missed faces
that left between keyframes).

Run with `make bench`. Nothing here is a test: the figures go in the README.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import retalk  # noqa: E402
from fixtures.recipes import MIB, bmff_pad_to, ffmpeg, scene, speech, video  # noqa: E402

RETALK = str(Path(sys.executable).with_name("retalk"))
RUNS = 21


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def side_by_side(
    a: Callable[[], object], b: Callable[[], object], runs: int = RUNS
) -> tuple[float, float]:
    """Median seconds of each, run alternately so that both see the same machine."""
    a(), b()  # warm caches and lazy imports
    times_a, times_b = [], []
    for _ in range(runs):
        times_a.append(timed(a))
        times_b.append(timed(b))
    return statistics.median(times_a), statistics.median(times_b)


def run(*command: str) -> Callable[[], object]:
    return lambda: subprocess.run(command, capture_output=True, check=False)


def main() -> None:
    folder = ROOT / "build" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "1080p30-60s.mp4"
    if not clip.exists():
        video(size="1920x1080", fps="30", seconds=60)(clip)
    big = folder / "301MB.mp4"
    if not big.exists():
        video(size="1920x1080", fps="30", seconds=10)(big)
        bmff_pad_to(301 * MIB)(big)

    talk = folder / "talking-head-1080p30-120s-g30.mp4"
    if not talk.exists():
        _talking_head(talk, keyint=30)
    talk_default = folder / "talking-head-1080p30-120s-g250.mp4"
    if not talk_default.exists():
        _talking_head(talk_default, keyint=None)
    voice = folder / "speech-120s.mp3"
    if not voice.exists():
        _voice(voice)
    portrait = folder / "astronaut.png"
    if not portrait.exists():
        scene(512, 512, ("astronaut", 0.44, 0.3, 0.2)).save(portrait)
    decode = run("ffmpeg", "-v", "error", "-i", str(talk), "-f", "null", "-")
    decode_default = run("ffmpeg", "-v", "error", "-i", str(talk_default), "-f", "null", "-")
    job = (RETALK, "check", "--video", str(talk), "--audio", str(voice), "--ref", str(portrait))

    ffprobe = run(
        "ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(clip)
    )
    rows = [
        (
            "retalk check --no-content (CLI)",
            run(RETALK, "check", "--no-cache", "--no-content", str(clip)),
            ffprobe,
            3.0,
        ),
        (
            "retalk.check_video (library)",
            lambda: retalk.check_video(clip, content=False),
            ffprobe,
            1.2,
        ),
        ("retalk --version", run(RETALK, "--version"), run("ffprobe", "-version"), 3.0),
        (
            "check of a 301 MB file vs a 3 MB one",
            lambda: retalk.check_video(big, content=False),
            lambda: retalk.check_video(clip, content=False),
            None,
        ),
    ]
    heavy = [
        (
            "check, keyframe a second, vs decode",
            run(RETALK, "check", "--no-cache", str(talk)),
            decode,
            0.35,
        ),
        (
            "check, default keyframes, vs decode",
            run(RETALK, "check", "--no-cache", str(talk_default)),
            decode_default,
            0.75,
        ),
        ("job: video, 120 s mp3, ref vs decode", run(*job), decode, 0.45),
    ]
    print(f"{'measure':40} {'ours':>9} {'theirs':>9} {'ratio':>7}  goal")
    for (label, ours, theirs, goal), runs in [(r, RUNS) for r in rows] + [(r, 3) for r in heavy]:
        a, b = side_by_side(ours, theirs, runs)
        verdict = "" if goal is None else f"<= {goal:g}x " + ("met" if a / b <= goal else "MISSED")
        print(f"{label:40} {a * 1000:7.1f}ms {b * 1000:7.1f}ms {a / b:6.2f}x  {verdict}")
    photo = folder / "reference-1mp.jpg"
    if not photo.exists():
        scene(1280, 800, ("astronaut", 0.45, 0.4, 0.35)).save(photo)
    reference = statistics.median(
        timed(run(RETALK, "check", "--no-cache", str(photo))) for _ in range(5)
    )
    verdict = "met" if reference <= 2.0 else "MISSED"
    label = "reference check, 1 MP photo"
    print(f"{label:40} {reference * 1000:7.1f}ms {'':17}  <= 2 s {verdict}")
    peak = peak_rss_mb(*job)
    verdict = "met" if peak <= 500 else "MISSED"
    print(f"{'job check: peak memory':40} {peak:7.0f}MB {'':17}  <= 500 MB {verdict}")


def peak_rss_mb(*command: str) -> float:
    """The largest resident size of `command` or a process it ran, measured from a small
    Python of its own (a child forked from this one would count this one's size)."""
    probe = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True)
    return int(done.stdout) / 1024


def _talking_head(out: Path, keyint: int | None) -> None:
    """The astronaut's portrait over a moving test pattern: 120 s of 1080p30 that decodes like
    real footage, with one frontal face; x264 veryfast (B-frames), a keyframe every `keyint`
    frames (x264's default, 250, when None)."""
    portrait = out.with_suffix(".png")
    scene(700, 700, ("astronaut", 0.45, 0.35, 0.3)).save(portrait)
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=120", "-i", str(portrait),
        "-f", "lavfi", "-i", "sine=d=120",
        "-filter_complex", "[0][1]overlay=(W-w)/2:(H-h)/2,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", *(["-g", str(keyint)] if keyint else []),
        "-c:a", "aac", "-t", "120", str(out),
    )  # fmt: skip
    portrait.unlink()


def _voice(out: Path) -> None:
    """espeak-ng's voice, looped to 120 s of MP3."""
    once = out.with_suffix(".wav")
    speech()(once)
    ffmpeg("-stream_loop", "-1", "-i", str(once), "-t", "120", "-c:a", "libmp3lame", str(out))
    once.unlink()


if __name__ == "__main__":
    main()
