"""`retalk batch` against the emulator over loopback: killed with SIGKILL at several points and
run again until done (every job done once, no duplicate task, every result verified), the
quotas (a throttled submit, one worker and max-in-flight), an expired link, the 3-hour timeout,
the ledger opened by two processes, `batch status`, and manifests that are wrong."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from retalk.emulator import Emulator
from retalk.jobs.ledger import Ledger
from tests.support import drain, media_duration, service_env

KEY = "sk-retalk-batch-93d1"
RETALK = str(Path(sys.executable).with_name("retalk"))
CLIP_S = 2.2


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shortest job the service takes: 2.2 s of 640x640 at 15 fps, and 2.2 s of tone."""
    folder = tmp_path_factory.mktemp("clip")
    video, audio = folder / "talk.mp4", folder / "talk.wav"
    ffmpeg = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    subprocess.run(
        [*ffmpeg, "-i", "testsrc=size=640x640:rate=15", "-t", str(CLIP_S), "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(video)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*ffmpeg, "-i", "sine=frequency=300:sample_rate=16000", "-t", str(CLIP_S), str(audio)],
        check=True,
    )
    return video, audio


def _manifest(folder: Path, clip: tuple[Path, Path], count: int, named: bool = False) -> Path:
    """A CSV manifest of `count` jobs of the clip, by relative path; every other one named."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in clip:
        target = folder / source.name
        if not target.exists():
            target.write_bytes(source.read_bytes())
    rows = ["video,audio,name"]
    rows += [f"talk.mp4,talk.wav,{f'job {n:02}' if named and n % 2 else ''}" for n in range(count)]
    manifest = folder / "jobs.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def _env(emulator: Emulator) -> dict[str, str]:
    return service_env(emulator.base_url, KEY)


def _batch(manifest: Path, *more: str) -> list[str]:
    out = manifest.parent / "out"
    return [RETALK, "batch", str(manifest), "--output-dir", str(out), "--no-content", *more]


def _kill_when(
    command: list[str], env: dict[str, str], ready: Callable[[], bool], limit: float = 60
) -> int | None:
    """Run `command`; SIGKILL it as soon as `ready()` (None: it ended first, its exit code)."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    began = time.monotonic()
    while process.poll() is None and time.monotonic() - began < limit:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return None
        time.sleep(0.002)
    return process.wait(timeout=limit)


def _states(ledger: Path) -> dict[str, str]:
    # Read-only: a ledger not made yet must stay unmade (an empty file is refused as one).
    try:
        with sqlite3.connect(f"{ledger.absolute().as_uri()}?mode=ro", uri=True, timeout=5) as db:
            return dict(db.execute("SELECT name, state FROM jobs").fetchall())
    except sqlite3.Error:
        return {}


def test_a_batch_killed_at_every_step_ends_with_each_job_done_once(
    clip: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 12, named=True)
    ledger = Path(f"{manifest}.ledger.sqlite")
    out = manifest.parent / "out"
    storage = tmp_path / "emulator"
    # Tasks that take a moment: the batch is still waiting when the third point comes, even
    # on a loaded machine (with instant tasks it could end first, and never be killed there).
    with Emulator(
        api_key=KEY, workers=2, pending_s=0.0, running_s=0.4, storage=storage
    ) as emulator:
        env = _env(emulator)
        command = _batch(manifest, "--max-in-flight", "4")

        def count(key: str) -> int:
            return int(emulator.state()[key])

        points: list[Callable[[], bool]] = [
            # after the first upload
            lambda: any(p.is_file() for p in (storage / "oss").rglob("*")),
            # right after a submit is sent (the answer recorded or not)
            lambda: count("submits_received") >= 3,
            # while waiting for a task
            lambda: (
                count("tasks_created") >= 6
                and any(t["status"] != "SUCCEEDED" for t in emulator.state()["tasks"])
            ),
            # mid-download
            lambda: len(emulator.result_requests) >= 8,
        ]
        killed = [_kill_when(command, env, ready) for ready in points]
        runs = 0
        while runs < 5:
            runs += 1
            ended = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            if ended.returncode == 0:
                break
        state = emulator.state()
    assert killed == [None] * 4, "every run was killed at its point"
    assert ended.returncode == 0, ended.stdout + ended.stderr
    assert set(_states(ledger).values()) == {"done"} and len(_states(ledger)) == 12
    assert state["tasks_created"] == 12 and len(state["tasks"]) == 12  # no duplicate task
    with sqlite3.connect(ledger) as db:
        ids = [row[0] for row in db.execute("SELECT task_id FROM jobs")]
        results = [Path(row[0]) for row in db.execute("SELECT result FROM jobs")]
    assert sorted(ids) == sorted(t["task_id"] for t in state["tasks"])  # each job its own task
    saved = sorted(p.name for p in out.iterdir() if p.name != "report.html")
    assert saved == sorted(p.name for p in results)
    for result in results:
        assert media_duration(result) == pytest.approx(CLIP_S, abs=0.1)
    assert "12 of 12 done; 26.40 s billed, 2.11 CNY at 0.08 CNY/s" in ended.stdout


def _unfinished_at_once(state: dict[str, object]) -> int:
    """The most tasks the emulator held unfinished (queued or running) at one time."""
    edges = []
    for task in state["tasks"]:  # type: ignore[attr-defined]
        history = [dt.datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f") for _, t in task["history"]]
        edges += [(history[0], 1), (history[-1], -1)]
    most = now = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        now += step
        most = max(most, now)
    return most


def test_throttled_submits_and_one_worker(clip: tuple[Path, Path], tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 4)
    with Emulator(
        api_key=KEY,
        workers=1,
        pending_s=0.0,
        running_s=2.0,  # longer than a submit's spacing: the next one queues
        submit_rate=0.7,  # slower than the 1 a second the batch paces to: some are refused
        storage=tmp_path / "emulator",
    ) as emulator:
        ended = subprocess.run(
            _batch(manifest, "--max-in-flight", "2"),
            env=_env(emulator),
            capture_output=True,
            text=True,
            timeout=120,
        )
        state = emulator.state()
    assert ended.returncode == 0, ended.stdout + ended.stderr
    assert ended.stderr == ""  # no progress when stderr is not a terminal
    assert state["submits_throttled"] >= 1  # the quota was met, and its 429 waited out
    assert (
        state["tasks_created"] == 4 and state["submits_received"] == 4 + state["submits_throttled"]
    )
    assert _unfinished_at_once(state) == 2  # max-in-flight: the queue stays short


def test_an_expired_link_is_no_result(clip: tuple[Path, Path], tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 1)
    ledger = Path(f"{manifest}.ledger.sqlite")
    with Emulator(
        api_key=KEY, pending_s=0.0, running_s=5.0, result_lifetime=60, storage=tmp_path / "emu"
    ) as emulator:
        env = _env(emulator)
        # Killed while its task runs; the task ends, and its link expires before the re-run.
        assert (
            _kill_when(_batch(manifest), env, lambda: _states(ledger) == {"talk": "submitted"})
            is None
        )
        while emulator.state()["tasks"][0]["status"] != "SUCCEEDED":
            time.sleep(0.05)
        emulator.clock.advance(120)
        ended = subprocess.run(_batch(manifest), env=env, capture_output=True, text=True)
        status = subprocess.run(
            [RETALK, "batch", "status", str(manifest), "--format", "json"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
    assert ended.returncode == 1, ended.stderr
    assert "expired" in ended.stdout
    assert (
        f"0 of 1 done; 1 expired: {CLIP_S:.2f} s billed but not fetched; {CLIP_S:.2f} s billed"
        in ended.stdout
    )
    (job,) = json.loads(status.stdout)["jobs"]
    assert job["state"] == "expired" and job["expired_at"] is not None
    assert not (manifest.parent / "out" / "talk.mp4").exists()
    assert [p.name for p in (manifest.parent / "out").iterdir()] == ["report.html"]


def test_the_three_hour_timeout_fails_the_job_with_its_code(
    clip: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 1)
    with Emulator(
        api_key=KEY, pending_s=0.0, running_s=30.0, task_timeout=0.5, storage=tmp_path / "emu"
    ) as emulator:
        ended = subprocess.run(
            _batch(manifest), env=_env(emulator), capture_output=True, text=True, timeout=60
        )
        status = subprocess.run(
            [RETALK, "batch", "status", str(manifest)],
            env=_env(emulator), capture_output=True, text=True,
        )  # fmt: skip
    assert ended.returncode == 1, ended.stderr
    assert "failed (InternalError.Timeout 1)" in ended.stdout
    assert status.returncode == 0 and "talk  failed     InternalError.Timeout: " in status.stdout


def test_a_second_batch_on_the_ledger_is_refused(clip: tuple[Path, Path], tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 2)
    ledger = Path(f"{manifest}.ledger.sqlite")
    # Tasks of 2.5 s: the first batch is still running while the second and `status` start
    # (two interpreters, slow on a loaded machine).
    with Emulator(api_key=KEY, pending_s=0.0, running_s=2.5, storage=tmp_path / "emu") as emulator:
        env = _env(emulator)
        first = subprocess.Popen(
            _batch(manifest), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        while "submitted" not in _states(ledger).values():
            assert first.poll() is None
            time.sleep(0.02)
        second = subprocess.run(_batch(manifest), env=env, capture_output=True, text=True)
        during = subprocess.run(
            [RETALK, "batch", "status", "--ledger", str(ledger)],
            env=env,
            capture_output=True,
            text=True,
        )
        _, err = first.communicate(timeout=60)
        created = emulator.state()["tasks_created"]
    assert second.returncode == 3 and second.stdout == ""
    assert second.stderr == (
        f"retalk: another batch is running on the ledger {ledger}: wait for it to end "
        "(`retalk batch status` shows where it is)\n"
    )
    assert during.returncode == 0 and "task " in during.stdout  # read while it ran
    assert first.returncode == 0, err
    assert created == 2
    with sqlite3.connect(ledger) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_batch_status_reads_the_ledger_only(clip: tuple[Path, Path], tmp_path: Path, run) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 2, named=True)
    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.0, storage=tmp_path / "emu") as em:
        done = run(*_batch(manifest)[1:], env=_env(em))
    assert done.returncode == 0, done.stderr
    # No key and no service: the ledger alone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE")}
    text = run("batch", "status", str(manifest), env=env)
    data = json.loads(run("batch", "status", str(manifest), "--format", "json", env=env).stdout)
    assert text.returncode == 0, text.stderr
    out = manifest.parent / "out"
    assert text.stdout.splitlines() == [
        f"talk    done       {out / 'talk.mp4'} (2.20 s billed)",
        f"job 01  done       {out / 'job_01.mp4'} (2.20 s billed)",
        "2 of 2 done; 4.40 s billed, 0.35 CNY at 0.08 CNY/s",
    ]
    assert data["states"] == {"done": 2} and data["billed_s"] == 4.4 and data["cost_cny"] == 0.35
    assert [j["name"] for j in data["jobs"]] == ["talk", "job 01"]
    missing = run("batch", "status", str(tmp_path / "none.csv"), env=env)
    assert missing.returncode == 2 and "no ledger at" in missing.stderr


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("a.csv", "video,audio,colour\nv.mp4,a.wav,red\n", "a.csv line 1, column 'colour': not a"),
        ("b.csv", "video\nv.mp4\n", "b.csv line 1: no 'audio' column"),
        ("c.csv", "video,audio,video_extension\nv.mp4,a.wav,true\nv.mp4,a.wav,maybe\n",
         "c.csv line 3, column video_extension: true or false, not \"maybe\""),
        ("d.csv", "video,audio\nv.mp4,\n", "d.csv line 2, column audio: empty: a job needs"),
        ("e.csv", "video,audio,name\nv.mp4,a.wav,x\nw.mp4,a.wav,x\n",
         "e.csv line 3, column name: 'x' is the name of line 2 too"),
        ("f.jsonl", '{"video": "v.mp4", "audio": "a.wav"}\n[1]\n', "f.jsonl line 2: not a JSON"),
        ("g.jsonl", '{"video": "v.mp4", "audio": "a.wav", "query_face_threshold": 150}\n',
         "g.jsonl line 1, column query_face_threshold: query_face_threshold goes with a ref"),
        ("h.csv", "video,audio,ref,query_face_threshold\nv.mp4,a.wav,r.png,300\n",
         "h.csv line 2, column query_face_threshold: query_face_threshold must be 120 to 200"),
        ("i.csv", "", "i.csv: no jobs in it"),
        ("j.csv", f"video,audio,name\nv.mp4,a.wav,{'n' * 101}\n",
         "j.csv line 2, column name: a name of 100 characters at most"),
    ],
)  # fmt: skip
def test_a_wrong_manifest_is_one_line_and_exit_2(
    run, tmp_path: Path, name: str, text: str, said: str
) -> None:
    (tmp_path / name).write_text(text)
    result = run("batch", str(tmp_path / name), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("retalk: ") and said in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_job_changed_under_its_name_is_refused(
    run, clip: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 1)
    env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "RETALK_RETRY_BACKOFF": "0.01"}
    env["DASHSCOPE_HTTP_BASE_URL"] = "http://127.0.0.1:9/api/v1"  # nothing listens there
    first = run(*_batch(manifest)[1:], env=env)
    assert first.returncode == 3 and "could not connect" in first.stderr  # the jobs recorded
    manifest.write_text("video,audio,video_extension\ntalk.mp4,talk.wav,true\n")
    changed = run(*_batch(manifest)[1:], env=env)
    assert changed.returncode == 2
    assert changed.stderr == (
        f"retalk: the ledger {manifest}.ledger.sqlite holds a job 'talk' of other inputs or "
        "parameters than the manifest's: name the job anew, or use another --ledger\n"
    )


def test_progress_on_a_terminal_only(clip: tuple[Path, Path], tmp_path: Path) -> None:
    import pty

    manifest = _manifest(tmp_path / "batch", clip, 2)
    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.3, storage=tmp_path / "emu") as em:
        leader, follower = pty.openpty()
        done = subprocess.run(
            _batch(manifest),
            env=_env(em),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
        )
        os.close(follower)
        text = drain(leader)
    assert done.returncode == 0, text
    assert "\r\x1b[Kbatch: 0/2 done; talk: " in text and "batch: 1/2 done; " in text
    assert text.endswith("\r\x1b[K")  # cleared before the table
    assert "\x1b" not in done.stdout and done.stdout.endswith(
        "2 of 2 done; 4.40 s billed, 0.35 CNY at 0.08 CNY/s\n"
    )


