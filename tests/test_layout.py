"""The layout map (docs/layout.md) names every module of the code tree under its package."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flows", "tasks", "recovery")


def listed() -> set[str]:
    """Module paths the map names: each table row under its package's heading."""
    found: set[str] = set()
    package = None
    for line in (ROOT / "docs" / "layout.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## `(.+)/`", line)
        if heading:
            package = heading.group(1)
            continue
        row = re.match(r"\| `([\w.]+\.py)` \|", line)
        if row and package:
            found.add(f"{package}/{row.group(1)}")
    return found


def modules() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for top in PACKAGES
        for path in (ROOT / top).rglob("*.py")
        if path.name != "__init__.py" and "versions" not in path.parts
    }


def test_every_module_is_in_the_layout_map() -> None:
    missing = sorted(modules() - listed())
    assert not missing, f"docs/layout.md does not name: {missing}"


def test_the_layout_map_names_no_module_that_is_gone() -> None:
    gone = sorted(listed() - modules())
    assert not gone, f"docs/layout.md names modules that do not exist: {gone}"
