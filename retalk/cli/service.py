"""The commands that talk to the service: submit, status, wait, download, cancel, tasks; and
`retalk emulator`, a local stand-in for it. The client loads on first use: `retalk check`
does not pay for it."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import click

from retalk.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_EXPIRED,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    main,
)
from retalk.errors import EnvironmentProblem
from retalk.report.escape import printable
from retalk.units import size_text

if TYPE_CHECKING:
    from datetime import datetime

    from retalk.client import Client, Task

_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="How the task is printed.",
)


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr (after the progress line, if one is shown, is cleared), and exit."""
    for shown in list(_Progress.shown):
        shown.done()
    click.echo(f"retalk: {printable(message)}", err=True)
    sys.exit(code)


@contextmanager
def _service() -> Iterator[Client]:
    """A client, with the service's refusals turned into a line and an exit code: 3 when the
    way to the service fails (no answer, a wrong key or base URL, an answer that cannot be
    read), 4 when a result link has expired, 1 when the service refuses the job or its result
    is not a video, or a file is in the way."""
    from retalk.client import (
        ApiError,
        AuthenticationError,
        Client,
        InvalidAnswer,
        NotFound,
        PermissionDenied,
        RateLimited,
        ResultExpired,
        ServerError,
        TransportError,
    )

    try:
        with Client() as client:
            yield client
    except EnvironmentProblem as problem:
        _fail(str(problem), EXIT_ENVIRONMENT)
    except ResultExpired as expired:
        _fail(str(expired), EXIT_EXPIRED)
    except (
        TransportError,
        InvalidAnswer,
        AuthenticationError,
        PermissionDenied,
        NotFound,
        RateLimited,
        ServerError,
    ) as e:
        _fail(str(e), EXIT_ENVIRONMENT)
    except ApiError as error:
        _fail(str(error), EXIT_FINDINGS)
    except FileExistsError as error:
        _fail(f"{error.filename} is already there: --force replaces it", EXIT_FINDINGS)
    except OSError as error:  # a file to upload that went away, a folder that cannot be written
        where = f" {error.filename}" if error.filename else ""
        _fail(f"cannot use{where}: {error.strerror or error}", EXIT_FINDINGS)
    except ValueError as error:  # an empty task id, a threshold without a reference …
        _fail(str(error), EXIT_USAGE)


