"""Files on the way up and down: a progress-counting reader, and a resumable, atomic writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Progress = Callable[[int, int | None], None]
"""Called with the bytes done so far and the total (None when unknown)."""


class CountingReader:
    """A file that reports how much of it has been read (httpx streams uploads from it in
    chunks, so the memory of an upload stays flat). Rewinding for a retry restarts the count."""

    def __init__(self, stream: BinaryIO, total: int, progress: Progress | None) -> None:
        self._stream, self._total, self._progress, self._done = stream, total, progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._done += len(chunk)
        if self._progress is not None:
            self._progress(self._done, self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._stream.seek(offset, whence)
        self._done = position
        return position

    def tell(self) -> int:
        return self._stream.tell()

    def fileno(self) -> int:
        return self._stream.fileno()


class PartialFile:
    """`name.part` beside the target, appended to across attempts, renamed over the target
    once whole: an interrupted download never leaves a truncated result under its real name."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.part = target.with_name(f".{target.name}.part")

    @property
    def have(self) -> int:
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0

    def open(self, restart: bool) -> BinaryIO:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        return open(self.part, "wb" if restart else "ab")

    def finish(self) -> Path:
        os.replace(self.part, self.target)
        return self.target
