"""The job runner: access → gate → upload → submit safely → wait → download → verify, each step
recorded in a ledger and told as events. `retalk submit` runs one job through `run`; a batch
calls the steps one by one, to keep several jobs going within the service's quotas.

    with Client() as client, Ledger(user_ledger()) as ledger:
        outcome = Runner(client, ledger).run(ledger.add(...), output=Path("out.mp4"))
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retalk import limits
from retalk.job import Job, is_url
from retalk.jobs.adopt import SUBMIT_SETTLE_S, attempt_end, look_up, same_length
from retalk.jobs.events import Event, Listener, State, Step, ignore
from retalk.jobs.gate import Verdict, gate
from retalk.jobs.ledger import JobState, Ledger, Record
from retalk.policy import SERVICE, Policy

if TYPE_CHECKING:
    from retalk.client import Client, Task

UPLOAD_MARGIN_S = limits.TASK_TIMEOUT_S
"""An upload is redone when it has less than this left to live: a submitted task may wait and
run for up to 3 hours, and the service fetches its inputs when it runs."""
FORGOTTEN = "Task.Forgotten"
"""The code of an expired job whose task the service forgot (24 hours after its end) before a
run saw it end: its result and its bill are not known."""
NOT_THIS_JOBS = "Submit.NotThisJob"
"""The code of an uncertain job whose adopted task turned out to be another's."""


@dataclass(frozen=True)
class Outcome:
    """Where a run of one job left it."""

    record: Record
    """The job's ledger row, as the run left it."""
    verdict: Verdict | None = None
    """The preflight's verdict, when this run checked the job."""
    task: Task | None = None
    """The task as last seen."""
    saved: Path | None = None
    """The result, when this run saved it."""
    known: Record | None = None
    """The earlier run of the same job (same inputs, same parameters) whose task is still
    good: nothing was submitted, to not pay twice."""


