"""Importer for Russian federal elections at polling-station (UIK) level: the Kobak/Shpilkin tables.

Source: the CSV tables (one per election, usually zipped) in ``data/`` of
https://github.com/dkobak/elections, scraped from the Central Election Commission's site
izbirkom.ru by Sergey Shpilkin (2000-2021) and Ivan Shukshin (2024). UTF-8, comma-separated,
one row per polling station, Russian headers:

* identifier columns ``region`` (subject of the federation), ``oik`` (district commission, Duma
  years), ``tik`` (territorial commission), ``uik`` (the station: an integer in 2004-2018, text
  ``"УИК №12"`` later), ``level`` (2021, constant), ``name`` (2020), ``url`` (absent in 2024);
* then the protocol lines, headed by their wording on the protocol ("Число избирателей,
  внесенных в список ...") -- the wording changes from election to election, so lines are matched
  by meaning through :data:`HEADER_RULES`, never by position;
* then one column of votes per candidate or party list, headed as on the ballot.

Definitions (also recorded in ``meta.definitions``):

* ``ballots_cast = ballots_in_stationary_boxes + ballots_in_mobile_boxes`` -- the ballots found in
  the boxes, the turnout numerator of Kobak, Shpilkin & Pshenichnikov. Where a protocol has only a
  total "ballots in the boxes" line (the 2020 constitutional vote), that total is used.
* ``station_id = "<region>|<tik>|<uik number>"``, unique in every file of the mirror (verified for
  2004-2018); ``ДЭГ`` stands for the empty uik of an e-voting row (2021); the district
  commission (``oik``) is added only where these three repeat, and a ``#n`` suffix only where
  even that repeats.
* Flags: stations abroad (``is_abroad``, kind ``abroad``: region or TIK "за пределами" /
  "Зарубежная территория", but not the Russian-administered city of Baikonur); remote electronic
  voting pseudo-stations (``is_evoting`` and ``is_pseudo_station``, kind ``evoting``: "ДЭГ",
  "дистанционн...", "электронн..." in the TIK, UIK or name, or Moscow's numbered e-voting
  stations, :data:`MOSCOW_EVOTING_STATIONS`); rows with no numbers at all (``is_unpublished``,
  counts left null); stations whose results were later cancelled (``is_cancelled``, from the
  small table :data:`CANCELLED_STATIONS`).
* Bad rows are set aside (:func:`~pollwatch.results.quarantine.set_aside`): an empty region, tik
  or uik (except an e-voting row's tik or uik), a count that is not a whole number or negative.

:class:`RussiaCecEvotingImporter` (``russia-cec-evoting``) reads the table of e-voting results
by region that accompanies the 2024 file: one e-voting pseudo-station per region.

Counts are parsed by polars while it reads the table (one pass, no string column per count)
when every cell is a plain integer; otherwise the table is read as text and
:func:`~pollwatch.results.importers._tables.parse_counts` parses it (``"12.0"``, bad cells).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import polars as pl

from pollwatch.errors import ColumnError, FormatError, InputError, PollwatchError
from pollwatch.results.importers._tables import (
    parse_counts,
    peek_header,
    read_csv_table,
    read_source_bytes,
    sha256_file,
)
from pollwatch.results.importers.base import (
    IMPORTERS,
    Example,
    Importer,
    slugify,
)
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election
from pollwatch.results.quarantine import EMPTY_IDENTIFIER, LINE_COLUMN, number_lines, set_aside

__all__ = [
    "CANCELLED_STATIONS",
    "ELECTIONS",
    "EVOTING_STATION_SIZE",
    "HEADER_RULES",
    "MOSCOW_EVOTING_STATIONS",
    "HeaderRule",
    "RussiaCecEvotingImporter",
    "RussiaCecImporter",
    "classify_headers",
    "normalise_header",
]

SOURCE = (
    "Kobak/Shpilkin polling-station tables scraped from izbirkom.ru (github.com/dkobak/elections)"
)
LICENSE = "public CEC protocol data; redistribution terms not stated"

#: Identifier columns of the source (never candidates, never counts).
ID_COLUMNS: tuple[str, ...] = ("region", "oik", "tik", "uik", "level", "name", "url")

OPTIONS: dict[str, str] = {
    "year": "election year (4 digits); overrides the year in the file name",
    "encoding": "text encoding of the file (default utf-8; e.g. cp1251)",
}


@dataclass(frozen=True)
class ElectionInfo:
    """What the year of a federal election tells: kind, date and contest."""

    kind: str
    date: str
    contest: str


_PRESIDENT = "Выборы Президента Российской Федерации"
_DUMA = (
    "Выборы депутатов Государственной Думы Федерального Собрания Российской Федерации "
    "(федеральный избирательный округ, партийные списки)"
)

#: Russian federal elections by year (the Kobak/Shpilkin files are named ``<year>.csv.zip``).
ELECTIONS: dict[int, ElectionInfo] = {
    2000: ElectionInfo("presidential", "2000-03-26", _PRESIDENT),
    2003: ElectionInfo("parliamentary", "2003-12-07", _DUMA),
    2004: ElectionInfo("presidential", "2004-03-14", _PRESIDENT),
    2007: ElectionInfo("parliamentary", "2007-12-02", _DUMA),
    2008: ElectionInfo("presidential", "2008-03-02", _PRESIDENT),
    2011: ElectionInfo("parliamentary", "2011-12-04", _DUMA),
    2012: ElectionInfo("presidential", "2012-03-04", _PRESIDENT),
    2016: ElectionInfo("parliamentary", "2016-09-18", _DUMA),
    2018: ElectionInfo("presidential", "2018-03-18", _PRESIDENT),
    2020: ElectionInfo(
        "referendum",
        "2020-07-01",
        "Общероссийское голосование по вопросу одобрения изменений в Конституцию "
        "Российской Федерации",
    ),
    2021: ElectionInfo("parliamentary", "2021-09-19", _DUMA),
    2024: ElectionInfo("presidential", "2024-03-17", _PRESIDENT),
}

#: Stations whose results the commissions cancelled after the count, by election year:
#: ``station_id`` values (region|tik|uik). The source keeps their numbers; we flag them.
#: 2018: the source README names CSV rows 45559, 45563, 92554 and 92561; these are those rows
#: (their 7,122 registered voters are the difference between the file's 109,008,428 and the
#: CEC's final 109,001,306).
CANCELLED_STATIONS: dict[int, frozenset[str]] = {
    2018: frozenset(
        {
            "Калининградская область|22 Советская|572",
            "Калининградская область|22 Советская|576",
            "город Москва|93 район Люблино|1439",
            "город Москва|93 район Люблино|1446",
        }
    ),
}


#: Moscow's own remote e-voting (ДЭГ) pseudo-stations, by election year: rows that look
#: ordinary (``УИК №5001`` to ``УИК №5015``, under district TIKs, no e-voting word anywhere) but
#: hold the city's electronic votes, 120,000-172,000 registered voters each in the 2021 Duma
#: file (as reported on that file, pollwatch issue 12). A row is flagged when it is in Moscow,
#: its number is in the range and it has more than :data:`EVOTING_STATION_SIZE` registered
#: voters, in a year listed here or a file whose year is unknown.
MOSCOW_EVOTING_STATIONS: dict[int, range] = {2021: range(5001, 5016)}

#: Registered voters above which a numbered Moscow station is taken for e-voting. A physical
#: UIK serves at most a few thousand voters; size alone is no rule, though: stations abroad
#: reach 38,859 (2007) and a few ordinary ones 10,300-14,781 (Samara 2011, Volgograd 2016).
EVOTING_STATION_SIZE = 10_000

#: The ``uik`` of an e-voting pseudo-station that has none (2021: empty cells).
EVOTING_UIK = "ДЭГ"

# A file of unknown year: Moscow's numbering as in the years known.
_ANY_YEAR = MOSCOW_EVOTING_STATIONS[2021]


@dataclass(frozen=True)
class HeaderRule:
    """One rule of header matching: a regex on the normalised header and what it means.

    ``meaning`` is a column of the data model when ``in_model`` is true, else a label for a
    protocol line that is recognised (so it never becomes a candidate) but not kept.
    """

    meaning: str
    pattern: str
    in_model: bool

    def matches(self, normalised: str) -> bool:
        return re.search(self.pattern, normalised) is not None


#: Header rules, tried in order on :func:`normalise_header` text; the first match wins. Order
#: matters: absentee-certificate lines ("погашенных неиспользованных открепительных
#: удостоверений") must be caught before "погашенных ... бюллетеней", "вне помещения" before
#: "в помещении", "недействительных" before "действительных".
HEADER_RULES: tuple[HeaderRule, ...] = (
    HeaderRule("absentee_certificates", r"открепительн", False),
    HeaderRule("ballots_lost", r"утрач|утрат", False),
    HeaderRule("ballots_not_accounted", r"не ?учтенн", False),
    HeaderRule(
        "registered",
        r"^число (избирателей|участников голосования),? (внесенных|включенных) в спис(ок|к)",
        True,
    ),
    HeaderRule("ballots_received", r"полученн", True),
    HeaderRule("ballots_issued_early", r"выданн.*досрочно", True),
    HeaderRule("ballots_issued_outside", r"выданн.*вне помещени", True),
    HeaderRule("ballots_issued_on_day", r"выданн.*(в помещени|в день голосования)", True),
    HeaderRule("ballots_issued_total", r"выданн", False),
    HeaderRule("ballots_cancelled", r"погашенн.*бюллетен", True),
    HeaderRule("ballots_in_mobile_boxes", r"переносн", True),
    HeaderRule("ballots_in_stationary_boxes", r"стационарн", True),
    HeaderRule("ballots_in_boxes", r"в ящиках", False),
    HeaderRule("ballots_unmarked", r"отметок", False),
    HeaderRule("invalid", r"недействительн", True),
    HeaderRule("valid", r"действительн", True),
    # Any other "Число ..." header is a protocol line we do not know, never a candidate.
    HeaderRule("other_protocol_line", r"^число\b", False),
)

_REQUIRED: tuple[str, ...] = (
    "registered",
    "invalid",
    "valid",
    "ballots_in_mobile_boxes",
    "ballots_in_stationary_boxes",
)
_WHITESPACE = re.compile(r"\s+")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_EVOTING = r"(?i)дэг|дистанционн|электронн"
_ABROAD = r"(?i)за пределами|зарубежн"
_BAIKONUR = r"(?i)байконур"
_MOSCOW = r"(?i)москва"
_BALLOT_NUMBER = re.compile(r"^\s*\d+\s*[.)]\s*")
_NA_VALUES = ("nan", "NaN", "NA")


def normalise_header(text: str) -> str:
    """Lower case, ``ё`` -> ``е``, whitespace collapsed and trimmed: what rules match against."""
    return _WHITESPACE.sub(" ", text.lower().replace("ё", "е")).strip()


@dataclass(frozen=True)
class HeaderPlan:
    """How the columns of one file are used: protocol lines, candidates, ignored lines."""

    model: Mapping[str, str]  # data-model column -> source header
    boxes_total: str | None  # the single "ballots in the boxes" line (2020), if any
    candidates: tuple[str, ...]  # source headers of candidate / party columns
    unmodelled: tuple[tuple[str, str], ...]  # (meaning, source header) of ignored lines
    extra_ids: tuple[str, ...] = ()  # unknown columns before the protocol lines (not counts)


def classify_headers(headers: Sequence[str], where: str) -> HeaderPlan:
    """Sort the headers of a file into protocol lines, candidates and identifiers.

    Candidate columns are the columns after the first protocol line that are neither an
    identifier column nor a protocol line. Raises :class:`ColumnError` when a required line is
    missing or two headers mean the same line.
    """
    model: dict[str, str] = {}
    boxes_total: str | None = None
    candidates: list[str] = []
    unmodelled: list[tuple[str, str]] = []
    extra_ids: list[str] = []
    seen_protocol = False
    for header in headers:
        if header in ID_COLUMNS:
            continue
        normalised = normalise_header(header)
        rule = next((r for r in HEADER_RULES if r.matches(normalised)), None)
        if rule is None:
            if seen_protocol:
                candidates.append(header)
            else:
                # Unknown columns before the protocol lines are further identifiers: not counts.
                extra_ids.append(header)
            continue
        seen_protocol = True
        if rule.in_model:
            if rule.meaning in model:
                raise ColumnError(
                    f"two headers mean {rule.meaning!r}: {model[rule.meaning]!r} and {header!r}",
                    path=where,
                    column=header,
                    hint="the file has an unexpected protocol layout; report it with its header",
                )
            model[rule.meaning] = header
        elif rule.meaning == "ballots_in_boxes":
            if boxes_total is not None:
                raise ColumnError(
                    f"two headers mean 'ballots_in_boxes': {boxes_total!r} and {header!r}",
                    path=where,
                    column=header,
                    hint="the file has an unexpected protocol layout; report it with its header",
                )
            boxes_total = header
        else:
            unmodelled.append((rule.meaning, header))
    required = list(_REQUIRED)
    if boxes_total is not None:
        # The 2020 vote's protocol has one "ballots in the boxes" line and no valid line.
        required = ["registered", "invalid"]
    missing = [m for m in required if m not in model]
    if missing:
        seen = ", ".join(repr(h) for h in headers)
        raise ColumnError(
            f"no protocol line for {', '.join(missing)}",
            path=where,
            hint=f"headers seen: {seen[:1500]}",
        )
    for header in candidates:
        if not header.strip():
            raise ColumnError(
                "a candidate column has an empty header", path=where, hint="name every column"
            )
    return HeaderPlan(
        model=model,
        boxes_total=boxes_total,
        candidates=tuple(candidates),
        unmodelled=tuple(unmodelled),
        extra_ids=tuple(extra_ids),
    )


def _year_of(path: Path, options: Mapping[str, str]) -> int | None:
    given = options.get("year")
    if given is not None:
        if not re.fullmatch(r"\d{4}", given.strip()):
            raise PollwatchError(
                f"option year={given!r} is not a 4-digit year", hint="e.g. --option year=2018"
            )
        return int(given)
    name = path.name
    for suffix in (".zip", ".gz"):
        name = name.removesuffix(suffix)
    match = _YEAR.search(Path(name).stem)
    return int(match.group(1)) if match else None


def _guess_kind(candidates: Sequence[str]) -> str:
    lowered = [c.lower() for c in candidates]
    if set(lowered) <= {"да", "нет"} and lowered:
        return "referendum"
    if any("парти" in c for c in lowered):
        return "parliamentary"
    return "presidential"


def _read_source(path: Path, given: Mapping[str, str]) -> tuple[pl.DataFrame, str, int | None]:
    """The file's table, the name errors give it, and the election year (both importers)."""
    year = _year_of(path, given)  # a bad year option fails before the file is read
    data, where = read_source_bytes(path)
    # a national table: the bytes are not kept once parsed
    return _read_table(data, where, given.get("encoding", "utf-8")), where, year


