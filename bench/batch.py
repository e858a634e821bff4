"""A batch of 50 short jobs through the emulator with one worker: the batch's wall time against
the worker's busy time (goal: at most 1.05, the single worker kept busy), and the client's peak
memory, side by side in one run. Run by `make bench`.

The emulator runs in this process (its `worker_busy_s` is the real seconds its one worker spent
on tasks); the batch is `retalk batch` in a process of its own, whose peak resident memory is
read when it ends. Each task takes at least `RUNNING_S`, as a real one takes minutes: the
batch's own steps (the next job's check and upload, the polls, the download) must hide behind
the task the worker is on.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = 50
RUNNING_S = 2.0
KEY = "sk-bench"
RETALK = str(Path(sys.executable).with_name("retalk"))


def _clip(folder: Path) -> None:
    ffmpeg = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    subprocess.run(
        [*ffmpeg, "-i", "testsrc=size=640x640:rate=15", "-t", "2.2", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(folder / "talk.mp4")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*ffmpeg, "-i", "sine=frequency=300:sample_rate=16000", "-t", "2.2",
         str(folder / "talk.wav")],
        check=True,
    )  # fmt: skip


def main() -> None:
    from retalk.emulator import Emulator

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        _clip(folder)
        manifest = folder / "jobs.csv"
        manifest.write_text("video,audio\n" + "talk.mp4,talk.wav\n" * JOBS)
        with Emulator(
            api_key=KEY, workers=1, pending_s=0.0, running_s=RUNNING_S, storage=folder / "emu"
        ) as emulator:
            env = {
                **os.environ,
                "DASHSCOPE_API_KEY": KEY,
                "DASHSCOPE_HTTP_BASE_URL": emulator.base_url,
                "RETALK_POLL_INTERVAL": "0.2",
            }
            command = [RETALK, "batch", str(manifest), "-d", str(folder / "out"), "--no-content"]
            began = time.perf_counter()
            ended = subprocess.run(command, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - began
            state = emulator.state()
        if ended.returncode != 0:
            sys.exit(f"the batch failed: {ended.stdout}{ended.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    busy = float(state["worker_busy_s"])
    print(f"batch of {JOBS} jobs, one worker, tasks of at least {RUNNING_S:g} s:")
    ratio = wall / busy
    print(f"  wall time {wall:.1f} s, worker busy {busy:.1f} s: ratio {ratio:.3f} (goal ≤ 1.05)")
    print(f"  tasks {state['tasks_created']}, billed {state['seconds_billed']:.1f} s")
    print(f"  peak resident memory of the client (retalk batch): {peak:.0f} MB")


if __name__ == "__main__":
    main()
