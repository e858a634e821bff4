"""Which findings count, as flake8 decides it: for each finding the longest matching prefix
among `select` and `ignore` wins (`--ignore File. --select File.NearLimit` keeps NearLimit); an
empty `select` selects all. A prefix of an older spelling (`codes.ALIASES`) stands for its
current code too. Applied to a judged report, never inside the rules. `codes.NEVER_DROPPED`
(a file not read, or not judged) are kept whatever the selection."""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from retalk.codes import ALIASES, CODES, NEVER_DROPPED
from retalk.errors import PolicyError

if TYPE_CHECKING:
    from retalk.findings import Finding, Report
    from retalk.policy.model import Policy

_NAMES: dict[str, tuple[str, ...]] = {
    code: (code, *(alias for alias, current in ALIASES.items() if current == code))
    for code in CODES
}
"""Each code with its older spellings."""


def _match(code: str, prefixes: Iterable[str]) -> int:
    """The length of the longest prefix in `prefixes` that `code` (or an older spelling of it)
    starts with; -1 when none does."""
    names = _NAMES.get(code, (code,))
    return max((len(p) for p in prefixes if any(n.startswith(p) for n in names)), default=-1)


def is_selected(code: str, select: Iterable[str] = (), ignore: Iterable[str] = ()) -> bool:
    """Whether a finding of `code` is kept: the longer of its matching `select` and `ignore`
    prefixes decides (a tie drops it); an empty `select` selects every code. A code of
    `NEVER_DROPPED` is always kept."""
    return code in NEVER_DROPPED or _chosen(code, tuple(select), tuple(ignore))


def _chosen(code: str, select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    chosen = _match(code, select) if select else 0
    return chosen >= 0 and chosen > _match(code, ignore)


def kept_anyway(found: Finding, policy: Policy) -> bool:
    """Whether `found` is kept only because no selection drops its code (`NEVER_DROPPED`):
    the policy's `select`, `ignore` or per-path ignores would have dropped it."""
    if found.code not in NEVER_DROPPED:
        return False
    return not _chosen(found.code, policy.select, policy.ignore) or _ignored_here(found, policy)


def select_findings(
    findings: Iterable[Finding], select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> tuple[Finding, ...]:
    """The findings `is_selected` keeps, in order."""
    select, ignore = tuple(select), tuple(ignore)
    return tuple(f for f in findings if is_selected(f.code, select, ignore))


def apply_policy(report: Report, policy: Policy) -> Report:
    """`report` with the policy's selection applied: `select` and `ignore`, then the per-path
    ignores of the paths that match their globs."""
    kept = select_findings(report.findings, policy.select, policy.ignore)
    if policy.per_path_ignores:
        kept = tuple(f for f in kept if f.code in NEVER_DROPPED or not _ignored_here(f, policy))
    return report.selected(kept)


def _ignored_here(found: Finding, policy: Policy) -> bool:
    prefixes = path_ignores(found.path, policy)
    return bool(prefixes) and _match(found.code, prefixes) >= 0


def path_ignores(path: str, policy: Policy) -> tuple[str, ...]:
    """The prefixes the per-path ignores drop for `path`: those of each glob that matches its
    place relative to the config file's folder (a glob without a `/` also matches the name
    alone, as ruff's per-file-ignores do)."""
    if not policy.per_path_ignores or policy.root is None:
        return ()
    here = os.path.relpath(os.path.abspath(path), policy.root)
    if here == ".." or here.startswith(".." + os.sep):
        return ()
    here = here.replace(os.sep, "/")
    name = here.rsplit("/", 1)[-1]
    found: list[str] = []
    for glob, prefixes in policy.per_path_ignores:
        pattern = glob.removeprefix("./")
        if fnmatch.fnmatchcase(here, pattern) or (
            "/" not in pattern and fnmatch.fnmatchcase(name, pattern)
        ):
            found.extend(prefixes)
    return tuple(found)


def fails(report: Report, policy: Policy) -> bool:
    """Whether the (selected) report fails the check: an error, or a warning `strict` names."""
    return not report.ok or any(policy.strict_on(f.code) for f in report.warnings)


def check_prefixes(prefixes: Iterable[str], where: str) -> None:
    """Raise `PolicyError` for a prefix no code (nor older spelling) starts with, naming
    `where` it was given and the code it was probably meant to be: codes are case-sensitive,
    and a typo would otherwise select nothing, or ignore nothing, silently. An empty or blank
    prefix is one too: it would match every code."""
    for prefix in prefixes:
        if not prefix.strip():
            raise PolicyError(
                f"{where}: an empty prefix ({prefix!r}) would match every code; "
                "give code prefixes such as File. or InvalidFile.FPS"
            )
        if any(name.startswith(prefix) for name in _all_names()):
            continue
        guess = suggest(prefix)
        hint = f"; did you mean {guess}?" if guess else ""
        raise PolicyError(f"{where}: no finding code starts with {prefix!r}{hint}")


def _all_names() -> Iterable[str]:
    return (name for names in _NAMES.values() for name in names)


def suggest(prefix: str) -> str | None:
    """The prefix `prefix` was probably meant to be: the same letters in another case, or a
    close spelling of a code, a family (`File.`) or a code's start. A whole code is preferred
    when it is nearly as close as the best (`Audio.Silense`: `Audio.Silences`, not the start
    `Audio.Silence`)."""
    lowered = prefix.lower()
    for name in _all_names():
        if name.lower().startswith(lowered):
            return name[: len(prefix)]
    codes = sorted(set(_all_names()))
    families = {name.split(".")[0] + "." for name in codes}
    starts = {name[: len(prefix)] for name in codes}
    candidates = sorted({*codes, *families, *starts})
    close = difflib.get_close_matches(prefix, candidates, n=1, cutoff=0.75)
    if not close:
        return None
    code = difflib.get_close_matches(prefix, codes, n=1, cutoff=0.75)
    if code and _ratio(prefix, code[0]) >= _ratio(prefix, close[0]) - _WHOLE_CODE_MARGIN:
        return code[0]
    return close[0]


_WHOLE_CODE_MARGIN = 0.1
"""How much less close a whole code may be than the closest start or family and still be the
suggestion: `InvalidFle.` is `InvalidFile.` (0.96), not `InvalidFile.FPS` (0.85)."""


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()
