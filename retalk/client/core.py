"""What the sync and the async client share: every request they make, built here, and every
answer, read here. No I/O happens in this module."""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from retalk import limits
from retalk.client import answers
from retalk.client.body import ACCEPT_ENCODING, Deadline
from retalk.client.config import DEFAULT_BASE_URL, MODEL, ApiKey, Timing
from retalk.client.errors import (
    ApiError,
    ApiStatusError,
    InvalidAnswer,
    InvalidRequest,
    RateLimited,
    ResultExpired,
    ServerError,
    SubmitLost,
    TransportError,
    error_from_answer,
)
from retalk.client.expiry import answer_expiry, is_past, link_expiry, says_expired
from retalk.client.files import PartialFile
from retalk.client.models import Task, TaskPage, UploadPolicy
from retalk.client.retry import (
    DEADLINE_EXTENSION,
    MAX_RETRY_AFTER,
    NO_RETRY_EXTENSION,
    RETRY_EXTENSION,
    THROTTLED_EXTENSION,
    WHAT_EXTENSION,
    delay,
    retry_after,
)
from retalk.client.verify import check_task
from retalk.job import Parameters
from retalk.units import size_text

SUBMIT_PATH = "/services/aigc/image2video/video-synthesis/"
OSS_SCHEME = "oss://"
MAX_ANSWER_BYTES = 4 * limits.MIB
"""The largest answer read, decoded: a page of 100 tasks is a few tens of KB."""
_ERROR_BYTES = 64 * 1024


@dataclass(frozen=True)
class Call:
    """One request, ready for either client to send. `auth`: it carries the key (calls to the
    service, never to the upload host or a result's address)."""

    method: str
    url: str
    what: str
    """The step, for messages: `submit`, `query`, `upload` …"""
    auth: bool = True
    transfer: bool = False
    """An upload or a download: the transfer deadline, not the call's."""
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    files: Any = None
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """An answer, its body read within the caps."""

    status: int
    headers: httpx.Headers
    body: bytes = field(repr=False)
    what: str = ""


class KeyAuth(httpx.Auth):
    """The Bearer header, added as the request leaves: no call, dict or local variable of
    retalk's holds it, and so no traceback that prints locals can show it."""

    def __init__(self, key: ApiKey) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return "KeyAuth(****)"


