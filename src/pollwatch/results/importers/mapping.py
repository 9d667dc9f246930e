"""The generic table importer: any CSV, Excel or Parquet results table, described by a mapping file.

A *mapping file* (TOML, see ``docs/mapping-files.md``) says how to read the table (``[source]``:
format, encoding, separator, thousands and decimal separators, missing-value markers, preamble
lines, zip member, Excel sheet, quote character), what the election is (``[election]``), which
source column feeds which column of the data model (``[columns]``), which columns are the
candidates (``[candidates]``), which rows carry which flag (``[flags]``), which rows are dropped
or hold placeholder numbers (``[rows]``), which counts are derived from others (``[derived]``:
``valid = "sum of candidates"``, ``ballots_cast = "valid + invalid"``, ``registered = "f_01 +
f_03"``) and any source-specific definitions (``[definitions]``). A new country therefore needs a
mapping file, not code.

Definitions used for every mapping (recorded in ``meta.definitions``):

* a count column named by one source column takes that column; named by a list, it is their sum
  (null where any part is null); ``null_when`` makes it null on the rows a rule selects;
* ``station_kind`` flags: ``abroad`` sets ``is_abroad``; ``postal``, ``evoting`` and
  ``catch_all`` set ``is_pseudo_station``; ``evoting`` sets ``is_evoting``; ``[flags]`` rules
  add to these (a flag is true when either says so);
* ``is_unpublished`` is also set on every row whose result counts (all mapped counts except
  ``registered`` and ``ballots_received``, and every candidate) are all empty;
* ``[rows] no_results`` marks rows whose result counts are placeholders (e.g. zeros typed in for
  a station that never reported): those counts become null, so such rows are ``is_unpublished``;
* ``[rows] exclude`` drops rows (summary lines, ...), and the number dropped is recorded in
  ``meta.definitions["excluded_rows"]`` and ``meta.notes``: no row disappears silently;
* a ``[derived]`` count is the signed sum of its terms (null where any term is null), recorded
  as its formula in words under its name; a count both read from the source and derived keeps
  the source value, and each station where the formula disagrees is recorded in
  ``meta.definitions["derived_check:<column>"]``, reported by the protocol check
  ``derived_matches_source`` (:mod:`pollwatch.results.checks`).

Shipped mappings (``pollwatch import FILE --mapping NAME``) live next to this module in
``mappings/*.toml``; :func:`shipped_mappings` lists them and :func:`load_mapping` loads a file or a
shipped name. Sources of the shipped ones: the Polish PKW (2020 presidential, per obwód), the
German Bundeswahlleiterin (European Parliament 2024, per Wahlbezirk) and the Uganda Elections
Data Portal (presidential 2006-2021, per polling station); each file names its source.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import io
import re
import tomllib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import polars as pl

from pollwatch.errors import CountError, FormatError, MappingError, PollwatchError
from pollwatch.results.checks import DERIVED_CHECK_PREFIX, derived_check_text
from pollwatch.results.importers._tables import (
    check_archive_members,
    check_table_shape,
    parse_counts,
    read_csv_table,
    read_source_bytes,
    sha256_file,
    table_row_budget,
)
from pollwatch.results.importers.base import IMPORTERS, Example, Importer, slugify
from pollwatch.results.model import (
    COUNT_COLUMNS,
    RESERVED_COLUMNS,
    STATION_KINDS,
    Candidate,
    Election,
    ElectionMeta,
    make_election,
)
from pollwatch.results.quarantine import EMPTY_IDENTIFIER, set_aside

__all__ = [
    "MappingImporter",
    "TableMapping",
    "load_mapping",
    "shipped_mappings",
]

_ROW = "__pollwatch_row__"
_TEXT_TARGETS = ("region", "constituency", "district", "municipality", "station_name")
_SOURCE_KEYS = (
    "format",
    "encoding",
    "separator",
    "thousands",
    "decimal",
    "na_values",
    "skip_rows",
    "member",
    "sheet",
    "quote",
)
_CSV_ONLY = ("encoding", "separator", "quote")
_ELECTION_KEYS = (
    "id",
    "country",
    "date",
    "kind",
    "round",
    "contest",
    "source",
    "license",
    "data_version",
    "notes",
    "hierarchy_labels",
)
_TOP_KEYS = (
    "description",
    "source",
    "election",
    "columns",
    "candidates",
    "flags",
    "rows",
    "derived",
    "definitions",
)
_COLUMN_KEYS = ("station_id", *_TEXT_TARGETS, "station_kind", *COUNT_COLUMNS)
_TEXT_SPEC_KEYS = ("column", "columns", "template", "join", "values", "default")
_COUNT_SPEC_KEYS = ("column", "columns", "null_when")
_RULE_KEYS = ("column", "equals", "not_equals", "matches", "empty", "all", "any")
_CANDIDATE_KEYS = ("columns", "from", "to", "matches", "exclude", "names", "parties", "party_lists")
_FLAG_KEYS = ("is_pseudo_station", "is_evoting", "is_abroad", "is_cancelled", "is_unpublished")
_ROWS_KEYS = ("exclude", "no_results")
_DUPLICATES = ("error", "number", "keep")
_FORMATS = ("csv", "excel", "parquet")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
_PSEUDO_KINDS = ("postal", "evoting", "catch_all")
#: counts that are not results of the vote (known before polling day)
_NOT_RESULTS = ("registered", "ballots_received")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_SHIPPED_PACKAGE = "pollwatch.results.importers"
_SHIPPED_FOLDER = "mappings"
#: the "sum of the candidates" term of a derivation, and a column name written without quotes
_CANDIDATES_TERM = re.compile(r"sum\s+of\s+(?:the\s+)?candidates\b", re.IGNORECASE)
_BARE_NAME = re.compile(r"[\w.]+")
#: prefixes of the working columns of derivations (never reach the election)
_SOURCE = "__pollwatch_source__"
_FORMULA = "__pollwatch_formula__"


# --------------------------------------------------------------------------------------------
# The mapping, as validated data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A row selector: one column compared with values, or ``all``/``any`` of other rules.

    Cells are compared as text with surrounding spaces removed; an empty or missing cell is
    the empty string ``""``.
    """

    column: str | None = None
    equals: tuple[str, ...] | None = None
    not_equals: tuple[str, ...] | None = None
    matches: str | None = None
    empty: bool | None = None
    all: tuple[Rule, ...] = ()
    any: tuple[Rule, ...] = ()

    def columns(self) -> list[str]:
        """Source columns the rule reads."""
        found = [self.column] if self.column else []
        for rule in (*self.all, *self.any):
            found.extend(rule.columns())
        return found

    def expr(self) -> pl.Expr:
        """A boolean polars expression, never null."""
        if self.all:
            return pl.all_horizontal([r.expr() for r in self.all])
        if self.any:
            return pl.any_horizontal([r.expr() for r in self.any])
        assert self.column is not None
        # Rules run on cleaned text (see _clean_text): trimmed, and empty cells are null.
        cell = pl.col(self.column).fill_null("")
        if self.equals is not None:
            result = cell.is_in(list(self.equals))
        elif self.not_equals is not None:
            result = ~cell.is_in(list(self.not_equals))
        elif self.matches is not None:
            result = cell.str.contains(self.matches)
        else:
            result = (cell == "") if self.empty else (cell != "")
        return result.fill_null(False)

    def describe(self) -> str:
        """The rule in words, for ``meta.definitions``."""
        if self.all:
            return " and ".join(f"({r.describe()})" for r in self.all)
        if self.any:
            return " or ".join(f"({r.describe()})" for r in self.any)
        if self.equals is not None:
            return f"{self.column!r} is {' or '.join(repr(v) for v in self.equals)}"
        if self.not_equals is not None:
            return f"{self.column!r} is not {' or '.join(repr(v) for v in self.not_equals)}"
        if self.matches is not None:
            return f"{self.column!r} matches /{self.matches}/"
        return f"{self.column!r} is {'empty' if self.empty else 'not empty'}"


