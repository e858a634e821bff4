"""The `retalk` command. Thin: parse options, call the library, render, pick the exit code."""

from retalk.cli import batch, cache, check, config, emulator, fix, service, submit  # noqa: F401  (they add their commands to the group)
from retalk.cli.common import main

__all__ = ["main"]
