"""`retalk batch MANIFEST --output-dir D` and `retalk batch status`: many jobs, resumable, within
the service's quotas (`retalk.jobs.batch`)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from retalk import limits
from retalk.cli.check import policy_or_exit
from retalk.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from retalk.cli.events import EventLine
from retalk.errors import EnvironmentProblem, LedgerError
from retalk.jobs.events import Event, State, Step
from retalk.report.escape import printable

if TYPE_CHECKING:
    from retalk.jobs.batch import Summary
    from retalk.jobs.ledger import Ledger, Record


class _Batch(click.Group):
    """`batch MANIFEST …` runs the manifest (`batch run`); `batch status …` reads a ledger."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_Batch)
def batch() -> None:
    """Run the jobs of a manifest (`retalk batch MANIFEST -d DIR`), or show a batch's ledger
    (`retalk batch status`).

    The manifest is CSV with a header, or JSON Lines: video, audio, and optionally ref,
    video_extension, query_face_threshold, name. Each job's state is kept in a ledger beside
    the manifest (MANIFEST.ledger.sqlite): running the same command again resumes the batch,
    never submitting a job twice. A manifest named `status` is run with `batch run status`.
    """


def _ledger_for(manifest: str, ledger: str | None) -> Path:
    return Path(ledger) if ledger else Path(f"{manifest}.ledger.sqlite")


def _folder_of(line: EventLine, ledger: str | None) -> None:
    """An explicit --ledger's folder must be there: made silently, a typo in it would be a new
    ledger, and every job run (and paid) again."""
    if ledger is not None and not Path(ledger).absolute().parent.is_dir():
        _fail(line, f"--ledger {ledger}: no folder {Path(ledger).parent}", EXIT_USAGE)


@batch.command("run")
@click.argument("manifest", type=click.Path(path_type=str, readable=False))
@click.option(
    "-d",
    "--output-dir",
    required=True,
    type=click.Path(path_type=str, file_okay=False),
    help="Where the results go, each named after its job.",
)
@click.option("--ledger", type=click.Path(path_type=str), help="The ledger to keep the states in.")
@click.option(
    "--max-in-flight",
    type=click.IntRange(1, 100),
    default=2,
    show_default=True,
    help="Unfinished tasks at once: the service runs one at a time and queued tasks count "
    "toward its 3-hour timeout.",
)
@click.option("--no-content", is_flag=True, help="Preflight on metadata only.")
@click.option("--force", is_flag=True, help="Submit jobs even when the preflight finds errors.")
@click.option(
    "--resubmit",
    is_flag=True,
    help="Run uncertain and failed jobs again (an uncertain one may then be paid twice).",
)
@click.option("--strict/--no-strict", default=None, help="Let the preflight's warnings block.")
@click.option("--config", type=click.Path(path_type=str, readable=False), help="The policy file.")
def run(
    manifest: str,
    output_dir: str,
    ledger: str | None,
    max_in_flight: int,
    no_content: bool,
    force: bool,
    resubmit: bool,
    strict: bool | None,
    config: str | None,
) -> None:
    """Run the jobs of MANIFEST, saving their results in --output-dir."""
    from retalk.cli.service import _service
    from retalk.client import Timing
    from retalk.jobs.batch import Batch
    from retalk.jobs.ledger import Ledger
    from retalk.jobs.manifest import ManifestError, read_manifest

    line = EventLine()
    timing = Timing.from_env()
    try:
        jobs = read_manifest(manifest)
    except ManifestError as error:
        _fail(line, str(error), EXIT_USAGE)
    policy = policy_or_exit(config, strict=strict)
    _folder_of(line, ledger)
    path = _ledger_for(manifest, ledger)
    try:
        opened = Ledger(path)
        opened.lock()
    except LedgerError as error:
        _fail(line, str(error), EXIT_ENVIRONMENT)
    names = {job.name for job in jobs}
    progress = _BatchProgress(line, len(jobs))
    with opened, _service() as client:
        runner = Batch(
            client,
            opened,
            jobs,
            Path(output_dir),
            policy=policy,
            content=not no_content,
            force=force,
            resubmit=resubmit,
            max_in_flight=max_in_flight,
            poll_interval=timing.poll_interval,
            on_event=progress,
        )
        try:
            try:
                summary = runner.run()
            except EnvironmentProblem as problem:
                _fail(line, str(problem), EXIT_ENVIRONMENT)
            except ValueError as mismatch:
                _fail(line, str(mismatch), EXIT_USAGE)
            except KeyboardInterrupt:
                _fail(
                    line,
                    "interrupted; the submitted tasks go on at the service: the same command "
                    "resumes the batch",
                    EXIT_INTERRUPTED,
                )
            except BaseException:
                line.clear()
                raise
            line.clear()
            records = [r for r in opened.records() if r.name in names]
        finally:
            # Written at the end of every run, an interrupted or failed one too.
            _write_page(opened, names, output_dir)
    _table(records, summary)
    sys.exit(EXIT_OK if summary.all_done else EXIT_FINDINGS)


