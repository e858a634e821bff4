"""A batch: the jobs of a manifest through one runner, within the service's quotas, resumable.

Each job's state lives in the ledger, so a batch killed at any point is resumed by running it
again: a job found `submitting` is looked up in the task list (adopted, or submitted again when
no task was made, or left uncertain); no job with a task id is submitted again; uploads too old
for a task to run on are redone; results not fetched are fetched (an expired link makes the job
`expired`, never a saved file); done, failed and uncertain jobs are left as they are. A ledger
left inconsistent (a job waiting to be submitted that has a task id, one submitted without) is
repaired or the job failed, and a job that makes no progress is failed with a message: no
ledger makes a batch spin or wait for ever. A result that cannot be saved (a full disk, a folder
that cannot be written) is told and left for the next run; the other jobs go on.

The quotas (`retalk.limits`): submits are spaced by the per-second limit; at most
`max_in_flight` tasks are unfinished at once; the in-flight tasks are polled with one list call
(their statuses), then one query each for those that ended, all within the queries' per-second
limit. `max_in_flight` is small by default (2): the service runs one task at a time per
account and queues the others, and a queued task's time counts toward its 3-hour timeout, so a
long queue would fail its last tasks; two keep the one worker busy (one runs, the next waits)
while the next job is checked and uploaded.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retalk import limits
from retalk.job import Job
from retalk.jobs.events import Listener, State, Step, ignore
from retalk.jobs.identity import job_key
from retalk.jobs.ledger import JobState, Ledger, Record
from retalk.jobs.runner import FORGOTTEN, Runner
from retalk.policy import SERVICE, Policy

if TYPE_CHECKING:
    from retalk.client import Client, Task

MAX_IN_FLIGHT = 2
"""Unfinished tasks at once, by default (see the module's note)."""
MAX_STEM_BYTES = 80
"""A result's file name, before `.mp4`, at most (UTF-8 bytes): a longer one is cut and ends
with a hash of the job's name, so that its temporary and numbered names fit too."""
_WAITING = (JobState.NEW, JobState.CHECKED, JobState.UPLOADED)


@dataclass(frozen=True)
class Summary:
    """A batch's end, from its ledger."""

    states: dict[str, int]
    """Jobs by state."""
    failed: dict[str, int]
    """Failed jobs by code."""
    billed_s: float
    """Seconds billed, every job whose task billed (`usage.video_duration` known) together,
    expired ones included; a task forgotten before its end was seen adds nothing (`forgotten`)."""
    jobs: int
    lost_s: float = 0.0
    """Of `billed_s`, the seconds of expired jobs: billed, and their results not fetched."""
    forgotten: int = 0
    """Of the expired jobs, those whose task the service forgot before its end was seen: what
    they billed is not known, and not in `billed_s`."""

    @property
    def cost_cny(self) -> float:
        """The bill for `billed_s`, at the service's price."""
        return self.billed_s * limits.PRICE_CNY_PER_S

    @property
    def all_done(self) -> bool:
        """Every job done."""
        return self.states.get(JobState.DONE.value, 0) == self.jobs

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data."""
        return {
            "jobs": self.jobs,
            "states": self.states,
            "failed": self.failed,
            "billed_s": round(self.billed_s, 3),
            "billed_not_fetched_s": round(self.lost_s, 3),
            "bill_unknown": self.forgotten,
            "cost_cny": round(self.cost_cny, 2),
            "price_cny_per_s": limits.PRICE_CNY_PER_S,
        }


def summarize(records: Iterable[Record]) -> Summary:
    """The counts of a ledger's jobs."""
    records = list(records)
    states = Counter(r.state.value for r in records)
    failed = Counter(r.code or "?" for r in records if r.state is JobState.FAILED)
    billed = sum(r.billed or 0.0 for r in records)
    lost = sum(r.billed or 0.0 for r in records if r.state is JobState.EXPIRED)
    forgotten = sum(r.state is JobState.EXPIRED and r.code == FORGOTTEN for r in records)
    return Summary(dict(states), dict(failed), billed, len(records), lost, forgotten)


@dataclass
class _Pace:
    """At most `rate` calls a second: `wait` sleeps until the next may go."""

    rate: float
    sleep: Callable[[float], None] = time.sleep
    _next: float = field(default=0.0)

    def wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.rate


class Batch:
    """The jobs of a manifest, run to their end (or as far as they can go) against the service,
    their states kept in `ledger`, their results saved in `output_dir`."""

    def __init__(
        self,
        client: Client,
        ledger: Ledger,
        jobs: list[Job],
        output_dir: Path,
        *,
        policy: Policy = SERVICE,
        content: bool = True,
        force: bool = False,
        resubmit: bool = False,
        max_in_flight: int = MAX_IN_FLIGHT,
        poll_interval: float = 1.0,
        on_event: Listener = ignore,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be 1 or more")
        self.client, self.ledger, self.jobs = client, ledger, jobs
        self.output_dir = output_dir
        self.resubmit, self.max_in_flight = resubmit, max_in_flight
        self.poll_interval = poll_interval
        self.runner = Runner(
            client, ledger, policy=policy, content=content, force=force, on_event=on_event
        )
        self.submits = _Pace(limits.SUBMITS_PER_S)
        self.queries = _Pace(limits.QUERIES_PER_S)
        self.peak_in_flight = 0
        """The most unfinished tasks seen at once."""
        self.unsaved: set[str] = set()
        """Jobs whose result could not be saved in this run: left for the next."""

    def emit(self, name: str, step: Step, state: State, detail: str = "") -> None:
        """Tell the listener."""
        self.runner.emit(name, step, state, detail)

    def prepare(self) -> list[Record]:
        """The ledger's rows of the manifest's jobs (added when new); with `resubmit`, its
        uncertain and failed jobs made new again. ValueError when the ledger has a job of the
        same name and other inputs."""
        records = []
        for job in self.jobs:
            assert job.name is not None
            record = self.ledger.get(job.name)
            if record is None:
                output = self.output_dir / f"{_file_stem(job.name)}.mp4"
                record = self.ledger.add(job.name, job_key(job), job, str(output))
            elif record.job != job:
                raise ValueError(
                    f"the ledger {self.ledger.path} holds a job {job.name!r} of other inputs or "
                    "parameters than the manifest's: name the job anew, or use another --ledger"
                )
            elif self.resubmit and record.state in (JobState.UNCERTAIN, JobState.FAILED):
                record = self.ledger.update(job.name, state=JobState.NEW, task_id=None)
            records.append(self._consistent(record))
        return records

    def _consistent(self, record: Record) -> Record:
        """The row, repaired when the ledger contradicts itself (two writers, a hand edit): a
        job waiting to be submitted that has a task id is that task's (followed, not paid
        again); a submitted one without a task id is failed, for the user to decide."""
        if record.state in _WAITING and record.task_id is not None:
            said = f"the ledger has its task {record.task_id}: followed, not submitted again"
            self.emit(record.name, Step.ADOPT, State.WARNING, said)
            return self.ledger.update(record.name, state=JobState.SUBMITTED)
        if record.state is JobState.SUBMITTED and record.task_id is None:
            return self._stuck(record, "the ledger has it submitted, without a task id")
        return record

    def _stuck(self, record: Record, why: str) -> Record:
        """Fail a job the ledger cannot take further, saying why."""
        said = f"{why}: --resubmit runs it again (it may then be paid twice)"
        self.emit(record.name, Step.SUBMIT, State.FAILED, said)
        return self.ledger.update(
            record.name, state=JobState.FAILED, code="Ledger.Inconsistent", message=said
        )

    def run(self) -> Summary:
        """Run every job as far as it goes; the summary of the ledger's jobs at the end."""
        from retalk.client import RateLimited

        names = [r.name for r in self.prepare()]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.runner.access()
        for record in self._records(names, JobState.SUBMITTING):
            self.runner.resolve(record)
        while True:
            in_flight = self._in_flight(names)
            self.peak_in_flight = max(self.peak_in_flight, len(in_flight))
            if in_flight:
                self._poll(in_flight)
            in_flight = self._in_flight(names)
            waiting = [self._consistent(r) for r in self._records(names, *_WAITING)]
            waiting = [r for r in waiting if r.state in _WAITING]
            if not in_flight and not waiting:
                break
            if waiting and len(in_flight) < self.max_in_flight:
                record = waiting[0]
                try:
                    record = self._ready(record)
                    if record.state is JobState.UPLOADED:
                        self.submits.wait()
                        self.runner.submit(record)
                except RateLimited:
                    self.emit(record.name, Step.SUBMIT, State.PROGRESS, "throttled: waiting")
                    time.sleep(1.0 / limits.SUBMITS_PER_S)
                continue
            # The next job checked and uploaded while the others run: ready when a slot frees.
            if waiting and waiting[0].state is not JobState.UPLOADED:
                self._ready(waiting[0])
                continue
            # A poll is one list call whatever the number of tasks: a steady interval costs
            # little, and notices an end at once (the queued task's successor goes in).
            time.sleep(self.poll_interval)
        return summarize(self._records(names))

    def _ready(self, record: Record) -> Record:
        """The job checked and uploaded (or failed by the preflight); or, when another ledger's
        run of the same job has a task still good, that task adopted (not paid twice)."""
        # Asked again right before each submit: a `retalk submit` of the same job may have come
        # while this one waited, checked or uploaded, for a slot.
        before_submit = (JobState.NEW, JobState.CHECKED, JobState.UPLOADED)
        if record.state in before_submit and not self.resubmit:
            known = self.runner.known_elsewhere(record)
            if known is not None:
                return self.runner.adopt_known(record, known)
        if record.state is JobState.NEW:
            record, _ = self.runner.check(record)
            if record.state is JobState.FAILED:  # refused by the preflight: its code kept
                return record
        before = record.state
        if record.state in (JobState.CHECKED, JobState.UPLOADED):
            record = self.runner.upload(record)
        if record.state is before and before is not JobState.UPLOADED:
            # Nothing moved it: going round again would spin for ever.
            return self._stuck(record, f"it stays {before.value}: nothing takes it further")
        return record

    def _poll(self, in_flight: list[Record]) -> None:
        """The in-flight tasks' statuses (one list call), then a query of each that ended (or
        that the list did not show), and its result fetched."""
        from retalk.client import TaskStatus

        self.queries.wait()
        listed = {t.task_id: t for t in self.client.list(1, 100).tasks}
        for record in in_flight:
            seen = listed.get(record.task_id or "")
            if seen is not None and not seen.status.finished:
                self.runner.seen(record, seen)
                continue
            assert record.task_id is not None
            self.queries.wait()
            task = self.client.get(record.task_id)
            record = self.runner.seen(record, task)
            if record.state is JobState.SUBMITTED and task.status is TaskStatus.SUCCEEDED:
                self._fetch(record, task)

    def _fetch(self, record: Record, task: Task) -> None:
        from retalk.client import InvalidAnswer

        try:
            self.runner.fetch(record, task)
        except InvalidAnswer as error:
            self.ledger.update(
                record.name, state=JobState.FAILED, code="Result.Invalid", message=str(error)
            )
        except OSError as error:
            # This job's result alone: the others go on; the next run fetches it again.
            where = f"{error.filename}: " if error.filename else ""
            said = f"cannot save the result: {where}{error.strerror or error}"
            self.emit(record.name, Step.DOWNLOAD, State.FAILED, f"{said}; the next run retries")
            self.ledger.update(record.name, code="Result.NotSaved", message=said)
            self.unsaved.add(record.name)

    def _in_flight(self, names: list[str]) -> list[Record]:
        """The submitted jobs this run still follows (not those whose result it could not
        save)."""
        found = self._records(names, JobState.SUBMITTED)
        return [r for r in found if r.name not in self.unsaved]

    def _records(self, names: list[str], *states: JobState) -> list[Record]:
        found = [r for r in map(self.ledger.get, names) if r is not None]
        return [r for r in found if not states or r.state in states]


_UNSAFE = re.compile(r"[^\w.-]+")


def _file_stem(name: str) -> str:
    """A job's name as a file name: letters and digits of any script, `.`, `-`, `_`; the rest
    `_`; cut to `MAX_STEM_BYTES`, with a hash of the whole name when cut."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "file"
    if len(cleaned.encode()) <= MAX_STEM_BYTES:
        return cleaned
    tag = hashlib.sha256(name.encode()).hexdigest()[:12]
    room = MAX_STEM_BYTES - len(tag) - 1
    cut = cleaned.encode()[:room].decode(errors="ignore").rstrip("._")
    return f"{cut}-{tag}"
