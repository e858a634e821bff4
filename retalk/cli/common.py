"""The `retalk` group and what its commands share.

Exit codes: 0 no errors, 1 errors found (or a task failed, or its result is not a valid
video), 2 usage, 3 environment (ffprobe missing, a model that will not load, no API key, the
service unreachable or refusing the key or the base URL), 4 a result link that has expired
(the result is gone: nothing to retry); interrupted by Ctrl-C, 130 (128 + SIGINT, as shells
report it); ended by SIGTERM, 143; by SIGHUP (the terminal closed), 129.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from retalk import __version__

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3
EXIT_EXPIRED = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


EXIT_HUNG_UP = 129


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_HUNG_UP if signum == signal.SIGHUP else EXIT_TERMINATED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="retalk")
def main() -> None:
    """Check media for Alibaba's VideoRetalk lip-sync service, then submit it."""
    # SIGTERM and SIGHUP (the terminal closed) end the command as an exception would, so that
    # what it holds is let go (the temporary links to the files it reads, the emulator's
    # storage, fix's temporary file). A SIGHUP ignored (`nohup`) stays ignored.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            signal.signal(signal.SIGHUP, _terminated)
