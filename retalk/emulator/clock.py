"""The emulator's clock: the time its tasks, links and policies live by.

It starts at the wall clock's time and runs `scale` times as fast (`--time-scale 3600`: an hour
a second), and tests move it on at once with `advance`: the service's 3-hour timeout, its
24-hour forgetting and its 24-hour result links are reached in seconds, without sleeping. The
emulated work (PENDING, RUNNING minimum times, the rendering) takes real seconds."""

from __future__ import annotations

import datetime as dt
import threading
import time

from retalk import limits


class Clock:
    """Emulated epoch seconds: the wall clock's at the start, `scale` times as fast after it,
    plus every `advance`."""

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError("the time scale must be above 0")
        self.scale = scale
        self._origin = time.time()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The emulated time, in epoch seconds."""
        with self._lock:
            offset = self._offset
        return self._origin + (time.time() - self._origin) * self.scale + offset

    def advance(self, seconds: float) -> None:
        """Move the clock on by `seconds` at once."""
        with self._lock:
            self._offset += seconds

    def real_seconds(self, emulated: float) -> float:
        """How long `emulated` seconds take on the wall clock."""
        return emulated / self.scale


def stamp(moment: float) -> str:
    """A time as the service writes it: `2026-11-30 23:02:11.123`, in its zone (UTC+8)."""
    when = dt.datetime.fromtimestamp(moment, limits.SERVICE_TIMEZONE)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def iso(moment: float) -> str:
    """A time as OSS writes it in an error: `2026-11-30T15:02:11.000Z` (UTC)."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4] + "Z"
