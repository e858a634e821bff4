"""Hostile and odd config files: a FIFO, a device, a file too large, values nested past the
parser's recursion, NaN and infinity. Each is one line on stderr and exit 2, never a hang or a
traceback, for `retalk check` and `retalk config` alike."""

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from retalk.policy.load import MAX_CONFIG_BYTES
from tests.conftest import RETALK

Run = Callable[..., subprocess.CompletedProcess[str]]

COMMANDS = (("config",), ("check", "--no-content", "x.mp4"))


def _one_line_exit_2(result: subprocess.CompletedProcess[str], said: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"retalk: {said}"), result.stderr


def _limit_memory() -> None:
    # 1 GiB of address space: enough for Python and retalk's imports, not for /dev/zero.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_a_fifo_or_a_device_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.toml"
    os.mkfifo(fifo)
    for named in (fifo, Path("/dev/zero")):
        for command in COMMANDS:
            args = [RETALK, *command[:1], "--config", str(named), *command[1:]]
            # A FIFO nobody writes to would block an ordinary open() forever; /dev/zero would
            # be read until memory ran out (the address space is limited to see it).
            result = subprocess.run(
                args,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
                preexec_fn=_limit_memory,
            )
            _one_line_exit_2(result, f"--config {named}: not a regular file")


@pytest.mark.parametrize("name", [".retalk.toml", "policy.toml"])
def test_a_config_over_the_cap_is_refused_unread(run: Run, tmp_path: Path, name: str) -> None:
    big = tmp_path / name
    with open(big, "wb") as file:
        file.truncate(3 * 1024**3)  # sparse: 3 GB that cost no disk
    for command in COMMANDS:
        given = () if name == ".retalk.toml" else ("--config", name)
        result = run(*command[:1], *given, *command[1:], cwd=tmp_path)
        _one_line_exit_2(result, f"{'--config ' if given else ''}{name}: 3,221,225,472 bytes")
        assert "over the 1 MB a config file may be: not read" in result.stderr


def test_a_config_just_under_the_cap_is_read(run: Run, tmp_path: Path) -> None:
    text = 'ignore = ["Audio."]\n'
    (tmp_path / ".retalk.toml").write_text(text + "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n")
    assert (tmp_path / ".retalk.toml").stat().st_size == MAX_CONFIG_BYTES
    result = run("config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'ignore = ["Audio."]' in result.stdout


def test_a_large_pyproject_is_passed_over_in_the_search(run: Run, tmp_path: Path) -> None:
    (tmp_path / ".retalk.toml").write_text('ignore = ["Audio."]\n')
    below = tmp_path / "project"
    below.mkdir()
    with open(below / "pyproject.toml", "wb") as file:
        file.write(b'[tool.retalk]\nignore = ["Face."]\n')
        file.truncate(MAX_CONFIG_BYTES + 1)
    result = run("config", cwd=below)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "# config: ../.retalk.toml"
    # Named with --config, it is refused.
    named = run("config", "--config", "pyproject.toml", cwd=below)
    _one_line_exit_2(named, "--config pyproject.toml: 1,048,577 bytes, over the 1 MB")


DEEP = 100_000
# (file name, its text, the start of the one line on stderr)
NESTED = [
    (".retalk.toml", f"ignore = {'[' * DEEP}{']' * DEEP}\n", ".retalk.toml: its arrays or tables"),
    (
        ".retalk.toml",
        f"[video]\nmax-side = {'{a = ' * DEEP}1{' }' * DEEP}\n",
        ".retalk.toml: its arrays or tables nest too deeply",
    ),
    (
        "pyproject.toml",
        f"[tool.retalk]\nignore = {'[' * DEEP}{']' * DEEP}\n",
        "pyproject.toml: its arrays or tables nest too deeply",
    ),
    (
        "pyproject.toml",
        f"[project]\nx = {'{a = ' * DEEP}1{' }' * DEEP}\n",
        "pyproject.toml: its arrays or tables nest too deeply",
    ),
    # Nested within what the parser takes: the message shows the value shortened.
    (
        ".retalk.toml",
        f"ignore = {'[' * 200}{']' * 200}\n",
        ".retalk.toml ignore: must be a list of code prefixes, not [[[…]]]",
    ),
]


@pytest.mark.parametrize(("name", "text", "said"), NESTED, ids=range(len(NESTED)))
def test_values_nested_past_the_parser_are_one_line(
    run: Run, tmp_path: Path, name: str, text: str, said: str
) -> None:
    (tmp_path / name).write_text(text)
    for command in COMMANDS:
        _one_line_exit_2(run(*command, cwd=tmp_path), said)


# (the limit table's lines, the start of the one line on stderr)
NOT_FINITE = [
    ("[ref]\nmax-aspect = nan", "[ref] max-aspect: must be a finite number, not nan"),
    ("[video]\nmax-duration = nan", "[video] max-duration: must be a finite number, not nan"),
    ("[video]\nmin-duration = -nan", "[video] min-duration: must be a finite number, not nan"),
    ("[video]\nmax-fps = inf", "[video] max-fps: must be a finite number, not inf"),
    ("[video]\nmin-fps = +inf", "[video] min-fps: must be a finite number, not inf"),
    ("[audio]\nmin-duration = -inf", "[audio] min-duration: must be a finite number, not -inf"),
]


@pytest.mark.parametrize(("table", "said"), NOT_FINITE, ids=[s for _, s in NOT_FINITE])
def test_every_number_is_finite(
    run: Run, media: Path, tmp_path: Path, table: str, said: str
) -> None:
    config = tmp_path / "n.toml"
    config.write_text(table + "\n")
    good = str(media / "good.jpg")
    for args in (("config",), ("check", "--no-content", good)):
        result = run(*args[:1], "--config", str(config), *args[1:], cwd=tmp_path)
        _one_line_exit_2(result, f"{config} {said}")


HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        # Any key, any table: a pyproject.toml on the way up is parsed whole.
        ("pyproject.toml", "x = 1" + "0" * 5000, "pyproject.toml: not readable TOML: "),
        (".retalk.toml", f"[video]\nmax-side = {HUGE}", "[video] max-side: must be under 10^15"),
        (".retalk.toml", f"[video]\nmin-side = -{HUGE}", "[video] min-side: must be under 10^15"),
        (".retalk.toml", f"[ref]\nmax-side = 0x{'F' * 400}", "[ref] max-side: must be under 10^15"),
    ],
    ids=["digits-past-int", "huge-max", "huge-negative-min", "huge-hex"],
)
def test_numbers_too_large_are_one_line(
    run: Run, media: Path, tmp_path: Path, name: str, text: str, said: str
) -> None:
    (tmp_path / name).write_text(text + "\n")
    good = str(media / "good.wav")
    for args in (("config",), ("check", "--no-content", good)):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert said in result.stderr, result.stderr
