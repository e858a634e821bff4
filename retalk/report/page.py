"""The frame of retalk's HTML pages: one self-contained file (inline CSS, SVG and data: images,
no network), readable on a phone, with every outside text escaped."""

from __future__ import annotations

import contextlib
import errno
import html
import os
import stat
import tempfile
from pathlib import Path

from retalk.report.escape import printable

_STYLE = """
:root { color-scheme: light; --ok: #1a7f37; --fail: #c62828; --warn: #b26a00; --muted: #666; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
  padding: 12px; max-width: 1000px; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.4em; margin: 0.2em 0; } h2 { font-size: 1.15em; margin: 1.4em 0 0.3em; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
h2, h3, p, li, td, th, figcaption { overflow-wrap: anywhere; }
.verdict { font-weight: 600; padding: 8px 10px; border-radius: 6px; }
.verdict.ok { background: #e6f4ea; color: var(--ok); }
.verdict.fail { background: #fde7e7; color: var(--fail); }
.muted, .facts { color: var(--muted); }
.note { background: #fff8e1; padding: 6px 10px; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 5px 6px; border-bottom: 1px solid #ddd; }
th { white-space: nowrap; overflow-wrap: normal; }
td.file { overflow-wrap: normal; word-break: normal; min-width: 7em; }
code { font: 0.9em ui-monospace, Menlo, Consolas, monospace; background: #f4f4f4;
  padding: 1px 3px; border-radius: 3px; overflow-wrap: anywhere; }
td.nowrap { white-space: nowrap; overflow-wrap: normal; }
.sev-error { color: var(--fail); font-weight: 600; } .sev-warning { color: var(--warn); }
.sev-info { color: var(--muted); }
.strip { display: flex; gap: 6px; overflow-x: auto; padding-bottom: 6px; }
.strip.wrap { flex-wrap: wrap; }
figure { margin: 0; flex: none; }
.frame { position: relative; display: inline-block; line-height: 0; }
.frame img { height: 160px; width: auto; display: block; }
.frame.ref img { outline: 3px solid #1565c0; }
.box { position: absolute; border: 2px solid #ffd54f; }
.box.target { border: 3px solid #00c853; }
figcaption { font-size: 0.85em; color: var(--muted); text-align: center; }
.row { display: flex; align-items: center; gap: 6px; margin: 3px 0; }
.label { flex: 0 0 6.5em; font-size: 0.85em; color: var(--muted); }
.track { position: relative; flex: 1; height: 24px; background: #f3f3f3; border-radius: 3px;
  overflow: hidden; }
.track.tall { height: 80px; }
.seg { position: absolute; top: 0; bottom: 0; color: #fff; font-size: 12px; line-height: 24px;
  padding-left: 4px; overflow: hidden; white-space: nowrap; }
.seg.cut { background: repeating-linear-gradient(45deg, rgba(229,57,53,.35) 0 6px,
  transparent 6px 12px); border-left: 2px solid #e53935; }
.wave { position: absolute; inset: 0; width: 100%; height: 100%; }
.axis { position: relative; flex: 1; height: 20px; border-top: 1px solid #777;
  font-size: 12px; color: #555; }
.axis span { position: absolute; top: 2px; transform: translateX(-50%); white-space: nowrap; }
.axis span.start { transform: none; }
.axis span.end { transform: translateX(-100%); }
.legend span { display: inline-block; margin-right: 10px; font-size: 0.9em; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: -1px; border-radius: 2px; }
@media (max-width: 640px) {
  thead { display: none; }
  table, tbody, tr, td { display: block; width: 100%; }
  tr { border-bottom: 1px solid #ccc; padding: 4px 0; }
  td { border: 0; padding: 2px 0; }
  td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); }
  td:empty { display: none; }
  .axis span.minor { display: none; }
}
"""

_IMAGES_LOADED = """
addEventListener("load", function () {
  var all = document.images, loaded = 0;
  for (var i = 0; i < all.length; i++) {
    if (all[i].complete && all[i].naturalWidth > 0) loaded++;
  }
  document.body.setAttribute("data-images", loaded + "/" + all.length);
});
"""
"""Writes `loaded/all` of the page's images into `<body data-images>` once the page has
loaded: what a test (or a curious reader) can check that every picture decoded."""


HEAD = "<!DOCTYPE html>\n<!-- written by retalk: its next run replaces it -->\n"
"""How every page retalk writes begins: what tells a page it may replace from any other file."""
_KINDS = (
    (stat.S_ISDIR, "is a folder"),
    (stat.S_ISLNK, "is a symbolic link: give the path of the file it points to"),
    (stat.S_ISFIFO, "is a FIFO, not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


def refusal(path: str | os.PathLike[str], *, force: bool = False) -> str | None:
    """Why a page may not be written at `path`, or None when it may: nothing is there, or an
    empty file, or a page retalk wrote (any regular file with `force`). Anything that is not
    a regular file (a folder, a link, a FIFO, a device, a socket) is refused, `force` or
    not: replacing it would remove a device node or a link, not write a page."""
    try:
        found = os.lstat(path)
    except OSError:
        return None  # nothing there; or a folder not entered, which the write will say
    for kind, what in _KINDS:
        if kind(found.st_mode):
            return what
    if not stat.S_ISREG(found.st_mode):
        return "is not a regular file"
    if force or found.st_size == 0 or _begins_as_a_page(path):
        return None
    return "is not a page retalk wrote (--force replaces it)"


def _begins_as_a_page(path: str | os.PathLike[str]) -> bool:
    head = HEAD.encode()
    try:
        # O_NONBLOCK: a FIFO put there since the lstat is not waited on.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as stream:
        return stream.read(len(head)) == head


def text(value: object) -> str:
    """Outside text (a file name, a message) as HTML text: control characters escaped as the
    text report does, then `<`, `>`, `&` and quotes."""
    return html.escape(printable(str(value)), quote=True)


def seconds(value: float) -> str:
    """`1.0 s`: times on the page, in seconds with one decimal."""
    return f"{value:.1f} s"


def page(title: str, body: str) -> str:
    """A whole HTML document around `body` (already HTML)."""
    return (
        f'{HEAD}<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body data-images="pending">\n{body}\n<script>{_IMAGES_LOADED}</script>\n'
        "</body>\n</html>\n"
    )


def write_atomically(path: str | os.PathLike[str], content: str, *, force: bool = False) -> None:
    """`content` written to `path` through a temporary file beside it, renamed into place: a
    reader sees the old page or the new one, never half of one. Raises OSError; a
    FileExistsError, whose `strerror` says why, when `refusal` refuses the path (looked at
    again just before the rename)."""
    target = Path(path)
    _refuse(target, force)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(temporary, 0o644)
        _refuse(target, force)  # what may have been put there while the page was made
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _refuse(target: Path, force: bool) -> None:
    why = refusal(target, force=force)
    if why is not None:
        raise FileExistsError(errno.EEXIST, why, str(target))