def _read_table(data: bytes, where: str, encoding: str) -> pl.DataFrame:
    """The table as strings, its count columns already ``Int64`` where every cell is an integer."""
    try:
        return read_csv_table(
            data,
            where=where,
            encoding=encoding,
            integer_columns=lambda names: _count_headers_or_none(names, where),
        )
    except FormatError as exc:
        if "not valid" not in exc.message:
            raise
        try:
            sample = data[:65536].decode("cp1251")
        except UnicodeDecodeError:
            raise exc from None
        if re.search(r"[А-Яа-я]{4}", sample) is None:
            raise
        raise FormatError(
            f"not valid {encoding}; it looks like cp1251 (Windows Cyrillic)",
            path=exc.path,
            row=exc.row,
            hint="read it with --option encoding=cp1251",
        ) from None


def _count_headers(plan: HeaderPlan) -> list[str]:
    """The source headers whose cells are counts: protocol lines in the model, candidates."""
    headers = [*plan.model.values(), *plan.candidates]
    if plan.boxes_total is not None:
        headers.append(plan.boxes_total)
    return headers


def _count_headers_or_none(names: Sequence[str], where: str) -> list[str]:
    """For the reader's one-pass parse: the count columns, none when the header is unusable
    (``read`` then raises the header's error itself, after the table is read)."""
    try:
        return _count_headers(classify_headers(names, where))
    except PollwatchError:
        return []


