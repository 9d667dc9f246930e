"""Importer for MEDSL precinct returns (MIT Election Data and Science Lab), long format.

Source: https://github.com/MEDSL/official-precinct-returns and the Harvard Dataverse releases
(2016 president: doi:10.7910/DVN/LYWX3D), MIT licence. One row per precinct x candidate x vote
mode, CSV (plain, gzip or a zip holding one CSV), UTF-8 by default:

* 2016-style columns: ``state_postal, county_fips, county_name, jurisdiction, precinct,
  candidate, candidate_normalized, party, writein, mode, votes``; the full files add ``year,
  state, office, district, stage, special, candidate_last ...`` (extra columns are ignored);
* 2018/2020-style columns are read too: ``state_po``, ``jurisdiction_name``, ``party_detailed`` /
  ``party_simplified``, ``date`` (no ``candidate_normalized``: the trimmed, case-folded
  ``candidate`` is the identity then).

Rows are filtered to one contest when the columns exist: ``office`` (option ``office``, default
``US President``; ``"US PRESIDENT"``, ``"President"`` match too), ``stage`` (option ``stage``,
default ``gen``), ``special`` (option ``special``, default ``false``), ``district`` and
``party`` (options, for House seats and primaries).

Definitions (also recorded in ``meta.definitions``):

* one station per (state, county, jurisdiction, precinct); ``station_id =
  "STATE|county_fips (else county_name)|jurisdiction|precinct"``, unique by construction
  (checked); ``region`` = state, ``district`` = county name (else FIPS), ``municipality`` =
  jurisdiction, ``station_name`` = precinct;
* a precinct's count for a candidate is the **sum of its rows over all vote modes** (``mode``:
  total, election day, absentee, early, provisional, mail ...);
* candidates: one identity per ``candidate_normalized`` (else the normalised ``candidate``),
  shown by its most frequent spelling, with its most frequent party; identities with at least
  ``min_share`` (default 0.001 = 0.1 %) of all votes and at least ``min_votes`` (default 0)
  get a column; the rest are summed into ``Other`` (ballot-listed) and ``Write-ins`` (write-in
  rows and unnamed write-in lines: null, "[Write-in]", "Other Write-Ins", "Scattering" ...), so
  the candidate columns add up to every vote in the file;
* ``valid`` = the sum of the candidate columns; ``invalid`` = over + under votes where a file has
  such rows (2020 files), else null; ``registered`` and ``ballots_cast`` are null: MEDSL has no
  registration or ballot counts, so **turnout is undefined for this source**;
* county-level catch-all pseudo-precincts (Maryland's per-county "Total", "Absentee",
  "Provisional", "[Jurisdiction-wide]" ... see :data:`~._long.PSEUDO_PRECINCT_PATTERNS`) are
  kept and flagged ``is_pseudo_station`` with ``station_kind = "catch_all"``; overseas catch-alls
  are ``is_abroad`` too;
* negative net counts (Michigan's signed "Statistical Adjustments", a flagged pseudo-precinct)
  are kept, so candidate totals equal the file's; ``negative=clip`` sets them to 0 and reports
  the votes removed, ``negative=error`` refuses them.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import polars as pl

from pollwatch.errors import ColumnError, FormatError, InputError, PollwatchError
from pollwatch.results.importers._long import (
    abroad_precinct_expr,
    normalise_text_expr,
    office_kind,
    office_slug,
    option_all,
    option_slugs,
    parse_float_option,
    parse_signed_counts,
    pseudo_precinct_expr,
    require_single,
    row_role_expr,
    select_district_and_party,
    select_rows,
    tally,
    truthy_expr,
    us_general_election_date,
    with_lookup,
    year_from_name,
)
from pollwatch.results.importers._tables import (
    peek_header,
    read_csv_table,
    read_source_bytes,
    sha256_file,
)
from pollwatch.results.importers.base import IMPORTERS, Example, Importer
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election

__all__ = ["MedslImporter"]

SOURCE = (
    "MIT Election Data and Science Lab, precinct-level returns "
    "(https://github.com/MEDSL/official-precinct-returns; Harvard Dataverse)"
)
LICENSE = "MIT"

OPTIONS: dict[str, str] = {
    "office": "office to import (default 'US President')",
    "stage": "election stage: gen or pri (default gen; only where a 'stage' column exists)",
    "special": "true, false or all: special elections (default false; where 'special' exists)",
    "district": "district of the office (House seats), or 'all'",
    "party": "party to keep (primaries), or 'all'",
    "year": "election year, when neither a 'year' column nor the file name gives it",
    "min_share": "share of all votes a candidate needs for an own column (default 0.001)",
    "min_votes": "votes a candidate needs for an own column (default 0)",
    "negative": "keep (default; signed counts allowed on pseudo-precincts only), clip or error",
    "encoding": "text encoding (default utf-8; some original state files are latin-1)",
}

# Our role -> the source's column names, first present wins (2016 names first).
ALIASES: dict[str, tuple[str, ...]] = {
    "state": ("state_postal", "state_po", "state"),
    "county_fips": ("county_fips",),
    "county_name": ("county_name",),
    "jurisdiction": ("jurisdiction", "jurisdiction_name"),
    "precinct": ("precinct",),
    "candidate": ("candidate",),
    "candidate_normalized": ("candidate_normalized",),
    "party": ("party", "party_detailed", "party_simplified"),
    "writein": ("writein",),
    "mode": ("mode",),
    "votes": ("votes",),
    "office": ("office",),
    "stage": ("stage",),
    "special": ("special",),
    "district": ("district",),
    "year": ("year",),
    "date": ("date",),
}

# state, county fips, county, jurisdiction, precinct
_WARD_1 = ("VT", "50007", "Chittenden County", "Burlington", "Ward 1")
_WARD_2 = ("VT", "50007", "Chittenden County", "Burlington", "Ward 2")
_DISTRICT_1 = ("MD", "24001", "Allegany County", "Allegany County", "Election District 1")
_COUNTY_TOTAL = ("MD", "24001", "Allegany County", "Allegany County", "Total")
# candidate, candidate_normalized, party, writein
_CLINTON = ("Hillary Clinton", "clinton", "democratic", "FALSE")
_TRUMP = ("Donald Trump", "trump", "republican", "FALSE")
_SANDERS = ("Bernie Sanders", "sanders", "", "TRUE")

_EXAMPLE_ROWS: tuple[tuple[str, ...], ...] = (
    # place, candidate, mode, votes
    (*_WARD_1, *_CLINTON, "election day", "610"),
    (*_WARD_1, *_CLINTON, "absentee", "95"),
    (*_WARD_1, *_TRUMP, "election day", "180"),
    (*_WARD_1, *_TRUMP, "absentee", "20"),
    (*_WARD_1, *_SANDERS, "election day", "44"),
    (*_WARD_1, "[Write-in]", "in", "", "TRUE", "election day", "3"),
    (*_WARD_2, *_CLINTON, "total", "540"),
    (*_WARD_2, "Donald J. Trump", "trump", "republican", "FALSE", "total", "260"),
    (*_WARD_2, *_SANDERS, "total", "31"),
    (*_WARD_2, "Rocky De La Fuente", "fuente", "american delta", "FALSE", "total", "1"),
    (*_DISTRICT_1, *_CLINTON, "election day", "210"),
    (*_DISTRICT_1, *_TRUMP, "election day", "655"),
    (*_COUNTY_TOTAL, *_CLINTON, "early", "300"),
    (*_COUNTY_TOTAL, *_CLINTON, "absentee", "80"),
    (*_COUNTY_TOTAL, *_TRUMP, "early", "900"),
    (*_COUNTY_TOTAL, *_TRUMP, "absentee", "150"),
    (*_COUNTY_TOTAL, "", "", "", "TRUE", "early", "12"),
)


_ATTRIBUTE_ROLES = ("state", "county_name", "county_fips", "jurisdiction", "precinct")


def _clean_text(expr: pl.Expr) -> pl.Expr:
    """Trimmed text; empty cells and MEDSL's ``NA`` become null."""
    value = expr.cast(pl.String).str.strip_chars()
    return pl.when((value == "") | (value == "NA")).then(None).otherwise(value)