class _Progress:
    """One line on stderr, rewritten in place, when stderr is a terminal; nothing otherwise."""

    shown: ClassVar[set[_Progress]] = set()
    """The progress lines on screen now: cleared before any message."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self._last = 0.0

    def say(self, text: str, *, force: bool = False) -> None:
        if not self.live or (not force and time.monotonic() - self._last < 0.1):
            return
        self._last = time.monotonic()
        _Progress.shown.add(self)
        click.echo(f"\r\033[K{text}", err=True, nl=False)

    def bytes(self, label: str) -> Callable[[int, int | None], None]:
        def update(done: int, total: int | None) -> None:
            whole = f" of {size_text(total)} ({done * 100 // total}%)" if total else ""
            self.say(f"{label}: {size_text(done)}{whole}", force=done == total)

        return update

    def task(self, started: float) -> Callable[[Task], None]:
        def update(task: Task) -> None:
            waited = time.monotonic() - started
            self.say(f"task {task.task_id}: {task.status.value} ({waited:.0f} s)", force=True)

        return update

    def done(self) -> None:
        """Clear the line, if one is shown."""
        if self in _Progress.shown:
            _Progress.shown.discard(self)
            click.echo("\r\033[K", err=True, nl=False)


def _wait_and_save(
    client: Client,
    task_id: str,
    target: str,
    timeout: float | None,
    fmt: str,
    progress: _Progress,
    *,
    overwrite: bool = True,
) -> None:
    """Wait for the task, then fetch its result to `target` (a file, or a folder where it is
    named by the task). Interrupted or cut off, say that the task goes on and how to pick it
    up; without `overwrite`, a file already there is refused before the wait."""
    from retalk.client import TaskFailed, TransportError, WaitTimeout
    from retalk.client.core import download_target

    again = f"retalk wait {task_id} -o {_quoted(target)}" + ("" if overwrite else " --force")
    if not overwrite:
        final = download_target(target, "", task_id)
        if final.exists():
            _fail(f"{final} is already there: --force replaces it", EXIT_FINDINGS)
    try:
        task = client.wait(task_id, timeout=timeout, on_update=progress.task(time.monotonic()))
    except TaskFailed as failed:
        progress.done()
        _emit(failed.task, fmt)
        _fail(str(failed), EXIT_FINDINGS)
    except WaitTimeout as late:
        _fail(f"{late}; {again} fetches its result", EXIT_FINDINGS)
    except KeyboardInterrupt:
        _fail(f"interrupted; task {task_id} goes on at the service: {again}", EXIT_INTERRUPTED)
    except TransportError as lost:
        _fail(f"{lost}; task {task_id} goes on at the service: {again}", EXIT_ENVIRONMENT)
    resume = f"retalk download {task_id} {_quoted(target)}" + ("" if overwrite else " --force")
    try:
        saved = client.download(task, target, progress.bytes("downloading"), overwrite=overwrite)
    except KeyboardInterrupt:
        _fail(f"interrupted; the download resumes with: {resume}", EXIT_INTERRUPTED)
    except TransportError as lost:
        _fail(f"{lost}; the download resumes with: {resume}", EXIT_ENVIRONMENT)
    progress.done()
    _emit(task, fmt, saved)


def _quoted(path: str) -> str:
    import shlex

    return shlex.quote(path)


def _emit(task: Task, fmt: str, saved: Path | None = None, *, times: bool = False) -> None:
    """The task on stdout, as JSON or one line; with `times`, its submit and end in UTC."""
    if fmt == "json":
        data: dict[str, Any] = task.to_dict()
        if saved is not None:
            data["saved"] = str(saved)
        click.echo(json.dumps(data, indent=2))
        return
    line = f"task {task.task_id}: {task.status.value}"
    if task.code:
        line += f" ({task.code}: {task.message or ''})"
    if task.usage.video_duration is not None:
        line += f", {task.usage.video_duration:.2f} s billed"
    for label, stamp in (("submitted", task.submit_time), ("ended", task.end_time)):
        if times and stamp:
            when = _utc(stamp)
            line += f", {label} {when} UTC" if when else f", {label} {stamp}"
    if saved is not None:
        line += f"; saved {saved}"
    elif task.video_url:
        line += f"; result at {task.video_url} ({_lifetime(task.video_url)})"
    click.echo(printable(line))


def _utc(stamp: str | None) -> str | None:
    """A service time (UTC+8, `limits.SERVICE_TIMEZONE`) in UTC, to the second; None when it
    cannot be read."""
    from retalk.client.core import service_instant

    when = service_instant(stamp)
    return f"{when:%Y-%m-%d %H:%M:%S}" if when else None


def _lifetime(url: str) -> str:
    """How long the result link lives, as its own `Expires=` says."""
    from retalk.client.expiry import is_past, link_expiry

    ends = link_expiry(url)
    if ends is None:
        return "24 hours from the task's end"
    return f"{'expired at' if is_past(ends) else 'until'} {ends:%Y-%m-%d %H:%M} UTC"


@main.command()
@click.argument("task_id")
@_FORMAT
def status(task_id: str, fmt: str) -> None:
    """Where a task is. Exit 1 when it FAILED or was CANCELED, or the service does not know
    it (UNKNOWN: no such task, or forgotten 24 hours after it ended)."""
    from retalk.client import TaskStatus

    with _service() as client:
        task = client.get(task_id)
    if task.status is TaskStatus.UNKNOWN:
        if fmt == "json":
            _emit(task, fmt)
        _fail(f"task {task_id}: UNKNOWN: {_UNKNOWN}", EXIT_FINDINGS)
    _emit(task, fmt, times=True)
    if task.status in (TaskStatus.FAILED, TaskStatus.CANCELED):
        sys.exit(EXIT_FINDINGS)


_UNKNOWN = "no such task, or forgotten 24 hours after it ended"


@main.command("wait")
@click.argument("task_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=True),
    help="Save the result here: a file ending .mp4 or .mov, or a folder (one there, or a new "
    "name without an ending, made) where it is <task>.mp4.",
)
@click.option("--force", is_flag=True, help="Replace a file already at --output.")
@click.option("--timeout", type=float, help="Give up after this many seconds.")
@_FORMAT
def wait_command(
    task_id: str, output: str | None, force: bool, timeout: float | None, fmt: str
) -> None:
    """Wait for a task to end; with --output, download its result."""
    from retalk.client import TaskFailed, TransportError, WaitTimeout

    progress = _Progress()
    with _service() as client:
        if output:
            _wait_and_save(client, task_id, output, timeout, fmt, progress, overwrite=force)
            return
        again = f"retalk wait {task_id}"
        try:
            task = client.wait(task_id, timeout=timeout, on_update=progress.task(time.monotonic()))
        except KeyboardInterrupt:
            _fail(f"interrupted; task {task_id} goes on at the service: {again}", EXIT_INTERRUPTED)
        except TransportError as lost:
            _fail(f"{lost}; task {task_id} goes on at the service: {again}", EXIT_ENVIRONMENT)
        except TaskFailed as failed:
            progress.done()
            _emit(failed.task, fmt)
            sys.exit(EXIT_FINDINGS)
        except WaitTimeout as late:
            _fail(str(late), EXIT_FINDINGS)
        progress.done()
        _emit(task, fmt)


@main.command()
@click.argument("task_id")
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--force", is_flag=True, help="Replace a file already at PATH.")
@_FORMAT
def download(task_id: str, path: str, force: bool, fmt: str) -> None:
    """Download a finished task's result to PATH, verified: a file ending .mp4 or .mov, or a
    folder (one there, or a new name without an ending, made) where it is <task>.mp4; never
    over an existing file without --force. Exit 4: the link has expired."""
    progress = _Progress()
    with _service() as client:
        task = client.get(task_id)
        if not task.video_url:
            _emit(task, fmt)
            _fail(f"task {task_id} has no result to download ({task.status.value})", EXIT_FINDINGS)
        saved = client.download(task, path, progress.bytes("downloading"), overwrite=force)
        progress.done()
        _emit(task, fmt, saved)


@main.command()
@click.argument("task_id")
def cancel(task_id: str) -> None:
    """Cancel a task that is still PENDING."""
    with _service() as client:
        client.cancel(task_id)
        click.echo(printable(f"task {task_id}: CANCELED"))


_STATUSES = (
    "PENDING",
    "PRE-PROCESSING",
    "RUNNING",
    "POST-PROCESSING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
    "SUSPENDED",
    "UNKNOWN",
)


def _status(value: str | None) -> str | None:
    """A task status, in any case; a usage error listing them otherwise."""
    if value is None or value.upper() in _STATUSES:
        return value.upper() if value else None
    raise click.BadParameter(f"{value!r} is not a task status: {', '.join(_STATUSES)}")


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A time: `2026-11-30 14:00` or `2026-11-30T14:00:00` (local time unless it names its
    zone), `20261130140000`, or a while ago: `90m`, `2h`, `1d`."""
    from datetime import UTC, datetime, timedelta

    if value is None:
        return None
    text = value.strip()
    ago = re.fullmatch(r"(\d{1,6})([smhd])", text)
    if ago:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[ago.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(ago.group(1))})
    try:
        if re.fullmatch(r"\d{14}", text):
            when = datetime.strptime(text, "%Y%m%d%H%M%S")
        else:
            when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: 2026-11-30 14:00, 20261130140000, or 2h (ago)"
        ) from None
    return when.astimezone() if when.tzinfo is None else when


