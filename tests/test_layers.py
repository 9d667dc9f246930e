"""Imports point downward only: core never imports capabilities or interfaces."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pollwatch"

# package -> the pollwatch subpackages it must never import: those of its own layer and above in
# docs/architecture.md, plus the exceptions below it that the page names
# (tests/test_docs_architecture.py checks the page against this table)
FORBIDDEN = {
    "results": {"cli", "web", "evidence", "forensics", "reports", "calibration"}
    | {"video", "turnout", "testing", "synthetic", "appdb", "observers"},
    "evidence": {"cli", "web", "results", "forensics", "reports", "calibration", "video"}
    | {"turnout", "testing", "synthetic", "appdb", "observers"},
    "appdb": {"cli", "web", "results", "evidence", "forensics", "reports", "calibration"}
    | {"video", "turnout", "testing", "synthetic", "observers"},
    "forensics": {"cli", "web", "evidence", "reports", "calibration"}
    | {"video", "turnout", "testing", "synthetic", "observers"},
    "synthetic": {"cli", "web", "evidence", "reports", "calibration"}
    | {"video", "turnout", "testing", "forensics", "observers"},
    "observers": {"cli", "web", "forensics", "reports", "calibration"}
    | {"video", "turnout", "testing", "synthetic"},
    "calibration": {"cli", "web", "evidence", "reports", "turnout", "testing"},
    "reports": {"cli", "web", "video", "calibration", "turnout", "testing"},
    "video": {"cli", "web", "results", "forensics", "reports", "calibration"}
    | {"turnout", "testing", "synthetic", "observers"},
    "web": {"cli", "testing"},
    "turnout": {"cli", "web", "evidence", "reports", "calibration", "video", "testing"},
    "testing": {"cli", "web"},
    "cli": {"testing"},
}
CORE_MODULES = {"settings", "errors", "registry", "environment", "spreadsheet", "fileio"}
CORE_MODULES |= {"_notebook"}  # notebook renderings: imports nothing of pollwatch


def imported_pollwatch_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pollwatch" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(package: str) -> None:
    for path in (PACKAGE / package).rglob("*.py"):
        bad = imported_pollwatch_modules(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(PACKAGE)} imports pollwatch.{sorted(bad)}"


@pytest.mark.parametrize("module", sorted(CORE_MODULES))
def test_core_utilities_import_nothing_above_them(module: str) -> None:
    imported = imported_pollwatch_modules(PACKAGE / f"{module}.py")
    assert imported <= CORE_MODULES, f"{module} imports {sorted(imported - CORE_MODULES)}"
