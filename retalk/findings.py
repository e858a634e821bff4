"""Findings and reports: what retalk says about inputs, separate from how it is shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from retalk.codes import CODES, Severity

JSON_VERSION = 1


class Finding(NamedTuple):
    """One thing retalk found about one input."""

    code: str
    """The service's error code, or one of retalk's own (see `retalk.codes.CODES`)."""
    severity: Severity
    path: str
    """The input as the caller named it."""
    message: str
    """One line for people: the measured value and the limit."""
    expected: str | None = None
    """What the service takes, in words: `15 to 60 fps`."""
    actual: str | None = None
    """What the file has, in words: `12 fps`."""
    hint: str | None = None
    """How to fix it, often an ffmpeg command."""
    at: float | None = None
    """Where in the media, in seconds, when the finding has a place in time."""
    policy_only: bool = False
    """True when only the project's policy, stricter than the service, gives it: the file
    meets the service's own limit (`2048x1080` under `max-side = 1920`)."""

    def to_dict(self) -> dict[str, Any]:
        return {**self._asdict(), "severity": self.severity.value}


def finding(
    code: str,
    path: str,
    message: str,
    *,
    expected: str | None = None,
    actual: str | None = None,
    hint: str | None = None,
    at: float | None = None,
    policy_only: bool = False,
) -> Finding:
    """A finding whose severity is the one registered for its code."""
    severity = CODES[code].severity
    return Finding(code, severity, path, message, expected, actual, hint, at, policy_only)


class NotSelected(NamedTuple):
    """What a selection (`select`, `ignore`, per-path ignores) dropped of one path's findings."""

    errors: int = 0
    warnings: int = 0
    policy_only_errors: int = 0
    """Of `errors`, those only the project's policy gives (`Finding.policy_only`)."""

    def plus(self, other: NotSelected) -> NotSelected:
        """The counts of both."""
        return NotSelected(*(a + b for a, b in zip(self, other, strict=True)))

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> NotSelected:
        """The counts of `findings` (infos are not counted)."""
        errors = [f for f in findings if f.severity is Severity.ERROR]
        warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
        return cls(len(errors), warnings, sum(1 for f in errors if f.policy_only))


@dataclass(frozen=True)
class Input:
    """One input checked: what it is by content, the role it was checked for, its measured facts."""

    path: str
    kind: str
    """By content: `video`, `audio`, `image`, or `unknown` when it cannot be opened."""
    role: str | None
    """The role it was checked in (`video`, `audio`, `ref`); None when it could not be told."""
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "role": self.role, "facts": dict(self.facts)}


@dataclass(frozen=True)
class Report:
    """The inputs checked and the findings about them."""

    inputs: tuple[Input, ...] = ()
    findings: tuple[Finding, ...] = ()
    job: Mapping[str, Any] | None = None
    """For a job: its output's length and bill and the `parameters` it will be sent with."""
    not_selected: Mapping[str, NotSelected] = field(default_factory=dict)
    """Path → what the selection dropped of its errors and warnings, for the paths it dropped
    any of: so that a verdict never says the service would accept a file it would reject."""

    @property
    def ok(self) -> bool:
        """True when the service would accept every input: no finding of severity error."""
        return not self.errors

    @property
    def errors(self) -> tuple[Finding, ...]:
        return self._of(Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return self._of(Severity.WARNING)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)

    def _of(self, severity: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is severity)

    def for_path(self, path: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.path == path)

    def filtered(
        self, select: Iterable[str] | str = (), ignore: Iterable[str] | str = ()
    ) -> Report:
        """Keep the findings selected by code prefix as flake8 does: of the prefixes in `select`
        (all codes when empty) and `ignore` a code starts with, the longest decides, so that
        `ignore=["File."], select=["File.NearLimit"]` keeps NearLimit. A prefix of an older
        spelling (`retalk.codes.ALIASES`) also stands for its current code."""
        from retalk.policy.selection import select_findings

        given = [(p,) if isinstance(p, str) else tuple(p) for p in (select, ignore)]
        return self.selected(select_findings(self.findings, *given))

    def selected(self, kept: Iterable[Finding]) -> Report:
        """This report with only the findings `kept` (a selection of its own, in order); what
        the others were is counted in `not_selected`."""
        kept = tuple(kept)
        chosen = set(map(id, kept))
        dropped: dict[str, list[Finding]] = {}
        for f in self.findings:
            if id(f) not in chosen:
                dropped.setdefault(f.path, []).append(f)
        counts = dict(self.not_selected)
        for path, findings in dropped.items():
            count = NotSelected.of(findings)
            if count != NotSelected():
                counts[path] = counts.get(path, NotSelected()).plus(count)
        return replace(self, findings=kept, not_selected=counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": self.ok,
            "inputs": [i.to_dict() for i in self.inputs],
            "findings": [f.to_dict() for f in self.findings],
            "job": None if self.job is None else dict(self.job),
            "not_selected": {p: n._asdict() for p, n in self.not_selected.items()},
        }

    @classmethod
    def merge(cls, reports: Iterable[Report]) -> Report:
        inputs: list[Input] = []
        findings: list[Finding] = []
        dropped: dict[str, NotSelected] = {}
        for report in reports:
            inputs.extend(report.inputs)
            findings.extend(report.findings)
            for path, count in report.not_selected.items():
                dropped[path] = dropped.get(path, NotSelected()).plus(count)
        return cls(tuple(inputs), tuple(findings), not_selected=dropped)
