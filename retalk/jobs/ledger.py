"""The ledger: each job's state and clocks, in SQLite, so that a run killed at any point can be
resumed without paying twice or losing a result.

Every change is one transaction (`BEGIN IMMEDIATE`), in WAL mode with a busy timeout, so that
`batch status` reads while a batch writes, and a kill -9 leaves the last committed state. The
intent of a submit (`submitting`, with its time and attempt number) is committed before the
request leaves; the task id after the answer: a job found `submitting` was perhaps submitted,
and is looked up (`retalk.jobs.adopt`) rather than sent again. A batch holds an exclusive lock
on the ledger file itself (`lock`: any path to it, a symbolic or hard link, is the same file); a
second one on the same ledger is refused (`LedgerBusy`). `batch status` opens it read-only
(`readonly`), with no task registry.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from retalk.errors import LedgerBusy, LedgerError
from retalk.job import Job, Parameters
from retalk.jobs.registry import Registry

SCHEMA_VERSION = 1
"""The layout of the tables; a ledger of a newer one is refused, never rewritten."""
BUSY_TIMEOUT_MS = 10_000
"""How long a write waits for another process's transaction to end."""


class JobState(StrEnum):
    """Where a job is, as the ledger records it."""

    NEW = "new"
    CHECKED = "checked"
    """The preflight passed (or was forced): its verdict is recorded."""
    UPLOADED = "uploaded"
    """Its local inputs are in temporary storage (`oss://` URLs, 48 hours)."""
    SUBMITTING = "submitting"
    """The intent to submit is recorded; the task id is not (yet)."""
    SUBMITTED = "submitted"
    """The service answered with a task id."""
    DONE = "done"
    """The result is saved and verified."""
    FAILED = "failed"
    """The preflight refused it, or the task failed (with the service's code)."""
    UNCERTAIN = "uncertain"
    """A submit's answer was lost and the task list did not tell which task it made: left for
    the user (`--resubmit` accepts a possible duplicate)."""
    EXPIRED = "expired"
    """The task succeeded but its result link expired before it was fetched."""


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.UNCERTAIN, JobState.EXPIRED})
"""States a run leaves alone: nothing more will happen to the job without the user."""


@dataclass(frozen=True)
class Record:
    """One job's row of the ledger."""

    name: str
    """The job's name: unique in the ledger."""
    key: str
    """The job's identity: its inputs' bytes and its parameters (`retalk.jobs.identity`)."""
    job: Job
    state: JobState
    output: str | None = None
    """Where its result is to be saved."""
    verdict: dict[str, Any] | None = None
    """The preflight's verdict: `errors` and `warnings` (codes), `forced`."""
    checked_at: float | None = None
    urls: dict[str, str] = field(default_factory=dict)
    """Role → the URL the service fetches: `oss://` for an upload, or the job's own URL."""
    uploaded_at: float | None = None
    upload_expires: float | None = None
    """When the earliest of its uploads expires (48 hours after it)."""
    attempt: int = 0
    """Submits attempted."""
    intent_at: float | None = None
    """When the last submit was about to be sent (UTC seconds)."""
    task_id: str | None = None
    submitted_at: float | None = None
    task_status: str | None = None
    """The task's last status seen."""
    ended_at: float | None = None
    """When the task was seen ended (UTC seconds): its result link lives 24 hours from then."""
    result: str | None = None
    """The saved result's path."""
    billed: float | None = None
    """Seconds billed (`usage.video_duration`)."""
    code: str | None = None
    """Why it failed, or is uncertain or expired: the service's code or retalk's."""
    message: str | None = None
    expired_at: float | None = None
    """When its result link expired."""
    updated_at: float | None = None

    @property
    def finished(self) -> bool:
        """Nothing more will happen to it in a run."""
        return self.state in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (`batch status --format json`)."""
        return {
            "name": self.name,
            "state": self.state.value,
            "video": self.job.video,
            "audio": self.job.audio,
            "ref": self.job.ref,
            "parameters": self.job.parameters.to_wire(),
            "output": self.output,
            "verdict": self.verdict,
            "checked_at": self.checked_at,
            "urls": self.urls,
            "uploaded_at": self.uploaded_at,
            "upload_expires": self.upload_expires,
            "attempt": self.attempt,
            "intent_at": self.intent_at,
            "task_id": self.task_id,
            "submitted_at": self.submitted_at,
            "task_status": self.task_status,
            "ended_at": self.ended_at,
            "result": self.result,
            "billed": self.billed,
            "code": self.code,
            "message": self.message,
            "expired_at": self.expired_at,
            "updated_at": self.updated_at,
        }


_COLUMNS = (
    "name", "key", "job", "state", "output", "verdict", "checked_at", "urls", "uploaded_at",
    "upload_expires", "attempt", "intent_at", "task_id", "submitted_at", "task_status",
    "ended_at", "result", "billed", "code", "message", "expired_at", "updated_at",
)  # fmt: skip
_JSON = {"job", "verdict", "urls"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY, key TEXT NOT NULL, job TEXT NOT NULL, state TEXT NOT NULL,
    output TEXT, verdict TEXT, checked_at REAL, urls TEXT, uploaded_at REAL,
    upload_expires REAL, attempt INTEGER NOT NULL DEFAULT 0, intent_at REAL, task_id TEXT,
    submitted_at REAL, task_status TEXT, ended_at REAL, result TEXT, billed REAL, code TEXT,
    message TEXT, expired_at REAL, updated_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key);
CREATE TABLE IF NOT EXISTS submits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, attempt INTEGER NOT NULL,
    intent_at REAL NOT NULL, task_id TEXT, outcome TEXT
);
"""


