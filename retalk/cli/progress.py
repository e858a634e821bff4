"""A progress bar on stderr for many files, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_WIDTH = 30


@contextmanager
def progress_bar(label: str = "checking") -> Iterator[Callable[[int, int], None] | None]:
    """A `progress(done, total)` callback drawing `checking [#####    ] 12/200` on a terminal's
    stderr, erased when the block ends; None when stderr is not a terminal."""
    stream = sys.stderr
    if not stream.isatty():
        yield None
        return
    drawn = False

    def progress(done: int, total: int) -> None:
        nonlocal drawn
        if total <= 1:
            return
        filled = _WIDTH * done // total
        bar = "#" * filled + " " * (_WIDTH - filled)
        stream.write(f"\r{label} [{bar}] {done}/{total}")
        stream.flush()
        drawn = True

    try:
        yield progress
    finally:
        if drawn:
            stream.write("\r\x1b[K")
            stream.flush()
