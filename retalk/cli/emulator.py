"""`retalk emulator`: a local stand-in for the service, served until interrupted."""

from __future__ import annotations

import signal
import sys

import click

from retalk.cli.common import EXIT_ENVIRONMENT, main
from retalk.cli.service import _fail


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
    from retalk.emulator import Emulator, Faults

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
