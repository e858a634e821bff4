"""Faults the emulator can inject, to test what a client does when the service misbehaves."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from retalk.codes import ALIASES

_OLD_SPELLING = {code: alias for alias, code in ALIASES.items()}


@dataclass
class Faults:
    throttle_every: int = 0
    """Answer every Nth API request with 429 `Throttling.RateQuota` (0: never)."""
    error_every: int = 0
    """Answer every Nth API request with 500 `InternalError` (0: never)."""
    retry_after: float = 0.0
    """The Retry-After header of those answers, in seconds."""
    slow: float = 0.0
    """Seconds to sit on every API request before answering."""
    drop_download_after: int = 0
    """Close the connection after this many bytes of each result's first download (0: never)."""
    old_spelling: bool = False
    """Answer a failed task's code as the original document spells it: `InvalidFile.FaceNotMach`
    for `InvalidFile.FaceNotMatch` (`retalk.codes.ALIASES`)."""
    drop_submit_answer_every: int = 0
    """Accept every Nth submit that makes a task (the task is created, queued, run and billed
    as any other), then close the connection without an answer: the lost answer a client must
    not resolve by submitting again (0: never)."""
    _count: int = field(default=0, repr=False)
    _created: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_fault(self) -> str | None:
        """`throttle`, `error` or None for the next API request."""
        with self._lock:
            self._count += 1
            n = self._count
        if self.throttle_every and n % self.throttle_every == 0:
            return "throttle"
        if self.error_every and n % self.error_every == 0:
            return "error"
        return None

    def drop_answer(self) -> bool:
        """Whether the answer to the submit that just made a task is to be dropped."""
        with self._lock:
            self._created += 1
            n = self._created
        return bool(self.drop_submit_answer_every) and n % self.drop_submit_answer_every == 0

    def spelled(self, output: dict[str, Any]) -> dict[str, Any]:
        """A task's `output` with its code spelled the old way, when `old_spelling` says so."""
        code = output.get("code")
        if self.old_spelling and isinstance(code, str) and code in _OLD_SPELLING:
            return {**output, "code": _OLD_SPELLING[code]}
        return output
