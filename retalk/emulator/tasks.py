"""An emulated task: its inputs and parameters, the states it went through, and what the
service answers about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retalk.emulator.clock import Clock, stamp
from retalk.job import Parameters

PENDING, PRE, RUNNING, POST = "PENDING", "PRE-PROCESSING", "RUNNING", "POST-PROCESSING"
SUCCEEDED, FAILED, CANCELED = "SUCCEEDED", "FAILED", "CANCELED"
FINAL = frozenset({SUCCEEDED, FAILED, CANCELED})

# The service's own messages, from the document's table of codes.
MESSAGES = {
    "InvalidParameter": "Field required: {field}",
    "InvalidURL.ConnectionRefused": "Connection to {url} refused, please provide avaiable URL",
    "InvalidURL.Timeout": "Download {url} timeout, please check network connection.",
    "InvalidFile.Size": (
        "Invalid file size. The video/audio/image file size must be less than {mb}MB."
    ),
    "InvalidFile.Format": (
        "Invalid file format,the request file format is one of the following types: MP4, AVI, "
        "MOV, MP3, WAV, AAC, JPEG, JPG, PNG, BMP, and WEBP."
    ),
    "InvalidFile.Resolution": (
        "Invalid video resolution. The height or width of video must be 640 ~ 2048."
    ),
    "InvalidFile.FPS": "Invalid video FPS. The video FPS must be 15 ~ 60.",
    "InvalidFile.Duration": (
        "Invalid file duration. The video/audio file duration must be 2s ~ 120s."
    ),
    "InvalidFile.ImageSize": "The size of image is beyond limit.",
    "InvalidFile.Openerror": "Invalid file, cannot open file as video/audio/image.",
    "InvalidFile.Content": (
        "The input image has no human body or multi human bodies. Please upload other image "
        "with single person."
    ),
    "InvalidFile.FaceNotMatch": (
        "There are no matched face in the video with the provided reference image."
    ),
}


@dataclass
class EmulatedTask:
    """One task as the emulated service holds it. Times are on the emulator's clock, and
    written as the wall clock has them (`Clock.wall`)."""

    task_id: str
    """The id the submit answered with."""
    inputs: dict[str, str]
    """The inputs' URLs by role: `video`, `audio`, and `ref` when given."""
    parameters: Parameters
    """The submit's parameters, as read from the wire."""
    submit_at: float
    """When it was submitted (emulated epoch seconds)."""
    queued_at: float
    """When it was queued (time.monotonic: the PENDING minimum is real time)."""
    status: str = PENDING
    """Its state: PENDING, PRE-PROCESSING, RUNNING, POST-PROCESSING, SUCCEEDED, FAILED,
    CANCELED."""
    scheduled_at: float | None = None
    """When a worker took it."""
    end_at: float | None = None
    """When it ended (succeeded, failed, timed out, or was canceled)."""
    code: str | None = None
    """A failed task's code."""
    message: str | None = None
    """A failed task's message."""
    result: Path | None = None
    """The stored result of a task that succeeded."""
    usage: dict[str, Any] = field(default_factory=dict)
    """What a task that succeeded is billed for (`video_duration`), and its size and fps."""
    history: list[tuple[str, float]] = field(default_factory=list)
    """Every state it was in, with when it entered it."""
    forgotten: bool = False
    """Finished longer ago than the retention: queries answer UNKNOWN, lists leave it out."""

    def __post_init__(self) -> None:
        if not self.history:
            self.history.append((self.status, self.submit_at))

    def move(self, status: str, moment: float) -> None:
        """Enter `status` at `moment`."""
        self.status = status
        self.history.append((status, moment))
        if status in FINAL:
            self.end_at = moment

    def output(self, result_url: str | None, clock: Clock) -> dict[str, Any]:
        """The answer's `output` object."""
        out: dict[str, Any] = {
            "task_id": self.task_id,
            "task_status": self.status,
            "submit_time": stamp(clock.wall(self.submit_at)),
        }
        if self.scheduled_at is not None:
            out["scheduled_time"] = stamp(clock.wall(self.scheduled_at))
        if self.end_at is not None:
            out["end_time"] = stamp(clock.wall(self.end_at))
        if self.status == SUCCEEDED and result_url:
            out["video_url"] = result_url
        if self.status == FAILED:
            out["code"], out["message"] = self.code, self.message
        return out

    def inspected(self, clock: Clock) -> dict[str, Any]:
        """What the inspection endpoint shows of it."""
        return {
            "task_id": self.task_id,
            "status": self.status,
            "submit_time": stamp(clock.wall(self.submit_at)),
            "end_time": None if self.end_at is None else stamp(clock.wall(self.end_at)),
            "inputs": dict(self.inputs),
            "parameters": self.parameters.to_wire(),
            "video_duration": self.usage.get("video_duration")
            if self.status == SUCCEEDED
            else None,
            "code": self.code,
            "history": [[status, stamp(clock.wall(moment))] for status, moment in self.history],
            "forgotten": self.forgotten,
        }
