"""The emulated service's work: tasks that move PENDING → RUNNING → SUCCEEDED or FAILED, their
inputs fetched, judged by retalk's own preflight, and a real result made with ffmpeg."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from retalk.client.core import OSS_SCHEME, safe_name
from retalk.codes import Severity
from retalk.preflight.probe import ffmpeg_command

# The service's own messages, from the document's table of codes.
MESSAGES = {
    "InvalidParameter": "Field required: {field}",
    "InvalidURL.ConnectionRefused": "Connection to {url} refused, please provide avaiable URL",
    "InvalidURL.Timeout": "Download {url} timeout, please check network connection.",
    "InvalidFile.Size": (
        "Invalid file size. The video/audio/image file size must be less than {mb}MB."
    ),
    "InvalidFile.Format": (
        "Invalid file format,the request file format is one of the following types: MP4, AVI, "
        "MOV, MP3, WAV, AAC, JPEG, JPG, PNG, BMP, and WEBP."
    ),
    "InvalidFile.Resolution": (
        "Invalid video resolution. The height or width of video must be 640 ~ 2048."
    ),
    "InvalidFile.FPS": "Invalid video FPS. The video FPS must be 15 ~ 60.",
    "InvalidFile.Duration": (
        "Invalid file duration. The video/audio file duration must be 2s ~ 120s."
    ),
    "InvalidFile.ImageSize": "The size of image is beyond limit.",
    "InvalidFile.Openerror": "Invalid file, cannot open file as video/audio/image.",
    "InvalidFile.Content": (
        "The input image has no human body or multi human bodies. Please upload other image "
        "with single person."
    ),
    "InvalidFile.FaceNotMatch": (
        "There are no matched face in the video with the provided reference image."
    ),
}


def now() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass
class EmulatedTask:
    task_id: str
    inputs: dict[str, str]
    parameters: dict[str, Any]
    status: str = "PENDING"
    submit_time: str = field(default_factory=now)
    scheduled_time: str | None = None
    end_time: str | None = None
    ended_at: float | None = None
    code: str | None = None
    message: str | None = None
    result: Path | None = None
    usage: dict[str, Any] = field(default_factory=dict)

    def output(self, result_url: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": self.task_id,
            "task_status": self.status,
            "submit_time": self.submit_time,
        }
        if self.scheduled_time:
            out["scheduled_time"] = self.scheduled_time
        if self.end_time:
            out["end_time"] = self.end_time
        if self.status == "SUCCEEDED" and result_url:
            out["video_url"] = result_url
        if self.status == "FAILED":
            out["code"], out["message"] = self.code, self.message
        return out


class Engine:
    """Runs each task in a thread of its own."""

    def __init__(
        self,
        storage: Path,
        *,
        pending_s: float,
        running_s: float,
        download_timeout: float,
    ) -> None:
        self.storage = storage
        self.pending_s, self.running_s, self.download_timeout = (
            pending_s,
            running_s,
            download_timeout,
        )
        self.tasks: dict[str, EmulatedTask] = {}
        self.lock = threading.Lock()

    def submit(self, inputs: dict[str, str], parameters: dict[str, Any]) -> EmulatedTask:
        task = EmulatedTask(str(uuid.uuid4()), inputs, parameters)
        with self.lock:
            self.tasks[task.task_id] = task
        threading.Thread(target=self._run, args=(task,), daemon=True).start()
        return task

    def cancel(self, task_id: str) -> bool:
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.status != "PENDING":
                return False
            task.status, task.end_time, task.ended_at = "CANCELED", now(), time.time()
            return True

    def withdraw(self, task_id: str) -> None:
        """Forget a task whose id never reached its client; its thread stops at its next step."""
        with self.lock:
            task = self.tasks.pop(task_id, None)
            if task is not None:
                task.status = "CANCELED"

    def _set(self, task: EmulatedTask, **changes: Any) -> bool:
        """Apply changes unless the task was canceled meanwhile."""
        with self.lock:
            if task.status == "CANCELED":
                return False
            for name, value in changes.items():
                setattr(task, name, value)
            return True

    def _run(self, task: EmulatedTask) -> None:
        time.sleep(self.pending_s)
        if not self._set(task, status="RUNNING", scheduled_time=now()):
            return
        started = time.time()
        work = self.storage / "work" / task.task_id
        work.mkdir(parents=True, exist_ok=True)
        try:
            outcome = self._process(task, work)
        except Exception as error:  # the emulator must answer, whatever breaks inside
            outcome = ("InternalError", f"the emulator failed: {type(error).__name__}: {error}")
        time.sleep(max(0.0, self.running_s - (time.time() - started)))
        if isinstance(outcome, tuple):
            self._set(
                task,
                status="FAILED",
                code=outcome[0],
                message=outcome[1],
                end_time=now(),
                ended_at=time.time(),
            )
        else:
            self._set(task, status="SUCCEEDED", end_time=now(), ended_at=time.time(), **outcome)
        shutil.rmtree(work, ignore_errors=True)

    def _process(self, task: EmulatedTask, work: Path) -> dict[str, Any] | tuple[str, str]:
        files: dict[str, Path] = {}
        for role in ("video", "audio", "ref"):
            url = task.inputs.get(role)
            if not url:
                continue
            fetched = self._fetch(url, work / role)
            if isinstance(fetched, tuple):
                return fetched
            files[role] = fetched
        return self._judge_and_make(task, files, work)

    def _fetch(self, url: str, folder: Path) -> Path | tuple[str, str]:
        folder.mkdir(parents=True, exist_ok=True)
        if url.startswith(OSS_SCHEME):
            key = url[len(OSS_SCHEME) :]
            stored = (self.storage / "oss" / key).resolve()
            if not stored.is_file() or (self.storage / "oss").resolve() not in stored.parents:
                return "InvalidURL.ConnectionRefused", MESSAGES[
                    "InvalidURL.ConnectionRefused"
                ].format(url=url)
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
            return "InvalidURL.ConnectionRefused", MESSAGES["InvalidURL.ConnectionRefused"].format(
                url=url
            )
        return target

    def _judge_and_make(
        self, task: EmulatedTask, files: dict[str, Path], work: Path
    ) -> dict[str, Any] | tuple[str, str]:
        from retalk import limits
        from retalk.preflight.check import check_job

        extension = bool(task.parameters.get("video_extension"))
        report = check_job(
            video=files["video"],
            audio=files["audio"],
            ref=files.get("ref"),
            video_extension=extension,
            content="ref" in files,  # the service's content errors all need a reference
        )
        errors = [f for f in report.findings if f.severity is Severity.ERROR]
        if errors:
            code = errors[0].code if errors[0].code in MESSAGES else "InvalidFile.Openerror"
            role = next((i.role for i in report.inputs if i.path == errors[0].path), "video")
            limit = {"video": limits.VIDEO, "audio": limits.AUDIO}.get(role or "", limits.IMAGE)
            return code, MESSAGES[code].format(mb=limit.max_mb, url="", field="")
        job = report.job or {}
        output = float(job.get("output_duration") or 0)
        result = self.storage / "results" / task.task_id / "result.mp4"
        result.parent.mkdir(parents=True, exist_ok=True)
        _render(
            files["video"],
            files["audio"],
            output,
            int(job.get("video_passes") or 1),
            extension,
            result,
        )
        (video,) = [i for i in report.inputs if i.role == "video"]
        return {
            "result": result,
            "usage": {
                "video_duration": round(output, 2),
                "video_ratio": "standard",
                "size": f"{video.facts.get('width')}*{video.facts.get('height')}",
                "fps": video.facts.get("fps"),
            },
        }


_SEGMENT_S = 2
"""ffmpeg's `reverse` filter holds every frame it reverses: the video is reversed two seconds
at a time, so that a 120 s 1080p video needs 0.2 GB of memory, not 10."""
_ENCODE = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def _render(
    video: Path, audio: Path, seconds: float, passes: int, extension: bool, out: Path
) -> None:
    """The input video with the new audio: cut to `seconds`, or played forward, backward,
    forward … `passes` times when extended."""
    source = video
    if extension and passes > 1:
        source = _back_and_forth(video, passes, out.parent)
    _ffmpeg(
        "-i", str(source), "-i", str(audio), "-map", "0:v:0", "-map", "1:a:0",
        "-t", f"{seconds:.3f}", *_ENCODE, "-c:a", "aac", "-movflags", "+faststart", str(out),
    )  # fmt: skip


def _back_and_forth(video: Path, passes: int, folder: Path) -> Path:
    work = folder / "passes"
    work.mkdir(exist_ok=True)
    forward = work / "forward.mp4"
    key_every = f"expr:gte(t,n_forced*{_SEGMENT_S})"
    _ffmpeg(
        "-i", str(video), "-map", "0:v:0", *_ENCODE, "-force_key_frames", key_every, str(forward)
    )
    _ffmpeg(
        "-i", str(forward), "-c", "copy", "-f", "segment", "-segment_time", str(_SEGMENT_S),
        "-reset_timestamps", "1", str(work / "part%05d.mp4"),
    )  # fmt: skip
    parts = sorted(work.glob("part*.mp4"))
    for part in parts:
        _ffmpeg("-i", str(part), "-vf", "reverse", *_ENCODE, str(part.with_name("r" + part.name)))
    backward = work / "backward.mp4"
    _concat([p.with_name("r" + p.name) for p in reversed(parts)], backward)
    played = work / "played.mp4"
    _concat([forward if i % 2 == 0 else backward for i in range(passes)], played)
    return played


def _concat(pieces: list[Path], out: Path) -> None:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in pieces))
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out))


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_command(), "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True
    )
