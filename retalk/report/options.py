from __future__ import annotations

from dataclasses import dataclass

from retalk.codes import Severity, strict_fails
from retalk.findings import Finding


@dataclass(frozen=True)
class RenderOptions:
    quiet: bool = False
    """Findings of severity error and warning only: no facts, no hints, no verdict."""
    strict: bool | tuple[str, ...] = False
    """Warnings fail the check too (`--strict`; a tuple: those whose code starts with one of
    these prefixes, as the policy's `strict` list): the verdict says so."""

    def blocks(self, f: Finding) -> bool:
        """Whether `f` fails the check: an error, or a warning `strict` names. The machine
        formats show such a warning as failing, so that they agree with the exit code."""
        if f.severity is Severity.ERROR:
            return True
        return f.severity is Severity.WARNING and strict_fails(self.strict, f.code)
