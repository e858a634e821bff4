"""The checks as the library offers them: one file in a role, a file by content, a job, paths."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from retalk.findings import Input, Report, finding
from retalk.preflight import audio, image, video
from retalk.preflight.formats import CONTAINERS, MEDIA_ENDINGS
from retalk.preflight.media import Media, gather
from retalk.preflight.rules import RULES

if TYPE_CHECKING:
    from numpy.typing import NDArray

PathLike = str | os.PathLike[str]
T = TypeVar("T")

_ROLE_OF_KIND = {"video": "video", "audio": "audio", "image": "ref"}
_FACTS_OF_KIND = {"video": video.facts, "audio": audio.facts, "image": image.facts}


def check_video(path: PathLike, *, content: bool = True) -> Report:
    """The service's verdict on `path` as the job's video (`input.video_url`)."""
    return _check(path, "video", content)[0]


def check_audio(path: PathLike, *, content: bool = True) -> Report:
    """The service's verdict on `path` as the job's speech track (`input.audio_url`)."""
    return _check(path, "audio", content)[0]


def check_image(path: PathLike, *, content: bool = True) -> Report:
    """The service's verdict on `path` as the reference image (`input.ref_image_url`)."""
    return _check(path, "ref", content)[0]


def check_file(path: PathLike, *, content: bool = True) -> Report:
    """The verdict on `path` in the role its content says: a video, an audio, or an image."""
    return _check(path, None, content)[0]


def check_job(
    *,
    video: PathLike | None = None,
    audio: PathLike | None = None,
    ref: PathLike | None = None,
    video_extension: bool = False,
    content: bool = True,
) -> Report:
    """The verdict on a job's inputs, each checked in its role; with `content`, the reference
    face is also looked for in the video. `video_extension` is the submit parameter of that
    name: it shapes the job's output, not any one input's verdict."""
    del video_extension  # the job-level checks that read it come with speech analysis
    reports = []
    reference = None
    if ref is not None:
        report, reference = _check(ref, "ref", content)
        reports.append(report)
    jobs = [(path, role) for path, role in ((video, "video"), (audio, "audio")) if path]
    found = _map(lambda job: _check(job[0], job[1], content, reference)[0], jobs)
    return Report.merge([*found, *reports])


def check_paths(paths: Iterable[PathLike], *, content: bool = True) -> Report:
    """`check_file` on each path, folders searched for media files (see `find_media`); files are
    checked side by side, reported in order."""
    files = find_media(paths)
    return Report.merge(_map(lambda path: check_file(path, content=content), files))


def find_media(paths: Iterable[PathLike]) -> list[str]:
    """Files as given; folders replaced by the media files below them (by name ending, hidden
    folders skipped), sorted."""
    found: list[str] = []
    for path in (os.fspath(p) for p in paths):
        if not os.path.isdir(path):
            found.append(path)
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(
                os.path.join(root, name)
                for name in sorted(files)
                if os.path.splitext(name)[1].lower().lstrip(".") in MEDIA_ENDINGS
            )
    return found


def _check(
    path: PathLike, role: str | None, content: bool, reference: NDArray[Any] | None = None
) -> tuple[Report, NDArray[Any] | None]:
    """Gather, look at the faces when `content` asks, judge. Also returns the embedding of a
    reference image's one face, for the video of the same job."""
    media = gather(path, content=content)
    embedding = None
    if content and media.unreadable is None:
        from retalk.preflight.faces import scan_faces

        seen_as = role or role_of(media)
        if seen_as in ("video", "ref"):
            scan, embedding = scan_faces(media, seen_as, reference)
            media = replace(media, faces=scan)
    return judge(media, role), embedding


def judge(media: Media, role: str | None) -> Report:
    """The findings and facts of one gathered file in a role (None: the role its content says)."""
    if media.unreadable is not None:
        found = finding("File.Unreadable", media.path, media.unreadable, actual=media.unreadable)
        return Report((Input(media.path, "unknown", role, {}),), (found,))
    role = role or role_of(media)
    facts: dict[str, Any] = {
        "size_bytes": media.size,
        "container": media.container.name if media.container else None,
        **(_FACTS_OF_KIND[media.kind](media) if media.kind in _FACTS_OF_KIND else {}),
    }
    if role is None:
        reason = media.open_error or "it is no format ffprobe or Pillow knows"
        found = finding(
            "InvalidFile.Openerror",
            media.path,
            f"cannot be opened as video, audio or image: {reason}",
            actual=reason,
        )
        return Report((Input(media.path, media.kind, None, facts),), (found,))
    findings = tuple(f for rule in RULES[role] for f in rule(media))
    if media.faces is not None:
        facts["faces"] = media.faces.to_facts()
    return Report((Input(media.path, media.kind, role, facts),), findings)


def role_of(media: Media) -> str | None:
    """The role a file's content says; failing that, its name's ending."""
    if media.kind in _ROLE_OF_KIND:
        return _ROLE_OF_KIND[media.kind]
    by_name = next((c.kind for c in CONTAINERS.values() if media.ending in c.endings), None)
    return _ROLE_OF_KIND.get(by_name or "")


def _map(work: Callable[[T], Report], items: Sequence[T]) -> list[Report]:
    """`work` on each item, side by side (each mostly waits on an ffprobe), results in order."""
    if len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(work, items))
