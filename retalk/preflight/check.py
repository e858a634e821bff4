"""The checks as the library offers them: one file in a role, a file by content, a job, paths."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from retalk import limits
from retalk.findings import Finding, Input, Report
from retalk.job import Job, Parameters, is_url
from retalk.policy import SERVICE, Policy, apply_policy
from retalk.preflight import audio, content_stack, image, lfs, video
from retalk.preflight import job as job_rules
from retalk.preflight.decoding import Decoded
from retalk.preflight.formats import CONTAINERS, MEDIA_ENDINGS
from retalk.preflight.job import job_facts, plan_of
from retalk.preflight.media import Media, gather
from retalk.preflight.rules import (
    LFS_POINTER,
    UNKNOWN,
    UNREADABLE,
    URL_NOT_READ,
    judge_file,
    judge_job,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from retalk.cache import ResultCache
    from retalk.preflight.many import Progress
    from retalk.preflight.visuals import MediaView

PathLike = str | os.PathLike[str]

_ROLE_OF_KIND = {"video": "video", "audio": "audio", "image": "ref"}
_FACTS_OF_KIND = {"video": video.facts, "audio": audio.facts, "image": image.facts}


def check_video(path: PathLike, *, content: bool = True, policy: Policy | None = None) -> Report:
    """The service's verdict on `path` as the job's video (`input.video_url`); with `policy`,
    the project's (its limits, then its selection of findings)."""
    return _check(path, "video", content, policy)


def check_audio(path: PathLike, *, content: bool = True, policy: Policy | None = None) -> Report:
    """The service's verdict on `path` as the job's speech track (`input.audio_url`)."""
    return _check(path, "audio", content, policy)


def check_image(path: PathLike, *, content: bool = True, policy: Policy | None = None) -> Report:
    """The service's verdict on `path` as the reference image (`input.ref_image_url`)."""
    return _check(path, "ref", content, policy)


def check_file(path: PathLike, *, content: bool = True, policy: Policy | None = None) -> Report:
    """The verdict on `path` in the role its content says: a video, an audio, or an image."""
    return _check(path, None, content, policy)


def _check(path: PathLike, role: str | None, content: bool, policy: Policy | None) -> Report:
    rules = policy or SERVICE
    return apply_policy(judge_file_at(path, role, content=content, policy=rules), rules)


def judge_file_at(
    path: PathLike, role: str | None = None, *, content: bool = True, policy: Policy = SERVICE
) -> Report:
    """The findings of every rule on `path` in `role` (None: by content) under `policy`'s
    limits, before its selection (`apply_policy`): what a result cache may keep."""
    return judge(inspect(path, role, content=content, policy=policy)[0], role, policy)


def check(
    job: Job,
    *,
    content: bool = True,
    download: bool = False,
    policy: Policy | None = None,
    url_timeout: float | None = None,
) -> Report:
    """The verdict on `job` (a `retalk.job.Job`: its inputs local paths or URLs, its
    parameters), as `check_job` gives it."""
    return check_job(
        video=job.video or None,
        audio=job.audio or None,
        ref=job.ref,
        parameters=job.parameters,
        content=content,
        download=download,
        policy=policy,
        url_timeout=url_timeout,
    )


