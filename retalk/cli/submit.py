"""`retalk submit`: preflight a job, upload its local files, submit it, and with --wait fetch
its result."""

from __future__ import annotations

import json
from pathlib import Path

import click

from retalk.cli.common import EXIT_ENVIRONMENT, EXIT_FINDINGS, main
from retalk.cli.service import _FORMAT, _fail, _Progress, _service, _wait_and_save
from retalk.errors import EnvironmentProblem
from retalk.job import Parameters
from retalk.report import FORMATS, RenderOptions, render
from retalk.report.escape import printable


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
            sent["video"],
            sent["audio"],
            sent.get("ref"),
            Parameters(video_extension, query_face_threshold),
        )
        if fmt == "text":
            click.echo(printable(f"task {task.task_id} submitted ({task.status.value})"))
        if not wait_:
            if fmt == "json":
                click.echo(json.dumps(task.to_dict(), indent=2))
            return
        _wait_and_save(client, task.task_id, _output_for(video, output), timeout, fmt, progress)