def _write_page(ledger: Ledger, names: set[str | None], output_dir: str) -> None:
    """`report.html` in the output folder, from the ledger (a note on stderr when it cannot
    be written: the batch's outcome does not depend on it)."""
    from retalk.jobs.batch import summarize
    from retalk.report.batch_page import PAGE_NAME, render_batch_html
    from retalk.report.page import write_atomically

    folder = Path(output_dir)
    if not folder.is_dir():
        return  # nothing ran far enough to make it
    records = [r for r in ledger.records() if r.name in names]
    summary = summarize(records)
    try:
        page = render_batch_html(records, summary, _summary_line(summary), folder)
        write_atomically(folder / PAGE_NAME, page)
    except OSError as error:
        click.echo(
            printable(f"retalk: cannot write {folder / PAGE_NAME}: {error.strerror or error}"),
            err=True,
        )


class _BatchProgress:
    """The batch on one line: how many are done, what is happening now; warnings and failures
    as lines of their own."""

    def __init__(self, line: EventLine, jobs: int) -> None:
        self.line, self.jobs, self.done = line, jobs, 0

    def __call__(self, event: Event) -> None:
        if event.state is State.WARNING:
            self.line(event)
            return
        if event.step is Step.ADOPT and event.state is State.DONE and " " in event.detail:
            # "ID: run before …" names a task; "no task was made" does not.
            said = f"task {event.detail}" if ": " in event.detail else event.detail
            self.line.message(f"retalk: {event.job}: {said}")
            return
        if event.state is State.FAILED and event.step not in (Step.SUBMIT,):
            self.line.message(f"retalk: {event.job}: {event.step.value}: {event.detail}")
            return
        if event.step is Step.VERIFY and event.state is State.DONE:
            self.done += 1
        what = f"{event.step.value} {event.detail}".strip()
        now = f"{event.job}: {what}"
        if event.step is Step.ACCESS:
            now = "checking the key and the address"
        self.line.say(f"batch: {self.done}/{self.jobs} done; {now}")


def _table(records: list[Record], summary: Summary) -> None:
    """The summary table on stdout."""
    from retalk.jobs.ledger import JobState

    width = max((len(r.name) for r in records), default=4)
    for record in records:
        what = (record.result if record.state is JobState.DONE else record.code) or ""
        if record.state in (JobState.UNCERTAIN, JobState.FAILED, JobState.EXPIRED):
            what = f"{record.code}: {record.message}"
        if record.task_id is not None and record.attempt == 0:
            what += f" (task {record.task_id} of an earlier run: not submitted again)"
        click.echo(printable(f"{record.name:<{width}}  {record.state.value:<10} {what}"))
    click.echo(_summary_line(summary))


