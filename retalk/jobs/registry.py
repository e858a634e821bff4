"""The user-level registry of every task id retalk received, whatever ledger its job is in (a
batch's beside its manifest, the user-level one of `retalk submit`): with the job's identity
(`retalk.jobs.identity.job_key`), when, and the ledger. A lost submit's lookup sets aside every
task known here, not only its own ledger's (`retalk.jobs.adopt`); and a job run before from
another ledger is found by its identity, so that it is not paid for twice.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from retalk.errors import LedgerError

BUSY_TIMEOUT_MS = 10_000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, key TEXT NOT NULL, "
    "at REAL NOT NULL, ledger TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS tasks_key ON tasks (key)",
)


def registry_path() -> Path:
    """`tasks.sqlite` in the user state folder, beside the user-level ledger."""
    from retalk.jobs.ledger import user_ledger_path

    return user_ledger_path().with_name("tasks.sqlite")


class Registry:
    """The registry file, opened (and made, with its folder, when missing)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else registry_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as error:
            raise LedgerError(f"cannot open the task registry {self.path}: {error}") from None

    def close(self) -> None:
        """Let the file go."""
        self._db.close()

    def record(self, task_id: str, key: str, ledger: str) -> bool:
        """A task id received (answered or adopted) for the job of identity `key`; a task known
        already keeps its first ledger and time. False when the registry could not take it
        (held by another process past the busy timeout, its disk full): the ledger that called
        holds the task id all the same, and the run goes on — a task made must never be lost
        to a failure of this cross-ledger index."""
        try:
            self._db.execute(
                "INSERT OR IGNORE INTO tasks (task_id, key, at, ledger) VALUES (?, ?, ?, ?)",
                (task_id, key, time.time(), str(Path(ledger).resolve())),
            )
        except sqlite3.Error:
            return False
        return True

    def disown(self, task_id: str) -> None:
        """A task taken for a job's and found not to be (another client's): it stays known, so
        that no lookup takes it again, but no job's identity leads to it."""
        self._db.execute("UPDATE tasks SET key = '' WHERE task_id = ?", (task_id,))

    def task_ids(self) -> set[str]:
        """Every task id known."""
        return {row[0] for row in self._db.execute("SELECT task_id FROM tasks")}

    def by_key(self, key: str) -> list[tuple[str, float, str]]:
        """The tasks of that job identity, the latest first: (task_id, at, ledger)."""
        rows = self._db.execute(
            "SELECT task_id, at, ledger FROM tasks WHERE key = ? ORDER BY at DESC", (key,)
        )
        return [(row[0], row[1], row[2]) for row in rows]
