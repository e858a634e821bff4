"""`retalk cache`: where the result cache is, what it holds, and emptying it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from retalk.cli.common import EXIT_ENVIRONMENT, main

if TYPE_CHECKING:
    from retalk.cache import ResultCache


@main.group()
def cache() -> None:
    """The result cache of `retalk check` (RETALK_CACHE_DIR moves it)."""


@cache.command("dir")
def cache_dir() -> None:
    """Print the cache folder."""
    from retalk.cache import default_dir

    click.echo(default_dir())


@cache.command()
def info() -> None:
    """Where the cache is, how many results it holds, and their size."""
    from retalk.cache import ResultCache

    cache = _usable(ResultCache())
    stats = cache.stats()
    click.echo(f"{stats.folder}: {stats.entries} results, {stats.size:,} bytes")


@cache.command()
def clear() -> None:
    """Remove every stored result."""
    from retalk.cache import ResultCache

    removed = _usable(ResultCache()).clear()
    click.echo(f"removed {removed.entries} results ({removed.size:,} bytes) from {removed.folder}")


def _usable(cache: ResultCache) -> ResultCache:
    """`cache`, or one line on why its folder cannot be used and exit 3."""
    from retalk.cache import Unusable

    try:
        cache.usable()
    except Unusable as why:
        click.echo(f"retalk: the cache folder is unusable: {why} (checks run uncached)", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    return cache
