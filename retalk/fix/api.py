"""`retalk.fix`: the library call behind `retalk fix`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from retalk.errors import FixRefused
from retalk.findings import Finding, Report
from retalk.fix.change import Change
from retalk.fix.plan import Plan, default_output, plan_fix, role_of_output
from retalk.policy import SERVICE, Policy, fails
from retalk.preflight.media import Media

_ROLE_WORDS = {"video": "video", "audio": "audio", "ref": "reference image"}


@dataclass(frozen=True)
class FixResult:
    """What `fix` did with one file."""

    plan: Plan
    """What it planned: the changes, the ffmpeg command (or a copy, or an image pass)."""
    output: str
    """The file written (with `dry_run`, the one that would be)."""
    report: Report | None
    """The output's own check, in the role it was made for; None with `dry_run`."""
    written: bool
    """False with `dry_run`."""
    needs_force: bool = False
    """With `dry_run`: the output exists, so the real run needs `force`."""
    remaining: tuple[Finding, ...] = ()
    """The input's errors and warnings that the plan does not answer (`Face.None`, a clip on
    the 2 s edge): what the output will still be told, as far as the input's check saw."""

    @property
    def changes(self) -> tuple[Change, ...]:
        """One line per rule: before → after."""
        return self.plan.changes

    policy: Policy = SERVICE
    """The policy the output was checked under (its `strict` counts)."""

    @property
    def ok(self) -> bool:
        """True when the service would take the output and make something of it: no error
        (nor a warning the policy's `strict` names), and a face and speech where they were
        looked for (`Face.None`, `Audio.NoSpeech`: the service would return the video
        unchanged). Always True with `dry_run`."""
        if self.report is None:
            return True
        useless = any(f.code in _POINTLESS for f in self.report.findings)
        return not fails(self.report, self.policy) and not useless


_POINTLESS = frozenset({"Face.None", "Audio.NoSpeech"})


def fix(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    role: str | None = None,
    policy: Policy | None = None,
    force: bool = False,
    content: bool = True,
    dry_run: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
) -> FixResult:
    """Make a file the service takes from `input`, at `output` (default: `STEM-fixed.EXT`
    beside it), in `role` (`video`, `audio`, `ref`; default: the output's ending, else the
    input's content), changing only what fails. Checks the output (with `content`, its faces
    and speech too). Raises FixRefused (nothing written), ValueError for an output ending fix
    does not write, `EnvironmentProblem` when ffmpeg or a model is missing. `on_plan` is told
    the plan before anything is written (an encode of a long clip takes minutes)."""
    source = os.fspath(input)
    rules = policy or SERVICE
    if role is not None and role not in _ROLE_WORDS:
        raise ValueError(f"role must be video, audio or ref, not {role!r}")
    target = os.fspath(output) if output is not None else None
    if target is not None:
        _usable_output(target)
    wanted = role or (role_of_output(target) if target is not None else None)
    if target is not None and role is not None and role_of_output(target) != role:
        raise FixRefused(
            f"{target} names a {_ROLE_WORDS[role_of_output(target)]} file, not a "
            f"{_ROLE_WORDS[role]}",
            usage=True,
        )
    _readable(source)
    media = _gathered(source, wanted, content, rules)
    from retalk.preflight.check import role_of

    chosen = wanted or role_of(media)
    if chosen is None:
        raise FixRefused(f"{source}: {media.open_error or 'not media fix knows'}")
    _swapped(media, chosen)
    defaulted = target is None
    plan = plan_fix(
        media, chosen, rules, target or default_output(source, chosen, media), defaulted=defaulted
    )
    target = plan.output
    _writable(source, target, force or dry_run)  # a dry run writes nothing: `needs_force`
    if plan.refusal is not None:
        raise FixRefused(f"{source}: {plan.refusal}")
    from retalk.codes import Severity
    from retalk.policy import apply_policy
    from retalk.preflight.check import judge

    seen = apply_policy(judge(media, chosen, rules), rules).findings
    remaining = tuple(
        f for f in seen if f.severity is not Severity.INFO and f.code not in plan.fixed_codes
    )
    if dry_run:
        taken = not force and os.path.lexists(target)
        return FixResult(plan, target, None, False, taken, remaining, rules)
    from retalk.fix.write import carry_out

    if on_plan is not None:
        on_plan(plan)
    carry_out(plan, replace=force)
    from retalk.preflight.check import check_audio, check_image, check_video

    check = {"video": check_video, "audio": check_audio, "ref": check_image}[chosen]
    report = check(target, content=content, policy=rules)
    return FixResult(plan, target, report, True, False, remaining, rules)


def _readable(source: str) -> None:
    if os.path.isdir(source):
        raise FixRefused(f"{source} is a folder: fix takes one file", usage=True)
    if not os.path.lexists(source):
        raise FixRefused(f"{source}: no such file", usage=True)


def _gathered(source: str, role: str | None, content: bool, policy: Policy) -> Media:
    """The input gathered as its role needs: metadata for a video (the plan needs no more),
    its speech for an audio (the loudness), its faces for an image (where to cut)."""
    from retalk.preflight.check import inspect, role_of
    from retalk.preflight.media import gather

    if role is None:
        media = gather(source, content=False)
        role = role_of(media)
        if role == "video" or not content or media.kind not in ("audio", "image"):
            return media
    if role == "video" or not content:
        return gather(source, content=False)
    return inspect(source, role, content=True, policy=policy)[0]


def _swapped(media: Media, role: str) -> None:
    if media.open_error is not None or media.unreadable is not None:
        return
    kind = media.kind
    if (role == "video" and kind in ("audio", "image")) or (role == "ref" and kind == "audio"):
        raise FixRefused(
            f"{media.path}: this looks like {kind if kind == 'audio' else 'an image'}, given as "
            f"the {_ROLE_WORDS[role]}: the roles look swapped",
            usage=True,
        )


def _usable_output(target: str) -> None:
    """Refused before anything is read or encoded: an output that is a folder or not a
    regular file, or a name the folder cannot hold."""
    import stat

    if os.path.isdir(target):
        raise FixRefused(f"{target} is a folder: name the file to write", usage=True)
    try:
        mode = os.stat(target).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise FixRefused(
            f"{target} is not a regular file (a device, a FIFO or a socket): fix writes files",
            usage=True,
        )
    folder = os.path.dirname(target) or "."
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return
    if len(os.fsencode(os.path.basename(target))) > longest:
        raise FixRefused(
            f"{target}: a name longer than the folder takes ({longest} bytes)", usage=True
        )


def _writable(source: str, target: str, force: bool) -> None:
    if os.path.isdir(target):
        raise FixRefused(f"{target} is a folder: name the file to write", usage=True)
    folder = os.path.dirname(target)
    if folder and not os.path.isdir(folder):
        raise FixRefused(f"no folder {folder} for {target}", usage=True)
    if os.path.lexists(target):
        try:
            same = os.path.samefile(source, target)
        except OSError:
            same = False
        if same or os.path.abspath(source) == os.path.abspath(target):
            raise FixRefused(f"{target} is the input itself: fix never writes over it", usage=True)
        if not force:
            raise FixRefused(f"{target} exists: give --force to replace it", usage=True)
