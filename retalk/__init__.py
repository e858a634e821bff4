"""retalk: the VideoRetalk service's verdict on your files, locally, before upload.

>>> import retalk
>>> report = retalk.check_job(video="talk.mp4", audio="speech.wav")
>>> report.ok, [f.code for f in report.findings]
"""

from retalk.codes import CODES, Severity
from retalk.errors import (
    EnvironmentProblem,
    FixRefused,
    LedgerBusy,
    LedgerError,
    ModelUnavailable,
    PolicyError,
    RetalkError,
    ToolKilled,
    ToolMissing,
)
from retalk.findings import Finding, Input, Report

# `retalk.fix` is the function: the package `retalk/fix/` is loaded first, so that loading its
# modules later does not bind the name to the package again.
from retalk.fix.api import FixResult, fix
from retalk.policy import Policy, load_policy
from retalk.preflight import (
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

__version__ = "0.1.0"

_LAZY = {"RefFrame", "write_ref_frame"}


def __getattr__(name: str) -> object:
    # `retalk ref-frame` pulls in frame decoding and the face models: loaded on first use.
    if name in _LAZY:
        from retalk.preflight import ref_frame

        return getattr(ref_frame, name)
    raise AttributeError(f"module 'retalk' has no attribute {name!r}")


__all__ = [
    "CODES",
    "EnvironmentProblem",
    "Finding",
    "FixRefused",
    "FixResult",
    "Input",
    "LedgerBusy",
    "LedgerError",
    "ModelUnavailable",
    "Policy",
    "PolicyError",
    "RefFrame",
    "Report",
    "RetalkError",
    "Severity",
    "ToolKilled",
    "ToolMissing",
    "__version__",
    "check",
    "check_audio",
    "check_file",
    "check_image",
    "check_job",
    "check_paths",
    "check_url",
    "check_video",
    "find_media",
    "fix",
    "load_policy",
    "write_ref_frame",
]
