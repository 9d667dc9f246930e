"""docs/forensics.md and docs/methods/ agree with the registered methods (datasette's docs tests).

Everything is read from the registry (:data:`pollwatch.forensics.base.METHODS`) and the method
classes, never from a list kept here, so a method added, renamed or re-parametrised without its
docs fails here:

* every built-in method has one entry, a heading ``Parameters of `NAME```, on exactly one page
  of ``docs/methods/``; the entry names the class by an importable dotted path and quotes its
  title and reference, and its table lists every constructor parameter once, with its default
  (a Python literal) and what it accepts (the constraint's ``describe()`` text,
  :mod:`pollwatch.forensics.parameters`);
* no heading of those pages names a method that is not registered, no table row a parameter
  the method does not take, no page is without an entry;
* the Python blocks of the pages import what exists and call method classes and
  ``get_method`` with parameters the methods take; the shell blocks' ``-m NAME`` names a
  registered method and ``-p KEY=VALUE`` a parameter of the methods selected;
* docs/forensics.md lists every built-in method in its methods table (linking to the page
  with the method's entry) and in its roles table, whose columns (``in_default_suite``,
  ``fast``, ``in_comparison``, ``scores_stations``, ``suite_parameters``) match the classes.

The checks are functions that return problems; the last tests feed them altered copies of the
real pages to show each check catches what it is for.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from pollwatch.forensics.base import METHODS, Method

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
METHOD_PAGES = DOCS / "methods"
FORENSICS_PAGE = DOCS / "forensics.md"

#: role attributes of :class:`~pollwatch.forensics.base.Method` the roles table must state
ROLES = ("in_default_suite", "fast", "in_comparison", "scores_stations")
ENTRY = re.compile(r"^Parameters of `(?P<name>[^`]+)`$")
METHOD_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)+$")  # registry names: lower-case-hyphenated
NONE_CELL = {"", "—", "-", "none"}


# --- reading Markdown ----------------------------------------------------------------------
@dataclass
class Section:
    """A heading and the lines under it up to the next heading (of any level)."""

    level: int
    title: str
    line: int  # 1-based line of the heading
    body: list[str]


@dataclass
class CodeBlock:
    language: str
    line: int  # 1-based line of the opening fence
    lines: list[str]


def _split(text: str) -> tuple[list[Section], list[CodeBlock]]:
    """Headings (outside code) with their bodies, and the fenced code blocks."""
    sections = [Section(0, "", 0, [])]
    blocks: list[CodeBlock] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
        if fence is None and opening:
            fence = opening.group(1)
            blocks.append(CodeBlock(opening.group(2).lower(), number, []))
        elif fence is not None:
            if re.fullmatch(rf"\s*{re.escape(fence[0])}{{{len(fence)},}}\s*", line):
                fence = None
            else:
                blocks[-1].lines.append(line)
            sections[-1].body.append(line)
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if fence is None and heading:
            sections.append(Section(len(heading.group(1)), heading.group(2), number, []))
        else:
            sections[-1].body.append(line)
    return sections, blocks


def _cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", inner)]


def markdown_tables(lines: list[str]) -> list[list[dict[str, str]]]:
    """The pipe tables in ``lines``: one dict per row, keyed by the lower-cased header cells."""
    found: list[list[dict[str, str]]] = []
    index = 0
    while index + 1 < len(lines):
        header, rule = lines[index], lines[index + 1]
        if header.lstrip().startswith("|") and re.fullmatch(r"\s*\|?[\s:|-]*-[\s:|-]*", rule):
            names = [cell.lower() for cell in _cells(header)]
            rows = []
            index += 2
            while index < len(lines) and lines[index].lstrip().startswith("|"):
                rows.append(dict(zip(names, _cells(lines[index]), strict=False)))
                index += 1
            found.append(rows)
        else:
            index += 1
    return found


def ticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def _words(text: str) -> str:
    """Text with Markdown emphasis and backticks removed and whitespace collapsed."""
    return " ".join(re.sub(r"[`*]", "", text).split())


# --- what the code says ----------------------------------------------------------------------
def builtin_methods() -> dict[str, type[Method]]:
    """The registered methods that ship with pollwatch (plug-ins document themselves)."""
    return {name: cls for name, cls in METHODS.items() if cls.__module__.startswith("pollwatch.")}


def defaults(cls: type[Method]) -> dict[str, Any]:
    """Constructor parameter -> default (``MISSING`` for a required one)."""
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        if item.default is not MISSING:
            values[item.name] = item.default
        elif item.default_factory is not MISSING:
            values[item.name] = item.default_factory()
        else:
            values[item.name] = MISSING
    return values


def _same(documented: Any, actual: Any) -> bool:
    """Equal and of the same type (True is not 1, 6 is not 6.0); tuples item by item."""
    if isinstance(actual, tuple | list):
        return (
            isinstance(documented, tuple | list)
            and len(documented) == len(actual)
            and all(_same(d, a) for d, a in zip(documented, actual, strict=True))
        )
    return type(documented) is type(actual) and documented == actual


def resolve(dotted: str) -> Any:
    """The object a dotted path names (a module, or an attribute of one), or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute, None)
            if obj is None:
                return None
        return obj
    return None