@dataclass(frozen=True)
class TextSpec:
    """How a text column is built: one column, columns joined, or a template; then ``values``."""

    key: str
    columns: tuple[str, ...] = ()
    template: str | None = None
    join: str = "|"
    values: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None
    duplicates: str = "error"

    def source_columns(self) -> list[str]:
        """Source columns it reads."""
        if self.template is not None:
            return _PLACEHOLDER.findall(self.template)
        return list(self.columns)

    def describe(self) -> str:
        """The source of the column in words."""
        if self.template is not None:
            text = f"template {self.template!r}"
        elif len(self.columns) == 1:
            text = f"source column {self.columns[0]!r}"
        else:
            text = f"source columns {list(self.columns)} joined with {self.join!r}"
        if self.values:
            pairs = ", ".join(f"{k!r} -> {v!r}" for k, v in self.values.items())
            text += f", values {pairs}"
        if self.default is not None:
            text += f", other values -> {self.default!r}"
        return text

    def label(self) -> str:
        """The source's own name of the column, for ``meta.hierarchy_labels``."""
        if self.template is not None:
            return self.template
        return self.join.join(self.columns) if len(self.columns) > 1 else self.columns[0]


@dataclass(frozen=True)
class CountSpec:
    """A count column: one source column or the sum of several; null where ``null_when``."""

    key: str
    columns: tuple[str, ...]
    null_when: Rule | None = None

    def describe(self) -> str:
        """The source of the column in words."""
        if len(self.columns) == 1:
            text = f"source column {self.columns[0]!r}"
        else:
            text = "sum of source columns " + " + ".join(repr(c) for c in self.columns)
        if self.null_when is not None:
            text += f"; null where {self.null_when.describe()}"
        return text


@dataclass(frozen=True)
class CandidateColumn:
    """One candidate column named explicitly, with its display name and party."""

    column: str
    name: str | None = None
    party: str | None = None


@dataclass(frozen=True)
class CandidateSelection:
    """Which source columns are candidates: a list, a ``from``/``to`` range or a regex."""

    columns: tuple[CandidateColumn, ...] = ()
    first: str | None = None
    last: str | None = None
    matches: str | None = None
    exclude: tuple[str, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)
    parties: Mapping[str, str] = field(default_factory=dict)
    party_lists: bool = False

    def describe(self) -> str:
        """The selection in words."""
        if self.columns:
            text = f"source columns {[c.column for c in self.columns]}"
        elif self.matches is not None:
            text = f"source columns matching /{self.matches}/"
        else:
            text = f"source columns from {self.first!r} to {self.last!r}"
        if self.exclude:
            text += f", except {list(self.exclude)}"
        return text


@dataclass(frozen=True)
class Term:
    """One term of a derivation, added (``sign = 1``) or subtracted (``-1``).

    ``kind`` is ``"candidates"`` (the sum of every candidate's votes), ``"model"`` (a count
    column of the data model that the mapping reads or derives) or ``"source"`` (a column of
    the table).
    """

    sign: int
    kind: str
    name: str = ""
    quoted: bool = False

    def describe(self, candidates: Sequence[str]) -> str:
        """The term in words (without its sign)."""
        if self.kind == "candidates":
            return "the sum of the candidates (" + " + ".join(repr(c) for c in candidates) + ")"
        if self.kind == "model":
            return self.name
        return f"source column {self.name!r}"


@dataclass(frozen=True)
class Formula:
    """A count column derived from others (the ``[derived]`` section): a sum and difference.

    Grammar of ``text``: ``term (("+" | "-") term)*``, where a term is ``sum of candidates``
    (or ``sum of the candidates``), a column name in quotes (``'Votos nulos'``: always a
    source column) or a bare name of letters, digits, ``_`` and ``.`` (``valid``, ``f_01``):
    a count column of the data model when the mapping reads or derives it, else a source
    column. The value is null where any term is null.
    """

    target: str
    text: str
    terms: tuple[Term, ...]

    def describe(self, candidates: Sequence[str]) -> str:
        """The formula in words: ``valid + source column 'nulos'``."""
        words = []
        for index, term in enumerate(self.terms):
            sign = "+" if term.sign > 0 else "-"
            text = term.describe(candidates)
            words.append(text if index == 0 and term.sign > 0 else f"{sign} {text}")
        return " ".join(words)

    def source_columns(self) -> list[str]:
        """Source columns it reads."""
        return [t.name for t in self.terms if t.kind == "source"]


@dataclass(frozen=True)
class SourceSpec:
    """How the table is read (the ``[source]`` section)."""

    format: str = "csv"
    encoding: str = "utf-8"
    separator: str = ","
    thousands: str | None = None
    decimal: str | None = None
    na_values: tuple[str, ...] = ()
    skip_rows: int = 0
    member: str | None = None
    sheet: str | int | None = None
    quote: str | None = '"'


@dataclass(frozen=True)
class TableMapping:
    """A validated mapping file."""

    name: str
    file_name: str
    description: str
    source: SourceSpec
    election: Mapping[str, Any]
    station_id: TextSpec
    text: Mapping[str, TextSpec]
    station_kind: TextSpec | None
    counts: Mapping[str, CountSpec]
    candidates: CandidateSelection
    flags: Mapping[str, Rule]
    exclude: Rule | None
    no_results: Rule | None
    definitions: Mapping[str, str]
    #: derived count columns, in the order they are computed (each after those it uses)
    derived: Mapping[str, Formula] = field(default_factory=dict)
    #: ``section.key`` -> line in the mapping file, for error messages
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    location: str = field(default="", compare=False, repr=False)

    def where(self, key: str) -> str:
        """``file:line`` of a key of the mapping, for error messages."""
        line = self.lines.get(key)
        return f"{self.location}:{line}" if line else self.location


# --------------------------------------------------------------------------------------------
# Loading and validating
# --------------------------------------------------------------------------------------------


def shipped_mappings() -> dict[str, Traversable]:
    """The mapping files shipped with pollwatch, by name (file name without ``.toml``)."""
    folder = resources.files(_SHIPPED_PACKAGE).joinpath(_SHIPPED_FOLDER)
    found: dict[str, Traversable] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        if entry.is_file() and entry.name.endswith(".toml"):
            found[entry.name[: -len(".toml")]] = entry
    return dict(sorted(found.items()))


