"""The hints of `retalk check` made by `fix`'s own planner: every finding that `fix` repairs
gets, as its hint, the one command that `fix` runs for the file, so that the two cannot
disagree (and a file with several problems gets one command, not several)."""

from __future__ import annotations

from retalk.findings import Finding
from retalk.fix.plan import default_output, plan_fix
from retalk.policy import Policy
from retalk.preflight.media import Media


def with_fix_hints(
    media: Media, role: str, policy: Policy, findings: tuple[Finding, ...]
) -> tuple[Finding, ...]:
    """`findings` of `media` in `role`, those that `fix` repairs hinted with its command; the
    others keep their own hints."""
    if not findings or media.url is not None:
        return findings
    output = default_output(media.path, role, media)
    plan = plan_fix(media, role, policy, output, defaulted=True)
    if plan.refusal is not None:
        # fix's own words, in place of any command: the two make one decision.
        said = f"fix refuses it: {plan.refusal}"
        return tuple(f._replace(hint=said) if _command(f.hint) else f for f in findings)
    command = plan.command()
    if not command:
        return findings
    codes = plan.fixed_codes
    return tuple(f._replace(hint=command) if f.code in codes else f for f in findings)


def _command(hint: str | None) -> bool:
    return hint is not None and hint.startswith(("ffmpeg ", "retalk fix "))