def test_sigterm_ends_a_batch_with_143_and_its_state_kept(
    clip: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 1)
    ledger = Path(f"{manifest}.ledger.sqlite")
    with Emulator(api_key=KEY, pending_s=0.0, running_s=30.0, storage=tmp_path / "emu") as em:
        process = subprocess.Popen(
            _batch(manifest),
            env=_env(em),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while _states(ledger) != {"talk": "submitted"}:
            assert process.poll() is None
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        status = subprocess.run(
            [RETALK, "batch", "status", str(manifest)], capture_output=True, text=True
        )
    assert process.returncode == 143, err
    assert "Traceback" not in err and out == ""
    assert status.stdout.startswith("talk  submitted  task ")  # resumed by the same command
    with sqlite3.connect(ledger) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_progress_line_fits_the_terminal(clip: tuple[Path, Path], tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    folder = tmp_path / "batch"
    _manifest(folder, clip, 1)
    long_name = "a job name of forty-eight characters or so and more"
    (folder / "jobs.csv").write_text(f"video,audio,name\ntalk.mp4,talk.wav,{long_name}\n")
    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.3, storage=tmp_path / "emu") as em:
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        done = subprocess.run(
            _batch(folder / "jobs.csv"),
            env=_env(em),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
        )
        os.close(follower)
        text = drain(leader)
    assert done.returncode == 0, text
    shown = [s for s in text.replace("\r\n", "\n").split("\r\x1b[K") if s]
    assert shown and all(len(s) < 80 for s in shown), [s for s in shown if len(s) >= 80]
    assert shown[0] == "batch: 0/1 done; checking the key and the address"


def test_batch_status_says_when_a_task_was_last_seen(tmp_path: Path, run) -> None:
    from retalk.job import Job

    path = tmp_path / "jobs.csv.ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.add("talk", "k", Job("v.mp4", "a.wav", name="talk"), str(tmp_path / "talk.mp4"))
        ledger.intend("talk")
        record = ledger.submitted("talk", "task-1")
    seen = time.strftime("%H:%M UTC", time.gmtime(record.updated_at))
    text = run("batch", "status", "--ledger", str(path))
    assert text.returncode == 0, text.stderr
    assert f"task task-1 (PENDING as last seen at {seen})" in text.stdout


def test_a_file_used_by_several_jobs_is_uploaded_once(
    clip: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 3)
    storage = tmp_path / "emu"
    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.0, storage=storage) as emulator:
        done = subprocess.run(_batch(manifest), env=_env(emulator), capture_output=True, text=True)
        made = emulator.state()["tasks_created"]
    assert done.returncode == 0, done.stderr
    assert made == 3
    assert len([p for p in (storage / "oss").rglob("*") if p.is_file()]) == 2  # video, audio
    with sqlite3.connect(f"{manifest}.ledger.sqlite") as db:
        urls = {row[0] for row in db.execute("SELECT urls FROM jobs")}
    assert len(urls) == 1


