"""What the sync and the async client share: every request they make, built here, and every
answer, read here. No I/O happens in this module."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from retalk import limits
from retalk.client.config import MODEL, ApiKey, Timing
from retalk.client.errors import ApiStatusError, InvalidRequest, error_from_answer
from retalk.client.models import Task, TaskPage, UploadPolicy
from retalk.client.retry import RETRY_EXTENSION

SUBMIT_PATH = "/services/aigc/image2video/video-synthesis/"
OSS_SCHEME = "oss://"


@dataclass(frozen=True)
class Call:
    """One request, ready for either client to send."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    json: Any = None
    extensions: dict[str, Any] = field(default_factory=dict)


class Core:
    def __init__(self, api_key: ApiKey, base_url: str, timing: Timing) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.timing = timing

    @property
    def timeout(self) -> httpx.Timeout:
        t = self.timing
        return httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.connect)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.reveal()}"}

    def submit(
        self,
        video_url: str,
        audio_url: str,
        ref_image_url: str | None = None,
        video_extension: bool = False,
        query_face_threshold: int | None = None,
    ) -> Call:
        if query_face_threshold is not None:
            if not ref_image_url:
                raise ValueError("query_face_threshold goes with a reference image")
            if query_face_threshold not in limits.QUERY_FACE_THRESHOLD:
                raise ValueError(
                    f"query_face_threshold must be {limits.QUERY_FACE_THRESHOLD.describe()}"
                )
        parameters: dict[str, Any] = {"video_extension": bool(video_extension)}
        if query_face_threshold is not None:
            parameters["query_face_threshold"] = int(query_face_threshold)
        urls = [video_url, audio_url, ref_image_url or ""]
        headers = {
            **self._auth(),
            "Content-Type": "application/json",
            "X-DashScope-Async": "enable",
        }
        if any(u.startswith(OSS_SCHEME) for u in urls):
            headers["X-DashScope-OssResourceResolve"] = "enable"
        body = {
            "model": MODEL,
            "input": {"video_url": video_url, "audio_url": audio_url, "ref_image_url": urls[2]},
            "parameters": parameters,
        }
        return Call("POST", self.base_url + SUBMIT_PATH, headers, json=body)

    def get(self, task_id: str) -> Call:
        return Call("GET", f"{self.base_url}/tasks/{_segment(task_id)}", self._auth())

    def cancel(self, task_id: str) -> Call:
        return Call("POST", f"{self.base_url}/tasks/{_segment(task_id)}/cancel", self._auth())

    def list(
        self,
        page_no: int = 1,
        page_size: int = 10,
        status: str | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
    ) -> Call:
        params: dict[str, Any] = {"page_no": page_no, "page_size": page_size, "model_name": MODEL}
        for name, value in (("status", status), ("start_time", start_time), ("end_time", end_time)):
            if value:
                params[name] = value
        return Call("GET", f"{self.base_url}/tasks", self._auth(), params=params)

    def policy(self) -> Call:
        params = {"action": "getPolicy", "model": MODEL}
        return Call("GET", f"{self.base_url}/uploads", self._auth(), params=params)

    def upload_form(self, policy: UploadPolicy, path: Path) -> tuple[str, dict[str, str]]:
        """The object key and the form fields; the file goes last, as OSS requires."""
        key = f"{policy.upload_dir}/{safe_name(path.name)}"
        fields = {
            "OSSAccessKeyId": policy.oss_access_key_id,
            "Signature": policy.signature,
            "policy": policy.policy,
            "key": key,
            "x-oss-object-acl": policy.x_oss_object_acl,
            "x-oss-forbid-overwrite": policy.x_oss_forbid_overwrite,
            "success_action_status": "200",
            "x-oss-content-type": content_type(path),
        }
        return key, fields

    @staticmethod
    def upload_extensions() -> dict[str, Any]:
        return {RETRY_EXTENSION: True}

    def check_upload_size(self, policy: UploadPolicy, path: Path) -> None:
        size = path.stat().st_size
        if policy.max_file_size_mb and size > policy.max_file_size_mb * limits.MIB:
            raise InvalidRequest(
                400,
                "InvalidFile.Size",
                f"{path.name} is {size / limits.MIB:.1f} MB, over the upload limit of "
                f"{policy.max_file_size_mb:g} MB",
            )


def read_answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON of a 2xx answer; an error answer raises the mapped exception."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if response.status_code >= 400:
        raise error_from_answer(
            response.status_code, body if body is not None else _oss_error(response)
        )
    if not isinstance(body, dict):
        raise ApiStatusError(response.status_code, None, "the answer is not JSON")
    return body


def read_upload_answer(response: httpx.Response) -> None:
    """OSS answers an upload with an empty 200, or an error in XML."""
    if response.status_code >= 400:
        raise error_from_answer(response.status_code, _oss_error(response))


def _oss_error(response: httpx.Response) -> dict[str, str]:
    text = response.text
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    return {
        "code": code.group(1) if code else f"HTTP{response.status_code}",
        "message": message.group(1) if message else text[:200],
    }


def read_task(response: httpx.Response) -> Task:
    return Task.from_answer(read_answer(response))


def read_page(response: httpx.Response) -> TaskPage:
    data = read_answer(response)
    tasks = tuple(
        Task.from_answer({"output": t, "usage": t.get("usage") or {}})
        for t in data.get("tasks", [])
    )
    return TaskPage(
        page_no=int(data.get("page_no", 1)),
        page_size=int(data.get("page_size", len(tasks))),
        total=int(data.get("total", len(tasks))),
        tasks=tasks,
    )


def total_size(response: httpx.Response, offset: int) -> int | None:
    """A download's whole size: what this answer carries, after the `offset` already held."""
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def next_interval(current: float, timing: Timing) -> float:
    return min(current * 1.5, timing.poll_cap)


def _segment(task_id: str) -> str:
    if not task_id or task_id in (".", ".."):
        raise ValueError("a task id is needed")
    return quote(task_id, safe="")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file name with nothing that could climb out of a folder or confuse a URL."""
    cleaned = _UNSAFE.sub("_", os.path.basename(name.replace("\\", "/"))).strip("._")
    return cleaned or "file"


def content_type(path: Path) -> str:
    return {
        ".mp4": "video/mp4",
        ".mov": "video/quicktime",
        ".avi": "video/x-msvideo",
        ".wav": "audio/wav",
        ".mp3": "audio/mpeg",
        ".aac": "audio/aac",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".png": "image/png",
        ".bmp": "image/bmp",
        ".webp": "image/webp",
    }.get(path.suffix.lower(), "application/octet-stream")


def download_target(path: str | os.PathLike[str], url: str, task_id: str | None) -> Path:
    """Where a download goes: `path` itself, or inside it when it is a folder, under the URL's
    file name made safe. Never outside the folder the caller named, whatever the URL says."""
    target = Path(path)
    if not target.is_dir():
        return target
    name = safe_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))
    if name == "file" or not name.lower().endswith((".mp4", ".mov")):
        name = f"{safe_name(task_id or 'result')}.mp4"
    final = (target / name).resolve()
    if final.parent != target.resolve():  # cannot happen after safe_name; kept as the rule
        raise ValueError(f"refusing to write outside {target}")
    return final
