"""Sizes shown to people, in the unit of the service's limits (`limits.MIB`)."""

from __future__ import annotations

from retalk.limits import MIB

KIB = 1024


def size_text(size: int) -> str:
    """`6 bytes`, `151 KB`, `2.1 MB`: a byte count in the unit the limits use, where a MB is
    1,048,576 bytes (`limits.MIB`) and a KB 1,024, so that a size shown beside a limit reads in
    the limit's own unit, in the check and the upload alike."""
    if size < KIB:
        return f"{size} byte{'' if size == 1 else 's'}"
    if round(size / KIB) < KIB:
        return f"{size / KIB:.0f} KB"
    return f"{size / MIB:,.1f} MB"
