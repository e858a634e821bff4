"""The emulated service's work, as the real one does it: one task at a time per account (or
`workers` at once), the others queued as PENDING in submit order. A worker takes the oldest,
fetches and judges its inputs with retalk's own preflight (PRE-PROCESSING), renders a real
result with ffmpeg (RUNNING), stores it (POST-PROCESSING), and ends it SUCCEEDED or FAILED.

On the emulator's clock (`clock.Clock`, whose scale shortens these durations): a task not
finished within `task_timeout` of its submit fails with `InternalError.Timeout`, queued or not;
a finished task is forgotten `retention` after its end (queries answer UNKNOWN)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from retalk import limits
from retalk.client.core import OSS_SCHEME, safe_name
from retalk.codes import Severity
from retalk.emulator.clock import Clock
from retalk.emulator.render import render
from retalk.emulator.tasks import (
    CANCELED,
    FAILED,
    FINAL,
    MESSAGES,
    PENDING,
    POST,
    PRE,
    RUNNING,
    SUCCEEDED,
    EmulatedTask,
)
from retalk.findings import Report
from retalk.job import Parameters
from retalk.preflight.probe import ffmpeg_command

_FACE_MISMATCH = "InvalidFile.FaceNotMatch"
_VERDICTS = 256
"""Preflight reports remembered, by the inputs' bytes."""


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def match_distance(threshold: int | None) -> float:
    """The identity distance (dlib's 128-d embedding, as the preflight measures it) from which
    a reference does not match, for a `query_face_threshold` (120 loose … 200 strict): the
    service's default 170 is the preflight's own `FACE_OTHER_PERSON` (0.65), the strictest 200
    its `FACE_SAME_PERSON` (0.55), and every step of 1 moves it by a thirtieth of their gap
    (so 120 is 0.817)."""
    if threshold is None:
        threshold = limits.QUERY_FACE_THRESHOLD_DEFAULT
    gap = limits.FACE_OTHER_PERSON - limits.FACE_SAME_PERSON
    steps = limits.QUERY_FACE_THRESHOLD.high - limits.QUERY_FACE_THRESHOLD_DEFAULT
    return (
        limits.FACE_OTHER_PERSON + (limits.QUERY_FACE_THRESHOLD_DEFAULT - threshold) * gap / steps
    )


class _Stopped(Exception):
    """The emulator is stopping: the task's work ends where it is."""