class Runner:
    """Runs jobs of a ledger against the service. `force`: submit despite the preflight's
    errors (never a Git LFS pointer). `content`: the preflight analyses faces and speech."""

    def __init__(
        self,
        client: Client,
        ledger: Ledger,
        *,
        policy: Policy = SERVICE,
        content: bool = True,
        force: bool = False,
        on_event: Listener = ignore,
        settle: float = SUBMIT_SETTLE_S,
    ) -> None:
        self.client, self.ledger, self.policy = client, ledger, policy
        self.settle = settle
        """Seconds after a lost submit's intent before an empty task list proves that it made
        no task (`retalk.jobs.adopt.SUBMIT_SETTLE_S`)."""
        self.answers: dict[str, Task] = {}
        """Job name → the task its submit was answered with (or that was adopted)."""
        self.content, self.force, self.on_event = content, force, on_event
        self.uploads: dict[str, tuple[str, float]] = {}
        """A file's SHA-256 → its upload's `oss://` URL and when it expires."""

    def emit(self, name: str, step: Step, state: State, detail: str = "", **more: Any) -> None:
        """Tell the listener."""
        self.on_event(Event(name, step, state, detail, **more))

    # The steps.
    def access(self) -> None:
        """The key and the base URL, checked before anything else (a second, not after the
        preflight's seconds)."""
        self.emit("", Step.ACCESS, State.STARTED)
        self.client.check_access()
        self.emit("", Step.ACCESS, State.DONE)

    def check(self, record: Record) -> tuple[Record, Verdict]:
        """The preflight: errors (and strict warnings) block unless forced; a Git LFS pointer
        always does; the other warnings are told (WARNING events) before any upload."""
        name = record.name
        started = time.monotonic()
        self.emit(name, Step.CHECK, State.STARTED)
        verdict = gate(record.job, self.policy, self.content)
        elapsed = time.monotonic() - started
        summary = {**verdict.summary(self.force), **_forecast(verdict)}
        if verdict.pointers:
            paths = ", ".join(f.path for f in verdict.pointers)
            message = f"{paths}: a Git LFS pointer, not the file: run `git lfs pull` first"
            record = self._failed(record, "File.LfsPointer", message, verdict=summary)
            self.emit(name, Step.CHECK, State.FAILED, message, elapsed=elapsed)
            return record, verdict
        if not verdict.passed and not self.force:
            first = verdict.blocking[0]
            said = f"the preflight: {first.message}"
            record = self._failed(record, first.code, said, verdict=summary)
            self.emit(name, Step.CHECK, State.FAILED, f"{first.code}: {first.message}",
                      elapsed=elapsed)  # fmt: skip
            return record, verdict
        if not verdict.passed:  # forced: the errors it overrides, told before the upload
            for finding in verdict.blocking:
                said = f"error: {finding.path}: {finding.code}: {finding.message}"
                self.emit(name, Step.CHECK, State.WARNING, said)
            self.emit(name, Step.CHECK, State.WARNING, "submitting anyway (--force)")
        # The warnings, told before anything is uploaded (a refused job shows its errors).
        for finding in verdict.warnings:
            said = f"{finding.path}: {finding.code}: {finding.message}"
            self.emit(name, Step.CHECK, State.WARNING, said)
        record = self.ledger.update(
            name, state=JobState.CHECKED, verdict=summary, checked_at=time.time()
        )
        self.emit(name, Step.CHECK, State.DONE, elapsed=elapsed)
        return record, verdict

    def upload(self, record: Record) -> Record:
        """The local inputs into temporary storage, unless uploads of them still live long
        enough for a task to run; URLs are passed as they are."""
        name, job = record.name, record.job
        now = time.time()
        fresh = record.upload_expires is None or record.upload_expires - now > UPLOAD_MARGIN_S
        if record.urls and set(record.urls) == set(job.inputs()) and fresh:
            if record.state is JobState.UPLOADED:
                return record
            return self.ledger.update(name, state=JobState.UPLOADED)  # a ledger left `checked`
        started = time.time()
        urls: dict[str, str] = {}
        expires: list[float] = []
        for role, source in job.inputs().items():
            if is_url(source):
                urls[role] = source
                continue
            urls[role], until = self._upload_once(name, source)
            expires.append(until)
        return self.ledger.update(
            name,
            state=JobState.UPLOADED,
            urls=urls,
            uploaded_at=started,
            upload_expires=min(expires) if expires else None,
        )

    def _upload_once(self, name: str, source: str) -> tuple[str, float]:
        """A local file's `oss://` URL and when it expires: an upload of the same bytes this
        runner made is reused while it lives long enough for a task to run; else uploaded."""
        from retalk.jobs.identity import file_digest

        try:
            digest: str | None = file_digest(source)
        except OSError:
            digest = None
        known = self.uploads.get(digest) if digest else None
        if known is not None and known[1] - time.time() > UPLOAD_MARGIN_S:
            return known
        label = os.path.basename(source)
        started = time.time()
        began = time.monotonic()
        self.emit(name, Step.UPLOAD, State.STARTED, label)
        url = self.client.upload(source, self._bytes(name, Step.UPLOAD, label))
        self.emit(name, Step.UPLOAD, State.DONE, label, elapsed=time.monotonic() - began)
        uploaded = (url, started + limits.UPLOAD_LIFETIME_S)
        if digest:
            self.uploads[digest] = uploaded
        return uploaded

    def submit(self, record: Record) -> Record:
        """Submit once: the intent is recorded first; a lost answer is looked up in the task
        list (`resolve`), never sent again blindly. A refusal of the job (400) fails it; a
        refusal that is not the job's (throttled, the service down, the key) is raised, the
        job left ready to submit."""
        from retalk.client import (
            ApiStatusError,
            InvalidRequest,
            NotFound,
            SubmitLost,
            TransportError,
        )

        name = record.name
        record = self.ledger.intend(name)
        began = time.monotonic()
        self.emit(name, Step.SUBMIT, State.STARTED, f"attempt {record.attempt}")
        try:
            task = self.client.submit(
                record.urls["video"],
                record.urls["audio"],
                record.urls.get("ref"),
                record.job.parameters,
            )
        except SubmitLost:
            # Sent, and no answer: the service may have made the task. Look before anything.
            self.emit(name, Step.SUBMIT, State.FAILED, "its answer was lost: looking for the task")
            resolved = self.resolve(self.ledger.get(name) or record)
            if resolved.state is JobState.UPLOADED:
                raise  # no task was made: the way to the service failed
            return resolved
        except TransportError:
            # The connection never opened: nothing was sent.
            self.ledger.settle_attempt(name, "not sent")
            self.ledger.update(name, state=JobState.UPLOADED)
            raise
        except (InvalidRequest, NotFound) as refused:
            self.ledger.settle_attempt(name, "refused")
            code = refused.code or f"HTTP{refused.status}"
            self.emit(name, Step.SUBMIT, State.FAILED, str(refused))
            return self._failed(record, code, refused.message or str(refused))
        except ApiStatusError:
            self.ledger.settle_attempt(name, "refused")
            self.ledger.update(name, state=JobState.UPLOADED)
            raise
        self.answers[name] = task
        record = self.ledger.submitted(name, task.task_id)
        self.emit(name, Step.SUBMIT, State.DONE, task.task_id, elapsed=time.monotonic() - began)
        return record

    def resolve(self, record: Record) -> Record:
        """A job whose submit may have been sent without its answer recorded: adopt the one
        task of its window that no job knows; none: it goes back to be submitted; several:
        uncertain (see `retalk.jobs.adopt`)."""
        name = record.name
        self.emit(name, Step.ADOPT, State.STARTED)
        since = record.intent_at if record.intent_at is not None else time.time()
        until = attempt_end(since, self.client.timing.deadline, self.settle)
        lookup = look_up(self.client, since, self.ledger.known_task_ids(), until)
        wait = since + self.settle - time.time()
        if not lookup.made and wait > 0:
            # Too soon for an empty list to prove anything: the request may still make its task.
            self.emit(name, Step.ADOPT, State.PROGRESS, f"looking again in {wait:.0f} s")
            time.sleep(wait)
            lookup = look_up(self.client, since, self.ledger.known_task_ids(), until)
        if lookup.task_id is not None:
            self.emit(name, Step.ADOPT, State.DONE, lookup.task_id)
            return self.ledger.submitted(name, lookup.task_id, outcome="adopted")
        if not lookup.made:
            self.ledger.settle_attempt(name, "not made")
            self.emit(name, Step.ADOPT, State.DONE, "no task was made")
            return self.ledger.update(name, state=JobState.UPLOADED)
        self.ledger.settle_attempt(name, "uncertain")
        said = (
            f"its submit's answer was lost and {len(lookup.unknown)} tasks no job knows were "
            f"submitted meanwhile ({', '.join(lookup.unknown)}): which is this job's cannot be "
            "told; --resubmit submits it again (a possible duplicate)"
        )
        self.emit(name, Step.ADOPT, State.FAILED, said)
        return self.ledger.update(name, state=JobState.UNCERTAIN, code="Submit.Lost", message=said)

    def known_elsewhere(self, record: Record) -> Task | None:
        """The task of the same job (its identity) that another ledger's run received and that
        is still good: not failed, canceled or forgotten by the service (each queried, the
        latest first); None when there is none."""
        from retalk.client import NotFound, TaskStatus

        gone = (TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN)
        since = time.time() - limits.TASK_RETENTION_S
        # This ledger's own tasks by their ids, not by the ledger's path: a ledger moved,
        # deleted or beside a manifest of the same name elsewhere is another ledger.
        own = self.ledger.own_task_ids()
        for task_id, at, _ledger in self.ledger.registry.by_key(record.key):
            if task_id in own or at < since:
                continue
            try:
                task = self.client.get(task_id)
            except NotFound:
                continue
            if task.status not in gone:
                return task
        return None

    def adopt_known(self, record: Record, task: Task) -> Record:
        """Take over another ledger's task of the same job instead of submitting it again."""
        self.answers[record.name] = task
        said = f"{task.task_id}: run before (another ledger): not submitted again"
        self.emit(record.name, Step.ADOPT, State.DONE, said)
        return self.ledger.submitted(record.name, task.task_id, outcome="known")

    def seen(self, record: Record, task: Task) -> Record:
        """Record what a query of the job's task said: a failure fails the job, with its code;
        an adopted task whose billed length is not the job's forecast is not the job's (the job
        is uncertain); a task the service no longer knows is `forgotten`."""
        from retalk.client import TaskStatus

        name = record.name
        if task.status is TaskStatus.SUCCEEDED:
            if not self._may_be_ours(record, task):
                return self._not_ours(record, task)
            ended = record.ended_at or _end_time(task) or time.time()
            billed = task.usage.video_duration  # billed now, whether or not it is fetched
            return self.ledger.update(
                name, task_status=task.status.value, ended_at=ended, billed=billed
            )
        if task.status is TaskStatus.UNKNOWN:
            return self.forgotten(record)
        if task.status.finished:
            code = task.code or task.status.value
            self.emit(name, Step.WAIT, State.FAILED, f"{code}: {task.message or ''}")
            return self._failed(record, code, task.message or task.status.value)
        if task.status.value != record.task_status:
            self.emit(name, Step.WAIT, State.PROGRESS, f"{record.task_id}: {task.status.value}")
            return self.ledger.update(name, task_status=task.status.value)
        return record

    def forgotten(self, record: Record) -> Record:
        """The service answers UNKNOWN for the job's task: it made the task (its id came from
        the service) and has forgotten it, 24 hours after its end. Seen ended, its bill is
        known and its result lost (`expired`); seen queued or running only (or submitted over
        24 hours ago), whether it succeeded and what it billed are not known (`expired`,
        `FORGOTTEN`, nothing billed recorded); never seen at all, the service does not know it
        (failed)."""
        name = record.name
        if record.ended_at is not None:
            return self._expired(record, "the service has forgotten the task (24 hours)")
        submitted = record.submitted_at or time.time()
        if record.task_status is not None or time.time() - submitted > limits.TASK_RETENTION_S:
            why = (
                f"the service forgot task {record.task_id} (24 hours after its end) before this "
                "run saw it end: its result and its bill are not known"
            )
            self.emit(name, Step.WAIT, State.FAILED, why)
            return self.ledger.update(
                name, state=JobState.EXPIRED, expired_at=time.time(), code=FORGOTTEN,
                message=why, billed=None,
            )  # fmt: skip
        self.emit(name, Step.WAIT, State.FAILED, "the service does not know the task")
        return self._failed(record, "UNKNOWN", "the service does not know the task")

    def fetch(self, record: Record, task: Task) -> Record:
        """Download the result beside its target (resumed after a kill), verify it, and give
        it its name without overwriting anything there."""
        from retalk.client import InvalidResult, ResultExpired

        name = record.name
        assert record.output is not None and record.task_id is not None
        target = Path(record.output)
        if record.ended_at and time.time() - record.ended_at > limits.RESULT_URL_LIFETIME_S:
            self.emit(name, Step.DOWNLOAD, State.WARNING, "the task ended over 24 hours ago: "
                      "its result link has probably expired")  # fmt: skip
        part = target.with_name(f".{target.stem}.{_safe(record.task_id)}{target.suffix}")
        billed = task.usage.video_duration
        saved = placed(part, target)  # by a run killed before it could record it
        if saved is None:
            began = time.monotonic()
            self.emit(name, Step.DOWNLOAD, State.STARTED, str(target))
            try:
                # Verified by the client: a video ffprobe opens, of the length billed.
                self.client.download(task, part, self._bytes(name, Step.DOWNLOAD, target.name))
            except ResultExpired as expired:
                return self._expired(record, str(expired), expired.expired_at)
            except InvalidResult as invalid:
                self.emit(name, Step.VERIFY, State.FAILED, invalid.problem)
                return self._failed(record, "Result.Invalid", str(invalid))
            self.emit(name, Step.DOWNLOAD, State.DONE, elapsed=time.monotonic() - began)
            saved = place(part, target)
        self.emit(name, Step.VERIFY, State.DONE, str(saved))
        record = self.ledger.update(
            name, state=JobState.DONE, result=str(saved), billed=billed, code=None, message=None
        )
        part.unlink(missing_ok=True)  # only now: until the ledger says done, it marks ours
        return record

    # One job, start to end.
    def run(
        self,
        record: Record,
        *,
        wait: bool = True,
        timeout: float | None = None,
        resubmit: bool = False,
        on_task: Callable[[Task], None] | None = None,
    ) -> Outcome:
        """Take the job from where the ledger has it to its end (or, without `wait`, to its
        submit). A job whose task is known and still good (submitted, or done less than 24
        hours ago) is not submitted again unless `resubmit`: the outcome names it (`known`);
        nor is an uncertain one."""
        from retalk.client import TaskFailed

        adopted = False
        if record.state is JobState.SUBMITTING:
            self.access()
            record = self.resolve(record)
            adopted = record.state is JobState.SUBMITTED  # this run's to wait for
        good = record.state in (JobState.SUBMITTED, JobState.DONE) and still_good(record)
        if good and not resubmit and not adopted:
            return Outcome(record, known=record)
        if not resubmit and record.state is JobState.UNCERTAIN:
            return Outcome(record)
        if not adopted and record.state not in (JobState.NEW, JobState.CHECKED, JobState.UPLOADED):
            record = self.ledger.update(record.name, state=JobState.NEW, task_id=None)
        verdict = None
        if not adopted:
            self.access()
            other = None if resubmit or good else self.known_elsewhere(record)
            if other is not None:
                known = replace(record, task_id=other.task_id, state=JobState.SUBMITTED)
                return Outcome(record, task=other, known=known)
            if record.state is JobState.NEW:
                record, verdict = self.check(record)
                if record.state is JobState.FAILED:
                    return Outcome(record, verdict)
            record = self.submit(self.upload(record))
        if record.state is not JobState.SUBMITTED or not wait:
            return Outcome(record, verdict, self.answers.get(record.name))
        assert record.task_id is not None
        began = time.monotonic()
        self.emit(record.name, Step.WAIT, State.STARTED, record.task_id)
        try:
            task = self.client.wait(
                record.task_id, timeout=timeout, on_update=self._watch(record.name, on_task)
            )
        except TaskFailed as failed:
            record = self.seen(self._current(record), failed.task)
            return Outcome(record, verdict, failed.task)
        self.emit(record.name, Step.WAIT, State.DONE, elapsed=time.monotonic() - began)
        record = self.seen(self._current(record), task)
        if record.state is not JobState.SUBMITTED:
            return Outcome(record, verdict, task)
        record = self.fetch(record, task)
        saved = Path(record.result) if record.state is JobState.DONE and record.result else None
        return Outcome(record, verdict, task, saved)

    # Helpers.
    def _watch(self, name: str, then: Callable[[Task], None] | None) -> Callable[[Task], None]:
        """A wait's listener that records each new status of the task (so that a task later
        forgotten is known to have been made and seen), then tells `then`."""

        def update(task: Task) -> None:
            record = self.ledger.get(name)
            unfinished = not task.status.finished
            if record is not None and unfinished and record.task_status != task.status.value:
                self.ledger.update(name, task_status=task.status.value)
            if then is not None:
                then(task)

        return update

    def _current(self, record: Record) -> Record:
        return self.ledger.get(record.name) or record

    def _may_be_ours(self, record: Record, task: Task) -> bool:
        """Whether the task can be the job's: a task adopted after a lost answer must have the
        billed length the job's preflight forecast (`retalk.jobs.adopt.same_length`)."""
        if not self._adopted(record):
            return True
        return same_length(task.usage.video_duration, _forecast_of(record))

    def _adopted(self, record: Record) -> bool:
        """Whether the job's task was taken from the task list after a lost answer."""
        attempts = [s for s in self.ledger.submits() if s[0] == record.name]
        return bool(attempts) and attempts[-1][3:] == (record.task_id, "adopted")

    def _not_ours(self, record: Record, task: Task) -> Record:
        """The adopted task is another's: the job becomes uncertain, nothing of the task kept
        as its own, and the task remembered as not the job's (no lookup adopts it again)."""
        billed, forecast = task.usage.video_duration, _forecast_of(record)
        said = (
            f"task {task.task_id}, taken for this job's lost submit, made {billed:.2f} s of "
            f"video where this job's is {forecast:.2f} s: it is another's task, and nothing "
            "was saved; whether this job's submit made a task is not known: --resubmit "
            "submits it again (a possible duplicate)"
        )
        self.ledger.settle_attempt(record.name, "not this job's")
        self.ledger.registry.disown(task.task_id)
        self.answers.pop(record.name, None)
        self.emit(record.name, Step.ADOPT, State.FAILED, said)
        return self.ledger.update(
            record.name, state=JobState.UNCERTAIN, task_id=None, task_status=None,
            ended_at=None, billed=None, code=NOT_THIS_JOBS, message=said,
        )  # fmt: skip

    def _failed(self, record: Record, code: str, message: str, **more: Any) -> Record:
        return self.ledger.update(
            record.name, state=JobState.FAILED, code=code, message=message, **more
        )

    def _expired(self, record: Record, why: str, when: dt.datetime | None = None) -> Record:
        if when is not None:
            at = when.timestamp()
        else:
            at = min((record.ended_at or time.time()) + limits.RESULT_URL_LIFETIME_S, time.time())
        self.emit(record.name, Step.DOWNLOAD, State.FAILED, f"the result has expired: {why}")
        return self.ledger.update(
            record.name, state=JobState.EXPIRED, expired_at=at, code="ResultExpired", message=why
        )

    def _bytes(self, name: str, step: Step, label: str) -> Callable[[int, int | None], None]:
        def update(done: int, total: int | None) -> None:
            self.emit(name, step, State.PROGRESS, label, done=done, total=total)

        return update