def load_mapping(path_or_name: str | Path) -> TableMapping:
    """Load and validate a mapping file, given as a path or as the name of a shipped mapping.

    A path that exists is read; otherwise the text is looked up among :func:`shipped_mappings`.
    Raises :class:`~pollwatch.errors.MappingError` naming the key, the file and the line.
    """
    path = Path(path_or_name)
    if path.is_file():
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise MappingError(
                "mapping file is not UTF-8 text", path=str(path), hint="save it as UTF-8"
            ) from None
        return _parse_mapping(text, name=path.stem, file_name=path.name, location=str(path))
    shipped = shipped_mappings()
    key = str(path_or_name)
    if key.endswith(".toml") and not path.exists():
        key = Path(key).stem if Path(key).stem in shipped else key
    if key in shipped:
        entry = shipped[key]
        return _parse_mapping(
            entry.read_text(encoding="utf-8"),
            name=key,
            file_name=entry.name,
            location=f"{_SHIPPED_FOLDER}/{entry.name}",
        )
    if path.is_dir():
        raise MappingError("is a folder, not a mapping file", path=str(path), hint="give a file")
    close = difflib.get_close_matches(key, list(shipped), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise MappingError(
        f"no mapping file {key!r} and no shipped mapping of that name",
        hint=f"{hint}give a path to a .toml file or one of: {', '.join(shipped) or 'none'}",
    )


class _Checker:
    """Type checks with messages naming the key, the file and the line."""

    def __init__(self, text: str, location: str) -> None:
        self.location = location
        self.lines: dict[str, int] = {}
        self._index_lines(text)

    def _index_lines(self, text: str) -> None:
        # tomllib gives no positions, so remember where each key first appears under each
        # table header; good enough to point at the line of a typo.
        header: list[str] = []
        key_re = re.compile(r'(?:^|[{,])\s*(?:"([^"]+)"|\'([^\']+)\'|([A-Za-z0-9_\-.]+))\s*=')
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", line)
            if match:
                header = [p.strip().strip('"') for p in match.group(1).split(".")]
                self.lines.setdefault(".".join(header), number)
                continue
            for found in key_re.finditer(raw):
                key = found.group(1) or found.group(2) or found.group(3)
                self.lines.setdefault(".".join([*header, *key.split(".")]), number)
                # inline tables: also index the key under any table of the header
                self.lines.setdefault(".".join([*header[:1], "*", key]), number)

    def line_of(self, key: str) -> int | None:
        """The line of ``key`` (dotted, list items as ``[i]``), or of its nearest parent."""
        if key in self.lines:
            return self.lines[key]
        parts = key.split(".")
        star = ".".join([parts[0], "*", parts[-1]])
        in_list = any("[" in part for part in parts)
        if in_list and star in self.lines:
            return self.lines[star]
        plain = [re.sub(r"\[\d+\]$", "", part) for part in parts]
        for cut in range(len(plain), 1, -1):
            probe = ".".join(plain[:cut])
            if probe in self.lines:
                return self.lines[probe]
        if star in self.lines:
            return self.lines[star]
        return self.lines.get(parts[0])

    def error(self, key: str, message: str, hint: str | None = None) -> MappingError:
        line = self.line_of(key) if key else None
        where = f"{self.location}:{line}" if line else self.location
        prefix = f"{key}: " if key else ""
        return MappingError(prefix + message, path=where, hint=hint)

    def table(self, value: Any, key: str, allowed: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {_type_name(value)}")
        for name in value:
            if name not in allowed:
                close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
                full = f"{key}.{name}" if key else name
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(allowed)}"
                where = f"in [{key}]" if key else "at the top level"
                raise self.error(full, f"unknown key {name!r} {where}", hint)
        return value

    def string(self, value: Any, key: str, *, empty_ok: bool = True) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_type_name(value)}")
        if not empty_ok and not value:
            raise self.error(key, "must not be empty")
        return value

    def char(self, value: Any, key: str) -> str:
        text = self.string(value, key)
        if len(text) != 1:
            raise self.error(key, f"expected one character, got {text!r}")
        return text

    def integer(self, value: Any, key: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {_type_name(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_type_name(value)}")
        return value

    def strings(self, value: Any, key: str, *, scalar_ok: bool = False) -> tuple[str, ...]:
        if scalar_ok and isinstance(value, str | int) and not isinstance(value, bool):
            return (str(value),)
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {_type_name(value)}")
        out = []
        for index, item in enumerate(value):
            if scalar_ok and isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            out.append(self.string(item, f"{key}[{index}]"))
        return tuple(out)

    def string_table(self, value: Any, key: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table of strings, got {_type_name(value)}")
        return {str(k): self.string(v, f"{key}.{k}") for k, v in value.items()}


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        int: "a number",
        float: "a decimal number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _parse_mapping(text: str, *, name: str, file_name: str, location: str) -> TableMapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(
            f"not valid TOML ({exc})",
            path=location,
            hint="see docs/mapping-files.md for the layout",
        ) from None
    check = _Checker(text, location)
    check.table(data, "", _TOP_KEYS)
    description = check.string(data.get("description", ""), "description")
    source = _parse_source(check, data.get("source", {}))
    election = _parse_election(check, data.get("election", {}))
    if "columns" not in data:
        raise check.error("", "missing section [columns]", "map at least station_id")
    columns = check.table(data["columns"], "columns", _COLUMN_KEYS)
    if "station_id" not in columns:
        raise check.error("columns", "missing key station_id", "name the column(s) of the id")
    station_id = _parse_text(check, columns["station_id"], "columns.station_id", is_id=True)
    text_specs = {
        target: _parse_text(check, columns[target], f"columns.{target}")
        for target in _TEXT_TARGETS
        if target in columns
    }
    station_kind = None
    if "station_kind" in columns:
        station_kind = _parse_text(check, columns["station_kind"], "columns.station_kind")
        for source_value, kind in station_kind.values.items():
            if kind not in STATION_KINDS:
                raise check.error(
                    f"columns.station_kind.values.{source_value}",
                    f"{kind!r} is not a station kind",
                    f"use one of {', '.join(STATION_KINDS)}",
                )
        if station_kind.default is not None and station_kind.default not in STATION_KINDS:
            raise check.error(
                "columns.station_kind.default",
                f"{station_kind.default!r} is not a station kind",
                f"use one of {', '.join(STATION_KINDS)}",
            )
    counts = {
        target: _parse_count(check, columns[target], f"columns.{target}")
        for target in COUNT_COLUMNS
        if target in columns
    }
    if "candidates" not in data:
        raise check.error("", "missing section [candidates]", "say which columns hold votes")
    candidates = _parse_candidates(check, data["candidates"])
    flags_table = check.table(data.get("flags", {}), "flags", _FLAG_KEYS)
    flags = {k: _parse_rule(check, v, f"flags.{k}") for k, v in flags_table.items()}
    rows = check.table(data.get("rows", {}), "rows", _ROWS_KEYS)
    exclude = _parse_rule(check, rows["exclude"], "rows.exclude") if "exclude" in rows else None
    no_results = (
        _parse_rule(check, rows["no_results"], "rows.no_results") if "no_results" in rows else None
    )
    derived = _parse_derived(check, data.get("derived", {}), counts)
    definitions = check.string_table(data.get("definitions", {}), "definitions")
    return TableMapping(
        name=name,
        file_name=file_name,
        description=description,
        source=source,
        election=election,
        station_id=station_id,
        text=text_specs,
        station_kind=station_kind,
        counts=counts,
        candidates=candidates,
        flags=flags,
        exclude=exclude,
        no_results=no_results,
        definitions=definitions,
        derived=derived,
        lines=dict(check.lines),
        location=location,
    )


def _parse_source(check: _Checker, value: Any) -> SourceSpec:
    table = check.table(value, "source", _SOURCE_KEYS)
    fmt = check.string(table.get("format", "csv"), "source.format")
    if fmt not in _FORMATS:
        close = difflib.get_close_matches(fmt, _FORMATS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(_FORMATS)}"
        raise check.error("source.format", f"unknown format {fmt!r}", hint)
    if fmt != "csv":
        for key in _CSV_ONLY:
            if key in table:
                raise check.error(f"source.{key}", f"applies to csv sources, not {fmt}")
    if "sheet" in table and fmt != "excel":
        raise check.error("source.sheet", f"applies to excel sources, not {fmt}")
    if "skip_rows" in table and fmt == "parquet":
        raise check.error("source.skip_rows", "applies to csv and excel sources, not parquet")
    encoding = check.string(table.get("encoding", "utf-8"), "source.encoding", empty_ok=False)
    try:
        "".encode(encoding)
    except LookupError:
        raise check.error(
            "source.encoding", f"unknown encoding {encoding!r}", "use e.g. utf-8, cp1250, latin-1"
        ) from None
    separator = check.char(table.get("separator", ","), "source.separator")
    thousands = check.char(table["thousands"], "source.thousands") if "thousands" in table else None
    decimal = check.char(table["decimal"], "source.decimal") if "decimal" in table else None
    if thousands is not None and thousands == decimal:
        raise check.error("source.decimal", "thousands and decimal separators are the same")
    na_values = check.strings(table.get("na_values", []), "source.na_values")
    skip_rows = check.integer(table.get("skip_rows", 0), "source.skip_rows")
    member = check.string(table["member"], "source.member") if "member" in table else None
    sheet: str | int | None = None
    if "sheet" in table:
        raw = table["sheet"]
        sheet = (
            check.integer(raw, "source.sheet", minimum=1)
            if isinstance(raw, int)
            else check.string(raw, "source.sheet", empty_ok=False)
        )
    quote: str | None = '"'
    if "quote" in table:
        text = check.string(table["quote"], "source.quote")
        if len(text) > 1:
            raise check.error("source.quote", f"expected one character or '', got {text!r}")
        quote = text or None
    return SourceSpec(
        format=fmt,
        encoding=encoding,
        separator=separator,
        thousands=thousands,
        decimal=decimal,
        na_values=na_values,
        skip_rows=skip_rows,
        member=member,
        sheet=sheet,
        quote=quote,
    )


def _parse_election(check: _Checker, value: Any) -> dict[str, Any]:
    table = check.table(value, "election", _ELECTION_KEYS)
    out: dict[str, Any] = {}
    for key in ("id", "kind", "contest", "source", "license", "data_version", "notes"):
        if key in table:
            out[key] = check.string(table[key], f"election.{key}")
    if "id" in out and not out["id"]:
        raise check.error("election.id", "must not be empty")
    if "country" not in table:
        raise check.error("election", "missing key country", "give the ISO 3166-1 alpha-2 code")
    country = check.string(table["country"], "election.country")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise check.error(
            "election.country",
            f"{country!r} is not an ISO 3166-1 alpha-2 code",
            "two capital letters, e.g. 'PL', 'DE', 'UG'",
        )
    out["country"] = country
    if "date" in table:
        raw = table["date"]
        if isinstance(raw, _dt.date) and not isinstance(raw, _dt.datetime):
            out["date"] = raw.isoformat()
        else:
            text = check.string(raw, "election.date")
            try:
                out["date"] = _dt.date.fromisoformat(text).isoformat() if text else ""
            except ValueError:
                raise check.error(
                    "election.date", f"{text!r} is not a date", "write it as YYYY-MM-DD"
                ) from None
    if "round" in table:
        out["round"] = check.integer(table["round"], "election.round", minimum=1)
    if "hierarchy_labels" in table:
        labels = check.string_table(table["hierarchy_labels"], "election.hierarchy_labels")
        allowed = ("station_id", *_TEXT_TARGETS, "station_kind")
        for key in labels:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(allowed)}"
                raise check.error(
                    f"election.hierarchy_labels.{key}", f"unknown column {key!r}", hint
                )
        out["hierarchy_labels"] = labels
    return out


def _parse_text(check: _Checker, value: Any, key: str, *, is_id: bool = False) -> TextSpec:
    if isinstance(value, str):
        return TextSpec(key=key, columns=(check.string(value, key, empty_ok=False),))
    if isinstance(value, list):
        listed = check.strings(value, key)
        if not listed:
            raise check.error(key, "empty list of columns")
        return TextSpec(key=key, columns=listed)
    allowed = (*_TEXT_SPEC_KEYS, "duplicates") if is_id else _TEXT_SPEC_KEYS
    table = check.table(value, key, allowed)
    given = [k for k in ("column", "columns", "template") if k in table]
    if len(given) != 1:
        raise check.error(key, "give exactly one of column, columns, template")
    columns: tuple[str, ...] = ()
    template = None
    if "column" in table:
        columns = (check.string(table["column"], f"{key}.column", empty_ok=False),)
    elif "columns" in table:
        columns = check.strings(table["columns"], f"{key}.columns")
        if not columns:
            raise check.error(f"{key}.columns", "empty list of columns")
    else:
        template = check.string(table["template"], f"{key}.template", empty_ok=False)
    if "join" in table and "columns" not in table:
        raise check.error(f"{key}.join", "only applies with columns = [...]")
    join = check.string(table.get("join", "|"), f"{key}.join")
    values = check.string_table(table.get("values", {}), f"{key}.values")
    default = check.string(table["default"], f"{key}.default") if "default" in table else None
    if default is not None and not values and key != "columns.station_kind":
        raise check.error(f"{key}.default", "only applies with values = {...}")
    duplicates = check.string(table.get("duplicates", "error"), f"{key}.duplicates")
    if duplicates not in _DUPLICATES:
        raise check.error(
            f"{key}.duplicates", f"{duplicates!r} is not one of {', '.join(_DUPLICATES)}"
        )
    return TextSpec(
        key=key,
        columns=columns,
        template=template,
        join=join,
        values=values,
        default=default,
        duplicates=duplicates,
    )


def _parse_count(check: _Checker, value: Any, key: str) -> CountSpec:
    if isinstance(value, str):
        return CountSpec(key=key, columns=(check.string(value, key, empty_ok=False),))
    if isinstance(value, list):
        columns = check.strings(value, key)
        if not columns:
            raise check.error(key, "empty list of columns")
        return CountSpec(key=key, columns=columns)
    table = check.table(value, key, _COUNT_SPEC_KEYS)
    given = [k for k in ("column", "columns") if k in table]
    if len(given) != 1:
        raise check.error(key, "give exactly one of column, columns")
    if "column" in table:
        columns = (check.string(table["column"], f"{key}.column", empty_ok=False),)
    else:
        columns = check.strings(table["columns"], f"{key}.columns")
        if not columns:
            raise check.error(f"{key}.columns", "empty list of columns")
    null_when = (
        _parse_rule(check, table["null_when"], f"{key}.null_when") if "null_when" in table else None
    )
    return CountSpec(key=key, columns=columns, null_when=null_when)


_FORMULA_HINT = (
    "join columns with + and -, e.g. 'valid + invalid', 'sum of candidates', 'f_01 + f_03'; "
    "quote a name holding spaces or signs: \"'Votos nulos' + VOTOS_VALIDOS\""
)


def _parse_formula(check: _Checker, value: Any, key: str) -> list[tuple[int, str | None, bool]]:
    """(sign, name or None for the candidates, quoted) of each term; see :class:`Formula`."""
    text = check.string(value, key, empty_ok=False)
    terms: list[tuple[int, str | None, bool]] = []
    position, sign = 0, 1
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            raise check.error(key, f"{text!r}: a column is missing at the end", _FORMULA_HINT)
        char = text[position]
        if char in "'\"":
            end = text.find(char, position + 1)
            if end == -1:
                raise check.error(key, f"{text!r}: unclosed quote", _FORMULA_HINT)
            name = text[position + 1 : end]
            if not name.strip():
                raise check.error(key, f"{text!r}: empty column name", _FORMULA_HINT)
            terms.append((sign, name, True))
            position = end + 1
        elif match := _CANDIDATES_TERM.match(text, position):
            terms.append((sign, None, False))
            position = match.end()
        elif match := _BARE_NAME.match(text, position):
            terms.append((sign, match.group(), False))
            position = match.end()
        else:
            raise check.error(key, f"{text!r}: cannot read {text[position:]!r}", _FORMULA_HINT)
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return terms
        if text[position] not in "+-":
            raise check.error(
                key, f"{text!r}: expected + or - before {text[position:]!r}", _FORMULA_HINT
            )
        sign = 1 if text[position] == "+" else -1
        position += 1


def _parse_derived(
    check: _Checker, value: Any, counts: Mapping[str, CountSpec]
) -> dict[str, Formula]:
    """The ``[derived]`` section, in computing order; a cycle is an error."""
    table = check.table(value, "derived", COUNT_COLUMNS)
    raw = {
        target: _parse_formula(check, text, f"derived.{target}") for target, text in table.items()
    }
    formulas: dict[str, Formula] = {}
    for target, parts in raw.items():
        terms = []
        for sign, name, quoted in parts:
            if name is None:
                terms.append(Term(sign=sign, kind="candidates"))
            elif not quoted and (name in counts or name in raw):
                terms.append(Term(sign=sign, kind="model", name=name))
            else:
                terms.append(Term(sign=sign, kind="source", name=name, quoted=quoted))
        formulas[target] = Formula(target=target, text=str(table[target]), terms=tuple(terms))
    # A formula waits for the derived-only columns it names; a column also read from the
    # source is used with its source value, so it never waits.
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(target: str, path: list[str]) -> None:
        if state.get(target) == "done":
            return
        if state.get(target) == "visiting":
            cycle = [*path[path.index(target) :], target]
            raise check.error(
                f"derived.{cycle[0]}",
                "derived columns refer to each other in a cycle: " + " -> ".join(cycle),
                "derive one of them from other columns, or read it from the source in [columns]",
            )
        state[target] = "visiting"
        for term in formulas[target].terms:
            if term.kind == "model" and term.name in formulas and term.name not in counts:
                visit(term.name, [*path, target])
        state[target] = "done"
        order.append(target)

    for target in formulas:
        visit(target, [])
    return {target: formulas[target] for target in order}


def _parse_rule(check: _Checker, value: Any, key: str) -> Rule:
    if isinstance(value, list):
        if not value:
            raise check.error(key, "empty list of rules")
        return Rule(any=tuple(_parse_rule(check, v, f"{key}[{i}]") for i, v in enumerate(value)))
    table = check.table(value, key, _RULE_KEYS)
    if "all" in table or "any" in table:
        if len(table) != 1:
            raise check.error(key, "'all' or 'any' stands alone in its rule")
        kind = "all" if "all" in table else "any"
        items = table[kind]
        if not isinstance(items, list) or not items:
            raise check.error(f"{key}.{kind}", "expected a non-empty list of rules")
        rules = tuple(_parse_rule(check, v, f"{key}.{kind}[{i}]") for i, v in enumerate(items))
        return Rule(all=rules) if kind == "all" else Rule(any=rules)
    if "column" not in table:
        raise check.error(key, "a rule needs a column", "e.g. { column = 'X', equals = 'Y' }")
    column = check.string(table["column"], f"{key}.column", empty_ok=False)
    tests = [k for k in ("equals", "not_equals", "matches", "empty") if k in table]
    if len(tests) != 1:
        raise check.error(key, "give exactly one of equals, not_equals, matches, empty")
    test = tests[0]
    if test in ("equals", "not_equals"):
        values = check.strings(table[test], f"{key}.{test}", scalar_ok=True)
        values = tuple(v.strip() for v in values)
        if test == "equals":
            return Rule(column=column, equals=values)
        return Rule(column=column, not_equals=values)
    if test == "matches":
        pattern = check.string(table["matches"], f"{key}.matches", empty_ok=False)
        _check_regex(check, pattern, f"{key}.matches")
        return Rule(column=column, matches=pattern)
    return Rule(column=column, empty=check.boolean(table["empty"], f"{key}.empty"))


def _check_regex(check: _Checker, pattern: str, key: str) -> None:
    try:
        re.compile(pattern)
        pl.select(pl.lit("").str.contains(pattern))
    except (re.error, pl.exceptions.PolarsError) as exc:
        raise check.error(key, f"not a valid regular expression ({exc})") from None


def _parse_candidates(check: _Checker, value: Any) -> CandidateSelection:
    table = check.table(value, "candidates", _CANDIDATE_KEYS)
    forms = [k for k in ("columns", "from", "matches") if k in table]
    if "to" in table and "from" not in table:
        raise check.error("candidates.to", "'to' needs 'from'")
    if len(forms) != 1:
        raise check.error(
            "candidates",
            "give exactly one of columns = [...], from = ... with to = ..., matches = ...",
        )
    names = check.string_table(table.get("names", {}), "candidates.names")
    parties = check.string_table(table.get("parties", {}), "candidates.parties")
    exclude = check.strings(table.get("exclude", []), "candidates.exclude")
    party_lists = check.boolean(table.get("party_lists", False), "candidates.party_lists")
    columns: list[CandidateColumn] = []
    first = last = matches = None
    if "columns" in table:
        raw = table["columns"]
        if not isinstance(raw, list) or not raw:
            raise check.error("candidates.columns", "expected a non-empty list")
        for index, item in enumerate(raw):
            key = f"candidates.columns[{index}]"
            if isinstance(item, str):
                columns.append(CandidateColumn(column=check.string(item, key, empty_ok=False)))
                continue
            entry = check.table(item, key, ("column", "name", "party"))
            if "column" not in entry:
                raise check.error(key, "missing key column")
            columns.append(
                CandidateColumn(
                    column=check.string(entry["column"], f"{key}.column", empty_ok=False),
                    name=check.string(entry["name"], f"{key}.name") if "name" in entry else None,
                    party=check.string(entry["party"], f"{key}.party")
                    if "party" in entry
                    else None,
                )
            )
    elif "from" in table:
        first = check.string(table["from"], "candidates.from", empty_ok=False)
        if "to" not in table:
            raise check.error("candidates.from", "'from' needs 'to' (the last candidate column)")
        last = check.string(table["to"], "candidates.to", empty_ok=False)
    else:
        matches = check.string(table["matches"], "candidates.matches", empty_ok=False)
        _check_regex(check, matches, "candidates.matches")
    return CandidateSelection(
        columns=tuple(columns),
        first=first,
        last=last,
        matches=matches,
        exclude=exclude,
        names=names,
        parties=parties,
        party_lists=party_lists,
    )


# --------------------------------------------------------------------------------------------
# Reading a table with a mapping
# --------------------------------------------------------------------------------------------


def _read_table(path: Path, source: SourceSpec) -> tuple[pl.DataFrame, str, int]:
    """The table as strings, its display name, and the line number of its first data row."""
    if source.format == "csv":
        data, where = read_source_bytes(path, member=source.member)
        return _read_csv(data, where, source), where, source.skip_rows + 2
    if source.format == "excel":
        if source.member is None and _is_workbook(path):
            # A workbook is itself a zip: read it whole, not as an archive holding a table.
            data, where = path.read_bytes(), str(path)
        else:
            data, where = read_source_bytes(
                path, member=source.member, member_suffixes=_EXCEL_SUFFIXES
            )
        # calamine unpacks the workbook by itself: check what its parts declare first.
        check_archive_members(data, where)
        return _read_excel(data, where, source), where, source.skip_rows + 2
    data, where = read_source_bytes(path, member=source.member, member_suffixes=(".parquet",))
    try:
        import pyarrow.parquet as pq  # only Parquet sources need it

        # The footer says how many rows and columns there are, before any page is unpacked.
        metadata = pq.ParquetFile(io.BytesIO(data)).metadata
        check_table_shape(metadata.num_rows, metadata.num_columns, where)
        frame = pl.read_parquet(io.BytesIO(data))
    except PollwatchError:
        raise
    except Exception as exc:  # pyarrow and polars raise many kinds; all mean "not parquet"
        raise FormatError(
            f"not a readable Parquet file ({str(exc).splitlines()[0][:200] if str(exc) else exc})",
            path=where,
            hint="check the file, or set source.format in the mapping",
        ) from None
    return frame.select(pl.all().cast(pl.String)), where, 1


def _is_workbook(path: Path) -> bool:
    """Whether ``path`` is an Excel/OpenDocument workbook (not an archive holding one)."""
    try:
        if not path.is_file():
            return False
        if path.suffix.lower() in _EXCEL_SUFFIXES:
            return True
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
            return "[Content_Types].xml" in names or "mimetype" in names
    except (OSError, zipfile.BadZipFile):
        return False
    return False


def _read_csv(data: bytes, where: str, source: SourceSpec) -> pl.DataFrame:
    return read_csv_table(
        data,
        where=where,
        encoding=source.encoding,
        separator=source.separator,
        skip_rows=source.skip_rows,
        quote_char=source.quote,
    )


def _read_excel(data: bytes, where: str, source: SourceSpec) -> pl.DataFrame:
    sheet: dict[str, Any] = {}
    if isinstance(source.sheet, str):
        sheet["sheet_name"] = source.sheet
    else:
        sheet["sheet_id"] = source.sheet or 1
    try:
        frame = pl.read_excel(
            io.BytesIO(data),
            engine="calamine",
            read_options={
                "header_row": source.skip_rows,
                "dtypes": "string",
                "n_rows": table_row_budget(1),
            },
            **sheet,
        )
    except Exception as exc:  # fastexcel raises its own error classes; all mean "cannot read"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(
            f"not a readable Excel sheet ({first[:200]})",
            path=where,
            hint="check the file and the mapping's source.sheet and source.skip_rows",
        ) from None
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - one sheet is asked for
        raise FormatError("more than one sheet read", path=where, hint="name one source.sheet")
    check_table_shape(frame.height, frame.width, where)
    return frame.select(pl.all().cast(pl.String))


