"""Findings and reports: what retalk says about inputs, separate from how it is shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
) -> Finding:
    """A finding whose severity is the one registered for its code."""
    return Finding(code, CODES[code].severity, path, message, expected, actual, hint, at)


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
        return Report(self.inputs, select_findings(self.findings, *given), self.job)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": self.ok,
            "inputs": [i.to_dict() for i in self.inputs],
            "findings": [f.to_dict() for f in self.findings],
            "job": None if self.job is None else dict(self.job),
        }

    @classmethod
    def merge(cls, reports: Iterable[Report]) -> Report:
        inputs: list[Input] = []
        findings: list[Finding] = []
        for report in reports:
            inputs.extend(report.inputs)
            findings.extend(report.findings)
        return cls(tuple(inputs), tuple(findings))
