from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    quiet: bool = False
    """Findings of severity error and warning only: no facts, no hints, no verdict."""
    strict: bool | tuple[str, ...] = False
    """Warnings fail the check too (`--strict`; a tuple: those whose code starts with one of
    these prefixes, as the policy's `strict` list): the verdict says so."""
