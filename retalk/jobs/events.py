"""What a job runner says as it goes: one small value per step, for a progress line, a log or a
test to read. The runner never prints; the command line renders these."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Step(StrEnum):
    """The steps of a job, in the order they run."""

    ACCESS = "access"
    """The API key and the base URL, checked before anything else."""
    CHECK = "check"
    """The preflight: the service's verdict on the inputs, before anything is uploaded."""
    UPLOAD = "upload"
    SUBMIT = "submit"
    ADOPT = "adopt"
    """A submit whose answer was lost, looked up in the service's task list."""
    WAIT = "wait"
    DOWNLOAD = "download"
    VERIFY = "verify"


class State(StrEnum):
    """Where a step is."""

    STARTED = "started"
    PROGRESS = "progress"
    WARNING = "warning"
    """Done, with something the user must hear of (a preflight warning, an old result)."""
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Event:
    """One thing a runner did or saw."""

    job: str
    """The job's name (a batch's `name`, or the video's stem)."""
    step: Step
    state: State
    detail: str = ""
    """One line for people: what was uploaded, the task id, the bytes so far …"""
    at: float = field(default_factory=time.time)
    """When it happened (seconds since the epoch, UTC)."""
    elapsed: float | None = None
    """Seconds the step took, on DONE and FAILED."""
    done: int | None = None
    """Progress so far (bytes of an upload or download), on PROGRESS."""
    total: int | None = None
    """What `done` grows to, when known."""


Listener = Callable[[Event], None]
"""Told of each event as it happens."""


def ignore(event: Event) -> None:
    """A listener that listens to nothing."""
