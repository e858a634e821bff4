"""`retalk check --html` and a batch's `report.html`, read by a real browser: Debian's chromium,
headless, gives the page's DOM after its scripts ran (`--dump-dom`) and a screenshot at a
phone's width. The tests read what the page says (codes, verdict, times, the job's forecast),
that its images decoded (a marker the page's script writes, which a broken image changes) and
that nothing in it points at the network."""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest

from fixtures.recipes import scene
from retalk.emulator import Emulator
from retalk.findings import Report
from retalk.preflight.visuals import MediaView
from tests.support import service_env

Run = Callable[..., subprocess.CompletedProcess[str]]
RETALK = str(Path(sys.executable).with_name("retalk"))
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_PROBE = """<script>addEventListener("load", function () {
  var strip = document.querySelector(".strip"), box = strip && strip.getBoundingClientRect();
  parent.postMessage([document.documentElement.scrollWidth, innerWidth,
                      box ? box.top : -1, box ? box.bottom : -1].join(","), "*");
});</script>"""
"""Added to a copy of a page by the tests only: tells the frame around it the page's width as
laid out, the window's, and where its strip of frames is."""
_PHONE = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="probed.html" style="width:390px;height:4000px;border:0"></iframe>
<script>addEventListener("message", function (e) {
  document.body.setAttribute("data-probe", e.data);
});</script></body></html>"""
"""A phone's 390 px screen: headless chromium's window is at least 500 px wide."""


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is missing: `make setup` installs it (Debian's chromium package)")
    return found


def _browse(chromium: str, *args: str, width: int = 390, height: int = 2000) -> str:
    with tempfile.TemporaryDirectory(prefix="retalk-chromium-") as profile:
        done = subprocess.run(
            [chromium, *_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             *args],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dom(chromium: str, page: Path) -> str:
    """The page's DOM once loaded, its scripts run."""
    return _browse(chromium, "--virtual-time-budget=5000", "--dump-dom", page.absolute().as_uri())


def body(dumped: str, name: str) -> str:
    found = re.search(rf'<body[^>]*\s{name}="([^"]*)"', dumped)
    assert found, dumped[:500]
    return found.group(1)