def _resolve(columns: list[str]) -> dict[str, str]:
    """Our role -> the file's column for each role the file has."""
    present = set(columns)
    found: dict[str, str] = {}
    for role, names in ALIASES.items():
        for name in names:
            if name in present:
                found[role] = name
                break
    return found


@IMPORTERS.register("medsl")
class MedslImporter(Importer):
    """MEDSL precinct returns (long format: precinct x candidate x vote mode)."""

    name: ClassVar[str] = "medsl"
    description: ClassVar[str] = (
        "MIT Election Data and Science Lab precinct returns (US; long CSV, one row per "
        "precinct x candidate x vote mode)"
    )
    known_options: ClassVar[Mapping[str, str]] = OPTIONS

    def detect(self, path: Path) -> float:
        """High confidence for a header with state_postal/state_po, precinct, candidate, votes
        and a MEDSL marker (candidate_normalized, mode or office)."""
        header = [f.lower() for f in peek_header(Path(path)) or []]
        if not header:
            return 0.0
        names = set(header)
        has_state = bool(names & {"state_postal", "state_po"})
        core = {"precinct", "votes"} <= names and bool(
            names & {"candidate", "candidate_normalized"}
        )
        marker = bool(names & {"candidate_normalized", "mode", "office"})
        if has_state and core and marker:
            return 0.95
        if has_state and core:
            return 0.6
        if core and "mode" in names and "county" not in names:
            return 0.3
        return 0.0

    def read_file(self, path: Path, options: dict[str, str], mapping: Path | None) -> Election:
        """Read a MEDSL precinct file; see the module docstring for every definition."""
        encoding = options.get("encoding", "utf-8")
        min_share = parse_float_option(options, "min_share", 0.001)
        min_votes = parse_float_option(options, "min_votes", 0.0)
        negative = options.get("negative", "keep").strip().lower()
        if negative not in {"keep", "clip", "error"}:
            raise PollwatchError(
                f"option negative={options.get('negative')!r} is not 'keep', 'clip' or 'error'",
                hint="negative=keep (default), clip or error",
            )
        data, where = read_source_bytes(path)
        frame = read_csv_table(data, where=where, encoding=encoding)
        del data
        lowered = [c.strip().lower() for c in frame.columns]
        if len(set(lowered)) == len(lowered):
            frame = frame.rename(dict(zip(frame.columns, lowered, strict=True)))
        cols = _resolve(frame.columns)
        missing = [r for r in ("state", "precinct", "votes") if r not in cols]
        if "candidate" not in cols and "candidate_normalized" not in cols:
            missing.append("candidate")
        if missing:
            raise ColumnError(
                f"missing column(s) {missing} of a MEDSL precinct file",
                path=where,
                hint=f"columns present: {', '.join(frame.columns[:14])}"
                f"{'...' if frame.width > 14 else ''}; MEDSL files have state_postal (or "
                "state_po), precinct, candidate, votes",
            )
        if frame.height == 0:
            raise FormatError("no data rows", path=where, hint="the file has only a header")
        frame = frame.with_row_index("__row", offset=2).with_columns(pl.col("__row").cast(pl.Int64))
        # Parsed on the whole file so that a bad cell is reported with its own line number.
        # A bad cell sets its row aside (pollwatch.results.quarantine), or raises when strict.
        frame = parse_signed_counts(
            frame, cols["votes"], where=where, line_column="__row", alias="__votes"
        )

        filters: list[str] = []
        office = options.get("office", "US President")
        if "office" in cols:
            frame = select_rows(
                frame,
                cols["office"],
                office,
                where=where,
                option="office",
                what="office",
                compare="office",
            )
            filters.append(f"office = {office!r}")
        elif "office" in options:
            filters.append(f"no office column: every row is taken as {office!r}")
        if "stage" in cols and not option_all(options.get("stage")):
            stage = options.get("stage", "gen")
            frame = select_rows(
                frame, cols["stage"], stage, where=where, option="stage", what="stage"
            )
            filters.append(f"stage = {stage!r}")
        if "special" in cols and not option_all(options.get("special")):
            special = options.get("special", "false").strip().lower() in {"true", "t", "1", "yes"}
            frame = frame.filter(truthy_expr(pl.col(cols["special"])) == special)
            if frame.height == 0:
                raise InputError(
                    f"no rows with special = {special}",
                    path=where,
                    column=cols["special"],
                    hint="pass --option special=true, false or all",
                )
            filters.append(f"special = {special}")
        frame = select_district_and_party(
            frame,
            options,
            office=office,
            district_column=cols.get("district"),
            party_column=cols.get("party"),
            where=where,
            filters=filters,
        )
        stage_value = self._single_value(frame, cols.get("stage"))
        primary = stage_value is not None and stage_value.startswith("pri")
        if primary and options.get("party") is None and "party" in cols:
            # A primary holds one contest per party: mixing them would add up rivals of
            # different ballots in one precinct.
            require_single(frame, cols["party"], where=where, option="party", what="party")

        rows = self._long_rows(frame, cols)
        result = tally(
            rows,
            where=where,
            attributes=[f"_{r}" for r in _ATTRIBUTE_ROLES],
            min_share=min_share,
            min_votes=min_votes,
            negative=negative,
            votes_column=cols["votes"],
        )
        stations = result.stations.with_columns(
            _clean_text(pl.col("_state")).alias("region"),
            pl.coalesce(
                _clean_text(pl.col("_county_name")), _clean_text(pl.col("_county_fips"))
            ).alias("district"),
            _clean_text(pl.col("_jurisdiction")).alias("municipality"),
            pl.col("_precinct").alias("station_name"),
        ).drop([f"_{r}" for r in _ATTRIBUTE_ROLES])
        if stations["station_id"].is_duplicated().any():
            dup = stations.filter(pl.col("station_id").is_duplicated())["station_id"][0]
            raise InputError(
                f"two precincts share the station id {dup!r}",
                path=where,
                hint="precinct names containing '|' make ids ambiguous; report this file",
            )
        pseudo = pseudo_precinct_expr("station_name")
        stations = stations.with_columns(
            pseudo.alias("is_pseudo_station"),
            (pseudo & abroad_precinct_expr("station_name")).alias("is_abroad"),
            pl.when(pseudo)
            .then(pl.lit("catch_all"))
            .otherwise(pl.lit("ordinary"))
            .alias("station_kind"),
        )
        meta = self._meta(
            path,
            frame,
            cols,
            options,
            result.candidates,
            filters,
            stations,
            result.definitions,
            where,
        )
        return make_election(meta, stations, where=where)

    @staticmethod
    def _single_value(frame: pl.DataFrame, column: str | None) -> str | None:
        if column is None:
            return None
        values = frame.select(normalise_text_expr(pl.col(column)).alias("v"))["v"].drop_nulls()
        unique = values.unique().to_list()
        return str(unique[0]) if len(unique) == 1 else None

    @staticmethod
    def _long_rows(frame: pl.DataFrame, cols: Mapping[str, str]) -> pl.DataFrame:
        """The columns :func:`tally` wants, built from the source's columns."""

        def text(role: str) -> pl.Expr:
            if role not in cols:
                return pl.lit(None, dtype=pl.String)
            return _clean_text(pl.col(cols[role]))

        def raw(role: str) -> pl.Expr:
            # Identifier parts exactly as in the source (empty, not null, where absent), so that
            # ids stay stable; only an empty county FIPS falls back to the county name.
            if role not in cols:
                return pl.lit("")
            value = pl.col(cols[role]).cast(pl.String)
            return pl.when(value.str.strip_chars() == "").then(None).otherwise(value)

        identity_source = (
            text("candidate_normalized") if "candidate_normalized" in cols else text("candidate")
        )
        name = text("candidate") if "candidate" in cols else text("candidate_normalized")
        writein = truthy_expr(pl.col(cols["writein"])) if "writein" in cols else pl.lit(False)
        # Candidate fields repeat over a million rows with a few thousand distinct values: the
        # regex work is done once per distinct combination.
        keys = [
            cols[r] for r in ("candidate", "candidate_normalized", "party", "writein") if r in cols
        ]
        frame = with_lookup(
            frame,
            keys,
            [
                normalise_text_expr(identity_source).alias("identity"),
                name.alias("name"),
                text("party").alias("party_text"),
                writein.alias("writein_flag"),
                row_role_expr(name).alias("role"),
            ],
        )
        county_key = pl.coalesce(raw("county_fips"), raw("county_name"), pl.lit(""))
        return frame.select(
            pl.concat_str(
                [
                    raw("state").fill_null(""),
                    county_key,
                    raw("jurisdiction").fill_null(""),
                    raw("precinct").fill_null(""),
                ],
                separator="|",
            ).alias("station_id"),
            pl.col("__row").alias("_row"),
            pl.col("identity"),
            pl.col("name"),
            pl.col("party_text").alias("party"),
            pl.col("writein_flag").alias("writein"),
            pl.col("role"),
            pl.col("__votes").alias("votes"),
            # Raw here, cleaned once per station after the tally (118k rather than 1.3M values).
            *[
                (pl.col(cols[r]).cast(pl.String) if r in cols else pl.lit(None, pl.String)).alias(
                    f"_{r}"
                )
                for r in _ATTRIBUTE_ROLES
            ],
        )

    def _meta(
        self,
        path: Path,
        frame: pl.DataFrame,
        cols: Mapping[str, str],
        given: Mapping[str, str],
        candidates: tuple[Candidate, ...],
        filters: list[str],
        stations: pl.DataFrame,
        extra_definitions: Mapping[str, str],
        where: str,
    ) -> ElectionMeta:
        year = self._year(path, frame, cols, given, where)
        stage = self._single_value(frame, cols.get("stage")) or "gen"
        special = "special" in cols and bool(
            frame.select(truthy_expr(pl.col(cols["special"])).any()).item()
        )
        office = self._office_label(frame, cols, given)
        date = ""
        if "date" in cols:
            dates = frame[cols["date"]].drop_nulls().unique().to_list()
            if len(dates) == 1 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(dates[0]).strip()):
                date = str(dates[0]).strip()
        if not date and year is not None and stage.startswith("gen") and not special:
            date = us_general_election_date(year)
        states = sorted(s for s in stations["region"].drop_nulls().unique().to_list())
        parts = ["us"]
        if len(states) == 1:
            parts.append(states[0].lower())
        if year is not None:
            parts.append(str(year))
        parts.append(office_slug(office))
        parts.extend(option_slugs(given))
        if stage.startswith("pri"):
            parts.append("primary")
        if special:
            parts.append("special")
        parts.append("medsl")
        election_id = "-".join(p for p in ("-".join(parts).split("-")) if p)
        pseudo_count = int(stations["is_pseudo_station"].sum())
        abroad_count = int(stations["is_abroad"].sum())
        definitions = {
            "station_id": (
                "'STATE|county|jurisdiction|precinct' of the source (county = county_fips, else "
                "county_name); one station per such key"
            ),
            "votes": (
                "a precinct's count for a candidate is the sum of its rows over all vote modes "
                "(column 'mode': total, election day, absentee, early, provisional, mail ...) "
                "and repeated rows; null where the source has no row for the candidate"
            ),
            "candidates": (
                "one identity per candidate_normalized (else the case-folded candidate), shown by "
                "its most frequent spelling with its most frequent party; identities with at "
                f"least {given.get('min_share', '0.001')} of all votes and at least "
                f"{given.get('min_votes', '0')} votes get a column, the rest is summed into "
                "'Other' (ballot-listed) and 'Write-ins' (write-in rows and unnamed write-in "
                "lines: null, '[Write-in]', 'Other Write-Ins', 'Scattering' ...), so the "
                "candidate columns add up to every vote of the contest in the file"
            ),
            "valid": "sum of the candidate columns (all votes for the office in the precinct)",
            "invalid": (
                "over votes + under votes where the file has such rows, else null (MEDSL 2016 "
                "has none)"
            ),
            "registered": "null: MEDSL precinct returns have no registration counts",
            "ballots_cast": "null: MEDSL precinct returns have no ballot counts",
            "turnout_note": "turnout is undefined for this source (no registered, no ballots cast)",
            "is_pseudo_station": (
                "county-level catch-all pseudo-precincts, by name (Maryland 'Total', "
                "'Absentee', 'Provisional', 'Early Voting', '[Jurisdiction-wide]', 'Write-ins', "
                "'Statistical Adjustments', Oklahoma '..9999' ...; see "
                f"pollwatch.results.importers._long.PSEUDO_PRECINCT_PATTERNS): {pseudo_count} "
                "stations, kind 'catch_all', kept in the table"
            ),
            "is_abroad": f"catch-alls of overseas (UOCAVA) ballots: {abroad_count} stations",
            "filters": "; ".join(filters) if filters else "none (no office/stage columns)",
            **dict(extra_definitions),
        }
        labels = {
            "region": cols["state"],
            "district": cols.get("county_name", cols.get("county_fips", "county")),
            "municipality": cols.get("jurisdiction", "jurisdiction"),
            "station_name": cols["precinct"],
        }
        district = given.get("district")
        contest = office + (
            f", district {district}" if district and not option_all(district) else ""
        )
        if stage.startswith("pri"):
            contest += " (primary)"
        return ElectionMeta(
            id=election_id,
            country="US",
            date=date,
            kind=office_kind(office),
            contest=contest,
            source=SOURCE,
            license=LICENSE,
            importer=self.name,
            candidates=candidates,
            hierarchy_labels=labels,
            definitions=definitions,
            source_files=(path.name,),
            source_sha256=sha256_file(path),
        )

    @staticmethod
    def _office_label(
        frame: pl.DataFrame, cols: Mapping[str, str], given: Mapping[str, str]
    ) -> str:
        """The office as the file spells it most often (or the option, without a column)."""
        if "office" not in cols:
            return given.get("office", "US President")
        counts = (
            frame.select(pl.col(cols["office"]).cast(pl.String).str.strip_chars().alias("o"))
            .drop_nulls()
            .group_by("o")
            .len()
            .sort(["len", "o"], descending=[True, False])
        )
        return str(counts["o"][0]) if counts.height else given.get("office", "US President")

    @staticmethod
    def _year(
        path: Path,
        frame: pl.DataFrame,
        cols: Mapping[str, str],
        given: Mapping[str, str],
        where: str,
    ) -> int | None:
        """The option, else the single value of the 'year' column, else the file name's."""
        raw = given.get("year")
        if raw is not None:
            if not re.fullmatch(r"\s*\d{4}\s*", raw):
                raise PollwatchError(f"option year={raw!r} is not a year", hint="e.g. year=2016")
            return int(raw)
        if "year" in cols:
            years = frame[cols["year"]].cast(pl.String).str.strip_chars().drop_nulls().unique()
            valid = [int(y) for y in years.to_list() if re.fullmatch(r"\d{4}", y)]
            if len(set(valid)) == 1:
                return valid[0]
            if len(set(valid)) > 1:
                raise InputError(
                    f"the file mixes years {sorted(set(valid))}",
                    path=where,
                    column=cols["year"],
                    hint="split the file by year",
                )
        return year_from_name(path.name)

    def example(self, folder: Path) -> Example:
        """A small 2016-style MEDSL file: Vermont (modes, a write-in) and a Maryland 'Total'."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        header = (
            "state_postal,county_fips,county_name,jurisdiction,precinct,candidate,"
            "candidate_normalized,party,writein,mode,votes"
        )
        lines = [header, *(",".join(row) for row in _EXAMPLE_ROWS)]
        path = folder / "us_2016_president_precinct_medsl_example.csv.gz"
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
        return Example(
            path=path,
            totals={
                "Donald Trump": 180 + 20 + 260 + 655 + 900 + 150,
                "Hillary Clinton": 610 + 95 + 540 + 210 + 300 + 80,
                "Bernie Sanders": 44 + 31,
                "Other": 1,
                "Write-ins": 3 + 12,
            },
            stations=4,
        )
