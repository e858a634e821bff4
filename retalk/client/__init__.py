"""The VideoRetalk service over HTTP: upload, submit, wait, download (sync and async), and a
local emulator of the service for tests.

    from retalk.client import Client
    with Client() as client:                      # the key from DASHSCOPE_API_KEY
        task = client.submit(client.upload("talk.mp4"), client.upload("speech.wav"))
        client.download(client.wait(task.task_id), "out.mp4")
"""

from retalk.client.aio import AsyncClient
from retalk.client.config import ApiKey, Timing
from retalk.client.errors import (
    ApiError,
    ApiStatusError,
    AuthenticationError,
    InvalidAnswer,
    InvalidRequest,
    InvalidResult,
    InvalidSetting,
    MissingApiKey,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResultExpired,
    ServerError,
    SubmitLost,
    TaskFailed,
    TransportError,
    WaitTimeout,
)
from retalk.client.models import Task, TaskPage, TaskStatus, Usage
from retalk.client.sync import Client

__all__ = [
    "ApiError",
    "ApiKey",
    "ApiStatusError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "InvalidAnswer",
    "InvalidRequest",
    "InvalidResult",
    "InvalidSetting",
    "MissingApiKey",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ResultExpired",
    "ServerError",
    "SubmitLost",
    "Task",
    "TaskFailed",
    "TaskPage",
    "TaskStatus",
    "Timing",
    "TransportError",
    "Usage",
    "WaitTimeout",
]
