"""The client against the emulator, a real HTTP server on loopback: round trips from local
files and from http:// inputs, every failure path the issue names, and the key kept secret."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from retalk.client import (
    ApiKey,
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidRequest,
    MissingApiKey,
    PermissionDenied,
    ResultExpired,
    TaskFailed,
    TaskStatus,
    Timing,
    WaitTimeout,
)
from retalk.client.core import Answer, Core, download_target
from retalk.emulator import Emulator, Faults
from retalk.job import Parameters
from retalk.units import size_text
from tests.support import drain, media_duration

KEY = "sk-retalk-SECRET-7f3a9c"
FAST = Timing(poll_interval=0.05, poll_cap=0.2, backoff=0.01, backoff_cap=0.05)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(api_key=KEY, pending_s=0.05, running_s=0.1, storage=tmp_path / "emulator") as em:
        yield em


@pytest.fixture
def client(emulator: Emulator) -> Iterator[Client]:
    with Client(api_key=KEY, url=emulator.base_url, timing=FAST) as c:
        yield c


@pytest.fixture
def file_server(media: Path) -> Iterator[str]:
    """The sample media over http://, as a user's own web server would serve them."""
    handler = partial(_QuietFiles, directory=str(media))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_round_trip_from_local_files(client: Client, media: Path, tmp_path: Path) -> None:
    video = client.upload(media / "face.mp4")
    audio = client.upload(media / "speech.wav")
    assert video.startswith("oss://") and audio.startswith("oss://")
    task = client.submit(video, audio)
    assert task.status is TaskStatus.PENDING and task.task_id
    seen: list[TaskStatus] = []
    done = client.wait(task.task_id, on_update=lambda t: seen.append(t.status))
    assert done.status is TaskStatus.SUCCEEDED
    assert TaskStatus.RUNNING in seen
    assert done.usage.video_duration == pytest.approx(3.0, abs=0.05)  # cut to the video
    assert done.usage.video_ratio == "standard" and done.end_time
    saved = client.download(done, tmp_path / "out.mp4")
    assert media_duration(saved) == pytest.approx(3.0, abs=0.1)


def test_video_extension_plays_the_video_back_and_forth(
    client: Client, media: Path, tmp_path: Path
) -> None:
    task = client.submit(
        client.upload(media / "face.mp4"),
        client.upload(media / "speech.wav"),
        parameters=Parameters(video_extension=True),
    )
    done = client.wait(task.task_id)
    assert done.usage.video_duration == pytest.approx(7.54, abs=0.05)  # the audio's length
    assert media_duration(client.download(done, tmp_path)) == pytest.approx(7.54, abs=0.15)


def test_round_trip_from_http_inputs(client: Client, file_server: str, tmp_path: Path) -> None:
    task = client.submit(f"{file_server}/face-9s.mp4", f"{file_server}/speech.mp3")
    done = client.wait(task.task_id)
    assert done.usage.video_duration == pytest.approx(7.6, abs=0.1)  # cut to the audio
    saved = client.download(done, tmp_path)
    assert saved.parent == tmp_path.resolve() and saved.suffix == ".mp4"


FAILURES = [
    ("fps12.mp4", "speech.wav", None, "InvalidFile.FPS"),
    ("480x360.mp4", "speech.wav", None, "InvalidFile.Resolution"),
    ("h264.mkv", "speech.wav", None, "InvalidFile.Format"),
    ("1.9s.mp4", "speech.wav", None, "InvalidFile.Duration"),
    ("cut-faststart.mp4", "speech.wav", None, "InvalidFile.Openerror"),
    ("face.mp4", "tone.m4a", None, "InvalidFile.Format"),
    ("face.mp4", "121s.aac", None, "InvalidFile.Duration"),
    ("face.mp4", "speech.wav", "two-people.png", "InvalidFile.Content"),
    ("face.mp4", "speech.wav", "5000x2000.jpg", "InvalidFile.ImageSize"),
    ("face.mp4", "speech.wav", "grace.jpg", "InvalidFile.FaceNotMatch"),
]


