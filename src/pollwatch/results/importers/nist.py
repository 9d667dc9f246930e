"""NIST SP 1500-100 v2 election results reports (JSON): import one contest, export an election.

The format is NIST Special Publication 1500-100 Rev. 2, *Election Results Common Data Format
Specification*, in its JSON form: the JSON Schema (draft-04) of the public repository
https://github.com/usnistgov/ElectionResultsReporting (branch ``version2``). A copy of that schema
ships with pollwatch (``schemas/NIST_V2_election_results_reporting.json``, NIST software notice
in ``schemas/NIST_LICENSE.txt``) and every document read or written is validated against it.

A report is one ``ElectionResults.ElectionReport`` object: ``GpUnit`` (reporting units such as
precincts, counties and states, linked downwards by ``ComposingGpUnitIds``), ``Party``, and
``Election`` with ``Candidate`` and ``Contest`` (``CandidateContest``, ``PartyContest``, ...).
Each contest's ``ContestSelection`` holds ``VoteCounts``: a ``Count`` of a count ``Type``
(``total``, ``election-day``, ``absentee``, ...) at one ``GpUnitId``.

Import (one contest -> one :class:`~pollwatch.results.model.Election`, recorded in
``meta.definitions``):

* stations are the ``ReportingUnit`` s whose ``Type`` is precinct-like (``precinct``,
  ``split-precinct``, ``combined-precinct``, ``polling-place``, ``vote-center``, ``drop-box``;
  option ``station_types`` changes the list) that have counts for the contest; the lowest such
  units inside the contest's district without counts are kept as unpublished stations. A
  precinct-like unit composed of other counted precinct-like units is an aggregate and is left
  out (its parts are the stations), so nothing is counted twice;
* votes of a selection at a station: the ``total`` count where the station has one, else the sum
  of its other count types, leaving out ``seats`` (not votes) and the ``absentee-*`` breakdowns
  when a plain ``absentee`` count is also given. Of ranked-choice rounds only the first is read.
  A count marked ``IsSuppressedForPrivacy`` reads as missing. Counts must be whole and
  non-negative, except at units pollwatch flagged ``is_pseudo_station`` (signed adjustment rows);
* ``registered`` = ``VotersRegistered``; ``ballots_cast`` = the election's ``BallotCounts``
  ``BallotsCast`` for the unit where given, else ``VotersParticipated``;
* ``valid`` = the sum of the selections' votes plus the contest's ``OtherCounts.WriteIns``;
  ``invalid`` = ``OtherCounts.Overvotes + Undervotes`` (null where the report has neither);
* region, constituency, district and municipality come from the nearest enclosing units of type
  ``state``, ``congressional``/``state-senate``/``state-house``, ``county`` and
  ``city``/``town``/``township``/``village``/``borough``/``municipality``.

Export (:func:`export_nist`) writes one schema-valid ``precinct-level`` report: a
``ReportingUnit`` (type ``precinct``) per station with ``VotersRegistered`` and
``VotersParticipated``, parent units for the hierarchy columns, the candidates and parties, and one
``CandidateContest`` with a ``total`` count per candidate and station. What NIST has no field for
(station id, station kind, flags, candidate column, election id) travels in ``ExternalIdentifier``
entries of type ``other`` whose ``OtherType`` starts with ``pollwatch-``, so that a report written
by pollwatch reads back to the same election. See ``docs/importers/nist-1500-100.md``.

Validation uses the schema compiled to Python by ``fastjsonschema`` (draft-04), which is about
a hundred times faster than ``jsonschema`` on reports of thousands of precincts; a test checks
that both accept and reject the same damaged reports.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import gzip
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema
import polars as pl
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from pollwatch.errors import CountError, FormatError, InputError, PollwatchError, SchemaError
from pollwatch.results.importers._tables import decode_text, read_source_bytes, sha256_file
from pollwatch.results.importers.base import (
    IMPORTERS,
    Example,
    Importer,
    check_options,
    slugify,
)
from pollwatch.results.model import (
    FLAG_COLUMNS,
    HIERARCHY_COLUMNS,
    RESERVED_COLUMNS,
    STATION_KINDS,
    Candidate,
    Election,
    ElectionMeta,
    make_election,
)

__all__ = [
    "SCHEMA_FILE",
    "NistImporter",
    "export_nist",
    "load_schema",
    "validate_report",
]

NAME = "nist-1500-100"
SCHEMA_FILE = "NIST_V2_election_results_reporting.json"
REPORT_TYPE = "ElectionResults.ElectionReport"

OPTIONS: dict[str, str] = {
    "contest": "the contest to read, by @id or Name (needed when the report has several)",
    "station_types": "comma-separated ReportingUnit types read as stations "
    "(default precinct,split-precinct,combined-precinct,polling-place,vote-center,drop-box)",
    "language": "language code of the names to use (default: the first name given)",
    "country": "ISO 3166-1 alpha-2 code (default: from an ocd-id of the election's scope unit)",
    "kind": "election kind, e.g. presidential (default: from the report)",
    "license": "license of the source data",
}

DEFAULT_STATION_TYPES: tuple[str, ...] = (
    "precinct",
    "split-precinct",
    "combined-precinct",
    "polling-place",
    "vote-center",
    "drop-box",
)

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
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNSAFE_ID_CHARS = r"[^A-Za-z0-9._-]"
_PEEK_BYTES = 8192

JsonPath = list[str | int]


# --------------------------------------------------------------------------------------------
# The schema and its validation
# --------------------------------------------------------------------------------------------


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


def _short(value: Any, limit: int = 120) -> str:
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
            f"its root '@type' is {_short(document.get('@type'))}"
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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(path: Path) -> tuple[Any, str]:
    data, where = read_source_bytes(path, member_suffixes=(".json",))
    text = decode_text(data, "utf-8", where)
    if not text.strip():
        raise FormatError("file is empty", path=where, hint="give an NIST SP 1500-100 JSON report")
    try:
        return json.loads(text, parse_constant=_reject_constant), where
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            path=where,
            row=exc.lineno,
            hint="the file is damaged or not JSON; fetch or export it again",
        ) from None
    except ValueError as exc:
        raise FormatError(
            f"not valid JSON: {exc}", path=where, hint="replace NaN/Infinity by numbers"
        ) from None
    except RecursionError:
        raise FormatError(
            "JSON nested too deeply", path=where, hint="check the file is an election report"
        ) from None


def _text(value: Any, language: str | None) -> str:
    """The string of an InternationalizedText: in ``language`` when given there, else the first."""
    if not isinstance(value, dict):
        return ""
    strings = value.get("Text") or []
    if language:
        for string in strings:
            if string.get("Language") == language:
                return str(string["Content"]).strip()
    return str(strings[0]["Content"]).strip() if strings else ""


def _extensions(obj: Mapping[str, Any]) -> dict[str, str]:
    """The pollwatch ExternalIdentifier values of a NIST object, by OtherType."""
    found: dict[str, str] = {}
    for entry in obj.get("ExternalIdentifier", ()):
        other = entry.get("OtherType", "")
        if entry["Type"] == "other" and other.startswith("pollwatch-"):
            found.setdefault(other, entry["Value"])
    return found


def _count(value: Any, parts: JsonPath, where: str, *, signed: bool = False) -> int:
    """A whole, non-negative count from a JSON number, or a CountError naming its path.

    ``signed`` admits negative counts: pollwatch writes adjustment rows of some sources (flagged
    ``is_pseudo_station``) with their signed numbers.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))
        or not (-MAX_COUNT if signed else 0) <= value <= MAX_COUNT
    ):
        raise CountError(
            f"{json_path(parts)}: {_short(value)} is not a whole count between 0 and 2^53",
            path=where,
            hint="counts must be whole non-negative numbers (negative only on units that "
            f"pollwatch flagged is_pseudo_station in {EXT_FLAGS})",
        )
    return int(value)


