"""`GET /tasks` as the platform answers it: filtered by `status`, `model_name` and a window of
submit times (`start_time`, `end_time` as `YYYYMMDDhhmmss` in the service's zone, UTC+8, 24
hours apart at most), newest first, a page at a time."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from retalk import limits
from retalk.client.config import MODEL
from retalk.emulator.clock import Clock
from retalk.emulator.tasks import (
    CANCELED,
    FAILED,
    PENDING,
    POST,
    PRE,
    RUNNING,
    SUCCEEDED,
    EmulatedTask,
)

STATUSES = frozenset({PENDING, PRE, RUNNING, POST, SUCCEEDED, FAILED, CANCELED})
MAX_PAGE = 100
_TIME = "%Y%m%d%H%M%S"


@dataclass(frozen=True)
class Selection:
    """What a list request asks for."""

    status: str | None
    """Only tasks in this state."""
    model: str | None
    """Only tasks of this model (the emulator's are all `videoretalk`)."""
    start: float
    """Submitted at or after this (epoch seconds)."""
    end: float
    """Submitted before this (epoch seconds): `end_time`'s whole second included."""
    page_no: int
    """The page, from 1."""
    page_size: int
    """Tasks a page, 1 to 100."""

    def select(self, tasks: Iterable[EmulatedTask]) -> list[EmulatedTask]:
        """The tasks it names, newest first (all of them, before paging)."""
        chosen = [
            t
            for t in tasks
            if not t.forgotten
            and (self.status is None or t.status == self.status)
            and (self.model is None or self.model == MODEL)
            and self.start <= t.submit_at < self.end
        ]
        chosen.sort(key=lambda t: t.submit_at, reverse=True)
        return chosen

    def page(self, tasks: list[EmulatedTask]) -> list[EmulatedTask]:
        """This page of them."""
        first = (self.page_no - 1) * self.page_size
        return tasks[first : first + self.page_size]


def selection(query: dict[str, str], clock: Clock) -> Selection | str:
    """A list request's query read, or why the platform refuses it (400 InvalidParameter).
    Its times are the client's (the wall clock's), read as moments of `clock`. Without
    `end_time`, the window ends now; without `start_time`, it starts 24 hours before its
    end."""
    now = clock.now()
    numbers = [query.get("page_no") or "1", query.get("page_size") or "10"]
    if not all(re.fullmatch(r"\d{1,9}", n) for n in numbers):
        return "page_no and page_size must be numbers"
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        return f"status must be one of {', '.join(sorted(STATUSES))}"
    moments: dict[str, float] = {}
    for name in ("start_time", "end_time"):
        text = query.get(name)
        if not text:
            continue
        try:
            if not re.fullmatch(r"\d{14}", text):
                raise ValueError(text)
            moment = dt.datetime.strptime(text, _TIME).replace(tzinfo=limits.SERVICE_TIMEZONE)
            moments[name] = clock.moment(moment.timestamp())
        except (ValueError, OverflowError):
            return f"{name} must be a time as YYYYMMDDhhmmss"
    end = moments.get("end_time", now) + (1.0 if "end_time" in moments else 0.001)
    start = moments.get("start_time", end - limits.TASK_LIST_WINDOW_S)
    if start >= end:
        return "start_time must be before end_time"
    if end - start > limits.TASK_LIST_WINDOW_S + 1:
        return "start_time and end_time must be at most 24 hours apart"
    return Selection(
        status,
        query.get("model_name") or None,
        start,
        end,
        max(1, int(numbers[0])),
        max(1, min(MAX_PAGE, int(numbers[1]))),
    )


def time_text(moment: float) -> str:
    """A moment as the list's `start_time` and `end_time` take it: `YYYYMMDDhhmmss`, in the
    service's zone."""
    return dt.datetime.fromtimestamp(moment, limits.SERVICE_TIMEZONE).strftime(_TIME)
