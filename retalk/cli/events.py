"""The runner's events on stderr: one progress line, rewritten in place, on a terminal (nothing
elsewhere), cleared before any message; warnings always."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

import click

from retalk.jobs.events import Event, State, Step
from retalk.report.escape import printable
from retalk.units import size_text

if TYPE_CHECKING:
    from retalk.client import Task

_VERBS = {Step.UPLOAD: "uploading", Step.DOWNLOAD: "downloading"}


class EventLine:
    """A listener for a runner's events, and the place every message to stderr goes."""

    def __init__(self, *, show_job: bool = True) -> None:
        self.live = sys.stderr.isatty()
        self.show_job = show_job
        self._last = 0.0
        self._shown = False
        self._waiting_since = time.monotonic()

    def __call__(self, event: Event) -> None:
        if event.state is State.WARNING:
            job = f"{event.job}: " if event.job and self.show_job else ""
            # A forced run's errors, and its "submitting anyway", are not warnings.
            forced = event.detail.startswith(("error: ", "submitting anyway"))
            kind = "" if forced else "warning: "
            self.message(f"retalk: {kind}{job}{event.detail}")
        elif event.state is State.PROGRESS and event.step in _VERBS:
            verb = _VERBS[event.step]
            label = f"{verb} {event.detail}" if event.step is Step.UPLOAD else verb
            done, total = event.done or 0, event.total
            whole = f" of {size_text(total)} ({done * 100 // total}%)" if total else ""
            self.say(f"{label}: {size_text(done)}{whole}", force=done == total)
        elif event.step is Step.WAIT and event.state is State.STARTED:
            self._waiting_since = time.monotonic()
        elif event.state is State.STARTED and event.step is Step.CHECK:
            self.say(f"checking {event.job if self.show_job else 'the job'}", force=True)

    def task(self, task: Task) -> None:
        """A task's state, as a wait sees it."""
        waited = time.monotonic() - self._waiting_since
        self.say(f"task {task.task_id}: {task.status.value} ({waited:.0f} s)", force=True)

    def say(self, text: str, *, force: bool = False) -> None:
        """The progress line, at most ten times a second."""
        if not self.live or (not force and time.monotonic() - self._last < 0.1):
            return
        self._last = time.monotonic()
        self._shown = True
        # Cut to the terminal's width: a wrapped line is not all cleared by `\r\033[K`.
        shown = printable(text)[: max(terminal_width() - 1, 1)]
        click.echo(f"\r\033[K{shown}", err=True, nl=False)

    def clear(self) -> None:
        """The progress line gone."""
        if self._shown:
            click.echo("\r\033[K", err=True, nl=False)
            self._shown = False

    def message(self, text: str) -> None:
        """A line on stderr, the progress line cleared first."""
        self.clear()
        click.echo(printable(text), err=True)


def terminal_width() -> int:
    """The columns of the terminal stderr is on (else of stdout's, or $COLUMNS, or 80)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns or 80
    except (OSError, ValueError):
        return shutil.get_terminal_size().columns
