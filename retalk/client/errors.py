"""What can go wrong between retalk and the service: one exception tree, built in one place.

    RetalkError
     ├── EnvironmentProblem
     │    └── MissingApiKey          no key in DASHSCOPE_API_KEY, the key file, or the call
     └── ApiError                    the service, or the way to it, said no
          ├── TransportError         no answer: refused, timed out, dropped (after retries)
          ├── ApiStatusError         an error answer, with the platform's code and request id
          │    ├── InvalidRequest        400: InvalidParameter, InvalidURL.*, InvalidFile.*
          │    ├── AuthenticationError   401: InvalidApiKey
          │    ├── PermissionDenied      403: AccessDenied*, Arrearage; an expired link
          │    ├── NotFound              404: Model.NotExist, no such result
          │    ├── RateLimited           429: Throttling* (after retries)
          │    └── ServerError           5xx: InternalError, ServiceUnavailable, GatewayTimeout
          ├── TaskFailed             the task ended FAILED or CANCELED; `.task` says why
          └── WaitTimeout            the task had not ended when the wait ran out

`error_from_answer` maps an HTTP answer, `error_from_transport` an httpx transport error: no
other code builds these. The API key never appears in any of their messages. A code the service
spells the old way (`retalk.codes.ALIASES`) reads as retalk's current one in `code`; `service_code`
keeps what the service said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retalk.codes import ALIASES, current
from retalk.errors import EnvironmentProblem, RetalkError

if TYPE_CHECKING:
    import httpx

    from retalk.client.models import Task

FACE_MISMATCH = (
    "InvalidFile.FaceNotMatch",
    *(alias for alias, code in ALIASES.items() if code == "InvalidFile.FaceNotMatch"),
)
"""The newer pages spell it `Match`, the original document `Mach` (an alias in
`retalk.codes.ALIASES`): both mean the same, and `code` reads either as `FaceNotMatch`."""


class MissingApiKey(EnvironmentProblem):
    """No API key was given, and none is in DASHSCOPE_API_KEY or the key file."""


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
    """No answer came: the connection was refused, timed out or dropped."""


class ApiStatusError(ApiError):
    """The service answered with an error."""

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


def error_from_answer(status: int, body: Any) -> ApiStatusError:
    """The exception for an error answer: by the platform's `code` first, then the status."""
    data = body if isinstance(body, dict) else {}
    code = data.get("code") if isinstance(data.get("code"), str) else None
    message = str(data.get("message") or "")
    request_id = data.get("request_id") if isinstance(data.get("request_id"), str) else None
    kind = next((k for prefix, k in _BY_CODE if code and code.startswith(prefix)), None)
    if kind is None:
        kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiStatusError)
    return kind(status, code, message, request_id)


def error_from_transport(error: httpx.TransportError, what: str) -> TransportError:
    """`what` names the step (`submit`, `upload`, `download` …) for the message."""
    import httpx

    if isinstance(error, httpx.TimeoutException):
        reason = "timed out"
    elif isinstance(error, httpx.ConnectError):
        reason = "could not connect"
    else:
        reason = "the connection failed"
    return TransportError(f"{what}: {reason} ({type(error).__name__})")
