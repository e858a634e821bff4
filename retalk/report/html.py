"""`retalk check --html`: the check as one self-contained page.

The verdict (the text report's words), the findings table, then a section per input: the
frames the face scan analysed with their faces boxed (the target apart), a timeline of where
the target is found, the audio's waveform with its speech and pauses, and for a job the
forecast on one time axis with the speech: what part of the audio is cut, or how the video is
played forward and back to cover it, and the bill.

Unlike the other renderers it draws more than the `Report`: `views` holds what the gather kept
for it (`retalk.preflight.visuals.MediaView`, by path). Without a view a section shows the
facts and findings only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from retalk import limits
from retalk.codes import Severity
from retalk.findings import Finding, Input, Report
from retalk.preflight.visuals import MediaView, Shot, Stretch
from retalk.report.options import RenderOptions
from retalk.report.page import page, seconds, text
from retalk.report.text import summary, verdict

PICTURES_BUDGET = 8 * 1024 * 1024
"""Bytes of pictures a page holds at most: the frames (as `data:` URIs) and waveforms (SVG) of
the first files that fit are drawn, the later files' are not (a video's 24 frames take about
170 KB, an audio's waveform 15 KB). Every file's findings, face timeline and speech are shown
whatever it holds."""
_WIDTH = 1000
"""Width of every time axis, in SVG units (drawn at the page's width)."""
_STATES = {
    "frontal": ("#43a047", "frontal"),
    "found": ("#a5d6a7", "found (pose not read)"),
    "turned": ("#fb8c00", "turned"),
    "small": ("#fdd835", "small"),
    "absent": ("#e53935", "absent"),
}
"""A timeline state: its colour and its words."""
_SPEECH, _SPEECH_BG, _PAUSE, _CUT = "#1e88e5", "#e3f2fd", "#cfd8dc", "#e53935"
_NOT_ANALYSED = "repeating-linear-gradient(45deg, #bdbdbd 0 4px, #eeeeee 4px 8px)"
_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
"""Findings on the page: errors first, then warnings, then facts."""
_KIND_OF_ROLE = {"video": "video", "audio": "audio", "ref": "image"}
_FORWARD, _BACKWARD, _UNUSED, _BILLED = "#6d4c41", "#a1887f", "#9e9e9e", "#2e7d32"


def render_html(
    report: Report,
    views: Mapping[str, MediaView] | None = None,
    options: RenderOptions | None = None,
    *,
    content: bool = True,
    pictures_budget: int = PICTURES_BUDGET,
) -> str:
    """The page of `report`, drawing what `views` kept of each input. `content` False says the
    check ran with `--no-content`: faces and speech were not analysed. The frames and waveforms
    of the first inputs whose pictures fit in `pictures_budget` bytes are drawn (see `drawn`)."""
    options = options or RenderOptions()
    views = views or {}
    ref = None
    if report.job is not None:
        ref = next((views.get(i.path) for i in report.inputs if i.role == "ref"), None)
    shown = drawn(report.inputs, views, pictures_budget, ref)
    passed = not any(options.blocks(f) for f in report.findings)
    parts = [
        "<h1>retalk check</h1>",
        f'<p class="verdict {"ok" if passed else "fail"}" id="verdict">'
        f"{text(verdict(report, strict=options.strict))}</p>",
    ]
    if not content:
        parts.append(
            '<p class="note" id="not-analysed">Checked with --no-content: faces and speech were '
            "not analysed; the page shows the metadata and the findings only.</p>"
        )
    left_out = [
        i.path for i in report.inputs if _pictures(views.get(i.path)) and i.path not in shown
    ]
    if left_out:
        parts.append(_left_out_note(len(left_out), pictures_budget))
    parts.append(_findings(report.findings, options))
    if report.job is not None:
        parts.append(_job(report, views))
    for item in report.inputs:
        beside = ref if item.role == "video" else None
        parts.append(_input(item, views.get(item.path), content, beside, item.path in shown))
    return page("retalk check", "\n".join(parts))


def drawn(
    inputs: Sequence[Input],
    views: Mapping[str, MediaView],
    budget: int = PICTURES_BUDGET,
    ref: MediaView | None = None,
) -> frozenset[str]:
    """The inputs whose frames and waveform the page draws: the first ones, in the report's
    order, whose pictures (the reference image's beside a video included) add up to at most
    `budget` bytes; the first that would go past it and every later one are shown without."""
    shown: set[str] = set()
    spent = 0
    for item in inputs:
        view = views.get(item.path)
        cost = _pictures(view) + (_pictures(ref) if item.role == "video" and view else 0)
        if spent + cost > budget:
            break
        spent += cost
        shown.add(item.path)
    return frozenset(shown)


def _pictures(view: MediaView | None) -> int:
    """Bytes of a view's pictures on the page: its thumbnails as base64, its waveform."""
    if view is None:
        return 0
    thumbnails = [shot.thumbnail for shot in view.shots] + ([view.face] if view.face else [])
    frames = sum(4 * -(-len(thumb.jpeg) // 3) for thumb in thumbnails)
    return frames + len(_wave(view, view.duration or 0.0))


def _left_out_note(count: int, budget: int) -> str:
    files = "1 file" if count == 1 else f"{count} files"
    return (
        f'<p class="note" id="pictures-left-out">The frames and waveforms of {files} are not '
        f"drawn, to keep the page's pictures within {budget / 1024 / 1024:g} MB: only the "
        "first files' are. Every file's findings, face timeline and speech are shown.</p>"
    )


def _findings(findings: Sequence[Finding], options: RenderOptions) -> str:
    if not findings:
        return '<h2>Findings</h2><p id="findings">No findings.</p>'
    rows = []
    for f in sorted(findings, key=lambda f: (_RANK.get(f.severity, 3), f.path, f.code)):
        severity = f.severity.value
        if f.severity is Severity.WARNING and options.blocks(f):
            severity += " (fails: strict)"
        at = f" (at {seconds(f.at)})" if f.at is not None else ""
        hint = f"<code>{text(f.hint)}</code>" if f.hint else ""
        rows.append(
            f'<tr class="finding"><td data-label="Code" class="nowrap">'
            f"<strong>{text(f.code)}</strong></td>"
            f'<td data-label="Severity" class="nowrap sev-{f.severity.value}">{text(severity)}</td>'
            f'<td data-label="File" class="file">{_breakable(f.path)}</td>'
            f'<td data-label="Message">{text(f.message)}{text(at)}</td>'
            + (f'<td data-label="Fix">{hint}</td>' if hint else "<td></td>")
            + "</tr>"
        )
    return (
        '<h2>Findings</h2><table id="findings"><thead><tr><th>Code</th><th>Severity</th>'
        "<th>File</th><th>Message</th><th>Fix</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _breakable(path: str) -> str:
    """A file name as HTML that may break after a `/` or before a `.` (and nowhere else
    while there is room)."""
    shown = text(path)
    return shown.replace("/", "/<wbr>").replace(".", "<wbr>.")


def _facts(item: Input) -> str:
    """`video: MP4, h264 1280x720, …`: the role, then the summary without its kind when the
    kind is the role's (`video: video, MP4` said it twice)."""
    role = {"video": "video", "audio": "audio", "ref": "reference image"}.get(item.role or "")
    said = summary(item)
    if item.role and _KIND_OF_ROLE.get(item.role) == item.kind:
        said = said.removeprefix(f"{item.kind}, ").removeprefix(item.kind)
    return f"{role or 'role unknown'}: {said}" if said else role or "role unknown"


def _input(
    item: Input, view: MediaView | None, content: bool, ref: MediaView | None, pictures: bool
) -> str:
    parts = [
        f'<section class="input"><h2>{text(item.path)}</h2>',
        f'<p class="facts">{text(_facts(item))}</p>',
    ]
    if view is None or not view.analysed:
        why = "" if content else " (--no-content)"
        parts.append(f'<p class="note">Faces and speech were not analysed{why}.</p>')
    else:
        parts.extend(_drawings(view, item, ref, pictures))
    parts.append("</section>")
    return "\n".join(parts)


def _drawings(
    view: MediaView, item: Input, ref: MediaView | None = None, pictures: bool = True
) -> list[str]:
    parts = []
    if not pictures and _pictures(view):
        parts.append(
            '<p class="note left-out">Its frames and waveform are not drawn: the page holds '
            "those of its first files only (see the note at the top).</p>"
        )
    elif pictures and (view.shots or (ref and ref.shots)):
        what = "The frames analysed" if view.duration else "The image"
        beside = ", beside the reference face" if ref and (ref.face or ref.shots) else ""
        parts.append(f"<h3>{what}{beside}: faces boxed, the target in green</h3>")
        parts.append(_strip(view, ref))
    total = _whole(view)
    if view.duration and total > view.duration and (view.presence or view.peaks or view.speech):
        parts.append(
            f'<p class="note" id="analysed">Analysed: the first {seconds(view.duration)} of '
            f"{seconds(total)} — {_why_part(view.duration)}; the rest, hatched grey, was not "
            "analysed.</p>"
        )
    if view.presence and view.duration:
        parts.append("<h3>Where the target face is found</h3>")
        parts.append(_presence(view.presence, view.duration, total))
    if view.duration and (view.peaks or view.speech):
        parts.append("<h3>The audio: waveform, speech and pauses</h3>")
        parts.append(_waveform(view, total, peaks=pictures))
    faces = item.facts.get("faces") if isinstance(item.facts, Mapping) else None
    if view.duration and not view.presence and not view.peaks and not faces:
        parts.append('<p class="muted">Nothing to draw of this file.</p>')
    return parts


def _whole(view: MediaView) -> float:
    """The seconds a view's axis spans: the whole file, when its metadata says more than
    what was analysed."""
    duration = view.duration or 0.0
    return max(duration, view.length or 0.0)


def _why_part(analysed: float) -> str:
    if analysed >= limits.ANALYSIS_MAX_S - limits.JOB_LENGTH_TOLERANCE_S:
        return f"the service takes {limits.VIDEO.duration.high:g} s"
    return "the face scan's time ran out there (Face.Partial)"


def _rest(start: float, end: float, total: float) -> list[str]:
    """`start` to `end`, not analysed, hatched on an axis of `total`: neither a pause nor an
    absence, unknown."""
    if end <= start:
        return []
    style = f"left:{_pc(start, total)};width:{_pc(end - start, total)};background:{_NOT_ANALYSED}"
    return [
        f'<span class="seg rest" style="{style}" '
        f'title="not analysed {start:.1f}–{end:.1f} s"></span>'
    ]


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _figure(shot: Shot, caption: str, css: str = "frame", fit: int | None = None) -> str:
    """A thumbnail with its faces boxed; `fit` draws it at most that wide (and half as
    high): a whole photo, small, beside its face."""
    thumb = shot.thumbnail
    style = ""
    if fit is not None:
        scale = min(fit / thumb.width, fit / 2 / thumb.height, 1.0)
        style = f' style="width:{thumb.width * scale:.0f}px;height:{thumb.height * scale:.0f}px"'
    boxes = "".join(
        f'<span class="box{" target" if face.target else ""}" style="left:{x * 100:.2f}%;'
        f"top:{y * 100:.2f}%;width:{w * 100:.2f}%;height:{h * 100:.2f}%"
        f'" title="{"the target" if face.target else "another face"}"></span>'
        for face in shot.faces
        for x, y, w, h in (face.box,)
    )
    return (
        f'<figure><div class="{css}"><img src="{_data_uri(thumb.jpeg)}" width="{thumb.width}" '
        f'height="{thumb.height}"{style} alt="{text(caption)}">{boxes}</div>'
        f"<figcaption>{text(caption)}</figcaption></figure>"
    )


def _strip(view: MediaView, ref: MediaView | None) -> str:
    """The frames (or the image), after the reference photo's face when there is one beside
    them (a wide group photo would take a phone's screen)."""
    figures = []
    shots = view.shots
    if view.face is not None:
        figures.append(_figure(Shot(view.face, ()), "the largest face, closer", "frame ref"))
    if ref is not None and ref.face is not None:
        figures.append(_figure(Shot(ref.face, ()), "reference face", "frame ref"))
    elif ref is not None:
        figures += [_figure(s, "reference image", "frame ref") for s in ref.shots]
    times = [shot.thumbnail.t for shot in shots]
    # Frames closer than a tenth of a second apart (many samples of a short clip) would share
    # a caption at one decimal: then two.
    shown = [f"{t:.1f}" for t in times if t is not None]
    places = 2 if len(set(shown)) < len(shown) else 1
    for shot, t in zip(shots, times, strict=True):
        if t is None:
            figures.append(_figure(shot, "the whole image", "frame whole", 320))
        else:
            figures.append(_figure(shot, f"{t:.{places}f} s"))
    # A photo and its face wrap onto two rows on a phone rather than scroll.
    css = "strip" if view.duration else "strip wrap"
    return f'<div class="{css}">{"".join(figures)}</div>'


def _pc(t: float, total: float) -> str:
    """A time as a share of the axis, for CSS: `42.50%`."""
    return f"{min(max(t / total, 0.0), 1.0) * 100:.2f}%" if total > 0 else "0%"


def _segment(a: float, b: float, total: float, colour: str, title: str, words: str = "") -> str:
    """A stretch of a track: `a` to `b` seconds on an axis of `total`."""
    width = f"{max((min(b, total) - a) / total * 100, 0.2):.2f}%" if total > 0 else "0%"
    return (
        f'<span class="seg" style="left:{_pc(a, total)};width:{width};background:{colour}" '
        f'title="{text(title)}">{text(words)}</span>'
    )


def _track(label: str, segments: Sequence[str], css: str = "") -> str:
    return (
        f'<div class="row {css}"><div class="label">{text(label)}</div>'
        f'<div class="track">{"".join(segments)}</div></div>'
    )


_STEPS = (0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


def _axis(total: float) -> str:
    """Ticks in seconds under the tracks, a round step apart (at most 9); every other one is
    `minor`, hidden on a phone's screen, where their labels would run into each other."""
    step = next((s for s in _STEPS if total / s <= 8), total / 8 or 1.0)
    marks = []
    many = total / step >= 5
    t, i = 0.0, 0
    while t <= total + 1e-9:
        css = ["start"] if t == 0 else ["end"] if t > total * 0.92 else []
        if many and i % 2:
            css.append("minor")
        cls = f' class="{" ".join(css)}"' if css else ""
        marks.append(f'<span{cls} style="left:{_pc(t, total)}">{t:g} s</span>')
        t, i = t + step, i + 1
    return (
        f'<div class="row"><div class="label"></div><div class="axis">{"".join(marks)}</div></div>'
    )


def _legend(entries: Sequence[tuple[str, str]]) -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{text(w)}</span>' for c, w in entries)
        + "</p>"
    )


def _presence(stretches: Sequence[Stretch], duration: float, total: float) -> str:
    segments = [
        _segment(
            s.start,
            s.end,
            total,
            _STATES[s.state][0],
            f"{_STATES[s.state][1]} {s.start:.1f}–{s.end:.1f} s",
        )
        for s in stretches
    ]
    if total > duration:
        segments += _rest(duration, total, total)
    said = "; ".join(f"{_STATES[s.state][1]} {s.start:.1f}–{s.end:.1f} s" for s in stretches)
    if total > duration:
        said += f"; not analysed {duration:.1f}–{total:.1f} s"
    used = [_STATES[k] for k in _STATES if any(s.state == k for s in stretches)]
    if total > duration:
        used.append((_NOT_ANALYSED, "not analysed"))
    return (
        f'<div class="timeline">{_track("Target face", segments)}{_axis(total)}'
        f'{_legend(used)}<p class="presence">The target face: {text(said)}.</p></div>'
    )


def _spans_text(spans: Sequence[tuple[float, float]]) -> str:
    return ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in spans) or "none"


def _wave(view: MediaView, total: float) -> str:
    """The peaks as an SVG stretched to the track's width (its strokes keep their width)."""
    duration = view.duration or 0.0
    if not view.peaks or total <= 0:
        return ""
    step = duration / len(view.peaks)
    path = "".join(
        f"M{(i + 0.5) * step / total * _WIDTH:.1f} {40 - p * 38:.1f}V{40 + p * 38 + 0.5:.1f}"
        for i, p in enumerate(view.peaks)
    )
    return (
        f'<svg class="wave" viewBox="0 0 {_WIDTH} 80" preserveAspectRatio="none" '
        f'aria-label="waveform"><path d="{path}" stroke="#37474f" stroke-width="1" '
        'vector-effect="non-scaling-stroke"/></svg>'
    )


def _waveform(
    view: MediaView, total: float | None = None, cut: float | None = None, peaks: bool = True
) -> str:
    duration = view.duration or 0.0
    total = total or duration
    shades = [
        _segment(a, b, total, colour, f"{what} {a:.1f}–{b:.1f} s")
        for spans, colour, what in (
            (view.pauses, _PAUSE, "pause"),
            (view.speech, _SPEECH_BG, "speech"),
        )
        for a, b in spans
    ]
    end = _whole(view)
    shades += _rest(duration, end, total)
    if cut is not None and cut < end:
        shades.append(
            f'<span class="seg cut" style="left:{_pc(cut, total)};'
            f'width:{_pc(end - cut, total)}" title="cut {cut:.1f}–{end:.1f} s"></span>'
        )
    wave = (
        '<div class="row"><div class="label">Waveform</div><div class="track tall">'
        f"{''.join(shades)}{_wave(view, total) if peaks else ''}</div></div>"
    )
    speech = _track(
        "Speech",
        [_segment(a, b, total, _SPEECH, f"speech {a:.1f}–{b:.1f} s") for a, b in view.speech],
    )
    partial = _whole(view) > duration
    legend = _legend(
        [(_SPEECH, "speech"), (_PAUSE, "pause")]
        + ([(_CUT, "cut")] if cut is not None else [])
        + ([(_NOT_ANALYSED, "not analysed")] if partial else [])
    )
    within = f" (in the first {seconds(duration)})" if partial else ""
    return (
        f'<div class="waveform">{wave}{speech}{_axis(total)}{legend}'
        f'<p class="speech">Speech{within}: {_spans_text(view.speech)}.</p>'
        f'<p class="pauses">Pauses of {seconds(limits.PAUSE_S)} or more{within}: '
        f"{_spans_text(view.pauses)}.</p></div>"
    )


def _job(report: Report, views: Mapping[str, MediaView]) -> str:
    job: Mapping[str, Any] = report.job or {}
    by_role = {i.role: i for i in report.inputs}
    parts = ['<section class="job" id="job"><h2>The job</h2>']
    if "output_duration" not in job:
        parts.append(
            "<p>Not judged as a whole: that needs both a video and an audio. Each file is "
            "judged below in its role.</p></section>"
        )
        return "\n".join(parts)
    video_s, audio_s = float(job["video_duration"]), float(job["audio_duration"])
    output_s, passes = float(job["output_duration"]), int(job.get("video_passes") or 1)
    extension = bool(dict(job.get("parameters") or {}).get("video_extension"))
    billed, cost = float(job["billable_seconds"]), job.get("cost_cny")
    audio_view = views.get(by_role["audio"].path) if "audio" in by_role else None
    parts.append(
        f'<p id="bill">Output {seconds(output_s)}, billed {seconds(billed)}'
        + (f", ≈ {cost:.2f} CNY at {limits.PRICE_CNY_PER_S:g} CNY/s" if cost is not None else "")
        + f" (video {seconds(video_s)}, audio {seconds(audio_s)}; video_extension "
        f"{'on' if extension else 'off'}).</p>"
    )
    total = max(video_s, audio_s, output_s)
    rows = []
    cut = None
    if audio_s > output_s + limits.JOB_LENGTH_TOLERANCE_S:
        cut = output_s
        heard = audio_view is not None and audio_view.analysed
        lost = _overlap(audio_view.speech, output_s, audio_s) if heard and audio_view else None
        speech = f", {seconds(lost)} of it speech" if lost is not None else ""
        if (
            audio_view is not None
            and lost is not None
            and _whole(audio_view) > (audio_view.duration or 0.0)
        ):
            speech += f" in its first {seconds(audio_view.duration or 0.0)}"
        rows.append(
            f'<p id="forecast" class="cut">The audio from {seconds(output_s)} to '
            f"{seconds(audio_s)} is cut ({seconds(audio_s - output_s)}{speech}): the video "
            f"is {seconds(video_s)}"
            + ("." if extension else " and video_extension is off.")
            + "</p>"
        )
    elif passes > 1:
        legs = ", ".join(
            f"{'forward' if i % 2 == 0 else 'backward'} {i * video_s:.1f}–"
            f"{min((i + 1) * video_s, output_s):.1f} s"
            for i in range(passes)
        )
        rows.append(
            f'<p id="forecast">The video plays {passes} times to cover the audio '
            f"(video_extension): {legs}.</p>"
        )
    elif video_s > output_s + limits.JOB_LENGTH_TOLERANCE_S:
        rows.append(
            f'<p id="forecast">The video after {seconds(output_s)} is not used (the audio '
            f"ends there): the output is cut to {seconds(output_s)}.</p>"
        )
    else:
        rows.append(f'<p id="forecast">Video and audio cover each other: {seconds(output_s)}.</p>')
    parts.extend(rows)
    parts.append(_forecast_axis(video_s, audio_s, output_s, passes, total))
    if audio_view is not None and audio_view.analysed:
        parts.append("<h3>The speech on the same axis</h3>")
        parts.append(_waveform(audio_view, total, cut))
    parts.append("</section>")
    return "\n".join(parts)


def _overlap(spans: Sequence[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


def _forecast_axis(
    video_s: float, audio_s: float, output_s: float, passes: int, total: float
) -> str:
    """Three tracks on one axis: the audio (its cut part apart), the video as played, the
    output billed."""
    tolerance = limits.JOB_LENGTH_TOLERANCE_S
    kept = min(audio_s, output_s)
    audio = [_segment(0, kept, total, _SPEECH, f"audio used 0.0–{kept:.1f} s", "used")]
    if audio_s > kept + tolerance:
        audio.append(
            _segment(kept, audio_s, total, _CUT, f"audio cut {kept:.1f}–{audio_s:.1f} s", "cut")
        )
    video = []
    if passes == 1:
        used = min(video_s, output_s)
        video.append(_segment(0, used, total, _FORWARD, f"video 0.0–{used:.1f} s", "▶ forward"))
        if video_s > used + tolerance:
            video.append(
                _segment(
                    used,
                    video_s,
                    total,
                    _UNUSED,
                    f"video not used {used:.1f}–{video_s:.1f} s",
                    "not used",
                )
            )
    for i in range(passes if passes > 1 else 0):
        a, b = i * video_s, min((i + 1) * video_s, output_s)
        words = "▶ forward" if i % 2 == 0 else "◀ backward"
        colour = _FORWARD if i % 2 == 0 else _BACKWARD
        video.append(_segment(a, b, total, colour, f"video {words[2:]} {a:.1f}–{b:.1f} s", words))
    billed = [_segment(0, output_s, total, _BILLED, f"billed 0.0–{output_s:.1f} s", "billed")]
    return (
        '<div class="forecast">'
        + _track("Audio", audio)
        + _track("Video as played", video)
        + _track("Output", billed)
        + _axis(total)
        + "</div>"
    )
