"""The NIST SP 1500-100 v2 data model as pollwatch reads and writes it: schema and constants.

The JSON Schema (draft-04) of NIST Special Publication 1500-100 Rev. 2 ships with pollwatch
(``pollwatch/results/importers/schemas/NIST_V2_election_results_reporting.json``, NIST software
notice in ``schemas/NIST_LICENSE.txt``); :func:`validate_report` checks a decoded report against
it and names the JSON path of the first failing value. Also here: the format's names that both
the reader and the writer use (report and unit types, the hierarchy levels of ``ReportingUnit``
types, the ``pollwatch-*`` ``ExternalIdentifier`` extension) and :func:`json_path`.

Validation uses the schema compiled to Python by ``fastjsonschema`` (draft-04), which is about
a hundred times faster than ``jsonschema`` on reports of thousands of precincts; a test checks
that both accept and reject the same damaged reports. ``jsonschema`` only words the error.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from pollwatch.errors import SchemaError

__all__ = [
    "DATE_PATTERN",
    "EXT_COLUMN",
    "EXT_COUNTRY",
    "EXT_ELECTION_ID",
    "EXT_FLAGS",
    "EXT_KIND",
    "EXT_LICENSE",
    "EXT_ROUND",
    "EXT_SOURCE",
    "EXT_STATION_ID",
    "EXT_STATION_KIND",
    "LEVEL_OF_UNIT_TYPE",
    "MAX_COUNT",
    "NAME",
    "REPORT_TYPE",
    "SCHEMA_FILE",
    "JsonPath",
    "gc_paused",
    "json_path",
    "json_pointer",
    "load_schema",
    "short_repr",
    "valid_date",
    "validate_report",
]

NAME = "nist-1500-100"
SCHEMA_FILE = "NIST_V2_election_results_reporting.json"
REPORT_TYPE = "ElectionResults.ElectionReport"

#: ReportingUnit types that fill a hierarchy column (nearest enclosing unit wins).
LEVEL_OF_UNIT_TYPE: dict[str, str] = {
    "state": "region",
    "congressional": "constituency",
    "state-senate": "constituency",
    "state-house": "constituency",
    "county": "district",
    "municipality": "municipality",
    "city": "municipality",
    "town": "municipality",
    "township": "municipality",
    "village": "municipality",
    "borough": "municipality",
}

# ExternalIdentifier OtherType values of the pollwatch extension (Type "other").
EXT_STATION_ID = "pollwatch-station-id"
EXT_STATION_KIND = "pollwatch-station-kind"
EXT_FLAGS = "pollwatch-flags"
EXT_COLUMN = "pollwatch-column"
EXT_ELECTION_ID = "pollwatch-election-id"
EXT_KIND = "pollwatch-kind"
EXT_COUNTRY = "pollwatch-country"
EXT_ROUND = "pollwatch-round"
EXT_SOURCE = "pollwatch-source"
EXT_LICENSE = "pollwatch-license"

# Counts above 2**53 are not exact as JSON numbers in most readers; no real count comes close.
MAX_COUNT = 2**53
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

JsonPath = list[str | int]


@functools.cache
def load_schema() -> dict[str, Any]:
    """The NIST SP 1500-100 v2 JSON schema shipped with pollwatch (draft-04)."""
    text = (
        resources.files("pollwatch.results.importers")
        .joinpath("schemas", SCHEMA_FILE)
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def json_path(parts: Iterable[str | int]) -> str:
    """``["Election", 0, "@id"]`` -> ``$.Election[0]['@id']``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def json_pointer(parts: Iterable[str | int]) -> str:
    """``["Election", 0, "@id"]`` -> ``/Election/0/@id`` (RFC 6901: ``~`` and ``/`` escaped)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def short_repr(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters with an ellipsis."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.cache
def _validator() -> Callable[[Any], Any]:
    """The schema compiled by fastjsonschema (draft-04; ``format`` not checked, as by
    :class:`jsonschema.Draft4Validator` without a format checker)."""
    validate: Callable[[Any], Any] = fastjsonschema.compile(load_schema(), use_formats=False)
    return validate


def _focus(error: ValidationError) -> tuple[ValidationError, str]:
    """Descend a failing ``oneOf`` into the branch whose ``@type`` fits, to the deepest fault.

    Every object in the NIST schema carries a constant ``@type``, so a ``oneOf`` branch that
    fails on ``@type`` is the wrong branch. Returns the error and its message; when no branch
    takes the instance's ``@type`` the message says so.
    """
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [
            errors
            for errors in branches.values()
            if not any(e.absolute_path and e.absolute_path[-1] == "@type" for e in errors)
        ]
        if len(fitting) != 1:
            if not fitting and isinstance(error.instance, dict):
                found = error.instance.get("@type")
                return error, f"'@type' {found!r} is not allowed here"
            break
        error = max(fitting[0], key=lambda e: len(e.absolute_path))
    return error, error.message


def _explain(document: Any, fast_path: list[Any]) -> tuple[JsonPath, str]:
    """Word the first schema error the way ``jsonschema`` does, at its exact JSON path.

    fastjsonschema stops at the outermost ``oneOf`` that fails, with a terse message. The report
    is cut down to the failing branch (every array on the way keeps only the failing element),
    which ``jsonschema`` checks in milliseconds; its best-matching error is then mapped back to
    the original array indices.
    """
    original: JsonPath = []
    node = document
    for part in fast_path:
        if isinstance(node, list):
            index = int(part)
            original.append(index)
            node = node[index]
        elif isinstance(node, dict) and part in node:
            original.append(str(part))
            node = node[part]
        else:
            break

    def trim(value: Any, depth: int) -> Any:
        if depth == len(original):
            return value
        key = original[depth]
        if isinstance(value, list) and isinstance(key, int):
            return [trim(value[key], depth + 1)]
        if isinstance(value, dict):
            return {**value, key: trim(value[key], depth + 1)}
        return value

    error = next(iter(Draft4Validator(load_schema()).iter_errors(trim(document, 0))), None)
    if error is None:  # the two validators disagree: report fastjsonschema's own finding
        return original, "does not follow the schema"
    error, message = _focus(error)
    mapped: JsonPath = [
        original[i] if i < len(original) and isinstance(part, int) else part
        for i, part in enumerate(error.absolute_path)
    ]
    return mapped, message


def validate_report(document: Any, where: str | Path) -> None:
    """Validate a decoded report against the NIST schema; raise :class:`SchemaError` if it fails.

    The error names the file (``where``), the JSON path of the first failing value (e.g.
    ``$.Election[0].Contest[2].ContestSelection[0]``) and the schema's message.
    """
    if not isinstance(document, dict) or document.get("@type") != REPORT_TYPE:
        found = (
            f"its root '@type' is {short_repr(document.get('@type'))}"
            if isinstance(document, dict)
            else f"its root is a JSON {type(document).__name__}, not an object"
        )
        raise SchemaError(
            f"$['@type']: not an NIST SP 1500-100 election report ({found})",
            path=where,
            hint=f'the root must be an object with "@type": "{REPORT_TYPE}"',
        )
    try:
        _validator()(document)
        return
    except fastjsonschema.JsonSchemaValueException as exc:
        parts, message = _explain(document, list(exc.path[1:]))
    except RecursionError:
        raise SchemaError(
            "$: the document is nested too deeply to validate",
            path=where,
            hint="check the file is an NIST SP 1500-100 v2 report",
        ) from None
    if len(message) > 300:
        message = message[:297] + "..."
    raise SchemaError(
        f"{json_path(parts)}: {message}",
        path=where,
        hint=f"the report does not follow the NIST SP 1500-100 v2 JSON schema ({SCHEMA_FILE}); "
        "fix the value at that path",
    )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large report is decoded, walked or built.

    A report is millions of small dicts and lists and none of them is in a reference cycle;
    the collector's repeated passes over them doubled the time of a 100,000-station report.
    Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def valid_date(text: str) -> bool:
    """Whether ``text`` (``YYYY-MM-DD``) is a date of the calendar."""
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
