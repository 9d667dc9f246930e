"""docs/architecture.md matches the code: its packages, its layers and what it names.

The page's layer table (columns ``layer``, ``package``, ``never imports, below it``) is read
and checked against

* the folders: every subpackage of ``src/pollwatch`` has a row, every row names a package (or
  core module) that exists, and the core-utilities row lists exactly ``CORE_MODULES`` of
  ``tests/test_layers.py``;
* the layer table of ``tests/test_layers.py`` (``FORBIDDEN``, reused, not copied): what a
  package must never import is the packages of its own layer and above plus the exceptions its
  row names, no more and no less, so the order the page states is the order the test enforces;
* the code: every import between pollwatch packages goes to a lower layer and not to an
  exception (the same walk over the sources as ``tests/test_layers.py``).

Every dotted ``pollwatch.…`` name in backticks must import, every repository path in backticks
(``tests/…``, ``docs/…``, ``src/…``) and every relative link must exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.test_docs_methods import markdown_tables, resolve, ticked
from tests.test_layers import CORE_MODULES, FORBIDDEN, PACKAGE, imported_pollwatch_modules

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
NONE_CELL = {"", "—", "-", "none"}


@dataclass(frozen=True)
class Row:
    layer: int
    packages: tuple[str, ...]  # subpackages as "name", core modules as "name"
    subpackages: bool  # whether the row's names were written as folders ("name/")
    exceptions: frozenset[str]


def subpackages() -> set[str]:
    return {path.parent.name for path in PACKAGE.glob("*/__init__.py")}


def layer_rows(text: str) -> tuple[list[Row], list[str]]:
    """The layer table's rows, and what is wrong with its shape."""
    problems: list[str] = []
    tables = [
        t for t in markdown_tables(text.splitlines()) if t and {"layer", "package"} <= set(t[0])
    ]
    if len(tables) != 1:
        return [], [f"docs/architecture.md: {len(tables)} layer tables, want one"]
    header = list(tables[0][0])
    exceptions_column = next((h for h in header if "never imports" in h), None)
    if exceptions_column is None:
        problems.append("docs/architecture.md: the layer table has no 'never imports' column")
    rows = []
    for cells in tables[0]:
        layer = re.match(r"\s*(\d+)", cells["layer"])
        names = ticked(cells["package"])
        if layer is None or not names:
            problems.append(f"docs/architecture.md: row {cells} needs a layer number and names")
            continue
        folders = [name.endswith("/") for name in names]
        if any(folders) and not all(folders):
            problems.append(f"docs/architecture.md: row {cells} mixes folders and modules")
        cell = cells.get(exceptions_column or "", "")
        exceptions = (
            frozenset()
            if " ".join(cell.split()).lower() in NONE_CELL or not all(folders)
            else frozenset(ticked(cell))
        )
        rows.append(
            Row(
                int(layer.group(1)),
                tuple(name.rstrip("/") for name in names),
                all(folders),
                exceptions,
            )
        )
    return rows, problems


def page_problems(text: str) -> list[str]:
    rows, problems = layer_rows(text)
    if not rows:
        return problems
    layer_of: dict[str, int] = {}
    exceptions: dict[str, frozenset[str]] = {}
    core: set[str] = set()
    for row in rows:
        for name in row.packages:
            if name in layer_of or name in core:
                problems.append(f"docs/architecture.md: `{name}` has two rows")
            if row.subpackages:
                layer_of[name] = row.layer
                exceptions[name] = row.exceptions
            else:
                core.add(name)
                if row.layer != min(r.layer for r in rows):
                    problems.append(f"docs/architecture.md: core module `{name}` is not lowest")
    # the folders
    existing = subpackages()
    problems += [
        f"docs/architecture.md: `{name}/` is described but src/pollwatch/{name} is no package"
        for name in sorted(set(layer_of) - existing)
    ]
    problems += [
        f"docs/architecture.md: the package `{name}/` (src/pollwatch/{name}) has no row"
        for name in sorted(existing - set(layer_of))
    ]
    problems += [
        f"docs/architecture.md: core module `{name}` has no src/pollwatch/{name}.py"
        for name in sorted(core)
        if not (PACKAGE / f"{name}.py").is_file()
    ]
    if core != CORE_MODULES:
        problems.append(
            f"docs/architecture.md: the core utilities are {sorted(core)}, tests/test_layers.py "
            f"CORE_MODULES says {sorted(CORE_MODULES)}"
        )
    # the layer table of tests/test_layers.py
    for name, layer in sorted(layer_of.items()):
        above = {other for other, level in layer_of.items() if level >= layer and other != name}
        below = exceptions[name]
        wrong = {e for e in below if e not in layer_of or layer_of[e] >= layer}
        if wrong:
            problems.append(
                f"docs/architecture.md: `{name}/` names {sorted(wrong)} as exceptions below it, "
                "but they are not packages of a lower layer"
            )
        stated = above | below
        enforced = FORBIDDEN.get(name, set())
        if stated != enforced:
            problems.append(
                f"docs/architecture.md: `{name}/` (layer {layer}) may not import "
                f"{sorted(stated)} by the page, tests/test_layers.py FORBIDDEN says "
                f"{sorted(enforced)} (missing there: {sorted(stated - enforced)}; not on the "
                f"page: {sorted(enforced - stated)})"
            )
    problems += [
        f"tests/test_layers.py: FORBIDDEN has a row for `{name}`, which the page does not show"
        for name in sorted(set(FORBIDDEN) - set(layer_of))
    ]
    # the code
    for name, layer in sorted(layer_of.items()):
        if name not in existing:
            continue
        allowed = {o for o, level in layer_of.items() if level < layer} - exceptions[name]
        for path in sorted((PACKAGE / name).rglob("*.py")):
            bad = imported_pollwatch_modules(path) - {name} - allowed - CORE_MODULES
            if bad:
                problems.append(
                    f"src/pollwatch/{path.relative_to(PACKAGE)} imports pollwatch.{sorted(bad)}, "
                    f"not below `{name}/` on docs/architecture.md"
                )
    return problems