def _flags_of(unit: Mapping[str, Any]) -> set[str]:
    """The flags a unit carries in the pollwatch-flags extension."""
    if "ExternalIdentifier" not in unit:
        return set()
    text = _extensions(unit).get(EXT_FLAGS, "")
    return {flag.strip() for flag in text.split(",") if flag.strip()}


@dataclass(frozen=True)
class _ContestChoice:
    election_index: int
    contest_index: int
    contest: Mapping[str, Any]

    @property
    def parts(self) -> JsonPath:
        return ["Election", self.election_index, "Contest", self.contest_index]

    @property
    def kind(self) -> str:
        return str(self.contest["@type"]).removeprefix("ElectionResults.")

    def describe(self) -> str:
        selections = len(self.contest.get("ContestSelection", ()))
        return (
            f"{self.contest['@id']!r} {self.contest['Name']!r} ({self.kind}, "
            f"{selections} selections)"
        )


def _choose_contest(report: Mapping[str, Any], wanted: str | None, where: str) -> _ContestChoice:
    elections = report.get("Election") or []
    if not elections:
        raise FormatError(
            "the report holds no Election",
            path=where,
            hint="a results report needs an Election with a Contest and its VoteCounts",
        )
    contests = [
        _ContestChoice(ei, ci, contest)
        for ei, election in enumerate(elections)
        for ci, contest in enumerate(election.get("Contest", ()))
    ]
    if not contests:
        raise FormatError(
            "the report's Election has no Contest", path=where, hint="nothing to import"
        )
    listing = "; ".join(c.describe() for c in contests[:20]) + (
        " ..." if len(contests) > 20 else ""
    )
    if wanted is not None:
        chosen = [c for c in contests if c.contest["@id"] == wanted]
        if not chosen:
            chosen = [c for c in contests if c.contest["Name"] == wanted]
        if not chosen:
            folded = wanted.casefold()
            chosen = [c for c in contests if str(c.contest["Name"]).casefold() == folded]
        if len(chosen) == 1:
            return chosen[0]
        problem = f"no contest {wanted!r}" if not chosen else f"{len(chosen)} contests {wanted!r}"
        raise InputError(
            f"{problem} in the report",
            path=where,
            hint=f"pass --option contest=ID with one of: {listing}",
        )
    candidate_contests = [c for c in contests if c.kind == "CandidateContest"]
    if len(candidate_contests) == 1:
        return candidate_contests[0]
    if not candidate_contests and len(contests) == 1:
        return contests[0]
    raise InputError(
        f"the report has {len(contests)} contests "
        f"({len(candidate_contests)} candidate contests); choose one",
        path=where,
        hint=f"pass --option contest=ID (or Name), one of: {listing}",
    )


@dataclass(frozen=True)
class _Selection:
    label: str
    column: str
    party: str | None


def _selections(
    report: Mapping[str, Any],
    election: Mapping[str, Any],
    choice: _ContestChoice,
    language: str | None,
    where: str,
) -> list[_Selection]:
    """One candidate per contest selection: its label, vote column and party."""
    candidates: dict[str, Mapping[str, Any]] = {}
    for index, candidate in enumerate(election.get("Candidate", ())):
        if candidate["@id"] in candidates:
            raise FormatError(
                f"{json_path(['Election', choice.election_index, 'Candidate', index, '@id'])}: "
                f"duplicate candidate @id {candidate['@id']!r}",
                path=where,
                hint="each @id must be unique",
            )
        candidates[candidate["@id"]] = candidate
    parties = {party["@id"]: party for party in report.get("Party", ())}

    def party_name(party_id: str, parts: JsonPath) -> str:
        if party_id not in parties:
            raise FormatError(
                f"{json_path(parts)}: party {party_id!r} is not in the report's Party list",
                path=where,
                hint="every PartyId must name a Party @id",
            )
        return _text(parties[party_id]["Name"], language) or party_id

    found: list[tuple[str, str | None, str | None, str]] = []
    for si, selection in enumerate(choice.contest.get("ContestSelection", ())):
        parts: JsonPath = [*choice.parts, "ContestSelection", si]
        kind = selection["@type"]
        column: str | None = None
        party: str | None = None
        if kind == "ElectionResults.CandidateSelection":
            names = []
            party_ids: list[str] = []
            for ci, candidate_id in enumerate(selection.get("CandidateIds", ())):
                candidate = candidates.get(candidate_id)
                if candidate is None:
                    raise FormatError(
                        f"{json_path([*parts, 'CandidateIds', ci])}: candidate {candidate_id!r} "
                        "is not in the Election's Candidate list",
                        path=where,
                        hint="every CandidateId must name a Candidate @id",
                    )
                names.append(_text(candidate["BallotName"], language) or candidate_id)
                if "PartyId" in candidate:
                    party_ids.append(candidate["PartyId"])
                if len(selection.get("CandidateIds", ())) == 1:
                    column = _extensions(candidate).get(EXT_COLUMN)
            if not party_ids:
                party_ids = list(selection.get("EndorsementPartyIds", ()))
            party_names = [
                party_name(p, [*parts, "CandidateIds"]) for p in dict.fromkeys(party_ids)
            ]
            party = " / ".join(party_names) or None
            label = " / ".join(names) or ("Write-in" if selection.get("IsWriteIn") else "")
        elif kind == "ElectionResults.PartySelection":
            names = [
                party_name(p, [*parts, "PartyIds", pi])
                for pi, p in enumerate(selection["PartyIds"])
            ]
            label = " / ".join(names)
            party = label
        else:
            label = _text(selection["Selection"], language)
        found.append((label or selection["@id"], column, party, selection["@id"]))
    if not found:
        raise FormatError(
            f"{json_path(choice.parts)}: the contest has no ContestSelection",
            path=where,
            hint="nothing to import; choose another contest with --option contest=ID",
        )
    labels = [label for label, *_ in found]
    result: list[_Selection] = []
    used: set[str] = set()
    for label, column, party, selection_id in found:
        if labels.count(label) > 1:
            label = f"{label} [{selection_id}]"
        column = column or label
        if column in RESERVED_COLUMNS or column in used:
            column = f"{label} [{selection_id}]"
        if column in RESERVED_COLUMNS or column in used:
            raise FormatError(
                f"{json_path(choice.parts)}: two selections read as the same column {column!r}",
                path=where,
                hint="give the selections distinct names or @id values",
            )
        used.add(column)
        result.append(_Selection(label=label, column=column, party=party))
    return result


