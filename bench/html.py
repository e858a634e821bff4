"""What `--html` adds to the check it draws: the same job check with and without the page,
interleaved in one run (the medians of several rounds, each round in the other order), through
the real command and in one process.

Two jobs of the fixture media: a 3 s 720p clip with a 4.6 s speech and a reference photo, and
a 120 s 720p clip (a keyframe a second) with 120 s of speech and the same photo. The page
costs the thumbnails of the frames analysed (a resize and a small JPEG each), the waveform's
peaks (from the audio the speech analysis decodes anyway) and the page's writing.
Goal: the extra time under 10 % of the check.

Run with `make bench`. Nothing here is a test: the figures go in the README.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file's name would shadow the standard library's `html` for what is imported after it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from fixtures.recipes import build_all, cache_dir  # noqa: E402

RETALK = str(Path(sys.executable).with_name("retalk"))
JOBS = {
    "3 s 720p clip, 4.6 s speech, a photo": ("face.mp4", "speech.wav", "astronaut.png", 9),
    "120 s 720p clip, 120 s speech, a photo": (
        "leaves-gop25.mp4",
        "speech-120s.mp3",
        "astronaut.png",
        5,
    ),
}


def timed(command: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user and system, the command's and its children's): on a
    machine shared with other work, the CPU time says more than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    took = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def in_process(media: Path, video: str, audio: str, ref: str, rounds: int) -> tuple[float, float]:
    """The medians of `retalk.check_job` alone and with the views kept and the page drawn, in
    this process (the models loaded once): the page's own cost, without Python's start."""
    import retalk
    from retalk.preflight.visuals import MediaView
    from retalk.report.html import render_html

    check = partial(retalk.check_job, video=media / video, audio=media / audio, ref=media / ref)
    check()  # the models loaded
    plain, drawn = [], []
    for round_ in range(rounds):
        for page in (False, True) if round_ % 2 else (True, False):  # neither always first
            began = time.perf_counter()
            if page:
                views: dict[str, MediaView] = {}
                render_html(check(views=views), views)
                drawn.append(time.perf_counter() - began)
            else:
                check()
                plain.append(time.perf_counter() - began)
    return statistics.median(plain), statistics.median(drawn)


def main() -> None:
    names = {name for video, audio, ref, _ in JOBS.values() for name in (video, audio, ref)}
    media = build_all(cache_dir(ROOT / "tests" / ".media"), sorted(names))
    print("| job | check | check --html | extra | CPU: check | CPU: --html | extra | page size |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="retalk-bench-html-") as folder:
        page = Path(folder) / "report.html"
        for label, (video, audio, ref, rounds) in JOBS.items():
            check = [RETALK, "check", "--video", str(media / video), "--audio", str(media / audio)]
            check += ["--ref", str(media / ref)]
            timed(check)  # warm the page cache and the imports' files
            plain, drawn = [], []
            for round_ in range(rounds):
                for drawing in (False, True) if round_ % 2 else (True, False):
                    if drawing:
                        drawn.append(timed([*check, "--html", str(page)]))
                    else:
                        plain.append(timed(check))
            a, b = (statistics.median(t for t, _ in runs) for runs in (plain, drawn))
            c, d = (statistics.median(cpu for _, cpu in runs) for runs in (plain, drawn))
            size = page.stat().st_size / 1024
            print(
                f"| {label} | {a:.2f} s | {b:.2f} s | {(b - a) / a:+.1%} | {c:.2f} s | {d:.2f} s "
                f"| {(d - c) / c:+.1%} | {size:.0f} KB |"
            )
    print()
    print("In one process (`retalk.check_job`, then with `views` and `render_html`), wall time:")
    print("| job | check | check, views, page | extra |")
    print("| --- | --- | --- | --- |")
    for label, (video, audio, ref, rounds) in JOBS.items():
        a, b = in_process(media, video, audio, ref, rounds)
        print(f"| {label} | {a:.2f} s | {b:.2f} s | {(b - a) / a:+.1%} |")


if __name__ == "__main__":
    main()