# --- the checks ------------------------------------------------------------------------------
@dataclass
class Entry:
    """One ``Parameters of `NAME``` entry: where it is and what its table says."""

    name: str
    page: str
    line: int
    text: str
    rows: list[dict[str, str]]


def entries(page: str, text: str) -> list[Entry]:
    """The page's ``Parameters of `NAME``` sections (any heading level), in order."""
    sections, _ = _split(text)
    found = []
    for section in sections:
        match = ENTRY.match(section.title)
        if match:
            tables = markdown_tables(section.body)
            rows = next((t for t in tables if t and "parameter" in t[0]), [])
            found.append(
                Entry(match.group("name"), page, section.line, "\n".join(section.body), rows)
            )
    return found


def entry_problems(entry: Entry, cls: type[Method]) -> list[str]:
    """What the entry gets wrong about ``cls``: class, title, reference, parameters."""
    where = f"{entry.page}:{entry.line} ({entry.name})"
    problems = []
    paths = [t for t in ticked(entry.text) if t.startswith("pollwatch.")]
    if not any(resolve(path) is cls for path in paths):
        problems.append(
            f"{where}: name the class, `{cls.__module__}.{cls.__qualname__}`, in backticks"
        )
    words = _words(entry.text)
    for label, value in (("title", cls.title), ("reference", cls.reference)):
        if _words(value) not in words:
            problems.append(f"{where}: the entry must quote the class's {label}: {value!r}")
    if not entry.rows:
        problems.append(f"{where}: no table with a 'parameter' column")
        return problems
    expected = defaults(cls)
    constraints = cls.parameter_constraints
    seen: set[str] = set()
    for row in entry.rows:
        names = ticked(row.get("parameter", ""))
        if len(names) != 1:
            problems.append(f"{where}: row {row} must name one parameter in backticks")
            continue
        name = names[0]
        if name in seen:
            problems.append(f"{where}: parameter `{name}` is listed twice")
        seen.add(name)
        if name not in expected:
            problems.append(
                f"{where}: `{name}` is not a parameter of {cls.__name__} "
                f"(its parameters: {', '.join(expected)})"
            )
            continue
        cell = row.get("default", "")
        spans = ticked(cell)
        if expected[name] is MISSING:
            if cell.lower() not in {"required", "(required)"}:
                problems.append(f"{where}: `{name}` has no default: write 'required'")
        else:
            try:
                documented = ast.literal_eval(spans[0]) if len(spans) == 1 else MISSING
            except (ValueError, SyntaxError):
                documented = MISSING
            if documented is MISSING or not _same(documented, expected[name]):
                problems.append(
                    f"{where}: `{name}` defaults to `{expected[name]!r}`, the page says {cell!r}"
                )
        if name in constraints:
            accepts = constraints[name].describe()
            if _words(row.get("accepts", "")) != _words(accepts):
                problems.append(
                    f"{where}: `{name}` accepts {accepts!r}, the page says "
                    f"{row.get('accepts', '')!r}"
                )
    for name in expected:
        if name not in seen:
            accepts = constraints[name].describe() if name in constraints else "..."
            default = "required" if expected[name] is MISSING else f"`{expected[name]!r}`"
            problems.append(
                f"{where}: parameter `{name}` is missing; add the row "
                f"| `{name}` | {default} | {accepts} | what it means |"
            )
    return problems


def _python_problems(page: str, block: CodeBlock) -> list[str]:
    """Imports that do not resolve, and method constructions with parameters that do not exist."""
    where = f"{page}:{block.line}"
    try:
        tree = ast.parse("\n".join(block.lines))
    except SyntaxError as exc:
        return [f"{where}: the Python block does not parse: {exc.msg} (line {exc.lineno})"]
    classes = {cls.__name__: cls for _, cls in METHODS.items()}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pollwatch"):
            for alias in node.names:
                if resolve(f"{node.module}.{alias.name}") is None:
                    problems.append(f"{where}: `from {node.module} import {alias.name}` fails")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        cls: type[Method] | None = classes.get(called or "")
        if called == "get_method" and node.args and isinstance(node.args[0], ast.Constant):
            name = node.args[0].value
            if not isinstance(name, str) or name not in METHODS:
                problems.append(f"{where}: get_method({name!r}): no such method")
                continue
            cls = METHODS.get(name)
        if cls is None:
            continue
        known = defaults(cls)
        for keyword in node.keywords:
            if keyword.arg is not None and keyword.arg not in known:
                problems.append(
                    f"{where}: {cls.__name__}({keyword.arg}=...): {cls.name} has no parameter "
                    f"{keyword.arg!r}"
                )
    return problems


