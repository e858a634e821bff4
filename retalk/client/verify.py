"""A result counts only when it is the task's video: the task SUCCEEDED, ffprobe opens the file
as a video, and its length is the billed one (`usage.video_duration`) within two frames.

Two frames at the result's frame rate (the stream's, else the answer's `usage.fps`, else 25)
plus 10 ms: a container's length and a task's billed seconds are both rounded to about a frame,
and an encoder may add or drop one at the end; more than that is another video, or a cut one.
ffprobe is loaded only here, when a download is verified."""

from __future__ import annotations

from pathlib import Path

from retalk.client.errors import InvalidResult
from retalk.client.models import Task, TaskStatus

TOLERANCE_FRAMES = 2
"""Frames of difference allowed between the file's length and the billed one."""
_FALLBACK_FPS = 25.0
_SLACK_S = 0.01


def check_task(task: Task) -> None:
    """InvalidResult unless the task SUCCEEDED (before anything is fetched)."""
    if task.status is not TaskStatus.SUCCEEDED:
        raise InvalidResult(task.task_id, f"the task is {task.status.value}, not SUCCEEDED")


def tolerance(fps: float | None) -> float:
    """Seconds of difference allowed at `fps` frames a second."""
    rate = fps if fps and fps > 0 else _FALLBACK_FPS
    return TOLERANCE_FRAMES / rate + _SLACK_S


def verify(path: Path, task: Task) -> float:
    """The file's length in seconds, when it is the task's video; InvalidResult otherwise.
    ToolMissing (an EnvironmentProblem) when ffprobe cannot be run."""
    from retalk.preflight.probe import ProbeFailed, parse_probe, run_ffprobe

    check_task(task)
    try:
        probe = parse_probe(run_ffprobe(str(path)))
    except ProbeFailed as failed:
        raise InvalidResult(task.task_id, f"ffprobe cannot open it ({failed})") from None
    video = probe.video
    if video is None:
        raise InvalidResult(task.task_id, "it holds no video stream")
    length = video.duration if video.duration is not None else probe.duration
    if length is None:
        raise InvalidResult(task.task_id, "ffprobe gives it no length")
    billed = task.usage.video_duration
    if billed is None:
        return length
    rate = float(video.avg_frame_rate) if video.avg_frame_rate else task.usage.fps
    allowed = tolerance(rate)
    if abs(length - billed) > allowed:
        raise InvalidResult(
            task.task_id,
            f"it lasts {length:.3f} s, the task billed {billed:g} s "
            f"(allowed: {allowed:.3f} s, {TOLERANCE_FRAMES} frames)",
        )
    return length