def _hold(ledger: Path) -> Ledger:
    """The ledger made and locked by this process, as a batch running on it would hold it."""
    from retalk.jobs.registry import Registry

    held = Ledger(ledger, Registry(ledger.with_name("tasks.sqlite")))
    held.lock()
    return held


@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_a_linked_ledger_is_refused_while_a_batch_holds_it(
    run, clip: tuple[Path, Path], tmp_path: Path, link: Callable[[Path, Path], None]
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 1)
    ledger = Path(f"{manifest}.ledger.sqlite")
    held = _hold(ledger)
    other = tmp_path / "other.sqlite"
    link(ledger, other)
    second = run(*_batch(manifest)[1:], "--ledger", str(other))
    assert second.returncode == 3 and second.stdout == "", second.stderr
    assert second.stderr == (
        f"retalk: another batch is running on the ledger {other}: wait for it to end "
        "(`retalk batch status` shows where it is)\n"
    )
    held.close()


def test_an_inconsistent_ledger_is_repaired_or_its_job_failed_in_seconds(
    clip: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 2, named=True)
    ledger = Path(f"{manifest}.ledger.sqlite")
    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.0, storage=tmp_path / "emu") as emulator:
        env = _env(emulator)
        first = subprocess.run(_batch(manifest), env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        # As two batches on one ledger left it: `checked` with a task id (the task made),
        # `checked` with its uploads and no task (its submit not made).
        with sqlite3.connect(ledger) as db:
            db.execute("UPDATE jobs SET state = 'checked', result = NULL WHERE name = 'talk'")
            db.execute("UPDATE jobs SET state = 'checked', task_id = NULL WHERE name = 'job 01'")
        again = subprocess.run(
            _batch(manifest), env=env, capture_output=True, text=True, timeout=30
        )
        created = emulator.state()["tasks_created"]
    assert again.returncode == 0, again.stderr
    assert _states(ledger) == {"talk": "done", "job 01": "done"}
    assert created == 3  # talk's task followed, not paid again; job 01 submitted once more
    assert "followed, not submitted again" in again.stderr


def test_a_long_job_name_or_task_id_makes_short_file_names() -> None:
    from retalk.jobs.batch import MAX_STEM_BYTES, _file_stem
    from retalk.jobs.runner import _safe

    long = _file_stem("n" * 230)
    assert len(long.encode()) <= MAX_STEM_BYTES and long != _file_stem("n" * 231)
    cjk = _file_stem("会議の録画" * 30)
    assert len(cjk.encode()) <= MAX_STEM_BYTES and cjk.startswith("会議の録画")
    assert _file_stem("会議 1/2") == "会議_1_2" and _file_stem("../..") == "file"
    assert len(_safe("t" * 200_000)) <= 64 and _safe("a-task-id") == "a-task-id"


def test_a_result_that_cannot_be_saved_leaves_its_job_and_the_batch_goes_on(
    clip: tuple[Path, Path], tmp_path: Path
) -> None:
    from retalk.jobs.manifest import read_manifest
    from retalk.jobs.registry import Registry

    manifest = _manifest(tmp_path / "batch", clip, 2, named=True)
    ledger = Path(f"{manifest}.ledger.sqlite")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    first = read_manifest(manifest)[0]
    with Ledger(ledger, Registry(tmp_path / "tasks.sqlite")) as opened:
        opened.add(first.name or "", "k", first, str(blocked / "talk.mp4"))
    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.0, storage=tmp_path / "emu") as emulator:
        done = subprocess.run(
            _batch(manifest), env=_env(emulator), capture_output=True, text=True, timeout=60
        )
        created = emulator.state()["tasks_created"]
    assert done.returncode == 1, done.stderr
    assert _states(ledger) == {"talk": "submitted", "job 01": "done"}
    assert created == 2
    assert "retalk: talk: download: cannot save the result: " in done.stderr
    assert "Traceback" not in done.stderr


