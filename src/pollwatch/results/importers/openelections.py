"""Importer for OpenElections precinct CSV files (US, one file per state and election).

Source: https://openelections.net, repositories ``openelections/openelections-data-XX`` (converted
official results; the project states the data "is and will remain free to anyone", no licence
file). Format (https://github.com/openelections/docs): CSV with the columns ``county, precinct,
office, district, party, candidate, votes`` and optional vote-mode columns (``election_day,
early_voting, absentee, provisional, mail`` ...), one row per precinct x office x candidate. File
names follow ``YYYYMMDD__ss__election__[county__]level.csv`` (``20161108__pa__general__
precinct.csv``): the date, state and election type are read from the name when it matches.

Turnout is carried by *pseudo-offices*, rows whose ``office`` is ``Registered Voters`` or
``Ballots Cast`` (also ``Ballots Cast - Total``, ``Total Ballots Cast`` ...); ``Ballots Cast -
Blank``, ``Over Votes`` / ``Under Votes`` offices, ``Straight Party`` and ``Turnout`` rows are
recognised and are not contests. Inside a contest, candidates named ``Over Votes`` / ``Under
Votes`` (``Blank``) are not candidates, nor are total lines (``Total``, ``Total Votes``, ``Cast
Votes``); ``Registered Voters``, ``Ballots Cast`` and ``Times Cast`` candidates are the precinct's
counts (read where it has no pseudo-office row of its own).

National (multi-state) files have a ``state`` column: it becomes ``region`` (names mapped to
two-letter codes, :data:`STATE_CODES`), the station id carries the year and the state, and option
``state`` keeps one state.

Definitions (also recorded in ``meta.definitions``):

* the contest is option ``office`` (default ``President``; with several districts or, in a
  primary, several parties, options ``district`` / ``party`` choose one, ``all`` keeps them);
* a row's votes are ``votes``; where ``votes`` is empty and mode columns exist, the sum of the
  modes; a precinct's count for a candidate is the sum of its rows (fusion party lines of one
  candidate add up); null where the precinct has no row for the candidate;
* ``station_id = "county|precinct"`` (with a state column ``"YEAR|STATE|county|precinct"``);
  ``region`` = the state (state column, file name or option ``state``), ``district`` = county,
  ``station_name`` = precinct;
* candidates: one column per person, the spellings of the contest consolidated by name key
  (case, punctuation, middle initials, suffixes, "Last, First", running mates, diminutives;
  :mod:`pollwatch.results.importers._names`), every merge listed with its votes in
  ``candidate_merges``, unconfident fragments in ``candidate_warnings``, overridable with
  options ``merge``, ``separate`` and ``candidate_map``; ``Write-ins`` lines form one column;
* ``valid`` = the sum of the candidate columns; ``invalid`` = the contest's over votes + under
  votes where the file reports them for the precinct, else null; ``ballots_cast`` = the precinct's
  ``Ballots Cast`` row(s), ``registered`` = its ``Registered Voters`` row(s) (summed over party
  lines where a file splits them by party), null without such rows;
* rows with an empty precinct (or a precinct named ``Total``) are county totals: left out where
  the county also reports precincts (counted in the definitions), kept as a county-level
  pseudo-station where it does not; catch-all pseudo-precincts ("Absentee", "Provisional" ...)
  are flagged ``is_pseudo_station`` with ``station_kind = "catch_all"``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import polars as pl

from pollwatch.errors import ColumnError, FormatError, InputError, PollwatchError
from pollwatch.results.importers._long import (
    _OTHER_IDENTITY,
    _WRITE_IN_IDENTITY,
    abroad_precinct_expr,
    normalise_office,
    normalise_text_expr,
    office_kind,
    office_slug,
    option_all,
    option_slugs,
    pseudo_precinct_expr,
    require_single,
    row_role_expr,
    select_district_and_party,
    select_rows,
    tally,
    value_listing,
)
from pollwatch.results.importers._names import NameConsolidation, consolidate_names, plain_identity
from pollwatch.results.importers._tables import (
    parse_counts,
    peek_header,
    read_csv_table,
    read_source_bytes,
    sha256_file,
)
from pollwatch.results.importers.base import IMPORTERS, Example, Importer
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election

__all__ = ["MODE_COLUMNS", "OpenElectionsImporter", "parse_file_name"]

SOURCE = "OpenElections (https://openelections.net), converted official precinct results"
LICENSE = (
    "free to use (OpenElections: 'the data is and will remain free to anyone'); no licence file"
)

OPTIONS: dict[str, str] = {
    "office": "contest to import (default 'President' when the file has it)",
    "district": "district of the office (House seats), or 'all'",
    "party": "party to keep (primaries), or 'all'",
    "state": (
        "two-letter state code, when the file name does not give it; with a 'state' column, "
        "the state to keep"
    ),
    "merge": "force merges of candidate spellings: 'SPELLING=CANDIDATE;SPELLING=CANDIDATE'",
    "separate": "spellings that keep their own column: 'SPELLING;SPELLING', or 'all' (no merging)",
    "candidate_map": "CSV file with columns spelling,candidate (empty candidate: kept apart)",
    "date": "election date YYYY-MM-DD, when the file name does not give it",
    "na_values": "comma-separated markers of redacted counts, read as missing (e.g. '*,X')",
    "encoding": "text encoding (default utf-8)",
}

REQUIRED = ("county", "precinct", "office", "candidate")
#: Vote-mode columns of the OpenElections format (and variants seen in state repositories).
MODE_COLUMNS: tuple[str, ...] = (
    "election_day",
    "early_voting",
    "early",
    "absentee",
    "provisional",
    "mail",
    "mail_in",
    "vote_by_mail",
    "advance_in_person",
    "in_person",
    "one_stop",
    "polling",
    "polling_place",
    "vote_center",
    "uocava",
    "overseas",
    "military",
)
# Pseudo-office kinds, matched on the normalised office (lower case, no dots, spaces collapsed).
PSEUDO_OFFICES: tuple[tuple[str, str], ...] = (
    ("registered", r"^(total )?registered voters?( - total| total)?$|^(voter )?registration$"),
    ("ballots_cast", r"^(total )?ballots cast( - total| total)?$|^total ballots$|^ballots$"),
    ("blank", r"^ballots cast ?-? ?blank$|^blank ballots$"),
    ("over_under_office", r"^(over|under) ?-?votes?$|^(overvotes|undervotes)$"),
    ("straight_party", r"^straight[- ](party|ticket)"),
    ("turnout", r"turnout"),
)
CANONICAL = {"registered": "registered voters", "ballots_cast": "ballots cast"}
# Precinct values that mark a total row rather than a precinct.
_TOTAL_PRECINCT = r"(?i)^\s*((county|grand) )?totals?\s*$"
_ELECTION_WORDS = {
    "general",
    "primary",
    "special",
    "runoff",
    "recount",
    "caucus",
    "municipal",
    "presidential",
    "democratic",
    "republican",
    "primary_runoff",
    "general_runoff",
}
_LEVELS = {
    "precinct",
    "precincts",
    "county",
    "state",
    "ward",
    "district",
    "municipality",
    "town",
    "township",
    "parish",
}


#: Two-letter codes of the states, DC and the territories, by their names (national files spell
#: the ``state`` column either way).
STATE_CODES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "district of columbia": "DC",
    "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL",
    "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY",
    "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
    "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI",
    "wyoming": "WY", "american samoa": "AS", "guam": "GU", "northern mariana islands": "MP",
    "puerto rico": "PR", "us virgin islands": "VI", "virgin islands": "VI",
}  # fmt: skip
_CODES = frozenset(STATE_CODES.values())
# Candidate names inside a contest that are counts of the precinct, not candidates (normalised:
# lower case, dots dropped). "Times Cast" is the ES&S / Electionware count of ballots on which
# the contest appeared; "Cast Votes" the sum of the votes for its candidates (a total line).
_CONTEST_REGISTERED = r"^(total )?registered voters?( - total| total)?$|^(voter )?registration$"
_CONTEST_BALLOTS = r"^(total )?ballots cast( - total| total)?$|^times cast$|^total ballots$"
_CONTEST_TOTAL = r"^(cast votes|votes cast|total cast|total votes cast|contest total)$"
_EXEMPT_IDENTITY = re.compile(f"{_WRITE_IN_IDENTITY}|{_OTHER_IDENTITY}")


def state_code(value: str | None) -> str | None:
    """A state's two-letter code from its code or name (``"Pennsylvania"`` -> ``"PA"``);
    the trimmed value in upper case when it is neither, ``None`` when empty."""
    if value is None or not value.strip():
        return None
    text = re.sub(r"\s+", " ", value.replace(".", "").strip()).lower()
    if text.upper() in _CODES:
        return text.upper()
    return STATE_CODES.get(text, STATE_CODES.get(text.removeprefix("state of "), value.strip()))


def parse_file_name(name: str) -> dict[str, str]:
    """``date`` (ISO), ``state``, ``election``, ``county`` and ``level`` from an OpenElections
    file name such as ``20161108__pa__general__precinct.csv``; empty dict if it does not match."""
    stem = name.lower()
    for suffix in (".gz", ".zip", ".csv", ".txt"):
        stem = stem.removesuffix(suffix)
    match = re.fullmatch(r"(\d{8})__([a-z]{2})__(.+)", stem)
    if not match:
        return {}
    raw_date, state, rest = match.groups()
    try:
        date = dt.datetime.strptime(raw_date, "%Y%m%d").date().isoformat()
    except ValueError:
        date = ""
    parts = [p for p in rest.split("__") if p]
    level = parts.pop() if len(parts) > 1 and parts[-1] in _LEVELS else ""
    election = [p for p in parts if p in _ELECTION_WORDS] or parts[:1]
    county = [p for p in parts if p not in election]
    return {
        "date": date,
        "state": state.upper(),
        "election": "_".join(election),
        "county": " ".join(county).replace("_", " "),
        "level": level,
    }


def _pseudo_office_expr(office: pl.Expr) -> pl.Expr:
    """The pseudo-office kind of each row, null for a real contest."""
    text = normalise_text_expr(office.cast(pl.String).str.replace_all(".", "", literal=True))
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for kind, pattern in reversed(PSEUDO_OFFICES):
        expr = pl.when(text.str.contains(pattern)).then(pl.lit(kind)).otherwise(expr)
    return expr


def _split_list(value: str | None) -> list[str]:
    """``"A;B"`` -> ``["A", "B"]`` (empty parts dropped)."""
    return [part.strip() for part in (value or "").split(";") if part.strip()]


def _parse_merge(value: str | None) -> dict[str, str]:
    """Option merge ``"SPELLING=CANDIDATE;..."`` as a dict, or an error naming the bad part."""
    pairs: dict[str, str] = {}
    for part in _split_list(value):
        spelling, sign, target = part.partition("=")
        if not sign or not spelling.strip() or not target.strip():
            raise PollwatchError(
                f"option merge part {part!r} is not SPELLING=CANDIDATE",
                hint="merge='Biden/Harris=Joseph R. Biden;Joe Biden=Joseph R. Biden'",
            )
        pairs[spelling.strip()] = target.strip()
    return pairs


def _read_candidate_map(value: str | None) -> tuple[dict[str, str], list[str]]:
    """The merges and separations of a ``candidate_map`` CSV (columns ``spelling,candidate``)."""
    if not value:
        return {}, []
    path = Path(value).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(
            f"cannot read the candidate map ({exc.strerror or exc})",
            path=str(path),
            hint="option candidate_map=FILE names a CSV with columns spelling,candidate",
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if not {"spelling", "candidate"} <= set(fields):
        raise ColumnError(
            "the candidate map needs the columns spelling and candidate",
            path=str(path),
            hint=f"columns present: {', '.join(fields) or 'none'}",
        )
    merge: dict[str, str] = {}
    separate: list[str] = []
    for record in reader:
        row = {str(k).strip().lower(): (v or "").strip() for k, v in record.items() if k}
        if not row.get("spelling"):
            continue
        if row.get("candidate"):
            merge[row["spelling"]] = row["candidate"]
        else:
            separate.append(row["spelling"])
    return merge, separate


@IMPORTERS.register("openelections")
class OpenElectionsImporter(Importer):
    """OpenElections precinct CSV (county, precinct, office, district, party, candidate, votes)."""

    name: ClassVar[str] = "openelections"
    description: ClassVar[str] = (
        "OpenElections precinct CSV (US; county, precinct, office, district, party, candidate, "
        "votes and optional vote-mode columns)"
    )
    known_options: ClassVar[Mapping[str, str]] = OPTIONS

    def detect(self, path: Path) -> float:
        """High confidence for county, precinct, office, candidate, votes without MEDSL columns."""
        header = [f.lower() for f in peek_header(Path(path)) or []]
        if not header:
            return 0.0
        names = set(header)
        if names & {"state_postal", "state_po", "candidate_normalized"}:
            return 0.0
        has_votes = "votes" in names or bool(names & set(MODE_COLUMNS))
        if set(REQUIRED) <= names and has_votes:
            named = bool(parse_file_name(Path(path).name))
            return 0.95 if named or {"district", "party"} <= names else 0.9
        if {"precinct", "office", "candidate"} <= names and has_votes:
            return 0.4
        return 0.0

    def read_file(self, path: Path, options: dict[str, str], mapping: Path | None) -> Election:
        """Read an OpenElections precinct file; see the module docstring for the definitions."""
        named = parse_file_name(path.name)
        data, where = read_source_bytes(path)
        frame = read_csv_table(data, where=where, encoding=options.get("encoding", "utf-8"))
        lowered = [c.strip().lower() for c in frame.columns]
        if len(set(lowered)) == len(lowered):
            frame = frame.rename(dict(zip(frame.columns, lowered, strict=True)))
        modes = [c for c in MODE_COLUMNS if c in frame.columns]
        missing = [c for c in REQUIRED if c not in frame.columns]
        if "votes" not in frame.columns and not modes:
            missing.append("votes")
        if missing:
            raise ColumnError(
                f"missing column(s) {missing} of an OpenElections file",
                path=where,
                hint=f"columns present: {', '.join(frame.columns[:12])}"
                f"{'...' if frame.width > 12 else ''}; the format has county, precinct, office, "
                "district, party, candidate, votes",
            )
        if frame.height == 0:
            raise FormatError("no data rows", path=where, hint="the file has only a header")
        frame = frame.with_row_index("__row", offset=2).with_columns(pl.col("__row").cast(pl.Int64))
        date = (options.get("date") or named.get("date", "")).strip()
        if date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            raise PollwatchError(f"option date={date!r} is not YYYY-MM-DD", hint="date=2016-11-08")
        national = "state" in frame.columns
        if national:
            frame = self._state_rows(frame, options, where)
        count_columns = (["votes"] if "votes" in frame.columns else []) + modes
        na_values = [v.strip() for v in options.get("na_values", "").split(",") if v.strip()]
        frame = parse_counts(
            frame, count_columns, where=where, na_values=na_values, line_column="__row"
        )
        votes = pl.col("votes") if "votes" in frame.columns else pl.lit(None, dtype=pl.Int64)
        if modes:
            # An empty 'votes' cell is the sum of the modes (null if they are all empty too).
            mode_sum = pl.when(pl.any_horizontal([pl.col(m).is_not_null() for m in modes])).then(
                pl.sum_horizontal([pl.col(m) for m in modes])
            )
            votes = pl.coalesce(votes, mode_sum)
        frame = frame.with_columns(
            votes.cast(pl.Int64).alias("__votes"),
            _pseudo_office_expr(pl.col("office")).alias("__pseudo"),
            pl.concat_str(
                [
                    *([pl.lit(date[:4])] if national and date else []),
                    *([pl.col("__state").fill_null("")] if national else []),
                    pl.col("county").cast(pl.String).fill_null(""),
                    pl.col("precinct").cast(pl.String).fill_null(""),
                ],
                separator="|",
            ).alias("station_id"),
            (
                pl.when(normalise_text_expr(pl.col("county")).is_not_null()).then(
                    pl.concat_str(
                        [pl.col("__state").fill_null(""), normalise_text_expr(pl.col("county"))],
                        separator="|",
                    )
                )
                if national
                else normalise_text_expr(pl.col("county"))
            ).alias("__county_key"),
            (pl.col("precinct").cast(pl.String).str.strip_chars().fill_null("") == "").alias(
                "__blank_precinct"
            ),
        ).with_columns(
            (
                pl.col("__blank_precinct")
                | pl.col("precinct").cast(pl.String).str.contains(_TOTAL_PRECINCT).fill_null(False)
            ).alias("__aggregate")
        )

        contest, office, filters = self._contest(frame, options, named, where)
        contest, dropped = self._drop_totals(contest)
        contest, names = self._candidate_identities(contest, options, where)
        rows = contest.select(
            "station_id",
            pl.col("__row").alias("_row"),
            "identity",
            pl.coalesce(
                pl.col("__display"), pl.col("candidate").cast(pl.String).str.strip_chars()
            ).alias("name"),
            (
                pl.col("party").cast(pl.String).str.strip_chars()
                if "party" in contest.columns
                else pl.lit(None, dtype=pl.String)
            ).alias("party"),
            pl.lit(False).alias("writein"),
            pl.col("__role").alias("role"),
            pl.col("__votes").alias("votes"),
            pl.col("county").cast(pl.String).str.strip_chars().alias("district"),
            pl.col("precinct").cast(pl.String).alias("station_name"),
            pl.col("__aggregate").alias("_aggregate"),
            *([pl.col("__state").alias("region")] if national else []),
        )
        result = tally(
            rows,
            where=where,
            attributes=[
                "district",
                "station_name",
                "_aggregate",
                *(["region"] if national else []),
            ],
            votes_column="votes",
        )
        stations = result.stations
        turnout, turnout_notes = self._turnout(frame, options, stations)
        stations = stations.join(turnout, on="station_id", how="left")
        stations, contest_notes = self._contest_counts(rows, stations)
        state = (options.get("state") or named.get("state") or "").strip().upper()
        if state and not re.fullmatch(r"[A-Z]{2}", state):
            raise PollwatchError(
                f"option state={options.get('state')!r} is not a two-letter code", hint="state=PA"
            )
        if state == "US" and not options.get("state"):
            state = ""  # a national file named 'YYYYMMDD__us__...'
        if not national:
            stations = stations.with_columns(pl.lit(state or None, dtype=pl.String).alias("region"))
        pseudo = pseudo_precinct_expr("station_name") | pl.col("_aggregate")
        stations = stations.with_columns(
            pl.when(pl.col("station_name").cast(pl.String).str.strip_chars() == "")
            .then(None)
            .otherwise(pl.col("station_name"))
            .alias("station_name"),
            pseudo.alias("is_pseudo_station"),
            (pseudo & abroad_precinct_expr("station_name")).alias("is_abroad"),
            pl.when(pseudo)
            .then(pl.lit("catch_all"))
            .otherwise(pl.lit("ordinary"))
            .alias("station_kind"),
        ).drop("_aggregate")
        definitions = {
            "contest": "; ".join(filters),
            "votes": (
                "a row's votes are the 'votes' column; where it is empty, the sum of the "
                f"vote-mode columns ({', '.join(modes) or 'none in this file'}); a precinct's "
                "count for a candidate is the sum of its rows (fusion party lines add up); "
                "null where the precinct has no row for the candidate"
            ),
            "station_id": (
                "'YEAR|STATE|county|precinct' (a file with a state column; the year of the "
                "election date)"
                if national
                else "'county|precinct' of the source"
            ),
            "region": (
                "the state column as a two-letter code (names such as 'Pennsylvania' mapped)"
                if national
                else "the state of the file name (or option state)"
            ),
            "candidates": (
                "one column per candidate name (trimmed, case and spacing ignored; "
                "separate=all), shown by its most frequent spelling with its most frequent "
                "party; 'Write-ins' lines form one column"
                if option_all(options.get("separate"))
                else "one column per candidate: spellings consolidated by name key (case, "
                "punctuation, one-letter middle initials, suffixes Jr./Sr./II/III/IV, 'Last, "
                "First', running mates 'A / B' and common diminutives ignored; a surname alone "
                "joins the one candidate with that surname; listed in candidate_merges), "
                "overridable with options merge, separate and candidate_map; shown by a full, "
                "mixed-case spelling without running mate (most votes first) with the most "
                "frequent party; 'Write-ins' lines form one column"
            ),
            "valid": "sum of the candidate columns",
            "invalid": (
                "over votes + under votes (blank) of the contest where the precinct has such "
                "rows, else null"
            ),
            "ballots_cast": (
                "the precinct's 'Ballots Cast' pseudo-office row(s) (all offices together), "
                "null without one"
            ),
            "registered": "the precinct's 'Registered Voters' pseudo-office row(s), null without",
            "is_pseudo_station": (
                "catch-all pseudo-precincts by name ('Absentee', 'Provisional', 'Early Voting' "
                "...; pollwatch.results.importers._long.PSEUDO_PRECINCT_PATTERNS) and county "
                f"totals kept as the only data of their county: "
                f"{int(stations['is_pseudo_station'].sum())} stations, kind 'catch_all'"
            ),
            "county_totals": (
                f"{dropped} row(s) with an empty precinct (or precinct 'Total') in counties that "
                "also report precincts are county totals, left out so that votes are not "
                "counted twice"
            ),
            **turnout_notes,
            **contest_notes,
            **dict(result.definitions),
            **self._merge_notes(names, rows, result.stations, result.candidates),
        }
        meta = self._meta(
            path, named, options, state, office, result.candidates, definitions, national=national
        )
        return make_election(meta, stations, where=where)

    @staticmethod
    def _state_rows(frame: pl.DataFrame, given: Mapping[str, str], where: str) -> pl.DataFrame:
        """``__state`` (two-letter code) from the state column; only option state's rows."""
        values = frame["state"].cast(pl.String).unique().to_list()
        codes = {v: state_code(v) for v in values if v is not None}
        frame = frame.with_columns(
            pl.col("state")
            .cast(pl.String)
            .replace_strict(codes, default=None, return_dtype=pl.String)
            .alias("__state")
        )
        wanted = given.get("state")
        if wanted is None:
            return frame
        code = wanted.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", code):
            raise PollwatchError(
                f"option state={wanted!r} is not a two-letter code", hint="state=PA"
            )
        kept = frame.filter(pl.col("__state") == code)
        if kept.height == 0:
            raise InputError(
                f"no rows with state {wanted!r}",
                path=where,
                column="state",
                hint=f"states in the file (rows): {value_listing(frame, '__state')}; pass "
                "--option state=CODE",
            )
        return kept

    @staticmethod
    def _candidate_identities(
        contest: pl.DataFrame, given: Mapping[str, str], where: str
    ) -> tuple[pl.DataFrame, NameConsolidation]:
        """``identity`` (consolidated candidate key) and ``__role`` of every contest row."""
        bare = normalise_text_expr(
            pl.col("candidate").cast(pl.String).str.replace_all(".", "", literal=True)
        )
        lookup = (
            contest.group_by("candidate")
            .agg(pl.col("__votes").sum().alias("votes"))
            .with_columns(
                pl.when(bare.str.contains(_CONTEST_REGISTERED))
                .then(pl.lit("registered"))
                .when(bare.str.contains(_CONTEST_BALLOTS))
                .then(pl.lit("ballots_cast"))
                .when(bare.str.contains(_CONTEST_TOTAL))
                .then(pl.lit("total"))
                .otherwise(row_role_expr(pl.col("candidate")))
                .alias("__role"),
                normalise_text_expr(pl.col("candidate")).alias("__plain"),
            )
        )
        persons = lookup.filter((pl.col("__role") == "candidate") & pl.col("__plain").is_not_null())
        spellings = [(str(n), int(v or 0)) for n, v in persons.select("candidate", "votes").rows()]
        known = {plain_identity(n) for n, _ in spellings}
        separate_option = given.get("separate")
        keep_apart = option_all(separate_option)
        separate = [] if keep_apart else _split_list(separate_option)
        merge = _parse_merge(given.get("merge"))
        for spelling in [*merge, *separate]:
            if plain_identity(spelling) not in known:
                raise InputError(
                    f"no candidate spelled {spelling!r} in the contest",
                    path=where,
                    column="candidate",
                    hint=f"spellings (rows): {value_listing(persons, 'candidate')}; fix option "
                    "merge or separate",
                )
        mapped_merge, mapped_separate = _read_candidate_map(given.get("candidate_map"))
        names = consolidate_names(
            spellings,
            merge={**mapped_merge, **merge},
            separate=[*mapped_separate, *separate],
            keep_apart=keep_apart,
            exempt=_EXEMPT_IDENTITY,
        )
        identity = pl.col("__plain").replace(dict(names.identity))
        lookup = lookup.select(
            "candidate",
            pl.when(pl.col("__role") == "candidate")
            .then(identity)
            .otherwise(pl.col("__plain"))
            .alias("identity"),
            "__role",
        ).with_columns(
            # Every spelling of a candidate shows as the group's chosen spelling.
            pl.when(pl.col("__role") == "candidate")
            .then(pl.col("identity").replace_strict(names.display, default=None))
            .alias("__display")
        )
        joined = contest.join(
            lookup, on="candidate", how="left", nulls_equal=True, maintain_order="left"
        )
        return joined, names

    @staticmethod
    def _contest_counts(
        rows: pl.DataFrame, stations: pl.DataFrame
    ) -> tuple[pl.DataFrame, dict[str, str]]:
        """``registered`` / ``ballots_cast`` from count rows inside the contest, where the
        precinct has no pseudo-office row of its own."""
        counts = rows.filter(pl.col("role").is_in(["registered", "ballots_cast"]))
        if counts.height == 0:
            return stations, {}
        sums = counts.group_by("station_id", "role").agg(
            pl.when(pl.col("votes").count() > 0).then(pl.col("votes").sum()).alias("value")
        )
        filled: dict[str, int] = {}
        for role in ("registered", "ballots_cast"):
            part = sums.filter(pl.col("role") == role).select(
                "station_id", pl.col("value").cast(pl.Int64).alias(f"__contest_{role}")
            )
            stations = stations.join(part, on="station_id", how="left")
            filled[role] = stations.filter(
                pl.col(role).is_null() & pl.col(f"__contest_{role}").is_not_null()
            ).height
            stations = stations.with_columns(
                pl.coalesce(role, f"__contest_{role}").alias(role)
            ).drop(f"__contest_{role}")
        listing = value_listing(counts, "name")
        return stations, {
            "contest_counts": (
                f"{counts.height} row(s) of the contest whose candidate is a count ({listing}) "
                "are not candidates: 'Registered Voters' rows are read as registered, 'Ballots "
                "Cast' / 'Times Cast' rows as ballots_cast, where the precinct has no "
                f"pseudo-office row of its own ({filled['registered']} and "
                f"{filled['ballots_cast']} precinct(s) filled)"
            )
        }

    @staticmethod
    def _merge_notes(
        names: NameConsolidation,
        rows: pl.DataFrame,
        stations: pl.DataFrame,
        candidates: tuple[Candidate, ...],
    ) -> dict[str, str]:
        """The merges (readable and as JSON) and the warnings, for ``meta.definitions``."""
        columns = {c.column for c in candidates}
        display = {
            str(identity): str(name)
            for identity, name in rows.filter(pl.col("role") == "candidate")
            .group_by("identity", "name")
            .len()
            .sort(["identity", "len", "name"], descending=[False, True, False])
            .group_by("identity", maintain_order=True)
            .agg(pl.col("name").first())
            .drop_nulls()
            .rows()
            if name in columns
        }
        merged = names.merged
        notes = {
            "candidate_merges": (
                f"{sum(len(g.spellings) for g in merged)} spellings merged into {len(merged)} "
                "candidate(s):\n" + names.report(display)
                if merged
                else "no spellings merged (each candidate has one spelling)"
            ),
            "candidate_merges_table": names.to_json(display),
        }
        if names.warnings:
            notes["candidate_warnings"] = "\n".join(names.warnings)
        return notes

    def _contest(
        self,
        frame: pl.DataFrame,
        given: Mapping[str, str],
        named: Mapping[str, str],
        where: str,
    ) -> tuple[pl.DataFrame, str, list[str]]:
        """The rows of the chosen contest, the office as spelled in the file, the filters."""
        offices = frame.filter(
            pl.col("__pseudo").is_null() | ~pl.col("__pseudo").is_in(["registered", "ballots_cast"])
        )
        pseudo_listing = [
            "registered voters",
            "ballots cast",
            "ballots cast - blank",
            "ballots cast - total",
            "over votes",
            "under votes",
        ]
        wanted = given.get("office")
        if wanted is None:
            president = offices.filter(normalise_office(pl.col("office")) == "president")
            if president.height == 0:
                raise InputError(
                    "no 'President' rows and no office chosen",
                    path=where,
                    column="office",
                    hint="offices in the file (rows): "
                    f"{value_listing(offices, 'office', pseudo_listing)}; pass --option "
                    "office=NAME",
                )
            contest = president
            wanted = "President"
        else:
            contest = select_rows(
                offices,
                "office",
                wanted,
                where=where,
                option="office",
                what="office",
                compare="office",
                exclude=pseudo_listing,
            )
        filters = [f"office = {wanted!r}"]
        contest = select_district_and_party(
            contest,
            given,
            office=wanted,
            district_column="district" if "district" in contest.columns else None,
            party_column="party" if "party" in contest.columns else None,
            where=where,
            filters=filters,
        )
        if (
            given.get("party") is None
            and "primary" in named.get("election", "")
            and "party" in contest.columns
        ):
            # A primary holds one contest per party: adding up rivals of different ballots in
            # one precinct would be meaningless.
            require_single(contest, "party", where=where, option="party", what="party")
        spelled = (
            contest.select(pl.col("office").cast(pl.String).str.strip_chars().alias("o"))
            .group_by("o")
            .len()
            .sort(["len", "o"], descending=[True, False])
        )
        office = str(spelled["o"][0]) if spelled.height else wanted
        return contest, office, filters

    @staticmethod
    def _drop_totals(contest: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        """Leave out county-total rows where the county also reports precincts."""
        county = pl.col("__county_key")
        reported = (
            contest.filter(~pl.col("__aggregate"))
            .select(county.alias("c"))
            .drop_nulls()
            .unique()["c"]
        )
        # A total without a county (the state's) repeats whatever else the file holds.
        has_counties = contest.select(county.is_not_null().any()).item()
        drop = pl.col("__aggregate") & (
            county.is_in(reported.to_list()).fill_null(False)
            | (county.is_null() & pl.lit(bool(has_counties)))
        )
        kept = contest.filter(~drop)
        return kept, contest.height - kept.height

    @staticmethod
    def _turnout(
        frame: pl.DataFrame, given: Mapping[str, str], stations: pl.DataFrame
    ) -> tuple[pl.DataFrame, dict[str, str]]:
        """Per station: ``registered`` and ``ballots_cast`` from the pseudo-office rows."""
        notes: dict[str, str] = {}
        rows = frame.filter(pl.col("__pseudo").is_in(["registered", "ballots_cast"]))
        party = given.get("party")
        if party is not None and not option_all(party) and "party" in rows.columns:
            of_party = rows.filter(normalise_text_expr(pl.col("party")) == party.strip().lower())
            if of_party.height:
                rows = of_party
                notes["turnout_party"] = f"turnout rows of party {party!r} only"
        recognised = frame.filter(
            pl.col("__pseudo").is_in(["blank", "over_under_office", "straight_party", "turnout"])
        )
        if recognised.height:
            notes["pseudo_offices"] = (
                f"{recognised.height} row(s) of pseudo-offices not used (blank ballots, over/"
                "under votes not tied to a contest, straight-party lines, turnout percentages): "
                + value_listing(recognised, "office")
            )
        empty = pl.DataFrame(
            {"station_id": [], "registered": [], "ballots_cast": []},
            schema={"station_id": pl.String, "registered": pl.Int64, "ballots_cast": pl.Int64},
        )
        if rows.height == 0:
            return empty, notes
        label = normalise_text_expr(
            pl.col("office").cast(pl.String).str.replace_all(".", "", literal=True)
        )
        per_label = (
            rows.with_columns(
                pl.when(label == pl.col("__pseudo").replace_strict(CANONICAL, default=""))
                .then(0)
                .otherwise(1)
                .alias("__priority"),
                label.alias("__label"),
            )
            .group_by("station_id", "__pseudo", "__priority", "__label")
            .agg(
                pl.when(pl.col("__votes").is_not_null().any())
                .then(pl.col("__votes").sum())
                .otherwise(None)
                .alias("value")
            )
            # Where a precinct has two spellings ("Ballots Cast", "Ballots Cast - Total"), the
            # canonical one wins; rows of one spelling (party lines) add up.
            .sort(["station_id", "__pseudo", "__priority", "__label"])
            .group_by("station_id", "__pseudo", maintain_order=True)
            .agg(pl.col("value").first())
        )
        registered = per_label.filter(pl.col("__pseudo") == "registered").select(
            "station_id", pl.col("value").cast(pl.Int64).alias("registered")
        )
        ballots = per_label.filter(pl.col("__pseudo") == "ballots_cast").select(
            "station_id", pl.col("value").cast(pl.Int64).alias("ballots_cast")
        )
        result = (
            stations.select("station_id")
            .join(registered, on="station_id", how="left")
            .join(ballots, on="station_id", how="left")
        )
        outside = (
            rows.select("station_id")
            .unique()
            .join(stations.select("station_id"), on="station_id", how="anti")
        )
        if outside.height:
            notes["turnout_outside_contest"] = (
                f"{outside.height} precinct(s) have turnout rows but no row of the contest "
                "(outside the district, or county totals): not stations of this contest"
            )
        return result, notes

    def _meta(
        self,
        path: Path,
        named: Mapping[str, str],
        given: Mapping[str, str],
        state: str,
        office: str,
        candidates: tuple[Candidate, ...],
        definitions: Mapping[str, str],
        *,
        national: bool = False,
    ) -> ElectionMeta:
        date = given.get("date") or named.get("date", "")
        if date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.strip()):
            raise PollwatchError(f"option date={date!r} is not YYYY-MM-DD", hint="date=2016-11-08")
        election = named.get("election", "")
        parts = ["us"]
        if state:
            parts.append(state.lower())
        if date:
            parts.append(date[:4])
        if election and election != "general":
            parts.append(election.replace("_", "-"))
        parts.append(office_slug(office))
        parts.extend(option_slugs(given))
        parts.append("openelections")
        election_id = "-".join(p for p in "-".join(parts).split("-") if p)
        district, party = given.get("district"), given.get("party")
        contest = office
        if district and not option_all(district):
            contest += f", district {district.strip()}"
        if party and not option_all(party):
            contest += f" ({party.strip()})"
        if election:
            contest += f" ({election.replace('_', ' ')})"
        return ElectionMeta(
            id=election_id,
            country="US",
            date=date.strip(),
            kind=office_kind(office),
            contest=contest,
            source=SOURCE,
            license=LICENSE,
            importer=self.name,
            candidates=candidates,
            hierarchy_labels={
                "region": (
                    "state (column)"
                    if national
                    else "state (file name)"
                    if named.get("state")
                    else "state (option)"
                ),
                "district": "county",
                "station_name": "precinct",
            },
            definitions=definitions,
            source_files=(path.name,),
            source_sha256=sha256_file(path),
        )

    def example(self, folder: Path) -> Example:
        """A small file with vote modes, turnout pseudo-offices, two offices and a county total."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "20161108__vt__general__precinct.csv"
        path.write_text(
            "county,precinct,office,district,party,candidate,votes,election_day,absentee\n"
            "Addison,Bristol,Registered Voters,,,,3100,,\n"
            "Addison,Bristol,Ballots Cast,,,,2010,1800,210\n"
            "Addison,Bristol,President,,DEM,Hillary Clinton,1200,1080,120\n"
            "Addison,Bristol,President,,REP,Donald J. Trump,650,590,60\n"
            "Addison,Bristol,President,,LIB,Gary Johnson,,70,15\n"
            "Addison,Bristol,President,,,Write-ins,40,35,5\n"
            "Addison,Bristol,President,,,Over Votes,5,5,0\n"
            "Addison,Bristol,President,,,Under Votes,30,20,10\n"
            "Addison,Bristol,U.S. Senate,,DEM,Patrick Leahy,1400,1250,150\n"
            "Addison,Bristol,U.S. Senate,,REP,Scott Milne,560,500,60\n"
            'Addison,"Middlebury, Ward 1",Registered Voters,,,,2500,,\n'
            'Addison,"Middlebury, Ward 1",Ballots Cast,,,,1700,,\n'
            'Addison,"Middlebury, Ward 1",President,,DEM,Hillary Clinton,1100,,\n'
            'Addison,"Middlebury, Ward 1",President,,REP,Donald J. Trump,480,,\n'
            'Addison,"Middlebury, Ward 1",President,,LIB,Gary Johnson,60,,\n'
            'Addison,"Middlebury, Ward 1",President,,,Write-ins,25,,\n'
            'Addison,"Middlebury, Ward 1",U.S. Senate,,DEM,Patrick Leahy,1250,,\n'
            "Addison,,President,,DEM,Hillary Clinton,2300,,\n"
            "Addison,,President,,REP,Donald J. Trump,1130,,\n"
            "Bennington,Absentee,President,,DEM,Hillary Clinton,300,,300\n"
            "Bennington,Absentee,President,,REP,DONALD J. TRUMP,210,,210\n"
            "Bennington,Absentee,President,,GRN,Jill Stein,12,,12\n",
            encoding="utf-8",
        )
        return Example(
            path=path,
            totals={
                "Hillary Clinton": 1200 + 1100 + 300,
                "Donald J. Trump": 650 + 480 + 210,
                "Gary Johnson": 85 + 60,
                "Jill Stein": 12,
                "Write-ins": 40 + 25,
            },
            stations=3,
        )
