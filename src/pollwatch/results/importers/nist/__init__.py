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

Bad units: while :func:`~pollwatch.results.importers.import_file` collects a quarantine (unless
``strict``), a unit whose counts cannot be read (negative, not whole, missing, at a unit or of
a candidate the report does not list) is set aside with the JSON pointer of the offending
object and the reason, and the other units are read; a strict import stops at the first such
object with its one-line error. A report that fails the schema otherwise fails as a whole.

The package: :mod:`.schema` (the schema, its fast validation and the format's names),
:mod:`.reader` (import) and :mod:`.writer` (export); the importer class lives here.
"""

from __future__ import annotations

import gzip
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pollwatch.results.importers.base import IMPORTERS, Example, Importer
from pollwatch.results.importers.nist.reader import OPTIONS, read_nist
from pollwatch.results.importers.nist.schema import (
    NAME,
    REPORT_TYPE,
    SCHEMA_FILE,
    load_schema,
    validate_report,
)
from pollwatch.results.importers.nist.writer import export_nist
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election

__all__ = [
    "SCHEMA_FILE",
    "NistImporter",
    "export_nist",
    "load_schema",
    "validate_report",
]

_PEEK_BYTES = 8192


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
    known_options = OPTIONS

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

    def read_file(self, path: Path, options: dict[str, str], mapping: Path | None) -> Election:
        """Read one contest of a report; options: see :data:`.reader.OPTIONS`."""
        return read_nist(path, options)

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
