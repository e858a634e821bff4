"""The service's branch of retalk's exception tree (drawn in `retalk.errors`), built here and
nowhere else: `error_from_answer` from an error answer, `error_from_httpx` from whatever httpx
raises. The API key never appears in any of their messages: what the service says is scrubbed of
it first. A code the service spells the old way (`retalk.codes.ALIASES`) reads as retalk's
current one in `code`; `service_code` keeps what the service said.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from retalk.codes import ALIASES, current
from retalk.errors import EnvironmentProblem, RetalkError

if TYPE_CHECKING:
    from retalk.client.config import ApiKey
    from retalk.client.models import Task

FACE_MISMATCH = (
    "InvalidFile.FaceNotMatch",
    *(alias for alias, code in ALIASES.items() if code == "InvalidFile.FaceNotMatch"),
)
"""The newer pages spell it `Match`, the original document `Mach` (an alias in
`retalk.codes.ALIASES`): both mean the same, and `code` reads either as `FaceNotMatch`."""


class MissingApiKey(EnvironmentProblem):
    """No API key was given, and none is in DASHSCOPE_API_KEY or the key file."""


class InvalidSetting(EnvironmentProblem):
    """A setting is there but cannot be used: a key that is not one line of visible ASCII, a
    base URL that is not an http(s) address. The message names where it came from, never the
    key."""


class ApiError(RetalkError):
    """The service, or the network on the way to it, said no."""

    code: str | None = None
    """The service's code, spelled as retalk spells it now (`InvalidFile.FaceNotMatch`)."""
    service_code: str | None = None
    """The code exactly as the service sent it, old spelling and all."""
    request_id: str | None = None


def _current(code: str | None) -> str | None:
    """`code` as retalk spells it now; anything that is not a string as it came."""
    return current(code) if isinstance(code, str) else code


class TransportError(ApiError):
    """No answer came: the connection was refused, timed out or dropped, or the call's overall
    deadline passed."""


class SubmitLost(TransportError):
    """A submit left, and no answer came back (a read timeout, a connection dropped after the
    body was sent, a gateway's 502 or 504, a 2xx that cannot be read): the service may have
    made the task, and bills it
    if it did. Never submit again blindly: look for a task submitted since `sent_at` first.
    A connection that never opened is not this: nothing was sent."""

    def __init__(self, why: str, sent_at: datetime, step: str = "submit") -> None:
        self.sent_at = sent_at
        """When the request left (UTC), taken just before it was sent."""
        self.step = step
        """The step whose answer was lost: `submit`."""
        stamp = sent_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"{step}: the request was sent at {stamp} and its answer lost ({why}): a task may "
            "exist at the service; look for it (`retalk tasks --since`) before submitting again"
        )


class ResultExpired(ApiError):
    """The result link's time is past: it answers 403 (`AccessDenied`, "Request has expired")
    or its `Expires=` is already behind us. Nothing was saved; the task's result is gone
    unless the task is queried again while the service still keeps it."""

    def __init__(self, expired_at: datetime | None, request_id: str | None = None) -> None:
        self.expired_at = expired_at
        """When the link stopped working (UTC), from its `Expires=` or the storage's answer;
        None when neither says."""
        self.request_id = request_id
        self.code = self.service_code = "AccessDenied"
        when = f" at {expired_at.astimezone(UTC):%Y-%m-%d %H:%M UTC}" if expired_at else ""
        super().__init__(f"the result link expired{when}: nothing was saved")


class InvalidResult(ApiError):
    """What the result link gave is not the task's video: a task that had not SUCCEEDED, a file
    ffprobe cannot open as a video, or a length other than the billed one. Nothing is kept at
    the target."""

    def __init__(self, task_id: str | None, problem: str) -> None:
        self.task_id = task_id
        self.problem = problem
        which = f"task {task_id}" if task_id else "the download"
        super().__init__(f"{which}: the result is not a valid video: {problem}; nothing was kept")


class InvalidAnswer(ApiError):
    """The service answered, but not as the API describes: a field of the wrong type, a result
    address that is not an http(s) URL, a body too large or badly encoded, a download longer or
    shorter than announced. `request_id` is the answer's, when it had one."""

    def __init__(self, what: str, problem: str, request_id: str | None = None) -> None:
        said = f" (request {request_id})" if request_id else ""
        super().__init__(f"{what}: the service's answer is malformed: {problem}{said}")
        self.what = what
        self.problem = problem
        self.request_id = request_id


class ApiStatusError(ApiError):
    """The service answered with an error."""

    retry_after: float | None = None
    """The seconds its `Retry-After` asked for, when it gave one."""

    def __init__(
        self, status: int, code: str | None, message: str, request_id: str | None = None
    ) -> None:
        """`code` as the service sent it: an old spelling becomes `code`, kept in
        `service_code`."""
        self.service_code = code
        code = _current(code)
        super().__init__(f"{code or 'HTTP ' + str(status)}: {message}" if message else code or "")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class InvalidRequest(ApiStatusError):
    """400: the request or one of its files is not what the service takes."""


