"""The asynchronous client: the same calls as `Client`, awaited."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from retalk.client import core
from retalk.client.config import Timing, base_url, load_api_key
from retalk.client.errors import TaskFailed, TransportError, WaitTimeout, error_from_transport
from retalk.client.files import CountingReader, PartialFile, Progress
from retalk.client.models import Task, TaskPage, TaskStatus, UploadPolicy
from retalk.client.retry import AsyncRetryTransport, delay


class AsyncClient:
    """The VideoRetalk service over HTTP, for asyncio. See `Client`.

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = core.Core(load_api_key(api_key), base_url(url), timing or Timing.from_env())
        t = self._core.timing
        self._http = httpx.AsyncClient(
            transport=AsyncRetryTransport(
                transport or httpx.AsyncHTTPTransport(),
                retries=t.retries,
                backoff=t.backoff,
                cap=t.backoff_cap,
            ),
            timeout=self._core.timeout,
            follow_redirects=True,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self._core.base_url!r})"

    async def _send(self, call: core.Call, what: str) -> httpx.Response:
        try:
            return await self._http.request(
                call.method,
                call.url,
                headers=call.headers,
                params=call.params,
                json=call.json,
                extensions=call.extensions,
            )
        except httpx.TransportError as error:
            raise error_from_transport(error, what) from None

    async def upload(self, path: str | os.PathLike[str], progress: Progress | None = None) -> str:
        """Upload a local file to the platform's temporary storage (48 hours); returns its
        `oss://` URL for `submit`. Streams from disk."""
        file = Path(path)
        policy = UploadPolicy.from_answer(
            core.read_answer(await self._send(self._core.policy(), "upload policy"))
        )
        self._core.check_upload_size(policy, file)
        key, fields = self._core.upload_form(policy, file)
        with open(file, "rb") as stream:
            reader = CountingReader(stream, file.stat().st_size, progress)
            files = {"file": (core.safe_name(file.name), reader, core.content_type(file))}
            try:
                response = await self._http.post(
                    policy.upload_host,
                    data=fields,
                    files=files,  # type: ignore[arg-type]  # a file-like, read in chunks
                    extensions=self._core.upload_extensions(),
                )
            except httpx.TransportError as error:
                raise error_from_transport(error, "upload") from None
        core.read_upload_answer(response)
        return core.OSS_SCHEME + key

    async def submit(
        self,
        video_url: str,
        audio_url: str,
        ref_image_url: str | None = None,
        video_extension: bool = False,
        query_face_threshold: int | None = None,
    ) -> Task:
        """Start a task. Inputs are URLs: `http(s)://`, or `oss://` from `upload`."""
        call = self._core.submit(
            video_url, audio_url, ref_image_url, video_extension, query_face_threshold
        )
        return core.read_task(await self._send(call, "submit"))

    async def get(self, task_id: str) -> Task:
        return core.read_task(await self._send(self._core.get(task_id), "query"))

    async def cancel(self, task_id: str) -> None:
        """Cancel a task that is still PENDING."""
        core.read_answer(await self._send(self._core.cancel(task_id), "cancel"))

    async def list(
        self, page_no: int = 1, page_size: int = 10, status: str | None = None
    ) -> TaskPage:
        return core.read_page(await self._send(self._core.list(page_no, page_size, status), "list"))

    async def wait(
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
            task = await self.get(task_id)
            if on_update is not None:
                on_update(task)
            if task.status is TaskStatus.SUCCEEDED:
                return task
            if task.status.finished:
                raise TaskFailed(task)
            waited = time.monotonic() - started
            if timeout is not None and waited + interval > timeout:
                raise WaitTimeout(task, waited)
            await asyncio.sleep(interval)
            interval = core.next_interval(interval, self._core.timing)

    async def download(
        self,
        task: Task | str,
        path: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> Path:
        """Fetch a SUCCEEDED task's video (or a URL) to `path` (a file, or a folder to put it
        in). Streamed; resumed with Range after a dropped connection; atomic."""
        url = task.video_url if isinstance(task, Task) else task
        task_id = task.task_id if isinstance(task, Task) else None
        if not url:
            raise ValueError("the task has no result video (yet)")
        partial = PartialFile(core.download_target(path, url, task_id))
        attempts = self._core.timing.retries + 1
        for attempt in range(attempts):
            try:
                return await self._download_once(url, partial, progress)
            except httpx.TransportError as error:
                if attempt + 1 == attempts:
                    raise error_from_transport(error, "download") from None
                await asyncio.sleep(
                    delay(attempt, self._core.timing.backoff, self._core.timing.backoff_cap)
                )
        raise TransportError("download: gave up")  # the loop returns or raises first

    async def _download_once(
        self, url: str, partial: PartialFile, progress: Progress | None
    ) -> Path:
        have = partial.have
        headers = {"Range": f"bytes={have}-"} if have else {}
        async with self._http.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and have:  # the part is whole already
                return partial.finish()
            if response.status_code >= 400:
                await response.aread()
                core.read_answer(response)
            restart = response.status_code != 206
            done = 0 if restart else have
            total = core.total_size(response, done)
            with partial.open(restart) as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        return partial.finish()
