from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.recipes import build_all, cache_dir

ROOT = Path(__file__).resolve().parent.parent
RETALK = str(Path(sys.executable).with_name("retalk"))


@pytest.fixture(scope="session")
def media() -> Path:
    """Every sample of `fixtures/recipes.py`, made once and kept between runs (tests/.media)."""
    return build_all(cache_dir(ROOT / "tests" / ".media"))


@pytest.fixture
def run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the installed `retalk` command for real, as a user would."""

    def call(
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        prefix: list[str] | tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, RETALK, *args],
            cwd=cwd,
            env=env or dict(os.environ),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    return call
