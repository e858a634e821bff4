"""SARIF 2.1.0, the format of GitHub code scanning and other static-analysis dashboards."""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from retalk.codes import CODES, Severity
from retalk.findings import Finding, Report
from retalk.report.json import dumps
from retalk.report.options import RenderOptions

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render_sarif(report: Report, options: RenderOptions) -> str:
    """One SARIF log with one run: the driver `retalk` with a rule per code it reports (the
    rule id is the finding code), and a result per finding pointing at its file."""
    from retalk import __version__

    used = {f.code for f in report.findings}
    codes = [name for name in CODES if name in used]
    codes += sorted(used.difference(codes))  # any outside the registry too
    index = {code: i for i, code in enumerate(codes)}
    driver = {"name": "retalk", "version": __version__, "rules": [_rule(c) for c in codes]}
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "results": [_result(f, index[f.code], options.blocks(f)) for f in report.findings],
            }
        ],
    }
    return dumps(log)


def _rule(code: str) -> dict[str, Any]:
    known = CODES.get(code)
    rule: dict[str, Any] = {"id": code}
    if known is not None:
        rule["shortDescription"] = {"text": known.summary}
        rule["defaultConfiguration"] = {"level": _LEVEL[known.severity]}
    return rule


def _result(f: Finding, rule_index: int, blocking: bool) -> dict[str, Any]:
    """One result; a warning that fails the check (`--strict`) is at level `error`."""
    text = f"{f.message}\nfix: {f.hint}" if f.hint else f.message
    properties = {
        name: value
        for name, value in (("at", f.at), ("expected", f.expected), ("actual", f.actual))
        if value is not None
    }
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": rule_index,
        "level": "error" if blocking else _LEVEL[f.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": file_uri(f.path)}}}],
    }
    if properties:
        result["properties"] = properties
    return result


def file_uri(path: str) -> str:
    """`path` as a URI reference: a relative path stays relative (resolved against where the
    check ran, the repository's root in CI), an absolute one becomes a `file://` URI; every
    byte that a URI may not hold as is (space, `#`, `%`, `:`, non-ASCII) percent-encoded. A
    URL input (printed without its query) stays the URL it is."""
    if path.lower().startswith(("http://", "https://", "oss://")):
        return quote(path.removesuffix("?…"), safe=":/")
    raw = os.fsencode(path)
    if os.path.isabs(path):
        return "file://" + quote(raw, safe="/")
    # A first segment with a colon would read as a scheme (`a:b.mp4`): quote escapes it.
    return quote(os.fsencode(str(PurePosixPath(path))), safe="/")
