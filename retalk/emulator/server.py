"""A local stand-in for the VideoRetalk service, over real HTTP, for tests that must not spend
money: the submit, query, cancel and list endpoints, the temporary-upload policy and an
OSS-style upload host, and result links that expire. It enforces the headers the real service
requires and answers with its codes.

It stands up to hostile clients as a server should: hundreds of clients at once, keys and
policies checked before any body is read, bodies bounded before they are read, idle or trickling
connections dropped (`wire`, `oss`).

    with Emulator() as emulator:            # a free port on 127.0.0.1
        client = Client(api_key="sk-test", url=emulator.base_url)
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from retalk import __version__, limits
from retalk.client.config import MODEL
from retalk.client.core import OSS_SCHEME, SUBMIT_PATH
from retalk.emulator import listing, oss, wire
from retalk.emulator.clock import Clock, iso
from retalk.emulator.engine import Engine
from retalk.emulator.faults import Faults
from retalk.emulator.quota import RateQuota
from retalk.emulator.tasks import SUCCEEDED, EmulatedTask
from retalk.job import Parameters

API = "/api/v1"
STATE = "/_emulator/state"
"""The inspection endpoint: what the emulator holds and counted, without a key."""
HEADER = "X-Retalk-Emulator"
"""The header every answer carries, with retalk's version: this is the emulator."""
OSS = "/oss"
RESULTS = "/results/"
_CHUNK = 1 << 20


class ResultRequest(NamedTuple):
    """One request for a result file, as the emulator saw and answered it."""

    range: str | None
    """The `Range` header."""
    if_range: str | None
    """The `If-Range` header."""
    status: int
    start: int
    """The first byte sent."""


