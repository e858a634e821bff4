"""The one place where rules are registered: for each role, the rules that judge it, in the
order their findings are listed. A rule is a small pure function from a gathered `Media` to
findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from retalk.findings import Finding
from retalk.limits import AUDIO, IMAGE, VIDEO
from retalk.preflight import audio, common, image, speech_rules, video
from retalk.preflight.faces import rules as faces
from retalk.preflight.media import Media

Rule = Callable[[Media], Iterable[Finding]]

RULES: dict[str, tuple[Rule, ...]] = {
    "video": (
        partial(common.container, role=VIDEO),
        partial(common.openable, role=VIDEO),
        partial(common.cut_short, role=VIDEO),
        partial(common.damaged, role=VIDEO),
        video.has_video,
        video.codec,
        partial(common.size, role=VIDEO),
        video.duration,
        video.frame_rate,
        video.resolution,
        partial(common.ending, role=VIDEO),
        faces.reference_match,
        faces.no_face,
        faces.several,
        faces.turned,
        faces.small,
        faces.gaps,
        faces.partial,
    ),
    "audio": (
        partial(common.container, role=AUDIO),
        partial(common.openable, role=AUDIO),
        partial(common.cut_short, role=AUDIO),
        partial(common.damaged, role=AUDIO),
        audio.codec,
        partial(common.size, role=AUDIO),
        audio.duration,
        partial(common.ending, role=AUDIO),
        speech_rules.no_speech,
        speech_rules.quiet,
        speech_rules.noisy,
        speech_rules.clipped,
        speech_rules.silences,
    ),
    "ref": (
        partial(common.container, role=IMAGE),
        partial(common.openable, role=IMAGE),
        partial(common.size, role=IMAGE),
        image.shape,
        partial(common.ending, role=IMAGE),
        faces.image_content,
        faces.turned,
        faces.small,
    ),
}

RULES_VERSION = 1  # bump when a rule's outcome changes: the result cache keys on it
