"""detectors/ is pure math: it imports the standard library's pure parts, numpy, scipy and pyarrow.

The positive list lives here; ``detectors/ruff.toml`` bans the usual suspects at lint time too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DETECTORS = Path(__file__).resolve().parents[2] / "detectors"
THIRD_PARTY = {"numpy", "scipy", "pyarrow"}
# Standard-library modules that bring I/O, clocks, processes or the network.
IMPURE_STDLIB = {"os", "io", "time", "datetime", "socket", "subprocess", "threading", "logging", "pathlib", "shutil"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(DETECTORS.glob("*.py")), ids=lambda p: p.name)
def test_detectors_import_only_pure_modules(path: Path) -> None:
    allowed = THIRD_PARTY | {"detectors", "__future__"} | (set(sys.stdlib_module_names) - IMPURE_STDLIB)
    assert imported_roots(path) <= allowed, f"{path.name} imports {sorted(imported_roots(path) - allowed)}"