def _summary_line(summary: Summary) -> str:
    states = summary.states
    parts = [f"{states.get('done', 0)} of {summary.jobs} done"]
    if summary.failed:
        by_code = ", ".join(f"{code} {n}" for code, n in sorted(summary.failed.items()))
        parts.append(f"{states.get('failed', 0)} failed ({by_code})")
    if states.get("uncertain"):
        parts.append(f"{states['uncertain']} uncertain")
    if states.get("expired", 0) - summary.forgotten:
        lost = f": {summary.lost_s:.2f} s billed but not fetched" if summary.lost_s else ""
        parts.append(f"{states['expired'] - summary.forgotten} expired{lost}")
    if summary.forgotten:
        bills = "its bill" if summary.forgotten == 1 else "their bills"
        parts.append(f"{summary.forgotten} forgotten by the service: {bills} not known")
    ended = ("done", "failed", "uncertain", "expired")
    waiting = summary.jobs - sum(states.get(s, 0) for s in ended)
    if waiting:
        parts.append(f"{waiting} not finished")
    least = "at least " if summary.forgotten else ""
    parts.append(
        f"{least}{summary.billed_s:.2f} s billed, {summary.cost_cny:.2f} CNY at "
        f"{limits.PRICE_CNY_PER_S:g} CNY/s"
    )
    return "; ".join(parts)


@batch.command("status")
@click.argument("manifest", required=False, type=click.Path(path_type=str, readable=False))
@click.option("--ledger", type=click.Path(path_type=str), help="The ledger to read.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def status(manifest: str | None, ledger: str | None, fmt: str) -> None:
    """Where each job of a batch is, from its ledger (MANIFEST.ledger.sqlite, or --ledger),
    without asking the service. It can be read while the batch runs."""
    from retalk.jobs.batch import summarize
    from retalk.jobs.ledger import Ledger

    line = EventLine()
    if (manifest is None) == (ledger is None):
        raise click.UsageError("give the MANIFEST or --ledger, one of them")
    path = _ledger_for(manifest or "", ledger)
    if not path.is_file():
        _fail(line, f"no ledger at {path}: the batch has not run", EXIT_USAGE)
    try:
        with Ledger(path, readonly=True) as opened:
            records = opened.records()
    except LedgerError as error:
        _fail(line, str(error), EXIT_ENVIRONMENT)
    summary = summarize(records)
    if fmt == "json":
        data: dict[str, Any] = {
            "ledger": str(path),
            **summary.to_dict(),
            "jobs": [r.to_dict() for r in records],
        }
        click.echo(json.dumps(data, indent=2))
        return
    width = max((len(r.name) for r in records), default=4)
    for record in records:
        click.echo(printable(f"{record.name:<{width}}  {record.state.value:<10} {_what(record)}"))
    click.echo(_summary_line(summary))


def _what(record: Record) -> str:
    from retalk.jobs.ledger import JobState
    from retalk.jobs.runner import FORGOTTEN

    state = record.state
    if state is JobState.DONE:
        return f"{record.result} ({record.billed or 0:.2f} s billed)"
    if state in (JobState.FAILED, JobState.UNCERTAIN):
        return f"{record.code}: {record.message}"
    if state is JobState.EXPIRED and record.code == FORGOTTEN:
        return f"{record.code}: {record.message}"
    if state is JobState.EXPIRED:
        return f"the result expired at {_utc(record.expired_at)}"
    if state is JobState.SUBMITTED:
        # The ledger's, not the service's: a status read now could have moved on.
        seen = _utc(record.updated_at, "%H:%M UTC")
        return f"task {record.task_id} ({record.task_status or 'PENDING'} as last seen at {seen})"
    if state is JobState.SUBMITTING:
        sent = _utc(record.intent_at)
        return f"submit attempt {record.attempt} sent at {sent}, its answer not recorded"
    if state is JobState.UPLOADED:
        return f"uploaded; the uploads expire at {_utc(record.upload_expires)}"
    return ""


def _utc(moment: float | None, form: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    if moment is None:
        return "?"
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime(form)


def _fail(line: EventLine, message: str, code: int) -> NoReturn:
    line.message(f"retalk: {message}")
    sys.exit(code)
