"""A URL input (`http(s)://`, `oss://`) gathered as the service would see it, and the rules on
how it was read.

Without `download`, nothing is fetched whole: the first bytes tell whether the service could
download it and how long that would take (`remote.open_remote`), the announced length is
judged against the role's size limit, and the metadata rules and the first frames' decoding
read it through range requests (`loopback`), counted. A file announced over its limit, or an
image too large to decode that way (decoding reads every byte), has its header read only.
With `download`, it is fetched whole into a temporary folder (at most the role's size limit,
within the service's time), checked as a file, and removed. An `oss://` URL names the
platform's storage, which only the service reads. URL checks are never cached: what a URL
serves can change from one request to the next.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, cast

from retalk import limits
from retalk.findings import Finding, finding
from retalk.policy import Policy
from retalk.preflight.formats import CONTAINERS, sniff
from retalk.preflight.media import Media, gather_open
from retalk.preflight.remote import (
    REFUSED,
    Failure,
    ReadStopped,
    Remote,
    ending_of,
    name_of,
    open_remote,
    redact,
)
from retalk.preflight.source import Pin
from retalk.units import size_text


@dataclass(frozen=True)
class UrlRead:
    """How a URL input was read."""

    failure: Failure | None = None
    """Why the service could not download it (an `InvalidURL.*` code); then nothing is judged."""
    not_read: str | None = None
    """Why nothing of it was read (an `oss://` URL)."""
    stopped: str | None = None
    """Why reading its metadata stopped short, when it did: its limits are then not checked."""
    size: int | None = None
    """The length the server announced; None when it did not."""
    ranges: bool = False
    """Whether the server answered range requests."""
    redirects: int = 0
    bytes_read: int = 0
    """Bytes received from the server, every request counted."""
    requests: int = 0
    rate: float | None = None
    """Bytes a second measured on its first bytes."""
    estimate_s: float | None = None
    """How long its whole download would take at that rate."""
    downloaded: bool = False
    """Fetched whole (`download`) and checked as a file."""
    content_skipped: str | None = None
    """Why its faces or speech were not analysed, when content analysis was asked for."""
    not_decoded: str | None = None
    """Why an image's pixels were not decoded (only its header read), when they were not."""

    @property
    def judged(self) -> bool:
        """Whether there is anything of it to judge (it could be read)."""
        return self.failure is None and self.not_read is None

    def to_facts(self) -> dict[str, Any]:
        """The JSON facts of the read (`facts.url`)."""
        return {
            "announced_bytes": self.size,
            "range_requests": self.ranges,
            "redirects": self.redirects,
            "bytes_read": self.bytes_read,
            "requests": self.requests,
            "rate_bytes_per_s": round(self.rate) if self.rate else None,
            "download_estimate_s": round(self.estimate_s, 1) if self.estimate_s else None,
            "downloaded": self.downloaded,
        }


def is_oss(url: str) -> bool:
    return url.lower().startswith("oss://")


def gather_url(url: str, *, timeout: float, content: bool, role: str | None = None) -> Media:
    """The URL gathered without downloading it (see the module docstring). With `content`,
    the record says that its faces and speech were not analysed."""
    shown, ending = redact(url), ending_of(url)
    skipped = "a URL's faces and speech are analysed only with --download" if content else None
    if is_oss(url):
        return Media(shown, 0, ending, url=UrlRead(not_read=_OSS))
    opened = open_remote(url, timeout)
    if isinstance(opened, Failure):
        return Media(shown, 0, ending, url=UrlRead(failure=opened))
    with opened as remote:
        return _read_metadata(url, remote, skipped, role)


_OSS = (
    "an oss:// URL names the platform's temporary storage, which only the service can read: "
    "check the local file it was uploaded from"
)