class Core:
    def __init__(self, api_key: ApiKey, base_url: str, timing: Timing) -> None:
        self.api_key = api_key
        self.auth = KeyAuth(api_key)
        self.base_url = base_url
        self.timing = timing

    @property
    def timeout(self) -> httpx.Timeout:
        t = self.timing
        return httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.connect)

    def deadline(self, call: Call) -> Deadline:
        t = self.timing
        return Deadline(
            t.transfer_deadline if call.transfer else t.deadline, self.timeout, call.what
        )

    def send_args(self, call: Call, deadline: Deadline) -> dict[str, Any]:
        """`httpx.Client.build_request`'s arguments for `call`, its phases within `deadline`."""
        return {
            "method": call.method,
            "url": call.url,
            "headers": {"Accept-Encoding": ACCEPT_ENCODING, **call.headers},
            "params": call.params,
            "json": call.json,
            "data": call.data,
            "files": call.files,
            "extensions": {
                **call.extensions,
                DEADLINE_EXTENSION: deadline.ends,
                WHAT_EXTENSION: call.what,
            },
            "timeout": deadline.timeout(),
        }

    def submit(
        self,
        video_url: str,
        audio_url: str,
        ref_image_url: str | None = None,
        parameters: Parameters | None = None,
    ) -> Call:
        """The submit request; ValueError when the parameters cannot go with these inputs. A
        429 may be sent again (no task was made); nothing else may (see `submitted`)."""
        parameters = parameters or Parameters()
        parameters.check(bool(ref_image_url))
        urls = [video_url, audio_url, ref_image_url or ""]
        headers = {
            "Content-Type": "application/json",
            "X-DashScope-Async": "enable",
        }
        if any(u.startswith(OSS_SCHEME) for u in urls):
            headers["X-DashScope-OssResourceResolve"] = "enable"
        body = {
            "model": MODEL,
            "input": {"video_url": video_url, "audio_url": audio_url, "ref_image_url": urls[2]},
            "parameters": parameters.to_wire(),
        }
        return Call(
            "POST",
            self.base_url + SUBMIT_PATH,
            "submit",
            headers=headers,
            json=body,
            extensions={THROTTLED_EXTENSION: True},
        )

    def submitted(self, answer: Answer, sent_at: datetime) -> Task:
        """A submit's answer. A gateway's 502 or 504 says the request went on and no answer
        came back: the task may exist, so it is `SubmitLost`, never an error to retry."""
        if answer.status in LOST_STATUSES:
            raise SubmitLost(f"HTTP {answer.status} from a gateway", sent_at)
        return self.task(answer)

    def get(self, task_id: str) -> Call:
        return Call("GET", f"{self.base_url}/tasks/{_segment(task_id)}", "query")

    def cancel(self, task_id: str) -> Call:
        return Call("POST", f"{self.base_url}/tasks/{_segment(task_id)}/cancel", "cancel")

    def list(
        self,
        page_no: int = 1,
        page_size: int = 10,
        status: str | None = None,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
    ) -> Call:
        """`GET /tasks`; the times as the service writes them (see `service_time`), at most
        `limits.TASK_LIST_WINDOW_S` apart (ValueError otherwise)."""
        params: dict[str, Any] = {"page_no": page_no, "page_size": page_size, "model_name": MODEL}
        start = service_time(start_time) if start_time is not None else None
        end = service_time(end_time) if end_time is not None else None
        if start and end:
            span = (_parse_service_time(end) - _parse_service_time(start)).total_seconds()
            if span < 0:
                raise ValueError("the task list's end_time is before its start_time")
            if span > limits.TASK_LIST_WINDOW_S:
                raise ValueError("the task list takes at most 24 hours between its times")
        for name, value in (("status", status), ("start_time", start), ("end_time", end)):
            if value:
                params[name] = value
        return Call("GET", f"{self.base_url}/tasks", "list", params=params)

    def policy(self) -> Call:
        params = {"action": "getPolicy", "model": MODEL}
        return Call("GET", f"{self.base_url}/uploads", "upload policy", params=params)

    def upload(self, policy: UploadPolicy, path: Path, reader: Any) -> tuple[str, Call]:
        """The object key, and the form that sends the file (`reader`) to the upload host: the
        file goes last, as OSS requires. It may be sent again: it writes the same object."""
        key = f"{policy.upload_dir}/{safe_name(path.name)}"
        fields = {
            "OSSAccessKeyId": policy.oss_access_key_id,
            "Signature": policy.signature,
            "policy": policy.policy,
            "key": key,
            "x-oss-object-acl": policy.x_oss_object_acl,
            "x-oss-forbid-overwrite": policy.x_oss_forbid_overwrite,
            "success_action_status": "200",
            "x-oss-content-type": content_type(path),
        }
        files = {"file": (safe_name(path.name), reader, content_type(path))}
        call = Call(
            "POST",
            policy.upload_host,
            "upload",
            auth=False,
            transfer=True,
            data=fields,
            files=files,
            extensions={RETRY_EXTENSION: True},
        )
        return key, call

    def check_upload_size(self, policy: UploadPolicy, path: Path) -> None:
        size = path.stat().st_size
        if policy.max_file_size_mb and size > policy.max_file_size_mb * limits.MIB:
            raise InvalidRequest(
                400,
                "InvalidFile.Size",
                f"{path.name} is {size_text(size)}, over the upload limit of "
                f"{policy.max_file_size_mb:g} MB",
            )

    def read(self, answer: Answer) -> Any:
        """The JSON of a 2xx answer; an error answer raises the mapped exception."""
        if answer.status >= 400:
            raise self.error(answer)
        if not 200 <= answer.status < 300:
            raise InvalidAnswer(answer.what, f"HTTP {answer.status}")
        return answers.parse_json(answer.body, answer.what)

    def error(self, answer: Answer) -> ApiStatusError:
        """The exception for an error answer, JSON from the service or XML from OSS."""
        try:
            body = json.loads(answer.body)
        except (ValueError, RecursionError):
            body = _oss_error(answer)
        note = ""
        after = retry_after(answer.headers.get("Retry-After"))  # a number: never the text
        if answer.status == 429 and after is not None:
            note = f"it asks to wait {after:g} s before trying again"
        if answer.status == 404 and answer.what in SERVICE_STEPS:
            note = self._wrong_base()
        error = error_from_answer(answer.status, body, self.api_key, note)
        error.retry_after = after
        return error

    def _wrong_base(self) -> str:
        """What a 404 to a call of the service's own API means: the base URL is wrong."""
        tried = _origin_and_path(self.base_url)
        return (
            f"no such API at {tried}: is the base URL right? "
            f"set DASHSCOPE_HTTP_BASE_URL={DEFAULT_BASE_URL} (or your region's; it ends "
            "in /api/v1)"
        )

    def download_error(self, answer: Answer, url: str) -> ApiError:
        """The exception for an error answer to a download: an expired link is
        `ResultExpired`, with when it expired."""
        error = self.error(answer)
        if says_expired(answer.status, error.code, error.message):
            # The storage's own time first; the link's only when it is past: a link that says
            # it lives until 2286 and is refused as expired tells no time worth printing.
            signed = link_expiry(url)
            when = answer_expiry(answer.body) or (signed if is_past(signed) else None)
            return ResultExpired(when, error.request_id)
        return error

    def download_plan(
        self, task: Task | str, path: str | os.PathLike[str], overwrite: bool
    ) -> tuple[str, Path]:
        """The address and the target of a download, checked before any request: a Task must
        have SUCCEEDED; a link whose `Expires=` is past is `ResultExpired`; an existing target
        without `overwrite` is FileExistsError."""
        if isinstance(task, Task):
            check_task(task)
        url, task_id = self.result_url(task)
        expires = link_expiry(url)
        if is_past(expires):
            raise ResultExpired(expires)
        target = download_target(path, url, task_id)
        if not overwrite and target.exists():
            raise FileExistsError(errno.EEXIST, "already there (--force replaces it)", str(target))
        return url, target

    def task(self, answer: Answer) -> Task:
        return answers.task(self.read(answer), answer.what, self.api_key)

    def page(self, answer: Answer) -> TaskPage:
        return answers.page(self.read(answer), answer.what, self.api_key)

    def policy_of(self, answer: Answer) -> UploadPolicy:
        return answers.policy(self.read(answer), answer.what, self.api_key)

    def uploaded(self, answer: Answer) -> None:
        """OSS answers an upload with an empty 200, or an error in XML."""
        if answer.status >= 400:
            raise self.error(answer)

    def result_url(self, task: Task | str) -> tuple[str, str | None]:
        """The address to download, and the task id; a caller's URL must be http(s)."""
        if isinstance(task, Task):
            url, task_id = task.video_url or "", task.task_id
        else:
            url, task_id = task, None
        if not url:
            raise ValueError("the task has no result video (yet)")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, UnicodeError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("a download needs an http(s) URL")
        return url, task_id


