"""`retalk config`: the policy in force, each value and where it came from."""

from __future__ import annotations

import json
from typing import Any

import click

from retalk.cli.check import policy_or_exit
from retalk.cli.common import main
from retalk.policy import LIMIT_KEYS, Policy
from retalk.report.escape import printable

_TABLE_ATTRS = {"video": "video", "audio": "audio", "ref": "image"}


def policy_values(policy: Policy) -> dict[str, dict[str, Any]]:
    """Each key of the policy (`select` … `video.max-side` …) → its value and its source."""
    strict: Any = policy.strict if isinstance(policy.strict, bool) else list(policy.strict)
    values: dict[str, Any] = {
        "select": list(policy.select),
        "ignore": list(policy.ignore),
        "strict": strict,
        "per-path-ignores": {glob: list(p) for glob, p in policy.per_path_ignores},
        "face-samples": policy.face_samples,
    }
    result = {key: {"value": value, "source": policy.source(key)} for key, value in values.items()}
    for key in LIMIT_KEYS:
        value = key.get(policy.limits_for(key.table))
        source = policy.source(key.key)
        result[key.key] = {
            "value": int(value) if key.integer else value,
            "source": "the service's limit" if source == "default" else source,
        }
    return result


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else f"{value:.1f}"
    return json.dumps(value)


def render_config(policy: Policy) -> str:
    """The policy as TOML a config file could hold, each value's source as a comment."""
    shown = policy.config or "none found: the service's limits, every finding code"
    lines = [f"# config: {shown}"]
    if policy.root is not None and policy.per_path_ignores:
        lines.append(f"# per-path-ignores globs are relative to {policy.root}")
    table = None
    rows: list[tuple[str, str]] = []
    for key, item in policy_values(policy).items():
        head, _, name = key.rpartition(".")
        if head and head != table:
            rows.append((f"\n[{head}]", ""))
            table = head
        rows.append((f"{name} = {_toml(item['value'])}", item["source"]))
    width = max(len(text) for text, source in rows if source)
    for text, source in rows:
        lines.append(f"{text:<{width}}  # {source}" if source else text)
    return "\n".join(printable(line) for part in lines for line in part.split("\n"))


@main.command("config")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=str, readable=False),
    help="The policy file to read instead of the nearest one.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--select", multiple=True, metavar="PREFIX", help="As `retalk check --select`.")
@click.option("--ignore", multiple=True, metavar="PREFIX", help="As `retalk check --ignore`.")
@click.option("--strict/--no-strict", default=None, help="As `retalk check --strict`.")
def config_command(
    config: str | None,
    fmt: str,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    strict: bool | None,
) -> None:
    """Print the policy in force (from pyproject.toml's [tool.retalk] or .retalk.toml, the
    nearest from the current folder upward), each value and where it came from."""
    policy = policy_or_exit(config, select=select, ignore=ignore, strict=strict)
    if fmt == "json":
        data = {
            "config": policy.config,
            "root": policy.root,
            "fingerprint": policy.fingerprint(),
            "values": policy_values(policy),
        }
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_config(policy))