def _counts_frame(
    rows: Sequence[Mapping[str, Any]],
    count_key: str,
    key_values: Sequence[int],
    unit_codes: Mapping[str, int],
    base_parts: Callable[[int], JsonPath],
    where: str,
    signed: Callable[[int], bool],
) -> pl.DataFrame:
    """A frame (key, unit, type, round, count, suppressed) of VoteCounts or BallotCounts rows.

    ``count_key`` is the member holding the number; ``key_values`` the selection index of each
    row; ``unit_codes`` numbers the GpUnit ids (``unit`` is that number; an unknown id is an
    error); ``base_parts(i)`` the JSON path of row ``i`` for error messages; ``signed(unit)``
    whether a unit may have negative counts.
    """
    codes = [unit_codes.get(row["GpUnitId"], -1) for row in rows]
    if -1 in codes:
        index = codes.index(-1)
        raise FormatError(
            f"{json_path([*base_parts(index), 'GpUnitId'])}: unit {rows[index]['GpUnitId']!r} "
            "is not in the report's GpUnit list",
            path=where,
            hint="every GpUnitId must name a GpUnit @id",
        )
    counts = [row.get(count_key) for row in rows]
    series = pl.Series("count", counts, dtype=pl.Float64, strict=False)
    present = pl.Series([c is not None for c in counts], dtype=pl.Boolean)
    bad = present & (
        series.is_null()
        | series.is_nan()
        | ~series.is_finite()
        | (series.abs() > MAX_COUNT)
        | (series != series.floor())
    ).fill_null(True)
    if bad.any():
        index = int(bad.arg_max() or 0)
        _count(counts[index], [*base_parts(index), count_key], where)  # raises with the path
    for index in (series < 0).fill_null(False).arg_true().to_list():
        if not signed(codes[index]):
            _count(counts[index], [*base_parts(index), count_key], where)  # raises
    return pl.DataFrame(
        {
            "key": pl.Series(key_values, dtype=pl.Int64),
            "unit": pl.Series(codes, dtype=pl.Int64),
            "type": pl.Series([row["Type"] for row in rows], dtype=pl.String),
            "round": pl.Series([row.get("Round") for row in rows], dtype=pl.Int64, strict=False),
            "count": series.cast(pl.Int64),
            "suppressed": pl.Series(
                [row.get("IsSuppressedForPrivacy") is True for row in rows], dtype=pl.Boolean
            ),
        }
    )


def _sum_by_type(frame: pl.DataFrame) -> pl.DataFrame:
    """Counts per (key, unit) by the count-type rule in the module docstring."""
    group = pl.col("key") * (int(frame.select(pl.col("unit").max()).item() or 0) + 1) + pl.col(
        "unit"
    )
    frame = frame.with_columns(group.alias("group"))
    if (
        frame["type"].eq("total").all()
        and not frame["suppressed"].any()
        and frame["group"].is_unique().all()
    ):
        # The common case, one 'total' per selection and unit: nothing to choose or add up.
        return frame.select("key", "unit", "count")
    kind = pl.col("type")
    has_total = (kind == "total").any().over("group")
    has_absentee = (kind == "absentee").any().over("group")
    keep = (
        pl.when(has_total)
        .then(kind == "total")
        .otherwise((kind != "seats") & ~(kind.str.starts_with("absentee-") & has_absentee))
    )
    return (
        frame.filter(keep)
        .group_by("group", maintain_order=True)
        .agg(
            pl.first("key"),
            pl.first("unit"),
            pl.when(pl.col("suppressed").any() | pl.col("count").is_null().any())
            .then(None)
            .otherwise(pl.col("count").sum())
            .alias("count"),
        )
        .drop("group")
    )


def _first_round(frame: pl.DataFrame) -> tuple[pl.DataFrame, int | None]:
    rounds = frame["round"].drop_nulls()
    if rounds.is_empty():
        return frame, None
    first = int(rounds.min())  # type: ignore[arg-type]
    return frame.filter(pl.col("round").is_null() | (pl.col("round") == first)), first


def _parse_station_types(value: str | None, where: str) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_STATION_TYPES
    allowed = load_schema()["definitions"]["ElectionResults.ReportingUnitType"]["enum"]
    types = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in types if t not in allowed]
    if not types or unknown:
        raise InputError(
            f"option station_types: unknown ReportingUnit type(s) {unknown or [value]}",
            path=where,
            hint=f"use a comma-separated list of: {', '.join(allowed)}",
        )
    return types