def still_good(record: Record) -> bool:
    """Whether the job's task is known and its result still to be had: not ended, or ended
    less than 24 hours ago (the service then forgets it)."""
    if record.task_id is None:
        return False
    ended = record.ended_at
    return ended is None or time.time() - ended < limits.TASK_RETENTION_S


def _candidates(target: Path) -> Iterator[Path]:
    yield target
    for n in itertools.count(2):
        yield target.with_name(f"{target.stem}-{n}{target.suffix}")


def place(part: Path, target: Path) -> Path:
    """`part` linked under `target`'s name, or the first free `name-2`, `name-3` … beside it:
    a link made only where nothing is (atomic, never over a file). `part` stays, for `placed`
    to know, until the ledger has recorded the result."""
    for candidate in _candidates(target):
        try:
            os.link(part, candidate)
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def placed(part: Path, target: Path) -> Path | None:
    """Where `place` put `part` already (the same file under `target`'s name or a numbered
    one), if it did."""
    if not part.exists():
        return None
    for candidate in _candidates(target):
        if not candidate.exists():
            return None
        if os.path.samefile(candidate, part):
            return candidate
    return None


def _safe(text: str) -> str:
    """`text` fit for a file name, and short whatever its length (a service's long task id)."""
    import hashlib

    from retalk.client.core import safe_name

    safe = safe_name(text)
    return safe if len(safe) <= 64 else hashlib.sha256(text.encode()).hexdigest()[:32]


def _forecast(verdict: Verdict) -> dict[str, float]:
    """The preflight's forecast of the output's length (seconds), for the ledger's verdict."""
    job = verdict.report.job or {}
    length = job.get("output_duration")
    return {"output_s": float(length)} if isinstance(length, int | float) else {}


def _forecast_of(record: Record) -> float | None:
    """The job's forecast output length, as its checked verdict recorded it."""
    length = (record.verdict or {}).get("output_s")
    return float(length) if isinstance(length, int | float) else None


def _end_time(task: Task) -> float | None:
    """When the task ended, its `end_time` read in the service's zone (`limits.SERVICE_TIMEZONE`);
    never later than now."""
    from retalk.jobs.adopt import naive_time

    found = naive_time(task.end_time)
    if found is None:
        return None
    return min(found.replace(tzinfo=limits.SERVICE_TIMEZONE).timestamp(), time.time())


def new_job_name(job: Job) -> str:
    """A job's name when none is given: its video's stem."""
    return job.name or Path(job.video.split("?")[0]).stem or "job"
