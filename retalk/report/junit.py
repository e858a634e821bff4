"""JUnit XML, the format test dashboards read (GitLab, Jenkins, Azure DevOps, CircleCI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retalk.findings import Report
from retalk.report.escape import printable
from retalk.report.options import RenderOptions
from retalk.report.text import summary

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


def render_junit(report: Report, options: RenderOptions) -> str:
    """One `<testsuite name="retalk">` with a `<testcase>` per input (name: its path,
    classname: its role), a `<failure>` per finding of severity error (type: the code), and
    the input's facts, warnings and infos in its `<system-out>`."""
    import xml.etree.ElementTree as ET  # only when asked for: `retalk --help` stays fast

    cases: dict[str, Element] = {}
    out: dict[str, list[str]] = {}
    for item in report.inputs:
        cases[item.path] = _case(item.path, item.role or item.kind)
        out[item.path] = [] if options.quiet else [summary(item)]
    failed: set[str] = set()
    for f in report.findings:
        if f.path not in cases:  # a finding about the job as a whole
            cases[f.path], out[f.path] = _case(f.path, "job"), []
        fix = [f"fix: {f.hint}"] if f.hint and not options.quiet else []
        if options.blocks(f):
            failed.add(f.path)
            attributes = {"type": printable(f.code), "message": printable(f.message)}
            failure = ET.SubElement(cases[f.path], "failure", attributes)
            failure.text = _lines([f.message, *fix])
        else:
            out[f.path] += [f"{f.code} ({f.severity}): {f.message}", *fix]
    for path, lines in out.items():
        if lines:
            ET.SubElement(cases[path], "system-out").text = _lines(lines)
    counts = {"tests": len(cases), "failures": len(failed), "errors": 0, "skipped": 0}
    suite = ET.Element("testsuite", {"name": "retalk", **{k: str(v) for k, v in counts.items()}})
    suite.extend(cases.values())
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode")


def _case(path: str, classname: str) -> Element:
    from xml.etree.ElementTree import Element

    # XML 1.0 cannot hold control characters, even as references: they are written as their
    # escapes (`\x1b`), as in the text report.
    return Element("testcase", {"name": printable(path), "classname": printable(classname)})


def _lines(lines: list[str]) -> str:
    return "\n".join(printable(line) for line in lines)
