"""retalk: the VideoRetalk service's verdict on your files, locally, before upload.

>>> import retalk
>>> report = retalk.check_job(video="talk.mp4", audio="speech.wav")
>>> report.ok, [f.code for f in report.findings]
"""

from retalk.codes import CODES, Severity
from retalk.errors import EnvironmentProblem, RetalkError, ToolMissing
from retalk.findings import Finding, Input, Report
from retalk.preflight import (
    check_audio,
    check_file,
    check_image,
    check_job,
    check_paths,
    check_video,
    find_media,
)

__version__ = "0.1.0"

__all__ = [
    "CODES",
    "EnvironmentProblem",
    "Finding",
    "Input",
    "Report",
    "RetalkError",
    "Severity",
    "ToolMissing",
    "__version__",
    "check_audio",
    "check_file",
    "check_image",
    "check_job",
    "check_paths",
    "check_video",
    "find_media",
]
