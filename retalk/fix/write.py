"""Carrying out a `Plan`: into a temporary file beside the output, then renamed onto it, so that
an output is whole or absent (a failure, Ctrl-C, SIGTERM or SIGHUP leaves neither it nor the
temporary file; on Linux, ffmpeg dies with retalk even when retalk is killed outright). The
temporary file is locked while written: one whose writer is gone (killed outright) is swept by
the next `fix` writing into that folder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable

from retalk.errors import FixRefused, ToolMissing
from retalk.fix.plan import Plan
from retalk.preflight.hints import tool_path
from retalk.preflight.probe import ffmpeg_command, killed

# -y: the temporary file is ours, made empty and locked before ffmpeg runs.
_QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error", "-y")
_PART = ".retalk-part"
_OURS = re.compile(r"\..*\.[0-9a-f]{8}\.retalk-part\.[^.]+", re.DOTALL)
# link(2) on a filesystem without hard links (FAT, exFAT, some network shares).
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK}


def temporary_name(output: str) -> str:
    """A name beside `output` for its temporary file, hidden, with the same ending (which
    tells ffmpeg and Pillow the format); its stem is shortened when the whole would pass the
    folder's longest name."""
    folder, name = os.path.split(output)
    stem, ending = os.path.splitext(name)
    tail = f".{secrets.token_hex(4)}{_PART}{ending}"
    room = _name_max(folder) - len(os.fsencode("." + tail))
    while stem and len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return os.path.join(folder, f".{stem}{tail}")


def _name_max(folder: str) -> int:
    try:
        return os.pathconf(folder or ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


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
    (naming the output, not the temporary file) when the folder cannot be written."""
    temporary = temporary_name(plan.output)
    _sweep(os.path.dirname(plan.output) or ".")
    held = -1
    try:
        held = _claim(temporary)
        _make(plan, temporary)
        if replace:
            os.replace(temporary, plan.output)
        else:
            _publish(temporary, plan.output)
    except FileExistsError:
        raise FixRefused(f"{plan.output} exists: give --force to replace it", usage=True) from None
    except OSError as error:
        raise OSError(error.errno, _said(error), plan.output) from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        if held >= 0:
            os.close(held)


def _claim(temporary: str) -> int:
    """Make `temporary`, empty, and lock it for as long as this process lives (the lock goes
    with it, however it dies): the descriptor to close once it is renamed or removed."""
    held = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    # On a filesystem without locks the sweep's own lock fails too, and it passes the file over.
    with contextlib.suppress(OSError):
        fcntl.flock(held, fcntl.LOCK_EX)
    return held


def _sweep(folder: str) -> None:
    """Remove the temporary files of `fix` runs in `folder` that ended without removing theirs
    (killed outright): those no process holds locked."""
    try:
        names = [n for n in os.listdir(folder) if _OURS.fullmatch(n)]
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            found = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(found, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if stat.S_ISREG(os.fstat(found).st_mode) and os.path.samestat(
                os.fstat(found), os.lstat(path)
            ):
                os.unlink(path)
        except OSError:
            pass  # held: a fix still writing it
        finally:
            os.close(found)


def _make(plan: Plan, temporary: str) -> None:
    if plan.argv is not None:
        _run(ffmpeg_argv(plan, temporary), plan.output)
    elif plan.image is not None:
        plan.image.apply(plan.source, temporary)  # type: ignore[attr-defined]
    else:
        shutil.copyfile(plan.source, temporary)


def _publish(temporary: str, output: str) -> None:
    """Rename `temporary` onto `output` unless `output` exists: a hard link fails if the
    output appeared meanwhile; where the filesystem has none, an exclusive create holds the
    name, then the rename replaces that empty file."""
    try:
        os.link(temporary, output)
    except OSError as error:
        if error.errno not in _NO_LINKS or os.path.lexists(output):
            raise
        os.close(os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        try:
            os.replace(temporary, output)
        except BaseException:
            os.unlink(output)
            raise
        return
    os.unlink(temporary)


def _said(error: OSError) -> str:
    if error.errno == errno.EFBIG:
        return "the file size limit was hit (ulimit -f)"
    return error.strerror or str(error)


def _run(argv: list[str], output: str) -> None:
    """Run ffmpeg. Raises FixRefused when it fails, ToolKilled when a signal ends it, OSError
    (EFBIG) when it hits the file size limit."""
    # Ctrl-C, SIGTERM and SIGHUP are held while ffmpeg is started: a handler that raises in
    # the middle of the spawn (in its at-fork hooks) is lost, and the encode ran on to the end.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_dies_with_us(held),
        )
    except OSError as error:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise ToolMissing(argv[0], str(error)) from None
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a signal held lands here
        _, err = process.communicate()
    except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: ffmpeg goes first, then the temporary file
        process.kill()
        process.wait()
        raise
    if process.returncode == -signal.SIGXFSZ:  # as Python's own write would: EFBIG
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), output)
    if process.returncode < 0:
        raise killed(argv[0], process.returncode)
    if process.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        raise FixRefused(f"ffmpeg could not make it: {said[-1] if said else 'no reason given'}")


def _dies_with_us(mask: set[int | signal.Signals]) -> Callable[[], None]:
    """What the child runs before ffmpeg: the signal `mask` retalk had (so that ffmpeg hears
    Ctrl-C and SIGTERM), and on Linux PR_SET_PDEATHSIG, so that it gets SIGKILL when retalk
    dies (SIGKILL included, which no handler of ours can answer)."""

    def unmask() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    if not sys.platform.startswith("linux"):
        return unmask
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        unmask()
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # retalk died before the prctl: nobody would kill us
            os._exit(1)

    return arm


_PR_SET_PDEATHSIG = 1
_STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
