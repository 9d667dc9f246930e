"""Writing an election as an NIST SP 1500-100 v2 JSON report (:func:`export_nist`).

The report is one schema-valid ``precinct-level`` ``ElectionReport``: a ``ReportingUnit`` (type
``precinct``) per station with ``VotersRegistered`` and ``VotersParticipated``, parent units for
the hierarchy columns, the candidates and parties, and one ``CandidateContest`` with a ``total``
count per candidate and station. What NIST has no field for (station id, station kind, flags,
candidate column, election id) travels in ``ExternalIdentifier`` entries of type ``other``
whose ``OtherType`` starts with ``pollwatch-`` (:mod:`.schema`), so that a report written by
pollwatch reads back to the same election (:mod:`.reader`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.fileio import atomic_write
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
    REPORT_TYPE,
    gc_paused,
    load_schema,
    valid_date,
    validate_report,
)
from pollwatch.results.model import FLAG_COLUMNS, HIERARCHY_COLUMNS, Election, ElectionMeta

__all__ = ["export_nist"]

_UNSAFE_ID_CHARS = r"[^A-Za-z0-9._-]"

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
    if not (DATE_PATTERN.fullmatch(meta.date) and valid_date(meta.date)):
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
    with gc_paused():
        report = _build_report(
            election,
            contest_name=contest_name,
            language=language,
            generated=generated or datetime.now(UTC),
        )
        validate_report(report, target)
        text = json.dumps(report, ensure_ascii=False, separators=(",", ":")) + "\n"
        del report
    try:
        with atomic_write(target, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise PollwatchError(
            f"cannot write {target}: {exc.strerror or exc}",
            hint="check the folder exists and is writable",
        ) from None
