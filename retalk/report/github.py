from __future__ import annotations

from retalk.codes import Severity
from retalk.findings import Report
from retalk.report.escape import printable
from retalk.report.options import RenderOptions

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render_github(report: Report, options: RenderOptions) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on its file."""
    lines = []
    for f in report.findings:
        if options.quiet and f.severity is Severity.INFO:
            continue
        message = f.message if options.quiet or not f.hint else f"{f.message}\nfix: {f.hint}"
        # A warning that fails the check (`--strict`) is an error annotation, as the exit says.
        command = "error" if options.blocks(f) else _COMMAND[f.severity]
        lines.append(
            f"::{command} file={_property(f.path)},title={_property(f.code)}::{_data(message)}"
        )
    return "\n".join(lines)


def _data(value: str) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return printable(value)


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")
