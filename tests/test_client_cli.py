"""The service commands' honest answers, against the emulator: results named by task and never
overwritten without --force, an expired link's own exit code and time, the real expiry in
`status`, `tasks` that refuses an unknown status and takes a time window, and a `wait` cut off
or interrupted that says the task goes on and how to pick it up, its progress line cleared
first. A wrong base URL is known at once, with what to set."""

from __future__ import annotations

import calendar
import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from retalk import limits
from retalk.client import Client, TaskFailed, Timing
from retalk.emulator import Emulator
from tests.support import drain, service_env

KEY = "sk-cli-SECRET-91c2"
FAST = Timing(poll_interval=0.05, poll_cap=0.2, backoff=0.01, backoff_cap=0.05)
RETALK = str(Path(sys.executable).with_name("retalk"))
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(api_key=KEY, pending_s=0, running_s=0, storage=tmp_path / "em") as em:
        yield em


def _env(emulator: Emulator, tmp_path: Path, **changes: str) -> dict[str, str]:
    return service_env(emulator.base_url, KEY, HOME=str(tmp_path), **changes)


def _task(emulator: Emulator, media: Path, wait: bool = True) -> str:
    with Client(api_key=KEY, url=emulator.base_url, timing=FAST) as client:
        task = client.submit(client.upload(media / "face.mp4"), client.upload(media / "speech.wav"))
        if wait:
            client.wait(task.task_id)
        return task.task_id


