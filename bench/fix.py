"""`retalk fix` on a 120 s 3840x2160 24 fps clip against a plain ffmpeg run of the same argv
(goal: at most 1.1x): what `fix` adds of its own (its start, the metadata gather, the plan,
the atomic rename and the check of what it wrote) over the encode itself.

The clip (ffmpeg's testsrc2 and a sine) is made once into bench/.media/ (git-ignored). The two
runs alternate, side by side in one run; `--no-content` (the output's faces are not analysed:
the plan needs none). Run with `make bench` or `python bench/fix.py [RUNS]`.
"""

from __future__ import annotations

import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIP = HERE / ".media" / "4k-120s-24fps.mp4"
RETALK = str(Path(sys.executable).with_name("retalk"))


def make_clip() -> None:
    if CLIP.exists():
        return
    CLIP.parent.mkdir(exist_ok=True)
    part = CLIP.with_suffix(".part.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=3840x2160:r=24:d=120",
         "-f", "lavfi", "-i", "sine=f=220:d=120", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(part)],
        check=True,
    )  # fmt: skip
    part.rename(CLIP)


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the command and its children (ffmpeg under retalk):
    the CPU time is the steadier figure on a machine shared with other work."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    make_clip()
    out = CLIP.with_name("fixed.mp4")
    plain = CLIP.with_name("plain.mp4")
    dry = subprocess.run(
        [RETALK, "fix", "--dry-run", "--no-content", str(CLIP), "-o", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()  # fmt: skip
    argv = shlex.split(dry[-1])
    argv[-1] = str(plain)
    argv[1:1] = ["-nostdin", "-v", "error", "-y"]
    print("plan:", *dry[:-1], sep="\n  ")
    ours, theirs = [], []
    for i in range(runs):
        out.unlink(missing_ok=True)
        pair = [
            lambda: ours.append(timed([RETALK, "fix", "--no-content", str(CLIP), "-o", str(out)])),
            lambda: theirs.append(timed(argv)),
        ]
        for run in pair if i % 2 == 0 else pair[::-1]:  # each round in the other order
            run()
    for k, what in ((0, "wall"), (1, "CPU")):
        a = statistics.median(t[k] for t in ours)
        b = statistics.median(t[k] for t in theirs)
        print(f"{what}: retalk fix {a:.1f} s, plain ffmpeg {b:.1f} s: {a / b:.3f}x (goal: ≤ 1.1x)")
    for path in (out, plain):
        os.unlink(path)


if __name__ == "__main__":
    main()