def _read_report(
    report: Mapping[str, Any], path: Path, where: str, options: Mapping[str, str]
) -> Election:
    language = options.get("language") or None
    station_types = _parse_station_types(options.get("station_types"), where)
    choice = _choose_contest(report, options.get("contest"), where)
    election_obj = report["Election"][choice.election_index]
    contest = choice.contest
    selections = _selections(report, election_obj, choice, language, where)

    # --- reporting units and their links -----------------------------------------------------
    units: dict[str, Mapping[str, Any]] = {}
    unit_index: dict[str, int] = {}
    for index, unit in enumerate(report.get("GpUnit", ())):
        unit_id = unit["@id"]
        if unit_id in units:
            raise FormatError(
                f"{json_path(['GpUnit', index, '@id'])}: duplicate GpUnit @id {unit_id!r}",
                path=where,
                hint="each @id must be unique in the report",
            )
        units[unit_id] = unit
        unit_index[unit_id] = index
    parents: dict[str, list[str]] = {}
    for unit_id, unit in units.items():
        for ci, child in enumerate(unit.get("ComposingGpUnitIds", ())):
            if child not in units:
                raise FormatError(
                    f"{json_path(['GpUnit', unit_index[unit_id], 'ComposingGpUnitIds', ci])}: "
                    f"unit {child!r} is not in the report's GpUnit list",
                    path=where,
                    hint="every ComposingGpUnitIds entry must name a GpUnit @id",
                )
            parents.setdefault(child, []).append(unit_id)

    # --- vote counts of the contest -----------------------------------------------------------
    rows: list[Mapping[str, Any]] = []
    keys: list[int] = []
    starts: list[int] = []
    for si, selection in enumerate(contest.get("ContestSelection", ())):
        counts = selection.get("VoteCounts", ())
        starts.append(len(rows))
        rows.extend(counts)
        keys.extend([si] * len(counts))

    def vote_parts(index: int) -> JsonPath:
        si = bisect.bisect_right(starts, index) - 1
        return [*choice.parts, "ContestSelection", si, "VoteCounts", index - starts[si]]

    unit_ids = list(units)

    def signed(code: int) -> bool:
        return "is_pseudo_station" in _flags_of(units[unit_ids[code]])

    votes = _counts_frame(rows, "Count", keys, unit_index, vote_parts, where, signed)
    votes, first_round = _first_round(votes)

    # --- which units are stations ---------------------------------------------------------------
    typed = {
        unit_id
        for unit_id, unit in units.items()
        if unit["@type"] == "ElectionResults.ReportingUnit" and unit["Type"] in station_types
    }
    counted = {unit_ids[code] for code in votes["unit"].unique().to_list()}
    aggregates: set[str] = set()
    seen: set[str] = set()
    stack = list(counted & typed)
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    aggregates = seen & typed
    counted_stations = (typed & counted) - aggregates
    unpublished: set[str] = set()
    if typed - counted - aggregates:  # only then are the district and the parts needed
        parts = _descendants(units, counted_stations) - counted_stations
        district = contest["ElectionDistrictId"]
        in_district = _descendants(units, {district} if district in units else set())
        unpublished = {
            u
            for u in (typed & in_district) - counted - aggregates - parts
            # the lowest precinct-like level only: a unit made of precinct-like units is not one
            if not any(child in typed for child in units[u].get("ComposingGpUnitIds", ()))
        }
    chosen = counted_stations | unpublished
    station_ids = [u for u in units if u in chosen]
    if not station_ids:
        counted_types = sorted({str(units[u].get("Type", "device")) for u in counted})
        raise FormatError(
            f"{json_path(choice.parts)}: no counts of contest {contest['Name']!r} at units of "
            f"type {', '.join(station_types)} (counts are at: "
            f"{', '.join(counted_types) or 'none'})",
            path=where,
            hint="pass --option station_types=TYPE to read another level as stations"
            if counted_types
            else "the contest has no VoteCounts",
        )
    station_codes = [unit_index[u] for u in station_ids]
    ignored_units = counted - chosen

    # --- per-station numbers --------------------------------------------------------------------
    station_votes = _sum_by_type(votes.filter(pl.col("unit").is_in(station_codes)))
    columns = [s.column for s in selections]
    wide = (
        station_votes.with_columns(pl.col("key").cast(pl.String))
        .pivot(on="key", index="unit", values="count")
        .rename({str(i): column for i, column in enumerate(columns)}, strict=False)
    )
    for column in columns:
        if column not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Int64).alias(column))

    ballot_rows = election_obj.get("BallotCounts", ())
    with_cast = [i for i, row in enumerate(ballot_rows) if "BallotsCast" in row]
    ballots = _counts_frame(
        [ballot_rows[i] for i in with_cast],
        "BallotsCast",
        [0] * len(with_cast),
        unit_index,
        lambda i: ["Election", choice.election_index, "BallotCounts", with_cast[i]],
        where,
        signed,
    )
    ballots = _first_round(ballots)[0].filter(pl.col("unit").is_in(station_codes))
    ballots_cast_by_unit: dict[int, int | None] = dict(
        _sum_by_type(ballots).select("unit", "count").iter_rows()
    )

    invalid_by_unit: dict[str, int] = {}
    write_ins_by_unit: dict[str, int] = {}
    for oi, other in enumerate(contest.get("OtherCounts", ())):
        unit_id = other["GpUnitId"]
        if unit_id not in chosen:
            continue
        for key in ("Overvotes", "Undervotes", "WriteIns"):
            value = other.get(key)
            if value is None:
                continue
            if not (isinstance(value, int) and 0 <= value <= MAX_COUNT):
                value = _count(
                    value,
                    [*choice.parts, "OtherCounts", oi, key],
                    where,
                    signed=signed(unit_index[unit_id]),
                )
            totals = write_ins_by_unit if key == "WriteIns" else invalid_by_unit
            totals[unit_id] = totals.get(unit_id, 0) + value

    levels = _Hierarchy(units, parents, language)
    station_rows: list[tuple[Any, ...]] = []
    from_ballot_counts = 0
    for unit_id, index in zip(station_ids, station_codes, strict=True):
        unit = units[unit_id]
        extensions = _extensions(unit) if "ExternalIdentifier" in unit else {}
        registered = unit.get("VotersRegistered")
        if registered is not None and not (0 <= registered <= MAX_COUNT):
            registered = _count(
                registered, ["GpUnit", index, "VotersRegistered"], where, signed=signed(index)
            )
        if index in ballots_cast_by_unit:
            from_ballot_counts += 1
            cast = ballots_cast_by_unit[index]
        else:
            cast = unit.get("VotersParticipated")
            if cast is not None and not (0 <= cast <= MAX_COUNT):
                cast = _count(
                    cast, ["GpUnit", index, "VotersParticipated"], where, signed=signed(index)
                )
        postal = unit["Type"] == "drop-box" or unit.get("IsMailOnly") is True
        station_rows.append(
            (
                index,
                extensions.get(EXT_STATION_ID, unit_id),
                *levels.of_station(unit_id),
                _text(unit.get("Name"), language) or unit.get("Number") or unit_id,
                extensions.get(EXT_STATION_KIND, "postal" if postal else "ordinary"),
                registered,
                cast,
                invalid_by_unit.get(unit_id),
                write_ins_by_unit.get(unit_id),
                extensions.get(EXT_FLAGS, ""),
            )
        )
    frame = pl.DataFrame(
        station_rows,
        schema={
            "unit": pl.Int64,
            "station_id": pl.String,
            **{c: pl.String for c in HIERARCHY_COLUMNS},
            "station_name": pl.String,
            "station_kind": pl.String,
            "registered": pl.Int64,
            "ballots_cast": pl.Int64,
            "invalid": pl.Int64,
            "write_ins": pl.Int64,
            "flags": pl.String,
        },
        orient="row",
    )
    _check_station_extensions(frame, where)
    flag_lists = pl.col("flags").str.split(",").list.eval(pl.element().str.strip_chars())
    frame = frame.with_columns(
        flag_lists.list.contains(flag).alias(flag) for flag in FLAG_COLUMNS
    ).drop("flags")
    frame = frame.join(wide, on="unit", how="left", maintain_order="left")
    candidate_cols = [pl.col(c) for c in columns]
    any_count = pl.any_horizontal([c.is_not_null() for c in candidate_cols])
    frame = frame.with_columns(
        pl.when(any_count | pl.col("write_ins").is_not_null())
        .then(pl.sum_horizontal(candidate_cols) + pl.col("write_ins").fill_null(0))
        .otherwise(None)
        .alias("valid"),
        (pl.col("is_unpublished") | ~any_count).alias("is_unpublished"),
    ).drop("unit", "write_ins")

    meta = _meta(
        report,
        election_obj,
        choice,
        selections,
        path,
        options,
        language,
        levels.labels,
        definitions=_definitions(
            station_types,
            len(station_ids),
            sorted(aggregates),
            sorted(ignored_units),
            units,
            first_round,
            from_ballot_counts,
            int(contest.get("VotesAllowed", 1)),
        ),
    )
    return make_election(meta, frame, where=where)


