"""Renderers: a report shown as text for people, JSON for programs, GitHub annotations, SARIF
for code scanning, or JUnit XML for test dashboards.

A renderer is a function `(report, options) -> str`; `FORMATS` is the registry every command
that prints a report offers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from retalk.codes import Severity
from retalk.findings import Report
from retalk.report.github import render_github
from retalk.report.json import render_json
from retalk.report.junit import render_junit
from retalk.report.options import RenderOptions
from retalk.report.sarif import render_sarif
from retalk.report.text import render_text

Renderer = Callable[[Report, RenderOptions], str]

FORMATS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
    "sarif": render_sarif,
    "junit": render_junit,
}

__all__ = ["FORMATS", "RenderOptions", "Renderer", "render"]


def render(report: Report, fmt: str = "text", options: RenderOptions | None = None) -> str:
    """`report` in the format `fmt` (a key of `FORMATS`). With `options.quiet`, every format
    leaves out the findings of severity info."""
    options = options or RenderOptions()
    if options.quiet:
        kept = tuple(f for f in report.findings if f.severity is not Severity.INFO)
        report = replace(report, findings=kept)
    return FORMATS[fmt](report, options)
