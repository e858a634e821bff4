"""What a new user met reading `check --html`'s page: files longer than what is analysed, the
findings' order, the table and the time axes at a desktop's and a phone's width, a wide
reference photo, an alpha PNG, a still clip's timeline, pauses too short to count; and a
batch's page on a phone. Read in headless chromium as tests/test_html.py does."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fixtures.recipes import scene
from retalk.emulator import Emulator
from tests.support import service_env
from tests.test_html import RETALK, _browse, body, chromium, dom, words

__all__ = ["chromium"]  # the fixture, shared with tests/test_html.py

_LAYOUT = """<script>addEventListener("load", function () {
  var broken = [], overlaps = [], empty = 0;
  // A label or a file name's piece (between its <wbr>s) over two lines: broken mid-word.
  document.querySelectorAll("th, td.file, td.nowrap").forEach(function (cell) {
    var walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), node;
    while ((node = walk.nextNode())) {
      if (!node.data.trim()) continue;
      var range = document.createRange(), tops = {};
      range.selectNodeContents(node);
      Array.prototype.forEach.call(range.getClientRects(), function (r) {
        if (r.width > 0) tops[Math.round(r.top)] = 1;
      });
      if (Object.keys(tops).length > 1) broken.push(node.data);
    }
  });
  // Time-axis labels shown that run into each other.
  document.querySelectorAll(".axis").forEach(function (axis) {
    var shown = Array.prototype.filter.call(axis.children, function (s) {
      return getComputedStyle(s).display != "none";
    });
    for (var i = 1; i < shown.length; i++) {
      var a = shown[i - 1].getBoundingClientRect(), b = shown[i].getBoundingClientRect();
      if (b.left < a.right + 2)
        overlaps.push(shown[i - 1].textContent + "|" + shown[i].textContent);
    }
  });
  // Table cells shown with nothing in them (a label and no value, on a phone).
  document.querySelectorAll("td[data-label]").forEach(function (cell) {
    if (!cell.textContent.trim() && getComputedStyle(cell).display != "none") empty++;
  });
  var said = JSON.stringify({broken: broken, overlaps: overlaps, empty: empty});
  document.body.setAttribute("data-layout", said);
  if (parent !== window) parent.postMessage(said, "*");
});</script>"""
"""Added to a copy of a page by the tests only: what of its layout went wrong."""
_PHONE = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="probed.html" style="width:390px;height:6000px;border:0"></iframe>
<script>addEventListener("message", function (e) {
  document.body.setAttribute("data-layout", e.data);
});</script></body></html>"""