def _descendants(units: Mapping[str, Mapping[str, Any]], roots: Iterable[str]) -> set[str]:
    """``roots`` and every unit they are composed of, transitively."""
    found: set[str] = set()
    stack = list(roots)
    while stack:
        unit_id = stack.pop()
        if unit_id not in found:
            found.add(unit_id)
            stack.extend(units[unit_id].get("ComposingGpUnitIds", ()))
    return found


def _check_station_extensions(frame: pl.DataFrame, where: str) -> None:
    """Refuse unknown station kinds and flags carried by pollwatch ExternalIdentifiers."""
    bad_kind = ~frame["station_kind"].is_in(STATION_KINDS)
    if bad_kind.any():
        row = frame.row(int(bad_kind.arg_max() or 0), named=True)
        raise FormatError(
            f"{json_path(['GpUnit', row['unit'], 'ExternalIdentifier'])}: unknown station kind "
            f"{row['station_kind']!r}",
            path=where,
            hint=f"use one of {', '.join(STATION_KINDS)}",
        )
    named = frame.select(
        "unit",
        pl.col("flags")
        .str.split(",")
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter((pl.element() != "") & ~pl.element().is_in(FLAG_COLUMNS)))
        .alias("unknown"),
    ).filter(pl.col("unknown").list.len() > 0)
    if named.height:
        unit, unknown = named.row(0)
        raise FormatError(
            f"{json_path(['GpUnit', unit, 'ExternalIdentifier'])}: unknown flag(s) {unknown}",
            path=where,
            hint=f"flags are {', '.join(FLAG_COLUMNS)}",
        )


class _Hierarchy:
    """Hierarchy columns of a unit from its nearest enclosing units (memoised)."""

    def __init__(
        self,
        units: Mapping[str, Mapping[str, Any]],
        parents: Mapping[str, list[str]],
        language: str | None,
    ) -> None:
        self.units = units
        self.parents = parents
        self.language = language
        self.labels: dict[str, str] = {}
        self._memo: dict[str, dict[str, str]] = {}
        self._by_parents: dict[tuple[str, ...], tuple[str | None, ...]] = {}
        self._busy: set[str] = set()

    def level(self, unit_id: str) -> str | None:
        unit = self.units[unit_id]
        kind = unit.get("Type")
        if kind == "other":
            other = unit.get("OtherType")
            return other if other in HIERARCHY_COLUMNS else None
        return LEVEL_OF_UNIT_TYPE.get(kind) if isinstance(kind, str) else None

    def of_station(self, unit_id: str) -> tuple[str | None, ...]:
        """The hierarchy columns of a station in order, shared by stations with equal parents."""
        key = tuple(self.parents.get(unit_id, ()))
        found = self._by_parents.get(key)
        if found is None:
            levels = self.of(unit_id)
            found = tuple(levels.get(column) for column in HIERARCHY_COLUMNS)
            self._by_parents[key] = found
        return found

    def of(self, unit_id: str) -> dict[str, str]:
        """``{column: name}`` from the units enclosing ``unit_id`` (nearest first)."""
        found = self._memo.get(unit_id)
        if found is not None:
            return found
        if unit_id in self._busy:  # a composition cycle: stop climbing
            return {}
        self._busy.add(unit_id)
        result: dict[str, str] = {}
        parent_ids = self.parents.get(unit_id, [])
        for parent in parent_ids:
            column = self.level(parent)
            if column is not None and column not in result:
                unit = self.units[parent]
                result[column] = _text(unit.get("Name"), self.language) or parent
                kind = unit["Type"] if unit["Type"] != "other" else unit.get("OtherType", "other")
                self.labels.setdefault(column, kind)
        for parent in parent_ids:
            for column, name in self.of(parent).items():
                result.setdefault(column, name)
        self._busy.discard(unit_id)
        self._memo[unit_id] = result
        return result


