"""The job runner against the emulator over loopback: the whole path and its events, a lost
submit answer adopted, an uncertain one left alone, a kill between the POST and the recording
of the task id, a job never paid for twice, warnings before any upload, Ctrl-C during a wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retalk.client import Client, Timing
from retalk.emulator import Emulator, Faults
from retalk.job import Job
from retalk.jobs.batch import Batch
from retalk.jobs.events import Event, State, Step
from retalk.jobs.identity import job_key
from retalk.jobs.ledger import JobState, Ledger
from retalk.jobs.runner import Runner
from tests.support import media_duration, service_env

KEY = "sk-retalk-jobs-7c1e"
FAST = Timing(poll_interval=0.05, poll_cap=0.2, backoff=0.01, backoff_cap=0.05)
RETALK = str(Path(sys.executable).with_name("retalk"))


def _emulator(tmp_path: Path, faults: Faults | None = None, **timing: float) -> Emulator:
    settings = {"pending_s": 0.05, "running_s": 0.1, **timing}
    return Emulator(api_key=KEY, faults=faults, storage=tmp_path / "emulator", **settings)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "jobs.ledger.sqlite") as opened:
        yield opened


def _job(media: Path, name: str = "talk") -> Job:
    return Job(str(media / "good.mp4"), str(media / "good.wav"), name=name)


def _add(ledger: Ledger, job: Job, out: Path) -> object:
    assert job.name is not None
    return ledger.add(job.name, job_key(job), job, str(out / f"{job.name}.mp4"))


def test_the_whole_path_in_order(media: Path, tmp_path: Path, ledger: Ledger) -> None:
    events: list[Event] = []
    job = Job(str(media / "face.mp4"), str(media / "speech.wav"), name="talk")  # 3 s of 7.5 s
    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        runner = Runner(client, ledger, content=False, on_event=events.append)
        outcome = runner.run(_add(ledger, job, tmp_path))  # type: ignore[arg-type]
        state = emulator.state()
    record = outcome.record
    assert record.state is JobState.DONE, record
    steps = [(e.step, e.state) for e in events if e.state is not State.PROGRESS]
    assert steps == [
        (Step.ACCESS, State.STARTED), (Step.ACCESS, State.DONE),
        (Step.CHECK, State.STARTED),
        (Step.CHECK, State.WARNING),  # Job.Truncated: told before any upload
        (Step.CHECK, State.DONE),
        (Step.UPLOAD, State.STARTED), (Step.UPLOAD, State.DONE),
        (Step.UPLOAD, State.STARTED), (Step.UPLOAD, State.DONE),
        (Step.SUBMIT, State.STARTED), (Step.SUBMIT, State.DONE),
        (Step.WAIT, State.STARTED), (Step.WAIT, State.DONE),
        (Step.DOWNLOAD, State.STARTED), (Step.DOWNLOAD, State.DONE),
        (Step.VERIFY, State.DONE),
    ]  # fmt: skip
    assert "Job.Truncated" in next(e.detail for e in events if e.state is State.WARNING)
    assert any(e.step is Step.UPLOAD and e.done == e.total for e in events if e.total)
    assert state["tasks_created"] == 1 and record.task_id == state["tasks"][0]["task_id"]
    saved = Path(record.result or "")
    assert saved == tmp_path / "talk.mp4" and record.billed == pytest.approx(3, abs=0.05)
    assert media_duration(saved) == pytest.approx(record.billed, abs=0.1)
    assert [p.name for p in tmp_path.glob(".talk*")] == []  # no part left behind
    assert record.urls["video"].startswith("oss://") and record.upload_expires


def test_a_lost_answer_is_adopted(media: Path, tmp_path: Path, ledger: Ledger) -> None:
    events: list[Event] = []
    faults = Faults(drop_submit_answer_every=1)
    with (
        _emulator(tmp_path, faults) as emulator,
        Client(KEY, emulator.base_url, timing=FAST) as client,
    ):
        runner = Runner(client, ledger, content=False, on_event=events.append)
        record = runner.run(_add(ledger, _job(media), tmp_path)).record  # type: ignore[arg-type]
        state = emulator.state()
    assert state["answers_dropped"] == 1  # the mechanism was engaged: the answer was lost
    assert state["submits_received"] == 1 and state["tasks_created"] == 1  # and not sent again
    assert record.state is JobState.DONE and record.task_id == state["tasks"][0]["task_id"]
    adopted = [e for e in events if e.step is Step.ADOPT and e.state is State.DONE]
    assert [e.detail for e in adopted] == [record.task_id]
    assert [s[3:] for s in ledger.submits()] == [(record.task_id, "adopted")]
    assert media_duration(Path(record.result or "")) == pytest.approx(3, abs=0.1)


def test_two_unknown_tasks_leave_the_job_uncertain(
    media: Path, tmp_path: Path, ledger: Ledger
) -> None:
    faults = Faults(drop_submit_answer_every=2)  # the second task made: the runner's
    with (
        _emulator(tmp_path, faults) as emulator,
        Client(KEY, emulator.base_url, timing=FAST) as client,
    ):
        # Someone else's task, in the same minutes: the ledger does not know it.
        other = client.submit(client.upload(media / "good.mp4"), client.upload(media / "good.wav"))
        runner = Runner(client, ledger, content=False)
        record = runner.run(_add(ledger, _job(media), tmp_path)).record  # type: ignore[arg-type]
        again = runner.run(record).record  # a re-run does not submit it either
        state = emulator.state()
    assert state["answers_dropped"] == 1
    assert state["submits_received"] == 2 and state["tasks_created"] == 2  # no third
    assert record.state is JobState.UNCERTAIN and record.task_id is None
    assert other.task_id in (record.message or "") and "--resubmit" in (record.message or "")
    assert again.state is JobState.UNCERTAIN


def test_a_kill_between_the_post_and_the_task_id(
    media: Path, tmp_path: Path, ledger: Ledger
) -> None:
    """The intent was recorded and the task made, then the process died before recording its
    id: the re-run adopts the task. And an intent whose request never left: submitted anew."""
    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        made = _add(ledger, _job(media, "made"), tmp_path)
        lost = _add(ledger, _job(media, "never-sent"), tmp_path)
        urls = {
            "video": client.upload(media / "good.mp4"),
            "audio": client.upload(media / "good.wav"),
        }
        for name in ("made", "never-sent"):
            ledger.update(
                name, state=JobState.UPLOADED, urls=urls, upload_expires=time.time() + 9e4
            )
        ledger.intend("made")
        task = client.submit(urls["video"], urls["audio"])  # the one whose id was never recorded
        events: list[Event] = []
        runner = Runner(client, ledger, content=False, settle=1.5, on_event=events.append)
        first = runner.run(ledger.get("made")).record  # type: ignore[arg-type]
        ledger.intend("never-sent")
        waited = time.monotonic()
        second = runner.run(ledger.get("never-sent")).record  # type: ignore[arg-type]
        state = emulator.state()
    assert made and lost
    # An empty list right after the intent proves nothing: the runner looked again once the
    # attempt was old enough for any task it made to show.
    looked_again = [e for e in events if e.step is Step.ADOPT and e.state is State.PROGRESS]
    assert [e.job for e in looked_again] == ["never-sent"]
    assert time.monotonic() - waited >= 1.0
    assert first.state is JobState.DONE and first.task_id == task.task_id
    assert second.state is JobState.DONE and second.task_id not in (None, task.task_id)
    assert state["tasks_created"] == 2 and state["submits_received"] == 2
    outcomes = {(name, outcome) for name, _, _, _, outcome in ledger.submits()}
    assert outcomes == {("made", "adopted"), ("never-sent", "not made"), ("never-sent", "answered")}


def _env(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    return service_env(emulator.base_url, KEY, HOME=str(tmp_path))


def test_the_same_job_is_not_paid_twice(run, media: Path, tmp_path: Path) -> None:
    job = ("submit", "--no-content", "--video", str(media / "good.mp4"), "--audio")
    with _emulator(tmp_path) as emulator:
        env = _env(emulator, tmp_path)
        first = run(*job, str(media / "good.wav"), env=env)
        again = run(*job, str(media / "good.wav"), "--wait", env=env)
        created = emulator.state()["tasks_created"]
        forced = run(*job, str(media / "good.wav"), "--resubmit", env=env)
        after = emulator.state()["tasks_created"]
    assert first.returncode == 0, first.stderr
    task_id = first.stdout.split()[1]
    assert f"retalk: retalk wait {task_id} -o good-retalk.mp4 fetches its result" in first.stderr
    assert again.returncode == 1 and created == 1
    assert f"submitted already as task {task_id}" in again.stderr
    assert f"retalk wait {task_id} -o good-retalk.mp4" in again.stderr
    assert forced.returncode == 0 and after == 2
    assert KEY not in "".join(r.stdout + r.stderr for r in (first, again, forced))
    renamed = tmp_path / "renamed.mp4"  # the same bytes are the same job; other bytes are not
    renamed.write_bytes((media / "good.mp4").read_bytes())
    assert job_key(_job(media)) == job_key(Job(str(renamed), str(media / "good.wav")))
    assert job_key(_job(media)) != job_key(Job(str(renamed), str(media / "speech.wav")))


def test_a_strict_policy_blocks_the_warnings(run, media: Path, tmp_path: Path) -> None:
    job = ("submit", "--no-content", "--video", str(media / "face.mp4"))
    job += ("--audio", str(media / "speech.wav"))  # the output cut to 3 s of 7.5: a warning
    (tmp_path / ".retalk.toml").write_text("strict = true\n")
    with _emulator(tmp_path) as emulator:
        env = _env(emulator, tmp_path)
        blocked = run(*job, cwd=tmp_path, env=env)
        nothing = emulator.state()["submits_received"]
        uploaded = [p for p in emulator.storage.rglob("*") if p.is_file()]
        loose = run(*job, "--no-strict", cwd=tmp_path, env=env)
        after = emulator.state()["submits_received"]
    assert blocked.returncode == 1, blocked.stderr
    assert (
        "Job.Truncated" in blocked.stderr and "policy makes these warnings block" in blocked.stderr
    )
    assert nothing == 0 and uploaded == []
    assert loose.returncode == 0, loose.stderr
    warned, *_ = loose.stderr.splitlines()
    assert warned.startswith("retalk: warning: ") and "Job.Truncated" in warned
    assert after == 1


def test_ctrl_c_while_waiting_says_how_to_come_back(media: Path, tmp_path: Path) -> None:
    with _emulator(tmp_path, running_s=30) as emulator:
        out = tmp_path / "out dir"
        out.mkdir()
        command = [
            RETALK, "submit", "--no-content", "--wait", "-o", str(out / "r.mp4"),
            "--video", str(media / "good.mp4"), "--audio", str(media / "good.wav"),
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            env=_env(emulator, tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        submitted = process.stdout.readline()  # printed at once: `retalk wait ID` needs it
        process.send_signal(signal.SIGINT)
        _, said = process.communicate(timeout=30)
        state = emulator.state()
    task_id = submitted.split()[1]
    assert process.returncode == 130, said
    assert said == (
        f"retalk: interrupted; task {task_id} goes on at the service: "
        f"retalk wait {task_id} -o '{out / 'r.mp4'}' fetches its result\n"
    )
    assert state["tasks"][0]["status"] in ("PENDING", "PRE-PROCESSING", "RUNNING")


def test_a_lost_connection_while_waiting_says_how_to_come_back(media: Path, tmp_path: Path) -> None:
    server = subprocess.Popen(
        [RETALK, "emulator", "--port", "0", "--pending", "0", "--running", "60"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        base = server.stderr.readline().strip().rsplit("=", 1)[-1]
        env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "DASHSCOPE_HTTP_BASE_URL": base}
        env |= {"RETALK_POLL_INTERVAL": "0.05", "RETALK_RETRY_BACKOFF": "0.01"}
        command = [
            RETALK, "submit", "--no-content", "--wait", "-o", str(tmp_path / "r.mp4"),
            "--video", str(media / "good.mp4"), "--audio", str(media / "good.wav"),
        ]  # fmt: skip
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        submitted = process.stdout.readline()
    finally:
        server.kill()  # the service out of reach while the task runs
        server.wait()
    _, said = process.communicate(timeout=60)
    task_id = submitted.split()[1]
    assert process.returncode == 3, said
    assert said.startswith("retalk: query: "), said
    assert said.endswith(
        f"task {task_id} goes on at the service: retalk wait {task_id} -o "
        f"{tmp_path / 'r.mp4'} fetches its result\n"
    )


def test_a_ledger_of_another_schema_or_no_ledger_is_refused(tmp_path: Path) -> None:
    from retalk.errors import LedgerError

    path = tmp_path / "jobs.ledger.sqlite"
    with Ledger(path) as ledger:
        ledger._db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(LedgerError, match="is of schema 99; this retalk reads schema 1"):
        Ledger(path)
    garbage = tmp_path / "not.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(LedgerError, match="cannot be used as a ledger"):
        Ledger(garbage)
    assert garbage.read_bytes() == b"not a database at all" * 100  # left as it was


def test_a_job_given_by_other_paths_is_the_same_job(run, media: Path, tmp_path: Path) -> None:
    """A refused job, run again with its files elsewhere: the ledger's job takes the new
    paths (its identity is its bytes), and the re-run uses them."""
    first_home, second_home = tmp_path / "a", tmp_path / "b"
    for home in (first_home, second_home):
        home.mkdir()
        (home / "v.mp4").write_bytes((media / "fps12.mp4").read_bytes())
        (home / "a.wav").write_bytes((media / "good.wav").read_bytes())

    def job(home: Path) -> tuple[str, ...]:
        return ("submit", "--no-content", "--video", str(home / "v.mp4"), "--audio",
                str(home / "a.wav"))  # fmt: skip

    with _emulator(tmp_path) as emulator:
        env = _env(emulator, tmp_path)
        refused = run(*job(first_home), env=env)
        (first_home / "v.mp4").unlink()
        forced = run(*job(second_home), "--force", env=env)
        made = emulator.state()["tasks_created"]
    assert refused.returncode == 1 and "InvalidFile.FPS" in refused.stderr
    assert forced.returncode == 0, forced.stderr  # not "File.Unreadable" of the first folder
    assert made == 1


def test_a_task_that_shows_late_is_adopted_not_sent_again(
    media: Path, tmp_path: Path, ledger: Ledger
) -> None:
    """The lost submit's task is not in the list at the first look (a request held on its way):
    the runner waits out the settle time, finds it, and adopts it: one task, no second submit."""
    import threading

    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        _add(ledger, _job(media, "late"), tmp_path)
        urls = {
            "video": client.upload(media / "good.mp4"),
            "audio": client.upload(media / "good.wav"),
        }
        ledger.update("late", state=JobState.UPLOADED, urls=urls, upload_expires=time.time() + 9e4)
        ledger.intend("late")
        events: list[Event] = []
        arrived: list[str] = []

        def arrive() -> None:
            arrived.append(client.submit(urls["video"], urls["audio"]).task_id)

        def on_event(event: Event) -> None:
            events.append(event)
            if event.step is Step.ADOPT and event.state is State.PROGRESS:
                threading.Thread(target=arrive).start()  # the held request lands now

        runner = Runner(client, ledger, content=False, settle=2.0, on_event=on_event)
        record = runner.run(ledger.get("late")).record  # type: ignore[arg-type]
        state = emulator.state()
    assert arrived, "the late arrival was never sent: the runner did not wait"
    assert record.state is JobState.DONE and record.task_id == arrived[0]
    assert state["tasks_created"] == 1 and state["submits_received"] == 1


def _run_batch(client: Client, path: Path, job: Job, out: Path) -> JobState:
    with Ledger(path) as opened:
        Batch(client, opened, [job], out, content=False, poll_interval=0.05).run()
        record = opened.get(job.name or "")
    assert record is not None
    return record.state


@pytest.mark.parametrize(
    "batch_first", [True, False], ids=["batch-then-submit", "submit-then-batch"]
)
def test_a_lost_answer_is_adopted_beside_another_ledgers_tasks(
    media: Path, tmp_path: Path, batch_first: bool
) -> None:
    """The first run's task is known only to its own ledger and to the user-level registry:
    the second run's lost answer still has one unknown task in its window, and adopts it."""
    faults = Faults(drop_submit_answer_every=2)  # the second submit's answer is lost
    batch_job = Job(str(media / "good.mp4"), str(media / "good.wav"), name="batched")
    submit_job = Job(str(media / "face.mp4"), str(media / "speech.wav"), name="submitted")
    with (
        _emulator(tmp_path, faults) as emulator,
        Client(KEY, emulator.base_url, timing=FAST) as client,
        Ledger(tmp_path / "submits.sqlite") as user,
    ):
        runner = Runner(client, user, content=False)
        if batch_first:
            first = _run_batch(client, tmp_path / "jobs.csv.ledger.sqlite", batch_job, tmp_path)
            second = runner.run(_add(user, submit_job, tmp_path)).record.state  # type: ignore[arg-type]
        else:
            first = runner.run(_add(user, submit_job, tmp_path)).record.state  # type: ignore[arg-type]
            second = _run_batch(client, tmp_path / "jobs.csv.ledger.sqlite", batch_job, tmp_path)
        state = emulator.state()
    assert state["answers_dropped"] == 1
    assert state["submits_received"] == 2 and state["tasks_created"] == 2  # no third
    assert (first, second) == (JobState.DONE, JobState.DONE)