def _clean(*results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert "Traceback" not in result.stderr
        assert KEY not in result.stdout + result.stderr


def test_download_names_results_by_task_and_never_overwrites(
    run: Run, emulator: Emulator, media: Path, tmp_path: Path
) -> None:
    env = _env(emulator, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    first, second = _task(emulator, media), _task(emulator, media)
    got = [run("download", task_id, str(out), env=env) for task_id in (first, second)]
    assert [r.returncode for r in got] == [0, 0], got[1].stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{first}.mp4", f"{second}.mp4"])
    kept = (out / f"{first}.mp4").read_bytes()
    (out / f"{first}.mp4").write_bytes(b"mine")
    again = run("download", first, str(out), env=env)
    assert again.returncode == 1
    assert (
        again.stderr == f"retalk: {out / (first + '.mp4')} is already there: --force replaces it\n"
    )
    assert (out / f"{first}.mp4").read_bytes() == b"mine"  # untouched
    assert not list(out.glob(".*"))  # no part left behind either
    forced = run("download", first, str(out), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert (out / f"{first}.mp4").read_bytes() == kept
    _clean(*got, again, forced)


def test_wait_to_an_existing_file_is_refused_before_waiting(
    run: Run, emulator: Emulator, media: Path, tmp_path: Path
) -> None:
    task_id = _task(emulator, media)
    target = tmp_path / "taken.mp4"
    target.write_bytes(b"mine")
    refused = run("wait", task_id, "-o", str(target), env=_env(emulator, tmp_path))
    assert refused.returncode == 1 and "already there: --force replaces it" in refused.stderr
    assert emulator.result_requests == [] and target.read_bytes() == b"mine"


def test_an_expired_link_exits_4_and_status_says_when(
    run: Run, media: Path, tmp_path: Path
) -> None:
    with Emulator(
        api_key=KEY, pending_s=0, running_s=0, result_lifetime=2, storage=tmp_path / "em"
    ) as em:
        env = _env(em, tmp_path)
        task_id = _task(em, media)
        fresh = run("status", task_id, env=env)
        assert fresh.returncode == 0
        url = fresh.stdout.split("result at ")[1].split(" (")[0]
        expires = int(url.split("Expires=")[1].split("&")[0])
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(expires))
        assert fresh.stdout.rstrip().endswith(f"(until {stamp} UTC)")
        time.sleep(max(0.0, expires - time.time()) + 0.1)
        late = run("status", task_id, env=env)
        assert late.stdout.rstrip().endswith(f"(expired at {stamp} UTC)")
        assert "24 hours" not in late.stdout
        gone = run("download", task_id, str(tmp_path), env=env)
        assert gone.returncode == 4, gone.stderr
        assert gone.stderr == (
            f"retalk: the result link expired at {stamp} UTC: nothing was saved\n"
        )
        assert not (tmp_path / f"{task_id}.mp4").exists()
        _clean(fresh, late, gone)


def test_tasks_refuses_an_unknown_status_and_takes_a_window(
    run: Run, emulator: Emulator, tmp_path: Path
) -> None:
    env = _env(emulator, tmp_path)
    with Client(api_key=KEY, url=emulator.base_url, timing=FAST) as client:
        urls = ("http://127.0.0.1:9/v.mp4", "http://127.0.0.1:9/a.wav")  # quick to fail
        made = {client.submit(*urls).task_id for _ in range(3)}
    bogus = run("tasks", "--status", "BOGUS", env=env)
    assert bogus.returncode == 2
    assert "'BOGUS' is not a task status: PENDING, PRE-PROCESSING, RUNNING," in bogus.stderr
    # 12 h: the list's times are in the service's zone (UTC+8); the window holds now either way
    listed = run("tasks", "--since", "12h", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {t["task_id"] for t in json.loads(listed.stdout)["tasks"]} == made
    lower = run("tasks", "--status", "failed", "--until", "20991231000000", env=env)
    assert lower.returncode == 0, lower.stderr
    bad = run("tasks", "--since", "yesterday-ish", env=env)
    assert bad.returncode == 2 and "is not a time" in bad.stderr
    _clean(bogus, listed, lower, bad)


def test_a_new_folder_is_made_and_a_foreign_ending_refused(
    run: Run, emulator: Emulator, media: Path, tmp_path: Path
) -> None:
    env = _env(emulator, tmp_path)
    task_id = _task(emulator, media)
    slash = run("download", task_id, f"{tmp_path / 'new' / 'dir'}/", env=env)
    bare = run("download", task_id, str(tmp_path / "bare"), env=env)
    named = run("download", task_id, str(tmp_path / "named.MP4"), env=env)
    waited = run("wait", task_id, "-o", f"{tmp_path / 'waited'}/", env=env)
    assert [r.returncode for r in (slash, bare, named, waited)] == [0, 0, 0, 0], bare.stderr
    for folder in ("new/dir", "bare", "waited"):
        assert (tmp_path / folder).is_dir()
        assert [p.name for p in (tmp_path / folder).iterdir()] == [f"{task_id}.mp4"]
    assert (tmp_path / "named.MP4").is_file()
    odd = run("download", task_id, str(tmp_path / "out.mkv"), env=env)
    assert odd.returncode == 2 and not (tmp_path / "out.mkv").exists()
    assert odd.stderr == (
        f"retalk: {tmp_path / 'out.mkv'}: the result is an MP4 video: name it .mp4 (or .mov), "
        "or end a folder's name with /\n"
    )
    _clean(slash, bare, named, waited, odd)


def test_status_exits_1_for_a_task_without_a_result_or_unknown(
    run: Run, emulator: Emulator, media: Path, tmp_path: Path
) -> None:
    env = _env(emulator, tmp_path)
    with Client(api_key=KEY, url=emulator.base_url, timing=FAST) as client:
        urls = ("http://127.0.0.1:9/v.mp4", "http://127.0.0.1:9/a.wav")  # quick to fail
        failed = client.submit(*urls).task_id
        with pytest.raises(TaskFailed):
            client.wait(failed)
    good = run("status", _task(emulator, media), env=env)
    bad = run("status", failed, env=env)
    unknown = run("status", "nonexistent-id", env=env)
    as_json = run("status", "nonexistent-id", "--format", "json", env=env)
    assert (good.returncode, bad.returncode, unknown.returncode, as_json.returncode) == (0, 1, 1, 1)
    assert unknown.stdout == ""
    assert unknown.stderr == (
        "retalk: task nonexistent-id: UNKNOWN: no such task, or forgotten 24 hours after it ended\n"
    )
    assert json.loads(as_json.stdout)["task_status"] == "UNKNOWN"
    _clean(good, bad, unknown, as_json)


def _seconds(text: str) -> float:
    """A `YYYY-MM-DD hh:mm:ss` read as UTC, in epoch seconds."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def test_tasks_and_status_show_times_in_utc(
    run: Run, emulator: Emulator, media: Path, tmp_path: Path
) -> None:
    env = _env(emulator, tmp_path)
    task_id = _task(emulator, media)
    listed = run("tasks", env=env)
    assert listed.returncode == 0, listed.stderr
    header, row, *_ = listed.stdout.splitlines()
    assert header.split() == ["TASK", "STATUS", "SUBMITTED", "(UTC)"]
    assert row.split()[:2] == [task_id, "SUCCEEDED"]
    assert _seconds(" ".join(row.split()[2:])) == pytest.approx(time.time(), abs=60)
    shown = run("status", task_id, env=env)
    submitted = shown.stdout.split("submitted ")[1].split(" UTC")[0]
    assert _seconds(submitted) == pytest.approx(time.time(), abs=60)
    _clean(listed, shown)


def test_a_scaled_emulator_writes_times_true_on_the_wall_clock(
    run: Run, media: Path, tmp_path: Path
) -> None:
    with Emulator(
        api_key=KEY,
        pending_s=0,
        running_s=0,
        time_scale=3600,
        retention=2 * limits.TASK_RETENTION_S,  # the task is still known when its link dies
        storage=tmp_path / "em",
    ) as em:
        env = _env(em, tmp_path)
        time.sleep(1.0)  # a second: an hour, on the clock that ran faster
        task_id = _task(em, media)
        fresh = run("status", task_id, env=env)
        expires = int(fresh.stdout.split("Expires=")[1].split("&")[0])
        assert time.time() < expires <= time.time() + 24 + 5  # 24 hours a second each
        listed = run("tasks", "--since", "2h", "--format", "json", env=env)
        assert [t["task_id"] for t in json.loads(listed.stdout)["tasks"]] == [task_id]
        em.clock.advance(limits.RESULT_URL_LIFETIME_S)
        late = run("status", task_id, env=env)
        gone = run("download", task_id, str(tmp_path / "out"), env=env)
    assert late.returncode == 0 and "(expired at " in late.stdout, late.stdout
    assert gone.returncode == 4 and "the result link expired at" in gone.stderr, gone.stderr
    assert not (tmp_path / "out").exists()
    _clean(fresh, listed, late, gone)


def test_a_wrong_base_url_is_known_at_once_with_what_to_set(
    run: Run, emulator: Emulator, tmp_path: Path
) -> None:
    no_api = run(
        "status", "t-1", env=_env(emulator, tmp_path, DASHSCOPE_HTTP_BASE_URL=emulator.origin)
    )
    assert no_api.returncode == 3
    assert f"no such API at {emulator.origin}" in no_api.stderr
    assert "set DASHSCOPE_HTTP_BASE_URL=https://dashscope.aliyuncs.com/api/v1" in no_api.stderr
    started = time.monotonic()
    host = emulator.origin.removeprefix("http://")
    no_scheme = run(
        "status", "t-1", env=_env(emulator, tmp_path, DASHSCOPE_HTTP_BASE_URL=f"{host}/api/v1")
    )
    assert time.monotonic() - started < 5  # refused at once, not after seconds of retries
    assert no_scheme.returncode == 3
    assert "set DASHSCOPE_HTTP_BASE_URL=https://dashscope.aliyuncs.com/api/v1" in no_scheme.stderr
    _clean(no_api, no_scheme)


def _on_a_terminal(
    args: list[str], env: dict[str, str], stop: Callable[[subprocess.Popen[str]], None]
) -> tuple[int, str]:
    """Runs retalk with stderr on a pseudo-terminal (so that it shows its progress line);
    `stop` is called once the task's state is on screen. The exit code and what was shown."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [RETALK, *args], env=env, stderr=follower, stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(follower)
    stopped: list[bool] = []

    def watch(shown: bytes) -> None:
        if not stopped and b": PENDING (" in shown:
            stop(process)
            stopped.append(True)

    text = drain(leader, watch)
    return process.wait(timeout=30), text


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`retalk emulator` in its own process, whose tasks wait a minute: killed, it takes its
    connections with it (an in-process one keeps serving the connections it has)."""
    command = [RETALK, "emulator", "--port", "0", "--api-key", KEY, "--pending", "60"]
    server = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        text=True, env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert server.stderr is not None
    base = server.stderr.readline().strip().rsplit("=", 1)[-1]
    yield server, base
    server.kill()
    server.communicate(timeout=30)


@pytest.mark.parametrize("how", ["Ctrl-C", "lost connection"])
def test_a_wait_cut_short_says_the_task_goes_on_and_how_to_pick_it_up(
    media: Path,
    tmp_path: Path,
    how: str,
    emulator_process: tuple[subprocess.Popen[str], str],
) -> None:
    server, base = emulator_process

    def stop(process: subprocess.Popen[str]) -> None:
        if how == "Ctrl-C":
            process.send_signal(signal.SIGINT)
        else:
            server.kill()  # the service goes away: every next query is refused

    with Client(api_key=KEY, url=base, timing=FAST) as client:
        task_id = client.submit(
            client.upload(media / "face.mp4"), client.upload(media / "speech.wav")
        ).task_id
    target = tmp_path / "my results"
    target.mkdir()
    env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "DASHSCOPE_HTTP_BASE_URL": base,
           "RETALK_POLL_INTERVAL": "0.05", "RETALK_RETRY_BACKOFF": "0.01"}  # fmt: skip
    code, shown = _on_a_terminal(["wait", task_id, "-o", str(target)], env, stop)
    assert code == (130 if how == "Ctrl-C" else 3), shown
    before, said = shown.split("retalk: ", 1)
    assert f"task {task_id}: PENDING (" in before
    assert before.endswith("\r\x1b[K")  # the progress line was cleared first
    assert f"task {task_id} goes on at the service: retalk wait {task_id} -o '{target}'" in said
    if how == "lost connection":
        assert "could not connect to http://127.0.0.1:" in said
    assert KEY not in shown