@main.command()
@click.option(
    "--status",
    "status_",
    callback=lambda ctx, param, value: _status(value),
    help="Only tasks in this status: " + ", ".join(_STATUSES) + ".",
)
@click.option("--since", callback=_when, help="Tasks submitted since (2026-11-30 14:00, 2h …).")
@click.option("--until", callback=_when, help="Tasks submitted until (default: now).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=10, show_default=True)
@_FORMAT
def tasks(
    status_: str | None,
    since: datetime | None,
    until: datetime | None,
    page: int,
    page_size: int,
    fmt: str,
) -> None:
    """List your VideoRetalk tasks, newest first. With --since or --until, every task of
    that window (across pages; the service looks back 24 hours at most per call)."""
    from datetime import UTC, datetime, timedelta

    status = status_
    with _service() as client:
        if since is None and until is None:
            listing = client.list(page, page_size, status)
            found, total = list(listing.tasks), listing.total
        else:
            end = until or datetime.now(UTC)
            start = since or end - timedelta(days=1)
            if start > end:
                _fail("--since is after --until", EXIT_USAGE)
            found = list(client.tasks_between(start, end, status))
            total = len(found)
    if fmt == "json":
        data: dict[str, Any] = {"total": total, "tasks": [t.to_dict() for t in found]}
        if since is None and until is None:
            data = {"page_no": listing.page_no, "page_size": listing.page_size, **data}
        click.echo(json.dumps(data, indent=2))
        return
    _table(found)
    if since is None and until is None:
        click.echo(f"{len(found)} of {total} tasks (page {listing.page_no})")
    else:
        click.echo(f"{total} tasks")


def _table(found: list[Task]) -> None:
    """The tasks as a table under a header row; their submit times in UTC."""
    width = max([len("TASK"), *(len(printable(t.task_id)) for t in found)])
    click.echo(f"{'TASK':<{width}}  {'STATUS':<16} SUBMITTED (UTC)")
    for task in found:
        submitted = _utc(task.submit_time) or printable(task.submit_time or "")
        line = f"{printable(task.task_id):<{width}}  {task.status.value:<16} {submitted}"
        click.echo(line.rstrip())
