"""How fast `retalk check` answers, measured side by side with ffprobe in one run.

Prints ratios (medians of interleaved runs), against the goals of the first issue:
  retalk check --no-content FILE   vs  a bare ffprobe of FILE     goal <= 3x
  retalk.check_video(FILE) in-process vs a bare ffprobe of FILE   goal <= 1.2x
  retalk --version                  vs  ffprobe -version           goal <= 3x
  a 301 MB file                     vs  a 3 MB one (size is read from the directory, not the file)

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
from fixtures.recipes import MIB, bmff_pad_to, video  # noqa: E402

RETALK = str(Path(sys.executable).with_name("retalk"))
RUNS = 21


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def side_by_side(a: Callable[[], object], b: Callable[[], object]) -> tuple[float, float]:
    """Median seconds of each, run alternately so that both see the same machine."""
    a(), b()  # warm caches and lazy imports
    times_a, times_b = [], []
    for _ in range(RUNS):
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

    ffprobe = run(
        "ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(clip)
    )
    rows = [
        (
            "retalk check --no-content (CLI)",
            run(RETALK, "check", "--no-content", str(clip)),
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
    print(f"{'measure':40} {'ours':>9} {'theirs':>9} {'ratio':>7}  goal")
    for label, ours, theirs, goal in rows:
        a, b = side_by_side(ours, theirs)
        verdict = "" if goal is None else f"<= {goal:g}x " + ("met" if a / b <= goal else "MISSED")
        print(f"{label:40} {a * 1000:7.1f}ms {b * 1000:7.1f}ms {a / b:6.2f}x  {verdict}")


if __name__ == "__main__":
    main()
