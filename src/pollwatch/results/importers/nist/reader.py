"""Reading one contest of an NIST SP 1500-100 v2 JSON report into an election.

Import (one contest -> one :class:`~pollwatch.results.model.Election`, recorded in
``meta.definitions``): see the package docstring (:mod:`pollwatch.results.importers.nist`) for
what becomes a station and how its numbers are read.

Bad units: a unit whose counts cannot be read (a count that is negative, not whole, missing or
not a number; a count at a unit the report does not list; counts of a selection naming a
candidate the Election does not list; ``VotersRegistered``, ``VotersParticipated``,
``BallotsCast`` or other counts that are not counts) is set aside into the quarantine
(:mod:`pollwatch.results.quarantine`) with the JSON pointer of the offending object, its
reason and its counts, and the other units are read as if it were absent. Counts the schema
would refuse (a missing ``Count``, ``"130"``) are replaced before validation
(:func:`patch_counts`), so that they set one unit aside instead of failing the report. A strict
import (or ``Importer.read`` called directly) raises the one-line error of the first bad object
instead; a report that fails the schema in any other way fails as a whole.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pollwatch.errors import CountError, FormatError, InputError
from pollwatch.results.importers._tables import decode_text, read_source_bytes, sha256_file
from pollwatch.results.importers.base import slugify
from pollwatch.results.importers.nist.schema import (
    DATE_PATTERN,
    EXT_COLUMN,
    EXT_COUNTRY,
    EXT_ELECTION_ID,
    EXT_FLAGS,
    EXT_KIND,
    EXT_LICENSE,
    EXT_ROUND,
    EXT_SOURCE,
    EXT_STATION_ID,
    EXT_STATION_KIND,
    LEVEL_OF_UNIT_TYPE,
    MAX_COUNT,
    NAME,
    REPORT_TYPE,
    JsonPath,
    gc_paused,
    json_path,
    json_pointer,
    load_schema,
    short_repr,
    valid_date,
    validate_report,
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
from pollwatch.results.quarantine import (
    NEGATIVE_COUNT,
    NOT_WHOLE_NUMBER,
    QuarantinedRow,
    is_collecting,
    set_aside_objects,
)

__all__ = [
    "DEFAULT_STATION_TYPES",
    "MISSING_COUNT",
    "OPTIONS",
    "UNKNOWN_CANDIDATE",
    "UNKNOWN_UNIT",
    "patch_counts",
    "read_nist",
]

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


#: Reasons of the NIST reader beside the shared ones of :mod:`pollwatch.results.quarantine`.
MISSING_COUNT = "missing count"
UNKNOWN_UNIT = "unknown unit"
UNKNOWN_CANDIDATE = "unknown candidate"

_MISSING = object()
"""The value of a count member a report leaves out."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entries(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects of a JSON array with their indices (nothing when it is no array)."""
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, dict):
                yield index, entry


def _patch(
    found: dict[tuple[str | int, ...], tuple[str, Any]],
    parts: tuple[str | int, ...],
    entry: dict[str, Any],
    member: str,
    fits: Callable[[Any], bool],
    *,
    required: bool = False,
) -> None:
    value = entry.get(member, _MISSING)
    if (value is _MISSING and not required) or (value is not _MISSING and fits(value)):
        return
    found.setdefault(parts, (member, value))
    entry[member] = 0


