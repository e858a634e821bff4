"""What several test files share: a media file's length, a terminal's output, a service's
environment, a command's peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def media_duration(path: Path) -> float:
    """The container's length in seconds, as ffprobe reads it."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def drain(leader: int, watch: Callable[[bytes], None] | None = None) -> str:
    """Everything a pseudo-terminal shows until its program ends (`leader` closed after);
    `watch` sees what was shown so far after each read."""
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        shown += chunk
        if watch is not None:
            watch(shown)
    os.close(leader)
    return shown.decode()


def service_env(base_url: str, key: str, **changes: str) -> dict[str, str]:
    """This process's environment, pointed at a service (an emulator) with a key, polling and
    backing off quickly."""
    return {
        **os.environ,
        "DASHSCOPE_API_KEY": key,
        "DASHSCOPE_HTTP_BASE_URL": base_url,
        "RETALK_POLL_INTERVAL": "0.05",
        "RETALK_RETRY_BACKOFF": "0.01",
        **changes,
    }


_MEASURED = """
import re, resource, sys
from retalk.cli import main
try:
    main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
with open("/proc/self/status") as status:
    own = int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"PEAK_KB {max(own, children)}", file=sys.stderr)
sys.exit(code)
"""


def run_measured(args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """`retalk ARGS` in a process of its own, and the peak resident memory in MB of it and its
    children (VmHWM of its own: getrusage would keep the forking pytest's peak across exec)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return done, int(done.stderr.split("PEAK_KB")[1].split()[0]) / 1024
