"""`retalk cache`: where the result cache is, what it holds, and emptying it."""

from __future__ import annotations

import click

from retalk.cli.common import main


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

    stats = ResultCache().stats()
    click.echo(f"{stats.folder}: {stats.entries} results, {stats.size:,} bytes")


@cache.command()
def clear() -> None:
    """Remove every stored result."""
    from retalk.cache import ResultCache

    removed = ResultCache().clear()
    click.echo(f"removed {removed.entries} results ({removed.size:,} bytes) from {removed.folder}")