class Engine:
    """The task queue, its workers and the tasks' lifetimes."""

    def __init__(
        self,
        storage: Path,
        *,
        clock: Clock,
        workers: int = 1,
        pending_s: float = 0.0,
        running_s: float = 0.0,
        processing_s: float = 0.0,
        download_timeout: float = limits.URL_DOWNLOAD_TIMEOUT_S,
        task_timeout: float = limits.TASK_TIMEOUT_S,
        retention: float = limits.TASK_RETENTION_S,
        upload_lifetime: float = limits.UPLOAD_LIFETIME_S,
    ) -> None:
        if workers < 1:
            raise ValueError("an emulator needs at least one worker")
        self.storage = storage
        self.clock = clock
        self.workers = workers
        self.pending_s, self.running_s, self.processing_s = pending_s, running_s, processing_s
        self.download_timeout = download_timeout
        self.task_timeout, self.retention = task_timeout, retention
        self.upload_lifetime = upload_lifetime
        self.uploaded: dict[str, float] = {}
        """When each object of the upload storage was stored (on the clock), by its key."""
        self.tasks: dict[str, EmulatedTask] = {}
        """Every task ever created, forgotten ones too (they are marked)."""
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._queue: deque[EmulatedTask] = deque()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._verdicts: dict[tuple[Any, ...], Report] = {}
        self.verdicts_reused = 0
        """Tasks judged by a remembered preflight report (the same inputs' bytes)."""
        self.created = 0
        """Tasks created."""
        self.seconds_billed = 0.0
        """The sum of `usage.video_duration` of the tasks that succeeded, forgotten ones too."""
        self.busy_s = 0.0
        """Real seconds the workers spent on tasks, from taking one to ending it."""

    # The API's side.
    def submit(self, inputs: dict[str, str], parameters: Parameters) -> EmulatedTask:
        """Queue a new task."""
        task = EmulatedTask(
            str(uuid.uuid4()), inputs, parameters, self.clock.now(), time.monotonic()
        )
        with self._wake:
            self._start_workers()
            self.tasks[task.task_id] = task
            self.created += 1
            self._queue.append(task)
            self._wake.notify_all()
        return task

    def cancel(self, task_id: str) -> bool:
        """Cancel a PENDING task; False for any other (or none)."""
        with self.lock:
            self.sweep()
            task = self.tasks.get(task_id)
            if task is None or task.forgotten or task.status != PENDING:
                return False
            task.move(CANCELED, self.clock.now())
            return True

    def find(self, task_id: str) -> EmulatedTask | None:
        """A task the service still knows (call with the lock held)."""
        self.sweep()
        task = self.tasks.get(task_id)
        return None if task is None or task.forgotten else task

    def sweep(self) -> None:
        """Apply the clock (call with the lock held): tasks past their timeout fail, finished
        tasks past their retention are forgotten."""
        now = self.clock.now()
        for task in self.tasks.values():
            if task.forgotten:
                continue
            if task.status not in FINAL:
                deadline = task.submit_at + self.clock.span(self.task_timeout)
                if now >= deadline:
                    task.code = "InternalError.Timeout"
                    task.message = (
                        f"The task did not finish within {self.task_timeout:g} seconds of its "
                        "submission."
                    )
                    task.move(FAILED, deadline)
            elif task.end_at is not None and now >= task.end_at + self.clock.span(self.retention):
                task.forgotten = True

    def state(self) -> dict[str, Any]:
        """The engine's part of the inspection endpoint's answer."""
        with self.lock:
            self.sweep()
            return {
                "tasks": [task.inspected(self.clock) for task in self.tasks.values()],
                "tasks_created": self.created,
                "seconds_billed": round(self.seconds_billed, 3),
                "worker_busy_s": round(self.busy_s, 3),
                "workers": self.workers,
                "queued": sum(1 for t in self._queue if t.status == PENDING),
                "verdicts_reused": self.verdicts_reused,
            }

    def stop(self, wait: float = 5.0) -> None:
        """Stop the workers: their ffmpeg runs are killed, their waits cut short."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
            children = list(self._children)
        for child in children:
            child.kill()
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # The workers' side.
    def _start_workers(self) -> None:
        if self._threads or self._stopping.is_set():
            return
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"emulator-worker-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            task = self._next()
            if task is None:
                return
            started = time.monotonic()
            try:
                self._run(task)
            except _Stopped:
                return
            finally:
                with self.lock:
                    self.busy_s += time.monotonic() - started

    def _next(self) -> EmulatedTask | None:
        """The oldest queued task once it has been PENDING `pending_s`, moved to
        PRE-PROCESSING; None when stopping."""
        with self._wake:
            while not self._stopping.is_set():
                self.sweep()
                while self._queue and self._queue[0].status != PENDING:
                    self._queue.popleft()
                if not self._queue:
                    self._wake.wait(1.0)
                    continue
                left = self._queue[0].queued_at + self.pending_s - time.monotonic()
                if left > 0:
                    self._wake.wait(min(left, 1.0))
                    continue
                task = self._queue.popleft()
                now = self.clock.now()
                task.scheduled_at = now
                task.move(PRE, now)
                return task
        return None

    def _move(self, task: EmulatedTask, status: str, **changes: Any) -> bool:
        """Move the task on, unless it ended meanwhile (timed out)."""
        with self.lock:
            self.sweep()
            if task.status in FINAL:
                return False
            for name, value in changes.items():
                setattr(task, name, value)
            task.move(status, self.clock.now())
            if status == SUCCEEDED:
                self.seconds_billed += float(task.usage.get("video_duration") or 0)
            return True

    def _hold(self, since: float, least: float) -> None:
        """Wait until `least` seconds have passed since `since` (time.monotonic)."""
        if self._stopping.wait(max(0.0, since + least - time.monotonic())):
            raise _Stopped

    def _run(self, task: EmulatedTask) -> None:
        entered = time.monotonic()
        work = self.storage / "work" / task.task_id
        try:
            # Never with parents: a storage removed by a stop must stay removed.
            work.parent.mkdir(exist_ok=True)
            work.mkdir()
            outcome = self._prepare(task, work)
            self._hold(entered, self.processing_s)
            if isinstance(outcome, tuple):
                self._move(task, FAILED, code=outcome[0], message=outcome[1])
                return
            if not self._move(task, RUNNING):
                return
            entered = time.monotonic()
            made = self._render(task, outcome, work)
            self._hold(entered, self.running_s)
            if not self._move(task, POST):
                return
            entered = time.monotonic()
            result = self.storage / "results" / task.task_id
            result.parent.mkdir(exist_ok=True)
            result.mkdir()
            made = made.rename(result / "result.mp4")
            self._hold(entered, self.processing_s)
            self._move(task, SUCCEEDED, result=made, usage=outcome["usage"])
        except _Stopped:
            raise
        except Exception as error:  # the emulator must answer, whatever breaks inside
            if self._stopping.is_set():
                raise _Stopped from error
            self._move(
                task,
                FAILED,
                code="InternalError",
                message=f"the emulator failed: {type(error).__name__}: {error}",
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _prepare(self, task: EmulatedTask, work: Path) -> dict[str, Any] | tuple[str, str]:
        """The inputs fetched and judged: what the rendering needs, or the failure."""
        files: dict[str, Path] = {}
        for role in ("video", "audio", "ref"):
            url = task.inputs.get(role)
            if not url:
                continue
            fetched = self._fetch(url, work / role)
            if isinstance(fetched, tuple):
                return fetched
            files[role] = fetched
        return self._judge(task, files)

    def _fetch(self, url: str, folder: Path) -> Path | tuple[str, str]:
        folder.mkdir(parents=True, exist_ok=True)
        refused = (
            "InvalidURL.ConnectionRefused",
            MESSAGES["InvalidURL.ConnectionRefused"].format(url=url),
        )
        if url.startswith(OSS_SCHEME):
            key = url[len(OSS_SCHEME) :]
            stored = (self.storage / "oss" / key).resolve()
            if not stored.is_file() or (self.storage / "oss").resolve() not in stored.parents:
                return refused
            with self.lock:
                since = self.uploaded.get(key)
            if since is not None and self.clock.now() >= since + self.clock.span(
                self.upload_lifetime
            ):
                return refused  # expired: as gone as an object never stored
            return stored
        target = folder / (safe_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1])) or "input")
        try:
            with httpx.stream(
                "GET", url, timeout=self.download_timeout, follow_redirects=True
            ) as r:
                if r.status_code >= 400:
                    raise httpx.ConnectError(f"HTTP {r.status_code}")
                deadline = time.monotonic() + self.download_timeout
                with open(target, "wb") as out:
                    for chunk in r.iter_bytes(1 << 20):
                        out.write(chunk)
                        if time.monotonic() > deadline:
                            raise httpx.ReadTimeout("download took too long")
        except httpx.TimeoutException:
            return "InvalidURL.Timeout", MESSAGES["InvalidURL.Timeout"].format(url=url)
        except (httpx.HTTPError, OSError):
            return refused
        return target

    def _judge(
        self, task: EmulatedTask, files: dict[str, Path]
    ) -> dict[str, Any] | tuple[str, str]:
        report = self._verdict(files, task.parameters.video_extension)
        errors = [(f.code, f.path) for f in report.findings if f.severity is Severity.ERROR]
        (video,) = [i for i in report.inputs if i.role == "video"]
        faces = video.facts.get("faces")
        distance = faces.get("ref_distance") if isinstance(faces, dict) else None
        if "ref" in files and isinstance(distance, (int, float)):
            # The preflight's own bound is the default threshold's: the task's decides here.
            errors = [(code, path) for code, path in errors if code != _FACE_MISMATCH]
            if distance >= match_distance(task.parameters.query_face_threshold):
                errors.append((_FACE_MISMATCH, video.path))
        if errors:
            code, path = errors[0]
            code = code if code in MESSAGES else "InvalidFile.Openerror"
            role = next((i.role for i in report.inputs if i.path == path), "video")
            limit = {"video": limits.VIDEO, "audio": limits.AUDIO}.get(role or "", limits.IMAGE)
            return code, MESSAGES[code].format(mb=limit.max_mb, url="", field="")
        job = report.job or {}
        return {
            "files": files,
            "seconds": float(job.get("output_duration") or 0),
            "passes": int(job.get("video_passes") or 1),
            "usage": {
                "video_duration": round(float(job.get("output_duration") or 0), 2),
                "video_ratio": "standard",
                "size": f"{video.facts.get('width')}*{video.facts.get('height')}",
                "fps": video.facts.get("fps"),
            },
        }

    def _verdict(self, files: dict[str, Path], extension: bool) -> Report:
        """The preflight's report on these inputs, remembered by their bytes: tests and
        benches send the same files again and again, and a face analysis takes seconds."""
        from retalk.preflight.check import check_job

        key = (
            tuple(sorted((role, _digest(path)) for role, path in files.items())),
            extension,
        )
        with self.lock:
            known = self._verdicts.get(key)
            if known is not None:
                self.verdicts_reused += 1
                return known
        report = check_job(
            video=files["video"],
            audio=files["audio"],
            ref=files.get("ref"),
            video_extension=extension,
            content="ref" in files,  # the service's content errors all need a reference
        )
        with self.lock:
            self._verdicts[key] = report
            while len(self._verdicts) > _VERDICTS:
                del self._verdicts[next(iter(self._verdicts))]
        return report

    def _render(self, task: EmulatedTask, plan: dict[str, Any], work: Path) -> Path:
        out = work / "result.mp4"
        files = plan["files"]
        render(
            self._ffmpeg,
            files["video"],
            files["audio"],
            plan["seconds"],
            plan["passes"],
            task.parameters.video_extension,
            out,
        )
        return out

    def _ffmpeg(self, *args: str) -> None:
        command = [ffmpeg_command(), "-nostdin", "-v", "error", "-y", *args]
        with self.lock:
            if self._stopping.is_set():
                raise _Stopped
            child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            self._children.add(child)
        try:
            _, said = child.communicate()
        finally:
            with self.lock:
                self._children.discard(child)
        if child.returncode != 0:
            if self._stopping.is_set():
                raise _Stopped
            raise subprocess.CalledProcessError(child.returncode, command, stderr=said)