def _read_metadata(url: str, remote: Remote, skipped: str | None, role: str | None) -> Media:
    from retalk.preflight.loopback import served

    shown, ending = redact(url), ending_of(url)
    size = remote.size if remote.size is not None else -1
    decode, not_decoded = _bound(remote, role, ending)
    container = None
    try:
        with served(remote, name_of(url)) as address, remote.open() as stream:
            pin = Pin(-1, address, size)  # no descriptor: the tools read the served URL
            media = gather_open(
                shown,
                pin,
                ending,
                cast(BinaryIO, stream),
                content=False,
                decode_image=decode,
            )
            container = media.container
            if media.kind != "image":
                not_decoded = None
    except ReadStopped:
        media = Media(shown, max(size, 0), ending)
    if remote.stopped is not None:
        # What the readers made of a cut read says nothing of the file: judged by its length.
        media = Media(shown, max(size, 0), ending, container)
    return replace(
        media,
        size=max(size, 0),
        url=_read_of(
            remote, stopped=remote.stopped, content_skipped=skipped, not_decoded=not_decoded
        ),
    )


_ROLE_OF_KIND = {"video": "video", "audio": "audio", "image": "ref"}


def _bound(remote: Remote, role: str | None, ending: str) -> tuple[bool, str | None]:
    """Bounds the readers of a URL that needs only its header read (`Remote.header_only`): one
    announced over its role's size limit (its length refuses it), an image too large to decode
    over a URL (decoding reads every byte). Returns whether an image is decoded, and why not
    when it is not and that is worth saying."""
    kind = _kind_of(remote, ending)
    taken = limits.BY_ROLE[role] if role else limits.BY_ROLE.get(_ROLE_OF_KIND.get(kind, ""))
    if taken is not None and remote.size is not None and remote.size > taken.max_bytes:
        remote.header_only(f"it is over the {taken.max_mb} MB limit")
        return False, None
    not_decoded = _not_decoded(remote.length)
    if not_decoded is not None and kind == "image":
        remote.header_only(f"an image {not_decoded}")
    return not_decoded is None, not_decoded


def _kind_of(remote: Remote, ending: str) -> str:
    """The kind (`video`, `audio`, `image`) the URL's first bytes (already read) say; failing
    them, its name's ending; "" when neither does."""
    try:
        container = sniff(remote.read_at(0, 512))
    except ReadStopped:
        container = None
    if container is not None:
        return container.kind
    return next((c.kind for c in CONTAINERS.values() if ending in c.endings), "")


def _not_decoded(size: int | None) -> str | None:
    """Why an image of this announced length is not decoded over a URL, or None when it is:
    decoding reads every byte, so only a small one is."""
    most = limits.URL_IMAGE_DECODE_MAX_BYTES
    if size is None:
        return "whose length is not announced"
    if size > most:
        return f"over {size_text(most)}"
    return None


def _read_of(remote: Remote, **more: Any) -> UrlRead:
    return UrlRead(
        size=remote.size,
        ranges=remote.ranges,
        redirects=remote.redirects,
        bytes_read=remote.fetched,
        requests=remote.requests,
        rate=remote.rate,
        estimate_s=remote.estimate_s,
        **more,
    )


@contextmanager
def downloaded(url: str, role: str | None, timeout: float) -> Iterator[tuple[str | None, Media]]:
    """The URL fetched whole into a temporary file, removed after the block: yields its path
    and the record of the read (to put on the file's `Media`: `as_url`); or None and the
    record of a URL that could not be fetched, or is over the role's size limit (then judged
    by its announced length and metadata, as without `download`)."""
    shown, ending = redact(url), ending_of(url)
    if is_oss(url):
        yield None, Media(shown, 0, ending, url=UrlRead(not_read=_OSS))
        return
    opened = open_remote(url, timeout)
    if isinstance(opened, Failure):
        yield None, Media(shown, 0, ending, url=UrlRead(failure=opened))
        return
    taken = limits.BY_ROLE[role or "video"]
    cap = taken.max_bytes
    with opened as remote:
        if remote.size is not None and remote.size > cap:
            skipped = f"over {taken.max_mb} MB: not downloaded"
            yield None, _read_metadata(url, remote, skipped, role)
            return
        folder = tempfile.mkdtemp(prefix="retalk-url-")
        try:
            path = os.path.join(folder, "input" + (f".{ending}" if ending.isalnum() else ""))
            with open(path, "wb") as out:
                got = remote.download(out, cap)
            if isinstance(got, Failure):
                yield None, Media(shown, 0, ending, url=_read_of(remote, failure=got))
            elif got > cap:
                skipped = f"over {taken.max_mb} MB: not downloaded past it"
                read = _read_of(remote, downloaded=False, content_skipped=skipped)
                yield None, Media(shown, got, ending, url=read)
            else:
                yield path, Media(shown, got, ending, url=_read_of(remote, downloaded=True))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def as_url(media: Media, read: Media) -> Media:
    """A downloaded file's record, named and described as its URL (`read`, from `downloaded`)."""
    assert read.url is not None
    url = replace(read.url, bytes_read=read.url.bytes_read, downloaded=True)
    return replace(media, path=read.path, ending=read.ending, url=url)


