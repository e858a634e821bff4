"""The commands that talk to the service: submit, status, wait, download, cancel, tasks; and
`retalk emulator`, a local stand-in for it. The client loads on first use: `retalk check`
does not pay for it."""

from __future__ import annotations

import json
import signal
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
from retalk.report import FORMATS, RenderOptions, render
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


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "oss://"))


def _reachable(url: str) -> str | None:
    """Why the service would not fetch `url` (its `InvalidURL.*` code), or None."""
    import httpx

    if url.startswith("oss://"):
        return None
    try:
        with httpx.stream("GET", url, headers={"Range": "bytes=0-0"}, timeout=10) as response:
            if response.status_code >= 400:
                return f"InvalidURL.ConnectionRefused: {url} answers HTTP {response.status_code}"
    except httpx.TimeoutException:
        return f"InvalidURL.Timeout: {url} does not answer"
    except httpx.HTTPError:
        return f"InvalidURL.ConnectionRefused: {url} refuses the connection"
    except httpx.InvalidURL:
        return f"InvalidURL.ConnectionRefused: {url} is not a URL that can be fetched"
    return None


def _output_for(video: str, output: str | None) -> Path:
    if output:
        return Path(output)
    stem = Path(video.split("?")[0]).stem or "result"
    return Path(f"{stem}-retalk.mp4")


@main.command()
@click.option("--video", required=True, help="A local file or an http(s)/oss URL.")
@click.option("--audio", required=True, help="A local file or an http(s)/oss URL.")
@click.option("--ref", help="A reference image of the face to re-voice.")
@click.option("--video-extension", is_flag=True, help="Extend the video to a longer audio.")
@click.option(
    "--query-face-threshold",
    type=click.IntRange(120, 200),
    help="How strictly the reference must match (120 loose … 200 strict; default 170).",
)
@click.option("--wait", "wait_", is_flag=True, help="Wait for the result and download it.")
@click.option("-o", "--output", type=click.Path(dir_okay=True), help="Where --wait saves it.")
@click.option("--timeout", type=float, help="Give up waiting after this many seconds.")
@click.option("--force", is_flag=True, help="Submit even when the preflight finds errors.")
@click.option("--no-content", is_flag=True, help="Preflight on metadata only.")
@click.option(
    "--report-format",
    type=click.Choice(list(FORMATS)),
    default="text",
    show_default=True,
    help="The format of the preflight's errors, printed on stderr when it finds any.",
)
@_FORMAT
def submit(
    video: str,
    audio: str,
    ref: str | None,
    video_extension: bool,
    query_face_threshold: int | None,
    wait_: bool,
    output: str | None,
    timeout: float | None,
    force: bool,
    no_content: bool,
    report_format: str,
    fmt: str,
) -> None:
    """Preflight the job, upload local files, submit, and with --wait fetch the result.

    The preflight runs first: when it finds an error nothing is uploaded (exit 1), unless
    --force; a Git LFS pointer (the file not pulled) is never uploaded. The task id is
    printed at once, so that `retalk wait ID` can come back to it.
    """
    from retalk.preflight import check_job

    if query_face_threshold is not None and not ref:
        raise click.UsageError("--query-face-threshold goes with --ref")

    def local(path: str | None) -> str | None:
        return path if path and not _is_url(path) else None

    try:
        report = check_job(
            video=local(video),
            audio=local(audio),
            ref=local(ref),
            video_extension=video_extension,
            content=not no_content,
        )
    except EnvironmentProblem as problem:
        _fail(str(problem), EXIT_ENVIRONMENT)
    # A pointer is only a warning in a check, but uploading one is a sure rejection: refused
    # even with --force.
    pointers = [f for f in report.findings if f.code == "File.LfsPointer"]
    if pointers:
        names = ", ".join(f.path for f in pointers)
        _fail(f"{names}: a Git LFS pointer, not the file: run `git lfs pull` first", EXIT_FINDINGS)
    urls = [url for url in (video, audio, ref) if url and _is_url(url)]
    unreachable = [why for why in map(_reachable, urls) if why]
    if not report.ok or unreachable:
        errors = report.filtered(select=["InvalidFile.", "File.Unreadable"])
        shown = render(errors, report_format, RenderOptions(quiet=True)) if errors.errors else ""
        for line in [shown, *unreachable]:
            if line:
                click.echo(line, err=True)
        if not force:
            _fail(
                "the service would reject this job: nothing was uploaded (--force submits anyway)",
                EXIT_FINDINGS,
            )
    progress = _Progress()
    with _service() as client:
        sent = {}
        for role, path in (("video", video), ("audio", audio), ("ref", ref)):
            if path:
                label = f"uploading {Path(path).name}"
                sent[role] = path if _is_url(path) else client.upload(path, progress.bytes(label))
        progress.done()
        task = client.submit(
            sent["video"], sent["audio"], sent.get("ref"), video_extension, query_face_threshold
        )
        if fmt == "text":
            click.echo(printable(f"task {task.task_id} submitted ({task.status.value})"))
        if not wait_:
            if fmt == "json":
                click.echo(json.dumps(task.to_dict(), indent=2))
            return
        _wait_and_save(client, task.task_id, _output_for(video, output), timeout, fmt, progress)


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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8900, show_default=True)
@click.option("--api-key", help="Accept only this key (default: any).")
@click.option("--result-lifetime", type=float, default=24 * 3600, help="Seconds a result lives.")
@click.option("--pending", type=float, default=0.5, help="Seconds a task stays PENDING.")
@click.option("--running", type=float, default=1.0, help="Least seconds a task is RUNNING.")
@click.option("--throttle-every", type=int, default=0, help="Answer every Nth request 429.")
@click.option("--error-every", type=int, default=0, help="Answer every Nth request 500.")
@click.option("--slow", type=float, default=0.0, help="Seconds to sit on every request.")
@click.option(
    "--drop-download-after",
    type=int,
    default=0,
    help="Cut a result's first download after N bytes.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Seconds a connection may send nothing (headers, or the next 64 KiB of a body).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Connections served at once; more are answered 503.",
)
def emulator(
    host: str,
    port: int,
    api_key: str | None,
    result_lifetime: float,
    pending: float,
    running: float,
    throttle_every: int,
    error_every: int,
    slow: float,
    drop_download_after: int,
    idle_timeout: float,
    max_connections: int,
) -> None:
    """Serve a local emulator of the VideoRetalk service until interrupted.

    Point the client at it with DASHSCOPE_HTTP_BASE_URL. It judges inputs with retalk's own
    preflight, fails tasks with the service's codes, and makes real results with ffmpeg.
    """
    from retalk.client.emulator import Emulator, Faults

    faults = Faults(
        throttle_every=throttle_every,
        error_every=error_every,
        slow=slow,
        drop_download_after=drop_download_after,
    )
    try:
        service = Emulator(
            host,
            port,
            api_key=api_key,
            result_lifetime=result_lifetime,
            pending_s=pending,
            running_s=running,
            faults=faults,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
    except OSError as error:
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}", EXIT_ENVIRONMENT)
    # Ctrl-C stops it, even when started with SIGINT ignored or blocked (as a background job
    # or from a thread that blocks it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    click.echo(f"emulator listening: export DASHSCOPE_HTTP_BASE_URL={service.base_url}", err=True)
    sys.stderr.flush()
    try:
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