@pytest.mark.parametrize(("video", "audio", "ref", "code"), FAILURES)
def test_the_emulator_fails_tasks_with_the_service_codes(
    client: Client, media: Path, video: str, audio: str, ref: str | None, code: str
) -> None:
    urls = [client.upload(media / name) for name in (video, audio)]
    task = client.submit(*urls, ref_image_url=client.upload(media / ref) if ref else None)
    with pytest.raises(TaskFailed) as failed:
        client.wait(task.task_id)
    assert failed.value.code == code
    assert failed.value.task.message  # the service's sentence for it
    assert failed.value.face_mismatch == (code == "InvalidFile.FaceNotMatch")


def test_the_old_face_mismatch_spelling_reads_as_the_new(media: Path, tmp_path: Path) -> None:
    faults = Faults(old_spelling=True)  # the service as its original document spells the code
    with (
        Emulator(api_key=KEY, pending_s=0, running_s=0, faults=faults, storage=tmp_path) as em,
        Client(api_key=KEY, url=em.base_url, timing=FAST) as client,
    ):
        urls = [client.upload(media / name) for name in ("face.mp4", "speech.wav", "grace.jpg")]
        task = client.submit(*urls[:2], ref_image_url=urls[2])
        with pytest.raises(TaskFailed) as failed:
            client.wait(task.task_id)
        assert failed.value.code == "InvalidFile.FaceNotMatch"
        assert failed.value.service_code == "InvalidFile.FaceNotMach"
        assert failed.value.task.code == "InvalidFile.FaceNotMach"  # the answer, as it came
        assert failed.value.face_mismatch
        assert "InvalidFile.FaceNotMatch: " in str(failed.value)


def _answer(status: int, body: object) -> Answer:
    return Answer(status, httpx.Headers(), json.dumps(body).encode(), "query")


def test_an_error_answer_in_the_old_spelling_reads_as_the_new() -> None:
    core = Core(ApiKey(KEY), "http://127.0.0.1:9", FAST)
    answer = _answer(
        400, {"code": "InvalidFile.FaceNotMach", "message": "no match", "request_id": "r-1"}
    )
    with pytest.raises(InvalidRequest) as refused:
        core.read(answer)
    assert refused.value.code == "InvalidFile.FaceNotMatch"
    assert refused.value.service_code == "InvalidFile.FaceNotMach"
    assert refused.value.request_id == "r-1"
    current = _answer(400, {"code": "InvalidFile.FPS", "message": "m"})
    with pytest.raises(InvalidRequest) as plain:
        core.read(current)
    assert plain.value.code == plain.value.service_code == "InvalidFile.FPS"


def test_unreachable_inputs(media: Path, tmp_path: Path) -> None:
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen()  # accepts, never answers
    with (
        Emulator(
            api_key=KEY, pending_s=0, running_s=0, download_timeout=0.5, storage=tmp_path
        ) as em,
        Client(api_key=KEY, url=em.base_url, timing=FAST) as client,
    ):
        audio = client.upload(media / "speech.wav")
        refused = client.submit(f"http://127.0.0.1:{_free_port()}/v.mp4", audio)
        slow = client.submit(f"http://127.0.0.1:{hang.getsockname()[1]}/v.mp4", audio)
        for task, code in ((refused, "InvalidURL.ConnectionRefused"), (slow, "InvalidURL.Timeout")):
            with pytest.raises(TaskFailed) as failed:
                client.wait(task.task_id)
            assert failed.value.code == code
    hang.close()


def test_wait_timeout(media: Path, tmp_path: Path) -> None:
    with (
        Emulator(api_key=KEY, pending_s=30, storage=tmp_path) as em,
        Client(api_key=KEY, url=em.base_url, timing=FAST) as client,
    ):
        task = client.submit(client.upload(media / "face.mp4"), client.upload(media / "speech.wav"))
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as late:
            client.wait(task.task_id, timeout=0.5)
        assert time.monotonic() - started < 3
        assert late.value.task.status is TaskStatus.PENDING
        assert f"retalk wait {task.task_id}" in str(late.value)
        client.cancel(task.task_id)
        assert client.get(task.task_id).status is TaskStatus.CANCELED


