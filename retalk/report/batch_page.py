"""A batch's `report.html`: each job with its state, its preflight's verdict, its task, its bill
and a link to its result (relative to the page), under the batch's summary line."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from retalk.report.page import page, text

if TYPE_CHECKING:
    from retalk.jobs.batch import Summary
    from retalk.jobs.ledger import Record

PAGE_NAME = "report.html"
"""The page's name in a batch's output folder."""

_STATE_COLOURS = {
    "done": "#1a7f37",
    "failed": "#c62828",
    "uncertain": "#b26a00",
    "expired": "#b26a00",
}


def render_batch_html(
    records: Sequence[Record], summary: Summary, said: str, folder: str | os.PathLike[str]
) -> str:
    """The page of a batch whose output folder is `folder` (links are relative to it); `said`
    is the summary line the command prints."""
    rows = [_row(record, folder) for record in records]
    status = "ok" if summary.all_done else "fail"
    body = (
        "<h1>retalk batch</h1>"
        f'<p class="verdict {status}" id="summary">{text(said)}</p>'
        '<table id="jobs"><thead><tr><th>Job</th><th>State</th><th>Preflight</th>'
        "<th>Task</th><th>Billed</th><th>Result</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return page("retalk batch", body)


def _inputs(record: Record, folder: str | os.PathLike[str]) -> str:
    """`talk.mp4 + talk.wav + face.jpg`: the job's files, the reference photo's too."""
    job = record.job
    return " + ".join(_shown(p, folder) for p in (job.video, job.audio, job.ref) if p)


def _shown(path: str, folder: str | os.PathLike[str]) -> str:
    """An input as the page names it: a file relative to the page, a URL without its query
    (a signature) or password."""
    from retalk.job import is_url
    from retalk.preflight.remote import redact

    if is_url(path):
        return redact(path)
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive (Windows)
        return path


def _row(record: Record, folder: str | os.PathLike[str]) -> str:
    state = record.state.value
    colour = _STATE_COLOURS.get(state, "#555")
    verdict = record.verdict or {}
    errors, warnings = list(verdict.get("errors") or ()), list(verdict.get("warnings") or ())
    checked = "not checked yet" if not verdict else "passed"
    if errors or warnings:
        checked = ", ".join([*errors, *(f"{w} (warning)" for w in warnings)])
    if verdict.get("forced"):
        checked += " (submitted anyway: --force)"
    task = ""
    if record.task_id:
        task = f"{record.task_id} ({record.task_status or 'PENDING'})"
    billed = "" if record.billed is None else f"{record.billed:.2f} s"
    result = ""
    if record.result:
        href = quote(os.path.relpath(record.result, folder).replace(os.sep, "/"))
        result = f'<a href="{text(href)}">{text(os.path.basename(record.result))}</a>'
    elif record.code:
        result = f"{text(record.code)}: {text(record.message or '')}"
    return (
        f'<tr class="job" data-state="{text(state)}">'
        f'<td data-label="Job"><strong>{text(record.name)}</strong><br>'
        f'<span class="muted">{text(_inputs(record, folder))}</span></td>'
        f'<td data-label="State" class="nowrap" style="color:{colour};font-weight:600">'
        f"{text(state)}</td>"
        f'<td data-label="Preflight">{text(checked)}</td>'
        f'<td data-label="Task">{text(task)}</td>'
        f'<td data-label="Billed" class="nowrap">{text(billed)}</td>'
        f'<td data-label="Result">{result}</td></tr>'
    )
