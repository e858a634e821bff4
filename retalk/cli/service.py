"""The commands that talk to the service: submit, status, wait, download, cancel, tasks; and
`retalk emulator`, a local stand-in for it. The client loads on first use: `retalk check`
does not pay for it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from retalk.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    main,
)
from retalk.errors import EnvironmentProblem
from retalk.report.escape import printable
from retalk.units import size_text

if TYPE_CHECKING:
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
    click.echo(f"retalk: {printable(message)}", err=True)
    sys.exit(code)


@contextmanager
def _service() -> Iterator[Client]:
    """A client, with the service's refusals turned into a line and an exit code: 3 when the
    way to the service fails (no answer, a wrong key, an answer that cannot be read), 1 when
    the service refuses the job."""
    from retalk.client import (
        ApiError,
        AuthenticationError,
        Client,
        InvalidAnswer,
        PermissionDenied,
        RateLimited,
        ServerError,
        TransportError,
    )

    try:
        with Client() as client:
            yield client
    except EnvironmentProblem as problem:
        _fail(str(problem), EXIT_ENVIRONMENT)
    except (
        TransportError,
        InvalidAnswer,
        AuthenticationError,
        PermissionDenied,
        RateLimited,
        ServerError,
    ) as e:
        _fail(str(e), EXIT_ENVIRONMENT)
    except ApiError as error:
        _fail(str(error), EXIT_FINDINGS)
    except OSError as error:  # a file to upload that went away, a folder that cannot be written
        where = f" {error.filename}" if error.filename else ""
        _fail(f"cannot use{where}: {error.strerror or error}", EXIT_FINDINGS)
    except ValueError as error:  # an empty task id, a threshold without a reference …
        _fail(str(error), EXIT_USAGE)


class _Progress:
    """One line on stderr, rewritten in place, when stderr is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self._last = 0.0

    def say(self, text: str, *, force: bool = False) -> None:
        if not self.live or (not force and time.monotonic() - self._last < 0.1):
            return
        self._last = time.monotonic()
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
        if self.live:
            click.echo("\r\033[K", err=True, nl=False)


def _wait_and_save(
    client: Client,
    task_id: str,
    target: Path,
    timeout: float | None,
    fmt: str,
    progress: _Progress,
) -> None:
    from retalk.client import TaskFailed, WaitTimeout

    try:
        task = client.wait(task_id, timeout=timeout, on_update=progress.task(time.monotonic()))
    except TaskFailed as failed:
        progress.done()
        _emit(failed.task, fmt)
        _fail(str(failed), EXIT_FINDINGS)
    except WaitTimeout as late:
        progress.done()
        _fail(str(late), EXIT_FINDINGS)
    except KeyboardInterrupt:
        progress.done()
        _fail(
            f"interrupted; task {task_id} goes on at the service: "
            f"retalk wait {task_id} -o {_quoted(target)} fetches its result",
            EXIT_INTERRUPTED,
        )
    try:
        saved = client.download(task, target, progress.bytes("downloading"))
    except KeyboardInterrupt:
        progress.done()
        _fail(
            f"interrupted; the download resumes with: retalk download {task_id} {_quoted(target)}",
            EXIT_INTERRUPTED,
        )
    progress.done()
    _emit(task, fmt, saved)


def _quoted(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def _emit(task: Task, fmt: str, saved: Path | None = None) -> None:
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
        line += f", {task.usage.video_duration:g} s billed"
    if saved is not None:
        line += f"; saved {saved}"
    elif task.video_url:
        line += f"; result at {task.video_url} (24 hours)"
    click.echo(printable(line))


@main.command()
@click.argument("task_id")
@_FORMAT
def status(task_id: str, fmt: str) -> None:
    """Where a task is."""
    with _service() as client:
        _emit(client.get(task_id), fmt)


@main.command("wait")
@click.argument("task_id")
@click.option("-o", "--output", type=click.Path(dir_okay=True), help="Save the result here.")
@click.option("--timeout", type=float, help="Give up after this many seconds.")
@_FORMAT
def wait_command(task_id: str, output: str | None, timeout: float | None, fmt: str) -> None:
    """Wait for a task to end; with --output, download its result."""
    from retalk.client import TaskFailed, WaitTimeout

    progress = _Progress()
    with _service() as client:
        if output:
            _wait_and_save(client, task_id, Path(output), timeout, fmt, progress)
            return
        try:
            task = client.wait(task_id, timeout=timeout, on_update=progress.task(time.monotonic()))
        except KeyboardInterrupt:
            progress.done()
            _fail(f"interrupted; task {task_id} goes on at the service", EXIT_INTERRUPTED)
        except TaskFailed as failed:
            progress.done()
            _emit(failed.task, fmt)
            sys.exit(EXIT_FINDINGS)
        except WaitTimeout as late:
            progress.done()
            _fail(str(late), EXIT_FINDINGS)
        progress.done()
        _emit(task, fmt)


@main.command()
@click.argument("task_id")
@click.argument("path", type=click.Path(dir_okay=True))
@_FORMAT
def download(task_id: str, path: str, fmt: str) -> None:
    """Download a finished task's result to PATH (a file, or a folder to put it in)."""
    progress = _Progress()
    with _service() as client:
        task = client.get(task_id)
        if not task.video_url:
            _emit(task, fmt)
            _fail(f"task {task_id} has no result to download ({task.status.value})", EXIT_FINDINGS)
        saved = client.download(task, path, progress.bytes("downloading"))
        progress.done()
        _emit(task, fmt, saved)


@main.command()
@click.argument("task_id")
def cancel(task_id: str) -> None:
    """Cancel a task that is still PENDING."""
    with _service() as client:
        client.cancel(task_id)
        click.echo(printable(f"task {task_id}: CANCELED"))


@main.command()
@click.option("--status", "status_", help="Only tasks in this status (PENDING, SUCCEEDED …).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=10, show_default=True)
@_FORMAT
def tasks(status_: str | None, page: int, page_size: int, fmt: str) -> None:
    """List your VideoRetalk tasks, newest first."""
    with _service() as client:
        listing = client.list(page, page_size, status_.upper() if status_ else None)
    if fmt == "json":
        data = {"page_no": listing.page_no, "page_size": listing.page_size, "total": listing.total}
        click.echo(json.dumps({**data, "tasks": [t.to_dict() for t in listing.tasks]}, indent=2))
        return
    for task in listing.tasks:
        click.echo(printable(f"{task.task_id}  {task.status.value:<16} {task.submit_time or ''}"))
    click.echo(f"{len(listing.tasks)} of {listing.total} tasks (page {listing.page_no})")