def test_an_expired_result_link(media: Path, tmp_path: Path) -> None:
    """A link whose `Expires=` is past is refused before any request, with its time; the
    emulator's own 403 for it is `ResultExpired` too (tests/test_hostile_server.py: the XML)."""
    with (
        Emulator(api_key=KEY, pending_s=0, running_s=0, result_lifetime=1, storage=tmp_path) as em,
        Client(api_key=KEY, url=em.base_url, timing=FAST) as client,
    ):
        task = client.submit(client.upload(media / "face.mp4"), client.upload(media / "speech.wav"))
        done = client.wait(task.task_id)
        assert done.video_url is not None
        expires = int(done.video_url.split("Expires=")[1].split("&")[0])
        time.sleep(max(0.0, expires - time.time()) + 0.1)
        with pytest.raises(ResultExpired) as expired:
            client.download(done, tmp_path / "late.mp4")
        assert em.result_requests == []  # known from the link: nothing was asked
        assert expired.value.expired_at == datetime.fromtimestamp(expires, UTC)
        assert f"expired at {expired.value.expired_at:%Y-%m-%d %H:%M} UTC" in str(expired.value)
        assert not (tmp_path / "late.mp4").exists()
        assert not list(tmp_path.glob(".late.mp4.part*"))
        # The link as the storage sees it: 403 AccessDenied, "Request has expired."
        answer = httpx.get(done.video_url)
        assert answer.status_code == 403 and b"Request has expired" in answer.content


def test_a_wrong_key_is_refused(emulator: Emulator) -> None:
    with (
        Client(api_key="sk-wrong", url=emulator.base_url, timing=FAST) as client,
        pytest.raises(AuthenticationError) as refused,
    ):
        client.get("x")
    assert refused.value.status == 401 and refused.value.code == "InvalidApiKey"


def test_no_key_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(tmp_path / "none"))
    with pytest.raises(MissingApiKey):
        Client()
    (tmp_path / "key").write_text(KEY + "\n")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(tmp_path / "key"))
    with Client(url="http://127.0.0.1:9") as client:
        assert KEY not in repr(client) and KEY not in repr(client._core.api_key)


def test_the_service_headers_are_enforced(emulator: Emulator, media: Path, client: Client) -> None:
    oss = client.upload(media / "face.mp4")
    body = {"model": "videoretalk", "input": {"video_url": oss, "audio_url": oss}}
    auth = {"Authorization": f"Bearer {KEY}"}
    url = emulator.base_url + "/services/aigc/image2video/video-synthesis/"
    sync = httpx.post(url, json=body, headers=auth)
    assert (sync.status_code, sync.json()["code"]) == (403, "AccessDenied")
    no_resolve = httpx.post(url, json=body, headers={**auth, "X-DashScope-Async": "enable"})
    assert (no_resolve.status_code, no_resolve.json()["code"]) == (400, "InvalidParameter")
    missing = httpx.post(
        url,
        json={"model": "videoretalk", "input": {}},
        headers={**auth, "X-DashScope-Async": "enable"},
    )
    assert missing.json()["message"] == "Field required: input.video_url"


def test_upload_policy_expiry_and_size(media: Path, tmp_path: Path) -> None:
    with (
        Emulator(api_key=KEY, policy_lifetime=-1, storage=tmp_path) as em,
        Client(api_key=KEY, url=em.base_url, timing=FAST) as client,
        pytest.raises(PermissionDenied) as expired,
    ):
        client.upload(media / "face.mp4")
    assert "Policy expired" in str(expired.value)
    with (
        Emulator(api_key=KEY, max_upload_mb=1, storage=tmp_path / "b") as em,
        Client(api_key=KEY, url=em.base_url, timing=FAST) as client,
        pytest.raises(InvalidRequest) as large,
    ):
        client.upload(media / "face.mp4")  # 1.1 MB: refused before sending a byte
    assert large.value.code == "InvalidFile.Size"


def test_list_answers_as_the_platform(client: Client, media: Path) -> None:
    audio = client.upload(media / "speech.wav")
    for _ in range(3):
        client.submit(client.upload(media / "face.mp4"), audio)
    page = client.list(page_no=1, page_size=2)
    assert (page.page_no, page.page_size, page.total, len(page.tasks)) == (1, 2, 3, 2)


