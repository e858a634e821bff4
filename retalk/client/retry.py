"""Retries as a transport wrapper, for requests that are safe to send twice: reads, and uploads
(which write the same object again). A submit is retried only when it surely made no task: its
connection never opened (nothing was sent), or the service throttled it (429: it made none); a
submit whose answer is lost is never sent again (a duplicate task is billed). Any request whose
connection never opened may be tried again. No retry waits past the call's deadline; a
Retry-After is capped at a minute, and every wait is logged (`retalk.client`, INFO) with what the
service asked. A download does its own retries (it resumes): its requests carry `NO_RETRY`."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_EXTENSION = "retalk.retry"
"""Set on a request's extensions to mark a non-GET request as safe to repeat (the upload)."""
THROTTLED_EXTENSION = "retalk.retry_throttled"
"""Set on a request that is not safe to repeat, but is after a 429 (the submit)."""
NO_RETRY_EXTENSION = "retalk.no_retry"
"""Set on a request whose caller retries it itself (the download, which resumes)."""
DEADLINE_EXTENSION = "retalk.deadline"
"""Set on a request's extensions: the `time.monotonic()` its call must be over by."""
WHAT_EXTENSION = "retalk.what"
"""The step a request is for (`query`, `download` …): what the retry log names, rather than its
address, which a server's redirect chooses (and may fill with the key)."""
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before any byte of the request left: sending again cannot make a duplicate."""
MAX_RETRY_AFTER = 60.0
_log = logging.getLogger("retalk.client")


def retryable(request: httpx.Request) -> bool:
    return request.method in SAFE_METHODS or bool(request.extensions.get(RETRY_EXTENSION))


def delay(attempt: int, base: float, cap: float, response: httpx.Response | None = None) -> float:
    """Retry-After when the answer gives one, else exponential backoff with full jitter."""
    if response is not None:
        after = retry_after(response.headers.get("Retry-After"))
        if after is not None:
            return min(after, MAX_RETRY_AFTER)
    return random.uniform(0, min(cap, base * 2**attempt))


def retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` asks for (a number or an HTTP date); None when it says none."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _what(request: httpx.Request) -> str:
    what = request.extensions.get(WHAT_EXTENSION)
    return f"{request.method} ({what})" if isinstance(what, str) else request.method


class _Policy:
    """When to try again, shared by the sync and the async wrapper."""

    def __init__(self, retries: int, backoff: float, cap: float) -> None:
        self.retries, self.backoff, self.cap = retries, backoff, cap

    def after_error(
        self, request: httpx.Request, attempt: int, error: httpx.TransportError
    ) -> float | None:
        """Seconds to wait before the next try after a transport error; None: give up."""
        if request.extensions.get(NO_RETRY_EXTENSION) or attempt >= self.retries:
            return None
        if not retryable(request) and not isinstance(error, NEVER_SENT):
            return None
        return self._within(request, delay(attempt, self.backoff, self.cap), "no answer")

    def after_answer(
        self, request: httpx.Request, attempt: int, response: httpx.Response
    ) -> float | None:
        """Seconds to wait before the next try after this answer; None: it is the answer."""
        status = response.status_code
        if status not in RETRY_STATUSES or request.extensions.get(NO_RETRY_EXTENSION):
            return None
        throttled = status == 429 and bool(request.extensions.get(THROTTLED_EXTENSION))
        if not (retryable(request) or throttled) or attempt >= self.retries:
            return None
        wait = delay(attempt, self.backoff, self.cap, response)
        asked = retry_after(response.headers.get("Retry-After"))  # a number, never the text
        said = f", Retry-After {asked:g} s (capped at {MAX_RETRY_AFTER:g} s)" if asked else ""
        return self._within(request, wait, f"HTTP {response.status_code}{said}")

    @staticmethod
    def _within(request: httpx.Request, wait: float, why: str) -> float | None:
        """`wait`, unless it would end past the call's deadline: then no retry."""
        ends = request.extensions.get(DEADLINE_EXTENSION)
        if isinstance(ends, float) and time.monotonic() + wait >= ends:
            _log.info("%s: %s; no retry, the call's deadline is near", _what(request), why)
            return None
        _log.info("%s: %s; retrying in %.1f s", _what(request), why, wait)
        return wait


class RetryTransport(httpx.BaseTransport):
    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        retries: int,
        backoff: float,
        cap: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._inner, self._policy, self._sleep = inner, _Policy(retries, backoff, cap), sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._inner.handle_request(request)
            except httpx.TransportError as error:
                wait = self._policy.after_error(request, attempt, error)
                if wait is None:
                    raise
            else:
                wait = self._policy.after_answer(request, attempt, response)
                if wait is None:
                    return response
                response.close()
            self._sleep(wait)
            attempt += 1

    def close(self) -> None:
        self._inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, inner: httpx.AsyncBaseTransport, *, retries: int, backoff: float, cap: float
    ) -> None:
        self._inner, self._policy = inner, _Policy(retries, backoff, cap)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as error:
                wait = self._policy.after_error(request, attempt, error)
                if wait is None:
                    raise
            else:
                wait = self._policy.after_answer(request, attempt, response)
                if wait is None:
                    return response
                await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self._inner.aclose()