def test_a_fifo_input_fails_its_job_and_ctrl_c_ends_a_batch(
    clip: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    manifest = _manifest(folder, clip, 2)
    os.mkfifo(folder / "ff.wav")
    manifest.write_text("video,audio,name\ntalk.mp4,ff.wav,fifo\ntalk.mp4,talk.wav,ok\n")
    ledger = Path(f"{manifest}.ledger.sqlite")
    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.0, storage=tmp_path / "emu") as emulator:
        env = _env(emulator)
        done = subprocess.run(_batch(manifest), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert _states(ledger) == {"fifo": "failed", "ok": "done"}
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT code FROM jobs WHERE name = 'fifo'").fetchone() == (
            "File.Unreadable",
        )
    assert "retalk: fifo: check: File.Unreadable: " in done.stderr, done.stderr
    # Ctrl-C while a task runs: 130.
    (folder / "ff.wav").unlink()
    manifest.write_text("video,audio,name\ntalk.mp4,talk.wav,slow\n")
    with Emulator(api_key=KEY, pending_s=0.0, running_s=30, storage=tmp_path / "emu2") as emulator:
        process = subprocess.Popen(
            _batch(manifest), env=_env(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        while _states(ledger).get("slow") != "submitted":
            assert process.poll() is None
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert b"Traceback" not in err


def test_a_ledger_in_no_folder_or_empty_is_refused(
    run, clip: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "batch", clip, 1)
    missing = tmp_path / "nonexist" / "dir" / "l.sqlite"
    typo = run(*_batch(manifest)[1:], "--ledger", str(missing))
    assert typo.returncode == 2 and not missing.parent.parent.exists(), typo.stderr
    assert typo.stderr == f"retalk: --ledger {missing}: no folder {missing.parent}\n"
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    refused = run(*_batch(manifest)[1:], "--ledger", str(empty))
    assert refused.returncode == 3 and empty.stat().st_size == 0, refused.stderr
    assert refused.stderr == (f"retalk: {empty} is empty: not a ledger; remove it to start over\n")


def test_batch_status_only_reads_and_needs_no_registry(tmp_path: Path, run) -> None:
    from retalk.job import Job
    from retalk.jobs.registry import Registry

    path = tmp_path / "jobs.csv.ledger.sqlite"
    with Ledger(path, Registry(tmp_path / "tasks.sqlite")) as ledger:
        ledger.add("talk", "k", Job("v.mp4", "a.wav", name="talk"), str(tmp_path / "talk.mp4"))

    def files() -> list[str]:  # SQLite's -wal and -shm aside: a reader of WAL may make them
        return sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm")))

    before = files(), path.stat().st_mtime_ns, path.read_bytes()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    env = {**os.environ, "RETALK_STATE_DIR": str(blocked / "state")}  # cannot be made
    shown = run("batch", "status", "--ledger", str(path), env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("talk  new")
    blocked.unlink()
    assert (files(), path.stat().st_mtime_ns, path.read_bytes()) == before


def test_a_job_the_preflight_refuses_fails_with_its_code_and_nothing_is_uploaded(
    run, media: Path, clip: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    manifest = _manifest(folder, clip, 1)
    (folder / "fps12.mp4").write_bytes((media / "fps12.mp4").read_bytes())
    manifest.write_text("video,audio,name\nfps12.mp4,talk.wav,\ntalk.mp4,talk.wav,ok\n")
    storage = tmp_path / "emu"

    def uploaded() -> int:
        return len([p for p in (storage / "oss").rglob("*") if p.is_file()])

    with Emulator(api_key=KEY, pending_s=0.0, running_s=0.0, storage=storage) as emulator:
        env = _env(emulator)
        ended = subprocess.run(_batch(manifest), env=env, capture_output=True, text=True)
        status = run("batch", "status", str(manifest), env=env)
        uploads = uploaded()
        # `retalk submit` of the same refused job: exit 1, the code, nothing sent.
        job = ("--video", str(folder / "fps12.mp4"), "--audio", str(folder / "talk.wav"))
        out = tmp_path / "r.mp4"
        single = run("submit", "--no-content", "--wait", "-o", str(out), *job, env=env)
        state = emulator.state()
    refused = "InvalidFile.FPS: 12 fps, the service takes 15 to 60"
    assert ended.returncode == 1, ended.stderr
    assert "1 of 2 done; 1 failed (InvalidFile.FPS 1)" in ended.stdout
    assert f"retalk: fps12: check: {refused}\n" in ended.stderr
    assert status.returncode == 0, status.stderr
    first = status.stdout.splitlines()[0].split(maxsplit=2)
    assert first == ["fps12", "failed", "InvalidFile.FPS: the preflight: 12 fps, the service "
                     "takes 15 to 60"]  # fmt: skip
    assert _states(Path(f"{manifest}.ledger.sqlite")) == {"fps12": "failed", "ok": "done"}
    assert uploads == 2 and state["tasks_created"] == 1  # the ok job's two files, its task
    assert single.returncode == 1 and not out.exists(), single.stderr
    assert f"fps12.mp4: {refused}\n" in single.stderr
    assert uploaded() == uploads and state["submits_received"] == 1
    assert "Traceback" not in ended.stderr + single.stderr and KEY not in single.stderr
