"""The platform's submit quota: at most `rate` submits a second per account, with a burst of at
most `max(1, rate)`: a token bucket. Over it, the service answers 429 `Throttling.RateQuota`
and creates no task."""

from __future__ import annotations

import threading
import time


class RateQuota:
    """A token bucket of `rate` tokens a second, holding at most `max(1, rate)`; rate 0 is no
    quota at all."""

    def __init__(self, rate: float) -> None:
        if rate < 0:
            raise ValueError("a submit rate cannot be negative")
        self.rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Whether a submit now is within the quota (and counts against it)."""
        if not self.rate:
            return True
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def wait_s(self) -> float:
        """Seconds until the next submit would be within the quota (for Retry-After)."""
        if not self.rate:
            return 0.0
        with self._lock:
            tokens = self._tokens + (time.monotonic() - self._last) * self.rate
            return max(0.0, (1.0 - tokens) / self.rate)
