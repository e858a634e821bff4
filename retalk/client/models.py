"""The service's task, as the query endpoint describes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    """Where a task is. The document names PENDING, RUNNING, SUCCEEDED, FAILED and UNKNOWN;
    the newer page PRE-PROCESSING and POST-PROCESSING; the platform's SDK CANCELED and
    SUSPENDED."""

    PENDING = "PENDING"
    PRE_PROCESSING = "PRE-PROCESSING"
    RUNNING = "RUNNING"
    POST_PROCESSING = "POST-PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    SUSPENDED = "SUSPENDED"
    UNKNOWN = "UNKNOWN"

    @property
    def finished(self) -> bool:
        """No further change will come: a result, a failure, or no such task."""
        return self in (
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.CANCELED,
            TaskStatus.UNKNOWN,
        )

    @classmethod
    def parse(cls, value: Any) -> TaskStatus:
        try:
            return cls(str(value).upper())
        except ValueError:
            return cls.UNKNOWN


_FINISHED = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN}
)


@dataclass(frozen=True)
class Usage:
    """What the task was billed for."""

    video_duration: float | None = None
    """Seconds of output video, the billed quantity."""
    video_ratio: str | None = None
    """The output's frame type; `standard`."""
    size: str | None = None
    """The output's frame size, `1080*1920` (newer page)."""
    fps: float | None = None
    """The output's frame rate (newer page)."""


@dataclass(frozen=True)
class Task:
    """A lip-sync task at the service."""

    task_id: str
    """The service's id for the task: keep it to come back later."""
    status: TaskStatus
    """Where the task is."""
    video_url: str | None = None
    """The result, once SUCCEEDED; valid for 24 hours after the task ends."""
    code: str | None = None
    """Why it FAILED: the service's code, such as `InvalidFile.FPS`."""
    message: str | None = None
    """Why it FAILED, in the service's words."""
    usage: Usage = field(default_factory=Usage)
    """What it was billed for, once SUCCEEDED."""
    submit_time: str | None = None
    """When it was submitted, as the service writes it."""
    scheduled_time: str | None = None
    """When it started running."""
    end_time: str | None = None
    """When it ended; the result link lives 24 hours from here."""
    request_id: str | None = None
    """The id of the request that fetched this, for the service's support."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "task_status": self.status.value,
            "video_url": self.video_url,
            "code": self.code,
            "message": self.message,
            "usage": {
                "video_duration": self.usage.video_duration,
                "video_ratio": self.usage.video_ratio,
                "size": self.usage.size,
                "fps": self.usage.fps,
            },
            "submit_time": self.submit_time,
            "scheduled_time": self.scheduled_time,
            "end_time": self.end_time,
            "request_id": self.request_id,
        }


@dataclass(frozen=True)
class TaskPage:
    """One page of `GET /tasks`."""

    page_no: int
    page_size: int
    total: int
    tasks: tuple[Task, ...]


@dataclass(frozen=True)
class UploadPolicy:
    """The temporary-upload credential of `GET /uploads?action=getPolicy`."""

    policy: str
    signature: str
    upload_dir: str
    upload_host: str
    oss_access_key_id: str
    x_oss_object_acl: str
    x_oss_forbid_overwrite: str
    max_file_size_mb: float
    expire_in_seconds: float
    capacity_limit_mb: float | None