SERVICE_STEPS = frozenset({"submit", "query", "list", "cancel", "upload policy"})
"""The calls to the service's own API (not to the upload host, nor to a result's address)."""


def _origin_and_path(url: str) -> str:
    """`scheme://host:port/path` of an address: never its user, password or query."""
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}{parts.path}"


def _oss_error(answer: Answer) -> dict[str, str]:
    text = answer.body[:_ERROR_BYTES].decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]{1,200})</Code>", text)
    message = re.search(r"<Message>([^<]{1,500})</Message>", text)
    return {
        "code": code.group(1) if code else f"HTTP{answer.status}",
        "message": message.group(1) if message else text[:200],
    }


LOST_STATUSES = frozenset({502, 504})
"""A gateway's answers: the request went past it, the service's answer did not come back."""
_SERVICE_TIME = "%Y%m%d%H%M%S"


def service_time(value: datetime | str) -> str:
    """A time as the task list takes it, `YYYYMMDDhhmmss` in the service's zone
    (`limits.SERVICE_TIMEZONE`): an aware datetime is converted to it, a naive one is taken as
    already in it, a string must already be in that form (ValueError otherwise)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(limits.SERVICE_TIMEZONE)
        return value.strftime(_SERVICE_TIME)
    if not re.fullmatch(r"\d{14}", value):
        raise ValueError(f"a task list time is YYYYMMDDhhmmss, not {value[:40]!r}")
    _parse_service_time(value)
    return value


def service_instant(stamp: str | None) -> datetime | None:
    """A time in an answer (`submit_time` …: `2026-11-30 14:03:11.123`, in the service's zone,
    `limits.SERVICE_TIMEZONE`) as an aware UTC datetime; None when absent or unreadable."""
    text = (stamp or "").strip().replace("T", " ")
    for form in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", _SERVICE_TIME):
        try:
            naive = datetime.strptime(text, form)
        except ValueError:
            continue
        return naive.replace(tzinfo=limits.SERVICE_TIMEZONE).astimezone(UTC)
    return None


def _parse_service_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, _SERVICE_TIME)
    except ValueError:
        raise ValueError(f"{value!r} is not a time (YYYYMMDDhhmmss)") from None


LIST_PAGE_SIZE = 100
"""The largest page the task list gives."""


def windows(start: datetime | str, end: datetime | str) -> Iterator[dict[str, str]]:
    """`start_time`/`end_time` pairs covering start … end, each at most a list call's span."""
    first = _parse_service_time(service_time(start))
    last = _parse_service_time(service_time(end))
    if last < first:
        raise ValueError("the end of the window is before its start")
    span = timedelta(seconds=limits.TASK_LIST_WINDOW_S)
    while True:
        stop = min(first + span, last)
        yield {"start_time": service_time(first), "end_time": service_time(stop)}
        if stop >= last:
            return
        first = stop