def check_job(
    *,
    video: PathLike | None = None,
    audio: PathLike | None = None,
    ref: PathLike | None = None,
    video_extension: bool = False,
    parameters: Parameters | None = None,
    content: bool = True,
    download: bool = False,
    policy: Policy | None = None,
    url_timeout: float | None = None,
    views: dict[str, MediaView] | None = None,
) -> Report:
    """The verdict on a job: each input in its role, then the job as a whole (its required
    inputs, its `parameters`, its output's length, bill and cost, speech over frames without
    the face). With `content`, the reference face is looked for in the video, and the video
    and the audio are analysed side by side. `video_extension` is a shorthand for
    `parameters=Parameters(video_extension=True)`. Inputs may be URLs: see `check_url`
    (`download`, `url_timeout`). With `views` (a dict), what the HTML page draws of each input
    is kept in it, by path (`visuals.MediaView`: thumbnails of the frames, the waveform)."""
    from concurrent.futures import ThreadPoolExecutor

    _check_timeout(url_timeout)
    rules = policy or SERVICE
    chosen = parameters or Parameters(video_extension=video_extension)
    look = partial(inspect, download=download, url_timeout=url_timeout, visuals=views is not None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        # The audio needs nothing from the others: it is heard while the faces are looked at.
        heard = pool.submit(look, audio, "audio", content=content, policy=rules) if audio else None
        # (A URL's faces are looked at only when it is downloaded.)
        if content and any(p and (download or not is_url(os.fspath(p))) for p in (video, ref)):
            pool.submit(preload_face_model)
        ref_media, reference = (
            look(ref, "ref", content=content, identity=video is not None, policy=rules)
            if ref
            else (None, None)
        )
        video_media = (
            look(video, "video", content=content, reference=reference, policy=rules)[0]
            if video
            else None
        )
        audio_media = heard.result()[0] if heard else None
    given = ((video_media, "video"), (audio_media, "audio"), (ref_media, "ref"))
    reports = [judge(media, role, rules) for media, role in given if media is not None]
    if views is not None:
        _keep_views(views, [media for media, _ in given if media is not None])
    report = Report.merge(reports)
    plan = None
    if video_media is not None and audio_media is not None:
        plan = plan_of(video_media, audio_media, chosen.video_extension)
    whole = job_rules.Job(video_media, audio_media, ref_media, plan, chosen)
    extra = judge_job(whole, rules)
    findings = _unswapped(report.findings + extra, extra, video_media, audio_media)
    judged = replace(report, findings=findings, job=job_facts(plan, chosen))
    return apply_policy(judged, rules)


def _unswapped(
    findings: tuple[Finding, ...],
    job_found: tuple[Finding, ...],
    video: Media | None,
    audio: Media | None,
) -> tuple[Finding, ...]:
    """With a video slot that holds audio or a picture (the roles look swapped), the hints of
    the job's findings, and of the audio's when it holds a video, say so rather than send the
    user on (trimming the "video", extracting the audio's sound)."""
    if video is None or video.kind not in ("audio", "image"):
        return findings
    also = audio.path if audio is not None and audio.kind == "video" else None
    role = "audio" if video.kind == "audio" else "reference"
    words = f"the roles look swapped: give {video.path} as the {role}"
    if also is not None:
        words += f" and {also} as the video"

    def hinted(f: Finding) -> Finding:
        aimed = f in job_found or (also is not None and f.path == also)
        return f._replace(hint=words) if aimed and f.hint else f

    return tuple(hinted(f) for f in findings)


def check_url(
    url: str,
    role: str | None = None,
    *,
    content: bool = True,
    download: bool = False,
    policy: Policy | None = None,
    url_timeout: float | None = None,
) -> Report:
    """The verdict on an `http(s)://` URL as the service would fetch it: reachable within its
    60 s (`url_timeout`, shorter, for impatient checks), the announced length against the
    role's size limit, the metadata read through range requests (the bytes read are in the
    facts: `url.bytes_read`). Faces and speech are analysed only with `download`, which fetches
    it whole into a temporary file (at most the size limit), checks that, and removes it. An
    `oss://` URL is not checked (an info finding says so). Never cached."""
    _check_timeout(url_timeout)
    rules = policy or SERVICE
    media = inspect(
        url, role, content=content, download=download, url_timeout=url_timeout, policy=rules
    )[0]
    return apply_policy(judge(media, role, rules), rules)


def _check_timeout(url_timeout: float | None) -> None:
    """A URL's time can only be shorter than the service's: ValueError otherwise."""
    most = limits.URL_DOWNLOAD_TIMEOUT_S
    if url_timeout is not None and not 0 < url_timeout <= most:
        raise ValueError(f"url_timeout must be over 0 and at most {most} s, not {url_timeout}")


def preload_face_model() -> None:
    """Load the face models now (a second of imports), so that they are ready when needed."""
    from retalk.preflight.faces.model import face_model

    with face_model():
        pass


def check_paths(
    paths: Iterable[PathLike],
    *,
    content: bool = True,
    policy: Policy | None = None,
    jobs: int | None = None,
    cache: bool | ResultCache = False,
    progress: Progress | None = None,
    download: bool = False,
    url_timeout: float | None = None,
    views: dict[str, MediaView] | None = None,
) -> Report:
    """`check_file` on each path, folders searched for media files (see `find_media`), reported
    in order. With `cache` (True: the default `ResultCache`), files of bytes checked before
    under the same limits are not checked again; the others are checked by `jobs` worker
    processes (default: the CPU count; 1: one after the other in this process). `progress` is
    told (done, total). URLs among the paths are checked in this process, uncached, as
    `check_url` says (`download`, `url_timeout`). With `views` (a dict), every file is
    checked afresh in this process (neither the cache nor a worker keeps what the HTML page
    draws), and each one's `visuals.MediaView` is kept in it, by path."""
    from retalk.preflight.many import check_many

    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be 1 or more, not {jobs}")
    _check_timeout(url_timeout)
    if cache is True:
        from retalk.cache import ResultCache

        cache = ResultCache()
    store = cache or None
    found = find_media(paths)
    files = [f for f in found if not is_url(f)]
    rules = policy or SERVICE
    if views is not None:
        look = partial(
            inspect, content=content, policy=rules, download=download, url_timeout=url_timeout
        )
        return apply_policy(Report.merge(_viewed(found, look, rules, views, progress)), rules)
    judged = iter(
        check_many(files, content=content, policy=rules, jobs=jobs, cache=store, progress=progress)
    )
    reports = [
        judge(
            inspect(
                f, None, content=content, policy=rules, download=download, url_timeout=url_timeout
            )[0],
            None,
            rules,
        )
        if is_url(f)
        else next(judged)
        for f in found
    ]
    return apply_policy(Report.merge(reports), rules)


def _viewed(
    found: list[str],
    look: Callable[..., tuple[Media, Any]],
    policy: Policy,
    views: dict[str, MediaView],
    progress: Progress | None,
) -> list[Report]:
    """Each file checked here in turn (by `look`, an `inspect`), its view for the HTML page
    kept in `views`."""
    reports = []
    for done, path in enumerate(found, 1):
        media = look(path, None, visuals=True)[0]
        reports.append(judge(media, None, policy))
        _keep_views(views, [media])
        if progress is not None:
            progress(done, len(found))
    return reports


def _keep_views(views: dict[str, MediaView], gathered: Iterable[Media]) -> None:
    from retalk.preflight.visuals import view_of

    for media in gathered:
        views[media.path] = view_of(media)


def find_media(paths: Iterable[PathLike]) -> list[str]:
    """Files as given; folders replaced by the media files below them (by name ending, hidden
    folders skipped), sorted; a folder that cannot be read stands for itself."""
    found: list[str] = []
    for path in (os.fspath(p) for p in paths):
        if is_url(path) or not os.path.isdir(path):
            found.append(path)
            continue
        # A folder that cannot be read is reported as such (File.Unreadable), not passed over.
        for root, dirs, files in os.walk(path, onerror=lambda error: found.append(error.filename)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(
                os.path.join(root, name)
                for name in sorted(files)
                if os.path.splitext(name)[1].lower().lstrip(".") in MEDIA_ENDINGS
            )
    return found


def inspect(
    path: PathLike,
    role: str | None,
    *,
    content: bool = True,
    reference: NDArray[Any] | None = None,
    identity: bool = False,
    policy: Policy = SERVICE,
    download: bool = False,
    url_timeout: float | None = None,
    visuals: bool = False,
) -> tuple[Media, NDArray[Any] | None]:
    """Gather a file and, with `content`, analyse what its role needs: faces for a video or a
    reference image (matched against `reference`, a face embedding), speech for an audio.
    With `identity`, also returns the embedding of a reference image's one face, for the video
    of its job. Raises `ModelUnavailable` when the analysis is needed and its stack is not
    installed (`content_stack`). A URL is read as `check_url` says. With `visuals`, the
    analysis keeps what the HTML page draws (thumbnails of the frames, the waveform)."""
    if isinstance(path, str) and is_url(path):
        from retalk.preflight import url

        timeout = url_timeout or float(limits.URL_DOWNLOAD_TIMEOUT_S)
        if not (download and content):
            return url.gather_url(path, timeout=timeout, content=content, role=role), None
        with url.downloaded(path, role, timeout) as (local, read):
            if local is None:
                return read, None
            found, embedding = inspect(
                local,
                role,
                content=True,
                reference=reference,
                identity=identity,
                policy=policy,
                visuals=visuals,
            )
            return url.as_url(found, read), embedding
    media = gather(path, content=content)
    embedding = None
    if not content or media.unreadable is not None or media.lfs is not None:
        return media, None
    seen_as = role or role_of(media)
    if seen_as in ("video", "ref"):
        content_stack.require("faces")
        from retalk.preflight.faces import scan_faces

        scan, embedding = scan_faces(
            media,
            seen_as,
            reference,
            identity=identity,
            samples=policy.face_samples,
            thumbnails=visuals,
        )
        media = replace(media, faces=scan)
        if scan is not None and scan.decoded is not None:
            media = _with_decoded(media, scan.decoded)
    elif seen_as == "audio" and media.open_error is None and media.probe and media.probe.audio:
        content_stack.require("speech")
        from retalk.preflight.speech import SpeechTimeout, analyse_speech

        try:
            media = replace(media, speech=analyse_speech(media.path, waveform=visuals))
        except SpeechTimeout as late:
            media = replace(media, unsettled=f"the speech: {late}")
    return media, embedding


def _with_decoded(media: Media, decoded: Decoded) -> Media:
    """`media` with what its content analysis decoded: nothing at all is a file that cannot
    be opened (its face scan, of no frame, says nothing)."""
    if decoded.nothing and decoded.packets:
        return replace(media, decoded=decoded, faces=None, open_error=decoded.reason())
    return replace(media, decoded=decoded)


def judge(media: Media, role: str | None, policy: Policy = SERVICE) -> Report:
    """The findings and facts of one gathered file in a role (None: the role its content says),
    under `policy`'s limits, before its selection."""
    if media.unreadable is not None:
        found = judge_file(media, UNREADABLE, policy)
        return Report((Input(media.path, "unknown", role, {}),), found)
    if media.lfs is not None:
        found = judge_file(media, LFS_POINTER, policy)
        return Report((lfs.input_of(media, role or role_of(media)),), found)
    if media.url is not None and not media.url.judged:
        found = judge_file(media, URL_NOT_READ, policy)
        return Report((Input(media.path, "unknown", role, {"url": media.url.to_facts()}),), found)
    role = role or role_of(media)
    facts: dict[str, Any] = {
        "size_bytes": media.size,
        "container": media.container.name if media.container else None,
        **(_FACTS_OF_KIND[media.kind](media) if media.kind in _FACTS_OF_KIND else {}),
    }
    if role is None:
        found = judge_file(media, UNKNOWN, policy)
        return Report((Input(media.path, media.kind, None, facts),), found)
    findings = judge_file(media, role, policy)
    if media.url is None:
        from retalk.fix.hints import with_fix_hints

        findings = with_fix_hints(media, role, policy, findings)
    if media.url is not None:
        facts["url"] = media.url.to_facts()
        if media.url.size is None and not media.url.downloaded:
            facts["size_bytes"] = None
    if media.faces is not None:
        facts["faces"] = media.faces.to_facts()
    if media.speech is not None:
        facts["speech"] = media.speech.to_facts()
    if media.decoded is not None:
        facts["decoded"] = media.decoded.to_facts()
    return Report((Input(media.path, media.kind, role, facts),), findings)


def role_of(media: Media) -> str | None:
    """The role a file's content says; failing that, its name's ending."""
    if media.kind in _ROLE_OF_KIND:
        return _ROLE_OF_KIND[media.kind]
    by_name = next((c.kind for c in CONTAINERS.values() if media.ending in c.endings), None)
    return _ROLE_OF_KIND.get(by_name or "")
