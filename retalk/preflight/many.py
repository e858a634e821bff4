"""Many files: looked up in the result cache first, the misses checked by worker processes.

Each worker is a fresh Python process (`python -m retalk.preflight.worker`), never forked from
a process whose mediapipe or PyAV threads run, speaking JSON lines on its standard streams. It
loads the models once, on its first file that needs them, and checks one file at a time as a
thread of the main process hands them out. The main process stores the results in the cache
and returns them in the order of the inputs. A worker that dies (killed, crashed) costs its
file a `File.CheckFailed` finding and is replaced; Ctrl-C and SIGTERM end every worker before
the exception goes on. No file is ever lost: when workers cannot be started (too many open
files, too many processes), the files they would have taken are checked by those that could,
and, when none could, in this process; one line on stderr says so.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from retalk import errors
from retalk.findings import Input, Report

if TYPE_CHECKING:
    from retalk.cache import ResultCache
    from retalk.policy import Policy

Progress = Callable[[int, int], None]
"""Told (files done, files in all) as files are done."""

_STOP_WAIT_S = 2.0
"""How long a worker asked to end (SIGTERM) is waited for before it is killed."""
MAX_JOBS = 64
"""The most worker processes, whatever `--jobs` asks (a worker holds its models: ~0.5 GiB)."""


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"retalk: {line}", file=sys.stderr, flush=True)


def check_many(
    files: Sequence[str],
    *,
    content: bool = True,
    policy: Policy | None = None,
    jobs: int | None = None,
    cache: ResultCache | None = None,
    progress: Progress | None = None,
) -> list[Report]:
    """The report of each file under `policy`'s limits, before its selection, in the order of
    `files`: from `cache` where it holds one, else checked by `jobs` worker processes (default:
    the CPU count; 1, or a single file to check: in this process)."""
    from retalk.policy import SERVICE

    rules = policy or SERVICE
    settings = rules.fingerprint()
    total = len(files)
    reports: list[Report | None] = [None] * total
    keys: dict[int, str] = {}
    todo: dict[str, list[int]] = {}  # one check for files of the same bytes and ending
    done = 0
    for i, path in enumerate(files):
        key = cache.key(path, content=content, settings=settings) if cache is not None else None
        hit = cache.get(key, path) if cache is not None and key is not None else None
        if hit is not None:
            reports[i] = hit
            done += 1
            continue
        if key is not None:
            keys[i] = key
        todo.setdefault(key or f"\0{i}", []).append(i)
    if progress is not None and done:
        progress(done, total)

    def finished(indices: list[int], template: dict[str, Any] | None, failed: str | None) -> None:
        nonlocal done
        from retalk.cache import named

        first = indices[0]
        if cache is not None and template is not None and first in keys:
            cache.put(keys[first], template, files[first])
        for i in indices:
            path = files[i]
            if template is not None:
                reports[i] = named(template, path)
            else:
                reports[i] = _failed(path, failed, rules)
        done += len(indices)
        if progress is not None:
            progress(done, total)

    groups = list(todo.values())
    workers = min(jobs or os.cpu_count() or 1, len(groups), MAX_JOBS)
    try:
        if workers <= 1:
            for indices in groups:
                finished(indices, template_of(files[indices[0]], content, rules), None)
        else:
            pool = _Pool(workers, content, rules)
            left = pool.run([(g, files[g[0]]) for g in groups], finished)
            if pool.start_failures:
                _say(_not_started(pool, len(left)))
            for indices, path in left:
                finished(indices, template_of(path, content, rules), None)
    finally:
        if cache is not None:
            cache.flush()
    return [r for r in reports if r is not None]


def template_of(path: str, content: bool, policy: Policy) -> dict[str, Any]:
    """`judge_file_at(path)` as a template for the cache: judged under `placeholder(path)`, as
    `Report.to_dict()` (see `retalk.cache.named`)."""
    from retalk.cache import UNSETTLED, placeholder
    from retalk.preflight.check import inspect, judge

    media = inspect(path, None, content=content, policy=policy)[0]
    template = judge(replace(media, path=placeholder(path)), None, policy).to_dict()
    if media.unsettled is not None:
        template[UNSETTLED] = media.unsettled  # never stored
    return template


def _failed(path: str, why: str | None, policy: Policy) -> Report:
    from retalk.preflight.media import Media
    from retalk.preflight.rules import CHECK_FAILED, judge_file

    ending = os.path.splitext(path)[1].lower().lstrip(".")
    found = judge_file(Media(path, 0, ending, open_error=why), CHECK_FAILED, policy)
    return Report((Input(path, "unknown", None, {}),), found)


def _not_started(pool: _Pool, left: int) -> str:
    """One line on the workers that could not be started, and who checked instead."""
    why = pool.start_failures[-1]
    if not pool.started:
        return f"no worker process could be started ({why}): checked in this process"
    said = (
        f"{len(pool.start_failures)} worker processes could not be started ({why}): "
        f"checked with {pool.started}"
    )
    return said + (f", and {left} files in this process" if left else "")


Task = tuple[list[int], str]
Done = Callable[[list[int], "dict[str, Any] | None", "str | None"], None]


class _Pool:
    """`size` worker processes (`retalk.preflight.worker`), each fed one file at a time by a
    thread of this process, so that a worker that dies is known with its file."""

    def __init__(self, size: int, content: bool, policy: Policy) -> None:
        self.size = size
        self.content = content
        self.policy = policy
        self.processes: dict[subprocess.Popen[bytes], bool] = {}  # → busy
        self.lock = threading.Lock()
        self.stopping = False
        self.start_failures: list[str] = []
        """Why each worker that could not be started could not."""
        self.started = 0
        """How many feeders had a worker."""

    def run(self, tasks: list[Task], done: Done) -> list[Task]:
        """Check every task's file, telling `done` in the main thread as each ends; the tasks
        left unchecked because no worker could be started, for the caller to check."""
        todo: queue.SimpleQueue[Task] = queue.SimpleQueue()
        results: queue.SimpleQueue[tuple[Task, list[Any]]] = queue.SimpleQueue()
        for task in tasks:
            todo.put(task)
        feeders = [
            threading.Thread(target=self._feed, args=(todo, results), daemon=True)
            for _ in range(self.size)
        ]
        try:
            for feeder in feeders:
                try:
                    feeder.start()
                except RuntimeError as error:  # no more threads: the started ones do it all
                    self.start_failures.append(_reason(error))
            for _ in tasks:
                while True:
                    try:  # a timeout, so that Ctrl-C is heard while waiting
                        (indices, _path), answer = results.get(timeout=0.25)
                        break
                    except queue.Empty:
                        if any(feeder.is_alive() for feeder in feeders) or not results.empty():
                            continue
                        # Every feeder has ended: what is still to do had no worker to go to.
                        return _left(todo)
                status = answer[0]
                if status == "env":
                    raise _environment_problem(answer[1], answer[2])
                if status == "ok":
                    done(indices, answer[1], None)
                else:
                    done(indices, None, str(answer[1]))
        finally:
            self.stop()
        return []

    def _feed(self, todo: queue.SimpleQueue[Task], results: queue.SimpleQueue[Any]) -> None:
        """Hand tasks to a worker of this thread's until none is left. A worker that cannot be
        started hands its task back and ends the thread; any other failure costs its file a
        `File.CheckFailed` finding: no task is lost, and no traceback printed."""
        worker: subprocess.Popen[bytes] | None = None
        task: Task | None = None
        had_worker = False
        try:
            while not self.stopping:
                try:
                    task = todo.get_nowait()  # every task is queued before the feeders start
                except queue.Empty:
                    return
                if worker is None:
                    try:
                        worker = self._start()
                    except (OSError, ValueError, subprocess.SubprocessError) as error:
                        with self.lock:
                            self.start_failures.append(_reason(error))
                        todo.put(task)  # for another worker, or the main thread
                        task = None
                        return
                    if worker is None:
                        return
                    if not had_worker:
                        had_worker = True
                        with self.lock:
                            self.started += 1
                answer = self._ask(worker, task[1])
                if answer is None:  # it died: its file gets a finding, a new worker takes over
                    answer = ["died", _death(worker.wait())]
                    self._forget(worker)
                    worker = None
                results.put((task, answer))
                task = None
        except BaseException as error:
            if task is not None:
                results.put((task, ["error", f"the check ended abnormally ({_reason(error)})"]))
        finally:
            if worker is not None:
                with contextlib.suppress(Exception):
                    self._release(worker)

    def _ask(self, worker: subprocess.Popen[bytes], path: str) -> list[Any] | None:
        assert worker.stdin is not None and worker.stdout is not None
        with self.lock:
            self.processes[worker] = True
        try:
            worker.stdin.write(json.dumps(path).encode() + b"\n")
            worker.stdin.flush()
            line = worker.stdout.readline()
        except (OSError, ValueError):
            return None
        with self.lock:
            self.processes[worker] = False
        try:
            answer = json.loads(line) if line else None
        except ValueError:
            return None
        return answer if isinstance(answer, list) and answer else None

    def _start(self) -> subprocess.Popen[bytes] | None:
        command = [sys.executable, "-m", "retalk.preflight.worker"]
        if not self.content:
            command.append("--no-content")
        extra: dict[str, Any] = {}
        if os.name == "posix":
            # A group of their own: a terminal's Ctrl-C goes to this process, which ends them.
            extra["process_group"] = 0
        with self.lock:
            if self.stopping:
                return None
            worker = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, **extra
            )
            self.processes[worker] = False
        assert worker.stdin is not None
        # The policy first, pickled (the worker is this program, the pipe ours alone); if it
        # died already, its first file tells.
        with contextlib.suppress(OSError):
            worker.stdin.write(base64.b64encode(pickle.dumps(self.policy)) + b"\n")
        return worker

    def _forget(self, worker: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.processes.pop(worker, None)
        for stream in (worker.stdin, worker.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def _release(self, worker: subprocess.Popen[bytes]) -> None:
        """Let an idle worker go: it ends when its input closes."""
        self._forget(worker)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(_STOP_WAIT_S)

    def stop(self) -> None:
        """End every worker: an idle one by closing its input, a busy one by SIGTERM (it
        removes its temporary links), one that lingers by SIGKILL; then the links of any that
        could not clean up are removed."""
        with self.lock:
            self.stopping = True
            workers = dict(self.processes)
        for worker, busy in workers.items():
            with contextlib.suppress(OSError):
                if busy:
                    worker.terminate()
                elif worker.stdin is not None:
                    worker.stdin.close()
        killed = False
        for worker in workers:
            try:
                worker.wait(_STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            killed = killed or worker.returncode != 0
            self._forget(worker)
        if killed:
            from retalk.preflight.source import remove_orphan_links

            remove_orphan_links()


def _left(todo: queue.SimpleQueue[Task]) -> list[Task]:
    left: list[Task] = []
    with contextlib.suppress(queue.Empty):
        while True:
            left.append(todo.get_nowait())
    return left


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _death(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the worker process checking it was ended by {name}"
    return f"the worker process checking it died (exit code {returncode})"


def _environment_problem(name: str, args: list[str]) -> errors.EnvironmentProblem:
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, errors.EnvironmentProblem):
        with contextlib.suppress(TypeError):
            return kind(*args)
    return errors.EnvironmentProblem(*args[-1:])
