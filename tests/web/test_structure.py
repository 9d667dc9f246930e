"""The shape of the web package: small route functions, one router per area (issue 14).

Route handlers used to live in two closures of about 440 lines (``create_app`` and the video
``register``); each area now has its own router module and every function stays short.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "src" / "pollwatch" / "web"
#: The most lines any function (or method) in pollwatch.web may span, decorators included.
MAX_FUNCTION_LINES = 79


def function_lengths(path: Path) -> dict[str, int]:
    """Every function and method of a module, by qualified name, with the lines it spans."""
    tree = ast.parse(path.read_text("utf-8"))
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                assert child.end_lineno is not None
                lengths[name] = child.end_lineno - first + 1
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return lengths


def test_the_measure_counts_nested_functions_and_decorators(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    body = "\n".join(f"        x{i} = {i}" for i in range(5))
    module.write_text(
        f"@decorator\ndef outer():\n    def inner():\n{body}\n    return inner\n\n"
        "class Thing:\n    def method(self):\n        return 1\n",
        encoding="utf-8",
    )
    assert function_lengths(module) == {"outer": 9, "outer.inner": 6, "Thing.method": 2}


@pytest.mark.parametrize("path", sorted(WEB.glob("*.py")), ids=lambda p: p.name)
def test_no_function_in_the_web_package_is_long(path: Path) -> None:
    long = {
        name: lines for name, lines in function_lengths(path).items() if lines > MAX_FUNCTION_LINES
    }
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_every_area_has_its_router() -> None:
    from fastapi import APIRouter

    from pollwatch.web import analysis, audit, compare, elections, imports, static, turnout, video
    from pollwatch.web.app import ROUTERS

    modules = (analysis, audit, compare, elections, imports, static, turnout, video)
    assert all(isinstance(module.router, APIRouter) for module in modules)
    assert {id(module.router) for module in modules} == {id(router) for router in ROUTERS}
