"""A warm re-check of 200 files against the first, cold one, through the real command.

200 media files: ten variants (distinct bytes: a `free` box or a tail appended) of each of
twenty fixture recipes' files, video, audio and images, good and bad. `retalk check FOLDER`
with an empty cache (the files checked by the worker pool), then again with the cache warm
(a hit each), in both modes (faces and speech; `--no-content`).
Goal: the warm run under 10 % of the cold one and under 1 s in all.

Run with `make bench`. Nothing here is a test: the figures go in the README.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.recipes import build_all, cache_dir  # noqa: E402

RETALK = str(Path(sys.executable).with_name("retalk"))
BASES = [
    "good.mp4", "fps12.mp4", "480x360.mp4", "face.mp4", "fps60.mp4", "hevc.mp4", "good.mov",
    "noise.mp4", "good.wav", "2s.wav", "speech.wav", "quiet-speech.wav", "good.mp3", "good.aac",
    "tone.m4a", "astronaut.png", "good.jpg", "4096x2048.jpg", "png-named.jpg", "good.webp",
]  # fmt: skip
VARIANTS = 10
WARM_RUNS = 5


def variant(source: Path, target: Path, number: int) -> None:
    """A copy of `source` with bytes of its own at the end, where readers skip them."""
    tag = f"retalk bench variant {number}".encode()
    data = source.read_bytes()
    if source.suffix in (".mp4", ".mov"):
        tail = struct.pack(">I4s", 8 + len(tag), b"free") + tag  # an ISO-BMFF box to skip
    else:
        tail = tag
    target.write_bytes(data + tail)


def make_files(folder: Path) -> list[Path]:
    media = build_all(cache_dir(ROOT / "tests" / ".media"), BASES)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    made = []
    for base in BASES:
        stem, ending = os.path.splitext(base)
        for number in range(VARIANTS):
            target = folder / f"{stem}-{number}{ending}"
            variant(media / base, target, number)
            made.append(target)
    return made


def check(folder: Path, env: dict[str, str], *options: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [RETALK, "check", "--format", "json", *options, str(folder)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"retalk check failed ({done.returncode}): {done.stderr}")
    return seconds, done.stdout


def main() -> None:
    work = ROOT / "build" / "bench-cache"
    files = make_files(work / "media")
    store = work / "cache"
    env = {**os.environ, "RETALK_CACHE_DIR": str(store)}
    print(f"{len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.0f} MB; "
          f"{os.cpu_count()} CPUs (--jobs default)")  # fmt: skip
    for label, options in (("faces and speech", ()), ("--no-content", ("--no-content",))):
        shutil.rmtree(store, ignore_errors=True)
        cold, first = check(work / "media", env, *options)
        warm_runs = [check(work / "media", env, *options) for _ in range(WARM_RUNS)]
        assert all(json.loads(out) == json.loads(first) for _, out in warm_runs), "warm != cold"
        warm = statistics.median(seconds for seconds, _ in warm_runs)
        verdict = "met" if warm < 0.1 * cold and warm < 1.0 else "MISSED"
        print(
            f"{label}: cold {cold:.2f} s, warm {warm:.3f} s (median of {WARM_RUNS}), "
            f"{warm / cold * 100:.1f} % of cold; goal < 10 % and < 1 s: {verdict}"
        )


if __name__ == "__main__":
    main()
