from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.recipes import build_all, cache_dir

ROOT = Path(__file__).resolve().parent.parent
RETALK = str(Path(sys.executable).with_name("retalk"))

# Never the user's cache: every retalk this session runs, the library included, gets a folder
# of the session's (and each test one of its own, below).
_SESSION_CACHE = tempfile.mkdtemp(prefix="retalk-test-cache-")
os.environ["RETALK_CACHE_DIR"] = _SESSION_CACHE
atexit.register(shutil.rmtree, _SESSION_CACHE, True)


@pytest.fixture(autouse=True)
def result_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty result cache for each test, so that a test's first check of a file is a fresh
    analysis (a later check of the same bytes in the same test is a hit)."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("RETALK_CACHE_DIR", str(folder))
    # And a ledger of single submits of its own (never the user's: `retalk.jobs.ledger`).
    monkeypatch.setenv("RETALK_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    return folder


@pytest.fixture(scope="session")
def media() -> Path:
    """Every sample of `fixtures/recipes.py`, made once and kept between runs (tests/.media).
    Under pytest-xdist each worker asks: one builds while the others wait on the lock."""
    root = ROOT / "tests" / ".media"
    root.mkdir(parents=True, exist_ok=True)
    with open(root.parent / ".media.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_all(cache_dir(root))


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