class AuthenticationError(ApiStatusError):
    """401: the API key is wrong."""


class PermissionDenied(ApiStatusError):
    """403: the account may not do this (unpaid, not purchased), or a link has expired."""


class NotFound(ApiStatusError):
    """404."""


class RateLimited(ApiStatusError):
    """429: too many requests, still after the retries."""


class ServerError(ApiStatusError):
    """5xx: the service failed, still after the retries."""


class TaskFailed(ApiError):
    """The task ended without a result."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.service_code = task.code
        self.code = _current(task.code)
        self.request_id = task.request_id
        said = f"{self.code}: {task.message}" if self.code else task.status.value
        super().__init__(f"task {task.task_id} {task.status.value}: {said}")

    @property
    def face_mismatch(self) -> bool:
        return self.code in FACE_MISMATCH


class WaitTimeout(ApiError):
    """The task had not ended when the wait ran out; it goes on at the service."""

    def __init__(self, task: Task, waited: float) -> None:
        self.task = task
        super().__init__(
            f"task {task.task_id} is still {task.status.value} after {waited:.0f} s: "
            f"come back with `retalk wait {task.task_id}`"
        )


_BY_CODE: tuple[tuple[str, type[ApiStatusError]], ...] = (
    ("InvalidApiKey", AuthenticationError),
    ("AccessDenied", PermissionDenied),
    ("Arrearage", PermissionDenied),
    ("Throttling", RateLimited),
    ("Model.NotExist", NotFound),
    ("InvalidParameter", InvalidRequest),
    ("InvalidURL", InvalidRequest),
    ("InvalidFile", InvalidRequest),
    ("InternalError", ServerError),
    ("ServiceUnavailable", ServerError),
    ("GatewayTimeout", ServerError),
)
_BY_STATUS: dict[int, type[ApiStatusError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    429: RateLimited,
}
_MESSAGE_CHARS = 500


def error_from_answer(
    status: int, body: Any, key: ApiKey | None = None, note: str = ""
) -> ApiStatusError:
    """The exception for an error answer: by the platform's `code` first, then the status.
    the key is scrubbed from what the service said; `note` is added to it."""
    data = body if isinstance(body, dict) else {}
    code = data.get("code") if isinstance(data.get("code"), str) else None
    said = data.get("message")
    message = scrub(said if isinstance(said, str) else "", key)[:_MESSAGE_CHARS]
    message = f"{message} ({note})" if message and note else message or note
    found = data.get("request_id")
    request_id = scrub(found, key)[:200] if isinstance(found, str) else None
    kind = next((k for prefix, k in _BY_CODE if code and code.startswith(prefix)), None)
    if kind is None:
        kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiStatusError)
    return kind(status, scrub(code, key) if code else None, message, request_id)


def error_from_httpx(error: Exception, what: str, sent_at: datetime | None = None) -> ApiError:
    """The one place where httpx's exceptions become retalk's; `what` names the step (`submit`,
    `upload`, `download` …). Only the exception's type is kept, and the address tried as
    `scheme://host:port`: httpx's own messages can quote a header or a query, and so the key.
    `sent_at`: the call is a submit sent then; losing its answer is `SubmitLost`."""
    name = type(error).__name__
    where = _address(error)
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing was sent: not lost, even for a submit.
        said = (
            "timed out connecting"
            if isinstance(error, httpx.TimeoutException)
            else "could not connect"
        )
        return TransportError(f"{what}: {said} to {where} ({name})")
    if sent_at is not None and isinstance(error, httpx.TransportError):
        return SubmitLost(f"{name} from {where}", sent_at)
    if isinstance(error, httpx.TimeoutException):
        return TransportError(f"{what}: timed out ({name} from {where})")
    if isinstance(error, httpx.TooManyRedirects):
        return InvalidAnswer(what, "too many redirects (a redirect loop)")
    if isinstance(error, httpx.DecodingError):
        return InvalidAnswer(what, f"the body could not be decoded ({name})")
    if isinstance(error, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return InvalidAnswer(what, f"it points to an address that cannot be used ({name})")
    if isinstance(error, httpx.ProtocolError):
        return TransportError(f"{what}: the connection dropped or broke HTTP ({name} from {where})")
    return TransportError(f"{what}: the connection failed ({name} from {where})")


def _address(error: Exception) -> str:
    """`scheme://host:port` of the request that failed: never its path, query or user."""
    try:
        url = error.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return "the service"
    if not isinstance(url, httpx.URL) or not url.host:
        return "the service"
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{port}" if port else f"{url.scheme}://{host}"


HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL)
"""What `error_from_httpx` maps: every exception httpx raises about a request or an answer."""


def scrub(text: str, key: ApiKey | None) -> str:
    """`text` without the key in it: in any case, each character as itself or %-encoded (a
    server may echo it back, in a message or a URL). The key is revealed only inside the call,
    never held in a local that a traceback could print."""
    if key is None or not key.reveal():
        return text
    return re.sub(
        "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in key.reveal()),
        "****",
        text,
        flags=re.IGNORECASE,
    )
