"""The README documents every finding code, and the output format it promises."""

from __future__ import annotations

import re
from pathlib import Path

from retalk.codes import CODES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _documented() -> dict[str, str]:
    """Code → severity, from the README's table of codes."""
    rows = re.findall(r"^\| `([A-Za-z]+(?:\.[A-Za-z]+)?)` \| (error|warning|info) \|", README, re.M)
    return dict(rows)


def test_every_code_is_documented_with_its_severity() -> None:
    assert _documented() == {name: code.severity.value for name, code in CODES.items()}


def test_the_readme_names_its_two_commands() -> None:
    assert "make demo" in README and "make test" in README
    assert "make test" in (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