# -- rules ------------------------------------------------------------------------------------


def reachable(media: Media, policy: Policy) -> Iterator[Finding]:
    """The service downloads a URL input first: one it cannot fetch, or not within its 60 s,
    fails the task with `InvalidURL.ConnectionRefused` or `InvalidURL.Timeout`."""
    read = media.url
    if read is None or read.failure is None:
        return
    failure = read.failure
    refused = failure.code == REFUSED
    yield finding(
        failure.code,
        media.path,
        f"{failure.reason}: the service "
        + ("could not download it" if refused else "would give up downloading it"),
        expected=f"a URL the service can download within {limits.URL_DOWNLOAD_TIMEOUT_S} s",
        actual=failure.reason,
        hint=(
            "check that it opens from another network; a signed link may have expired"
            if refused
            else "serve it from faster storage, or let `retalk submit` upload the local file"
        ),
    )


def not_read(media: Media, policy: Policy) -> Iterator[Finding]:
    """An `oss://` URL: nothing of it can be read here."""
    if media.url is not None and media.url.not_read is not None:
        yield finding("URL.NotChecked", media.path, f"not checked: {media.url.not_read}")


def read_notes(media: Media, policy: Policy) -> Iterator[Finding]:
    """What could not be judged of a URL read without downloading it: its length when the
    server does not announce it, its limits when reading stopped short, its content."""
    read = media.url
    if read is None or not read.judged:
        return
    if read.stopped is not None:
        yield finding(
            "File.Unmeasured",
            media.path,
            f"its format, duration, frame rate and resolution were not checked: {read.stopped}",
            hint="check it whole with --download",
        )
    if read.size is None and not read.downloaded and not media.size:
        yield finding(
            "File.Unmeasured",
            media.path,
            "the server does not announce its length: the size limit was not checked",
            hint="check it whole with --download",
        )
    if read.not_decoded is not None and media.kind == "image" and read.stopped is None:
        yield finding(
            "URL.NotDecoded",
            media.path,
            f"its pixels were not decoded, only its header read: an image {read.not_decoded}"
            f" is decoded only when downloaded",
            hint="check it whole with --download",
        )
    if read.content_skipped is not None:
        yield finding(
            "URL.ContentSkipped",
            media.path,
            f"faces and speech not analysed: {read.content_skipped}",
        )


def summary(facts: dict[str, Any]) -> str:
    """`read 412 KB of 38 MB` and the like, for the text report's line of facts."""
    if facts.get("downloaded"):
        return "downloaded"
    if not facts.get("bytes_read"):
        return "not read"
    announced = facts.get("announced_bytes")
    of = f" of {size_text(announced)}" if announced is not None else ", length not announced"
    return f"read {size_text(int(facts.get('bytes_read') or 0))}{of}"


def reach(url: str, timeout: float | None = None) -> Failure | None:
    """Whether the service could download `url` in time, reading only its first bytes: the
    `Failure` it would meet (`InvalidURL.*`), or None. An `oss://` URL is the service's own
    storage: None. For a submitter that wants no more than that of a URL."""
    if is_oss(url):
        return None
    opened = open_remote(url, timeout or float(limits.URL_DOWNLOAD_TIMEOUT_S))
    if isinstance(opened, Failure):
        return opened
    opened.close()
    return None