class Emulator:
    """The emulated service. `api_key` None accepts any key; a string accepts only that one.
    `idle_timeout`: seconds a connection may take to send a request's head, or to send the
    next 64 KiB of a body, before it is dropped. `max_body`: bytes of an API request's body.
    `max_connections`: connections served at once; more are answered 503 and closed.

    Its work: `workers` tasks at once (the service: 1), the rest PENDING in submit order; a task
    stays PENDING `pending_s` at least, PRE- and POST-PROCESSING `processing_s` each, RUNNING
    `running_s` (real seconds). `submit_rate`: submits a second before 429
    `Throttling.RateQuota` (the service: 1; 0, the default in process, is no quota). On its
    `clock` (the wall clock's time, its durations divided by `time_scale`; or a `Clock` to
    `advance`): tasks fail `task_timeout` after their submit, are forgotten `retention` after
    their end, and their result links expire `result_lifetime` after it; uploads
    `upload_lifetime` after they were stored. `query_rate`: queries a second, as
    `submit_rate` (the service: 20)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        result_lifetime: float = limits.RESULT_URL_LIFETIME_S,
        policy_lifetime: float = 300.0,
        max_upload_mb: int = 1024,
        workers: int = 1,
        pending_s: float = 0.2,
        running_s: float = 0.3,
        processing_s: float = 0.0,
        submit_rate: float = 0.0,
        task_timeout: float = limits.TASK_TIMEOUT_S,
        retention: float = limits.TASK_RETENTION_S,
        upload_lifetime: float = limits.UPLOAD_LIFETIME_S,
        query_rate: float = 0.0,
        time_scale: float = 1.0,
        clock: Clock | None = None,
        download_timeout: float = limits.URL_DOWNLOAD_TIMEOUT_S,
        faults: Faults | None = None,
        storage: Path | None = None,
        idle_timeout: float = 20.0,
        max_body: int = 256 * 1024,
        max_connections: int = 512,
    ) -> None:
        self.api_key = api_key
        self.idle_timeout = idle_timeout
        self.max_body = max_body
        self.result_lifetime = result_lifetime
        self.policy_lifetime = policy_lifetime
        self.max_upload_mb = max_upload_mb
        self.faults = faults or Faults()
        self.clock = clock or Clock(time_scale)
        self.quota = RateQuota(submit_rate)
        self.query_quota = RateQuota(query_rate)
        self._own_storage = storage is None
        self.storage = storage or Path(tempfile.mkdtemp(prefix="retalk-emulator-"))
        self.storage.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(
            self.storage,
            clock=self.clock,
            workers=workers,
            pending_s=pending_s,
            running_s=running_s,
            processing_s=processing_s,
            download_timeout=download_timeout,
            task_timeout=task_timeout,
            retention=retention,
            upload_lifetime=upload_lifetime,
        )
        self._secret = secrets.token_bytes(32)
        try:
            self._server = wire.Server((host, port), _handler(self), max_connections)
        except BaseException:
            if self._own_storage:
                shutil.rmtree(self.storage, ignore_errors=True)
            raise
        self._thread: threading.Thread | None = None
        self._serving: int | None = None
        self._stopped = False
        self._downloads: set[str] = set()
        self.result_requests: list[ResultRequest] = []
        """Every request for a result, in order: what it asked and what it got."""
        self._lock = threading.Lock()
        self.submits_received = 0
        """Every POST to the submit path, whatever became of it."""
        self.submits_throttled = 0
        """Submits refused by the rate quota (`submit_rate`)."""
        self.answers_dropped = 0
        """Submits whose task was made but whose answer was never sent (the fault)."""
        self.queries_received = 0
        """Every GET of a task or of the task list."""
        self.queries_throttled = 0
        """Queries refused by the rate quota (`query_rate`)."""

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def backlog(self) -> int:
        """Connections waiting to be accepted that the kernel holds rather than drops."""
        return wire.backlog(self._server.request_queue_size)

    @property
    def connections(self) -> int:
        """Connections open now."""
        return self._server.open

    @property
    def peak_connections(self) -> int:
        """The most connections that were open at once."""
        return self._server.peak

    @property
    def base_url(self) -> str:
        """What DASHSCOPE_HTTP_BASE_URL should say to use the emulator."""
        return self.origin + API

    def start(self) -> Emulator:
        """Serve on a thread of its own."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until `stop` (from another) or an exception (a signal's)."""
        self._serving = threading.get_ident()
        try:
            self._server.serve_forever()
        finally:
            self._serving = None

    def stop(self) -> None:
        """Stop serving and working; remove the storage the emulator made itself. Once: a
        second call does nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        serving = self._serving
        if self._thread is not None or serving not in (None, threading.get_ident()):
            # Waits for the loop to end: a thread of `start` always runs it (a shutdown asked
            # before it begins ends it at once); a loop of `serve_forever` left on this thread
            # (a signal's exception) is over already.
            self._server.shutdown()
        self._server.server_close()
        self.engine.stop()
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

    def count(self, name: str) -> None:
        """Add one to a counter of the inspection endpoint's."""
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def state(self) -> dict[str, Any]:
        """What the inspection endpoint (`GET {origin}/_emulator/state`) answers: every task
        (`task_id`, `status`, `submit_time`, `end_time`, `inputs` by role, `parameters`,
        `video_duration` billed or null, `code`, `history` of states, `forgotten`), and
        `submits_received`, `submits_throttled`, `answers_dropped`, `tasks_created`,
        `seconds_billed` (of the tasks that succeeded), `worker_busy_s` (real seconds the
        workers spent on tasks), `workers`, `queued`, `verdicts_reused`, `clock` (its
        epoch seconds: the wall clock's plus every advance), `time_scale`."""
        with self._lock:
            counters = {
                "submits_received": self.submits_received,
                "submits_throttled": self.submits_throttled,
                "answers_dropped": self.answers_dropped,
                "queries_received": self.queries_received,
                "queries_throttled": self.queries_throttled,
            }
        return {
            "version": __version__,
            **self.engine.state(),
            **counters,
            "clock": round(self.clock.now(), 3),
            "time_scale": self.clock.scale,
        }

    # The upload policy: a signed, expiring statement of where uploads may go.
    def new_policy(self) -> dict[str, Any]:
        upload_dir = f"{MODEL}/{uuid.uuid4().hex}"
        statement = oss.statement(
            time.time() + self.policy_lifetime, upload_dir, self.max_upload_mb * limits.MIB
        )
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

    def check_policy(self, fields: dict[str, str]) -> oss.Policy | str:
        """What an upload's form may do, or why it is refused."""
        policy = fields.get("policy", "")
        if not hmac.compare_digest(self._sign(policy), fields.get("Signature", "")):
            return "The request signature we calculated does not match the signature you provided."
        statement = oss.decode(policy)
        if statement is None:
            return "Invalid Policy"
        # The wall clock's: a policy lives a few minutes, for the upload it was asked for.
        return oss.judge(statement, fields, time.time())

    def result_expiry(self, task: EmulatedTask) -> float | None:
        """When the task's result link expires, on the emulator's clock."""
        if task.end_at is None:
            return None
        return task.end_at + self.clock.span(self.result_lifetime)

    def result_url(self, task: EmulatedTask) -> str | None:
        """A signed link to the result, with `Expires=` (epoch seconds, on the wall clock as
        it has the link's expiry now) as OSS signs them."""
        ends = self.result_expiry(task)
        if task.result is None or ends is None:
            return None
        expires = int(self.clock.wall(ends))
        query = f"Expires={expires}&Signature={self.url_signature(task.task_id, str(expires))}"
        return f"{self.origin}{RESULTS}{task.task_id}/result.mp4?{query}"

    def record(self, request: ResultRequest) -> None:
        with self._lock:
            self.result_requests.append(request)

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
    disable_nagle_algorithm = True
    """An answer's head and body go out in separate writes: with Nagle's algorithm the body
    waits for the client's delayed ACK of the head, 40 ms on every request of a kept-alive
    connection."""
    _reader: wire.DeadlineReader
    _unread = False
    """Whether the request carries a body not read (yet): the connection cannot be reused."""
    _expecting = False
    """Whether the client waits for `100 Continue` before it sends its body."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator's log would carry the callers' Authorization headers' echoes."""

    def send_response(self, code: int, message: str | None = None) -> None:
        """Every answer says it is the emulator's."""
        super().send_response(code, message)
        self.send_header(HEADER, __version__)

    # Plumbing.
    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self._reader = wire.DeadlineReader(self.connection, self.service.idle_timeout)
        self.rfile = io.BufferedReader(self._reader)
        self.connection.settimeout(self.service.idle_timeout)

    def handle_one_request(self) -> None:
        self._reader.renew()  # each request's head must come whole within the idle timeout
        self._expecting = False
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        """`100 Continue` waits until the body is wanted: a refused client never sends it."""
        self._expecting = True
        return True

    def _continue(self) -> None:
        if self._expecting:
            self._expecting = False
            self.send_response_only(100)
            self.end_headers()

    def _answer(self, status: int, kind: str, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        if self._unread:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._answer(status, "application/json", json.dumps(body).encode(), headers or {})

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._json(status, {"request_id": _rid(), "code": code, "message": message}, headers)

    def _xml_error(self, status: int, code: str, message: str, **more: str) -> None:
        host = self.headers.get("Host") or "emulator"
        parts = {"Code": code, "Message": message, "RequestId": _rid(), "HostId": host, **more}
        body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in parts.items())
        data = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>'.encode()
        self._answer(status, "application/xml", data, {})

    def _body(self) -> bytes | None:
        """An API request's body, read only once its length is known to be fit; None when it
        was refused (and answered) or the client went away."""
        length = wire.declared_length(self.headers, required=True, limit=self.service.max_body)
        if isinstance(length, wire.Refusal):
            self._error(length.status, length.code, length.message)
            return None
        self._continue()
        self._reader.renew()
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            return None
        self._unread = False
        return data

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        key = given[7:] if given.startswith("Bearer ") else ""
        wanted = self.service.api_key
        if not key or (wanted is not None and not hmac.compare_digest(_raw(key), _raw(wanted))):
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

    def _throttled(self, quota: RateQuota) -> None:
        wait = f"{max(1, round(quota.wait_s() + 0.5))}"
        self._error(
            429,
            "Throttling.RateQuota",
            "Requests rate limit exceeded, please try again later.",
            {"Retry-After": wait},
        )

    # Routes.
    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _guarded(self, route: Callable[[], None]) -> None:
        """An emulator bug answers 500 InternalError, as the service would, not a traceback.
        A body left unread closes the connection: what follows it is no request."""
        self._unread = bool(
            self.headers.get_all("Transfer-Encoding")
            or self.headers.get("Content-Length", "0").strip() != "0"
        )
        try:
            route()
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        except Exception as error:
            try:
                self._error(500, "InternalError", f"the emulator failed: {type(error).__name__}")
            except OSError:
                self.close_connection = True
                return
        if self._unread:
            self.close_connection = True
            wire.hang_up(self.connection)

    def _get(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith(RESULTS):
            self._result(url.path, parse_qs(url.query))
            return
        if url.path == STATE:
            self._json(200, self.service.state())
            return
        if not url.path.startswith(API):
            self._error(404, "NotFound", "no such path")
            return
        if self._faulted() or not self._authorised():
            return
        route = url.path[len(API) :]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if route.rstrip("/") == "/tasks" or route.startswith("/tasks/"):
            self.service.count("queries_received")
            if not self.service.query_quota.take():
                self.service.count("queries_throttled")
                self._throttled(self.service.query_quota)
                return
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
        submit = route in (SUBMIT_PATH, SUBMIT_PATH.rstrip("/"))
        if submit:
            self.service.count("submits_received")
        if not self._authorised():
            return
        body = self._body()
        if body is None or self._faulted():
            return
        if submit:
            if not self.service.quota.take():
                self.service.count("submits_throttled")
                self._throttled(self.service.quota)
                return
            self._submit(body)
        elif m := re.fullmatch(r"/tasks/([^/]+)/cancel", route):
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

    def _submit(self, data: bytes) -> None:
        try:
            body = json.loads(data or b"{}")
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            self._error(400, "InvalidParameter", "The request body is not a JSON object.")
            return
        if self.headers.get("X-DashScope-Async", "").lower() != "enable":
            self._error(403, "AccessDenied", "current user api does not support synchronous calls")
            return
        if body.get("model") != MODEL:
            self._error(404, "Model.NotExist", "Model not exist.")
            return
        given = body.get("input") or {}
        parameters = body.get("parameters") or {}
        for name, value in (("input", given), ("parameters", parameters)):
            if not isinstance(value, dict):
                self._error(400, "InvalidParameter", f"{name} must be an object")
                return
        for name in ("video_url", "audio_url"):
            if not given.get(name):
                self._error(400, "InvalidParameter", f"Field required: input.{name}")
                return
        urls = {
            "video": given["video_url"],
            "audio": given["audio_url"],
            "ref": given.get("ref_image_url") or "",
        }
        for role, url in urls.items():
            if not isinstance(url, str):
                field = "ref_image_url" if role == "ref" else f"{role}_url"
                self._error(400, "InvalidParameter", f"input.{field} must be a string")
                return
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
        try:
            read = Parameters.from_wire(parameters, has_ref=bool(urls["ref"]))
        except ValueError as error:
            field = str(error)
            span = limits.QUERY_FACE_THRESHOLD
            said = {
                "parameters.query_face_threshold": (
                    f"parameters.query_face_threshold must be an integer {span.low} ~ "
                    f"{span.high}, with input.ref_image_url"
                ),
                "parameters.video_extension": "parameters.video_extension must be a boolean",
            }
            self._error(400, "InvalidParameter", said.get(field, f"{field} is not valid"))
            return
        self._create({k: v for k, v in urls.items() if v}, read)

    def _create(self, urls: dict[str, str], parameters: Parameters) -> None:
        """A task is made only for a client still there to learn its id. Once made, it lives
        whatever becomes of the answer, as on the service: a client that loses the answer has
        a task it does not know of (`Faults.drop_submit_answer_every` makes that happen)."""
        if wire.client_gone(self.connection, self.service.idle_timeout):
            self.close_connection = True
            return
        task = self.service.engine.submit(urls, parameters)
        if self.service.faults.drop_answer():
            self.service.count("answers_dropped")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        output = {"task_id": task.task_id, "task_status": "PENDING"}
        self._json(200, {"request_id": _rid(), "output": output})

    def _query(self, task_id: str) -> None:
        with self.service.engine.lock:
            task = self.service.engine.find(task_id)
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
                "output": self.service.faults.spelled(
                    task.output(self.service.result_url(task), self.service.clock)
                ),
            }
            if task.status == SUCCEEDED:
                body["usage"] = task.usage
        self._json(200, body)

    def _list(self, query: dict[str, str]) -> None:
        chosen = listing.selection(query, self.service.clock)
        if isinstance(chosen, str):
            self._error(400, "InvalidParameter", chosen)
            return
        with self.service.engine.lock:
            self.service.engine.sweep()
            tasks = chosen.select(self.service.engine.tasks.values())
            clock = self.service.clock
            spelled = self.service.faults.spelled
            listed = [
                {**spelled(t.output(self.service.result_url(t), clock)), "model_name": MODEL}
                for t in chosen.page(tasks)
            ]
        self._json(
            200,
            {
                "request_id": _rid(),
                "page_no": chosen.page_no,
                "page_size": chosen.page_size,
                "total": len(tasks),
                "tasks": listed,
            },
        )

    def _upload(self) -> None:
        """An OSS PostObject: a multipart form whose last part is the file. The fields before
        the file are read first and judged, with the size the request declares: only a form
        that may be stored is spooled to disk, as it arrives, then moved into place."""
        match = re.search(r"boundary=\"?([^\";]+)\"?", self.headers.get("Content-Type", ""))
        if not match:
            self._xml_error(400, "InvalidArgument", "Bad multipart form")
            return
        boundary = match.group(1).encode()
        limit = self.service.max_upload_mb * limits.MIB + oss.FORM_LIMIT
        length = wire.declared_length(self.headers, required=True, limit=limit)
        if isinstance(length, wire.Refusal):
            self._xml_error(*_oss_refusal(length))
            return
        self._continue()
        self._reader.renew()
        head = oss.read_head(self.rfile.read1, boundary, length)
        if isinstance(head, str):
            self._xml_error(400, "InvalidArgument", head)
            return
        left = length - head.consumed
        size = len(head.file_start) + left - oss.closing_size(boundary) - len(b"\r\n")
        checked = self._form_problem(head.fields, size)
        if isinstance(checked, tuple):
            self._xml_error(*checked)
            return
        part = self.service.storage / "spool" / f"{uuid.uuid4().hex}.part"
        part.parent.mkdir(exist_ok=True)
        try:
            stored = self._spool(part, head.file_start, left) and self._store(
                part, boundary, head.fields["key"], checked
            )
        finally:
            part.unlink(missing_ok=True)  # before the answer: the client may look at once
        if isinstance(stored, tuple):
            self._xml_error(*stored)
        elif stored:
            wanted = head.fields.get("success_action_status", "")
            self.send_response(int(wanted) if wanted in ("200", "201") else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _spool(self, part: Path, first: bytes, left: int) -> bool:
        """The rest of the body into `part`; False if the client went away."""
        with open(part, "wb") as out:
            out.write(first)
            while left:
                chunk = self.rfile.read1(min(_CHUNK, left))
                if not chunk:
                    self.close_connection = True
                    return False
                out.write(chunk)
                left -= len(chunk)
        self._unread = False
        return True

    def _store(
        self, part: Path, boundary: bytes, key: str, policy: oss.Policy
    ) -> tuple[int, str, str] | bool:
        """The spooled file in place as the object `key`, or why not."""
        if not oss.cut_at_close(part, boundary):
            return 400, "InvalidArgument", "the file must be the last field of the form"
        if part.stat().st_size > policy.max_size:
            return 400, "EntityTooLarge", _TOO_LARGE
        root = self.service.storage / "oss"
        target = root / key
        try:
            root.mkdir(exist_ok=True)  # not with parents: a stopped emulator's storage is gone
            target.parent.mkdir(parents=True, exist_ok=True)
            if policy.forbid_overwrite:
                os.link(part, target)  # fails if the object exists, even if it just appeared
            else:
                os.replace(part, target)
        except OSError:
            # The object exists, or (OSS's names are flat, the emulator's storage is not) a
            # name that is a folder here, or under one that is a file.
            return 409, *_EXISTS
        with self.service.engine.lock:
            self.service.engine.uploaded[key] = self.service.clock.now()
        return True

    def _form_problem(self, fields: dict[str, str], size: int) -> oss.Policy | tuple[int, str, str]:
        """What the form may do, judged from its fields and the file's declared size before
        a byte of the file is read; or why it is refused."""
        for name in ("OSSAccessKeyId", "Signature", "policy", "key"):
            if name not in fields:
                return 400, "InvalidArgument", f"{name} is missing from the form"
        policy = self.service.check_policy(fields)
        if isinstance(policy, str):
            return 403, "AccessDenied", policy
        key = fields["key"]
        if not _valid_key(key):
            return 400, "InvalidObjectName", "The Specified object is not valid."
        if size > policy.max_size:
            return 400, "EntityTooLarge", _TOO_LARGE
        if policy.forbid_overwrite and (self.service.storage / "oss" / key).exists():
            return 409, *_EXISTS
        return policy

    def _result(self, path: str, query: dict[str, list[str]]) -> None:
        match = re.fullmatch(rf"{RESULTS}([^/]+)/result\.mp4", path)
        with self.service.engine.lock:
            task = self.service.engine.tasks.get(match.group(1)) if match else None
        if task is None or task.result is None or task.end_at is None:
            self._xml_error(404, "NoSuchKey", "The specified key does not exist.")
            return
        expires = query.get("Expires", ["0"])[-1]
        signed = self.service.url_signature(task.task_id, expires)
        if not hmac.compare_digest(signed, query.get("Signature", [""])[-1]):
            self._xml_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
            return
        # Judged by the task's own expiry, not the link's `Expires=`: a link written before an
        # `advance` names a time the clock has since moved past.
        clock, ends = self.service.clock, self.service.result_expiry(task)
        now = clock.wall(clock.now())
        if ends is not None and now > int(clock.wall(ends)):
            self._xml_error(
                403,
                "AccessDenied",
                "Request has expired.",
                Expires=iso(int(clock.wall(ends))),
                ServerTime=iso(now),
            )
            return
        self._send_file(task.task_id, task.result)

    def _send_file(self, task_id: str, path: Path) -> None:
        status = path.stat()
        size = status.st_size
        # As OSS does: an entity tag and a date, and a range only while `If-Range` still names
        # them (else the whole file, with 200).
        stamp = f"{task_id}:{size}:{status.st_mtime_ns}".encode()
        etag = f'"{hashlib.md5(stamp).hexdigest()}"'
        modified = email.utils.formatdate(status.st_mtime, usegmt=True)
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        condition = self.headers.get("If-Range")
        if ranged and condition is not None and condition.strip() not in (etag, modified):
            ranged = None
        asked = (self.headers.get("Range"), condition)
        if ranged:
            start = int(ranged.group(1))
            if start >= size:
                self.service.record(ResultRequest(*asked, 416, 0))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.service.record(ResultRequest(*asked, 206 if ranged else 200, start))
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
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


_TOO_LARGE = "Your proposed upload exceeds the maximum allowed size."
_EXISTS = (
    "FileAlreadyExists",
    "The object you specified already exists and can not be overwritten.",
)


def _raw(text: str) -> bytes:
    """A header's text as bytes, whatever characters it holds (for a constant-time compare)."""
    return text.encode("utf-8", "surrogateescape")


def _valid_key(key: str) -> bool:
    """An object name OSS takes (at most 1023 bytes, no control characters) that the
    emulator's storage can hold, inside it (no empty, `.` or `..` part, none over 255 bytes)."""
    parts = key.split("/")
    return (
        0 < len(key.encode("utf-8", "surrogateescape")) <= 1023
        and not any(ord(c) < 32 or ord(c) == 127 for c in key)
        and not {"", ".", ".."} & set(parts)
        and all(len(part.encode("utf-8", "surrogateescape")) <= 255 for part in parts)
    )


def _oss_refusal(refusal: wire.Refusal) -> tuple[int, str, str]:
    """OSS answers an upload beyond its policy's size 400 EntityTooLarge."""
    if refusal.status == 413:
        return 400, "EntityTooLarge", _TOO_LARGE
    return refusal.status, refusal.code, refusal.message


def _rid() -> str:
    return str(uuid.uuid4())
