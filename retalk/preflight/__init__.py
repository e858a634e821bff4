"""Preflight: the service's verdict on local files, before anything is uploaded."""

from retalk.preflight.check import (
    check,
    check_audio,
    check_file,
    check_image,
    check_job,
    check_paths,
    check_url,
    check_video,
    find_media,
)

__all__ = [
    "check",
    "check_audio",
    "check_file",
    "check_image",
    "check_job",
    "check_paths",
    "check_url",
    "check_video",
    "find_media",
]
