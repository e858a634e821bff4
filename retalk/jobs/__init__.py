"""Jobs that are never lost and never paid twice: the job runner (`Runner`), its ledger
(`Ledger`), a resumable batch (`Batch`, `read_manifest`) and the events they tell.

    from retalk.client import Client
    from retalk.jobs import Batch, Ledger, read_manifest

    with Client() as client, Ledger("jobs.csv.ledger.sqlite") as ledger:
        ledger.lock()
        summary = Batch(client, ledger, read_manifest("jobs.csv"), Path("out")).run()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retalk.jobs.batch import Batch, Summary, summarize
    from retalk.jobs.events import Event, State, Step
    from retalk.jobs.gate import Verdict, gate
    from retalk.jobs.ledger import JobState, Ledger, Record, user_ledger_path
    from retalk.jobs.manifest import ManifestError, read_manifest
    from retalk.jobs.runner import Outcome, Runner

# Loaded on first use: the command line imports `retalk.jobs.events` for every command, and
# `retalk check` must not pay for the ledger, the runner and the batch.
_HOME = {
    "Batch": "batch",
    "Summary": "batch",
    "summarize": "batch",
    "Event": "events",
    "State": "events",
    "Step": "events",
    "Verdict": "gate",
    "gate": "gate",
    "JobState": "ledger",
    "Ledger": "ledger",
    "Record": "ledger",
    "user_ledger_path": "ledger",
    "ManifestError": "manifest",
    "read_manifest": "manifest",
    "Outcome": "runner",
    "Runner": "runner",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"retalk.jobs.{_HOME[name]}"), name)
    raise AttributeError(f"module 'retalk.jobs' has no attribute {name!r}")


__all__ = [
    "Batch",
    "Event",
    "JobState",
    "Ledger",
    "ManifestError",
    "Outcome",
    "Record",
    "Runner",
    "State",
    "Step",
    "Summary",
    "Verdict",
    "gate",
    "read_manifest",
    "summarize",
    "user_ledger_path",
]
