"""The entry of the pre-commit hooks (`.pre-commit-hooks.yaml`): `retalk check` over the media
files pre-commit passes.

pre-commit runs the hook's `entry`, then its `args`, then the names of the staged files. The
options are read from the front by `retalk check`'s own definitions; what follows are file
names, put after `--`, so that a name beginning with a dash (`-take2.mp4`) is a file. Of those,
only names with a media ending are checked: a `files:` that narrows the hook to a folder
(`^clips/`) replaces its pattern of endings, and a subtitle or a note there is not media.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from retalk.preflight.formats import MEDIA_ENDINGS


def main(argv: Sequence[str] | None = None) -> int:
    """Run `retalk check OPTIONS -- MEDIA_FILES`; returns its exit code (0 when pre-commit
    passed no media file)."""
    from retalk.cli import main as cli

    args = list(sys.argv[1:] if argv is None else argv)
    split = _options_end(args)
    files = [name for name in args[split:] if _is_media(name)]
    if not files and split < len(args):
        return 0
    try:
        cli.main(args=["check", *args[:split], "--", *files], prog_name="retalk")
    except SystemExit as end:
        return end.code if isinstance(end.code, int) else 0 if end.code is None else 1
    return 0


def _options_end(args: list[str]) -> int:
    """Where `retalk check`'s options end in `args`: at `--`, at an existing file (pre-commit's
    names follow the options), or at the first argument that is none of the options (nor an
    option's value)."""
    from retalk.cli.check import check

    takes_value: dict[str, bool] = {}
    for param in check.params:
        for name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            if name.startswith("-"):
                takes_value[name] = not getattr(param, "is_flag", False)
    at = 0
    while at < len(args):
        arg = args[at]
        if arg == "--":
            del args[at]
            return at
        name = arg.split("=", 1)[0]
        if arg not in takes_value and os.path.lexists(arg):
            return at  # a staged file, though named like an option (`--ignore=x.mp4`)
        if name not in takes_value:
            # An unknown option that is no file is left to `retalk check` to refuse.
            if arg.startswith("-") and not os.path.lexists(arg):
                at += 1
                continue
            return at
        at += 2 if takes_value[name] and "=" not in arg else 1
    return at


def _is_media(name: str) -> bool:
    return os.path.splitext(name)[1].lower().lstrip(".") in MEDIA_ENDINGS


if __name__ == "__main__":
    raise SystemExit(main())