def _definitions(
    station_types: Sequence[str],
    stations: int,
    aggregates: Sequence[str],
    ignored: Sequence[str],
    units: Mapping[str, Mapping[str, Any]],
    first_round: int | None,
    from_ballot_counts: int,
    votes_allowed: int,
) -> dict[str, str]:
    definitions = {
        "stations": f"ReportingUnits of type {', '.join(station_types)} with counts for the "
        "contest, and, as unpublished stations, the lowest such units inside the contest's "
        f"district that have none ({stations} read)",
        "votes": "per selection and station: the 'total' count where the station has one, else "
        "the sum of its other count types except 'seats' (and except 'absentee-*' where a plain "
        "'absentee' count is given); a count marked IsSuppressedForPrivacy reads as missing",
        "registered": "ReportingUnit.VotersRegistered",
        "ballots_cast": "the Election's BallotCounts.BallotsCast for the station where given "
        f"({from_ballot_counts} stations), else ReportingUnit.VotersParticipated",
        "valid": "sum of the selections' votes at the station plus the contest's "
        "OtherCounts.WriteIns",
        "invalid": "the contest's OtherCounts.Overvotes + Undervotes at the station (null where "
        "absent)",
        "station_kind": "'postal' for drop-box units and IsMailOnly units, else 'ordinary' "
        f"(unless the report carries {EXT_STATION_KIND})",
        "is_unpublished": "the station has no vote count for the contest",
    }
    if votes_allowed != 1:
        definitions["votes_allowed"] = (
            f"the contest allows {votes_allowed} votes per ballot: valid and invalid count votes, "
            "not ballots"
        )
    if aggregates:
        shown = ", ".join(aggregates[:10]) + (" ..." if len(aggregates) > 10 else "")
        definitions["aggregate_units"] = (
            f"{len(aggregates)} precinct-like units composed of counted units are aggregates, "
            f"not stations, and are left out: {shown}"
        )
    if ignored:
        kinds = sorted({str(units[u].get("Type", "device")) for u in ignored})
        definitions["ignored_counts"] = (
            f"counts at {len(ignored)} units that are not stations (types: {', '.join(kinds)}) "
            "are aggregates or parts and are not read"
        )
    if first_round is not None:
        definitions["rounds"] = f"only the counts of round {first_round} (the first) are read"
    return definitions


def _meta(
    report: Mapping[str, Any],
    election_obj: Mapping[str, Any],
    choice: _ContestChoice,
    selections: Sequence[_Selection],
    path: Path,
    options: Mapping[str, str],
    language: str | None,
    hierarchy_labels: Mapping[str, str],
    definitions: Mapping[str, str],
) -> ElectionMeta:
    extensions = _extensions(election_obj)
    start = str(election_obj["StartDate"])
    if not (_DATE.fullmatch(start) and _valid_date(start)):
        raise FormatError(
            f"{json_path(['Election', choice.election_index, 'StartDate'])}: {start!r} is not a "
            "date YYYY-MM-DD",
            path=str(path),
            hint="the schema's StartDate is an ISO date",
        )
    country = options.get("country") or extensions.get(EXT_COUNTRY) or ""
    if not country:
        scope = next(
            (u for u in report.get("GpUnit", ()) if u["@id"] == election_obj["ElectionScopeId"]),
            None,
        )
        country = _country_of(scope) if scope is not None else ""
    election_type = str(election_obj["Type"])
    kind = options.get("kind") or extensions.get(EXT_KIND)
    if not kind:
        if choice.kind == "BallotMeasureContest":
            kind = "referendum"
        elif election_type == "other":
            kind = str(election_obj.get("OtherType") or "other")
        else:
            kind = election_type
    round_number: int | None = 2 if election_type == "runoff" else None
    if extensions.get(EXT_ROUND, "").isdigit():
        round_number = int(extensions[EXT_ROUND])
    contest_name = str(choice.contest["Name"])
    issuer = str(report["Issuer"])
    election_id = extensions.get(EXT_ELECTION_ID) or slugify(
        f"{country or 'nist'} {start[:4]} {contest_name}"
    )
    source = extensions.get(EXT_SOURCE) or (
        f"{path.name}: NIST SP 1500-100 v2 report issued by {issuer}"
    )
    return ElectionMeta(
        id=election_id,
        country=country.upper(),
        date=start,
        kind=kind,
        contest=contest_name,
        source=source,
        license=options.get("license") or extensions.get(EXT_LICENSE, ""),
        importer=NAME,
        candidates=tuple(Candidate(s.label, s.column, s.party) for s in selections),
        data_version=f"{report['GeneratedDate']} {report['Status']} "
        f"(sequence {report['SequenceStart']}-{report['SequenceEnd']})",
        round=round_number,
        hierarchy_labels=dict(hierarchy_labels),
        definitions=dict(definitions),
        source_files=(path.name,),
        source_sha256=sha256_file(path),
        notes=str(report.get("Notes", "")),
    )


def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_OCD_COUNTRY = re.compile(r"ocd-division/country:([a-z]{2})(?:/|$)")


def _country_of(unit: Mapping[str, Any]) -> str:
    for entry in unit.get("ExternalIdentifier", ()):
        if entry["Type"] == "ocd-id":
            match = _OCD_COUNTRY.match(str(entry["Value"]).strip().lower())
            if match:
                return match.group(1).upper()
    return ""


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

_TEXT_TYPE = "ElectionResults.InternationalizedText"


def _international(text: str, language: str) -> dict[str, Any]:
    return {
        "@type": _TEXT_TYPE,
        "Text": [
            {"@type": "ElectionResults.LanguageString", "Content": text, "Language": language}
        ],
    }


def _external(other_type: str, value: str) -> dict[str, Any]:
    return {
        "@type": "ElectionResults.ExternalIdentifier",
        "OtherType": other_type,
        "Type": "other",
        "Value": value,
    }


def _unit_ids(values: pl.Series, prefix: str) -> list[str]:
    """Unique, XML-ID-safe @id values for the given identifiers, in order."""
    safe = values.cast(pl.String).fill_null("").str.replace_all(_UNSAFE_ID_CHARS, "_")
    ids = (prefix + safe).to_list()
    counts: dict[str, int] = {}
    for value in ids:
        counts[value] = counts.get(value, 0) + 1
    taken = set(ids)
    result = []
    for index, value in enumerate(ids):
        if counts[value] > 1:
            candidate = f"{value}-{index + 1}"
            while candidate in taken:
                candidate += "_"
            taken.add(candidate)
            value = candidate
        result.append(value)
    return result


def _election_type(meta: ElectionMeta, types: Sequence[str]) -> str:
    if meta.kind in types:
        return meta.kind
    return "runoff" if (meta.round or 0) > 1 else "general"