def test_a_job_run_from_another_ledger_is_not_paid_twice(run, media: Path, tmp_path: Path) -> None:
    """`retalk submit` then `retalk batch` of the same job: the batch adopts the task; a
    `submit` of a job a batch ran is refused; --resubmit submits anew."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("good.mp4", "good.wav"):
        (folder / name).write_bytes((media / name).read_bytes())
    (folder / "jobs.csv").write_text("video,audio,name\ngood.mp4,good.wav,talk\n")
    batch = ("batch", str(folder / "jobs.csv"), "-d", str(folder / "out"), "--no-content")
    submit = ("submit", "--no-content", "--video", str(media / "good.mp4"), "--audio")
    with _emulator(tmp_path) as emulator:
        env = _env(emulator, tmp_path)
        first = run(*submit, str(media / "good.wav"), env=env)
        batched = run(*batch, env=env)
        made = emulator.state()["tasks_created"]
        forced = run(*batch, "--ledger", str(tmp_path / "other.sqlite"), "--resubmit", env=env)
        again = run(*submit, str(media / "good.wav"), env=env)  # the user ledger's own job
        after = emulator.state()["tasks_created"]
        other = run(*submit, str(media / "speech.wav"), env=env)
        state = emulator.state()
    assert first.returncode == 0, first.stderr
    task_id = first.stdout.split()[1]
    assert batched.returncode == 0, batched.stderr
    assert made == 1 and f"task {task_id} of an earlier run" in batched.stdout
    assert (folder / "out" / "talk.mp4").is_file()
    assert forced.returncode == 0 and after == 2 and again.returncode == 1
    assert other.returncode == 0 and state["tasks_created"] == 3


def test_a_submit_of_a_job_a_batch_ran_is_refused(run, media: Path, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "jobs.csv").write_text(
        f"video,audio,name\n{media / 'good.mp4'},{media / 'good.wav'},talk\n"
    )
    batch = ("batch", str(folder / "jobs.csv"), "-d", str(folder / "out"), "--no-content")
    submit = ("submit", "--no-content", "--video", str(media / "good.mp4"), "--audio")
    with _emulator(tmp_path) as emulator:
        env = _env(emulator, tmp_path)
        batched = run(*batch, env=env)
        refused = run(*submit, str(media / "good.wav"), env=env)
        made = emulator.state()["tasks_created"]
        forced = run(*submit, str(media / "good.wav"), "--resubmit", env=env)
        after = emulator.state()["tasks_created"]
    assert batched.returncode == 0, batched.stderr
    assert refused.returncode == 1 and made == 1
    assert "submitted already as task" in refused.stderr, refused.stderr
    assert forced.returncode == 0 and after == 2


def test_force_shows_the_errors_it_overrides(run, media: Path, tmp_path: Path) -> None:
    job = ("submit", "--no-content", "--video", str(media / "fps12.mp4"))
    with _emulator(tmp_path) as emulator:
        forced = run(
            *job, "--audio", str(media / "speech.wav"), "--force", env=_env(emulator, tmp_path)
        )
    assert forced.returncode == 0, forced.stderr
    lines = forced.stderr.splitlines()
    error = next(n for n, line in enumerate(lines) if line.startswith("retalk: error: "))
    assert "InvalidFile.FPS" in lines[error]
    assert lines[error + 1] == "retalk: submitting anyway (--force)"
    assert forced.stdout.startswith("task ")


def test_a_known_task_that_is_gone_does_not_stop_a_new_submit(media: Path, tmp_path: Path) -> None:
    from retalk.jobs.registry import Registry

    job = _job(media, "talk")
    registry = Registry()
    registry.record("no-such-task", job_key(job), str(tmp_path / "elsewhere.sqlite"))
    registry.close()
    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        state = _run_batch(client, tmp_path / "jobs.csv.ledger.sqlite", job, tmp_path)
        made = emulator.state()["tasks_created"]
    assert state is JobState.DONE and made == 1


def test_submit_reads_its_output_as_download_does(run, media: Path, tmp_path: Path) -> None:
    """`-o new/` (or a new name without an ending) is a folder, made; `-o x.mkv` is refused
    before anything is uploaded."""
    job = ("submit", "--no-content", "--video", str(media / "good.mp4"))
    job += ("--audio", str(media / "good.wav"), "--wait")
    with _emulator(tmp_path) as emulator:
        env = _env(emulator, tmp_path)
        refused = run(*job, "-o", str(tmp_path / "x.mkv"), env=env)
        nothing = emulator.state()["submits_received"]
        saved = run(*job, "-o", f"{tmp_path / 'new' / 'deeper'}/", env=env)
    assert refused.returncode == 2 and "name it .mp4" in refused.stderr and nothing == 0
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "new" / "deeper" / "good-retalk.mp4").is_file()


def _checked_and_uploaded(runner: Runner, ledger: Ledger, job: Job, out: Path) -> None:
    """The job checked (its forecast recorded) and uploaded, ready to submit."""
    record = runner.check(_add(ledger, job, out))  # type: ignore[arg-type]
    runner.upload(record[0])


@pytest.mark.parametrize(
    ("video", "audio", "adopted"),
    [("2s.mp4", "2s.wav", False), ("good.mp4", "good.wav", True)],
    ids=["another-length", "same-length"],
)
def test_a_swallowed_submit_and_another_clients_task(
    media: Path, tmp_path: Path, ledger: Ledger, video: str, audio: str, adopted: bool
) -> None:
    """The submit never reached the service (swallowed on its way: the intent recorded, no
    task made); another client of the account submitted a job in the window. Of another length
    than this job's forecast (3 s), the task is not this job's once its length is known: the
    job is uncertain, nothing saved, the task set aside for good; of the same length, it cannot
    be told apart and is adopted (the README says so)."""
    from retalk.jobs.registry import Registry

    job = _job(media)
    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        runner = Runner(client, ledger, content=False)
        _checked_and_uploaded(runner, ledger, job, tmp_path)
        ledger.intend("talk")  # sent, and swallowed: no task
        other = client.submit(client.upload(media / video), client.upload(media / audio))
        record = runner.run(ledger.get("talk")).record  # type: ignore[arg-type]
        again = runner.run(record).record
        made = emulator.state()["tasks_created"]
    registry = Registry()
    foreign_by_key = [t for t, _, _ in registry.by_key(job_key(job))]
    registry.close()
    assert made == 1  # the other client's only
    if adopted:
        assert record.state is JobState.DONE and record.task_id == other.task_id
        return
    assert record.state is JobState.UNCERTAIN and record.task_id is None, record
    assert record.billed is None and record.result is None
    message = record.message or ""
    assert other.task_id in message and "2.00 s" in message and "3.00 s" in message, message
    assert [p.name for p in tmp_path.glob("*talk*")] == []  # nothing saved, no part either
    assert [s[3:] for s in ledger.submits()] == [(other.task_id, "not this job's")]
    assert other.task_id in ledger.known_task_ids() and foreign_by_key == []
    assert again.state is JobState.UNCERTAIN  # left for the user


def test_a_task_made_after_the_attempts_window_is_not_adopted(
    media: Path, tmp_path: Path, ledger: Ledger
) -> None:
    """A submit attempt ten minutes old, its answer lost, resumed now: a task submitted now
    (another client's, of the same length) is past the longest the attempt could last, so it
    is not the attempt's: no task was made, and the job is submitted anew."""
    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        runner = Runner(client, ledger, content=False)
        _checked_and_uploaded(runner, ledger, _job(media), tmp_path)
        ledger.intend("talk")
        ledger.update("talk", intent_at=time.time() - 600)
        other = client.submit(client.upload(media / "good.mp4"), client.upload(media / "good.wav"))
        record = runner.run(ledger.get("talk")).record  # type: ignore[arg-type]
        made = emulator.state()["tasks_created"]
    assert record.state is JobState.DONE and record.task_id not in (None, other.task_id)
    assert made == 2
    assert [s[4] for s in ledger.submits()] == ["not made", "answered"]


def test_a_task_forgotten_before_its_end_was_seen_has_its_bill_unknown(
    media: Path, tmp_path: Path
) -> None:
    """A batch stopped (SIGTERM) while its task runs; the task succeeds (and bills) and the
    service forgets it 24 hours later; the batch run again finds it UNKNOWN: the job is not
    failed by the service but forgotten, and the summary says its bill is not known."""
    from retalk import limits
    from retalk.emulator import Clock

    folder = tmp_path / "batch"
    folder.mkdir()
    manifest = folder / "jobs.csv"
    manifest.write_text(f"video,audio,name\n{media / 'good.mp4'},{media / 'good.wav'},talk\n")
    ledger = Path(f"{manifest}.ledger.sqlite")
    command = [RETALK, "batch", str(manifest), "-d", str(folder / "out"), "--no-content"]
    clock = Clock()
    with _emulator(tmp_path, running_s=1.5, clock=clock) as emulator:  # type: ignore[arg-type]
        env = _env(emulator, tmp_path)
        first = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        while _last_seen(ledger) is None and first.poll() is None:
            time.sleep(0.02)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 143
        while emulator.state()["tasks"][0]["status"] != "SUCCEEDED":
            time.sleep(0.05)
        clock.advance(limits.TASK_RETENTION_S + 60)
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        billed = emulator.state()["seconds_billed"]
    assert billed == pytest.approx(3, abs=0.05)  # the service billed it
    assert again.returncode == 1, again.stderr
    summary = again.stdout.splitlines()[-1]
    assert "1 forgotten by the service: its bill not known" in summary, summary
    assert "failed" not in summary and "at least 0.00 s billed" in summary, summary
    with Ledger(ledger) as opened:
        record = opened.get("talk")
    assert record is not None and record.state is JobState.EXPIRED
    assert record.code == "Task.Forgotten" and record.billed is None


def _last_seen(ledger: Path) -> str | None:
    import sqlite3

    try:  # read-only: a ledger not made yet must stay unmade (an empty file is refused)
        with sqlite3.connect(f"{ledger.absolute().as_uri()}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT task_status FROM jobs").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def test_a_wait_that_finds_its_task_forgotten_says_so(
    media: Path, tmp_path: Path, ledger: Ledger
) -> None:
    """`retalk submit --wait`'s path: the task was seen running, then succeeded and was
    forgotten before the next query: the job is forgotten (its bill not known), not failed."""
    from retalk import limits
    from retalk.client import Task, TaskStatus
    from retalk.emulator import Clock

    clock = Clock()
    with (
        _emulator(tmp_path, running_s=0.5, clock=clock) as emulator,  # type: ignore[arg-type]
        Client(KEY, emulator.base_url, timing=FAST) as client,
    ):

        def on_task(task: Task) -> None:
            if task.status is TaskStatus.RUNNING and not emulator.state()["tasks"][0]["forgotten"]:
                while emulator.state()["tasks"][0]["status"] != "SUCCEEDED":
                    time.sleep(0.02)
                clock.advance(limits.TASK_RETENTION_S + 60)  # before the waiter looks again

        runner = Runner(client, ledger, content=False)
        outcome = runner.run(_add(ledger, _job(media), tmp_path), on_task=on_task)  # type: ignore[arg-type]
    record = outcome.record
    assert record.state is JobState.EXPIRED and record.code == "Task.Forgotten", record
    assert record.billed is None and "bill" in (record.message or "")


def test_a_ledger_moved_away_or_a_manifest_of_the_same_name_elsewhere_pays_nothing(
    run, media: Path, tmp_path: Path
) -> None:
    """The registry tells ledgers apart by the tasks they hold, not by the path they were
    given: a batch of the same jobs from `m.csv` in another folder, or after its ledger was
    moved away, adopts the task it finds instead of paying again."""
    folders = [tmp_path / "one", tmp_path / "two"]
    for folder in folders:
        folder.mkdir()
        (folder / "m.csv").write_text(
            f"video,audio,name\n{media / 'good.mp4'},{media / 'good.wav'},talk\n"
        )
    with _emulator(tmp_path) as emulator:
        env = _env(emulator, tmp_path)
        first = run("batch", "m.csv", "-d", "out", "--no-content", cwd=folders[0], env=env)
        elsewhere = run("batch", "m.csv", "-d", "out", "--no-content", cwd=folders[1], env=env)
        (folders[0] / "m.csv.ledger.sqlite").rename(tmp_path / "moved.sqlite")
        moved = run("batch", "m.csv", "-d", "out2", "--no-content", cwd=folders[0], env=env)
        made = emulator.state()["tasks_created"]
    assert first.returncode == 0, first.stderr
    assert elsewhere.returncode == 0 and "of an earlier run" in elsewhere.stdout, elsewhere.stdout
    assert moved.returncode == 0 and "of an earlier run" in moved.stdout, moved.stdout
    assert made == 1


def test_a_job_waiting_for_a_slot_is_not_paid_twice(
    media: Path, tmp_path: Path, ledger: Ledger
) -> None:
    """A batch job already checked and uploaded, then submitted by `retalk submit` (another
    ledger) before its turn: the batch asks the registry again right before its submit."""
    from retalk.jobs.batch import Batch

    job = _job(media, "late")
    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        record = _add(ledger, job, tmp_path)
        urls = {
            "video": client.upload(media / "good.mp4"),
            "audio": client.upload(media / "good.wav"),
        }
        ledger.update(
            record.name, state=JobState.UPLOADED, urls=urls, upload_expires=time.time() + 9e4
        )
        other = Ledger(tmp_path / "other.sqlite")
        with other:
            theirs = other.add("theirs", record.key, job, None)
            task = client.submit(urls["video"], urls["audio"])
            other.submitted(theirs.name, task.task_id)
        Batch(client, ledger, [job], tmp_path / "out", content=False).run()
        made = emulator.state()["tasks_created"]
        after = ledger.get(record.name)
    assert made == 1
    assert after is not None and after.state is JobState.DONE and after.task_id == task.task_id


def test_a_busy_registry_loses_no_task(media: Path, tmp_path: Path, ledger: Ledger) -> None:
    """The registry held by another process past its busy timeout when a task id comes: the
    ledger keeps the id and the run goes on (the task made is never lost to the index)."""
    import sqlite3

    from retalk.jobs import registry

    with _emulator(tmp_path) as emulator, Client(KEY, emulator.base_url, timing=FAST) as client:
        record = _add(ledger, _job(media, "busy"), tmp_path)
        holder = sqlite3.connect(ledger.registry.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        ledger.registry._db.execute("PRAGMA busy_timeout = 100")  # not 10 s in a test
        try:
            done = Runner(client, ledger, content=False).run(record).record
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert done.state is JobState.DONE and done.task_id is not None
    assert done.task_id not in registry.Registry(ledger.registry.path).task_ids()
