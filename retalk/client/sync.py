"""The synchronous client."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx

from retalk.client import core
from retalk.client.body import Deadline, Decoder, deadline_transport
from retalk.client.config import ApiKey, Timing, base_url, load_api_key
from retalk.client.errors import (
    HTTPX_ERRORS,
    ApiError,
    InvalidAnswer,
    InvalidResult,
    ResultExpired,
    SubmitLost,
    TaskFailed,
    TransportError,
    WaitTimeout,
    error_from_httpx,
)
from retalk.client.files import MAX_RESTARTS, CountingReader, PartialFile, Progress
from retalk.client.models import Task, TaskPage, TaskStatus
from retalk.client.retry import RetryTransport
from retalk.client.verify import verify
from retalk.job import Parameters

_T = TypeVar("_T")


class Client:
    """The VideoRetalk service over HTTP.

    The key comes from `api_key`, else DASHSCOPE_API_KEY, else the key file; the address from
    `url`, else DASHSCOPE_HTTP_BASE_URL, else the mainland endpoint. Reads and uploads are
    retried on 429, 5xx and failed connections; a submit never is.
    """

    def __init__(
        self,
        api_key: str | None = None,
        url: str | None = None,
        *,
        timing: Timing | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        given = ApiKey(api_key) if api_key else None
        del api_key  # no frame of ours holds the plain key while it is checked (see ApiKey)
        self._core = core.Core(load_api_key(given), base_url(url), timing or Timing.from_env())
        t = self._core.timing
        self._http = httpx.Client(
            transport=RetryTransport(
                transport or deadline_transport(),
                retries=t.retries,
                backoff=t.backoff,
                cap=t.backoff_cap,
            ),
            timeout=self._core.timeout,
            follow_redirects=True,
        )

    @property
    def timing(self) -> Timing:
        """The timeouts and deadlines this client keeps to."""
        return self._core.timing

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        core = getattr(self, "_core", None)  # None when __init__ failed
        return f"Client(base_url={core.base_url if core else None!r})"

    def _guard(
        self,
        what: str,
        deadline: Deadline,
        step: Callable[[], _T],
        sent_at: datetime | None = None,
    ) -> _T:
        """`step`, within `deadline`, with whatever httpx raises turned into retalk's error,
        raised outside the handler so that it drags no context (httpx's frames hold the
        request's headers). `sent_at`: a submit, whose lost answer is `SubmitLost`."""
        try:
            with deadline.active():
                return step()
        except HTTPX_ERRORS as error:
            failure = error_from_httpx(error, what, sent_at)
            if type(failure) is TransportError and deadline.left() <= 0:
                failure = deadline.expired()
        except TransportError as error:  # the deadline, met while reading a body
            failure = error.with_traceback(None)
            if sent_at is not None and not isinstance(failure, SubmitLost):
                failure = SubmitLost(str(error).removeprefix(f"{what}: "), sent_at)
        except InvalidAnswer as error:
            failure = error.with_traceback(None)
            if sent_at is not None:  # a 2xx to a submit that cannot be read: a task may exist
                failure = SubmitLost(f"an answer that cannot be read: {error.problem}", sent_at)
        except ApiError as error:
            failure = error.with_traceback(None)  # its frames hold the answer, and what it echoed
        raise failure

    def _send(
        self,
        call: core.Call,
        read: Callable[[core.Answer], _T],
        sent_at: datetime | None = None,
    ) -> _T:
        """`call`'s answer, its body read within the size cap and the call's deadline, then
        `read` (checked against its shape) inside the guard."""
        deadline = self._core.deadline(call)
        return self._guard(
            call.what, deadline, lambda: read(self._exchange(call, deadline)), sent_at
        )

    def _exchange(self, call: core.Call, deadline: Deadline) -> core.Answer:
        request = self._http.build_request(**self._core.send_args(call, deadline))
        auth = self._core.auth if call.auth else None
        response = self._http.send(request, auth=auth, stream=True)
        try:
            return core.Answer(
                response.status_code,
                response.headers,
                self._body(response, deadline, core.MAX_ANSWER_BYTES, call.what),
                call.what,
            )
        finally:
            response.close()

    @staticmethod
    def _body(response: httpx.Response, deadline: Deadline, cap: int, what: str) -> bytes:
        decoder = Decoder(response.headers.get("Content-Encoding", ""), cap, what)
        body = bytearray()
        for raw in response.iter_raw():
            deadline.check()
            for piece in decoder.feed(raw):
                body += piece
        decoder.end()
        return bytes(body)

    def upload(self, path: str | os.PathLike[str], progress: Progress | None = None) -> str:
        """Upload a local file to the platform's temporary storage (48 hours); returns its
        `oss://` URL for `submit`. Streams from disk."""
        file = Path(path)
        policy = self._send(self._core.policy(), self._core.policy_of)
        self._core.check_upload_size(policy, file)
        with open(file, "rb") as stream:
            reader = CountingReader(stream, file.stat().st_size, progress)
            key, call = self._core.upload(policy, file, reader)
            self._send(call, self._core.uploaded)
        return core.OSS_SCHEME + key

    def submit(
        self,
        video_url: str,
        audio_url: str,
        ref_image_url: str | None = None,
        parameters: Parameters | None = None,
    ) -> Task:
        """Start a task. Inputs are URLs: `http(s)://`, or `oss://` from `upload`. A throttled
        submit (429) is sent again after the wait the service asks for, and one whose
        connection never opened; one whose answer is lost raises `SubmitLost` (the task may
        exist: never send it again blindly)."""
        call = self._core.submit(video_url, audio_url, ref_image_url, parameters)
        sent_at = datetime.now(UTC)
        return self._send(call, lambda answer: self._core.submitted(answer, sent_at), sent_at)

    def get(self, task_id: str) -> Task:
        """The task as the service knows it now (UNKNOWN: no such task, or forgotten)."""
        return self._send(self._core.get(task_id), self._core.task)

    def cancel(self, task_id: str) -> None:
        """Cancel a task that is still PENDING."""
        self._send(self._core.cancel(task_id), self._core.read)

    def list(
        self,
        page_no: int = 1,
        page_size: int = 10,
        status: str | None = None,
        *,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
    ) -> TaskPage:
        """One page of your tasks, newest first; `start_time` and `end_time` (datetimes, or
        `YYYYMMDDhhmmss` in the service's zone) at most 24 hours apart."""
        call = self._core.list(page_no, page_size, status, start_time, end_time)
        return self._send(call, self._core.page)

    def tasks_between(
        self,
        start: datetime | str,
        end: datetime | str,
        status: str | None = None,
        *,
        page_size: int = core.LIST_PAGE_SIZE,
    ) -> Iterator[Task]:
        """Every task submitted between `start` and `end`, across pages and across 24-hour
        windows (the most one list call may span), each once."""
        seen: set[str] = set()
        for window in core.windows(start, end):
            page_no = 1
            while True:
                page = self.list(page_no, page_size, status, **window)
                for task in page.tasks:
                    if task.task_id not in seen:
                        seen.add(task.task_id)
                        yield task
                if not core.more_pages(page, page_no):
                    break
                page_no += 1

    def check_access(self) -> None:
        """One cheap authenticated call (a list of one task): a wrong key, a wrong base URL or a
        service out of reach is known in a second, before any upload."""
        self._send(self._core.list(1, 1), self._core.page)

    def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        on_update: Callable[[Task], None] | None = None,
    ) -> Task:
        """Query until the task ends; returns it SUCCEEDED, raises TaskFailed otherwise, and
        WaitTimeout when `timeout` seconds pass first. The interval starts at `poll_interval`
        (or the timing's) and grows to its cap."""
        interval = poll_interval or self._core.timing.poll_interval
        started = time.monotonic()
        while True:
            task = self.get(task_id)
            if on_update is not None:
                on_update(task)
            if task.status is TaskStatus.SUCCEEDED:
                return task
            if task.status.finished:
                raise TaskFailed(task)
            waited = time.monotonic() - started
            if timeout is not None and waited + interval > timeout:
                raise WaitTimeout(task, waited)
            time.sleep(interval)
            interval = core.next_interval(interval, self._core.timing)

    def download(
        self,
        task: Task | str,
        path: str | os.PathLike[str],
        progress: Progress | None = None,
        *,
        overwrite: bool = True,
    ) -> Path:
        """Fetch a SUCCEEDED task's video (or a URL) to `path` (a file, or a folder to put it
        in, named by the task). Streamed; resumed with Range and If-Range after a dropped
        connection, only onto a part known to be this result's; checked against the announced
        length; given a Task, verified (`retalk.client.verify`: a video of the billed length)
        before it takes its name; atomic. A link past its time is `ResultExpired`, a file that
        is not the result `InvalidResult`: either way nothing is kept. Failed requests are tried
        again `timing.retries` times in all. Without `overwrite`, an existing file is
        FileExistsError."""
        url, target = self._core.download_plan(task, path, overwrite)
        t = self._core.timing
        partial = PartialFile(target, url, t.max_result_bytes)
        deadline = self._core.deadline(core.Call("GET", url, "download", transfer=True))
        failures = restarts = 0
        try:
            while True:
                try:
                    whole = self._guard(
                        "download",
                        deadline,
                        lambda: self._download_once(url, partial, deadline, progress),
                    )
                except core.DOWNLOAD_RETRIED as failure:
                    failures += 1
                    if failures > t.retries or deadline.left() <= 0:
                        raise
                    time.sleep(min(core.retry_wait(failure, failures, t), deadline.left()))
                    continue
                if whole:
                    break
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise InvalidAnswer("download", "its ranges never match what was asked")
            if isinstance(task, Task):
                verify(partial.part, task)
            return partial.commit(overwrite)
        except (InvalidAnswer, InvalidResult, ResultExpired):
            partial.discard()  # what came is not the result: none of it is kept
            raise
        finally:
            partial.close()

    def _download_once(
        self, url: str, partial: PartialFile, deadline: Deadline, progress: Progress | None
    ) -> bool:
        """One request for the rest of the result: True when the part is whole, False when it
        must start over from 0."""
        call = core.download_call(url, partial)
        request = self._http.build_request(**self._core.send_args(call, deadline))
        response = self._http.send(request, stream=True)
        try:
            if response.status_code >= 400 and response.status_code != 416:
                body = self._body(response, deadline, core.MAX_ANSWER_BYTES, "download")
                answer = core.Answer(response.status_code, response.headers, body, "download")
                raise self._core.download_error(answer, url)
            if not partial.start(response.status_code, response.headers):
                return False
            decoder = Decoder(
                response.headers.get("Content-Encoding", ""), partial.cap, "download", identity=True
            )
            for raw in response.iter_raw():
                deadline.check()
                for piece in decoder.feed(raw):
                    partial.write(piece)
                    if progress is not None:
                        progress(partial.done, partial.length)
            decoder.end()
        finally:
            response.close()
        partial.complete()
        return True
