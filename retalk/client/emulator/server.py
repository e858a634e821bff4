"""A local stand-in for the VideoRetalk service, over real HTTP, for tests that must not spend
money: the submit, query, cancel and list endpoints, the temporary-upload policy and an
OSS-style upload host, and result links that expire. It enforces the headers the real service
requires and answers with its codes.

    with Emulator() as emulator:            # a free port on 127.0.0.1
        client = Client(api_key="sk-test", url=emulator.base_url)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mmap
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from retalk import limits
from retalk.client.config import MODEL
from retalk.client.core import OSS_SCHEME, SUBMIT_PATH
from retalk.client.emulator.engine import EmulatedTask, Engine
from retalk.client.emulator.faults import Faults

API = "/api/v1"
OSS = "/oss"
RESULTS = "/results/"
_CHUNK = 1 << 20


class Emulator:
    """The emulated service. `api_key` None accepts any key; a string accepts only that one."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        result_lifetime: float = limits.RESULT_URL_LIFETIME_S,
        policy_lifetime: float = 300.0,
        max_upload_mb: int = 1024,
        pending_s: float = 0.2,
        running_s: float = 0.3,
        download_timeout: float = limits.URL_DOWNLOAD_TIMEOUT_S,
        faults: Faults | None = None,
        storage: Path | None = None,
    ) -> None:
        self.api_key = api_key
        self.result_lifetime = result_lifetime
        self.policy_lifetime = policy_lifetime
        self.max_upload_mb = max_upload_mb
        self.faults = faults or Faults()
        self._own_storage = storage is None
        self.storage = storage or Path(tempfile.mkdtemp(prefix="retalk-emulator-"))
        self.storage.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(
            self.storage,
            pending_s=pending_s,
            running_s=running_s,
            download_timeout=download_timeout,
        )
        self._secret = secrets.token_bytes(32)
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._downloads: set[str] = set()
        self._lock = threading.Lock()

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """What DASHSCOPE_HTTP_BASE_URL should say to use the emulator."""
        return self.origin + API

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._own_storage:
            shutil.rmtree(self.storage, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # The upload policy: a signed, expiring statement of where uploads may go.
    def new_policy(self) -> dict[str, Any]:
        upload_dir = f"{MODEL}/{uuid.uuid4().hex}"
        statement = {"expiration": time.time() + self.policy_lifetime, "dir": upload_dir}
        policy = base64.b64encode(json.dumps(statement).encode()).decode()
        return {
            "policy": policy,
            "signature": self._sign(policy),
            "upload_dir": upload_dir,
            "upload_host": self.origin + OSS,
            "oss_access_key_id": "EMULATOR",
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true",
            "max_file_size_mb": str(self.max_upload_mb),
            "expire_in_seconds": str(int(self.policy_lifetime)),
            "capacity_limit_mb": "999999",
        }

    def _sign(self, text: str) -> str:
        return base64.b64encode(
            hmac.new(self._secret, text.encode(), hashlib.sha1).digest()
        ).decode()

    def url_signature(self, task_id: str, expires: str) -> str:
        return hmac.new(self._secret, f"{task_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def check_policy(self, fields: dict[str, str]) -> str | None:
        """Why an upload's form is refused, or None."""
        policy = fields.get("policy", "")
        if not hmac.compare_digest(self._sign(policy), fields.get("Signature", "")):
            return "The request signature we calculated does not match the signature you provided."
        try:
            statement = json.loads(base64.b64decode(policy))
        except ValueError:
            return "Invalid Policy"
        if time.time() > statement["expiration"]:
            return "Invalid according to Policy: Policy expired."
        if not fields.get("key", "").startswith(statement["dir"] + "/"):
            return "Invalid according to Policy: Policy Condition failed: key"
        return None

    def result_url(self, task: EmulatedTask) -> str | None:
        if task.result is None or task.ended_at is None:
            return None
        expires = int(task.ended_at + self.result_lifetime)
        query = f"Expires={expires}&Signature={self.url_signature(task.task_id, str(expires))}"
        return f"{self.origin}{RESULTS}{task.task_id}/result.mp4?{query}"

    def first_download(self, task_id: str) -> bool:
        with self._lock:
            first = task_id not in self._downloads
            self._downloads.add(task_id)
            return first


def _handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        service = emulator

    return Handler


class _Handler(BaseHTTPRequestHandler):
    service: Emulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator's log would carry the callers' Authorization headers' echoes."""

    # Plumbing.
    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._json(status, {"request_id": _rid(), "code": code, "message": message}, headers)

    def _xml_error(self, status: int, code: str, message: str) -> None:
        data = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{_rid()}</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        key = given[7:] if given.startswith("Bearer ") else ""
        wanted = self.service.api_key
        if not key or (wanted is not None and not hmac.compare_digest(key, wanted)):
            self._error(401, "InvalidApiKey", "Invalid API-key provided.")
            return False
        return True

    def _faulted(self) -> bool:
        faults = self.service.faults
        if faults.slow:
            time.sleep(faults.slow)
        fault = faults.next_fault()
        retry = {"Retry-After": f"{faults.retry_after:g}"}
        if fault == "throttle":
            self._error(
                429,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
                retry,
            )
            return True
        if fault == "error":
            self._error(
                500,
                "InternalError",
                "An internal error has occured, please try again later.",
                retry,
            )
            return True
        return False

    # Routes.
    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _guarded(self, route: Callable[[], None]) -> None:
        """An emulator bug answers 500 InternalError, as the service would, not a traceback."""
        try:
            route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:
            try:
                self._error(500, "InternalError", f"the emulator failed: {type(error).__name__}")
            except OSError:
                self.close_connection = True

    def _get(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith(RESULTS):
            self._result(url.path, parse_qs(url.query))
            return
        if not url.path.startswith(API):
            self._error(404, "NotFound", "no such path")
            return
        if self._faulted() or not self._authorised():
            return
        route = url.path[len(API) :]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if route == "/uploads" and query.get("action") == "getPolicy":
            self._json(200, {"request_id": _rid(), "data": self.service.new_policy()})
        elif route.rstrip("/") == "/tasks":
            self._list(query)
        elif m := re.fullmatch(r"/tasks/([^/]+)", route):
            self._query(m.group(1))
        else:
            self._error(404, "NotFound", "no such path")

    def _post(self) -> None:
        url = urlsplit(self.path)
        if url.path == OSS:
            self._upload()
            return
        if not url.path.startswith(API):
            self._error(404, "NotFound", "no such path")
            return
        route = url.path[len(API) :]
        if self._faulted() or not self._authorised():
            self._body()
            return
        if route == SUBMIT_PATH or route == SUBMIT_PATH.rstrip("/"):
            self._submit()
        elif m := re.fullmatch(r"/tasks/([^/]+)/cancel", route):
            self._body()
            if self.service.engine.cancel(m.group(1)):
                self._json(200, {"request_id": _rid()})
            else:
                self._error(
                    400,
                    "UnsupportedOperation",
                    "Failed to cancel the task, please confirm if the task is in PENDING status.",
                )
        else:
            self._error(404, "NotFound", "no such path")

    def _submit(self) -> None:
        try:
            body = json.loads(self._body() or b"{}")
        except ValueError:
            self._error(400, "InvalidParameter", "The request body is not valid JSON.")
            return
        if self.headers.get("X-DashScope-Async", "").lower() != "enable":
            self._error(403, "AccessDenied", "current user api does not support synchronous calls")
            return
        if body.get("model") != MODEL:
            self._error(404, "Model.NotExist", "Model not exist.")
            return
        given = body.get("input") or {}
        for name in ("video_url", "audio_url"):
            if not given.get(name):
                self._error(400, "InvalidParameter", f"Field required: input.{name}")
                return
        urls = {
            "video": given["video_url"],
            "audio": given["audio_url"],
            "ref": given.get("ref_image_url") or "",
        }
        for url in urls.values():
            if url and not url.startswith(("http://", "https://", OSS_SCHEME)):
                self._error(
                    400, "InvalidParameter", f"The provided URL does not appear to be valid: {url}"
                )
                return
        resolve = self.headers.get("X-DashScope-OssResourceResolve", "").lower() == "enable"
        if any(u.startswith(OSS_SCHEME) for u in urls.values()) and not resolve:
            self._error(
                400,
                "InvalidParameter",
                "The provided URL does not appear to be valid. Ensure it is correctly formatted.",
            )
            return
        parameters = body.get("parameters") or {}
        threshold = parameters.get("query_face_threshold")
        if threshold is not None and (
            not isinstance(threshold, int) or threshold not in limits.QUERY_FACE_THRESHOLD
        ):
            self._error(
                400, "InvalidParameter", "parameters.query_face_threshold must be 120 ~ 200"
            )
            return
        task = self.service.engine.submit({k: v for k, v in urls.items() if v}, parameters)
        self._json(
            200,
            {"request_id": _rid(), "output": {"task_id": task.task_id, "task_status": "PENDING"}},
        )

    def _query(self, task_id: str) -> None:
        with self.service.engine.lock:
            task = self.service.engine.tasks.get(task_id)
            if task is None:
                self._json(
                    200,
                    {
                        "request_id": _rid(),
                        "output": {"task_id": task_id, "task_status": "UNKNOWN"},
                    },
                )
                return
            body: dict[str, Any] = {
                "request_id": _rid(),
                "output": self.service.faults.spelled(task.output(self.service.result_url(task))),
            }
            if task.status == "SUCCEEDED":
                body["usage"] = task.usage
        self._json(200, body)

    def _list(self, query: dict[str, str]) -> None:
        page_no = max(1, int(query.get("page_no") or 1))
        page_size = max(1, min(100, int(query.get("page_size") or 10)))
        with self.service.engine.lock:
            tasks = [
                t
                for t in self.service.engine.tasks.values()
                if not query.get("status") or t.status == query["status"]
            ]
            tasks.sort(key=lambda t: t.submit_time, reverse=True)
            page = tasks[(page_no - 1) * page_size : page_no * page_size]
            spelled = self.service.faults.spelled
            listed = [
                {**spelled(t.output(self.service.result_url(t))), "model_name": MODEL} for t in page
            ]
        self._json(
            200,
            {
                "request_id": _rid(),
                "page_no": page_no,
                "page_size": page_size,
                "total": len(tasks),
                "tasks": listed,
            },
        )

    def _upload(self) -> None:
        """An OSS PostObject: a multipart form whose last part is the file. Spooled to disk as
        it arrives, then split at the boundaries."""
        match = re.search(r"boundary=\"?([^\";]+)\"?", self.headers.get("Content-Type", ""))
        length = int(self.headers.get("Content-Length") or 0)
        if not match or not length:
            self._xml_error(400, "InvalidArgument", "Bad multipart form")
            return
        with tempfile.TemporaryFile(dir=self.service.storage) as spool:
            left = length
            while left:
                chunk = self.rfile.read(min(_CHUNK, left))
                if not chunk:
                    return  # the client went away
                spool.write(chunk)
                left -= len(chunk)
            spool.flush()
            with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as body:
                parts = _parts(body, b"--" + match.group(1).encode())
                fields = {
                    name: bytes(body[a:b]).decode()
                    for name, (a, b) in parts.items()
                    if name != "file"
                }
                problem = self._form_problem(parts, fields)
                if problem is not None:
                    self._xml_error(*problem)
                    return
                target = (self.service.storage / "oss" / fields["key"]).resolve()
                target.parent.mkdir(parents=True, exist_ok=True)
                start, end = parts["file"]
                with open(target, "wb") as out:
                    for offset in range(start, end, _CHUNK):
                        out.write(body[offset : min(offset + _CHUNK, end)])
        self.send_response(int(fields.get("success_action_status") or 204))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _form_problem(
        self, parts: dict[str, tuple[int, int]], fields: dict[str, str]
    ) -> tuple[int, str, str] | None:
        names = list(parts)
        if "file" not in parts or names[-1] != "file":
            return 400, "InvalidArgument", "the file must be the last field of the form"
        for name in ("OSSAccessKeyId", "Signature", "policy", "key"):
            if name not in fields:
                return 400, "InvalidArgument", f"{name} is missing from the form"
        refused = self.service.check_policy(fields)
        if refused is not None:
            return 403, "AccessDenied", refused
        key = fields["key"]
        if ".." in key.split("/") or key.startswith("/"):
            return 400, "InvalidObjectName", "The Specified object is not valid."
        start, end = parts["file"]
        if end - start > self.service.max_upload_mb * limits.MIB:
            return 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."
        target = self.service.storage / "oss" / key
        if fields.get("x-oss-forbid-overwrite") == "true" and target.exists():
            return (
                409,
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
            )
        return None

    def _result(self, path: str, query: dict[str, list[str]]) -> None:
        match = re.fullmatch(rf"{RESULTS}([^/]+)/result\.mp4", path)
        with self.service.engine.lock:
            task = self.service.engine.tasks.get(match.group(1)) if match else None
        if task is None or task.result is None or task.ended_at is None:
            self._xml_error(404, "NoSuchKey", "The specified key does not exist.")
            return
        expires = query.get("Expires", ["0"])[-1]
        signed = self.service.url_signature(task.task_id, expires)
        if not hmac.compare_digest(signed, query.get("Signature", [""])[-1]):
            self._xml_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
            return
        if time.time() > float(expires):
            self._xml_error(403, "AccessDenied", "Request has expired.")
            return
        self._send_file(task.task_id, task.result)

    def _send_file(self, task_id: str, path: Path) -> None:
        size = path.stat().st_size
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        drop = self.service.faults.drop_download_after
        cut = drop if drop and self.service.first_download(task_id) else None
        sent = 0
        with open(path, "rb") as source:
            source.seek(start)
            while chunk := source.read(_CHUNK):
                if cut is not None and sent + len(chunk) > cut:
                    self.wfile.write(chunk[: cut - sent])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                sent += len(chunk)


def _parts(body: mmap.mmap, boundary: bytes) -> dict[str, tuple[int, int]]:
    """Each form field's name and the byte range of its value, in the order sent."""
    parts: dict[str, tuple[int, int]] = {}
    position = body.find(boundary)
    while position >= 0:
        head_start = position + len(boundary)
        if body[head_start : head_start + 2] == b"--":
            break
        head_end = body.find(b"\r\n\r\n", head_start)
        if head_end < 0:
            break
        head = bytes(body[head_start:head_end]).decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', head)
        following = body.find(b"\r\n" + boundary, head_end + 4)
        if following < 0:
            break
        if name:
            parts[name.group(1)] = (head_end + 4, following)
        position = following + 2
    return parts


def _rid() -> str:
    return str(uuid.uuid4())