def more_pages(page: TaskPage, page_no: int) -> bool:
    """Whether a page after `page_no` holds more tasks."""
    return bool(page.tasks) and page_no * max(page.page_size, 1) < page.total


DOWNLOAD_RETRIED = (TransportError, RateLimited, ServerError)
"""A download's failures that another try may mend: the connection, throttling, a 5xx."""


def retry_wait(failure: ApiError, failures: int, timing: Timing) -> float:
    """Seconds before the download's next try: what a Retry-After asked (capped), else the
    backoff."""
    asked = getattr(failure, "retry_after", None)
    if isinstance(asked, float):
        return min(asked, MAX_RETRY_AFTER)
    return delay(failures - 1, timing.backoff, timing.backoff_cap)


def download_call(url: str, partial: PartialFile) -> Call:
    """One request for the rest of a result: no key, no encoding, retried by its caller."""
    return Call(
        "GET",
        url,
        "download",
        auth=False,
        transfer=True,
        headers=partial.request_headers(),
        extensions={NO_RETRY_EXTENSION: True},
    )


def next_interval(current: float, timing: Timing) -> float:
    return min(current * 1.5, timing.poll_cap)


def _segment(task_id: str) -> str:
    if not task_id or task_id in (".", ".."):
        raise ValueError("a task id is needed")
    return quote(task_id, safe="")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file name with nothing that could climb out of a folder or confuse a URL."""
    cleaned = _UNSAFE.sub("_", os.path.basename(name.replace("\\", "/"))).strip("._")
    return cleaned or "file"


def content_type(path: Path) -> str:
    return {
        ".mp4": "video/mp4",
        ".mov": "video/quicktime",
        ".avi": "video/x-msvideo",
        ".wav": "audio/wav",
        ".mp3": "audio/mpeg",
        ".aac": "audio/aac",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".png": "image/png",
        ".bmp": "image/bmp",
        ".webp": "image/webp",
    }.get(path.suffix.lower(), "application/octet-stream")


RESULT_ENDINGS = (".mp4", ".mov")
"""The endings that name a result's file; a path without an ending names a folder."""


def is_folder(path: str | os.PathLike[str]) -> bool:
    """Whether a download's path names a folder: one that exists, one written with a separator
    at its end (`out/`), or a new path without an ending (`out`). A new path with another
    ending (`out.mkv`) is neither a result's name nor a folder's: ValueError."""
    text = os.fspath(path)
    target = Path(text)
    if target.is_dir() or text.endswith(tuple({os.sep, os.altsep or os.sep})):
        return True
    if target.exists() or target.suffix.lower() in RESULT_ENDINGS:
        return False
    if target.suffix:
        raise ValueError(
            f"{text}: the result is an MP4 video: name it .mp4 (or .mov), "
            f"or end a folder's name with {os.sep}"
        )
    return True


def download_target(path: str | os.PathLike[str], url: str, task_id: str | None) -> Path:
    """Where a download goes: `path` itself when it names a file (`.mp4`, `.mov`, or one
    already there), or inside it when it names a folder (one there, `out/`, or a new `out`,
    made with its parents), as `<task_id>.mp4` (else under the URL's file name made safe).
    Never outside the folder the caller named, whatever the URL or the id says."""
    target = Path(path)
    if not is_folder(path):
        return target
    name = f"{safe_name(task_id)}.mp4" if task_id else ""
    if not name:
        name = safe_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))
        if name == "file" or not name.lower().endswith((".mp4", ".mov")):
            name = "result.mp4"
    final = (target / name).resolve()
    if final.parent != target.resolve():  # cannot happen after safe_name; kept as the rule
        raise ValueError(f"refusing to write outside {target}")
    return final
