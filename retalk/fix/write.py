"""Carrying out a `Plan`: into a temporary file beside the output, then renamed onto it, so that
an output is whole or absent (a failure, Ctrl-C or SIGTERM leaves neither it nor the
temporary file)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

from retalk.errors import FixRefused, ToolMissing
from retalk.fix.plan import Plan
from retalk.preflight.hints import tool_path
from retalk.preflight.probe import ffmpeg_command, killed

_QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error", "-n")


def temporary_name(output: str) -> str:
    """A name beside `output` for its temporary file, hidden, with the same ending (which
    tells ffmpeg and Pillow the format)."""
    folder, name = os.path.split(output)
    stem, ending = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{secrets.token_hex(4)}.retalk-part{ending}")


def ffmpeg_argv(plan: Plan, target: str) -> list[str]:
    """The command run for `plan`: its own, quieter, writing `target` instead of its output."""
    assert plan.argv is not None
    program = ffmpeg_command()
    if shutil.which(program) is None:
        raise ToolMissing(program, "install ffmpeg (Debian: apt-get install ffmpeg)")
    return [program, *_QUIET, *plan.argv[1:-1], tool_path(target)]


def carry_out(plan: Plan, *, replace: bool) -> None:
    """Write `plan.output` (replacing an existing file only with `replace`). Raises FixRefused
    when ffmpeg cannot make it, ToolMissing or ToolKilled for the machine's trouble, OSError
    when the folder cannot be written."""
    temporary = temporary_name(plan.output)
    try:
        if plan.argv is not None:
            _run(ffmpeg_argv(plan, temporary))
        elif plan.image is not None:
            plan.image.apply(plan.source, temporary)  # type: ignore[attr-defined]
        else:
            shutil.copyfile(plan.source, temporary)
        if replace:
            os.replace(temporary, plan.output)
        else:
            os.link(temporary, plan.output)  # fails if the output appeared meanwhile
            os.unlink(temporary)
    except FileExistsError:
        raise FixRefused(f"{plan.output} exists: give --force to replace it", usage=True) from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _run(argv: list[str]) -> None:
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as error:
        raise ToolMissing(argv[0], str(error)) from None
    try:
        _, err = process.communicate()
    except BaseException:  # Ctrl-C, SIGTERM: ffmpeg goes first, then the temporary file
        process.kill()
        process.wait()
        raise
    if process.returncode < 0:
        raise killed(argv[0], process.returncode)
    if process.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        raise FixRefused(f"ffmpeg could not make it: {said[-1] if said else 'no reason given'}")
