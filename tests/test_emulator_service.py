"""The emulator as the service works: one worker and a queue, the states in order, the submit
quota, the 3-hour timeout, the 24-hour forgetting and link lifetime on its clock, the face
threshold, the lost-answer fault, the inspection endpoint, the header, a clean stop.

Inputs are served over http:// from the sample media (no upload involved), and every request is
plain httpx, so that what is tested is the emulator's wire."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from retalk import __version__, limits
from retalk.client.core import SUBMIT_PATH
from retalk.emulator import Clock, Emulator, Faults
from retalk.emulator.engine import match_distance
from retalk.emulator.listing import time_text
from retalk.emulator.quota import RateQuota

KEY = "sk-emulator-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
SUBMIT_HEADERS = {**AUTH, "X-DashScope-Async": "enable"}
HOUR = 3600.0


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def files(media: Path) -> Iterator[str]:
    """The sample media over http://, as a user's own web server would serve them."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(media)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _emulator(tmp_path: Path, **options: Any) -> Emulator:
    settings: dict[str, Any] = {"pending_s": 0.0, "running_s": 0.0, **options}
    return Emulator(api_key=KEY, storage=tmp_path / "emulator", **settings)


VIDEO = "2.1s.mp4"
"""A 2.1 s 640x640 clip: the quickest to render. The output is cut to it: 2.1 s billed."""
BILLED = 2.1


def _submit(
    em: Emulator, files: str, ref: str | None = None, video: str = VIDEO, **parameters: Any
) -> httpx.Response:
    given = {"video_url": f"{files}/{video}", "audio_url": f"{files}/speech.wav"}
    if ref:
        given["ref_image_url"] = f"{files}/{ref}"
    body = {"model": "videoretalk", "input": given, "parameters": parameters}
    return httpx.post(em.base_url + SUBMIT_PATH, json=body, headers=SUBMIT_HEADERS, timeout=10)