def _parse_count_columns(frame: pl.DataFrame, headers: Sequence[str], where: str) -> pl.DataFrame:
    """Count columns as ``Int64``; a bad cell's row is set aside (or raised) by parse_counts.

    Columns the reader already parsed as ``Int64`` only need the sign checked; one with a
    negative number goes back to text so that :func:`parse_counts` deals with it as before.
    """
    typed = [h for h in headers if frame.schema[h] == pl.Int64]
    if typed:
        negative = frame.select([(pl.col(h) < 0).any().alias(h) for h in typed]).row(0)
        signed = [h for h, is_negative in zip(typed, negative, strict=True) if is_negative]
        if signed:
            frame = frame.with_columns([pl.col(h).cast(pl.String) for h in signed])
    text = [h for h in headers if frame.schema[h] != pl.Int64]
    if not text:
        return frame
    return parse_counts(frame, text, where=where, na_values=_NA_VALUES, line_column=LINE_COLUMN)


def _empty(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def _matches(frame: pl.DataFrame, column: str, pattern: str) -> pl.Expr:
    """``column`` matches ``pattern`` (null: no), the regex run once per distinct value.

    For the columns with few values (a national table has some 85 regions and 2,800 TIKs in
    97,000 rows), where running the regex on every row is most of the time of the flags.
    """
    values = frame[column].drop_nulls().unique()
    hits = values.filter(values.str.contains(pattern))
    return pl.col(column).is_in(hits.to_list()).fill_null(False)


def _evoting_by_name(frame: pl.DataFrame) -> pl.Expr:
    """Rows whose tik, uik or name says remote e-voting (ДЭГ, дистанционн..., электронн...)."""
    found = [_matches(frame, "tik", _EVOTING)] if "tik" in frame.columns else []
    found += [
        pl.col(c).str.contains(_EVOTING).fill_null(False)
        for c in ("uik", "name")
        if c in frame.columns
    ]
    return pl.any_horizontal(found)


def _set_aside_empty_ids(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    """Set aside rows without region, tik or uik, except e-voting rows without tik or uik."""
    columns = ("region", "tik", "uik")
    if not frame.select(pl.any_horizontal([_empty(c) for c in columns]).any()).item():
        return frame  # the usual case, in one pass
    evoting = _evoting_by_name(frame)
    for column in columns:
        bad = _empty(column) if column == "region" else _empty(column) & ~evoting
        frame = set_aside(
            frame,
            bad,
            reason=EMPTY_IDENTIFIER,
            where=where,
            column=column,
            message="empty station identifier",
            hint="every row needs region, tik and uik (only remote e-voting rows may lack "
            "tik or uik)",
            line_column=LINE_COLUMN,
            error=InputError,
        )
    return frame


@IMPORTERS.register("russia-cec")
class RussiaCecImporter(Importer):
    """Kobak/Shpilkin polling-station tables of Russian federal elections (izbirkom.ru)."""

    name: ClassVar[str] = "russia-cec"
    description: ClassVar[str] = (
        "Russian federal elections by polling station (Kobak/Shpilkin CSV tables from "
        "izbirkom.ru, github.com/dkobak/elections)"
    )
    known_options: ClassVar[Mapping[str, str]] = OPTIONS

    def detect(self, path: Path) -> float:
        """High confidence when the header has region, tik, uik and a registered-voters line."""
        header = peek_header(Path(path))
        if not header:
            return 0.0
        names = {h.strip() for h in header}
        normalised = [normalise_header(h) for h in header]
        has_ids = {"region", "tik", "uik"} <= names
        has_registered = any(
            h.startswith(("число избирателей", "число участников голосования")) for h in normalised
        )
        if has_ids and has_registered:
            return 0.95
        if has_registered and any(h.startswith("число") for h in normalised):
            return 0.3
        if has_ids:
            return 0.2
        return 0.0

    def read_file(self, path: Path, options: dict[str, str], mapping: Path | None) -> Election:
        """Read one Kobak/Shpilkin table (``.csv``, ``.csv.gz`` or ``.csv.zip``)."""
        frame, where, year = _read_source(path, options)
        missing_ids = [c for c in ("region", "tik", "uik") if c not in frame.columns]
        if missing_ids:
            shown = ", ".join(repr(c) for c in frame.columns[:12])
            raise ColumnError(
                f"missing identifier column(s) {missing_ids}",
                path=where,
                hint=f"a Kobak/Shpilkin table starts with region, (oik,) tik, uik; seen: {shown}",
            )
        plan = classify_headers(frame.columns, where)
        count_headers = _count_headers(plan)
        frame = _set_aside_empty_ids(number_lines(frame), where)
        counts = _parse_count_columns(frame, count_headers, where)
        del frame
        stations = self._stations(counts, plan)
        stations = self._flag(stations, counts, plan, count_headers, year)
        del counts
        candidates = self._candidates(plan, year)
        meta = self._meta(path, year, plan, candidates, stations)
        return make_election(meta, stations, where=where)

    # --- steps of read ------------------------------------------------------------------
    @staticmethod
    def _stations(counts: pl.DataFrame, plan: HeaderPlan) -> pl.DataFrame:
        text = {c: pl.col(c).str.strip_chars() for c in ("region", "tik", "uik")}
        if counts.select(pl.col("uik").str.contains(r"^\d+$").fill_null(False).all()).item():
            # 2004-2018: the uik is its number (the regex below is most of this step's time).
            uik = uik_key = pl.col("uik")
        else:
            # Only e-voting rows are left without a uik (the others were set aside).
            uik = (
                pl.when(text["uik"].fill_null("") == "")
                .then(pl.lit(EVOTING_UIK))
                .otherwise(text["uik"])
            )
            uik_key = pl.coalesce(uik.str.extract(r"(\d+)", 1), uik)
        exprs: list[pl.Expr] = [
            text["region"].alias("region"),
            text["tik"].alias("district"),
            uik.alias("station_name"),
            pl.concat_str(
                [text["region"], text["tik"].fill_null(""), uik_key], separator="|"
            ).alias("station_id"),
        ]
        if "oik" in counts.columns:
            exprs.append(pl.col("oik").str.strip_chars().alias("constituency"))
        for meaning, header in plan.model.items():
            exprs.append(pl.col(header).alias(meaning))
        for header in plan.candidates:
            exprs.append(pl.col(header).alias(_candidate_column(header)))
        if plan.boxes_total is not None:
            exprs.append(pl.col(plan.boxes_total).alias("ballots_cast"))
            if "valid" not in plan.model:
                # Valid ballots = ballots in the boxes that are not invalid (2020 protocol).
                exprs.append(
                    (pl.col(plan.boxes_total) - pl.col(plan.model["invalid"])).alias("valid")
                )
        else:
            exprs.append(
                (
                    pl.col(plan.model["ballots_in_stationary_boxes"])
                    + pl.col(plan.model["ballots_in_mobile_boxes"])
                ).alias("ballots_cast")
            )
        stations = counts.select(exprs)
        return _unique_ids(stations)

    @staticmethod
    def _flag(
        stations: pl.DataFrame,
        counts: pl.DataFrame,
        plan: HeaderPlan,
        count_headers: Sequence[str],
        year: int | None,
    ) -> pl.DataFrame:
        evoting = _evoting_by_name(counts)
        numbered = MOSCOW_EVOTING_STATIONS.get(year) if year is not None else _ANY_YEAR
        if numbered is not None:
            large = _matches(counts, "region", _MOSCOW) & (
                pl.col(plan.model["registered"]) > EVOTING_STATION_SIZE
            ).fill_null(False)
            if counts.select(large.any()).item():
                number = pl.col("uik").str.extract(r"(\d+)", 1).cast(pl.Int64, strict=False)
                evoting = evoting | (
                    large & number.is_between(numbered.start, numbered.stop - 1).fill_null(False)
                )
        abroad = (_matches(counts, "region", _ABROAD) | _matches(counts, "tik", _ABROAD)) & ~(
            _matches(counts, "region", _BAIKONUR) | _matches(counts, "tik", _BAIKONUR)
        )
        unpublished = pl.all_horizontal([pl.col(h).is_null() for h in count_headers])
        flags = counts.select(
            evoting.alias("is_evoting"),
            abroad.alias("is_abroad"),
            unpublished.alias("is_unpublished"),
        )
        cancelled = CANCELLED_STATIONS.get(year or 0, frozenset())
        return stations.with_columns(flags).with_columns(
            pl.col("is_evoting").alias("is_pseudo_station"),
            pl.col("station_id").is_in(sorted(cancelled)).alias("is_cancelled"),
            pl.when(pl.col("is_evoting"))
            .then(pl.lit("evoting"))
            .when(pl.col("is_abroad"))
            .then(pl.lit("abroad"))
            .otherwise(pl.lit("ordinary"))
            .alias("station_kind"),
        )

    @staticmethod
    def _candidates(plan: HeaderPlan, year: int | None) -> tuple[Candidate, ...]:
        kind = ELECTIONS[year].kind if year in ELECTIONS else _guess_kind(plan.candidates)
        result = []
        for header in plan.candidates:
            column = _candidate_column(header)
            party = _BALLOT_NUMBER.sub("", column) if kind == "parliamentary" else None
            result.append(Candidate(name=column, column=column, party=party))
        return tuple(result)

    def _meta(
        self,
        path: Path,
        year: int | None,
        plan: HeaderPlan,
        candidates: tuple[Candidate, ...],
        stations: pl.DataFrame,
    ) -> ElectionMeta:
        info = ELECTIONS.get(year or 0)
        if info is None:
            kind = _guess_kind(plan.candidates)
            date = ""
            contest = f"Russian federal election{f' {year}' if year else ''} ({kind})"
        else:
            kind, date, contest = info.kind, info.date, f"{info.contest}, {year}"
        stem = path.name.split(".")[0] or path.stem
        election_id = f"russia-{year}" if year else slugify(stem)
        labels = {
            "region": "region (субъект Российской Федерации)",
            "district": "tik (территориальная избирательная комиссия, ТИК)",
            "station_name": "uik (участковая избирательная комиссия, УИК)",
        }
        if "constituency" in stations.columns:
            labels["constituency"] = "oik (окружная избирательная комиссия, ОИК)"
        for meaning, header in plan.model.items():
            labels[meaning] = header
        if plan.boxes_total is not None:
            labels["ballots_cast"] = plan.boxes_total
        definitions = {
            "ballots_cast": (
                "ballots found in the boxes: ballots_in_stationary_boxes + "
                "ballots_in_mobile_boxes (the Kobak/Shpilkin turnout numerator)"
                if plan.boxes_total is None
                else f"the protocol's single line of ballots in the boxes ({plan.boxes_total})"
            ),
            "station_id": (
                "region|tik|uik number (the digits of uik; its text if it has none; ДЭГ for an "
                "e-voting row without uik); oik is added only where region|tik|uik repeats, "
                "then #n for a further repeat"
            ),
            "station_kind": "abroad or evoting where flagged, else ordinary",
            "is_abroad": (
                "region or tik says 'за пределами' or 'зарубежн...' (stations abroad); the city "
                "of Baikonur, Russian-administered, stays ordinary. Duma 2016 spread stations "
                "abroad over Russian TIKs: they cannot be told apart there"
            ),
            "is_evoting": _evoting_definition(year),
            "is_pseudo_station": "remote e-voting rows (not a physical station)",
            "is_unpublished": "every count of the row is empty (nothing published); kept, null",
            "is_cancelled": (
                "results later cancelled, from the importer's table of known cancellations: "
                + (
                    ", ".join(sorted(CANCELLED_STATIONS[year]))
                    if year in CANCELLED_STATIONS
                    else "none known for this election"
                )
            ),
            "header_matching": (
                "protocol lines matched by meaning with regexes on the normalised header "
                "(docs/importers/russia-cec.md); any other header starting with 'Число' is a "
                "protocol line, never a candidate"
            ),
        }
        if plan.boxes_total is not None and "valid" not in plan.model:
            definitions["valid"] = (
                "not a protocol line here: ballots in the boxes minus invalid ballots"
            )
        if plan.extra_ids:
            definitions["ignored_identifier_columns"] = ", ".join(plan.extra_ids)
        if plan.unmodelled:
            definitions["protocol_lines_not_in_model"] = "; ".join(
                f"{meaning}: {header}" for meaning, header in plan.unmodelled
            )
        digest = sha256_file(path)
        return ElectionMeta(
            id=election_id,
            country="RU",
            date=date,
            kind=kind,
            contest=contest,
            source=SOURCE,
            license=LICENSE,
            importer=self.name,
            candidates=candidates,
            data_version=f"sha256:{digest[:16]}",
            hierarchy_labels=labels,
            definitions=definitions,
            source_files=(path.name,),
            source_sha256=digest,
        )

    def example(self, folder: Path) -> Example:
        """Write a small 2018-layout table (zipped) with an abroad and a Baikonur station."""
        folder.mkdir(parents=True, exist_ok=True)
        header = [
            "region",
            "tik",
            "uik",
            "Число избирателей, включенных в список избирателей",
            "Число избирательных бюллетеней, полученных участковой избирательной комиссией",
            "Число избирательных бюллетеней, выданных избирателям, проголосовавшим досрочно",
            "Число избирательных бюллетеней, выданных в помещении для голосования в день "
            "голосования",
            "Число избирательных бюллетеней, выданных вне помещения для голосования в день "
            "голосования",
            "Число погашенных избирательных бюллетеней",
            "Число избирательных бюллетеней в переносных ящиках для голосования",
            "Число бюллетеней в стационарных ящиках для голосования",
            "Число недействительных избирательных бюллетеней",
            "Число действительных избирательных бюллетеней",
            "Число утраченных избирательных бюллетеней",
            "Число избирательных бюллетеней, не учтенных при получении",
            "Иванов Иван Иванович",
            "Петрова Мария Сергеевна",
            "url",
        ]
        # registered, received, early, on day, outside, cancelled, mobile, stationary,
        # invalid, valid, lost, not accounted, Иванов, Петрова
        rows = [
            [
                "Республика Адыгея (Адыгея)",
                "1 Адыгейская",
                "1",
                1000,
                900,
                0,
                580,
                20,
                300,
                20,
                580,
                5,
                595,
                0,
                0,
                400,
                195,
            ],
            [
                "Республика Адыгея (Адыгея)",
                "1 Адыгейская",
                "2",
                800,
                700,
                0,
                390,
                10,
                300,
                10,
                390,
                4,
                396,
                0,
                0,
                300,
                96,
            ],
            [
                "98 Город Байконур (Республика Казахстан)",
                "98 Город Байконур (Республика Казахстан)",
                "8001",
                1500,
                1400,
                0,
                900,
                0,
                500,
                0,
                900,
                10,
                890,
                0,
                0,
                600,
                290,
            ],
            [
                "99 Территория за пределами РФ",
                "99 Территория за пределами РФ",
                "8100",
                300,
                300,
                0,
                200,
                0,
                100,
                0,
                200,
                1,
                199,
                0,
                0,
                150,
                49,
            ],
        ]
        lines = [",".join(f'"{h}"' if "," in h else h for h in header)]
        for row in rows:
            lines.append(",".join(str(v) for v in row) + ",http://www.vybory.izbirkom.ru/example")
        path = folder / "example-2018.csv.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("example-2018.csv", "\n".join(lines) + "\n")
        return Example(
            path=path,
            totals={"Иванов Иван Иванович": 1450, "Петрова Мария Сергеевна": 630},
            stations=len(rows),
        )


#: The ``tik`` given to the rows of the regional e-voting table, which has none: so that a
#: region's e-voting pseudo-station has the same id as a 2021-style row without uik.
EVOTING_TIK = "Дистанционное электронное голосование"


@IMPORTERS.register("russia-cec-evoting")
class RussiaCecEvotingImporter(RussiaCecImporter):
    """The remote e-voting (ДЭГ) results by region that come with a Kobak/Shpilkin table.

    Source: ``2024-electronic-voting.csv`` in ``data/`` of github.com/dkobak/elections, one row
    per region (``region``, the protocol lines, one column per candidate); its 8,434,406
    registered voters are not in ``2024.csv.zip``. Each row becomes one e-voting pseudo-station
    (``is_evoting``, ``is_pseudo_station``, kind ``evoting``) with ``tik`` =
    :data:`EVOTING_TIK` and ``uik`` = ``ДЭГ``: station id ``<region>|Дистанционное электронное
    голосование|ДЭГ``. Header matching and definitions are those of ``russia-cec``.
    """

    name: ClassVar[str] = "russia-cec-evoting"
    description: ClassVar[str] = (
        "Russian remote e-voting (ДЭГ) results by region, the table that accompanies a "
        "Kobak/Shpilkin file (2024-electronic-voting.csv, github.com/dkobak/elections)"
    )
    known_options: ClassVar[Mapping[str, str]] = OPTIONS

    def detect(self, path: Path) -> float:
        """High confidence for a ``region`` column, protocol lines and no tik or uik."""
        header = peek_header(Path(path))
        if not header:
            return 0.0
        names = {h.strip() for h in header}
        if "region" not in names or names & {"tik", "uik"}:
            return 0.0
        try:
            classify_headers([h.strip() for h in header], str(path))
        except PollwatchError:
            return 0.0
        return 0.9

    def read_file(self, path: Path, options: dict[str, str], mapping: Path | None) -> Election:
        """Read one regional e-voting table (``.csv``, ``.csv.gz`` or ``.csv.zip``)."""
        frame, where, year = _read_source(path, options)
        if "region" not in frame.columns or {"tik", "uik"} & set(frame.columns):
            shown = ", ".join(repr(c) for c in frame.columns[:12])
            raise ColumnError(
                "not a regional e-voting table: it needs a region column and no tik or uik",
                path=where,
                hint=f"a table by polling station is read with --format russia-cec; seen: {shown}",
            )
        plan = classify_headers(frame.columns, where)
        count_headers = _count_headers(plan)
        frame = set_aside(
            number_lines(frame),
            _empty("region"),
            reason=EMPTY_IDENTIFIER,
            where=where,
            column="region",
            message="empty region",
            hint="every row of the e-voting table names its region",
            line_column=LINE_COLUMN,
            error=InputError,
        )
        counts = _parse_count_columns(frame, count_headers, where).with_columns(
            pl.lit(EVOTING_TIK).alias("tik"), pl.lit(EVOTING_UIK).alias("uik")
        )
        del frame
        stations = self._stations(counts, plan)
        stations = self._flag(stations, counts, plan, count_headers, year)
        del counts
        candidates = self._candidates(plan, year)
        meta = self._meta(path, year, plan, candidates, stations)
        definitions = dict(meta.definitions)
        definitions["station_id"] = (
            f"region|{EVOTING_TIK}|{EVOTING_UIK}: one e-voting pseudo-station per region (the "
            "id a 2021-style e-voting row of the region has); #n where a region repeats"
        )
        definitions["is_evoting"] = "every row: the table holds remote e-voting results only"
        labels = dict(meta.hierarchy_labels)
        labels["district"] = f"none in the source; {EVOTING_TIK!r} on every row"
        labels["station_name"] = f"none in the source; {EVOTING_UIK!r} on every row"
        meta = replace(
            meta,
            id=f"{meta.id}-evoting",
            contest=f"{meta.contest}: remote electronic voting (ДЭГ) by region",
            definitions=definitions,
            hierarchy_labels=labels,
        )
        return make_election(meta, stations, where=where)

    def example(self, folder: Path) -> Example:
        """Write a small 2024-style regional e-voting table (three regions, float cells)."""
        folder.mkdir(parents=True, exist_ok=True)
        header = [
            "region",
            "Число избирателей, включенных в список избирателей",
            "Число избирательных бюллетеней в переносных ящиках для голосования",
            "Число бюллетеней в стационарных ящиках для голосования",
            "Число недействительных избирательных бюллетеней",
            "Число действительных избирательных бюллетеней",
            "Даванков Владислав Андреевич",
            "Путин Владимир Владимирович",
        ]
        # registered, mobile, stationary, invalid, valid, Даванков, Путин
        rows = [
            ["город Москва", 1000, 0, 900, 0, 900, 100, 800],
            ["Курская область", 500, 0, 400, 2, 398, 30, 368],
            ["Ярославская область", 300, 0, 250, 1, 249, 20, 229],
        ]
        lines = [",".join(f'"{h}"' if "," in h else h for h in header)]
        for row in rows:
            lines.append(",".join([str(row[0]), *(f"{v}.0" for v in row[1:])]))
        path = folder / "example-2024-electronic-voting.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return Example(
            path=path,
            totals={"Даванков Владислав Андреевич": 150, "Путин Владимир Владимирович": 1397},
            stations=len(rows),
        )


def _evoting_definition(year: int | None) -> str:
    """The e-voting rule as applied to a file of ``year`` (for ``meta.definitions``)."""
    rule = "tik, uik or name mentions ДЭГ, дистанционн... or электронн..."
    numbered = MOSCOW_EVOTING_STATIONS.get(year) if year is not None else _ANY_YEAR
    if numbered is None:
        return rule
    when = f"in {year}" if year is not None else "in a file of unknown year"
    return (
        f"{rule}; or, {when}, a Moscow station numbered {numbered.start}-{numbered.stop - 1} "
        f"with more than {EVOTING_STATION_SIZE:,} registered voters (Moscow's own e-voting "
        "pseudo-stations look like ordinary UIKs)"
    )


def _candidate_column(header: str) -> str:
    """The vote column of a candidate: its header with whitespace collapsed."""
    return _WHITESPACE.sub(" ", header).strip()


def _unique_ids(stations: pl.DataFrame) -> pl.DataFrame:
    """Make ``station_id`` unique: add oik where region|tik|uik repeats, then ``#n``."""
    if stations["station_id"].n_unique() == stations.height:
        return stations
    if "constituency" in stations.columns:
        # region|oik|tik|uik for the repeated ones only, so that other ids stay stable.
        parts = pl.col("station_id").str.splitn("|", 2)
        with_oik = pl.concat_str(
            [
                parts.struct.field("field_0"),
                pl.col("constituency").fill_null(""),
                parts.struct.field("field_1"),
            ],
            separator="|",
        )
        stations = stations.with_columns(
            pl.when(pl.col("station_id").is_duplicated())
            .then(with_oik)
            .otherwise(pl.col("station_id"))
            .alias("station_id")
        )
    occurrence = pl.int_range(pl.len()).over("station_id")
    return stations.with_columns(
        pl.when(occurrence > 0)
        .then(pl.concat_str([pl.col("station_id"), pl.lit("#"), (occurrence + 1).cast(pl.String)]))
        .otherwise(pl.col("station_id"))
        .alias("station_id")
    )