def _build_report(
    election: Election,
    *,
    contest_name: str | None,
    language: str,
    generated: datetime,
) -> dict[str, Any]:
    meta = election.meta
    frame = election.stations
    if not (_DATE.fullmatch(meta.date) and _valid_date(meta.date)):
        raise PollwatchError(
            f"election {meta.id!r} has no ISO date ({meta.date!r}); NIST reports need one",
            hint="set it first: election.replace_meta(date='YYYY-MM-DD')",
        )
    definitions = load_schema()["definitions"]
    unit_types = definitions["ElectionResults.ReportingUnitType"]["enum"]
    station_ids = _unit_ids(frame["station_id"], "st-")
    root_id = "gpu-root"

    # --- hierarchy units: one per distinct path root > region > ... > municipality ---------------
    levels = [c for c in HIERARCHY_COLUMNS if frame[c].null_count() < frame.height]
    paths = frame.select(levels).rows() if levels else [() for _ in range(frame.height)]
    unit_of_path: dict[tuple[Any, ...], str] = {(): root_id}
    children: dict[str, list[str]] = {root_id: []}
    level_units: list[dict[str, Any]] = []
    parent_of_station: list[str] = []
    for row in paths:
        parent = root_id
        for depth, value in enumerate(row):
            if value is None:
                continue
            key = tuple(row[: depth + 1])
            unit_id = unit_of_path.get(key)
            if unit_id is None:
                unit_id = f"gpu-{levels[depth]}-{len(level_units) + 1}"
                unit_of_path[key] = unit_id
                children[unit_id] = []
                children[parent].append(unit_id)
                label = meta.hierarchy_labels.get(levels[depth], "")
                unit: dict[str, Any] = {"@id": unit_id, "@type": "ElectionResults.ReportingUnit"}
                if label in unit_types and LEVEL_OF_UNIT_TYPE.get(label) == levels[depth]:
                    unit["Type"] = label
                else:
                    unit["OtherType"] = levels[depth]
                    unit["Type"] = "other"
                unit["Name"] = _international(str(value), language)
                level_units.append(unit)
            parent = unit_id
        parent_of_station.append(parent)
    for station_id, parent in zip(station_ids, parent_of_station, strict=True):
        children[parent].append(station_id)

    root: dict[str, Any] = {
        "@id": root_id,
        "@type": "ElectionResults.ReportingUnit",
        "Name": _international(meta.country or meta.id, language),
        "Type": "country",
    }
    if re.fullmatch(r"[A-Za-z]{2}", meta.country):
        root["ExternalIdentifier"] = [
            {
                "@type": "ElectionResults.ExternalIdentifier",
                "Type": "ocd-id",
                "Value": f"ocd-division/country:{meta.country.lower()}",
            }
        ]
    gp_units = [root, *level_units]
    for unit in gp_units:
        if children[unit["@id"]]:
            unit["ComposingGpUnitIds"] = children[unit["@id"]]

    # --- stations ---------------------------------------------------------------------------------
    flag_text = frame.select(
        pl.concat_str(
            [pl.when(pl.col(f)).then(pl.lit(f)).otherwise(None) for f in FLAG_COLUMNS],
            separator=",",
            ignore_nulls=True,
        )
    ).to_series()
    station_rows = frame.select(
        "station_id", "station_name", "station_kind", "registered", "ballots_cast"
    ).rows()
    for unit_id, (station_id, name, kind, registered, cast), flags in zip(
        station_ids, station_rows, flag_text, strict=True
    ):
        extensions = [_external(EXT_STATION_ID, station_id)]
        if kind != "ordinary":
            extensions.append(_external(EXT_STATION_KIND, kind))
        if flags:
            extensions.append(_external(EXT_FLAGS, flags))
        station: dict[str, Any] = {
            "@id": unit_id,
            "@type": "ElectionResults.ReportingUnit",
            "ExternalIdentifier": extensions,
            "Name": _international(name or station_id, language),
            "Type": "precinct",
        }
        if cast is not None:
            station["VotersParticipated"] = cast
        if registered is not None:
            station["VotersRegistered"] = registered
        gp_units.append(station)

    # --- parties, candidates, the contest ------------------------------------------------------
    party_ids: dict[str, str] = {}
    for candidate in meta.candidates:
        if candidate.party and candidate.party not in party_ids:
            party_ids[candidate.party] = f"party-{len(party_ids) + 1}"
    parties = [
        {"@id": pid, "@type": "ElectionResults.Party", "Name": _international(name, language)}
        for name, pid in party_ids.items()
    ]
    candidates = []
    selections = []
    for index, candidate in enumerate(meta.candidates, start=1):
        entry: dict[str, Any] = {
            "@id": f"cand-{index}",
            "@type": "ElectionResults.Candidate",
            "BallotName": _international(candidate.name, language),
        }
        if candidate.column != candidate.name:
            entry["ExternalIdentifier"] = [_external(EXT_COLUMN, candidate.column)]
        if candidate.party:
            entry["PartyId"] = party_ids[candidate.party]
        candidates.append(entry)
        counts = frame[candidate.column].to_list()
        selections.append(
            {
                "@id": f"sel-{index}",
                "@type": "ElectionResults.CandidateSelection",
                "CandidateIds": [f"cand-{index}"],
                "SequenceOrder": index,
                "VoteCounts": [
                    {
                        "@type": "ElectionResults.VoteCounts",
                        "Count": count,
                        "GpUnitId": unit_id,
                        "Type": "total",
                    }
                    for unit_id, count in zip(station_ids, counts, strict=True)
                    if count is not None
                ],
            }
        )
    # Valid votes not given to a listed candidate travel as write-ins, so valid reads back.
    columns = [c.column for c in meta.candidates]
    other = frame.select(
        pl.col("invalid"),
        (
            pl.col("valid") - pl.sum_horizontal([pl.col(c) for c in columns])
            if columns
            else pl.col("valid")
        ).alias("rest"),
        pl.all_horizontal([pl.col(c).is_not_null() for c in columns] or [pl.lit(True)]).alias(
            "complete"
        ),
    ).rows()
    other_counts = []
    for unit_id, (invalid, rest, complete) in zip(station_ids, other, strict=True):
        entry = {"@type": "ElectionResults.OtherCounts", "GpUnitId": unit_id}
        if invalid is not None:
            entry["Overvotes"] = invalid
        if complete and rest is not None and rest > 0:
            entry["WriteIns"] = rest
        if len(entry) > 2:
            other_counts.append(entry)
    name = contest_name or meta.contest or meta.id
    contest: dict[str, Any] = {
        "@id": "contest-1",
        "@type": "ElectionResults.CandidateContest",
        "ContestSelection": selections,
        "ElectionDistrictId": root_id,
        "Name": name,
        "VotesAllowed": 1,
    }
    if other_counts:
        contest["OtherCounts"] = other_counts

    election_type = _election_type(meta, definitions["ElectionResults.ElectionType"]["enum"])
    election_extensions = [
        _external(EXT_ELECTION_ID, meta.id),
        _external(EXT_KIND, meta.kind),
    ]
    for other_type, value in (
        (EXT_COUNTRY, meta.country),
        (EXT_ROUND, "" if meta.round is None else str(meta.round)),
        (EXT_SOURCE, meta.source),
        (EXT_LICENSE, meta.license),
    ):
        if value:
            election_extensions.append(_external(other_type, value))
    election_obj: dict[str, Any] = {
        "@type": "ElectionResults.Election",
        "Candidate": candidates,
        "Contest": [contest],
        "ElectionScopeId": root_id,
        "EndDate": meta.date,
        "ExternalIdentifier": election_extensions,
        "Name": _international(name, language),
        "StartDate": meta.date,
        "Type": election_type,
    }
    notes = f"Written by pollwatch from election {meta.id!r}; source: {meta.source or 'unknown'}"
    if meta.license:
        notes += f"; license: {meta.license}"
    report: dict[str, Any] = {
        "@type": REPORT_TYPE,
        "Format": "precinct-level",
        "GeneratedDate": generated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Issuer": "pollwatch",
        "IssuerAbbreviation": "pollwatch",
        "Notes": notes,
        "SequenceEnd": 1,
        "SequenceStart": 1,
        "Status": "unofficial-complete",
        "VendorApplicationId": _vendor_application(),
        "GpUnit": gp_units,
        "Party": parties,
        "Election": [election_obj],
    }
    return report