def registries_in_code() -> dict[str, str]:
    """Every module-level ``NAME: Registry[...] = Registry(...)`` of src/pollwatch, by module."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in re.findall(r"(?m)^([A-Z_]+): Registry\[", path.read_text("utf-8")):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            found[name] = ".".join(part for part in parts if part != "__init__")
    return found


def seam_problems(text: str) -> tuple[list[str], set[str]]:
    """The seams table: each interface imports, each registry is an attribute of the interface's
    module with the stated entry-point group, and every registry in the code has a row.

    Also returns the entry-point groups the table names (dotted, but not modules)."""
    problems: list[str] = []
    groups: set[str] = set()
    tables = [
        t for t in markdown_tables(text.splitlines()) if t and {"seam", "interface"} <= set(t[0])
    ]
    if len(tables) != 1:
        return [f"docs/architecture.md: {len(tables)} seams tables, want one"], groups
    registry_column = next(h for h in tables[0][0] if h.startswith("registry"))
    described: set[str] = set()
    for row in tables[0]:
        interface = next((s for s in ticked(row["interface"]) if s.startswith("pollwatch.")), "")
        names = ticked(row[registry_column])
        if not interface or len(names) < 2:
            problems.append(
                f"docs/architecture.md: seam {row['seam']!r} needs an interface and a registry "
                "`NAME` (`group`)"
            )
            continue
        registry, group = names[0], names[1]
        described.add(registry)
        groups.add(group)
        module = resolve(interface.rpartition(".")[0])
        found = getattr(module, registry, None)
        if resolve(interface) is None or found is None:
            problems.append(
                f"docs/architecture.md: seam {row['seam']!r}: `{interface}` or its module's "
                f"`{registry}` does not exist"
            )
        elif getattr(found, "group", None) != group:
            problems.append(
                f"docs/architecture.md: `{registry}` has entry-point group "
                f"{getattr(found, 'group', None)!r}, the page says {group!r}"
            )
    problems += [
        f"docs/architecture.md: the registry `{name}` ({module}) has no row in the seams table"
        for name, module in sorted(registries_in_code().items())
        if name not in described
    ]
    return problems, groups


def reference_problems(text: str, page: Path = PAGE) -> list[str]:
    """Dotted names that do not import, repository paths and links that do not exist."""
    problems, groups = seam_problems(text)
    for span in ticked(text):
        if span in groups:
            continue
        if re.fullmatch(r"pollwatch(\.\w+)+", span) and resolve(span) is None:
            problems.append(f"docs/architecture.md: `{span}` does not import")
        if (
            re.fullmatch(r"(src|tests|docs|benchmarks)/[\w./-]+", span)
            and not (ROOT / span).exists()
        ):
            problems.append(f"docs/architecture.md: `{span}` does not exist")
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
        if not (page.parent / target).is_file():
            problems.append(f"docs/architecture.md: the link to {target} goes nowhere")
    return problems


def test_the_page_matches_the_packages_the_layer_table_and_the_imports() -> None:
    problems = page_problems(PAGE.read_text("utf-8"))
    assert not problems, "\n".join(problems)


def test_what_the_page_names_exists() -> None:
    problems = reference_problems(PAGE.read_text("utf-8"))
    assert not problems, "\n".join(problems)


# --- the checks catch what they are for ----------------------------------------------------------
def _row_line(text: str, package: str) -> str:
    return next(line for line in text.splitlines() if f"| `{package}/` |" in line)


def test_a_missing_row_a_ghost_package_and_a_moved_package_are_caught() -> None:
    text = PAGE.read_text("utf-8")
    rows, _ = layer_rows(text)
    lowest = min(r.layer for r in rows if r.subpackages)
    name = next(n for r in rows if r.subpackages and r.layer == lowest for n in r.packages)
    line = _row_line(text, name)
    problems = page_problems(text.replace(line + "\n", "", 1))
    assert f"docs/architecture.md: the package `{name}/` (src/pollwatch/{name}) has no row" in (
        problems
    )
    ghost = line.replace(f"`{name}/`", "`no_such_package/`", 1)
    problems = page_problems(text.replace(line, f"{line}\n{ghost}", 1))
    assert any("`no_such_package/` is described" in p for p in problems), problems
    # the lowest package raised to the top: the layer table no longer matches FORBIDDEN
    top = max(r.layer for r in rows)
    moved = re.sub(r"^\| \d+", f"| {top + 1}", line, count=1)
    problems = page_problems(text.replace(line, moved, 1))
    assert any(f"`{name}/` (layer {top + 1}) may not import" in p for p in problems), problems


def test_a_dropped_exception_and_a_dead_name_are_caught() -> None:
    text = PAGE.read_text("utf-8")
    rows, _ = layer_rows(text)
    row = next(r for r in rows if r.exceptions)
    name = row.packages[0]
    line = _row_line(text, name)
    cells = line.rsplit("|", 2)
    dropped = f"{cells[0]}| — |"
    problems = page_problems(text.replace(line, dropped, 1))
    assert any(f"`{name}/`" in p and "FORBIDDEN says" in p for p in problems), problems
    problems = reference_problems(text + "\n`pollwatch.forensics.no_such_module` `tests/nope.py`\n")
    assert "docs/architecture.md: `pollwatch.forensics.no_such_module` does not import" in problems
    assert "docs/architecture.md: `tests/nope.py` does not exist" in problems