def test_async_client_round_trip(emulator: Emulator, media: Path, tmp_path: Path) -> None:
    async def run() -> float | None:
        async with AsyncClient(api_key=KEY, url=emulator.base_url, timing=FAST) as client:
            video, audio = await asyncio.gather(
                client.upload(media / "face.mp4"), client.upload(media / "speech.wav")
            )
            task = await client.submit(video, audio)
            done = await client.wait(task.task_id)
            saved = await client.download(done, tmp_path / "async.mp4")
            assert saved.stat().st_size > 0
            return done.usage.video_duration

    assert asyncio.run(run()) == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(
    "url",
    ["http://x/../../etc/passwd", "http://x/a%2F..%2F..%2Fevil.mp4", "http://x/", "http://x/.."],
)
def test_downloads_stay_in_the_folder(tmp_path: Path, url: str) -> None:
    target = download_target(tmp_path, url, "task-1")
    assert target.parent == tmp_path.resolve()


# The command line, against the same emulator.


@pytest.fixture
def env(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DASHSCOPE_API_KEY": KEY,
        "DASHSCOPE_HTTP_BASE_URL": emulator.base_url,
        "RETALK_POLL_INTERVAL": "0.05",
        "RETALK_RETRY_BACKOFF": "0.01",
        "HOME": str(tmp_path),
    }