def _vendor_application() -> str:
    from pollwatch import __version__

    return f"pollwatch {__version__}"


def export_nist(
    election: Election,
    path: Path | str,
    *,
    contest_name: str | None = None,
    language: str = "und",
    generated: datetime | None = None,
) -> None:
    """Write ``election`` as an NIST SP 1500-100 v2 JSON report (``precinct-level``).

    The report is validated against the schema before anything is written, then written to a
    temporary file next to ``path`` and moved into place, so ``path`` is never half-written.
    ``contest_name`` names the contest (default ``meta.contest``); ``language`` is the language
    code of the names (default ``und``, undetermined); ``generated`` the report's
    ``GeneratedDate`` (default now). Reading the file back with this importer gives the same
    stations, hierarchy, counts, flags and candidates; ``valid`` reads back as the candidates'
    votes plus the rest written as write-ins, and protocol lines NIST has no field for
    (ballots received, issued, cancelled, ...) are not written.
    """
    target = Path(path)
    with _gc_paused():
        report = _build_report(
            election,
            contest_name=contest_name,
            language=language,
            generated=generated or datetime.now(UTC),
        )
        validate_report(report, target)
        text = json.dumps(report, ensure_ascii=False, separators=(",", ":")) + "\n"
        del report
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise PollwatchError(
            f"cannot write {target}: {exc.strerror or exc}",
            hint="check the folder exists and is writable",
        ) from None


# --------------------------------------------------------------------------------------------
# The importer
# --------------------------------------------------------------------------------------------


def _peek(path: Path) -> bytes:
    with path.open("rb") as handle:
        head = handle.read(_PEEK_BYTES)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as handle:
            return handle.read(_PEEK_BYTES)
    if head[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".json")]
            if len(names) != 1:
                return b""
            with archive.open(names[0]) as member:
                return member.read(_PEEK_BYTES)
    return head


@IMPORTERS.register(NAME)
class NistImporter(Importer):
    """NIST SP 1500-100 v2 JSON election results reports (one contest at a time)."""

    name = NAME
    description = "NIST SP 1500-100 v2 election results report (JSON; .json, .json.gz, .zip)"

    def detect(self, path: Path) -> float:
        """0.95 when the file starts like a NIST ElectionReport, 0.6 for other NIST JSON."""
        try:
            text = _peek(Path(path)).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
        except Exception:  # detect never raises: an unreadable file is simply not ours
            return 0.0
        if not text.startswith("{"):
            return 0.0
        if REPORT_TYPE in text:
            return 0.95
        if '"@type"' in text and '"ElectionResults.' in text:
            return 0.6
        return 0.0

    def read(
        self,
        path: Path,
        *,
        mapping: Path | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Election:
        """Read one contest of a report; options: see :data:`OPTIONS`."""
        given = check_options(options, OPTIONS, NAME)
        path = Path(path)
        try:
            with _gc_paused():
                document, where = _load_json(path)
                validate_report(document, where)
                return _read_report(document, path, where, given)
        except RecursionError:
            raise FormatError(
                "units nest too deeply", path=path, hint="check ComposingGpUnitIds"
            ) from None

    def write(
        self,
        election: Election,
        path: Path | str,
        *,
        contest_name: str | None = None,
    ) -> None:
        """Export ``election`` as a NIST report (see :func:`export_nist`)."""
        export_nist(election, path, contest_name=contest_name)

    def example(self, folder: Path) -> Example:
        """A three-station synthetic election written with :func:`export_nist`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        election = _example_election()
        path = folder / "nist-example.json"
        export_nist(
            election,
            path,
            language="en",
            generated=datetime(2024, 3, 18, 12, 0, tzinfo=UTC),
        )
        return Example(path=path, totals=election.totals(), stations=len(election))


def _example_election() -> Election:
    candidates = (
        Candidate("Anna Alpha", "Anna Alpha", "Blue Party"),
        Candidate("Boris Beta", "Boris Beta", "Green Party"),
        Candidate("Clara Gamma", "Clara Gamma", None),
    )
    frame = pl.DataFrame(
        {
            "station_id": ["1001", "1002", "2001"],
            "region": ["North", "North", "South"],
            "district": ["North-1", "North-1", "South-1"],
            "station_name": ["School 1", "Library", "Hospital 3"],
            "station_kind": ["ordinary", "ordinary", "hospital"],
            "registered": [1200, 950, 310],
            "ballots_cast": [700, 540, 290],
            "valid": [690, 532, 288],
            "invalid": [10, 8, 2],
            "Anna Alpha": [400, 300, 250],
            "Boris Beta": [250, 200, 30],
            "Clara Gamma": [40, 32, 8],
        }
    )
    meta = ElectionMeta(
        id="example-2024-president",
        country="XX",
        date="2024-03-17",
        kind="presidential",
        contest="President",
        source="synthetic example written by pollwatch",
        license="CC0-1.0",
        importer=NAME,
        candidates=candidates,
        hierarchy_labels={"region": "state", "district": "county"},
    )
    return make_election(meta, frame)
