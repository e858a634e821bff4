from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    quiet: bool = False
    """Findings of severity error and warning only: no facts, no hints, no verdict."""
    strict: bool = False
    """Warnings fail the check too (`--strict`): the verdict says so."""
