"""A job: the inputs of one lip-sync task and its submit parameters, as one value.

The preflight judges it (`check_job`), the client sends it (`Client.submit`), the emulator
reads it back from the wire (`Parameters.from_wire`), the runner and the batch carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retalk import limits

URL_SCHEMES = ("http://", "https://", "oss://")


def is_url(source: str) -> bool:
    """Whether an input names a URL (the service fetches it) rather than a local file."""
    return source.lower().startswith(URL_SCHEMES)


@dataclass(frozen=True)
class Parameters:
    """The submit's `parameters` object."""

    video_extension: bool = False
    """When the audio is longer than the video, play the video backward, forward … to fill it;
    otherwise the output is cut to the shorter input."""
    query_face_threshold: int | None = None
    """How strictly the reference face must match (120 loose … 200 strict; the service's
    default 170). Only with a reference image."""

    def check(self, has_ref: bool) -> None:
        """Raise ValueError, naming the field, when the service would answer InvalidParameter."""
        if self.query_face_threshold is None:
            return
        if not has_ref:
            raise ValueError("query_face_threshold goes with a reference image")
        span = limits.QUERY_FACE_THRESHOLD
        if (
            isinstance(self.query_face_threshold, bool)
            or not isinstance(self.query_face_threshold, int)
            or self.query_face_threshold not in span
        ):
            raise ValueError(f"query_face_threshold must be {span.describe()}")

    def to_wire(self) -> dict[str, Any]:
        """The JSON object the service reads."""
        wire: dict[str, Any] = {"video_extension": bool(self.video_extension)}
        if self.query_face_threshold is not None:
            wire["query_face_threshold"] = int(self.query_face_threshold)
        return wire

    @classmethod
    def from_wire(cls, data: Any, has_ref: bool = True) -> Parameters:
        """The parameters a request carried; ValueError naming the field the service would
        refuse (`InvalidParameter`)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("parameters")
        extension = data.get("video_extension", False)
        if not isinstance(extension, bool):
            raise ValueError("parameters.video_extension")
        threshold = data.get("query_face_threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int)
        ):
            raise ValueError("parameters.query_face_threshold")
        parameters = cls(extension, threshold)
        try:
            parameters.check(has_ref)
        except ValueError:
            raise ValueError("parameters.query_face_threshold") from None
        return parameters


@dataclass(frozen=True)
class Job:
    """One task to make: the inputs by role (local paths or URLs) and the parameters."""

    video: str
    """The talking-person video: a local path, or an http(s)/oss URL."""
    audio: str
    """The new speech: a local path, or an http(s)/oss URL."""
    ref: str | None = None
    """A picture of the face to re-voice, when the video shows several."""
    parameters: Parameters = field(default_factory=Parameters)
    """The submit's parameters."""
    name: str | None = None
    """What the user calls it (a batch's `name` column); results are named after it."""

    def inputs(self) -> dict[str, str]:
        """The inputs given, by role: `video`, `audio`, and `ref` when there is one."""
        roles = {"video": self.video, "audio": self.audio, "ref": self.ref}
        return {role: source for role, source in roles.items() if source}

    def check(self) -> None:
        """Raise ValueError when the job cannot be submitted as it is (a missing input, a
        threshold without a reference, a threshold out of range)."""
        if not self.video or not self.audio:
            raise ValueError("a job needs a video and an audio")
        self.parameters.check(bool(self.ref))
