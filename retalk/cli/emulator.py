"""`retalk emulator`: a local stand-in for the service, served until interrupted."""

from __future__ import annotations

import signal
import sys
import tempfile

import click

from retalk import limits
from retalk.cli.common import EXIT_ENVIRONMENT, main
from retalk.cli.service import _fail

_STOPS = {signal.SIGINT, signal.SIGTERM}


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8900, show_default=True)
@click.option("--api-key", help="Accept only this key (default: any).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Tasks worked on at once (the service: 1); the others wait PENDING, in submit order.",
)
@click.option(
    "--submit-rate",
    type=click.FloatRange(min=0),
    default=limits.SUBMITS_PER_S,
    show_default=True,
    help="Submits a second before 429 Throttling.RateQuota (0: no quota).",
)
@click.option(
    "--query-rate",
    type=click.FloatRange(min=0),
    default=limits.QUERIES_PER_S,
    show_default=True,
    help="Queries (of a task, of the list) a second before 429 (0: no quota).",
)
@click.option(
    "--pending",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Least seconds a task stays PENDING.",
)
@click.option(
    "--processing",
    type=click.FloatRange(min=0),
    default=0.2,
    show_default=True,
    help="Least seconds a task is PRE-PROCESSING, and POST-PROCESSING.",
)
@click.option(
    "--running",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Least seconds a task is RUNNING.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Divide the timeout, the forgetting, the result links' and the uploads' lifetimes by "
    "this (3600: an hour lasts a second); times stay the wall clock's.",
)
@click.option(
    "--task-timeout",
    type=click.FloatRange(min=0),
    default=limits.TASK_TIMEOUT_S,
    show_default=True,
    help="Seconds (divided by --time-scale) from submit after which an unfinished task fails "
    "(InternalError.Timeout).",
)
@click.option(
    "--retention",
    type=click.FloatRange(min=0),
    default=limits.TASK_RETENTION_S,
    show_default=True,
    help="Seconds (divided by --time-scale) after its end that a task is forgotten "
    "(queries: UNKNOWN).",
)
@click.option(
    "--result-lifetime",
    type=float,
    default=limits.RESULT_URL_LIFETIME_S,
    show_default=True,
    help="Seconds (divided by --time-scale) after its task's end that a result link lives.",
)
@click.option(
    "--upload-lifetime",
    type=click.FloatRange(min=0),
    default=limits.UPLOAD_LIFETIME_S,
    show_default=True,
    help="Seconds (divided by --time-scale) an uploaded file lives.",
)
@click.option("--throttle-every", type=int, default=0, help="Answer every Nth request 429.")
@click.option("--error-every", type=int, default=0, help="Answer every Nth request 500.")
@click.option(
    "--drop-submit-answer-every",
    type=click.IntRange(min=0),
    default=0,
    help="Make the task of every Nth submit, then close the connection without an answer.",
)
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
    workers: int,
    submit_rate: float,
    query_rate: float,
    pending: float,
    processing: float,
    running: float,
    time_scale: float,
    task_timeout: float,
    retention: float,
    result_lifetime: float,
    upload_lifetime: float,
    throttle_every: int,
    error_every: int,
    drop_submit_answer_every: int,
    slow: float,
    drop_download_after: int,
    idle_timeout: float,
    max_connections: int,
) -> None:
    """Serve a local emulator of the VideoRetalk service until interrupted.

    Point the client at it with DASHSCOPE_HTTP_BASE_URL. It judges inputs with retalk's own
    preflight, fails tasks with the service's codes, and makes real results with ffmpeg, one
    task at a time (--workers). GET /_emulator/state shows its tasks and counters.
    """
    from retalk.emulator import Emulator, Faults

    faults = Faults(
        throttle_every=throttle_every,
        error_every=error_every,
        slow=slow,
        drop_download_after=drop_download_after,
        drop_submit_answer_every=drop_submit_answer_every,
    )
    # Neither Ctrl-C nor SIGTERM may land between the storage's making and the `finally` that
    # removes it.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        service = Emulator(
            host,
            port,
            api_key=api_key,
            workers=workers,
            submit_rate=submit_rate,
            query_rate=query_rate,
            pending_s=pending,
            processing_s=processing,
            running_s=running,
            time_scale=time_scale,
            task_timeout=task_timeout,
            retention=retention,
            result_lifetime=result_lifetime,
            upload_lifetime=upload_lifetime,
            faults=faults,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
    except OSError as error:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}", EXIT_ENVIRONMENT)
    # What the preflight leaves in temporary files while it judges a task goes inside the
    # storage, and goes with it.
    scratch = service.storage / "tmp"
    scratch.mkdir()
    tempfile.tempdir = str(scratch)
    try:
        # Ctrl-C stops it, even when started with SIGINT ignored or blocked (as a background
        # job or from a thread that blocks it).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        click.echo(
            f"emulator listening: export DASHSCOPE_HTTP_BASE_URL={service.base_url}", err=True
        )
        sys.stderr.flush()
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)  # a second signal cannot cut this short
        service.stop()
