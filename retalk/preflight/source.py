"""A file held open while it is read, so that what is read is the file that was checked.

A path can be swapped for a pipe between a check and a read (opening a pipe waits for a writer
for ever), or for another file. `pinned` opens the path once, without waiting, refuses anything
but a regular file, and names the open file by a path that leads to that descriptor
(`/dev/fd/N`) through a link carrying the original ending, which ffmpeg's format probe weighs.
Readers in this process and ffmpeg or ffprobe started with `pass_fds=(pin.fd,)` read through it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class NotRegularFile(OSError):
    """The path names a folder, pipe, socket or device."""


@dataclass(frozen=True)
class Pin:
    fd: int
    """The open file; pass it on to a child process (`pass_fds`)."""
    path: str
    """A path to the open file, ending as the original does."""
    size: int


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of `path` and its status; `NotRegularFile` for anything but a
    regular file, OSError when it cannot be opened. Never waits (a pipe is not opened for
    reading in a way that blocks)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise NotRegularFile(21, "is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(0, "is not a regular file (a pipe, socket or device)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


@contextmanager
def pinned(path: str) -> Iterator[Pin]:
    """`path` held open for the block (see the module docstring). Raises what `open_regular`
    raises."""
    fd, info = open_regular(path)
    link = None
    try:
        if os.path.isdir("/dev/fd"):
            link = os.path.join(_links(), f"{next(_count)}{_ending(path)}")
            os.symlink(f"/dev/fd/{fd}", link)
            yield Pin(fd, link, info.st_size)
        else:  # no /dev/fd (Windows): read by name, without the pin's guarantee
            yield Pin(fd, os.path.abspath(path), info.st_size)
    finally:
        os.close(fd)
        if link is not None:
            with contextlib.suppress(OSError):
                os.unlink(link)


_count = itertools.count()
_folder: str | None = None
_folder_lock = threading.Lock()


_PREFIX = "retalk-links-"


def _links() -> str:
    """This process's folder of links, made on first use and removed when it exits; the
    folders of processes that died without a word (kill -9) are removed on the way."""
    import shutil
    import tempfile  # lazily: 10 ms that `retalk --help` does not need

    global _folder
    with _folder_lock:
        if _folder is None or not os.path.isdir(_folder):
            _remove_orphans(tempfile.gettempdir())
            _folder = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
            atexit.register(shutil.rmtree, _folder, True)
        return _folder


def remove_own_links() -> None:
    """Remove this process's folder of links now (a worker ended by a signal)."""
    import shutil

    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)


def remove_orphan_links() -> None:
    """Remove the link folders of processes that are gone (workers killed mid-check)."""
    import tempfile

    _remove_orphans(tempfile.gettempdir())


def _remove_orphans(parent: str) -> None:
    import shutil

    try:
        names = [n for n in os.listdir(parent) if n.startswith(_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's: alive, and not ours to remove
    return True


def _ending(path: str) -> str:
    ending = os.path.splitext(path)[1].lower().lstrip(".")
    return "." + ending if ending.isascii() and ending.isalnum() and len(ending) <= 8 else ""