def job_to_json(job: Job) -> str:
    """The job as the ledger stores it."""
    return json.dumps(
        {
            "video": job.video,
            "audio": job.audio,
            "ref": job.ref,
            "parameters": job.parameters.to_wire(),
            "name": job.name,
        }
    )


def job_from_json(text: str) -> Job:
    """A job the ledger stored."""
    data = json.loads(text)
    parameters = Parameters.from_wire(data.get("parameters"), has_ref=bool(data.get("ref")))
    return Job(data["video"], data["audio"], data.get("ref"), parameters, data.get("name"))


class _NoRegistry(Registry):
    """The registry of a ledger opened read-only: none (nothing is recorded)."""

    def __init__(self) -> None:
        pass

    def close(self) -> None:
        """Nothing to let go."""

    def task_ids(self) -> set[str]:
        """None known."""
        return set()


class Ledger:
    """A ledger file, opened (and made, with its folder, when missing); or, `readonly`, only
    read (never made, never written, no task registry)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        registry: Registry | None = None,
        *,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        _refuse_empty(self.path)
        if readonly:
            registry = _NoRegistry()
        self.registry = registry if registry is not None else Registry()
        """Every task id retalk received, of any ledger (`retalk.jobs.registry`)."""
        try:
            self._db = _connect(self.path, readonly)
        except (OSError, sqlite3.Error) as error:
            self.registry.close()
            raise LedgerError(f"cannot open the ledger {self.path}: {error}") from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if readonly:
                self._check_schema(self._db)
                return
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._write() as db:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                if self._check_schema(db) is None:
                    db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as error:
            self._db.close()
            self.registry.close()
            raise LedgerError(f"{self.path} cannot be used as a ledger: {error}") from None
        except LedgerError:
            self._db.close()
            self.registry.close()
            raise

    def _check_schema(self, db: sqlite3.Connection) -> str | None:
        """The ledger's schema (None when it has none yet); LedgerError when it is not ours."""
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise LedgerError(
                f"the ledger {self.path} is of schema {row[0]}; this retalk reads "
                f"schema {SCHEMA_VERSION}"
            )
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Let the file (and its lock) go."""
        # The database first: closing the lock's descriptor would drop SQLite's own locks.
        self._db.close()
        self.unlock()
        self.registry.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Locking: one batch at a time on a ledger.
    def lock(self) -> None:
        """Hold the ledger for this process, or raise `LedgerBusy` when another holds it. The
        lock is on the database file itself (`flock`, apart from SQLite's own `fcntl` locks), so
        a symbolic or hard link to it is the same ledger. The kernel lets the lock go when the
        process ends, however it ends."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise LedgerError(f"cannot lock the ledger {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LedgerBusy(
                f"another batch is running on the ledger {self.path}: wait for it to end "
                "(`retalk batch status` shows where it is)"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Let the lock go."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, taken for writing at once (no upgrade deadlock between readers)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # Reading.
    def records(self) -> list[Record]:
        """Every job, in the order they were added."""
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY rowid")
        return [_record(row) for row in rows]

    def get(self, name: str) -> Record | None:
        """The job of that name, if any."""
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE name = ?", (name,)
        ).fetchone()
        return _record(row) if row else None

    def by_key(self, key: str) -> list[Record]:
        """The jobs of that identity, the latest first."""
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE key = ? ORDER BY rowid DESC", (key,)
        )
        return [_record(row) for row in rows]

    def own_task_ids(self) -> set[str]:
        """Every task id this ledger itself has heard of, of any job and attempt."""
        rows = self._db.execute(
            "SELECT task_id FROM submits WHERE task_id IS NOT NULL "
            "UNION SELECT task_id FROM jobs WHERE task_id IS NOT NULL"
        )
        return {row[0] for row in rows}

    def known_task_ids(self) -> set[str]:
        """Every task id the ledger has heard of, of any job and attempt, and every one the
        user-level registry knows (of any ledger)."""
        return self.own_task_ids() | self.registry.task_ids()

    def submits(self) -> list[tuple[str, int, float, str | None, str | None]]:
        """Every submit attempt: (name, attempt, intent_at, task_id, outcome)."""
        rows = self._db.execute(
            "SELECT name, attempt, intent_at, task_id, outcome FROM submits ORDER BY id"
        )
        return [tuple(row) for row in rows]

    # Writing.
    def add(self, name: str, key: str, job: Job, output: str | None) -> Record:
        """The job of that name, added as NEW unless the ledger has it already."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO jobs (name, key, job, state, output, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, key, job_to_json(job), JobState.NEW.value, output, time.time()),
            )
        found = self.get(name)
        assert found is not None
        return found

    def update(self, name: str, **changes: Any) -> Record:
        """Change some of a job's fields, in one transaction; returns the row as it is now."""
        for column in changes:
            if column not in _COLUMNS or column in ("name", "key"):
                raise ValueError(f"no such column: {column}")
        values = {
            k: job_to_json(v)  # the same job (its identity), its inputs named anew
            if isinstance(v, Job)
            else json.dumps(v)
            if k in _JSON and v is not None
            else v
            for k, v in changes.items()
        }
        values = {k: v.value if isinstance(v, StrEnum) else v for k, v in values.items()} | {
            "updated_at": time.time()
        }
        assigned = ", ".join(f"{column} = ?" for column in values)
        with self._write() as db:
            db.execute(f"UPDATE jobs SET {assigned} WHERE name = ?", (*values.values(), name))
        found = self.get(name)
        assert found is not None, name
        return found

    def intend(self, name: str) -> Record:
        """Record the intent to submit, before the request leaves: state `submitting`, its
        time, the attempt's number."""
        now = time.time()
        with self._write() as db:
            (attempt,) = db.execute("SELECT attempt FROM jobs WHERE name = ?", (name,)).fetchone()
            db.execute(
                "UPDATE jobs SET state = ?, intent_at = ?, attempt = ?, task_id = NULL, "
                "submitted_at = NULL, task_status = NULL, ended_at = NULL, code = NULL, "
                "message = NULL, updated_at = ? WHERE name = ?",
                (JobState.SUBMITTING.value, now, attempt + 1, now, name),
            )
            db.execute(
                "INSERT INTO submits (name, attempt, intent_at) VALUES (?, ?, ?)",
                (name, attempt + 1, now),
            )
        found = self.get(name)
        assert found is not None
        return found

    def submitted(self, name: str, task_id: str, outcome: str = "answered") -> Record:
        """Record the task id of the job's last attempt (`outcome`: `answered`, `adopted`)."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, task_id = ?, submitted_at = ?, task_status = NULL, "
                "code = NULL, message = NULL, updated_at = ? WHERE name = ?",
                (JobState.SUBMITTED.value, task_id, now, now, name),
            )
            db.execute(
                "UPDATE submits SET task_id = ?, outcome = ? WHERE id = "
                "(SELECT max(id) FROM submits WHERE name = ?)",
                (task_id, outcome, name),
            )
        found = self.get(name)
        assert found is not None
        self.registry.record(task_id, found.key, str(self.path))
        return found

    def settle_attempt(self, name: str, outcome: str) -> None:
        """Record how the job's last attempt ended without a task id (`refused`, `not made`,
        `uncertain`)."""
        with self._write() as db:
            db.execute(
                "UPDATE submits SET outcome = ? WHERE id = "
                "(SELECT max(id) FROM submits WHERE name = ?)",
                (outcome, name),
            )


def _refuse_empty(path: Path) -> None:
    """An existing file of no bytes is not a new ledger: taking it for one would run its jobs
    (and pay for them) again."""
    try:
        empty = path.stat().st_size == 0
    except OSError:
        return
    if empty:
        raise LedgerError(f"{path} is empty: not a ledger; remove it to start over")


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """The database, opened for writing (made, with its folder, when missing) or only read."""
    timeout = BUSY_TIMEOUT_MS / 1000
    if readonly:
        uri = f"{path.absolute().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    return sqlite3.connect(path, timeout=timeout, isolation_level=None)


def _record(row: tuple[Any, ...]) -> Record:
    data = dict(zip(_COLUMNS, row, strict=True))
    for column in _JSON:
        data[column] = json.loads(data[column]) if data[column] else None
    data["job"] = job_from_json(json.dumps(data["job"]))
    data["state"] = JobState(data["state"])
    data["urls"] = data["urls"] or {}
    return Record(**data)


STATE_DIR_ENV = "RETALK_STATE_DIR"
"""Where the user-level ledger lives, when set (tests set it)."""


def user_ledger_path() -> Path:
    """The ledger of single `retalk submit`s: `$RETALK_STATE_DIR`, else `$XDG_STATE_HOME/retalk`,
    else `~/.local/state/retalk`; the file `submits.sqlite` in it."""
    folder = os.environ.get(STATE_DIR_ENV)
    if not folder:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        folder = os.path.join(base, "retalk")
    return Path(folder) / "submits.sqlite"
