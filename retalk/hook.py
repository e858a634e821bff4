"""The entry of the pre-commit hooks (`.pre-commit-hooks.yaml`): `retalk check` over the files
pre-commit passes.

pre-commit runs the hook's `entry`, then its `args`, then the names of the staged files. A
file whose name begins with a dash (`-take2.mp4`, at the top of the repository) would be read
as an option; so the trailing arguments that name existing media files are put after `--`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from retalk.preflight.formats import MEDIA_ENDINGS


def main(argv: Sequence[str] | None = None) -> int:
    """Run `retalk check ARGS -- FILES`; returns its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    split = len(args)
    while split > 0 and _is_media_file(args[split - 1]):
        split -= 1
    from retalk.cli import main as cli

    try:
        cli.main(args=["check", *args[:split], "--", *args[split:]], prog_name="retalk")
    except SystemExit as end:
        return end.code if isinstance(end.code, int) else 0 if end.code is None else 1
    return 0


def _is_media_file(arg: str) -> bool:
    ending = os.path.splitext(arg)[1].lower().lstrip(".")
    return ending in MEDIA_ENDINGS and os.path.lexists(arg)


if __name__ == "__main__":
    raise SystemExit(main())