def _clean_text(column: str) -> pl.Expr:
    # Whitespace runs (newlines inside quoted names included) become one space; empty is null.
    text = pl.col(column).cast(pl.String).str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _text_expr(spec: TextSpec) -> pl.Expr:
    """The text column built from source columns already cleaned by :func:`_clean_text`."""
    if spec.template is not None:
        parts: list[pl.Expr] = []
        position = 0
        for match in _PLACEHOLDER.finditer(spec.template):
            if match.start() > position:
                parts.append(pl.lit(spec.template[position : match.start()]))
            parts.append(pl.col(match.group(1)).fill_null(""))
            position = match.end()
        if position < len(spec.template):
            parts.append(pl.lit(spec.template[position:]))
        built = pl.concat_str(parts) if parts else pl.lit(spec.template)
        referenced = _PLACEHOLDER.findall(spec.template)
        if referenced:
            all_null = pl.all_horizontal([pl.col(c).is_null() for c in referenced])
            built = pl.when(all_null).then(None).otherwise(built)
    elif len(spec.columns) == 1:
        built = pl.col(spec.columns[0])
    else:
        cleaned = [pl.col(c) for c in spec.columns]
        joined = pl.concat_str([c.fill_null("") for c in cleaned], separator=spec.join)
        built = pl.when(pl.all_horizontal([c.is_null() for c in cleaned])).then(None)
        built = built.otherwise(joined)
    return built


