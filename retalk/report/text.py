from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retalk.codes import Severity, strict_fails
from retalk.findings import Finding, Input, Report
from retalk.preflight.formats import CONTAINERS
from retalk.preflight.lfs import CONTAINER as LFS_POINTER
from retalk.report.escape import printable
from retalk.report.options import RenderOptions
from retalk.units import size_text


def render_text(report: Report, options: RenderOptions) -> str:
    """For people: per input a line of facts, then a line per finding (code, the value, the
    limit) with its fix below, then a one-line verdict."""
    lines: list[str] = []
    for item in report.inputs:
        findings = [f for f in report.for_path(item.path) if _shown(f, options)]
        if not options.quiet:
            lines.append(f"{item.path}: {summary(item)}")
        for f in findings:
            lines.append(_finding_line(f))
            if f.hint and not options.quiet:
                lines.append(f"    fix: {f.hint}")
    if report.job is not None and not options.quiet:
        lines.append(f"job: {job_summary(report.job)}")
    if not options.quiet:
        lines.append(verdict(report, strict=options.strict))
    return "\n".join(printable(line) for line in lines)


def _shown(f: Finding, options: RenderOptions) -> bool:
    return not (options.quiet and f.severity is Severity.INFO)


def _finding_line(f: Finding) -> str:
    marker = "" if f.severity is Severity.ERROR else f" ({f.severity})"
    return f"{f.path}: {f.code}{marker}: {f.message}"


def verdict(report: Report, *, strict: bool | tuple[str, ...] = False) -> str:
    """One line that agrees with the exit code, and says whose verdict it is: the service's,
    or the project's policy's when only its stricter limits reject a file; `OK for the
    selected codes` when the selection dropped errors; files not checked (Git LFS pointers)
    named as such."""
    total = len(report.inputs)
    noun = "file" if total == 1 else "files"
    counts = _counts(report)
    unchecked = _unchecked(report)
    by_service = {f.path for f in report.errors if not f.policy_only}
    by_policy = {f.path for f in report.errors} - by_service
    if by_service or by_policy:
        if by_service:
            said = f"the service would reject {len(by_service)} of {total} {noun}"
            if by_policy:
                said += f", the project's policy {len(by_policy)} more"
        else:
            said = f"the project's policy would reject {len(by_policy)} of {total} {noun}"
        return f"FAIL: {said}{unchecked} ({counts})"
    failing = [w for w in report.warnings if strict_fails(strict, w.code)]
    if failing:
        warned = len({f.path for f in failing})
        named = ", ".join(p or "--strict" for p in strict) if isinstance(strict, tuple) else ""
        why = "--strict" if strict is True else f"strict on {named}"
        return f"FAIL ({why}): warnings on {warned} of {total} {noun}{unchecked} ({counts})"
    dropped = _dropped_rejections(report, total)
    if dropped:
        return f"OK for the selected codes{unchecked} ({counts}: {dropped})"
    checked = total - len(_pointers(report))
    if total and not checked:
        what = "the file is" if total == 1 else f"all {total} are"
        what += " a Git LFS pointer" if total == 1 else " Git LFS pointers"
        return f"OK: nothing checked: {what} ({counts})"
    every = "the" if checked == 1 else "all"
    which = f"{checked} checked" if unchecked else str(checked)
    files = "file" if checked == 1 else "files"
    return f"OK: the service would accept {every} {which} {files}{unchecked} ({counts})"


def _counts(report: Report) -> str:
    """`1 error, 2 warnings`, and what the selection dropped: `; 1 error not selected`."""
    counts = f"{_count(len(report.errors), 'error')}, {_count(len(report.warnings), 'warning')}"
    errors = sum(n.errors for n in report.not_selected.values())
    warnings = sum(n.warnings for n in report.not_selected.values())
    dropped = [_count(n, noun) for n, noun in ((errors, "error"), (warnings, "warning")) if n]
    return f"{counts}; {' and '.join(dropped)} not selected" if dropped else counts


def _dropped_rejections(report: Report, total: int) -> str:
    """Who would reject the files whose errors the selection dropped: `the service would
    reject 1 of 2 files`; empty when it dropped none."""
    service = {p for p, n in report.not_selected.items() if n.errors > n.policy_only_errors}
    policy = {p for p, n in report.not_selected.items() if n.errors} - service
    noun = "file" if total == 1 else "files"
    if service:
        more = f", the project's policy {len(policy)} more" if policy else ""
        return f"the service would reject {len(service)} of {total} {noun}{more}"
    if policy:
        return f"the project's policy would reject {len(policy)} of {total} {noun}"
    return ""


def _pointers(report: Report) -> list[Input]:
    return [i for i in report.inputs if i.facts.get("container") == LFS_POINTER]


def _unchecked(report: Report) -> str:
    """`, 1 not checked: a Git LFS pointer`, or empty."""
    pointers = len(_pointers(report))
    if not pointers:
        return ""
    what = "a Git LFS pointer" if pointers == 1 else "Git LFS pointers"
    return f", {pointers} not checked: {what}"


def summary(item: Input) -> str:
    """`video, MP4, h264 1280x720, 30 fps, 12.5 s, 3.1 MB` and the like."""
    facts: Mapping[str, Any] = item.facts
    parts = [item.kind]
    container = CONTAINERS.get(str(facts.get("container")))
    if container is not None:
        parts.append(container.label)
    if facts.get("codec"):
        shape = f" {facts['width']}x{facts['height']}" if facts.get("width") else ""
        parts.append(f"{facts['codec']}{shape}")
    elif facts.get("width"):
        parts.append(f"{facts['width']}x{facts['height']}")
    if facts.get("rotation"):
        parts.append(f"rotated {facts['rotation']}")
    if facts.get("fps"):
        parts.append(f"{facts['fps']:g} fps")
    if facts.get("sample_rate"):
        parts.append(f"{facts['sample_rate']} Hz x{facts.get('channels') or '?'}")
    if facts.get("duration") is not None:
        parts.append(f"{facts['duration']:.3f}".rstrip("0").rstrip(".") + " s")
    if facts.get("size_bytes") is not None:
        parts.append(size_text(facts["size_bytes"]))
    if isinstance(facts.get("url"), Mapping):
        from retalk.preflight.url import summary as url_summary

        parts.append(url_summary(dict(facts["url"])))
    return ", ".join(parts)


def job_summary(job: Mapping[str, Any]) -> str:
    """`output 8 s, billed 8 s; video 8 s, audio 12 s; video_extension=false`."""
    parameters = ", ".join(
        f"{k}={str(v).lower()}" for k, v in dict(job.get("parameters") or {}).items()
    )
    if "output_duration" not in job:
        return (
            f"parameters {parameters}; not judged as a whole (that needs both a video and an "
            "audio): each file above only in its role"
        )
    cost = f" ≈ {job['cost_cny']:.2f} CNY" if job.get("cost_cny") is not None else ""
    return (
        f"output {_num(job['output_duration'])} s, billed {_num(job['billable_seconds'])} s"
        f"{cost} (video {_num(job['video_duration'])} s, audio {_num(job['audio_duration'])} s)"
        f"; parameters {parameters}"
    )


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