def patch_counts(document: Any) -> dict[tuple[str | int, ...], tuple[str, Any]]:
    """Replace by 0 the counts the schema would refuse, so that one bad unit fails alone.

    A count that is missing (``VoteCounts.Count``) or not a number (``"130"``, ``true``), or
    a member the schema wants whole that is not (``VotersRegistered``, ``BallotsCast``,
    ``WriteIns``), would fail the whole report's validation. While a quarantine is collected
    the reader replaces each by 0 before validating, and sets its unit aside: it looks the
    object up in the returned ``{object path: (member, original value)}``. Every other schema
    failure still fails the report as a whole.
    """
    found: dict[tuple[str | int, ...], tuple[str, Any]] = {}
    if not isinstance(document, dict) or document.get("@type") != REPORT_TYPE:
        return found  # validation refuses it as a whole
    for gi, unit in _entries(document.get("GpUnit")):
        if unit.get("@type") == "ElectionResults.ReportingUnit":
            for member in ("VotersRegistered", "VotersParticipated"):
                _patch(found, ("GpUnit", gi), unit, member, _is_integer)
    for ei, election in _entries(document.get("Election")):
        for bi, row in _entries(election.get("BallotCounts")):
            _patch(found, ("Election", ei, "BallotCounts", bi), row, "BallotsCast", _is_integer)
        for ci, contest in _entries(election.get("Contest")):
            contest_parts: tuple[str | int, ...] = ("Election", ei, "Contest", ci)
            for si, selection in _entries(contest.get("ContestSelection")):
                for vi, row in _entries(selection.get("VoteCounts")):
                    parts: tuple[str | int, ...] = (
                        *contest_parts,
                        "ContestSelection",
                        si,
                        "VoteCounts",
                        vi,
                    )
                    _patch(found, parts, row, "Count", _is_number, required=True)
            for oi, row in _entries(contest.get("OtherCounts")):
                parts = (*contest_parts, "OtherCounts", oi)
                for member in ("Overvotes", "Undervotes"):
                    _patch(found, parts, row, member, _is_number)
                _patch(found, parts, row, "WriteIns", _is_integer)
    return found


@dataclass(frozen=True)
class _Problem:
    parts: JsonPath  # the offending object
    member: str
    reason: str
    detail: str
    value: Any


class _Screen:
    """Where the reader puts the units it cannot read: the quarantine, or a strict error.

    ``bad(key, ...)`` raises ``error`` when no quarantine is collected (a strict import stops
    at the first bad object, with the error pollwatch always gave); otherwise it remembers
    the first problem of each unit (``key`` is its ``@id``, unknown ids included) and the
    reading goes on. ``patched`` holds what :func:`patch_counts` replaced.
    """

    def __init__(
        self,
        where: str,
        collecting: bool,
        patched: Mapping[tuple[str | int, ...], tuple[str, Any]],
    ) -> None:
        self.where = where
        self.collecting = collecting
        self.patched = patched
        self.problems: dict[str, _Problem] = {}

    def bad(
        self, key: str, parts: JsonPath, member: str, reason: str, value: Any, error: InputError
    ) -> None:
        if not self.collecting:
            raise error
        detail = error.message.removeprefix(f"{self.where}: ")
        self.problems.setdefault(key, _Problem(list(parts), member, reason, detail, value))

    def patched_at(self, key: str, parts: JsonPath) -> None:
        """Set ``key`` aside if :func:`patch_counts` replaced a count of the object at ``parts``."""
        found = self.patched.get(tuple(parts))
        if found is None:
            return
        member, value = found
        reason = MISSING_COUNT if value is _MISSING else NOT_WHOLE_NUMBER
        shown = "missing" if value is _MISSING else f"{short_repr(value)} is not a whole number"
        self.bad(
            key,
            parts,
            member,
            reason,
            value,
            CountError(f"{json_path([*parts, member])}: {shown}", path=self.where),
        )


