"""What `retalk fix` changes in a file: one line per rule, before → after."""

from __future__ import annotations

from typing import NamedTuple


class Change(NamedTuple):
    """One property of a file that a fix changes, named by the rule whose limit it meets."""

    code: str
    """The finding code the change answers (`InvalidFile.FPS`); empty for a change no rule asks
    for (a conversion the output's name asks for, an odd side cropped for H.264)."""
    what: str
    """The property, in a few words: "frame rate", "container", "longest side"."""
    before: str
    """Its value in the input, as printed: "12 fps"."""
    after: str
    """Its value in the output: "15 fps"."""

    def __str__(self) -> str:
        line = f"{self.what}: {self.before} → {self.after}"
        return f"{line}  ({self.code})" if self.code else line