def _commands(block: CodeBlock) -> Iterator[list[str]]:
    """The ``pollwatch`` command lines of a shell block, split into words."""
    lines = [line.removeprefix("$ ") for line in block.lines]
    text = "\n".join(lines).replace("\\\n", " ")
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        while words:
            head = next(
                (i for i, w in enumerate(words) if w == "pollwatch" or w.endswith("/pollwatch")),
                None,
            )
            if head is None:
                break
            words = words[head:]
            end = next((i for i, w in enumerate(words) if w in {"&&", "||", ";", "|"}), None)
            yield words if end is None else words[:end]
            words = [] if end is None else words[end + 1 :]


def _shell_problems(page: str, block: CodeBlock) -> list[str]:
    """``-m NAME`` must be registered, ``-p [NAME.]KEY=VALUE`` a parameter of those methods
    (of some registered method when no ``-m`` selects any)."""
    where = f"{page}:{block.line}"
    problems = []
    for words in _commands(block):
        methods: list[str] = []
        assignments: list[str] = []
        for flag, value in itertools.pairwise(words):
            if flag in {"-m", "--method"}:
                methods.append(value)
            elif flag in {"-p", "--parameter"}:
                assignments.append(value)
        for name in methods:
            if name not in METHODS:
                problems.append(f"{where}: `-m {name}`: no such method")
        # without -m the default suite (or comparison set) runs: any method may take the key
        selected = [METHODS.get(n) for n in methods if n in METHODS] or [
            cls for _, cls in METHODS.items()
        ]
        for assignment in assignments:
            key, _, text = assignment.partition("=")
            target, _, key = key.rpartition(".")
            candidates = [c for c in selected if not target or c.name == target]
            if not candidates:
                problems.append(f"{where}: `-p {assignment}` targets no method selected by -m")
                continue
            takers = [c for c in candidates if key in defaults(c)]
            if not takers:
                problems.append(f"{where}: `-p {assignment}`: no selected method takes {key!r}")
            for cls in takers:
                constraint = cls.parameter_constraints.get(key)
                if constraint is None:
                    continue
                try:
                    constraint.parse(text)
                except ValueError:
                    problems.append(
                        f"{where}: `-p {assignment}`: {key} must be {constraint.describe()}"
                    )
    return problems


def _inline_commands(page: str, sections: list[Section]) -> list[str]:
    """The checks of :func:`_shell_problems` on ``pollwatch ...`` spans in the prose."""
    problems = []
    for section in sections:
        prose = re.sub(r"(?ms)^\s*(`{3,}|~{3,}).*?^\s*\1\s*$", "", "\n".join(section.body))
        for span in ticked(prose):
            if span.startswith("pollwatch "):
                block = CodeBlock("sh", section.line, [span])
                problems += _shell_problems(page, block)
    return problems


def method_page_problems(pages: Mapping[str, str]) -> list[str]:
    """Every problem of the docs/methods pages (page name -> text) against the registry."""
    problems: list[str] = []
    found: dict[str, list[Entry]] = {}
    for page, text in sorted(pages.items()):
        page_entries = entries(page, text)
        if not page_entries:
            problems.append(f"{page}: no 'Parameters of `NAME`' entry: which method is it about?")
        for entry in page_entries:
            found.setdefault(entry.name, []).append(entry)
        sections, blocks = _split(text)
        problems += _inline_commands(page, sections)
        for section in sections:
            for token in ticked(section.title):
                if METHOD_NAME.fullmatch(token) and token not in METHODS:
                    problems.append(
                        f"{page}:{section.line}: heading names `{token}`, not a registered method"
                    )
        for block in blocks:
            if block.language in {"python", "py", "pycon"}:
                problems += _python_problems(page, block)
            elif block.language in {"sh", "bash", "shell", "console", "zsh"}:
                problems += _shell_problems(page, block)
    for name, listed in sorted(found.items()):
        if name not in METHODS:
            problems += [f"{e.page}:{e.line}: `{name}` is not a registered method" for e in listed]
            continue
        if len(listed) > 1:
            places = ", ".join(f"{e.page}:{e.line}" for e in listed)
            problems.append(f"`{name}` has {len(listed)} entries ({places}); keep one")
        problems += entry_problems(listed[0], METHODS.get(name))
    for name in builtin_methods():
        if name not in found:
            problems.append(
                f"method `{name}` has no 'Parameters of `{name}`' entry in docs/methods/ "
                "(a heading, then the class, title, reference and a parameter table)"
            )
    return problems


