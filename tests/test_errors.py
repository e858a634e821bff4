"""The exception tree drawn in `retalk.errors` is the tree of the real classes: each drawn class
exists, is exported by the package the drawing names, has the drawn parent, and no RetalkError
subclass is left out of the drawing."""

from __future__ import annotations

import re

import retalk
import retalk.client
import retalk.errors

_ROW = re.compile(
    r"^    (?P<indent>[ │]*)(?:[├└]── )?(?P<name>[A-Za-z]+)\s+(?P<pkg>retalk|client)\s"
)


def _drawing() -> list[tuple[str, str | None, str]]:
    """(class, drawn parent, package) for each row, parents found by indentation."""
    doc = retalk.errors.__doc__ or ""
    rows, stack = [], []  # stack of (depth, name)
    for line in doc.splitlines():
        found = _ROW.match(line)
        if not found:
            continue
        depth = len(found["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        rows.append((found["name"], stack[-1][1] if stack else None, found["pkg"]))
        stack.append((depth, found["name"]))
    return rows


def _all_subclasses(root: type) -> set[type]:
    found = set()
    for kind in root.__subclasses__():
        found |= {kind, *_all_subclasses(kind)}
    return found


def test_the_drawing_is_the_tree() -> None:
    rows = _drawing()
    assert len(rows) >= 18 and rows[0] == ("RetalkError", None, "retalk")
    packages = {"retalk": retalk, "client": retalk.client}
    classes = {}
    for name, parent, package in rows:
        module = packages[package]
        assert name in module.__all__, f"{name} is not exported by {module.__name__}"
        kind = getattr(module, name)
        classes[name] = kind
        assert issubclass(kind, retalk.RetalkError)
        if parent is not None:
            assert kind.__bases__ == (classes[parent],), f"{name}'s parent is not {parent}"
    real = {k for k in _all_subclasses(retalk.RetalkError) if k.__module__.startswith("retalk.")}
    assert real == set(classes.values()) - {retalk.RetalkError}, "a class is not drawn"


def test_the_drawing_is_the_only_one() -> None:
    import retalk.client.errors

    assert "├──" not in (retalk.client.errors.__doc__ or "")
