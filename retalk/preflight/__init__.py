"""Preflight: the service's verdict on local files, before anything is uploaded."""

from retalk.preflight.check import (
    check_audio,
    check_file,
    check_image,
    check_job,
    check_paths,
    check_video,
    find_media,
)

__all__ = [
    "check_audio",
    "check_file",
    "check_image",
    "check_job",
    "check_paths",
    "check_video",
    "find_media",
]
