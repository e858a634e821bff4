"""A batch's manifest: CSV with a header, or JSON Lines, one job a row.

Columns (keys): `video`, `audio` (required), `ref`, `video_extension`, `query_face_threshold`,
`name` (optional). Relative paths are taken from the manifest's folder; URLs as they are. A
job without a name is named after its video's stem, made unique (`talk`, `talk-2` …); two jobs
given the same name are refused. Any mistake is a `ManifestError` naming the line and the
column.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from retalk.job import Job, Parameters, is_url

COLUMNS = ("video", "audio", "ref", "video_extension", "query_face_threshold", "name")
REQUIRED = ("video", "audio")
MAX_BYTES = 64 * 1024 * 1024
"""A manifest larger than this is refused unread (a million jobs is 100 MB of CSV at most)."""
MAX_NAME = 100
"""The longest name a job may be given: its result's file is named after it."""
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


class ManifestError(ValueError):
    """A manifest that cannot be read as one: the message names the file, line and column."""


def read_manifest(path: str | os.PathLike[str]) -> list[Job]:
    """The jobs of a manifest, in its order, each with a unique name."""
    manifest = Path(path)
    try:
        if manifest.stat().st_size > MAX_BYTES:
            raise ManifestError(f"{manifest}: larger than a manifest can be ({MAX_BYTES:,} bytes)")
        text = manifest.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ManifestError(f"{manifest}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ManifestError(f"{manifest}: cannot be read: {error.strerror or error}") from None
    rows = _json_lines(manifest, text) if _is_json_lines(manifest, text) else _csv(manifest, text)
    if not rows:
        raise ManifestError(f"{manifest}: no jobs in it")
    jobs = [_job(manifest, line, row) for line, row in rows]
    return _named(manifest, jobs, [line for line, _ in rows])


def _is_json_lines(path: Path, text: str) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return True
    if path.suffix.lower() == ".csv":
        return False
    return text.lstrip().startswith("{")


def _json_lines(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as error:
            raise ManifestError(f"{path} line {number}: not a JSON object ({error})") from None
        if not isinstance(row, dict):
            raise ManifestError(f"{path} line {number}: not a JSON object")
        for key in row:
            if key not in COLUMNS:
                raise ManifestError(
                    f"{path} line {number}, key {key!r}: not a manifest key "
                    f"(the keys: {', '.join(COLUMNS)})"
                )
        rows.append((number, row))
    return rows


def _csv(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        header = [column.strip() for column in header]
        for column in header:
            if column not in COLUMNS:
                raise ManifestError(
                    f"{path} line 1, column {column!r}: not a manifest column "
                    f"(the columns: {', '.join(COLUMNS)})"
                )
        for column in REQUIRED:
            if column not in header:
                raise ManifestError(f"{path} line 1: no {column!r} column in the header")
        if len(set(header)) != len(header):
            raise ManifestError(f"{path} line 1: a column is named twice")
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise ManifestError(
                    f"{path} line {reader.line_num}: {len(values)} values for {len(header)} columns"
                )
            rows.append((reader.line_num, dict(zip(header, values, strict=True))))
    except csv.Error as error:
        raise ManifestError(f"{path} line {reader.line_num}: {error}") from None
    return rows


def _job(path: Path, line: int, row: dict[str, Any]) -> Job:
    def where(column: str) -> str:
        return f"{path} line {line}, column {column}"

    sources: dict[str, str | None] = {}
    for role in ("video", "audio", "ref"):
        value = row.get(role)
        if value is None or (isinstance(value, str) and not value.strip()):
            if role in REQUIRED:
                raise ManifestError(f"{where(role)}: empty: a job needs a {role}")
            sources[role] = None
            continue
        if not isinstance(value, str):
            raise ManifestError(f"{where(role)}: a path or a URL, not {json.dumps(value)}")
        value = value.strip()
        sources[role] = value if is_url(value) else str(path.parent.absolute() / value)
    extension = _flag(row.get("video_extension"), where("video_extension"))
    threshold = _threshold(row.get("query_face_threshold"), where("query_face_threshold"))
    parameters = Parameters(extension, threshold)
    try:
        parameters.check(has_ref=sources["ref"] is not None)
    except ValueError as error:
        raise ManifestError(f"{where('query_face_threshold')}: {error}") from None
    name = row.get("name")
    if name is not None and not isinstance(name, str):
        raise ManifestError(f"{where('name')}: a name is text, not {json.dumps(name)}")
    name = name.strip() if name else None
    if name is not None and not name.isprintable():
        raise ManifestError(f"{where('name')}: a name of printable characters")
    if name is not None and len(name) > MAX_NAME:
        raise ManifestError(f"{where('name')}: a name of {MAX_NAME} characters at most")
    video, audio = sources["video"], sources["audio"]
    assert video is not None and audio is not None
    return Job(video, audio, sources["ref"], parameters, name or None)


def _flag(value: Any, where: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ManifestError(f"{where}: true or false, not {json.dumps(value)}")


def _threshold(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where}: a whole number, not {json.dumps(value)}")
    return value


def _named(path: Path, jobs: list[Job], lines: list[int]) -> list[Job]:
    """Every job with a name: given names must be unique; the others take their video's stem,
    made unique (`-2`, `-3` …) among all."""
    from dataclasses import replace

    given: dict[str, int] = {}
    for job, line in zip(jobs, lines, strict=True):
        if job.name is None:
            continue
        if job.name in given:
            raise ManifestError(
                f"{path} line {line}, column name: {job.name!r} is the name of line "
                f"{given[job.name]} too: names must be unique"
            )
        given[job.name] = line
    taken = set(given)
    named = []
    for job in jobs:
        if job.name is None:
            stem = Path(job.video.split("?")[0]).stem or "job"
            name, n = stem, 1
            while name in taken:
                n += 1
                name = f"{stem}-{n}"
            taken.add(name)
            job = replace(job, name=name)
        named.append(job)
    return named