def words(dumped: str) -> str:
    """The page's text: tags out, entities read, spaces joined."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dumped)).split())


@pytest.fixture(scope="session")
def gap_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of the astronaut at 25 fps, gone from 1.0 s to 2.0 s (the frames of 1.00 to 1.96 s);
    no B-frames, so that every frame can be sampled (a face scan skips non-reference ones)."""
    folder = tmp_path_factory.mktemp("gap")
    face, out = folder / "face.png", folder / "gap.mp4"
    scene(360, 360, ("astronaut", 0.5, 0.45, 0.6)).save(face)
    graph = "[0][1]overlay=x=(W-w)/2:y=(H-h)/2:enable='not(between(t,0.999,1.999))',format=yuv420p"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x606060:s=1280x720:r=25:d=3",
         "-loop", "1", "-framerate", "25", "-t", "3", "-i", str(face), "-filter_complex", graph,
         "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25", "-t", "3", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def job_page(
    gap_clip: Path, media: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, object], str]:
    """The job page of the gap clip, a speech with a pause (9.6 s: cut to 3 s) and the
    astronaut's photo, with the same check's JSON and text verdict. The project's policy asks
    for 30 frames analysed (one every 0.1 s), so that the gap's ends are found within 0.05 s
    (with 24, one every 0.125 s, the keyframe at 1.0 s stands for 0.94 s: a gap from 0.9 s).
    Made once for the whole run: under pytest-xdist the first worker to ask makes it, in the
    run's shared temporary folder, while the others wait on a lock."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's (`popen-gw0` …)
    folder = shared / "html-job-page"
    folder.mkdir(exist_ok=True)
    page, made = folder / "report.html", folder / "made.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not made.exists():
            (folder / ".retalk.toml").write_text("face-samples = 30\n")
            job = ["--video", str(gap_clip), "--audio", str(media / "speech-pause.wav")]
            job += ["--ref", str(media / "astronaut.png")]
            done = subprocess.run(
                [RETALK, "check", *job, "--format", "json", "--html", str(page)],
                capture_output=True, text=True, timeout=120, cwd=folder,
            )  # fmt: skip
            assert done.returncode in (0, 1), done.stderr
            text = subprocess.run(
                [RETALK, "check", *job], capture_output=True, text=True, timeout=120, cwd=folder
            ).stdout
            made.write_text(json.dumps([json.loads(done.stdout), text.strip().splitlines()[-1]]))
    report, verdict = json.loads(made.read_text())
    return page, report, verdict


def test_the_job_page_says_what_the_check_says(
    job_page: tuple[Path, dict[str, object], str], chromium: str
) -> None:
    page, report, verdict = job_page
    dumped = dom(chromium, page)
    said = words(dumped)
    assert verdict.startswith(("OK", "FAIL")) and verdict in said
    findings = report["findings"]
    assert isinstance(findings, list) and findings
    for f in findings:
        assert f["code"] in said and html.unescape(f["message"]) in said
    assert "Job.Truncated" in said and "Face.Gaps" in said
    # The face lost from 1.0 to 2.0 s, on the timeline and in its words.
    assert "absent 1.0–2.0 s" in said
    assert "frontal 0.0–1.0 s" in said and "frontal 2.0–3.0 s" in said
    # The speech's times as the check measured them.
    (audio,) = [i for i in report["inputs"] if i["role"] == "audio"]  # type: ignore[union-attr]
    spans = audio["facts"]["speech"]["speech"]
    assert spans and f"Speech: {', '.join(f'{a:.1f}–{b:.1f} s' for a, b in spans)}." in said
    # The forecast: the audio after the video's 3 s is cut, 3 s billed.
    job = report["job"]
    assert isinstance(job, dict)
    assert job["output_duration"] == pytest.approx(3.0, abs=0.05)
    assert (
        f"Output {job['output_duration']:.1f} s, billed {job['billable_seconds']:.1f} s, "
        f"≈ {job['cost_cny']:.2f} CNY" in said
    )
    assert f"The audio from 3.0 s to {job['audio_duration']:.1f} s is cut" in said
    # Every image decoded: the 30 frames analysed and the reference photo's face (beside the
    # strip and in its own section, with the whole photo there).
    images = len(re.findall(r"<img ", page.read_text()))
    assert images == 30 + 3
    assert said.count("reference face") == 2 and "the largest face, closer" in said
    assert body(dumped, "data-images") == f"{images}/{images}"


def test_a_broken_image_changes_the_marker(
    job_page: tuple[Path, dict[str, object], str], chromium: str, tmp_path: Path
) -> None:
    page = job_page[0].read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(page.replace("data:image/jpeg;base64,", "data:image/jpeg;base64,AAAA", 1))
    images = page.count("<img ")
    assert body(dom(chromium, broken), "data-images") == f"{images - 1}/{images}"


def test_the_page_asks_the_network_nothing(job_page: tuple[Path, dict[str, object], str]) -> None:
    data = job_page[0].read_bytes()
    assert re.search(rb"https?:", data) is None
    links = re.findall(rb"""(?:src|href)=["']([^"']*)""", data)
    assert links and all(link.startswith(b"data:image/jpeg;base64,") for link in links)
    assert b"@import" not in data and b"url(" not in data


def test_a_phone_shows_it_without_sideways_scrolling(
    job_page: tuple[Path, dict[str, object], str], chromium: str, tmp_path: Path
) -> None:
    (tmp_path / "probed.html").write_text(
        job_page[0].read_text().replace("</body>", _PROBE + "</body>")
    )
    phone = tmp_path / "phone.html"
    phone.write_text(_PHONE)
    dumped = _browse(chromium, "--virtual-time-budget=5000", "--dump-dom", phone.as_uri())
    width, window, top, bottom = (round(float(v)) for v in body(dumped, "data-probe").split(","))
    assert window == 390 and width <= window  # nothing wider than the screen
    assert bottom - top >= 160  # the strip of frames, 160 px high, is there
    shot = tmp_path / "phone.png"
    _browse(chromium, f"--screenshot={shot}", phone.as_uri(), height=bottom + 20)
    from PIL import Image

    with Image.open(shot) as picture:
        assert picture.width == 390
        shown = picture.convert("RGB")
        strip = shown.crop((0, top, 390, bottom)).getcolors(maxcolors=1 << 20) or []
        heading = shown.crop((0, 0, 390, 40)).getcolors(maxcolors=1 << 20) or []
    assert len(strip) > 500, "the strip's region is blank"
    assert len(strip) > 5 * len(heading)


def test_a_hostile_name_is_text(media: Path, tmp_path: Path, chromium: str, run: Run) -> None:
    hostile = tmp_path / "<img src=x onerror=alert(1)>.mp4"
    shutil.copy(media / "fps12.mp4", hostile)
    page = tmp_path / "page.html"
    done = run("check", "--no-content", "--html", str(page), "--", str(hostile))
    assert done.returncode == 1, done.stderr
    raw = page.read_text()
    assert "<img src=x" not in raw and "&lt;img src=x onerror=alert(1)&gt;.mp4" in raw
    dumped = dom(chromium, page)
    assert body(dumped, "data-images") == "0/0"  # no element was made of the name
    said = words(dumped)
    assert "<img src=x onerror=alert(1)>.mp4" in said
    assert "InvalidFile.FPS" in said
    assert "faces and speech were not analysed" in said


def test_several_files_one_page_a_section_each(
    media: Path, tmp_path: Path, chromium: str, run: Run
) -> None:
    page = tmp_path / "many.html"
    done = run("check", str(media / "face.mp4"), str(media / "speech.wav"), "--html", str(page))
    assert done.returncode == 0, done.stdout + done.stderr
    dumped = dom(chromium, page)
    said = words(dumped)
    assert dumped.count('<section class="input">') == 2
    assert "OK: the service would accept all 2 files" in said
    assert "The target face: frontal 0.0–3.0 s." in said
    assert re.search(r"Speech: \d+\.\d–\d+\.\d s", said)
    assert '<svg class="wave"' in dumped  # the waveform's peaks
    assert body(dumped, "data-images") == "24/24"


def test_video_extension_plays_the_video_back_and_forth(
    gap_clip: Path, media: Path, tmp_path: Path, chromium: str, run: Run
) -> None:
    page = tmp_path / "extended.html"
    done = run(
        "check", "--video", str(gap_clip), "--audio", str(media / "speech-pause.wav"),
        "--video-extension", "--no-content", "--html", str(page),
    )  # fmt: skip
    said = words(dom(chromium, page))
    assert done.returncode in (0, 1), done.stderr
    assert (
        "The video plays 4 times to cover the audio (video_extension): forward 0.0–3.0 s, "
        "backward 3.0–6.0 s, forward 6.0–9.0 s, backward 9.0–9.6 s." in said
    )
    assert "Output 9.6 s, billed 9.6 s, ≈ 0.77 CNY" in said


def test_a_page_where_it_cannot_go_is_a_usage_error(media: Path, tmp_path: Path, run: Run) -> None:
    clip = tmp_path / "clip.mp4"
    shutil.copy(media / "good.mp4", clip)
    before = clip.read_bytes()
    fifo, link, other = tmp_path / "fifo.html", tmp_path / "link.html", tmp_path / "other.html"
    os.mkfifo(fifo)
    other.write_text("<p>a page of someone else's</p>")
    link.symlink_to(other)
    cases = [
        (tmp_path / "missing" / "page.html", "no folder"),
        (tmp_path, "is a folder"),
        (clip, "is an input of the check"),
        (fifo, "is a FIFO, not a regular file"),
        (link, "is a symbolic link: give the path of the file it points to"),
    ]
    if os.geteuid() == 0:  # a device node of our own: /dev/null's numbers, in tmp_path
        device = tmp_path / "null.html"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        cases.append((device, "is a character device, not a regular file"))
    for target, said in cases:
        for force in ([], ["--force"]):
            done = run("check", "--no-content", *force, "--html", str(target), str(clip))
            assert done.returncode == 2, (target, done.stdout, done.stderr)
            assert said in done.stderr and "Traceback" not in done.stderr
            assert done.stdout == ""  # refused before any check
    assert clip.read_bytes() == before
    assert not (tmp_path / "missing").exists()
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    assert other.read_text() == "<p>a page of someone else's</p>"
    if os.geteuid() == 0:
        assert stat.S_ISCHR(device.lstat().st_mode)


def test_a_page_over_a_file_found_in_a_folder_is_refused(
    media: Path, tmp_path: Path, run: Run
) -> None:
    """The inputs are the files found under the folders given, not only the arguments; another
    name of one (a hard link) is that file too."""
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(media / "good.mp4", folder / "clip.mp4")
    os.link(folder / "clip.mp4", tmp_path / "linked.html")
    before = (folder / "clip.mp4").read_bytes()
    for page, cwd in (("clip.mp4", folder), ("linked.html", tmp_path)):
        for force in ([], ["--force"]):
            done = run("check", "--no-content", *force, "--html", page, str(folder), cwd=cwd)
            assert done.returncode == 2, (page, done.stdout, done.stderr)
            assert f"{page} is an input of the check" in done.stderr
    assert (folder / "clip.mp4").read_bytes() == before


def test_only_a_page_retalk_wrote_is_replaced_without_force(
    media: Path, tmp_path: Path, run: Run
) -> None:
    notes, empty = tmp_path / "notes.html", tmp_path / "empty.html"
    notes.write_text("<p>my notes</p>")
    empty.touch()
    clip = str(media / "good.mp4")
    done = run("check", "--no-content", "--html", str(notes), clip)
    assert done.returncode == 2
    assert "is not a page retalk wrote (--force replaces it)" in done.stderr
    assert notes.read_text() == "<p>my notes</p>"
    for page, force in ((empty, []), (notes, ["--force"]), (notes, [])):  # then its own page
        done = run("check", "--no-content", *force, "--html", str(page), clip)
        assert done.returncode == 0, (page, done.stderr)
        assert "<!-- written by retalk" in page.read_text()
    done = run("check", "--no-content", "--force", clip)
    assert done.returncode == 2 and "--force belongs with --html" in done.stderr


def test_a_fifo_put_there_during_the_check_is_not_replaced(tmp_path: Path) -> None:
    """The path is looked at again just before the rename."""
    from retalk.report.page import write_atomically

    fifo = tmp_path / "page.html"
    os.mkfifo(fifo)
    with pytest.raises(FileExistsError, match="is a FIFO"):
        write_atomically(fifo, "<p>page</p>")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and os.listdir(tmp_path) == ["page.html"]


def test_the_page_is_replaced_whole(media: Path, tmp_path: Path, run: Run) -> None:
    """Written beside and renamed over: a link to the old page keeps the old page."""
    page, old = tmp_path / "page.html", tmp_path / "old.html"
    done = run("check", "--no-content", "--html", str(page), str(media / "fps12.mp4"))
    assert done.returncode == 1, done.stderr
    first = page.read_text()
    os.link(page, old)
    done = run("check", "--no-content", "--html", str(page), str(media / "good.mp4"))
    assert done.returncode == 0, done.stderr
    assert old.read_text() == first and "InvalidFile.FPS" in first
    assert "InvalidFile.FPS" not in page.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.html", "page.html"]


def test_nothing_is_kept_without_a_page(media: Path) -> None:
    from retalk.preflight.check import inspect

    plain = inspect(str(media / "face.mp4"), "video")[0]
    kept = inspect(str(media / "face.mp4"), "video", visuals=True)[0]
    assert plain.faces is not None and plain.faces.thumbnails == ()
    assert kept.faces is not None and len(kept.faces.thumbnails) == 24
    assert all(t.height == 160 and t.jpeg[:2] == b"\xff\xd8" for t in kept.faces.thumbnails)
    heard = inspect(str(media / "speech.wav"), "audio")[0]
    assert heard.speech is not None and heard.speech.peaks == ()


def test_a_batch_writes_its_page(
    media: Path, tmp_path: Path, chromium: str, gap_clip: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(media / "good.mp4", folder / "talk.mp4")
    shutil.copy(media / "speech.wav", folder / "talk.wav")
    shutil.copy(media / "fps12.mp4", folder / "slow.mp4")
    manifest = folder / "jobs.csv"
    manifest.write_text("video,audio,name\ntalk.mp4,talk.wav,good <b>one</b>\nslow.mp4,talk.wav,\n")
    out = folder / "out"
    key = "sk-retalk-html-1"
    with Emulator(api_key=key, pending_s=0.0, running_s=0.1, storage=tmp_path / "emu") as emulator:
        done = subprocess.run(
            [RETALK, "batch", str(manifest), "--output-dir", str(out), "--no-content"],
            env=service_env(emulator.base_url, key), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # the 12 fps job failed
    page = out / "report.html"
    dumped = dom(chromium, page)
    said = words(dumped)
    assert re.findall(r'<tr class="job" data-state="(\w+)"', dumped) == ["done", "failed"]
    assert "good <b>one</b>" in said and "<b>one</b>" not in dumped
    assert "InvalidFile.FPS" in said and "1 of 2 done" in said
    (link,) = re.findall(r'<a href="([^"]+)"', dumped)
    assert (out / unquote(html.unescape(link))).is_file() and link.endswith(".mp4")
    assert not os.path.isabs(link)


def test_a_batch_leaves_a_fifo_named_like_its_page(media: Path, tmp_path: Path) -> None:
    """The batch's outcome does not depend on its page: a note on stderr, the FIFO kept."""
    shutil.copy(media / "good.mp4", tmp_path / "talk.mp4")
    shutil.copy(media / "speech.wav", tmp_path / "talk.wav")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("video,audio\ntalk.mp4,talk.wav\n")
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "report.html")
    key = "sk-retalk-html-2"
    with Emulator(api_key=key, pending_s=0.0, running_s=0.1, storage=tmp_path / "emu") as emulator:
        done = subprocess.run(
            [RETALK, "batch", str(manifest), "--output-dir", str(out), "--no-content"],
            env=service_env(emulator.base_url, key), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"cannot write {out / 'report.html'}: is a FIFO, not a regular file" in done.stderr
    assert stat.S_ISFIFO((out / "report.html").lstat().st_mode)


@pytest.fixture(scope="module")
def three_clips_and_a_speech(
    media: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Report, dict[str, MediaView]]:
    """A real check of three videos (copies of one) and a speech, with what the page draws."""
    from retalk.preflight import check_paths

    folder = tmp_path_factory.mktemp("budget")
    paths = [folder / f"{name}.mp4" for name in ("a", "b", "c")] + [folder / "d.wav"]
    for path in paths[:3]:
        shutil.copy(media / "face.mp4", path)
    shutil.copy(media / "speech.wav", paths[3])
    views: dict[str, MediaView] = {}
    return check_paths(paths, views=views), views


def test_the_pictures_of_the_first_files_only_within_the_budget(
    three_clips_and_a_speech: tuple[Report, dict[str, MediaView]], chromium: str, tmp_path: Path
) -> None:
    from retalk.report.html import _pictures, drawn, render_html

    report, views = three_clips_and_a_speech
    a, b, c, d = (i.path for i in report.inputs)
    cost = {path: _pictures(views[path]) for path in (a, b, c, d)}
    assert cost[a] > 50_000 and 5_000 < cost[d] < 30_000  # 24 frames; 600 bars
    assert drawn(report.inputs, views) == {a, b, c, d}
    budget = cost[a] + cost[b] + cost[c] - 1
    assert drawn(report.inputs, views, budget) == {a, b}
    assert drawn(report.inputs, views, cost[a] - 1) == set()
    page = tmp_path / "page.html"
    page.write_text(render_html(report, views, pictures_budget=budget))
    dumped = dom(chromium, page)
    said = words(dumped)
    assert body(dumped, "data-images") == "48/48"  # a's and b's frames only
    assert "The frames and waveforms of 2 files are not drawn" in said
    assert said.count("Its frames and waveform are not drawn") == 2  # c and d
    assert said.count("The target face: frontal 0.0–3.0 s.") == 3  # every timeline
    assert re.search(r"Speech: \d+\.\d–\d+\.\d s", said) and '<svg class="wave"' not in dumped


def test_a_thousand_files_make_a_page_of_bounded_size(
    three_clips_and_a_speech: tuple[Report, dict[str, MediaView]],
) -> None:
    """The report of a thousand videos (one real view under a thousand names): the frames of
    the first fit in the budget, the page stays about that size."""
    from dataclasses import replace

    from retalk.report.html import PICTURES_BUDGET, _pictures, render_html

    report, views = three_clips_and_a_speech
    first = report.inputs[0]
    inputs = tuple(replace(first, path=f"clip-{n:04}.mp4") for n in range(1000))
    many = {i.path: replace(views[first.path], path=i.path) for i in inputs}
    page = render_html(Report(inputs=inputs), many)
    fit = PICTURES_BUDGET // _pictures(views[first.path])
    assert page.count("<img ") == fit * 24 and 30 < fit < 60
    assert "The frames and waveforms of " + f"{1000 - fit} files are not drawn" in page
    assert len(page.encode()) < PICTURES_BUDGET + 1000 * 2_000  # measured: 9.1 MB
