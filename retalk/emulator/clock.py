"""The emulator's clock: the time its tasks, links and uploads live by.

Its times are the wall clock's, so that what it writes (`submit_time`, `end_time`, a result
link's `Expires=`) is true on its clients' clocks; `scale` shortens its durations instead (the
task timeout, the forgetting, the result and upload lifetimes last `1/scale` of their emulated
seconds: `--time-scale 3600`, an hour a second). Tests move it on at once with `advance`: the
emulator's now moves on, and everything it did moves as far into the past, so that what it
writes afterwards agrees with its own expiry decisions (a link past its lifetime shows an
`Expires=` past on the wall clock too). The emulated work (PENDING, RUNNING minimum times, the
rendering) takes real seconds."""

from __future__ import annotations

import datetime as dt
import threading
import time

from retalk import limits


class Clock:
    """The emulator's epoch seconds: the wall clock's plus every `advance`; its durations last
    `1/scale` of their seconds."""

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError("the time scale must be above 0")
        self.scale = scale
        self._advanced = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The emulator's now, in its epoch seconds (the wall clock's, plus every advance)."""
        return time.time() + self.advanced

    @property
    def advanced(self) -> float:
        """Seconds the clock has been moved on by `advance`."""
        with self._lock:
            return self._advanced

    def advance(self, seconds: float) -> None:
        """Move the clock on at once by `seconds` of its durations (`seconds / scale` of the
        wall clock's), so that `advance(limits.TASK_TIMEOUT_S)` passes the timeout at any
        scale."""
        with self._lock:
            self._advanced += seconds / self.scale

    def span(self, emulated: float) -> float:
        """How long a duration of `emulated` seconds (a lifetime, a timeout) lasts."""
        return emulated / self.scale

    def wall(self, moment: float) -> float:
        """A moment of the emulator's as the wall clock has it now: what the emulator writes."""
        return moment - self.advanced

    def moment(self, wall: float) -> float:
        """A time a client wrote (the wall clock's) as a moment of the emulator's."""
        return wall + self.advanced


def stamp(moment: float) -> str:
    """A time as the service writes it: `2026-11-30 23:02:11.123`, in its zone (UTC+8)."""
    when = dt.datetime.fromtimestamp(moment, limits.SERVICE_TIMEZONE)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def iso(moment: float) -> str:
    """A time as OSS writes it in an error: `2026-11-30T15:02:11.000Z` (UTC)."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4] + "Z"
