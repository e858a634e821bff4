"""`retalk fix`: parse, call `retalk.fix`, print what changed, exit."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from retalk.cli.check import policy_or_exit
from retalk.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from retalk.errors import EnvironmentProblem, FixRefused
from retalk.policy import fails
from retalk.report import RenderOptions, render
from retalk.report.escape import printable

if TYPE_CHECKING:
    from retalk.fix.plan import Plan


@main.command()
@click.argument("input", type=click.Path(path_type=str, readable=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=str, readable=False),
    help="The file to write: .mp4 or .mov (video), .wav or .mp3 (audio), .jpg or .png "
    "(reference image). Default: STEM-fixed.EXT beside INPUT.",
)
@click.option(
    "--role",
    type=click.Choice(["video", "audio", "ref"]),
    help="The input's role in the job (default: by the output's ending, else by content).",
)
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the command; write nothing.")
@click.option(
    "--no-content",
    is_flag=True,
    help="Metadata only: no speech or face analysis (quiet speech is then not raised).",
)
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=str, readable=False),
    help="The policy file (pyproject.toml or .retalk.toml) instead of the nearest one.",
)
def fix(
    input: str,
    output: str | None,
    role: str | None,
    force: bool,
    dry_run: bool,
    no_content: bool,
    config: str | None,
) -> None:
    """Write a file the service takes, made from INPUT: one ffmpeg run (a Pillow pass for an
    image) that changes only what fails. Prints each change (before → after); exits 1 when the
    output would still fail, saying why. Put `--` before a name that starts with a dash."""
    from retalk.fix.api import fix as run_fix

    policy = policy_or_exit(config)
    told: list[Plan] = []

    def tell(plan: Plan) -> None:
        told.append(plan)
        _print_changes(plan)
        if plan.argv is not None:
            click.echo(f"{printable(plan.source)}: encoding with ffmpeg…", err=True)

    try:
        result = run_fix(
            input,
            output,
            role=role,
            policy=policy,
            force=force,
            content=not no_content,
            dry_run=dry_run,
            on_plan=tell,
        )
    except ValueError as error:
        click.echo(f"retalk: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except FixRefused as refused:
        click.echo(f"retalk: {printable(str(refused))}", err=True)
        sys.exit(EXIT_USAGE if refused.usage else EXIT_FINDINGS)
    except EnvironmentProblem as problem:
        click.echo(f"retalk: {printable(str(problem))}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    except OSError as error:
        name = printable(str(error.filename or result_name(output)))
        click.echo(f"retalk: cannot write {name}: {error.strerror or error}", err=True)
        sys.exit(EXIT_FINDINGS)
    except KeyboardInterrupt:
        click.echo("retalk: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)

    plan = result.plan
    source, target = printable(plan.source), printable(result.output)
    if not told:
        _print_changes(plan)
    if dry_run:
        for left in result.remaining:
            click.echo(
                f"{source}: fix cannot change: {left.code}: {printable(left.message)}", err=True
            )
        if result.needs_force:
            click.echo(f"retalk: {target} exists: the real run needs --force", err=True)
        click.echo(plan.command() or _copied(plan.changes != (), source, target))
        sys.exit(EXIT_OK)
    what = "copied, nothing to change" if plan.copy else f"{len(plan.changes)} changed"
    if plan.copy and plan.changes:
        what = "copied as it is, under an ending that says what it holds"
    assert result.report is not None
    if result.ok:
        click.echo(f"wrote {target} ({what}): the service takes it")
        sys.exit(EXIT_OK)
    click.echo(render(result.report, "text", RenderOptions(quiet=True)), err=True)
    rejected = fails(result.report, result.policy)
    why = (
        "fix cannot change the above"
        if rejected
        else "the service takes it, but would return the video unchanged (the above)"
    )
    click.echo(f"wrote {target} ({what}), but it still fails: {why}", err=True)
    sys.exit(EXIT_FINDINGS)


def _print_changes(plan: Plan) -> None:
    source = printable(plan.source)
    for change in plan.changes:
        click.echo(f"{source}: {change}")


def _copied(renamed: bool, source: str, target: str) -> str:
    """The dry run's last line for a copy."""
    if renamed:
        return f"{source} would be copied as it is to {target}"
    return f"nothing to change: {source} would be copied as it is"


def result_name(output: str | None) -> str:
    return output or "the output"
