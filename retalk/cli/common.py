"""The `retalk` group and what its commands share.

Exit codes: 0 no errors, 1 errors found (or a task failed, or its result is not a valid
video), 2 usage, 3 environment (ffprobe missing, a model that will not load, no API key, the
service unreachable or refusing the key or the base URL), 4 a result link that has expired
(the result is gone: nothing to retry); interrupted by Ctrl-C, 130 (128 + SIGINT, as shells
report it); ended by SIGTERM, 143; by SIGHUP (the terminal closed), 129.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
from collections.abc import Sequence
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


class _Command(click.Command):
    """A command whose "No such option" says so when the word is a file that starts with a dash
    (`retalk fix -take2.mp4`): put `--` before it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            raise _dashed(error, given) from None


def _dashed(error: click.NoSuchOption, args: Sequence[str]) -> click.UsageError:
    named = [a for a in args if a.startswith("-") and a != "--" and os.path.lexists(a)]
    if not named:
        return error
    files = " ".join(shlex.quote(a) for a in named)
    return click.UsageError(
        f"{error.format_message()} — {files} is a file: put -- before it "
        f"(options first): retalk {error.ctx.info_name if error.ctx else ''} [OPTIONS] -- {files}",
        error.ctx,
    )


class _Group(click.Group):
    command_class = _Command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
