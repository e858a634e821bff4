"""A submit whose answer was lost, found again in the service's task list.

The service has no idempotency key: a submit sent again after a lost answer may make a second
task, and bill it. So a lost answer is never followed by another submit blindly: the tasks
submitted in the attempt's time window are listed, those any retalk ledger knows (the user-level
registry) are set aside, and then:

- exactly one is left: it is taken for the attempt's task, adopted;
- none is left, once `SUBMIT_SETTLE_S` have passed since the intent: the request never made a
  task. The service makes the task before it answers (the task id is in the answer) and lists
  it from then on; a request still on its way, or still being handled when the answer was given
  up on, has had that long to make its task. So the list is read again once the attempt is
  that old (the runner waits for it), and a task it still does not show was never made: the
  job is submitted again, at no risk of a duplicate;
- more than one: which is the job's cannot be told; the job is `uncertain`, left for the user
  (`--resubmit` accepts a possible duplicate).

The window is the attempt's: from its intent (recorded before the request left) to the longest
the attempt could have lasted (`attempt_end`: the client's deadline for a call, or the settle
time if longer), each end widened by `CLOCK_MARGIN_S` for the skew between this machine's clock
and the service's; never "until now", which would take in tasks made long after the attempt
ended. The service writes `submit_time` in its own clock and zone, which it does not name: a
time is taken to be in the window when its reading in UTC, in this machine's zone or in China
Standard Time (UTC+8, the mainland region's) falls in it.

What is and is not guaranteed. The service's list does not say who submitted a task or with
which inputs, so a task of the same account that no retalk ledger knows (another machine,
another tool, the console) submitted within the window looks like the attempt's own. A wider
window can only find more tasks, and so make a job uncertain rather than adopt. When the
attempt made no task and exactly one such foreign task is in the window, it is adopted at
first; once it has a result, its billed length (`usage.video_duration`) is checked against the
job's forecast (the preflight's `output_duration`, within `limits.JOB_LENGTH_TOLERANCE_S`,
`same_length`): a different length proves it is not the job's, and the job becomes uncertain,
nothing saved and the task set aside for good. A foreign task of the same length (or of a job
with no forecast, such as one never checked) cannot be told apart, and is taken as the job's.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retalk import limits

if TYPE_CHECKING:
    from retalk.client import Client, Task

CLOCK_MARGIN_S = 120.0
"""Seconds the window is widened by on either side, for clock skew."""
SUBMIT_SETTLE_S = 60.0
"""Seconds after a submit was sent by which the task it made, if any, is in the task list: the
service answers a submit in well under a second; a minute covers a request held in a gateway
or a slow connection. Before that, an empty window proves nothing."""
MAX_PAGES = 20
"""Pages of 100 tasks listed at most, newest first (a window of minutes holds far fewer)."""
_ZONES = (dt.UTC, limits.SERVICE_TIMEZONE)
_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S")


@dataclass(frozen=True)
class Lookup:
    """What the task list said about a lost submit."""

    task_id: str | None
    """The task to adopt: the one unknown task in the window."""
    unknown: tuple[str, ...]
    """The tasks in the window that the ledger does not know."""

    @property
    def made(self) -> bool:
        """Whether the attempt made a task (or might have)."""
        return bool(self.unknown)


def naive_time(stamp: str | None) -> dt.datetime | None:
    """A service time as written (`2026-11-30 15:02:11.123`), without its zone; None when it
    cannot be read."""
    if not stamp:
        return None
    text = stamp.strip().replace("T", " ").rstrip("Z")
    for form in _FORMATS:
        try:
            return dt.datetime.strptime(text, form)
        except ValueError:
            continue
    return None


def readings(stamp: str | None) -> list[float] | None:
    """The instants (UTC seconds) a service time may stand for; None when it cannot be read."""
    naive = naive_time(stamp)
    if naive is None:
        return None
    local = naive.astimezone().timestamp()
    return [local, *(naive.replace(tzinfo=zone).timestamp() for zone in _ZONES)]


def in_window(task: Task, start: float, end: float) -> bool:
    """Whether the task may have been submitted between `start` and `end`, margins added; a
    time that cannot be read may be anything."""
    found = readings(task.submit_time)
    if found is None:
        return True
    return any(start - CLOCK_MARGIN_S <= t <= end + CLOCK_MARGIN_S for t in found)


def window_tasks(client: Client, start: float, end: float) -> tuple[list[Task], bool]:
    """The tasks that may have been submitted between `start` and `end` (UTC seconds), listed
    newest first until the list is past the window; and whether the list got past it (not
    when `MAX_PAGES` ran out first)."""
    found: list[Task] = []
    for page_no in range(1, MAX_PAGES + 1):
        page = client.list(page_no, 100)
        for task in page.tasks:
            if in_window(task, start, end):
                found.append(task)
        oldest = readings(page.tasks[-1].submit_time) if page.tasks else None
        if (
            not page.tasks
            or page_no * page.page_size >= page.total
            or (oldest is not None and max(oldest) < start - CLOCK_MARGIN_S)
        ):
            return found, True
    return found, False


def attempt_end(intent: float, deadline: float, settle: float = SUBMIT_SETTLE_S) -> float:
    """The latest an attempt whose intent was recorded at `intent` can have made its task: the
    client gives up on a call after `deadline` seconds, and a request held on its way lands
    within `settle`."""
    return intent + max(deadline, settle)


def same_length(billed: float | None, forecast: float | None) -> bool:
    """Whether a task's billed length can be the job's forecast output length (within the
    preflight's `limits.JOB_LENGTH_TOLERANCE_S`); either unknown: it cannot be told."""
    if billed is None or forecast is None:
        return True
    return abs(billed - forecast) <= limits.JOB_LENGTH_TOLERANCE_S


def look_up(client: Client, since: float, known: set[str], until: float | None = None) -> Lookup:
    """The lost submit's task, sent between `since` and `until` (default: now; a caller that
    knows how long the attempt could last gives `attempt_end`), among the tasks not in
    `known`. A list that ran out of pages before the window's start cannot say that no task
    was made: it counts as a task not found (the job is then uncertain, never sent again)."""
    end = until if until is not None else time.time()
    tasks, complete = window_tasks(client, since, end)
    unknown = tuple(dict.fromkeys(t.task_id for t in tasks if t.task_id not in known))
    if not complete and not unknown:
        unknown = ("(the task list is longer than retalk reads)",)
    return Lookup(unknown[0] if len(unknown) == 1 and complete else None, unknown)
