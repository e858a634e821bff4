"""A saved result, checked: a video ffprobe opens, of the length the service billed."""

from __future__ import annotations

from pathlib import Path

FRAME_TOLERANCE_S = 0.1
"""Seconds a result's length may miss `usage.video_duration` by: two or three frames."""


def result_problem(path: Path, billed: float | None) -> str | None:
    """Why the file is not the result (not a video, a length unlike the bill), or None."""
    from retalk.preflight.probe import ProbeFailed, parse_probe, run_ffprobe

    try:
        probe = parse_probe(run_ffprobe(str(path)))
    except ProbeFailed as failed:
        return f"ffprobe cannot open it: {failed}"
    if probe.video is None:
        return "it holds no video stream"
    if (
        billed is not None
        and probe.duration is not None
        and abs(probe.duration - billed) > FRAME_TOLERANCE_S
    ):
        return f"it lasts {probe.duration:.2f} s, the service billed {billed:g} s"
    return None