def _task_id(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["output"]["task_id"]
    assert isinstance(task_id, str)
    return task_id


def _query(em: Emulator, task_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{em.base_url}/tasks/{task_id}", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _wait(em: Emulator, task_id: str, seen: list[str] | None = None, limit: float = 60) -> Any:
    """Poll every 20 ms until the task ends; each status seen goes into `seen`, once."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        body = _query(em, task_id)
        status = body["output"]["task_status"]
        if seen is not None and (not seen or seen[-1] != status):
            seen.append(status)
        if status in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not end in {limit} s")


def _state(em: Emulator) -> dict[str, Any]:
    answer = httpx.get(em.origin + "/_emulator/state", timeout=10)  # no key
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    in_process = em.state()  # the same, in process (tasks may have moved on meanwhile)
    assert body.keys() == in_process.keys()
    assert [t["task_id"] for t in body["tasks"]] == [t["task_id"] for t in in_process["tasks"]]
    return body


def _entered(state: dict[str, Any], task_id: str, status: str) -> str:
    (task,) = [t for t in state["tasks"] if t["task_id"] == task_id]
    (moment,) = [when for name, when in task["history"] if name == status]
    assert isinstance(moment, str)
    return moment


# The queue.


def test_one_worker_queues_the_second_task_and_states_come_in_order(
    tmp_path: Path, files: str
) -> None:
    with _emulator(tmp_path, pending_s=0.3, running_s=0.4, processing_s=0.4) as em:
        first = _task_id(_submit(em, files))
        second = _task_id(_submit(em, files))
        seen: dict[str, list[str]] = {first: [], second: []}
        ended: set[str] = set()
        while len(ended) < 2:  # both polled side by side, every 20 ms
            now = {task_id: _query(em, task_id)["output"]["task_status"] for task_id in seen}
            if now[first] == "RUNNING":
                assert now[second] == "PENDING"  # queued behind it
            for task_id, status in now.items():
                if seen[task_id][-1:] != [status]:
                    seen[task_id].append(status)
                if status in ("SUCCEEDED", "FAILED"):
                    ended.add(task_id)
            time.sleep(0.02)
        order = ["PENDING", "PRE-PROCESSING", "RUNNING", "POST-PROCESSING", "SUCCEEDED"]
        assert seen == {first: order, second: order}  # each state seen, in order
        state = _state(em)
        for task in state["tasks"]:
            assert [name for name, _ in task["history"]] == order
        # The second began only once the first had ended.
        assert _entered(state, second, "PRE-PROCESSING") >= _entered(state, first, "SUCCEEDED")
        assert state["workers"] == 1 and state["worker_busy_s"] >= 2 * (0.4 + 0.8)
        assert state["seconds_billed"] == pytest.approx(2 * BILLED, abs=0.1)


def test_two_workers_run_two_tasks_at_once(tmp_path: Path, files: str) -> None:
    with _emulator(tmp_path, workers=2, running_s=1.0) as em:
        tasks = [_task_id(_submit(em, files)) for _ in range(2)]
        for task_id in tasks:
            _wait(em, task_id)
        state = _state(em)
    first, second = tasks
    assert _entered(state, second, "RUNNING") < _entered(state, first, "SUCCEEDED")


def test_a_pending_task_can_be_canceled_and_is_never_worked_on(tmp_path: Path, files: str) -> None:
    with _emulator(tmp_path, pending_s=30) as em:
        task_id = _task_id(_submit(em, files))
        canceled = httpx.post(f"{em.base_url}/tasks/{task_id}/cancel", headers=AUTH)
        assert canceled.status_code == 200
        assert _query(em, task_id)["output"]["task_status"] == "CANCELED"
        state = _state(em)
    assert [name for name, _ in state["tasks"][0]["history"]] == ["PENDING", "CANCELED"]
    assert state["worker_busy_s"] == 0


# The submit quota.


def test_submits_over_the_rate_are_refused_and_make_no_task(tmp_path: Path, files: str) -> None:
    with _emulator(tmp_path, submit_rate=1.0, pending_s=30) as em:
        first = _submit(em, files)
        over = _submit(em, files)
        assert first.status_code == 200
        assert over.status_code == 429 and over.json()["code"] == "Throttling.RateQuota"
        assert float(over.headers["Retry-After"]) >= 1
        state = _state(em)
        assert (state["submits_received"], state["submits_throttled"]) == (2, 1)
        assert state["tasks_created"] == len(state["tasks"]) == 1
        time.sleep(1.0)  # a second later, the quota has room again
        assert _submit(em, files).status_code == 200
    with _emulator(tmp_path / "off", submit_rate=0, pending_s=30) as em:
        assert {_submit(em, files).status_code for _ in range(5)} == {200}
        assert _state(em)["tasks_created"] == 5


def test_queries_over_the_rate_are_refused(tmp_path: Path) -> None:
    with _emulator(tmp_path, query_rate=0.2) as em:  # one query every 5 s
        codes = [httpx.get(f"{em.base_url}/tasks/x", headers=AUTH).status_code for _ in range(3)]
        listed = httpx.get(f"{em.base_url}/tasks", headers=AUTH)
        state = _state(em)
    assert codes == [200, 429, 429] and listed.status_code == 429
    assert listed.json()["code"] == "Throttling.RateQuota"
    assert (state["queries_received"], state["queries_throttled"]) == (4, 3)


def test_the_quota_allows_a_burst_of_its_rate() -> None:
    quota = RateQuota(100)
    assert [quota.take() for _ in range(101)] == [True] * 100 + [False]  # within microseconds
    assert 0 < quota.wait_s() <= 0.01
    assert all(RateQuota(0).take() for _ in range(1000))  # no quota


# The clock: timeout, forgetting, link and upload lifetimes.


def test_a_queued_task_times_out_three_hours_after_its_submit(tmp_path: Path, files: str) -> None:
    clock = Clock()
    with _emulator(tmp_path, pending_s=30, clock=clock) as em:
        task_id = _task_id(_submit(em, files))
        clock.advance(limits.TASK_TIMEOUT_S - 60)
        assert _query(em, task_id)["output"]["task_status"] == "PENDING"
        clock.advance(120)
        output = _query(em, task_id)["output"]
        state = _state(em)
    assert output["task_status"] == "FAILED" and output["code"] == "InternalError.Timeout"
    submitted = time.mktime(time.strptime(output["submit_time"][:19], "%Y-%m-%d %H:%M:%S"))
    ended = time.mktime(time.strptime(output["end_time"][:19], "%Y-%m-%d %H:%M:%S"))
    assert ended - submitted == pytest.approx(limits.TASK_TIMEOUT_S, abs=1)
    assert state["seconds_billed"] == 0 and state["worker_busy_s"] == 0  # never taken


def test_a_running_task_times_out_and_its_late_result_is_not_kept(
    tmp_path: Path, files: str
) -> None:
    clock = Clock()
    with _emulator(tmp_path, running_s=1.5, clock=clock) as em:
        task_id = _task_id(_submit(em, files))
        while _query(em, task_id)["output"]["task_status"] != "RUNNING":
            time.sleep(0.02)
        clock.advance(limits.TASK_TIMEOUT_S)
        assert _query(em, task_id)["output"]["code"] == "InternalError.Timeout"
        time.sleep(2.0)  # the worker has finished with it meanwhile
        output = _query(em, task_id)["output"]
        state = _state(em)
    assert output["task_status"] == "FAILED" and "video_url" not in output
    assert state["seconds_billed"] == 0 and state["worker_busy_s"] >= 1.5


def test_a_finished_task_is_forgotten_after_24_hours(tmp_path: Path, files: str) -> None:
    clock = Clock()
    with _emulator(tmp_path, clock=clock) as em:
        task_id = _task_id(_submit(em, files))
        _wait(em, task_id)
        clock.advance(limits.TASK_RETENTION_S - 60)
        assert _query(em, task_id)["output"]["task_status"] == "SUCCEEDED"
        assert httpx.get(f"{em.base_url}/tasks", headers=AUTH).json()["total"] == 1
        clock.advance(120)
        assert _query(em, task_id)["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
        listed = httpx.get(f"{em.base_url}/tasks", headers=AUTH).json()
        state = _state(em)
    assert listed["total"] == 0 and listed["tasks"] == []
    (task,) = state["tasks"]
    assert task["forgotten"] and task["video_duration"] == pytest.approx(BILLED, abs=0.05)
    assert state["seconds_billed"] == pytest.approx(BILLED, abs=0.05)  # billed all the same


def test_an_expired_result_link_answers_403_with_oss_xml(tmp_path: Path, files: str) -> None:
    clock = Clock()
    with _emulator(tmp_path, clock=clock, retention=2 * limits.TASK_RETENTION_S) as em:
        task_id = _task_id(_submit(em, files))
        url = _wait(em, task_id)["output"]["video_url"]
        expires = int(re.search(r"[?&]Expires=(\d+)", url).group(1))  # type: ignore[union-attr]
        assert expires == pytest.approx(clock.now() + limits.RESULT_URL_LIFETIME_S, abs=5)
        clock.advance(limits.RESULT_URL_LIFETIME_S - 60)
        fresh = httpx.get(url)
        assert fresh.status_code == 200 and fresh.content[4:8] == b"ftyp"
        clock.advance(120)
        late = httpx.get(url)
    assert late.status_code == 403 and late.headers["Content-Type"] == "application/xml"
    body = late.text
    assert "<Code>AccessDenied</Code><Message>Request has expired.</Message>" in body
    when = re.search(r"<Expires>([^<]+)</Expires><ServerTime>([^<]+)</ServerTime>", body)
    assert when is not None
    # The advance moved the task's end, and so its link's expiry, as far into the past.
    moved = expires - (limits.RESULT_URL_LIFETIME_S + 60)
    assert time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moved)) == when.group(1)[:19]
    assert when.group(2) > when.group(1) and when.group(2).endswith("Z")


def test_an_upload_is_gone_after_48_hours(tmp_path: Path, media: Path) -> None:
    from retalk.client import Client, Timing

    clock = Clock()
    with (
        _emulator(tmp_path, clock=clock) as em,
        Client(api_key=KEY, url=em.base_url, timing=Timing(poll_interval=0.05)) as client,
    ):
        video, audio = client.upload(media / VIDEO), client.upload(media / "speech.wav")
        body = {"model": "videoretalk", "input": {"video_url": video, "audio_url": audio}}
        headers = {**SUBMIT_HEADERS, "X-DashScope-OssResourceResolve": "enable"}

        def submit() -> str:
            return _task_id(httpx.post(em.base_url + SUBMIT_PATH, json=body, headers=headers))

        clock.advance(limits.UPLOAD_LIFETIME_S - 60)
        assert _wait(em, submit())["output"]["task_status"] == "SUCCEEDED"
        clock.advance(120)
        late = _wait(em, submit())["output"]
    assert (late["task_status"], late["code"]) == ("FAILED", "InvalidURL.ConnectionRefused")


# The reference face.


def test_the_face_threshold_maps_onto_the_identity_distance() -> None:
    assert match_distance(None) == match_distance(170) == limits.FACE_OTHER_PERSON
    assert match_distance(200) == pytest.approx(limits.FACE_SAME_PERSON)
    assert match_distance(150) == pytest.approx(0.7167, abs=1e-4)
    assert match_distance(120) == pytest.approx(0.8167, abs=1e-4)


def test_the_face_threshold_decides_a_match_on_both_sides(tmp_path: Path, files: str) -> None:
    # The astronaut's video and Grace Hopper's photo lie 0.678 apart.
    with _emulator(tmp_path) as em:
        loose = _task_id(
            _submit(em, files, ref="grace.jpg", video="face.mp4", query_face_threshold=150)
        )
        default = _task_id(_submit(em, files, ref="grace.jpg", video="face.mp4"))
        assert _wait(em, loose)["output"]["task_status"] == "SUCCEEDED"
        refused = _wait(em, default)["output"]
        state = _state(em)
    assert (refused["task_status"], refused["code"]) == ("FAILED", "InvalidFile.FaceNotMatch")
    assert state["verdicts_reused"] == 1  # the same files: judged once, decided twice
    shown = {t["task_id"]: t["parameters"] for t in state["tasks"]}
    assert shown[loose] == {"video_extension": False, "query_face_threshold": 150}
    assert shown[default] == {"video_extension": False}


def test_parameters_are_read_as_the_job_reads_them(tmp_path: Path, files: str) -> None:
    with _emulator(tmp_path, pending_s=30) as em:
        cases = [
            ({"query_face_threshold": 150}, None, "with input.ref_image_url"),
            ({"query_face_threshold": 201}, "grace.jpg", "120 ~ 200"),
            ({"query_face_threshold": True}, "grace.jpg", "120 ~ 200"),
            ({"video_extension": "yes"}, None, "video_extension must be a boolean"),
        ]
        for parameters, ref, said in cases:
            answer = _submit(em, files, ref=ref, **parameters)
            assert answer.status_code == 400, parameters
            assert answer.json()["code"] == "InvalidParameter" and said in answer.json()["message"]
        assert _state(em)["tasks_created"] == 0


# The lost answer.


def test_a_dropped_submit_answer_leaves_a_task_that_runs_and_bills(
    tmp_path: Path, files: str
) -> None:
    with _emulator(tmp_path, faults=Faults(drop_submit_answer_every=2)) as em:
        answered = _task_id(_submit(em, files))
        with pytest.raises(httpx.RemoteProtocolError):
            _submit(em, files)  # accepted, then the connection closed without an answer
        state = _state(em)
        assert (state["submits_received"], state["tasks_created"]) == (2, 2)
        assert state["answers_dropped"] == 1
        (lost,) = [t["task_id"] for t in state["tasks"] if t["task_id"] != answered]
        listed = httpx.get(f"{em.base_url}/tasks", headers=AUTH).json()
        assert {t["task_id"] for t in listed["tasks"]} == {answered, lost}  # it can be found
        assert _wait(em, lost)["output"]["task_status"] == "SUCCEEDED"
        _wait(em, answered)
        state = _state(em)
    assert state["seconds_billed"] == pytest.approx(2 * BILLED, abs=0.1)  # both billed


def test_the_inspection_counts_every_submit_and_needs_no_key(tmp_path: Path, files: str) -> None:
    with _emulator(tmp_path, pending_s=30) as em:
        unkeyed = httpx.post(em.base_url + SUBMIT_PATH, json={})
        malformed = httpx.post(em.base_url + SUBMIT_PATH, json=[], headers=SUBMIT_HEADERS)
        task_id = _task_id(_submit(em, files, ref="grace.jpg", query_face_threshold=130))
        state = _state(em)
        as_api = httpx.get(f"{em.base_url}/_emulator/state", headers=AUTH)  # not an API path
    assert (unkeyed.status_code, malformed.status_code) == (401, 400)
    assert (state["submits_received"], state["tasks_created"], state["workers"]) == (3, 1, 1)
    (task,) = state["tasks"]
    assert task["task_id"] == task_id and task["status"] == "PENDING"
    assert task["inputs"] == {
        "video": f"{files}/{VIDEO}",
        "audio": f"{files}/speech.wav",
        "ref": f"{files}/grace.jpg",
    }
    assert task["parameters"] == {"video_extension": False, "query_face_threshold": 130}
    assert task["video_duration"] is None and task["code"] is None and task["end_time"] is None
    assert state["seconds_billed"] == 0 and state["worker_busy_s"] == 0
    assert as_api.status_code == 404


# The list.


def test_the_list_filters_by_status_and_time_window(tmp_path: Path, files: str) -> None:
    clock = Clock()
    with _emulator(tmp_path, pending_s=30, clock=clock) as em:
        old = _task_id(_submit(em, files))
        # The service's times are China Standard Time's (UTC+8), whatever the host's zone.
        written = _query(em, old)["output"]["submit_time"]
        shown = dt.datetime.strptime(written, "%Y-%m-%d %H:%M:%S.%f")
        assert shown.replace(tzinfo=limits.SERVICE_TIMEZONE).timestamp() == pytest.approx(
            clock.now(), abs=5
        )
        clock.advance(2 * HOUR)
        new = [_task_id(_submit(em, files)) for _ in range(3)]
        httpx.post(f"{em.base_url}/tasks/{new[0]}/cancel", headers=AUTH)

        def listed(**query: Any) -> httpx.Response:
            return httpx.get(f"{em.base_url}/tasks", headers=AUTH, params=query)

        everything = listed().json()
        assert [t["task_id"] for t in everything["tasks"]] == [*reversed(new), old]  # newest first
        assert all(t["model_name"] == "videoretalk" for t in everything["tasks"])
        pending = listed(status="PENDING").json()
        assert [t["task_id"] for t in pending["tasks"]] == [new[2], new[1], old]
        now = time.time()  # the client's: what the emulator writes is on the wall clock
        window = {"start_time": time_text(now - HOUR), "end_time": time_text(now)}
        assert [t["task_id"] for t in listed(**window).json()["tasks"]] == [*reversed(new)]
        early = {"start_time": time_text(now - 3 * HOUR), "end_time": time_text(now - HOUR)}
        assert [t["task_id"] for t in listed(**early).json()["tasks"]] == [old]
        paged = listed(page_no=2, page_size=3).json()
        assert (paged["total"], [t["task_id"] for t in paged["tasks"]]) == (4, [old])
        assert listed(model_name="other").json()["total"] == 0
        refused = [
            {"start_time": time_text(now - 25 * HOUR), "end_time": time_text(now)},
            {"start_time": "2026-11-30", "end_time": time_text(now)},
            {"start_time": time_text(now), "end_time": time_text(now - HOUR)},
            {"status": "BOGUS"},
        ]
        for query in refused:
            answer = listed(**query)
            assert answer.status_code == 400, query
            assert answer.json()["code"] == "InvalidParameter"


# The header, and the stop.


def test_every_answer_carries_the_emulator_header(tmp_path: Path, files: str) -> None:
    with _emulator(tmp_path, result_lifetime=-1) as em:
        task_id = _task_id(_submit(em, files))
        url = _wait(em, task_id)["output"]["video_url"]
        answers = [
            httpx.get(f"{em.base_url}/tasks/{task_id}", headers=AUTH),  # 200
            httpx.get(f"{em.base_url}/tasks/x"),  # 401
            httpx.get(f"{em.origin}/nowhere"),  # 404
            httpx.get(url),  # 403, OSS's XML
            httpx.get(f"{em.base_url}/uploads?action=getPolicy", headers=AUTH),
            httpx.get(em.origin + "/_emulator/state"),
            httpx.post(em.origin + "/oss", content=b"x"),  # 400, OSS's XML
        ]
    assert [a.status_code for a in answers] == [200, 401, 404, 403, 200, 200, 400]
    assert {a.headers.get("X-Retalk-Emulator") for a in answers} == {__version__}


def test_kept_alive_queries_do_not_wait_on_nagle(tmp_path: Path) -> None:
    with _emulator(tmp_path) as em, httpx.Client(headers=AUTH) as http:
        took = []
        for _ in range(21):
            began = time.perf_counter()
            assert http.get(f"{em.base_url}/tasks/x").status_code == 200
            took.append(time.perf_counter() - began)
    # Head and body in two writes wait 40 ms for the client's delayed ACK under Nagle.
    assert sorted(took[1:])[10] < 0.03, took


def _serve(tmp_path: Path, *options: str) -> tuple[subprocess.Popen[str], str, Path]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    command = [str(Path(sys.executable).with_name("retalk")), "emulator", "--port", "0", *options]
    server = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert server.stderr is not None
    base = server.stderr.readline().strip().rsplit("=", 1)[-1]
    assert base.startswith("http://127.0.0.1:") and base.endswith("/api/v1"), base
    return server, base, scratch


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 0)])
def test_a_stopped_emulator_leaves_no_temporary_folder(
    tmp_path: Path, files: str, stop: signal.Signals, code: int
) -> None:
    server, base, scratch = _serve(tmp_path, "--running", "30", "--pending", "0")
    try:
        body = {
            "model": "videoretalk",
            "input": {"video_url": f"{files}/{VIDEO}", "audio_url": f"{files}/speech.wav"},
        }
        answer = httpx.post(base + SUBMIT_PATH, json=body, headers=SUBMIT_HEADERS)
        task_id = _task_id(answer)
        origin = base.removesuffix("/api/v1")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # held RUNNING, its work files in the folder
            tasks = httpx.get(origin + "/_emulator/state").json()["tasks"]
            if tasks[0]["status"] == "RUNNING":
                break
            time.sleep(0.05)
        assert tasks[0]["task_id"] == task_id and tasks[0]["status"] == "RUNNING"
        assert list(scratch.iterdir())  # the emulator's storage is there
    finally:
        server.send_signal(stop)
        _, said = server.communicate(timeout=30)
    assert server.returncode == code, said
    assert "Traceback" not in said
    assert list(scratch.iterdir()) == []


def test_stopping_twice_is_harmless(tmp_path: Path) -> None:
    em = Emulator(api_key=KEY).start()  # its own storage, removed when stopped
    assert em.storage.is_dir()
    em.stop()
    assert not em.storage.exists()
    stopper = threading.Thread(target=em.stop, daemon=True)  # a second shutdown waited forever
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive()


def test_a_port_in_use_is_one_line_and_leaves_no_folder(tmp_path: Path, run: Any) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with _emulator(tmp_path) as em:
        port = em.origin.rsplit(":", 1)[-1]
        taken = run("emulator", "--port", port, env={**os.environ, "TMPDIR": str(scratch)})
    assert taken.returncode == 3 and taken.stderr.startswith("retalk: cannot listen on ")
    assert len(taken.stderr.splitlines()) == 1 and list(scratch.iterdir()) == []


def test_the_command_line_time_scale_shortens_lives_and_submits_are_limited(
    tmp_path: Path,
) -> None:
    server, base, _ = _serve(
        tmp_path, "--time-scale", "3600", "--retention", "3600", "--submit-rate", "1",
        "--pending", "0", "--processing", "0", "--running", "0",
    )  # fmt: skip
    try:
        origin = base.removesuffix("/api/v1")
        state = httpx.get(origin + "/_emulator/state").json()
        assert state["clock"] == pytest.approx(time.time(), abs=2)  # the wall clock's time
        body = {"model": "videoretalk", "input": {"video_url": "http://127.0.0.1:9/v.mp4"}}
        codes = [
            httpx.post(base + SUBMIT_PATH, json=body, headers=SUBMIT_HEADERS).status_code
            for _ in range(2)
        ]
        assert codes == [400, 429]  # the quota counts every submit past the key check
        time.sleep(1.1)  # the quota's next token
        good = {**body, "input": {**body["input"], "audio_url": "http://127.0.0.1:9/a.wav"}}
        task_id = _task_id(httpx.post(base + SUBMIT_PATH, json=good, headers=SUBMIT_HEADERS))
        url = f"{base}/tasks/{task_id}"
        while (output := httpx.get(url, headers=AUTH).json()["output"])["task_status"] != "FAILED":
            time.sleep(0.05)
        submitted = dt.datetime.strptime(output["submit_time"], "%Y-%m-%d %H:%M:%S.%f")
        assert submitted.replace(tzinfo=limits.SERVICE_TIMEZONE).timestamp() == pytest.approx(
            time.time(), abs=5
        )  # true on the wall clock, not hours ahead
        time.sleep(1.2)  # an hour of retention lasts a second
        assert httpx.get(url, headers=AUTH).json()["output"]["task_status"] == "UNKNOWN"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
