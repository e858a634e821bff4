"""A job's identity: the same inputs (by their bytes, or their URL) and the same parameters are
the same job, whatever the files are called. A re-run of a job already submitted is found by
it, so that it is not paid for twice."""

from __future__ import annotations

import hashlib
import json

from retalk.job import Job, is_url
from retalk.preflight.source import open_regular

_CHUNK = 1 << 20


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (0.3 s for 300 MiB). OSError (`NotRegularFile`) for anything but
    a regular file."""
    digest = hashlib.sha256()
    fd, _ = open_regular(path)  # a pipe or a device refused, never waited on
    with open(fd, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def job_key(job: Job) -> str:
    """The job's identity, as 64 hex digits. A local input that cannot be read is named by its
    path (the preflight says why it cannot be read)."""
    parts: dict[str, object] = {"parameters": job.parameters.to_wire()}
    for role, source in job.inputs().items():
        if is_url(source):
            parts[role] = {"url": source}
            continue
        try:
            parts[role] = {"sha256": file_digest(source)}
        except OSError:
            parts[role] = {"path": source}
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
