from __future__ import annotations

import json
import re
from typing import Any

from retalk.findings import Report
from retalk.report.options import RenderOptions


def render_json(report: Report, options: RenderOptions) -> str:
    """One object: `{"version": 1, "ok", "passed", "inputs": [...], "findings": [...]}` (see
    README): `ok`, the service would accept every input; `passed`, no finding fails the check
    (`--strict` included); each finding's `blocking` says whether it is one that fails it."""
    whole = report.to_dict()
    passed = not any(options.blocks(f) for f in report.findings)
    data = {"version": whole.pop("version"), "ok": whole.pop("ok"), "passed": passed, **whole}
    for item, f in zip(data["findings"], report.findings, strict=True):
        item["blocking"] = options.blocks(f)
    return dumps(data)


def dumps(data: Any) -> str:
    """`data` as indented JSON that stays UTF-8 whatever the file names hold."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    # A file name that is not UTF-8 holds lone surrogates (Python's stand-ins for its bytes):
    # written as JSON escapes, so that the output stays UTF-8.
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_SURROGATE = re.compile("[\ud800-\udfff]")