def _mapped_text(spec: TextSpec) -> pl.Expr:
    """The text column after ``values`` (unlisted values: ``default``, else unchanged)."""
    built = _text_expr(spec)
    if not spec.values:
        return built
    key = built.fill_null("")
    mapped = key.replace_strict(
        list(spec.values), list(spec.values.values()), default=None, return_dtype=pl.String
    )
    fallback = pl.lit(spec.default, dtype=pl.String) if spec.default is not None else built
    return pl.when(key.is_in(list(spec.values))).then(mapped).otherwise(fallback)


def _close(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.5)
    return f"close: {', '.join(repr(c) for c in close)}" if close else ""


class _Reader:
    """One read of one table with one mapping."""

    def __init__(self, mapping: TableMapping, frame: pl.DataFrame, where: str, first_row: int):
        self.mapping = mapping
        self.where = where
        self.first_row = first_row
        self.frame = frame.with_row_index(_ROW, offset=first_row)
        self.definitions: dict[str, str] = {}

    # -- checks -------------------------------------------------------------------------
    def require(self, key: str, columns: Iterable[str]) -> None:
        """Refuse a mapping key naming a column the table lacks, with the closest names."""
        present = [c for c in self.frame.columns if c != _ROW]
        for column in columns:
            if column not in present:
                close = _close(column, present)
                listing = ", ".join(repr(c) for c in present[:15])
                more = "..." if len(present) > 15 else ""
                hint = f"{close}; " if close else ""
                raise MappingError(
                    f"{key} names column {column!r}, which {self.where} lacks",
                    path=self.mapping.where(key),
                    hint=f"{hint}columns present: {listing}{more}",
                )

    def candidate_columns(self) -> list[tuple[str, str, str | None]]:
        """(source column, display name, party) of each candidate."""
        selection = self.mapping.candidates
        present = [c for c in self.frame.columns if c != _ROW]
        chosen: list[tuple[str, str | None, str | None]] = []
        if selection.columns:
            for index, item in enumerate(selection.columns):
                self.require(f"candidates.columns[{index}]", [item.column])
                chosen.append((item.column, item.name, item.party))
        elif selection.matches is not None:
            pattern = re.compile(selection.matches)
            chosen = [(c, None, None) for c in present if pattern.search(c)]
            if not chosen:
                raise MappingError(
                    f"candidates.matches /{selection.matches}/ matches no column of {self.where}",
                    path=self.mapping.where("candidates.matches"),
                    hint=f"columns present: {', '.join(repr(c) for c in present[:15])}",
                )
        else:
            assert selection.first is not None and selection.last is not None
            self.require("candidates.from", [selection.first])
            self.require("candidates.to", [selection.last])
            start, stop = present.index(selection.first), present.index(selection.last)
            if stop < start:
                raise MappingError(
                    f"candidates.to column {selection.last!r} comes before "
                    f"candidates.from column {selection.first!r} in {self.where}",
                    path=self.mapping.where("candidates.to"),
                    hint="swap them",
                )
            chosen = [(c, None, None) for c in present[start : stop + 1]]
        names = [c for c, _, _ in chosen]
        for column in selection.exclude:
            if column not in names:
                raise MappingError(
                    f"candidates.exclude names {column!r}, which is not among the candidate "
                    f"columns selected from {self.where}",
                    path=self.mapping.where("candidates.exclude"),
                    hint=_close(column, names) or f"selected: {', '.join(names[:15])}",
                )
        for key, table in (("names", selection.names), ("parties", selection.parties)):
            for column in table:
                if column not in names:
                    raise MappingError(
                        f"candidates.{key} names {column!r}, which is not a candidate column",
                        path=self.mapping.where(f"candidates.{key}"),
                        hint=_close(column, names) or f"selected: {', '.join(names[:15])}",
                    )
        result: list[tuple[str, str, str | None]] = []
        for column, name, party in chosen:
            if column in selection.exclude:
                continue
            display = name or selection.names.get(column) or column
            party = party or selection.parties.get(column)
            if party is None and selection.party_lists:
                party = display
            result.append((column, display, party))
        if not result:
            raise MappingError(
                "no candidate columns selected",
                path=self.mapping.where("candidates"),
                hint="check [candidates]",
            )
        displays = [d for _, d, _ in result]
        for display in displays:
            if displays.count(display) > 1:
                raise MappingError(
                    f"two candidates are both named {display!r}",
                    path=self.mapping.where("candidates"),
                    hint="give them different names",
                )
            if display in RESERVED_COLUMNS or display == _ROW:
                raise MappingError(
                    f"candidate name {display!r} is a column name of the data model",
                    path=self.mapping.where("candidates"),
                    hint="rename it with candidates.names",
                )
        used = {c for spec in self.mapping.counts.values() for c in spec.columns}
        for column, _, _ in result:
            if column in used:
                raise MappingError(
                    f"column {column!r} is both a candidate and a count in [columns]",
                    path=self.mapping.where("candidates"),
                    hint="narrow the candidate selection (exclude = [...])",
                )
        return result

    # -- the read -------------------------------------------------------------------------
    def run(self, path: Path) -> Election:
        """Check the mapping against the table, build the stations table and the metadata."""
        mapping = self.mapping
        self.require("columns.station_id", mapping.station_id.source_columns())
        for target, spec in mapping.text.items():
            self.require(f"columns.{target}", spec.source_columns())
        if mapping.station_kind is not None:
            self.require("columns.station_kind", mapping.station_kind.source_columns())
        for target, count in mapping.counts.items():
            self.require(f"columns.{target}", count.columns)
            if count.null_when is not None:
                self.require(f"columns.{target}.null_when", count.null_when.columns())
        for flag, rule in mapping.flags.items():
            self.require(f"flags.{flag}", rule.columns())
        if mapping.exclude is not None:
            self.require("rows.exclude", mapping.exclude.columns())
        if mapping.no_results is not None:
            self.require("rows.no_results", mapping.no_results.columns())
        candidates = self.candidate_columns()
        self.check_derived()

        # Text and rules read cleaned text (each source column cleaned once); counts read the
        # raw cells, so that a column can be both (a station number used as a key, say).
        rule_columns = [c for rule in self.rules() for c in rule.columns()]
        text_columns = [
            *mapping.station_id.source_columns(),
            *(c for spec in mapping.text.values() for c in spec.source_columns()),
            *(mapping.station_kind.source_columns() if mapping.station_kind else []),
            *rule_columns,
        ]
        clean = self.frame.select(
            pl.col(_ROW), *[_clean_text(c).alias(c) for c in dict.fromkeys(text_columns)]
        )
        excluded = (
            clean.select(mapping.exclude.expr()).to_series()
            if mapping.exclude is not None
            else None
        )
        count_sources = list(
            dict.fromkeys(
                [c for spec in mapping.counts.values() for c in spec.columns]
                + [c for c, _, _ in candidates]
                + [c for formula in mapping.derived.values() for c in formula.source_columns()]
            )
        )
        parsed = self.parse(self.frame, count_sources, excluded)
        if parsed.height != clean.height:  # rows set aside (pollwatch.results.quarantine)
            kept = clean[_ROW].is_in(parsed[_ROW].implode())
            clean = clean.filter(kept)
            excluded = excluded.filter(kept) if excluded is not None else None
        stations = clean.select(
            pl.col(_ROW),
            _text_expr(mapping.station_id).alias("station_id"),
            *[_mapped_text(spec).alias(target) for target, spec in mapping.text.items()],
        )
        count_exprs = [
            self.count_expr(count, clean).alias(t) for t, count in mapping.counts.items()
        ]
        count_exprs += [pl.col(column).alias(display) for column, display, _ in candidates]
        stations = stations.hstack(parsed.select(count_exprs))
        stations = self.derive(stations, parsed, [display for _, display, _ in candidates])

        results = [c for c in mapping.counts if c not in _NOT_RESULTS]
        results += [c for c in mapping.derived if c not in _NOT_RESULTS and c not in results]
        results += [display for _, display, _ in candidates]
        if mapping.no_results is not None:
            mask = clean.select(mapping.no_results.expr()).to_series()
            if excluded is not None:
                mask = mask & ~excluded
            stations = stations.with_columns(
                [pl.when(pl.lit(mask)).then(None).otherwise(pl.col(c)).alias(c) for c in results]
            )
            self.definitions["no_results"] = (
                f"{int(mask.sum())} rows where {mapping.no_results.describe()} hold placeholders, "
                f"not results: their counts ({', '.join(results)}) are set to null"
            )
        kind = self.station_kinds(clean, excluded)
        if kind is not None:
            stations = stations.with_columns(kind.alias("station_kind"))
        stations = stations.with_columns(self.flag_exprs(clean, stations, results, kind))
        if excluded is not None:
            stations = stations.filter(~excluded)
            assert mapping.exclude is not None
            self.definitions["excluded_rows"] = (
                f"{int(excluded.sum())} source rows dropped by the mapping's rows.exclude rule "
                f"({mapping.exclude.describe()})"
            )
        stations = self.unique_ids(stations)
        stations = self.derived_findings(stations, [display for _, display, _ in candidates])
        meta = self.meta(path, candidates)
        return make_election(meta, stations.drop(_ROW), where=self.where)

    def rules(self) -> list[Rule]:
        """Every rule of the mapping."""
        mapping = self.mapping
        found = [c.null_when for c in mapping.counts.values() if c.null_when is not None]
        found += list(mapping.flags.values())
        found += [r for r in (mapping.exclude, mapping.no_results) if r is not None]
        return found

    def parse(
        self, frame: pl.DataFrame, columns: Sequence[str], excluded: pl.Series | None
    ) -> pl.DataFrame:
        """Count columns as Int64; cells of excluded rows are not parsed (they may be labels).

        A row with a bad count is set aside (or raises when strict); the result keeps ``_ROW``.
        """
        source = self.mapping.source
        thousands = source.thousands
        exprs = []
        if source.decimal and source.decimal != ".":
            # Thousands separators must go before the decimal one becomes ".".
            for name in columns:
                text = pl.col(name).cast(pl.String)
                if thousands:
                    text = text.str.replace_all(thousands, "", literal=True)
                exprs.append(text.str.replace_all(source.decimal, ".", literal=True).alias(name))
            thousands = None
        if excluded is not None:
            exprs = [
                pl.when(pl.lit(excluded)).then(None).otherwise(e).alias(name)
                for e, name in zip(exprs or [pl.col(c) for c in columns], columns, strict=True)
            ]
        cleaned = frame.with_columns(exprs) if exprs else frame
        parsed = parse_counts(
            cleaned,
            columns,
            where=self.where,
            thousands=thousands,
            na_values=source.na_values,
            line_column=_ROW,
        )
        return parsed

    def check_derived(self) -> None:
        """Refuse a derivation naming a column that is neither mapped, derived nor in the table."""
        present = [c for c in self.frame.columns if c != _ROW]
        for target, formula in self.mapping.derived.items():
            key = f"derived.{target}"
            for term in formula.terms:
                if term.kind != "source" or term.name in present:
                    continue
                if term.name in COUNT_COLUMNS and not term.quoted:
                    listing = ", ".join(repr(c) for c in present[:15])
                    raise MappingError(
                        f"{key} = {formula.text!r} uses {term.name!r}, which the mapping neither "
                        f"reads in [columns] nor derives, and {self.where} has no such column",
                        path=self.mapping.where(key),
                        hint=f"map {term.name} first; columns present: {listing}"
                        + ("..." if len(present) > 15 else ""),
                    )
                self.require(key, [term.name])

    def derive(
        self, stations: pl.DataFrame, parsed: pl.DataFrame, candidates: Sequence[str]
    ) -> pl.DataFrame:
        """Add the derived columns; one also read from the source gets its formula beside it."""
        derived = self.mapping.derived
        if not derived:
            return stations
        sources = list(dict.fromkeys(c for f in derived.values() for c in f.source_columns()))
        work = stations.hstack(parsed.select([pl.col(c).alias(_SOURCE + c) for c in sources]))
        for target, formula in derived.items():
            parts: list[tuple[int, pl.Expr]] = []
            for term in formula.terms:
                if term.kind == "candidates":
                    parts += [(term.sign, pl.col(c)) for c in candidates]
                elif term.kind == "model":
                    parts.append((term.sign, pl.col(term.name)))
                else:
                    parts.append((term.sign, pl.col(_SOURCE + term.name)))
            total: pl.Expr = pl.lit(0, dtype=pl.Int64)
            for sign, part in parts:
                total = total + part if sign > 0 else total - part
            value = pl.when(pl.any_horizontal([p.is_null() for _, p in parts])).then(None)
            name = _FORMULA + target if target in self.mapping.counts else target
            work = work.with_columns(value.otherwise(total).cast(pl.Int64).alias(name))
        return work.drop([_SOURCE + c for c in sources])

    def derived_findings(self, stations: pl.DataFrame, candidates: Sequence[str]) -> pl.DataFrame:
        """Refuse negative derived counts; record where a formula disagrees with the source."""
        mapping = self.mapping
        pseudo = (
            pl.col("is_pseudo_station")
            if "is_pseudo_station" in stations.columns
            else pl.lit(False)
        )
        for target, formula in mapping.derived.items():
            if target not in mapping.counts:
                negative = stations.select(((pl.col(target) < 0) & ~pseudo).fill_null(False))
                if negative.to_series().any():
                    row = stations.filter(negative.to_series()).row(0, named=True)
                    raise CountError(
                        f"derived.{target} = {formula.text!r} gives a negative count "
                        f"({row[target]})",
                        path=self.where,
                        row=row[_ROW],
                        column=target,
                        hint="check the formula, and the source numbers of that row",
                    )
                continue
            column = _FORMULA + target
            source, computed = pl.col(target), pl.col(column)
            both = source.is_not_null() & computed.is_not_null()
            found = stations.select(
                pl.col("station_id"),
                both.alias("both"),
                (both & (source != computed)).alias("disagree"),
                (source.is_not_null() & computed.is_null()).alias("not_computable"),
            )
            self.definitions[DERIVED_CHECK_PREFIX + target] = derived_check_text(
                target,
                formula.describe(candidates),
                mapping.counts[target].describe(),
                checked=int(found["both"].sum()),
                disagree=found.filter("disagree")["station_id"].to_list(),
                not_computable=found.filter("not_computable")["station_id"].to_list(),
            )
            stations = stations.drop(column)
        return stations

    def count_expr(self, spec: CountSpec, clean: pl.DataFrame) -> pl.Expr:
        """One count column from the parsed source columns (a sum when there are several)."""
        parts = [pl.col(c) for c in spec.columns]
        if len(parts) == 1:
            value = parts[0]
        else:
            value = pl.when(pl.any_horizontal([p.is_null() for p in parts])).then(None)
            value = value.otherwise(pl.sum_horizontal(parts))
        if spec.null_when is not None:
            mask = clean.select(spec.null_when.expr()).to_series()
            value = pl.when(pl.lit(mask)).then(None).otherwise(value)
        return value

    def station_kinds(self, frame: pl.DataFrame, excluded: pl.Series | None) -> pl.Series | None:
        """The station_kind column; a source value without a kind is an error (or default)."""
        spec = self.mapping.station_kind
        if spec is None:
            return None
        raw = frame.select(_text_expr(spec).fill_null("").alias("raw"), pl.col(_ROW))
        values = dict(spec.values) if spec.values else {k: k for k in STATION_KINDS}
        mapped = raw.select(
            pl.col("raw").replace_strict(
                list(values), list(values.values()), default=None, return_dtype=pl.String
            )
        ).to_series()
        if spec.default is not None:
            return mapped.fill_null(spec.default)
        unmapped = mapped.is_null() if excluded is None else mapped.is_null() & ~excluded
        if unmapped.any():
            bad = raw.filter(unmapped)
            found = bad["raw"].unique(maintain_order=True).to_list()
            shown = ", ".join(repr(v) for v in found[:8]) + ("..." if len(found) > 8 else "")
            raise MappingError(
                f"columns.station_kind: value(s) {shown} of {spec.label()!r} have no station kind "
                f"(first at {self.where}, row {bad[_ROW][0]})",
                path=self.mapping.where("columns.station_kind"),
                hint="add them to columns.station_kind.values, or set a default",
            )
        return mapped

    def flag_exprs(
        self,
        frame: pl.DataFrame,
        stations: pl.DataFrame,
        results: Sequence[str],
        kind: pl.Series | None,
    ) -> list[pl.Series]:
        """The flag columns: the mapping's rules or'ed with what station_kind and counts say."""
        rules = self.mapping.flags
        flags: dict[str, pl.Series] = {}
        for flag, rule in rules.items():
            flags[flag] = frame.select(rule.expr()).to_series()
            self.definitions[flag] = f"true where {rule.describe()}"
        derived: dict[str, pl.Series] = {}
        if kind is not None:
            derived["is_abroad"] = kind == "abroad"
            derived["is_pseudo_station"] = kind.is_in(list(_PSEUDO_KINDS))
            derived["is_evoting"] = kind == "evoting"
        unpublished = stations.select(
            pl.all_horizontal([pl.col(c).is_null() for c in results])
        ).to_series()
        derived["is_unpublished"] = unpublished
        out = []
        for flag in ("is_pseudo_station", "is_evoting", "is_abroad", "is_cancelled"):
            parts = [s for s in (flags.get(flag), derived.get(flag)) if s is not None]
            if parts:
                value = parts[0] if len(parts) == 1 else parts[0] | parts[1]
                out.append(value.fill_null(False).alias(flag))
        value = derived["is_unpublished"]
        if "is_unpublished" in flags:
            value = value | flags["is_unpublished"]
        out.append(value.fill_null(False).alias("is_unpublished"))
        return out

    def unique_ids(self, stations: pl.DataFrame) -> pl.DataFrame:
        """Refuse empty ids, and repeated ones unless ``duplicates`` says number or keep."""
        spec = self.mapping.station_id
        stations = set_aside(
            stations,
            pl.col("station_id").is_null(),
            reason=EMPTY_IDENTIFIER,
            where=self.where,
            column="station_id",
            message=lambda row: (
                f"columns.station_id gives an empty id at {self.where}, row {row[_ROW]} "
                f"({spec.describe()})"
            ),
            hint="use key columns that are filled on every row, or exclude that row",
            line_column=_ROW,
            error=MappingError,
            error_path=self.mapping.where("columns.station_id"),
        )
        repeats = stations.select(pl.col("station_id").is_first_distinct().not_()).to_series()
        count = int(repeats.sum())
        if not count:
            return stations
        if spec.duplicates == "keep":
            self.definitions["duplicate_station_ids"] = (
                f"{count} rows repeat the station_id of an earlier row (kept as they are)"
            )
            return stations
        if spec.duplicates == "error":
            first_repeat = stations.filter(repeats)
            station_id = first_repeat["station_id"][0]
            rows = stations.filter(pl.col("station_id") == station_id)[_ROW].to_list()
            raise MappingError(
                f"columns.station_id: id {station_id!r} is on rows {rows[:5]} of {self.where} "
                f"({count} repeated ids in all)",
                path=self.mapping.where("columns.station_id"),
                hint="add key columns to columns.station_id, or set duplicates = 'number' "
                "(appends #2, #3, ...) or 'keep'",
            )
        # Number only the rows in repeated groups (a window over all ids is slow).
        positions = stations.select(pl.col("station_id").is_duplicated().arg_true()).to_series()
        group = stations[positions]
        exact = int(group.drop(_ROW).is_duplicated().sum())
        occurrence = pl.int_range(pl.len()).over("station_id")
        renamed = group.select(
            pl.when(occurrence > 0)
            .then(
                pl.concat_str([pl.col("station_id"), pl.lit("#"), (occurrence + 1).cast(pl.String)])
            )
            .otherwise(pl.col("station_id"))
        ).to_series()
        ids = stations["station_id"].clone().scatter(positions, renamed)
        numbered = stations.with_columns(ids.alias("station_id"))
        self.definitions["duplicate_station_ids"] = (
            f"{count} rows repeat the key of an earlier row and got '#2', '#3', ... appended to "
            f"their station_id (in file order); {exact} rows are in groups of rows identical in "
            "every mapped column"
        )
        return numbered

    def meta(self, path: Path, candidates: Sequence[tuple[str, str, str | None]]) -> ElectionMeta:
        """The election's metadata, with a definition for every choice the mapping made."""
        mapping = self.mapping
        election = mapping.election
        labels: dict[str, str] = {}
        for target, spec in mapping.text.items():
            labels[target] = spec.label()
        labels.update(election.get("hierarchy_labels", {}))
        definitions: dict[str, str] = {
            "mapping": mapping.file_name,
            "station_id": mapping.station_id.describe(),
        }
        if mapping.source.member:
            definitions["source_member"] = mapping.source.member
        for target, spec in mapping.text.items():
            definitions[target] = spec.describe()
        if mapping.station_kind is not None:
            definitions["station_kind"] = mapping.station_kind.describe()
        for target, count in mapping.counts.items():
            definitions[target] = count.describe()
        names = [display for _, display, _ in candidates]
        for target, formula in mapping.derived.items():
            words = formula.describe(names)
            if target in mapping.counts:
                definitions[target] += (
                    f"; checked against the mapping's formula {target} = {words} "
                    "(disagreements: protocol check derived_matches_source)"
                )
            else:
                definitions[target] = (
                    f"derived by the mapping: {target} = {words}; null where any part is empty"
                )
        definitions["candidates"] = mapping.candidates.describe()
        derived = {"is_unpublished": "true where every result count is empty"}
        if mapping.station_kind is not None:
            derived["is_abroad"] = "true where station_kind is 'abroad'"
            derived["is_pseudo_station"] = (
                "true where station_kind is 'postal', 'evoting' or 'catch_all'"
            )
            derived["is_evoting"] = "true where station_kind is 'evoting'"
        for flag, text in derived.items():
            rule = self.definitions.pop(flag, None)
            definitions[flag] = f"{text}; also {rule}" if rule else text
        definitions.update(self.definitions)
        definitions.update(mapping.definitions)
        notes = election.get("notes", "")
        if "excluded_rows" in self.definitions:
            notes = f"{notes} {self.definitions['excluded_rows']}.".strip()
        return ElectionMeta(
            id=election.get("id") or slugify(mapping.name),
            country=election["country"],
            date=election.get("date", ""),
            kind=election.get("kind", ""),
            contest=election.get("contest", ""),
            source=election.get("source", ""),
            license=election.get("license", ""),
            importer=MappingImporter.name,
            candidates=tuple(
                Candidate(name=display, column=display, party=party)
                for _, display, party in candidates
            ),
            data_version=election.get("data_version", ""),
            round=election.get("round"),
            hierarchy_labels=labels,
            definitions=definitions,
            source_files=(path.name,),
            source_sha256=sha256_file(path),
            notes=notes,
        )


