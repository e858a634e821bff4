"""Every answer the client reads, checked against the shape the API describes before any of it
is used: a field of the wrong type, a result address that is not an http(s) URL, JSON nested past
reason, each is one `InvalidAnswer` naming the field and the request id. What the service says is
scrubbed of the key as it is read."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import httpx

from retalk.client.config import ApiKey
from retalk.client.errors import InvalidAnswer, scrub
from retalk.client.models import Task, TaskPage, TaskStatus, UploadPolicy, Usage

_TEXT_CHARS = 2000
"""The longest string field kept: a message, a time, an address. Longer is cut."""
_URL_CHARS = 8192


def parse_json(body: bytes, what: str) -> Any:
    """The JSON of a body; not JSON, or nested deeper than Python recurses, is InvalidAnswer."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        problem = "nested too deep" if isinstance(error, RecursionError) else "not JSON"
    raise InvalidAnswer(what, problem)


def request_id(data: Any, key: ApiKey | None = None) -> str | None:
    found = data.get("request_id") if isinstance(data, dict) else None
    return scrub(found, key)[:200] if isinstance(found, str) else None


class Shape:
    """Reads the fields of one answer, each checked for its type."""

    def __init__(self, what: str, data: Any, key: ApiKey | None) -> None:
        self.what, self.key, self.request_id = what, key, request_id(data, key)

    def fail(self, path: str, problem: str) -> NoReturn:
        raise InvalidAnswer(self.what, f"{path} {problem}", self.request_id)

    def obj(self, data: Any, path: str, *, required: bool = True) -> dict[str, Any]:
        if isinstance(data, dict):
            return data
        if data is None and not required:
            return {}
        self.fail(path, f"is {_kind(data)}, not an object")

    def text(self, data: dict[str, Any], key: str, path: str, *, required: bool = False) -> str:
        """A string field; absent or null reads as "" unless `required`."""
        value = data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            self.fail(f"{path}.{key}", f"is {_kind(value)}, not a non-empty string")
        return scrub(value, self.key)[:_TEXT_CHARS]

    def number(self, data: dict[str, Any], key: str, path: str) -> float | None:
        """A number; the service writes some as strings."""
        value = data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.fail(f"{path}.{key}", f"is {_kind(value)}, not a number")
        try:
            return float(value)
        except ValueError:
            self.fail(f"{path}.{key}", f"is {_kind(value)}, not a number")

    def count(self, data: dict[str, Any], key: str, path: str, default: int) -> int:
        number = self.number(data, key, path)
        if number is None:
            return default
        if number != int(number) or number < 0:
            self.fail(f"{path}.{key}", "is not a whole number of zero or more")
        return int(number)

    def url(self, data: dict[str, Any], key: str, path: str, *, required: bool = False) -> str:
        """An http(s) URL with a host; absent or null reads as "" unless `required`."""
        value = data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or len(value) > _URL_CHARS:
            self.fail(f"{path}.{key}", f"is {_kind(value)}, not an http(s) URL")
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, UnicodeError):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            self.fail(f"{path}.{key}", "is not an http(s) URL")
        return scrub(value, self.key)


def _kind(value: Any) -> str:
    """What a wrong value is, without quoting it (it may be large, or hold anything)."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def task(data: Any, what: str, key: ApiKey | None) -> Task:
    """A submit or query answer: `{"request_id", "output": {...}, "usage": {...}}`."""
    shape = Shape(what, data, key)
    body = shape.obj(data, "the answer")
    return _task(shape, shape.obj(body.get("output"), "output"), body.get("usage"), "output")


def _task(shape: Shape, output: dict[str, Any], usage_data: Any, path: str) -> Task:
    status = shape.text(output, "task_status", path, required=True)
    usage = shape.obj(usage_data, "usage", required=False)
    parsed = TaskStatus.parse(status)
    video_url = shape.url(output, "video_url", path, required=parsed is TaskStatus.SUCCEEDED)
    return Task(
        task_id=shape.text(output, "task_id", path, required=True),
        status=parsed,
        video_url=video_url or None,
        code=shape.text(output, "code", path) or None,
        message=shape.text(output, "message", path) or None,
        usage=Usage(
            video_duration=shape.number(usage, "video_duration", "usage"),
            video_ratio=shape.text(usage, "video_ratio", "usage") or None,
            size=shape.text(usage, "size", "usage") or None,
            fps=shape.number(usage, "fps", "usage"),
        ),
        submit_time=shape.text(output, "submit_time", path) or None,
        scheduled_time=shape.text(output, "scheduled_time", path) or None,
        end_time=shape.text(output, "end_time", path) or None,
        request_id=shape.request_id,
    )


def page(data: Any, what: str, key: ApiKey | None) -> TaskPage:
    """A `GET /tasks` answer: `{"request_id", "tasks": [...], "page_no", "page_size", "total"}`,
    each task as a query's `output`, with its `usage` inside."""
    shape = Shape(what, data, key)
    body = shape.obj(data, "the answer")
    listed = body.get("tasks") or []
    if not isinstance(listed, list):
        shape.fail("tasks", f"is {_kind(listed)}, not a list")
    tasks = tuple(
        _task(shape, item, item.get("usage"), f"tasks[{n}]")
        for n, item in enumerate(shape.obj(t, f"tasks[{n}]") for n, t in enumerate(listed))
    )
    return TaskPage(
        page_no=shape.count(body, "page_no", "the answer", 1),
        page_size=shape.count(body, "page_size", "the answer", len(tasks)),
        total=shape.count(body, "total", "the answer", len(tasks)),
        tasks=tasks,
    )


def policy(data: Any, what: str, key: ApiKey | None) -> UploadPolicy:
    """The upload policy: `{"request_id", "data": {"policy", "signature", "upload_dir", ...}}`."""
    shape = Shape(what, data, key)
    d = shape.obj(shape.obj(data, "the answer").get("data"), "data")
    return UploadPolicy(
        policy=shape.text(d, "policy", "data", required=True),
        signature=shape.text(d, "signature", "data", required=True),
        upload_dir=shape.text(d, "upload_dir", "data", required=True).rstrip("/"),
        upload_host=shape.url(d, "upload_host", "data", required=True),
        oss_access_key_id=shape.text(d, "oss_access_key_id", "data", required=True),
        x_oss_object_acl=shape.text(d, "x_oss_object_acl", "data") or "private",
        x_oss_forbid_overwrite=shape.text(d, "x_oss_forbid_overwrite", "data") or "true",
        max_file_size_mb=shape.number(d, "max_file_size_mb", "data") or 0.0,
        expire_in_seconds=shape.number(d, "expire_in_seconds", "data") or 0.0,
        capacity_limit_mb=shape.number(d, "capacity_limit_mb", "data"),
    )