def test_cli_submit_wait_round_trip(
    run, env, media: Path, tmp_path: Path, emulator: Emulator
) -> None:
    out = tmp_path / "result.mp4"
    result = run(
        "submit", "--video", str(media / "face.mp4"), "--audio", str(media / "speech.wav"),
        "--video-extension", "--wait", "-o", str(out), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, last = result.stdout.splitlines()
    assert first.startswith("task ") and first.endswith("submitted (PENDING)")
    assert last.endswith(f"SUCCEEDED, 7.54 s billed; saved {out}")
    assert media_duration(out) == pytest.approx(7.54, abs=0.15)
    assert result.stderr == ""  # no progress when stderr is not a terminal
    _no_key(result)


def test_cli_preflight_errors_upload_nothing(run, env, media: Path, emulator: Emulator) -> None:
    args = (
        "submit",
        "--no-content",
        "--video",
        str(media / "fps12.mp4"),
        "--audio",
        str(media / "speech.wav"),
    )
    result = run(*args, env=env)
    assert result.returncode == 1
    assert "InvalidFile.FPS: 12 fps" in result.stderr
    assert "nothing was uploaded" in result.stderr
    assert not (emulator.storage / "oss").exists() and emulator.engine.tasks == {}
    forced = run(*args, "--force", "--wait", env=env)
    assert forced.returncode == 1  # the service fails it the same way
    assert "InvalidFile.FPS" in forced.stderr
    _no_key(result, forced)


def test_cli_task_commands(run, env, media: Path, tmp_path: Path) -> None:
    submitted = run(
        "submit",
        "--no-content",
        "--format",
        "json",
        "--video",
        str(media / "face.mp4"),
        "--audio",
        str(media / "speech.wav"),
        env=env,
    )
    assert submitted.returncode == 0, submitted.stderr
    task_id = json.loads(submitted.stdout)["task_id"]
    waited = run("wait", task_id, "--format", "json", env=env)
    assert json.loads(waited.stdout)["task_status"] == "SUCCEEDED"
    status = run("status", task_id, env=env)
    assert status.stdout.startswith(f"task {task_id}: SUCCEEDED, 3.00 s billed, submitted ")
    assert " UTC; result at http://" in status.stdout
    fetched = run("download", task_id, str(tmp_path), env=env)
    assert fetched.returncode == 0 and (tmp_path / f"{task_id}.mp4").exists()
    listed = run("tasks", "--format", "json", env=env)
    assert json.loads(listed.stdout)["total"] == 1
    again = run("cancel", task_id, env=env)
    assert again.returncode == 1 and "UnsupportedOperation" in again.stderr
    unknown = run("wait", "no-such-task", env=env)
    assert unknown.returncode == 1 and "UNKNOWN" in unknown.stdout
    _no_key(submitted, waited, status, fetched, listed, again, unknown)


def test_cli_environment_failures_exit_3(run, env, media: Path, tmp_path: Path) -> None:
    wrong = run("status", "x", env={**env, "DASHSCOPE_API_KEY": "sk-wrong"})
    assert wrong.returncode == 3 and "InvalidApiKey" in wrong.stderr
    nokey = {k: v for k, v in env.items() if k != "DASHSCOPE_API_KEY"}
    missing = run("status", "x", env=nokey)
    assert missing.returncode == 3 and "no API key" in missing.stderr
    down = run(
        "status",
        "x",
        env={**env, "DASHSCOPE_HTTP_BASE_URL": f"http://127.0.0.1:{_free_port()}/api/v1"},
    )
    assert down.returncode == 3 and "could not connect" in down.stderr
    for result in (wrong, missing, down):
        assert "Traceback" not in result.stderr
    _no_key(wrong, missing, down)


def test_cli_emulator_serves() -> None:
    command = [str(Path(sys.executable).with_name("retalk")), "emulator", "--port", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        base = line.strip().rsplit("=", 1)[-1]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/api/v1")
        answer = httpx.get(f"{base}/tasks/nothing", headers={"Authorization": "Bearer sk-any"})
        assert answer.json()["output"]["task_status"] == "UNKNOWN"
    finally:
        server.send_signal(signal.SIGINT)
        # Read what it still says while it stops: a full pipe would hold it up.
        _, said = server.communicate(timeout=30)
        assert server.returncode == 0, said


def _no_key(*results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert KEY not in result.stdout + result.stderr


def test_cli_shows_progress_on_a_terminal(env, media: Path, tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    command = [
        str(Path(sys.executable).with_name("retalk")), "submit", "--no-content", "--wait",
        "--video", str(media / "face.mp4"), "--audio", str(media / "speech.wav"),
        "-o", str(tmp_path / "out.mp4"),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, stderr=follower, stdout=subprocess.PIPE, text=True, timeout=120
    )
    os.close(follower)
    text = drain(leader)
    assert done.returncode == 0
    assert "uploading face.mp4:" in text and "uploading speech.wav:" in text
    # In the unit of the limits and of `retalk check` (a MB is 2**20 bytes).
    whole = size_text((media / "face.mp4").stat().st_size)
    assert f"uploading face.mp4: {whole} of {whole} (100%)" in text
    assert ": RUNNING (" in text or ": PENDING (" in text
    assert "downloading:" in text
    assert KEY not in text


def test_retries_honour_retry_after_and_spare_submits(tmp_path: Path) -> None:
    from retalk.client.retry import RETRY_EXTENSION, RetryTransport

    faults = Faults(throttle_every=1, retry_after=0.3)
    slept: list[float] = []
    transport = RetryTransport(
        httpx.HTTPTransport(), retries=3, backoff=0.01, cap=0.05, sleep=slept.append
    )
    auth = {"Authorization": f"Bearer {KEY}"}
    with (
        Emulator(api_key=KEY, faults=faults, storage=tmp_path) as em,
        httpx.Client(transport=transport) as http,
    ):
        read = http.get(f"{em.base_url}/tasks/x", headers=auth)
        assert (read.status_code, slept) == (429, [0.3, 0.3, 0.3])  # gave up after 3 retries
        slept.clear()
        post = http.post(f"{em.base_url}/tasks/x/cancel", headers=auth)
        assert (post.status_code, slept) == (429, [])  # a POST is sent once
        marked = http.post(
            f"{em.base_url}/tasks/x/cancel", headers=auth, extensions={RETRY_EXTENSION: True}
        )
        assert (marked.status_code, len(slept)) == (429, 3)  # unless marked safe, as uploads are


def test_cli_bad_input_never_tracebacks(run, env, media: Path, tmp_path: Path) -> None:
    gone, speech, face = (
        str(tmp_path / "gone.mp4"),
        str(media / "speech.wav"),
        str(media / "face.mp4"),
    )
    refused = f"http://127.0.0.1:{_free_port()}/a.wav"
    job = ("submit", "--video", "a.mp4", "--audio", "b.wav")
    cases = [
        (("status", ""), 2, "a task id is needed"),
        (("submit", "--no-content", "--video", gone, "--audio", speech), 1, "File.Unreadable"),
        (("submit", "--video", face, "--audio", refused), 1, "InvalidURL.ConnectionRefused"),
        (("submit", "--video", "http://[::1/v.mp4", "--audio", speech), 1, "not a URL"),
        ((*job, "--query-face-threshold", "150"), 2, "goes with --ref"),
        ((*job, "--ref", "c.png", "--query-face-threshold", "300"), 2, "120<=x<=200"),
        (("download", "no-such-task", str(tmp_path)), 1, "has no result"),
    ]
    for args, code, said in cases:
        result = run(*args, env=env)
        assert result.returncode == code, (args, result.stderr)
        assert said in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