def layout(chromium: str, page: Path, width: int) -> dict[str, object]:
    """How `page` lays out `width` pixels wide (390: a phone's screen, in a frame)."""
    folder = page.parent
    probed = folder / "probed.html"
    probed.write_text(page.read_text().replace("</body>", _LAYOUT + "</body>"))
    shown = probed
    if width < 500:  # headless chromium's window is at least 500 px wide
        shown = folder / "phone.html"
        shown.write_text(_PHONE)
    dumped = _browse(
        chromium, "--virtual-time-budget=5000", "--dump-dom", shown.as_uri(), width=width
    )
    found: dict[str, object] = json.loads(html.unescape(body(dumped, "data-layout")))
    return found


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def long_page(
    media: Path, chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], str]:
    """One page of what the new user checked: a 130 s clip and a 130 s tone (their first
    125 s analysed), a quiet speech (a warning), a 3:1 photo with a face and a PNG whose
    transparent corner hides black; with the same check's JSON."""
    folder = tmp_path_factory.mktemp("long")
    clip, tone = folder / "long130.mp4", folder / "tone130.wav"
    _ffmpeg("-stream_loop", "-1", "-i", str(media / "face.mp4"), "-t", "130", "-c", "copy",
            str(clip))  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "sine=f=300:d=130:sample_rate=16000", str(tone))
    wide = folder / "wide.jpg"
    scene(3000, 1000, ("astronaut", 0.8, 0.5, 0.5)).save(wide)
    alpha = scene(800, 800, ("astronaut", 0.5, 0.5, 0.5)).convert("RGBA")
    for x in range(200):
        for y in range(200):
            alpha.putpixel((x, y), (0, 0, 0, 0))  # a transparent corner: black, hidden
    alpha.save(folder / "alpha.png")
    page = folder / "page.html"
    # Names as a user gives them, relative: the layout must not depend on where pytest's
    # folders are (a long absolute path under xdist's `popen-gw1/` breaks the File column).
    shutil.copyfile(media / "quiet-speech.wav", folder / "quiet-speech.wav")
    files = ["long130.mp4", "tone130.wav", "quiet-speech.wav", "wide.jpg", "alpha.png"]
    done = subprocess.run(
        [RETALK, "check", *files, "--format", "json", "--html", str(page)],
        capture_output=True, text=True, timeout=180, cwd=folder,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return page, json.loads(done.stdout), dom(chromium, page)


def test_a_long_file_says_what_part_was_analysed(
    long_page: tuple[Path, dict[str, Any], str],
) -> None:
    _, report, dumped = long_page
    said = words(dumped)
    assert (
        said.count(
            "Analysed: the first 125.0 s of 130.0 s — the service takes 120 s; the rest, hatched "
            "grey, was not analysed."
        )
        == 2
    )
    # The rest of the clip is neither absent nor a pause: not analysed, drawn hatched.
    assert "The target face: frontal 0.0–125.0 s; not analysed 125.0–130.0 s." in said
    assert "Pauses of 0.5 s or more (in the first 125.0 s): 0.0–125.0 s." in said
    assert dumped.count('title="not analysed 125.0–130.0 s"') == 2
    # The axes run to the files' ends.
    assert re.search(r'<span class="end[^"]*" style="left:9\d\.\d\d%">120 s</span>', dumped)
    # The check's own words say it too.
    (quiet,) = [f for f in report["findings"] if f["code"] == "Audio.NoSpeech"]
    assert quiet["message"].startswith("0.0 s of speech in the first 125.0 s of 130.0 s:")
    assert quiet["message"] in said


def test_errors_come_first(long_page: tuple[Path, dict[str, Any], str]) -> None:
    _, report, dumped = long_page
    shown = re.findall(r'class="nowrap sev-(\w+)"', dumped)
    assert set(shown) == {"error", "warning"}
    assert shown == sorted(shown, key=["error", "warning", "info"].index)
    codes = sorted(f["code"] for f in report["findings"])
    assert codes[0].startswith("Audio.")  # by code, a warning would have come first


def test_each_file_says_its_role_once(long_page: tuple[Path, dict[str, Any], str]) -> None:
    said = words(long_page[2])
    assert "video: MP4, h264" in said and "audio: WAV audio" in said
    assert "reference image: JPEG image, 3000x1000" in said
    assert "video: video" not in said and "audio: audio" not in said
    assert "reference image: image" not in said


def _pictures(dumped: str, caption: str) -> list[tuple[int, int, bytes]]:
    """The images captioned `caption`: their width and height as drawn, their JPEG."""
    found = []
    for tag in re.findall(rf'<img [^>]*alt="{re.escape(caption)}"[^>]*>', dumped):
        jpeg = base64.b64decode(re.search(r"base64,([^\"]+)", tag).group(1))  # type: ignore[union-attr]
        size = re.search(r"width:(\d+)px;height:(\d+)px", tag) or re.search(
            r'width="(\d+)" height="(\d+)"', tag
        )
        assert size, tag
        found.append((int(size.group(1)), int(size.group(2)), jpeg))
    return found


def test_a_photo_is_shown_by_its_face_and_small_whole(
    long_page: tuple[Path, dict[str, Any], str],
) -> None:
    from PIL import Image

    dumped = long_page[2]
    faces, wholes = (
        _pictures(dumped, "the largest face, closer"),
        _pictures(dumped, "the whole image"),
    )
    assert len(faces) == len(wholes) == 2  # the wide photo and the PNG
    for _, _, jpeg in faces:
        with Image.open(io.BytesIO(jpeg)) as face:
            assert face.height == 160 and face.width < 300  # the face, not the 3:1 photo
    assert all(width <= 320 and height <= 160 for width, height, _ in wholes)
    assert (320, 107) in [(w, h) for w, h, _ in wholes]  # 3000x1000, small
    assert dumped.count('<div class="strip wrap">') == 2  # on a phone, the photo under its face


def test_transparent_pixels_are_white(long_page: tuple[Path, dict[str, Any], str]) -> None:
    from PIL import Image

    png = [jpeg for w, h, jpeg in _pictures(long_page[2], "the whole image") if w == h]
    (jpeg,) = png
    with Image.open(io.BytesIO(jpeg)) as whole:
        corner = whole.convert("RGB").getpixel((5, 5))
    assert isinstance(corner, tuple) and min(corner) > 240, corner


def test_pauses_say_their_least_length(long_page: tuple[Path, dict[str, Any], str]) -> None:
    said = words(long_page[2])
    assert re.search(r"Pauses of 0\.5 s or more: (none|\d)", said)
    assert "Pauses: " not in said


def test_a_desktop_and_a_phone_lay_it_out(
    long_page: tuple[Path, dict[str, Any], str], chromium: str, tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    page.write_text(long_page[0].read_text())
    wide = layout(chromium, page, 1280)
    assert wide["broken"] == [] and wide["overlaps"] == [], wide
    phone = layout(chromium, page, 390)
    assert phone["overlaps"] == [], phone
    assert 'class="minor"' in long_page[0].read_text()  # every other tick, hidden on a phone


def test_a_still_clip_is_frontal_throughout() -> None:
    """A glance between analysed frames (`found`: the face there, its pose not read) takes
    the pose around it."""
    from retalk.preflight.visuals import Stretch, _joined, _posed

    seen = [
        Stretch(0, 1, "frontal"),
        Stretch(1, 2, "found"),
        Stretch(2, 3, "frontal"),
        Stretch(3, 4, "found"),
        Stretch(4, 5, "turned"),
        Stretch(5, 6, "found"),
        Stretch(6, 7, "absent"),
        Stretch(7, 8, "found"),
    ]
    assert _joined(_posed(seen)) == (
        Stretch(0, 3, "frontal"),
        Stretch(3, 4, "found"),  # between frontal and turned: not guessed
        Stretch(4, 5, "turned"),
        Stretch(5, 6, "found"),
        Stretch(6, 7, "absent"),
        Stretch(7, 8, "found"),  # after an absence: not guessed
    )


def test_a_batch_page_on_a_phone(media: Path, tmp_path: Path, chromium: str) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for name, source in (("talk.mp4", "good.mp4"), ("talk.wav", "speech.wav")):
        (folder / name).write_bytes((media / source).read_bytes())
    (folder / "slow.mp4").write_bytes((media / "fps12.mp4").read_bytes())
    (folder / "face.png").write_bytes((media / "astronaut.png").read_bytes())
    manifest = folder / "jobs.csv"
    manifest.write_text(
        "video,audio,ref,name\ntalk.mp4,talk.wav,face.png,one\nslow.mp4,talk.wav,,\n"
    )
    out = folder / "out"
    key = "sk-retalk-html-2"
    with Emulator(api_key=key, pending_s=0.0, running_s=0.1, storage=tmp_path / "emu") as emulator:
        subprocess.run(
            [RETALK, "batch", str(manifest), "--output-dir", str(out), "--no-content"],
            env=service_env(emulator.base_url, key), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    page = out / "report.html"
    said = words(dom(chromium, page))
    assert "../talk.mp4 + ../talk.wav + ../face.png" in said
    assert said.count("s billed") == 1  # the summary line holds the bill
    assert layout(chromium, page, 390)["empty"] == 0  # the failed job's Task, Billed: hidden