def _count_reason(value: Any, *, signed: bool = False) -> str | None:
    """Why ``value`` is not a count (NOT_WHOLE_NUMBER, NEGATIVE_COUNT), or None when it is one.

    ``signed`` admits negative counts: pollwatch writes adjustment rows of some sources (flagged
    ``is_pseudo_station``) with their signed numbers.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))
        or abs(value) > MAX_COUNT
    ):
        return NOT_WHOLE_NUMBER
    if value < 0 and not signed:
        return NEGATIVE_COUNT
    return None


def _count_error(value: Any, parts: JsonPath, where: str) -> CountError:
    """The one-line error of a bad count at ``parts``."""
    return CountError(
        f"{json_path(parts)}: {short_repr(value)} is not a whole count between 0 and 2^53",
        path=where,
        hint="counts must be whole non-negative numbers (negative only on units that "
        f"pollwatch flagged is_pseudo_station in {EXT_FLAGS})",
    )


def _checked_count(
    screen: _Screen, key: str, value: Any, parts: JsonPath, member: str, *, signed: bool
) -> int | None:
    """``value`` as a count, or None after setting ``key`` aside (strict: the error)."""
    reason = _count_reason(value, signed=signed)
    if reason is None:
        return int(value)
    error = _count_error(value, [*parts, member], screen.where)
    screen.bad(key, parts, member, reason, value, error)
    return None


@dataclass(frozen=True)
class _Selection:
    index: int  # in the contest's ContestSelection
    label: str
    column: str
    party: str | None


def _selections(
    report: Mapping[str, Any],
    election: Mapping[str, Any],
    choice: _ContestChoice,
    language: str | None,
    screen: _Screen,
) -> tuple[list[_Selection], dict[int, tuple[JsonPath, str, InputError]]]:
    """One candidate per contest selection: its label, vote column and party.

    A selection naming a candidate the Election does not list is not read: it comes back in
    the second value (``{selection index: (path of the reference, candidate id, error)}``),
    and the units it has counts at are set aside (a strict import raises the error here).
    """
    where = screen.where
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

    found: list[tuple[int, str, str | None, str | None, str]] = []
    unread: dict[int, tuple[JsonPath, str, InputError]] = {}
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
                    error = FormatError(
                        f"{json_path([*parts, 'CandidateIds', ci])}: candidate {candidate_id!r} "
                        "is not in the Election's Candidate list",
                        path=where,
                        hint="every CandidateId must name a Candidate @id",
                    )
                    if not screen.collecting:
                        raise error
                    unread[si] = ([*parts, "CandidateIds", ci], candidate_id, error)
                    break
                names.append(_text(candidate["BallotName"], language) or candidate_id)
                if "PartyId" in candidate:
                    party_ids.append(candidate["PartyId"])
                if len(selection.get("CandidateIds", ())) == 1:
                    column = _extensions(candidate).get(EXT_COLUMN)
            if si in unread:
                continue
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
        found.append((si, label or selection["@id"], column, party, selection["@id"]))
    if not found:
        raise FormatError(
            f"{json_path(choice.parts)}: the contest has no ContestSelection"
            + (" that names a known candidate" if unread else ""),
            path=where,
            hint="nothing to import; choose another contest with --option contest=ID",
        )
    labels = [label for _, label, *_ in found]
    result: list[_Selection] = []
    used: set[str] = set()
    for si, label, column, party, selection_id in found:
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
        result.append(_Selection(index=si, label=label, column=column, party=party))
    return result, unread


def _counts_frame(
    rows: Sequence[Mapping[str, Any]],
    count_key: str,
    key_values: Sequence[int],
    unit_codes: Mapping[str, int],
    base_parts: Callable[[int], JsonPath],
    screen: _Screen,
    signed: Callable[[int], bool],
) -> pl.DataFrame:
    """A frame (key, unit, type, round, count, suppressed) of VoteCounts or BallotCounts rows.

    ``count_key`` is the member holding the number; ``key_values`` the selection index of each
    row; ``unit_codes`` numbers the GpUnit ids (``unit`` is that number); ``base_parts(i)`` the
    JSON path of row ``i``; ``signed(unit)`` whether a unit may have negative counts. A row at
    an unknown unit, or whose number is not a count, sets its unit aside (``screen``; a strict
    import raises on the first); the frame leaves out rows at unknown units and holds null for
    bad numbers, so the units' place in the hierarchy is still known.
    """
    where = screen.where
    codes = [unit_codes.get(row["GpUnitId"], -1) for row in rows]
    if screen.patched:
        for index, row in enumerate(rows):
            screen.patched_at(row["GpUnitId"], base_parts(index))
    if -1 in codes:
        for index in (i for i, code in enumerate(codes) if code == -1):
            unit_id = rows[index]["GpUnitId"]
            screen.bad(
                unit_id,
                base_parts(index),
                "GpUnitId",
                UNKNOWN_UNIT,
                unit_id,
                FormatError(
                    f"{json_path([*base_parts(index), 'GpUnitId'])}: unit {unit_id!r} "
                    "is not in the report's GpUnit list",
                    path=where,
                    hint="every GpUnitId must name a GpUnit @id",
                ),
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
    negative = (series < 0).fill_null(False) & ~bad
    # every bad number before any negative one: a strict import names the first of those
    flagged = [(i, NOT_WHOLE_NUMBER) for i in bad.arg_true().to_list()]
    flagged += [(i, NEGATIVE_COUNT) for i in negative.arg_true().to_list()]
    for index, reason in flagged:
        if codes[index] == -1 or (reason == NEGATIVE_COUNT and signed(codes[index])):
            continue
        value = counts[index]
        screen.bad(
            rows[index]["GpUnitId"],
            base_parts(index),
            count_key,
            reason,
            value,
            _count_error(value, [*base_parts(index), count_key], where),
        )
    if flagged:
        series = series.zip_with(~bad, pl.Series("count", [None] * len(series), pl.Float64))
    frame = pl.DataFrame(
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
    return frame.filter(pl.col("unit") >= 0) if -1 in codes else frame


def read_report(
    report: Mapping[str, Any], path: Path, where: str, options: Mapping[str, str], screen: _Screen
) -> Election:
    """One contest of a validated report as an election; bad units go to ``screen``."""
    language = options.get("language") or None
    station_types = _parse_station_types(options.get("station_types"), where)
    choice = _choose_contest(report, options.get("contest"), where)
    election_obj = report["Election"][choice.election_index]
    contest = choice.contest
    selections, unread = _selections(report, election_obj, choice, language, screen)

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

    for index, key in enumerate(keys if unread else ()):
        if key in unread:  # counts of a selection naming an unknown candidate
            reference, candidate_id, error = unread[key]
            screen.bad(rows[index]["GpUnitId"], reference, "CandidateIds", UNKNOWN_CANDIDATE,
                       candidate_id, error)  # fmt: skip
    votes = _counts_frame(rows, "Count", keys, unit_index, vote_parts, screen, signed)
    if unread:
        votes = votes.filter(~pl.col("key").is_in(list(unread)))
    votes, first_round = _first_round(votes)

    # --- which units are stations (as if every unit were good) --------------------------------
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
            and u not in screen.problems
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
    ballot_rows = election_obj.get("BallotCounts", ())
    with_cast = [i for i, row in enumerate(ballot_rows) if "BallotsCast" in row]
    ballots = _counts_frame(
        [ballot_rows[i] for i in with_cast],
        "BallotsCast",
        [0] * len(with_cast),
        unit_index,
        lambda i: ["Election", choice.election_index, "BallotCounts", with_cast[i]],
        screen,
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
        other_parts: JsonPath = [*choice.parts, "OtherCounts", oi]
        if screen.patched:
            screen.patched_at(unit_id, other_parts)
        if unit_id not in chosen:
            continue
        for member in ("Overvotes", "Undervotes", "WriteIns"):
            value = other.get(member)
            if value is None:
                continue
            if not (isinstance(value, int) and 0 <= value <= MAX_COUNT):
                value = _checked_count(
                    screen, unit_id, value, other_parts, member, signed=signed(unit_index[unit_id])
                )
                if value is None:
                    continue
            totals = write_ins_by_unit if member == "WriteIns" else invalid_by_unit
            totals[unit_id] = totals.get(unit_id, 0) + value

    levels = _Hierarchy(units, parents, language)
    station_rows: list[tuple[Any, ...]] = []
    from_ballot_counts = 0
    for unit_id, index in zip(station_ids, station_codes, strict=True):
        unit = units[unit_id]
        unit_parts: JsonPath = ["GpUnit", index]
        if screen.patched:
            screen.patched_at(unit_id, unit_parts)
        extensions = _extensions(unit) if "ExternalIdentifier" in unit else {}
        registered = unit.get("VotersRegistered")
        if registered is not None and not (0 <= registered <= MAX_COUNT):
            registered = _checked_count(
                screen, unit_id, registered, unit_parts, "VotersRegistered", signed=signed(index)
            )
        if index in ballots_cast_by_unit:
            from_ballot_counts += 1
            cast = ballots_cast_by_unit[index]
        else:
            cast = unit.get("VotersParticipated")
            if cast is not None and not (0 <= cast <= MAX_COUNT):
                cast = _checked_count(
                    screen, unit_id, cast, unit_parts, "VotersParticipated", signed=signed(index)
                )
        if unit_id in screen.problems:
            continue
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
    if screen.collecting:
        counted_keys = set(keys)
        for si, (reference, candidate_id, error) in unread.items():
            if si not in counted_keys:  # no counts to set aside: the reference itself is kept
                screen.bad(json_pointer(reference), reference, "CandidateIds",
                           UNKNOWN_CANDIDATE, candidate_id, error)  # fmt: skip
        for patched_parts in screen.patched:
            if patched_parts[0] == "GpUnit":  # units that are no station: strict refuses them too
                screen.patched_at(unit_ids[int(patched_parts[1])], list(patched_parts))
        # units checked: those with counts of the contest (known or not) and the stations
        checked = votes["unit"].n_unique() + sum(u not in units for u in screen.problems)
        checked = max(checked, len(station_ids))
        _quarantine(screen, unit_index, rows, vote_parts, selections, checked)
    good_codes = [row[0] for row in station_rows]
    station_votes = _sum_by_type(votes.filter(pl.col("unit").is_in(good_codes)))
    columns = [s.column for s in selections]
    wide = (
        station_votes.with_columns(pl.col("key").cast(pl.String))
        .pivot(on="key", index="unit", values="count")
        .rename({str(s.index): s.column for s in selections}, strict=False)
    )
    for column in columns:
        if column not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Int64).alias(column))
    if "unit" not in wide.columns:  # no station left: an empty pivot has no index column
        wide = wide.with_columns(pl.lit(None, dtype=pl.Int64).alias("unit"))
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
            len(station_rows),
            sorted(aggregates),
            sorted(ignored_units),
            units,
            first_round,
            from_ballot_counts,
            int(contest.get("VotesAllowed", 1)),
        ),
    )
    return make_election(meta, frame, where=where)


def _quarantine(
    screen: _Screen,
    unit_index: Mapping[str, int],
    rows: Sequence[Mapping[str, Any]],
    vote_parts: Callable[[int], JsonPath],
    selections: Sequence[_Selection],
    checked: int,
) -> None:
    """Put each set-aside unit in the quarantine: pointer and reason of its first problem, and
    its cells (its @id, the offending member, then its vote counts of the contest); ``checked``
    units were looked at."""
    labels = {s.index: s.label for s in selections}
    counts_of: dict[str, list[str]] = {}
    for index, row in enumerate(rows if screen.problems else ()):
        unit_id = row["GpUnitId"]
        if unit_id in screen.problems:
            parts = vote_parts(index)
            _, value = screen.patched.get(tuple(parts), ("Count", row.get("Count")))
            label = labels.get(int(parts[-3]), f"selection {parts[-3]}")
            counts_of.setdefault(unit_id, []).append(f"{label} {row['Type']}={_shown(value)}")
    unknown = len(unit_index)
    ordered = sorted(
        screen.problems.items(), key=lambda item: unit_index.get(item[0], unknown)
    )  # document order of the units; unknown ids last, in the order they were met
    records = [
        QuarantinedRow(
            line=0,
            column=problem.member,
            reason=problem.reason,
            cells=(
                unit_id,
                f"{problem.member}={_shown(problem.value)}",
                *counts_of.get(unit_id, ()),
            ),
            detail=problem.detail,
            source=screen.where,
            pointer=json_pointer(problem.parts),
        )
        for unit_id, problem in ordered
    ]
    set_aside_objects(records, where=screen.where, checked=checked)


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def read_nist(path: Path, options: Mapping[str, str]) -> Election:
    """Read, validate and convert one contest of the report at ``path`` (see the package).

    While a quarantine is collected (:func:`~pollwatch.results.quarantine.collecting`, as
    :func:`~pollwatch.results.importers.import_file` does unless ``strict``), a unit whose
    counts cannot be read is set aside with the JSON pointer of the offending object; otherwise
    the first such object raises its one-line error.
    """
    try:
        with gc_paused():
            document, where = _load_json(path)
            collecting = is_collecting()
            patched = patch_counts(document) if collecting else {}
            validate_report(document, where)
            screen = _Screen(where, collecting, patched)
            return read_report(document, path, where, options, screen)
    except RecursionError:
        raise FormatError(
            "units nest too deeply", path=path, hint="check ComposingGpUnitIds"
        ) from None


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
    if not (DATE_PATTERN.fullmatch(start) and valid_date(start)):
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


_OCD_COUNTRY = re.compile(r"ocd-division/country:([a-z]{2})(?:/|$)")


def _country_of(unit: Mapping[str, Any]) -> str:
    for entry in unit.get("ExternalIdentifier", ()):
        if entry["Type"] == "ocd-id":
            match = _OCD_COUNTRY.match(str(entry["Value"]).strip().lower())
            if match:
                return match.group(1).upper()
    return ""
