"""Text from outside (file names, the service's messages) made safe to print on one line."""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` with every character that is not printable (line breaks, escape sequences,
    bidirectional overrides …) shown as its escape (`\\n`, `\\x1b`, `\\u202e`), so that a file
    name or a server's message can neither forge a line of the report nor drive the terminal."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c == " " else _NAMED.get(c) or c.encode("unicode_escape").decode()
        for c in text
    )
