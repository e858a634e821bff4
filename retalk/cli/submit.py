"""`retalk submit`: parse the job, run it (`retalk.jobs.Runner`), render what happened."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from retalk.cli.check import policy_or_exit
from retalk.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_EXPIRED,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    main,
)
from retalk.cli.events import EventLine
from retalk.cli.service import _FORMAT, _emit, _service
from retalk.errors import EnvironmentProblem, LedgerError
from retalk.job import Job, Parameters
from retalk.report import FORMATS, RenderOptions, render

if TYPE_CHECKING:
    from retalk.jobs.runner import Outcome


def _output_for(video: str, output: str | None) -> Path:
    """Where the result goes: `-o` (a folder — one there, `out/`, or a new name without an
    ending, as `retalk download` reads it — gets the video's stem inside it), else
    `STEM-retalk.mp4` here."""
    from retalk.client.core import is_folder

    stem = Path(video.split("?")[0]).stem or "result"
    if not output:
        return Path(f"{stem}-retalk.mp4")
    try:
        folder = is_folder(output)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    return Path(output) / f"{stem}-retalk.mp4" if folder else Path(output)


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
@click.option(
    "--resubmit",
    is_flag=True,
    help="Submit even when this job (same inputs and parameters) was submitted already, or "
    "its submit's answer was lost: a possible duplicate, paid twice.",
)
@click.option("--no-content", is_flag=True, help="Preflight on metadata only.")
@click.option(
    "--strict/--no-strict",
    default=None,
    help="Let the preflight's warnings block the upload too (over the config's `strict`).",
)
@click.option(
    "--config",
    type=click.Path(path_type=str, readable=False),
    help="The policy file (pyproject.toml or .retalk.toml) instead of the nearest one.",
)
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
    resubmit: bool,
    no_content: bool,
    strict: bool | None,
    config: str | None,
    report_format: str,
    fmt: str,
) -> None:
    """Preflight the job, upload local files, submit, and with --wait fetch the result.

    The API key and the address are checked first; then the preflight: when it finds an error
    nothing is uploaded (exit 1), unless --force; its warnings are shown before any upload (a
    project policy's `strict` makes them block). A Git LFS pointer is never uploaded. The
    intent is recorded before the submit: an answer lost on the way is looked up in the task
    list, never sent again blindly; and a job submitted before (the same inputs and
    parameters) is not submitted again while its task is good, unless --resubmit.
    """
    from retalk.client import TransportError
    from retalk.jobs.identity import job_key
    from retalk.jobs.ledger import JobState, Ledger, user_ledger_path
    from retalk.jobs.runner import Runner

    if query_face_threshold is not None and not ref:
        raise click.UsageError("--query-face-threshold goes with --ref")
    job = Job(video, audio, ref, Parameters(video_extension, query_face_threshold))
    policy = policy_or_exit(config, strict=strict)
    target = _output_for(video, output)
    if wait_ and output and Path(output).exists() and not Path(output).is_dir():
        raise click.UsageError(f"{output} exists: results are never written over a file")
    line = EventLine(show_job=False)
    key = job_key(job)
    try:
        ledger = Ledger(user_ledger_path())
    except LedgerError as error:
        _fail(line, str(error), EXIT_ENVIRONMENT)
    with ledger, _service() as client:
        record = ledger.add(key, key, job, str(target))
        if record.job != job:  # the same bytes and parameters, given by other paths
            record = ledger.update(key, job=job)
        if record.output != str(target) and record.state not in (JobState.SUBMITTED,):
            record = ledger.update(key, output=str(target))
        runner = Runner(
            client, ledger, policy=policy, content=not no_content, force=force, on_event=line
        )
        shown = _Shown(line, fmt)
        runner.on_event = shown
        try:
            outcome = runner.run(
                record, wait=wait_, timeout=timeout, resubmit=resubmit, on_task=line.task
            )
        except EnvironmentProblem as problem:
            _fail(line, str(problem), EXIT_ENVIRONMENT)
        except TransportError as lost:
            now = ledger.get(key)
            if now is None or now.task_id is None or now.state is not JobState.SUBMITTED:
                raise
            _fail(
                line,
                f"{lost}; task {now.task_id} goes on at the service: retalk wait {now.task_id} "
                f"-o {shlex.quote(str(target))} fetches its result",
                EXIT_ENVIRONMENT,
            )
        except KeyboardInterrupt:
            now = ledger.get(key)
            task_id = now.task_id if now else None
            if task_id is None:
                _fail(line, "interrupted; nothing was submitted", EXIT_INTERRUPTED)
            _fail(
                line,
                f"interrupted; task {task_id} goes on at the service: "
                f"retalk wait {task_id} -o {shlex.quote(str(target))} fetches its result",
                EXIT_INTERRUPTED,
            )
        except BaseException:
            line.clear()
            raise
        line.clear()
        _render(outcome, line, fmt, report_format, target, wait_)


class _Shown:
    """The event line, and the task id on stdout as soon as it is known (`retalk wait ID`
    comes back to it)."""

    def __init__(self, line: EventLine, fmt: str) -> None:
        self.line, self.fmt = line, fmt

    def __call__(self, event: object) -> None:
        from retalk.jobs.events import Event, State, Step

        assert isinstance(event, Event)
        self.line(event)
        if self.fmt != "text" or event.state is not State.DONE:
            return
        if event.step is Step.SUBMIT:
            self.line.clear()
            click.echo(f"task {event.detail} submitted (PENDING)")
        elif event.step is Step.ADOPT and event.detail.count(" ") == 0:
            self.line.clear()
            click.echo(f"task {event.detail} submitted (its answer was lost: found and adopted)")


def _render(
    outcome: Outcome, line: EventLine, fmt: str, report_format: str, target: Path, waited: bool
) -> None:
    from retalk.jobs.ledger import JobState

    record, verdict = outcome.record, outcome.verdict
    if outcome.known is not None:
        known = outcome.known
        where = (
            f"its result was saved to {known.result}"
            if known.state is JobState.DONE and known.result
            else f"`retalk wait {known.task_id} -o {shlex.quote(str(target))}` fetches its result"
        )
        _fail(
            line,
            f"this job (the same inputs and parameters) was submitted already as task "
            f"{known.task_id}: {where}; --resubmit submits it again (and pays again)",
            EXIT_FINDINGS,
        )
    if record.state is JobState.UNCERTAIN:
        _fail(line, record.message or "the submit is uncertain", EXIT_FINDINGS)
    if record.state is JobState.FAILED and verdict is not None and record.code is not None:
        if record.code == "File.LfsPointer":
            _fail(line, record.message or "", EXIT_FINDINGS)
        if record.checked_at is None:  # the preflight refused it
            blocking = verdict.report.selected(verdict.blocking)
            shown = render(blocking, report_format, RenderOptions(quiet=True))
            if shown:
                click.echo(shown, err=True)
            errors = verdict.report.errors
            _fail(
                line,
                "the service would reject this job: nothing was uploaded (--force submits anyway)"
                if errors
                else "the project's policy makes these warnings block: nothing was uploaded "
                "(--force submits anyway)",
                EXIT_FINDINGS,
            )
    task = outcome.task
    if not waited or task is None:
        if record.state is JobState.FAILED:
            _fail(line, f"{record.code}: {record.message}", EXIT_FINDINGS)
        if fmt == "json" and task is not None:
            click.echo(json.dumps(task.to_dict(), indent=2))
        if record.state is JobState.SUBMITTED and record.task_id is not None:
            command = f"retalk wait {record.task_id} -o {shlex.quote(str(target))}"
            line.message(f"retalk: {command} fetches its result")
        return
    _emit(task, fmt, outcome.saved)
    if record.state is JobState.EXPIRED:
        _fail(line, f"task {task.task_id}: {record.message}", EXIT_EXPIRED)
    if record.state is not JobState.DONE:
        _fail(line, f"task {task.task_id}: {record.code}: {record.message}", EXIT_FINDINGS)


def _fail(line: EventLine, message: str, code: int) -> NoReturn:
    line.message(f"retalk: {message}")
    sys.exit(code)
