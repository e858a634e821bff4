"""Renderers: a report shown as text for people, JSON for programs, or GitHub annotations.

A renderer is a function `(report, options) -> str`; `FORMATS` is the registry the CLI offers.
"""

from __future__ import annotations

from collections.abc import Callable

from retalk.findings import Report
from retalk.report.github import render_github
from retalk.report.json import render_json
from retalk.report.options import RenderOptions
from retalk.report.text import render_text

Renderer = Callable[[Report, RenderOptions], str]

FORMATS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
}

__all__ = ["FORMATS", "RenderOptions", "Renderer", "render"]


def render(report: Report, fmt: str = "text", options: RenderOptions | None = None) -> str:
    return FORMATS[fmt](report, options or RenderOptions())
