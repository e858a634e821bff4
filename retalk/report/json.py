from __future__ import annotations

import json

from retalk.findings import Report
from retalk.report.options import RenderOptions


def render_json(report: Report, options: RenderOptions) -> str:
    """One object: `{"version": 1, "ok", "inputs": [...], "findings": [...]}` (see README)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
