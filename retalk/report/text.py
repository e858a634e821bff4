from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retalk.codes import Severity, strict_fails
from retalk.findings import Finding, Input, Report
from retalk.preflight.formats import CONTAINERS
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
    total = len(report.inputs)
    rejected = len({f.path for f in report.errors})
    counts = f"{_count(len(report.errors), 'error')}, {_count(len(report.warnings), 'warning')}"
    noun = "file" if total == 1 else "files"
    if rejected:
        return f"FAIL: the service would reject {rejected} of {total} {noun} ({counts})"
    failing = [w for w in report.warnings if strict_fails(strict, w.code)]
    if failing:
        warned = len({f.path for f in failing})
        why = "--strict" if strict is True else f"strict on {', '.join(strict or ())}"
        return f"FAIL ({why}): warnings on {warned} of {total} {noun} ({counts})"
    return (
        f"OK: the service would accept {'the' if total == 1 else 'all'} {total} {noun} ({counts})"
    )


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
    if "size_bytes" in facts:
        parts.append(size_text(facts["size_bytes"]))
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
    return (
        f"output {_num(job['output_duration'])} s, billed {_num(job['billable_seconds'])} s "
        f"(video {_num(job['video_duration'])} s, audio {_num(job['audio_duration'])} s); "
        f"parameters {parameters}"
    )


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
