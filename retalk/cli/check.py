"""`retalk check` and `retalk ref-frame`."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

import click

from retalk import limits
from retalk.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from retalk.cli.progress import progress_bar
from retalk.errors import EnvironmentProblem, PolicyError
from retalk.findings import Report
from retalk.job import Parameters
from retalk.policy import Policy, fails, kept_anyway, load_policy
from retalk.preflight import check_job, check_paths, find_media
from retalk.report import FORMATS, RenderOptions, render
from retalk.report.escape import printable

if TYPE_CHECKING:
    from retalk.preflight.visuals import MediaView


def _prefixes(values: tuple[str, ...]) -> tuple[str, ...]:
    # Empty parts are kept, for `check_prefixes` to refuse: `--ignore ""` must not pass.
    return tuple(p.strip() for value in values for p in value.split(","))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str, readable=False))
@click.option(
    "--video",
    type=click.Path(path_type=str, readable=False),
    help="The job's video (input.video_url).",
)
@click.option(
    "--audio",
    type=click.Path(path_type=str, readable=False),
    help="The job's speech (input.audio_url).",
)
@click.option(
    "--ref", type=click.Path(path_type=str, readable=False), help="The reference face image."
)
@click.option(
    "--video-extension",
    is_flag=True,
    help="The job will set parameters.video_extension (job form only).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="text",
    show_default=True,
    help="text for people, json, github (Actions annotations), sarif (code scanning), junit.",
)
@click.option(
    "--no-content",
    is_flag=True,
    help="Metadata only: no face or speech analysis (a first frame is still decoded).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Errors and warnings only (no info findings, in every format); text also leaves out "
    "facts, fixes and the verdict.",
)
@click.option(
    "--select",
    multiple=True,
    metavar="PREFIX",
    help="Only codes starting with PREFIX (the longest prefix of --select and --ignore decides; "
    "File.Unreadable and File.CheckFailed are always kept).",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="PREFIX",
    help="Drop codes starting with PREFIX (never File.Unreadable, File.CheckFailed).",
)
@click.option(
    "--strict/--no-strict",
    default=None,
    help="Exit 1 on warnings too (over the config's `strict`).",
)
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=str, readable=False),
    help="The policy file (pyproject.toml or .retalk.toml) instead of the nearest one.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Worker processes for many files (default: the CPU count).",
)
@click.option("--no-cache", is_flag=True, help="Check every file afresh; store no result.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=str, readable=False),
    metavar="PAGE",
    help="Also write the check as one self-contained HTML page (frames, face timeline, "
    "waveform, the job's forecast); its files are checked afresh, in this process.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --html: replace PAGE even when it is not a page retalk wrote (never an input, "
    "a folder, a link or a device).",
)
@click.option(
    "--download",
    is_flag=True,
    help="Fetch http(s) URLs whole (to a temporary file, at most the size limit) to analyse "
    "their faces and speech; without it, a URL's metadata is read by range requests only.",
)
@click.option(
    "--url-timeout",
    type=click.FloatRange(min=0, max=limits.URL_DOWNLOAD_TIMEOUT_S, min_open=True),
    metavar="S",
    help=f"Seconds a URL must download within (default: the service's "
    f"{limits.URL_DOWNLOAD_TIMEOUT_S}; shorter for a quicker verdict).",
)
def check(
    paths: tuple[str, ...],
    video: str | None,
    audio: str | None,
    ref: str | None,
    video_extension: bool,
    fmt: str,
    no_content: bool,
    quiet: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    strict: bool | None,
    config: str | None,
    jobs: int | None,
    no_cache: bool,
    html_path: str | None,
    force: bool,
    download: bool,
    url_timeout: float | None,
) -> None:
    """Give the service's verdict on media files, with its own error codes.

    PATHS are files, or folders searched for media files, or http(s) URLs (read as the
    service would fetch them); each is checked in the role its content says. The job form
    (--video, --audio, --ref, each a file or a URL) checks each input in its role.
    Put `--` before a path that starts with a dash. Results of files checked before (the
    same bytes) come from the cache (`retalk cache info`); others are checked by --jobs
    worker processes. The job form is never cached.
    """
    job_form = any(p is not None for p in (video, audio, ref))
    if job_form and paths:
        raise click.UsageError("give PATHS or the job form (--video/--audio/--ref), not both")
    if video_extension and not job_form:
        raise click.UsageError("--video-extension belongs to the job form (--video, --audio)")
    if not job_form and not paths:
        raise click.UsageError("nothing to check: give PATHS, or the job's --video and --audio")
    if force and html_path is None:
        raise click.UsageError("--force belongs with --html (it lets the page replace a file)")
    policy = policy_or_exit(config, select=select, ignore=ignore, strict=strict)
    found = find_media(paths) if paths else []
    if paths and not found:
        raise click.UsageError(f"no media files found in {', '.join(paths)}")
    views: dict[str, MediaView] | None = None
    if html_path is not None:
        _check_page_path(html_path, [*found, *(p for p in (video, audio, ref) if p)], force)
        views = {}

    try:
        if job_form:
            report = check_job(
                video=video,
                audio=audio,
                ref=ref,
                parameters=Parameters(video_extension=video_extension),
                content=not no_content,
                policy=policy,
                download=download,
                url_timeout=url_timeout,
                views=views,
            )
        else:
            with progress_bar() as progress:
                report = check_paths(
                    paths,
                    content=not no_content,
                    policy=policy,
                    jobs=jobs,
                    cache=not no_cache,
                    progress=progress,
                    download=download,
                    url_timeout=url_timeout,
                    views=views,
                )
    except EnvironmentProblem as problem:
        click.echo(f"retalk: {problem}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    except KeyboardInterrupt:
        click.echo("retalk: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)

    # The verdict line (and the machine formats' failing findings) agree with the exit code.
    options = RenderOptions(quiet=quiet, strict=policy.strict)
    output = render(report, fmt, options)
    if output:
        click.echo(output)
    if html_path is not None:
        from retalk.report.html import render_html

        page = render_html(report, views, options, content=not no_content)
        _write_page(html_path, page, force)
    _note_kept_anyway(report, policy)
    sys.exit(_exit_code(report, policy))


def _check_page_path(path: str, inputs: list[str], force: bool) -> None:
    """The page's path before any check (exit 2 otherwise): in a folder that exists; not a
    folder, link, device, FIFO or socket; not one of the files to check (those found in the
    folders given too); and, without `force`, not a file other than a page retalk wrote."""
    from retalk.report.page import refusal

    where = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise click.BadParameter(f"{printable(path)} is a folder", param_hint="'--html'")
    if not os.path.isdir(where):
        raise click.BadParameter(
            f"{printable(path)}: no folder {printable(where)}", param_hint="'--html'"
        )
    if _is_an_input(path, inputs):
        raise click.BadParameter(
            f"{printable(path)} is an input of the check", param_hint="'--html'"
        )
    why = refusal(path, force=force)
    if why is not None:
        raise click.BadParameter(f"{printable(path)} {why}", param_hint="'--html'")


def _is_an_input(path: str, inputs: list[str]) -> bool:
    """Whether `path` is the same file as one of `inputs` (by device and inode: another name,
    a hard link or a symlink to it is the same file)."""
    try:
        page = os.stat(path)
    except OSError:
        return False  # not there yet: no input can be it
    for given in inputs:
        with contextlib.suppress(OSError, ValueError):
            found = os.stat(given)
            if (found.st_dev, found.st_ino) == (page.st_dev, page.st_ino):
                return True
    return False


def _write_page(path: str, page: str, force: bool) -> None:
    from retalk.report.page import write_atomically

    try:
        write_atomically(path, page, force=force)
    except OSError as error:
        # A refusal's strerror says why: "is a FIFO, not a regular file".
        click.echo(printable(f"retalk: cannot write {path}: {error.strerror or error}"), err=True)
        sys.exit(EXIT_USAGE)


def _note_kept_anyway(report: Report, policy: Policy) -> None:
    """Say on stderr when the selection would have dropped a file's `File.Unreadable` or
    `File.CheckFailed`: no selection drops those (a file not judged never passes)."""
    codes = sorted({f.code for f in report.findings if kept_anyway(f, policy)})
    if codes:
        click.echo(
            f"retalk: note: {' and '.join(codes)} kept although the selection drops it: a file "
            "that was not read or not judged never passes",
            err=True,
        )


def policy_or_exit(
    config: str | None,
    *,
    select: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
    strict: bool | None = None,
) -> Policy:
    """The policy in force (the config file, then the command line's options over it); a
    mistake in either is one line and exit 2."""
    try:
        return load_policy(
            config,
            select=_prefixes(select) if select else None,
            ignore=_prefixes(ignore) if ignore else None,
            strict=strict,
        )
    except PolicyError as error:
        click.echo(printable(f"retalk: {error}"), err=True)
        sys.exit(EXIT_USAGE)


def _exit_code(report: Report, policy: Policy) -> int:
    return EXIT_FINDINGS if fails(report, policy) else EXIT_OK


@main.command("ref-frame")
@click.argument("video", type=click.Path(path_type=str, readable=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=str, dir_okay=False),
    required=True,
    help="The image to write, in the format its ending names: .jpg, .jpeg, .png, .webp, .bmp.",
)
def ref_frame(video: str, output: str) -> None:
    """Write the frame of VIDEO that shows the target face most frontally and largest, cut to
    that face, as a reference image (input.ref_image_url)."""
    from retalk.preflight.ref_frame import image_format, write_ref_frame

    try:
        image_format(output)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'-o' / '--output'") from None
    try:
        report, written = write_ref_frame(video, output)
    except EnvironmentProblem as problem:
        click.echo(f"retalk: {problem}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    except OSError as error:
        click.echo(f"retalk: cannot write {output}: {error.strerror or error}", err=True)
        sys.exit(EXIT_FINDINGS)
    if written is None:
        problems = render(report.filtered(ignore=["Face.Gaps"]), "text", RenderOptions(quiet=True))
        click.echo(problems or f"{video}: no face in the sampled frames", err=True)
        click.echo(f"retalk: no reference written: {video} shows no face to cut", err=True)
        sys.exit(EXIT_FINDINGS)
    face, (_, _, width, height) = written.face, written.box
    click.echo(
        f"wrote {written.path}: the frame at {written.t:.2f} s, {width}x{height} px around the "
        f"face ({face.size * 100:.0f}% of the frame, turned {abs(face.yaw or 0):.0f}°)"
    )
    if not written.report.ok:
        click.echo(render(written.report, "text", RenderOptions(quiet=True)), err=True)
        sys.exit(EXIT_FINDINGS)
