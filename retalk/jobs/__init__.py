"""Jobs that are never lost and never paid twice: the job runner (`Runner`), its ledger
(`Ledger`), a resumable batch (`Batch`, `read_manifest`) and the events they tell.

    from retalk.client import Client
    from retalk.jobs import Batch, Ledger, read_manifest

    with Client() as client, Ledger("jobs.csv.ledger.sqlite") as ledger:
        ledger.lock()
        summary = Batch(client, ledger, read_manifest("jobs.csv"), Path("out")).run()
"""

from retalk.jobs.batch import Batch, Summary, summarize
from retalk.jobs.events import Event, State, Step
from retalk.jobs.gate import Verdict, gate
from retalk.jobs.ledger import JobState, Ledger, Record, user_ledger_path
from retalk.jobs.manifest import ManifestError, read_manifest
from retalk.jobs.runner import Outcome, Runner

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