def _yes(cell: str) -> bool | None:
    word = _words(cell).lower()
    return True if word == "yes" else False if word == "no" else None


def _suite_parameters(cell: str) -> dict[str, Any] | None:
    if _words(cell).lower() in NONE_CELL:
        return {}
    values: dict[str, Any] = {}
    for item in ticked(cell):
        key, equals, text = item.partition("=")
        if not equals:
            return None
        try:
            values[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            return None
    return values or None


def forensics_page_problems(text: str, pages: Mapping[str, str]) -> list[str]:
    """The methods table and the roles table of docs/forensics.md against the registry."""
    problems: list[str] = []
    sections, blocks = _split(text)
    tables = [table for section in sections for table in markdown_tables(section.body)]
    listing = next((t for t in tables if t and {"method", "page"} <= set(t[0])), None)
    roles = next(
        (t for t in tables if t and any(f"`{role}`" in h for h in t[0] for role in ROLES)), None
    )
    builtins = builtin_methods()
    if listing is None:
        problems.append("docs/forensics.md: no methods table (columns 'method', 'page')")
    else:
        listed: set[str] = set()
        for row in listing:
            link = re.search(r"\]\((?:\./)?methods/([^)#]+\.md)(?:#[^)]*)?\)", row["page"])
            page = f"methods/{link.group(1)}" if link else None
            names = ticked(row["method"])
            for name in names:
                listed.add(name)
                if name not in METHODS:
                    problems.append(f"docs/forensics.md: methods table lists `{name}`, unknown")
                elif page is None or page not in pages:
                    problems.append(f"docs/forensics.md: `{name}` links to no page in methods/")
                elif name not in {e.name for e in entries(page, pages[page])}:
                    problems.append(f"docs/forensics.md: `{name}` links to {page}, no entry there")
        problems += [
            f"docs/forensics.md: method `{name}` is missing from the methods table"
            for name in builtins
            if name not in listed
        ]
    if roles is None:
        problems.append(
            "docs/forensics.md: no roles table (a column per role attribute: "
            + ", ".join(f"`{r}`" for r in (*ROLES, "suite_parameters"))
            + ")"
        )
        return problems
    header = list(roles[0])
    columns = {
        attribute: cell
        for cell in header
        for attribute in (*ROLES, "suite_parameters")
        if f"`{attribute}`" in cell
    }
    problems += [
        f"docs/forensics.md: the roles table has no column for `{attribute}`"
        for attribute in (*ROLES, "suite_parameters")
        if attribute not in columns
    ]
    stated: set[str] = set()
    for row in roles:
        names = ticked(row[header[0]])
        if len(names) != 1:
            problems.append(f"docs/forensics.md: roles row {row} must name one method")
            continue
        name = names[0]
        stated.add(name)
        if name not in METHODS:
            problems.append(f"docs/forensics.md: roles table lists `{name}`, unknown")
            continue
        cls = METHODS.get(name)
        for attribute in ROLES:
            if attribute not in columns:
                continue
            said, actual = _yes(row[columns[attribute]]), bool(getattr(cls, attribute))
            if said is not actual:
                problems.append(
                    f"docs/forensics.md: `{name}` {attribute} is "
                    f"{'yes' if actual else 'no'}, the roles table says "
                    f"{row[columns[attribute]]!r}"
                )
        if "suite_parameters" in columns:
            cell = row[columns["suite_parameters"]]
            said_parameters = _suite_parameters(cell)
            actual_parameters = dict(cls.suite_parameters)
            if said_parameters is None or not (
                said_parameters.keys() == actual_parameters.keys()
                and all(_same(said_parameters[k], v) for k, v in actual_parameters.items())
            ):
                wanted = ", ".join(f"`{k}={v!r}`" for k, v in actual_parameters.items()) or "—"
                problems.append(
                    f"docs/forensics.md: `{name}` suite_parameters are {wanted}, the roles "
                    f"table says {cell!r}"
                )
    problems += [
        f"docs/forensics.md: method `{name}` is missing from the roles table"
        for name in builtins
        if name not in stated
    ]
    problems += _inline_commands("docs/forensics.md", sections)
    for block in blocks:
        if block.language in {"python", "py"}:
            problems += _python_problems("docs/forensics.md", block)
        elif block.language in {"sh", "bash", "shell", "console", "zsh"}:
            problems += _shell_problems("docs/forensics.md", block)
    return problems


def _method_pages() -> dict[str, str]:
    return {
        f"methods/{path.name}": path.read_text("utf-8")
        for path in sorted(METHOD_PAGES.glob("*.md"))
    }


# --- the tests ---------------------------------------------------------------------------------
def test_the_registry_has_built_in_methods() -> None:
    """The checks below run over something: the built-ins and their parameters."""
    builtins = builtin_methods()
    assert len(builtins) >= 10, sorted(builtins)
    assert all(defaults(cls) for cls in builtins.values())


def test_method_pages_match_the_registry() -> None:
    problems = method_page_problems(_method_pages())
    assert not problems, "\n".join(problems)


def test_forensics_page_matches_the_registry() -> None:
    problems = forensics_page_problems(FORENSICS_PAGE.read_text("utf-8"), _method_pages())
    assert not problems, "\n".join(problems)


# --- the checks catch what they are for ---------------------------------------------------------
def _page_of(name: str) -> tuple[str, dict[str, str]]:
    pages = _method_pages()
    for page, text in pages.items():
        if name in {entry.name for entry in entries(page, text)}:
            return page, pages
    pytest.fail(f"no page documents {name}")


@pytest.mark.parametrize("name", sorted(builtin_methods()))
def test_removing_a_parameter_row_is_caught(name: str) -> None:
    page, pages = _page_of(name)
    entry = next(e for e in entries(page, pages[page]) if e.name == name)
    parameter = next(iter(defaults(METHODS.get(name))))
    row = next(r for r in entry.text.splitlines() if r.lstrip().startswith(f"| `{parameter}` |"))
    lines = pages[page].splitlines()
    # the row of this entry (the same parameter may have a row in the page's other entries)
    index = next(i for i in range(entry.line, len(lines)) if lines[i] == row)
    altered = {**pages, page: "\n".join(lines[:index] + lines[index + 1 :])}
    problems = method_page_problems(altered)
    assert any(f"parameter `{parameter}` is missing" in p and name in p for p in problems)


def test_a_wrong_default_an_unknown_parameter_and_an_unknown_method_are_caught() -> None:
    name = "triage" if "triage" in METHODS else next(iter(builtin_methods()))
    page, pages = _page_of(name)
    cls = METHODS.get(name)
    parameter, default = next((k, v) for k, v in defaults(cls).items() if v is not MISSING)
    text = pages[page]
    row = next(r for r in text.splitlines() if r.startswith(f"| `{parameter}` | `{default!r}` |"))
    wrong = row.replace(f"`{default!r}`", "`'not the default'`", 1)
    ghost = row.replace(f"`{parameter}`", "`no_such_parameter`", 1)
    altered = text.replace(row, f"{wrong}\n{ghost}", 1)
    altered += "\n\n## Parameters of `no-such-method`\n\n`pollwatch.forensics.base.Method`\n"
    problems = method_page_problems({**pages, page: altered})
    assert any(f"`{parameter}` defaults to" in p for p in problems), problems
    assert any("`no_such_parameter` is not a parameter" in p for p in problems), problems
    assert any("`no-such-method` is not a registered method" in p for p in problems), problems
    # and code that calls a method with a parameter it lacks
    block = f'```python\nget_method("{name}", no_such_parameter=1)\n```\n'
    problems = method_page_problems({**pages, page: text + "\n" + block})
    assert any("has no parameter 'no_such_parameter'" in p for p in problems), problems


def test_a_wrong_role_and_a_missing_method_in_forensics_md_are_caught() -> None:
    text = FORENSICS_PAGE.read_text("utf-8")
    pages = _method_pages()
    name, cls = next(iter(builtin_methods().items()))
    row = next(
        line
        for line in text.splitlines()
        if line.startswith(f"| `{name}` |") and ("| yes |" in line or "| no |" in line)
    )
    flipped = re.sub(
        r"\| (yes|no) \|", lambda m: f"| {'no' if m[1] == 'yes' else 'yes'} |", row, count=1
    )
    problems = forensics_page_problems(text.replace(row, flipped, 1), pages)
    assert any(f"`{name}` " in p and "the roles table says" in p for p in problems), problems
    problems = forensics_page_problems(text.replace(row + "\n", "", 1), pages)
    assert f"docs/forensics.md: method `{name}` is missing from the roles table" in problems
    assert cls.name == name