# --------------------------------------------------------------------------------------------
# The importer
# --------------------------------------------------------------------------------------------


_EXAMPLE_CSV = """\
Freedonia Electoral Commission - results by polling station - provisional;;;;;;;;;;
Province;Commune;Station;Type;Electors;Voters;Invalid;Valid;Firefly;Sylvania First;Status
North;Alpha;1;regular;1.250;800;10;790;500;290;
North;Alpha;2;hospital;120;100;2;98;60;38;
North;Beta;1;regular;900;-;-;-;-;-;not reported
South;Gamma;1;abroad;300;150;0;150;50;100;
South;Gamma;2;regular;1.100;700;20;680;300;380;annulled
TOTAL;;;;3.670;1.750;32;1.718;910;808;
"""

_EXAMPLE_TOML = """\
# A mapping for a (fictional) country: no code needed, only this file.
description = "Freedonia, general election 2031, results by polling station"

[source]
format = "csv"
encoding = "utf-8"
separator = ";"
thousands = "."
na_values = ["-"]
skip_rows = 1            # the title line above the header

[election]
id = "freedonia-2031"
country = "XF"           # a user-assigned ISO 3166 code: Freedonia is fictional
date = 2031-04-01
kind = "general"
contest = "President"
source = "example written by pollwatch"
license = "CC0-1.0"

[columns]
station_id = ["Province", "Commune", "Station"]
region = "Province"
municipality = "Commune"
station_name = "Station"
station_kind = { column = "Type", values = { regular = "ordinary", hospital = "hospital", \
abroad = "abroad" } }
registered = "Electors"
ballots_cast = "Voters"
invalid = "Invalid"
valid = "Valid"

[candidates]
from = "Firefly"
to = "Sylvania First"

[flags]
is_cancelled = { column = "Status", equals = "annulled" }

[rows]
exclude = { column = "Province", equals = "TOTAL" }

[definitions]
ballots_cast = "voters who signed the list (column Voters)"
"""


