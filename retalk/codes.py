"""Every finding code retalk can give, with its severity and a one-line meaning.

Codes of what the service would reject are the service's own (`InvalidFile.*`); retalk's own
warnings and facts have codes of their own, stable across releases. The README documents every
code here (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How much a finding matters for the job."""

    ERROR = "error"
    """The service would reject the input."""
    WARNING = "warning"
    """The service accepts it, but the result will suffer or may be rejected."""
    INFO = "info"
    """A fact worth knowing."""


@dataclass(frozen=True)
class Code:
    name: str
    severity: Severity
    summary: str
    service: bool
    """True for the service's own error codes."""


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

CODES: dict[str, Code] = {
    code.name: code
    for code in (
        Code(
            "InvalidFile.Format",
            _E,
            "not a container, codec or image format the service takes",
            True,
        ),
        Code(
            "InvalidFile.Size",
            _E,
            "file over its size limit (300 MB video, 30 MB audio, 10 MB image)",
            True,
        ),
        Code(
            "InvalidFile.Duration", _E, "video or audio shorter than 2 s or longer than 120 s", True
        ),
        Code("InvalidFile.FPS", _E, "video frame rate outside 15 to 60 fps", True),
        Code("InvalidFile.Resolution", _E, "a displayed video side outside 640 to 2048 px", True),
        Code(
            "InvalidFile.ImageSize",
            _E,
            "image long/short side over 2, or longest side over 4096 px",
            True,
        ),
        Code(
            "InvalidFile.Openerror",
            _E,
            "the file cannot be opened as video, audio or image (broken, cut short, empty)",
            True,
        ),
        Code(
            "File.Unreadable",
            _E,
            "no such file, a folder, not a regular file, or no permission to read it",
            False,
        ),
        Code(
            "File.ExtensionMismatch", _W, "the file name's ending disagrees with its content", False
        ),
        Code(
            "File.NearLimit",
            _W,
            "a value on an ambiguous edge of a limit: the service may reject it",
            False,
        ),
        Code(
            "File.Truncated", _W, "the file ends before its header says: probably cut short", False
        ),
        Code(
            "File.Unmeasured",
            _W,
            "a limit could not be checked because the file does not say the value",
            False,
        ),
    )
}


def severity_of(code: str) -> Severity:
    return CODES[code].severity