@IMPORTERS.register("mapping")
class MappingImporter(Importer):
    """Any CSV, Excel or Parquet table, read through a TOML mapping file."""

    name = "mapping"
    description = "any CSV/Excel/Parquet table, through a mapping file (--mapping FILE or NAME)"
    needs_mapping = True

    def detect(self, path: Path) -> float:
        """Never chosen by detection: a mapping is what makes a table readable."""
        return 0.0

    def read_file(self, path: Path, options: dict[str, str], mapping: Path | None) -> Election:
        """Read ``path`` with ``mapping``: a TOML file, or the name of a shipped mapping."""
        if mapping is None:
            raise PollwatchError(
                "the mapping importer needs a mapping file",
                hint="pass --mapping FILE or the name of a shipped mapping "
                f"({', '.join(shipped_mappings()) or 'none'})",
            )
        table_mapping = load_mapping(mapping)
        frame, where, first_row = _read_table(path, table_mapping.source)
        return _Reader(table_mapping, frame, where, first_row).run(path)

    def example(self, folder: Path) -> Example:
        """A small CSV of a fictional country and its mapping file."""
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / "freedonia-2031.csv"
        data.write_text(_EXAMPLE_CSV, encoding="utf-8")
        mapping = folder / "freedonia-2031.toml"
        mapping.write_text(_EXAMPLE_TOML, encoding="utf-8")
        return Example(
            path=data,
            totals={"Firefly": 910, "Sylvania First": 808},
            stations=5,
            mapping=mapping,
        )
