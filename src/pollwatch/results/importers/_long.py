"""Shared code of the US long-format importers (``medsl``, ``openelections``).

US precinct files are *long*: one row per precinct x candidate (x vote mode), where the data model
wants one row per precinct with one column per candidate. This module holds what both importers
need, written once:

* :func:`option_all` -- whether an option value means "every value";
* contest selection (:func:`select_rows`, :func:`require_single`) with errors that list what the
  file holds, and :func:`normalise_office` so that ``"US President"``, ``"U.S. President"`` and
  ``"President"`` name the same office;
* :func:`row_role_expr` -- rows whose "candidate" is really over votes, under votes (blanks) or a
  total line;
* :func:`tally` -- the pivot: candidate identities, display names and parties, the ``Other`` and
  ``Write-ins`` columns, per-precinct sums over vote modes, ``valid`` and ``invalid``;
* :data:`PSEUDO_PRECINCT_PATTERNS` -- the rule that flags county-level catch-all pseudo-precincts
  ("Absentee", "Provisional", Maryland's "Total", MEDSL's "[Jurisdiction-wide]" ...), with the
  real examples each pattern was written for;
* small helpers: the US general election day of a year, the kind of an office, id slugs.

Definitions shared by both importers (each records its own text in ``meta.definitions``):

* a precinct's count for a candidate is the sum of all its rows for that candidate (vote modes,
  party lines of fusion candidates, repeated rows); null where the source has no row at all;
* ``valid`` is the sum of the candidate columns, ``Other`` and ``Write-ins`` included;
* ``invalid`` is over votes + under votes (blank) of the contest where the file reports them,
  else null;
* a negative net count (signed "statistical adjustment" rows) is kept where the precinct is a
  pseudo-station (the data model accepts signed counts only there), or set to 0 and reported
  with ``negative=clip``, or refused with ``negative=error``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from pollwatch.errors import ColumnError, CountError, InputError, PollwatchError
from pollwatch.results.importers._tables import parse_counts
from pollwatch.results.importers.base import slugify
from pollwatch.results.model import RESERVED_COLUMNS, Candidate

__all__ = [
    "OTHER",
    "PSEUDO_PRECINCT_PATTERNS",
    "PSEUDO_PRECINCT_REGEX",
    "WRITE_INS",
    "Tally",
    "abroad_precinct_expr",
    "normalise_office",
    "normalise_text_expr",
    "office_kind",
    "office_slug",
    "option_all",
    "option_slugs",
    "parse_float_option",
    "parse_signed_counts",
    "pseudo_precinct_expr",
    "require_single",
    "row_role_expr",
    "select_district_and_party",
    "select_rows",
    "tally",
    "truthy_expr",
    "us_general_election_date",
    "value_listing",
    "with_lookup",
    "year_from_name",
]

#: Column collecting the votes of ballot-listed candidates below the column threshold.
OTHER = "Other"
#: Column collecting write-in votes (write-in rows and unnamed write-in lines).
WRITE_INS = "Write-ins"

#: Regexes (matched case-insensitively against the precinct name, trimmed) that mark a
#: county-level catch-all pseudo-precinct, each with real examples from MEDSL 2016 it was written
#: for. Mode words alone ("Early", "Central", "County", "Federal", "Military") are not enough:
#: "Early Branch" (SC), "Central Park Elem" (AL), "Federal Building" (IA), "Forestville Military
#: Academy" (MD) and Washington's "... - VB MAIL" precincts are real precincts.
PSEUDO_PRECINCT_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^\[.*\]$", "[Jurisdiction-wide] (PA, MT, TX), [County-wide] (ME), [Unknown] (CO)"),
    (r"^total$", "Total (MD: each county's early, absentee and provisional votes)"),
    (r"absentee", "ABSENTEE (AL, MO), Absentee 2 (SC), # AB - Central Absentee Precinct (VA)"),
    (r"^ab$", "AB (KY absentee)"),
    (r"provision|provsional|provisonal", "Provisional Votes (LA), ## Provisional (VA)"),
    (r"\bearly vot", "Early Voting (LA), District 12 - Early Voting (AK), EARLY VOTE (AR)"),
    (r"\bmail-in\b|^mail\b", "MAIL-IN 3RD A-D (KY)"),
    (r"\bone[ -]?stop\b", "One Stop (NC early voting sites)"),
    (r"\bfail ?safe\b", "Failsafe, Failsafe Provisional (SC)"),
    (r"^emergency\b", "Emergency 1 (SC)"),
    (r"overseas|\buocava\b|over[/\\]fed", "Federal Overseas (NJ), Wayne Over/Fed - Overseas (NJ)"),
    (r"^military$|/military$", "MILITARY (MO), PROVISIONAL/MILITARY (MO)"),
    (r"write[- ]?ins?$", "Write-ins (GA, NE, WA), WRITE IN (MO)"),
    (r"statistical adjustment", "Statistical Adjustments (MI)"),
    (r"^central (count|processing)$", "Central Processing (ME)"),
    (r"\bpresidential\b|^president$", "PRESIDENTIAL (KY), Cranston Presidential; 733 (RI)"),
    (r" limited( \d+)?;", "Cranston Limited; 732 (RI limited ballots)"),
    (
        r"^(zz )?fed(eral)?$|^fed(eral)?([ /](overseas|precinct|state|\d)|\s*#)|- federal$",
        "FED 30-3097 (WA), ZZ Federal (IN), FEDERAL (MO), Federal Precinct #1; 9001 (RI)",
    ),
    (r"^county[- ]?wide$", "Countywide (NE)"),
    (r"(?-i: hand)$", "Atlantic City hand (NJ hand-counted ballots)"),
    (r"manual ballots|^paper ballots$", "PAPER BALLOTS (AR), City of Salem - West Manual Ballots"),
    (r"new/former resident", "New/Former Resident (NE)"),
    (r"^\d{2}9999$", "559999, 729999 (OK: county-level early and mail votes)"),
    (r"- question$", "District 10 - Question (AK questioned ballots)"),
    (r"unassigned", "Unassigned SubDistrict (NJ)"),
)
PSEUDO_PRECINCT_REGEX = "(?i)" + "|".join(f"(?:{p})" for p, _ in PSEUDO_PRECINCT_PATTERNS)
#: Catch-alls of overseas voters, flagged ``is_abroad`` as well.
ABROAD_PRECINCT_REGEX = r"(?i)overseas|\buocava\b|over[/\\]fed"

# Names of a "candidate" that is not one (matched on the lower-cased, trimmed name).
_OVER = r"^(over ?-?votes?|overvoted|over ?voted ballots?)$"
_UNDER = r"^(under ?-?votes?|undervoted|blank|blanks|blank votes|blank ballots)$"
_OVER_UNDER = r"^(over ?/ ?under|under ?/ ?over)( ?votes)?$"
_TOTAL = (
    r"^(total|totals|total votes|total votes cast|votes cast|ballots cast|total ballots cast"
    r"|registered voters)$"
)
# Identities that are write-in lines, not persons: MEDSL's normalised "in" ("[Write-in]"),
# "ins" ("Other Write-Ins"), "scatter(ing)", "unknown", OpenElections' "Write-ins".
_WRITE_IN_IDENTITY = (
    r"^(\[?write[- ]?ins?\]?|\[?writeins?\]?|in|ins|scatter|scattering|unknown|\[unknown\]"
    r"|(other|unqualified|unresolved|miscellaneous) write[- ]?ins?|write[- ]?in votes)$"
)
# Identities that are lumps of other candidates, not persons.
_OTHER_IDENTITY = r"^(other|others|all others|other candidates)$"


def option_all(value: str | None) -> bool:
    """Whether an option value means "every value" (``all``, ``any`` or ``*``)."""
    return value is not None and value.strip().lower() in {"all", "any", "*"}


def normalise_text_expr(expr: pl.Expr) -> pl.Expr:
    """Lower case, trimmed, inner whitespace collapsed; empty text becomes null."""
    text = expr.cast(pl.String).str.strip_chars().str.replace_all(r"\s+", " ").str.to_lowercase()
    return pl.when(text == "").then(None).otherwise(text)


def _normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).lower()


def normalise_office(expr: pl.Expr) -> pl.Expr:
    """An office name for comparison: ``"US President"``, ``"U.S. PRESIDENT"`` -> ``"president"``.

    Lower case, dots dropped, whitespace collapsed and a leading ``us`` / ``united states``
    dropped, so that MEDSL's and OpenElections' spellings of federal offices compare equal while
    ``"State House"`` stays apart from ``"U.S. House"``.
    """
    text = normalise_text_expr(expr.cast(pl.String).str.replace_all(".", "", literal=True))
    return text.str.replace(r"^(us|united states) ", "")


def _normalise_office(text: str) -> str:
    return re.sub(r"^(us|united states) ", "", _normalise_text(text.replace(".", "")))


def _normalise_district(text: str) -> str:
    value = _normalise_text(text)
    return value.lstrip("0") or value if value.isdigit() else value


def normalise_district_expr(expr: pl.Expr) -> pl.Expr:
    """A district label for comparison: trimmed, lower case, leading zeros of numbers dropped."""
    text = normalise_text_expr(expr)
    stripped = text.str.strip_chars_start("0")
    return pl.when(text.str.contains(r"^\d+$") & (stripped != "")).then(stripped).otherwise(text)


def truthy_expr(expr: pl.Expr) -> pl.Expr:
    """``TRUE``/``true``/``T``/``1``/``yes`` -> True, anything else (null included) -> False."""
    text = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return text.is_in(["true", "t", "1", "yes", "y"]).fill_null(False)


def row_role_expr(name: pl.Expr) -> pl.Expr:
    """``"over"``, ``"under"``, ``"over_under"``, ``"total"`` or ``"candidate"`` for a row."""
    text = normalise_text_expr(name)
    return (
        pl.when(text.str.contains(_OVER))
        .then(pl.lit("over"))
        .when(text.str.contains(_UNDER))
        .then(pl.lit("under"))
        .when(text.str.contains(_OVER_UNDER))
        .then(pl.lit("over_under"))
        .when(text.str.contains(_TOTAL))
        .then(pl.lit("total"))
        .otherwise(pl.lit("candidate"))
    )


def _precinct_matches(column: str, regex: str) -> pl.Expr:
    """True where the stripped precinct name in ``column`` matches ``regex``; False on null."""
    return pl.col(column).cast(pl.String).str.strip_chars().str.contains(regex).fill_null(False)


def pseudo_precinct_expr(column: str) -> pl.Expr:
    """True where the precinct name marks a county-level catch-all (see the patterns)."""
    return _precinct_matches(column, PSEUDO_PRECINCT_REGEX)


def abroad_precinct_expr(column: str) -> pl.Expr:
    """True where the precinct name marks overseas (UOCAVA) ballots."""
    return _precinct_matches(column, ABROAD_PRECINCT_REGEX)


def parse_float_option(options: Mapping[str, str], key: str, default: float) -> float:
    """A non-negative number option, or a PollwatchError naming it."""
    raw = options.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = -1.0
    if not value >= 0 or value != value:  # rejects negatives and NaN
        raise PollwatchError(
            f"option {key}={raw!r} is not a non-negative number", hint=f"e.g. {key}={default}"
        )
    return value


def parse_signed_counts(
    frame: pl.DataFrame,
    column: str,
    *,
    where: str,
    line_column: str | None = None,
    alias: str | None = None,
) -> pl.DataFrame:
    """``frame`` with whole numbers that may carry a minus sign (adjustment rows) as ``Int64``.

    The sign is taken off, the magnitude is parsed by :func:`parse_counts` (so a row with a bad
    cell is set aside into the quarantine, or raises :class:`CountError` with its line and
    column when none is collected: ``line_column`` holds the lines), and the sign is put back.
    The parsed numbers go to ``alias`` (default: ``column`` itself, replaced).
    """
    target = alias or column
    text = pl.col(column).cast(pl.String).str.strip_chars()
    staged = frame.with_columns(
        text.str.starts_with("-").fill_null(False).alias(_SIGN),
        text.str.strip_prefix("-").alias(_MAGNITUDE),
    )
    # Errors and quarantined rows name the source column, not the magnitude's.
    checked = parse_counts(
        staged, [_MAGNITUDE], where=where, line_column=line_column, names={_MAGNITUDE: column}
    )
    magnitude = pl.col(_MAGNITUDE)
    parsed = pl.when(pl.col(_SIGN)).then(-magnitude).otherwise(magnitude).alias(target)
    return checked.with_columns(parsed).drop(_SIGN, _MAGNITUDE)


_SIGN = "__pollwatch_sign__"
_MAGNITUDE = "__pollwatch_magnitude__"


def select_rows(
    frame: pl.DataFrame,
    column: str,
    wanted: str,
    *,
    where: str,
    option: str,
    what: str,
    compare: str = "text",
    exclude: Sequence[str] = (),
) -> pl.DataFrame:
    """Rows whose ``column`` equals ``wanted`` (compared normalised); an error listing the values.

    ``compare`` is ``"text"`` (case and spacing ignored), ``"office"`` (see
    :func:`normalise_office`) or ``"district"`` (leading zeros ignored). Values in ``exclude``
    (normalised) are left out of the listing in the error.
    """
    if compare == "office":
        key = normalise_office(pl.col(column))
        target = _normalise_office(wanted)
    elif compare == "district":
        key = normalise_district_expr(pl.col(column))
        target = _normalise_district(wanted)
    else:
        key = normalise_text_expr(pl.col(column))
        target = _normalise_text(wanted)
    selected = frame.filter(key == target)
    if selected.height:
        return selected
    raise InputError(
        f"no rows with {what} {wanted!r}",
        path=where,
        column=column,
        hint=f"{what} values in the file (rows): {value_listing(frame, column, exclude)}; "
        f"pass --option {option}=VALUE",
    )


def value_listing(
    frame: pl.DataFrame, column: str, exclude: Sequence[str] = (), top: int = 12
) -> str:
    """``"A" (120), "B" (4) ...`` for the most frequent values of a column."""
    counts = (
        frame.select(pl.col(column).cast(pl.String).str.strip_chars().alias("value"))
        .filter(~normalise_text_expr(pl.col("value")).is_in(list(exclude)).fill_null(False))
        .group_by("value")
        .len()
        .sort(["len", "value"], descending=[True, False], nulls_last=True)
    )
    shown = [f"{v!r} ({n})" for v, n in counts.head(top).iter_rows()]
    more = counts.height - top
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "") if shown else "none"


def require_single(
    frame: pl.DataFrame,
    column: str,
    *,
    where: str,
    option: str,
    what: str,
    ignore: Sequence[str] = ("", "statewide"),
) -> None:
    """Refuse rows that mix several values of ``column`` (districts of an office, parties of a
    primary) when the user did not choose one; ``ignore`` values (normalised) do not count."""
    values = (
        frame.select(normalise_text_expr(pl.col(column)).alias("v"))
        .drop_nulls()
        .filter(~pl.col("v").is_in(list(ignore)))
        .unique()
    )
    if values.height > 1:
        raise InputError(
            f"the contest mixes {values.height} {what}s",
            path=where,
            column=column,
            hint=f"{what}s (rows): {value_listing(frame, column)}; pass --option {option}=VALUE "
            f"(or {option}=all to import them together)",
        )


def select_district_and_party(
    frame: pl.DataFrame,
    options: Mapping[str, str],
    *,
    office: str,
    district_column: str | None,
    party_column: str | None,
    where: str,
    filters: list[str],
) -> pl.DataFrame:
    """The rows of the contest that the ``district`` and ``party`` options choose.

    Each choice is added to ``filters``. Without a district option the rows of an office other
    than president must hold one district: presidential rows may carry congressional districts
    (Maine, Nebraska), one contest all the same, but other offices with several districts are
    several contests. A party option needs a party column (``None``: the file has none).
    """
    district = options.get("district")
    if district_column is not None:
        if district is not None and not option_all(district):
            frame = select_rows(
                frame,
                district_column,
                district,
                where=where,
                option="district",
                what="district",
                compare="district",
            )
            filters.append(f"district = {district!r}")
        elif district is None and office_kind(office) != "presidential":
            require_single(frame, district_column, where=where, option="district", what="district")
    party = options.get("party")
    if party is not None and not option_all(party):
        if party_column is None:
            raise ColumnError(
                "option party given but the file has no party column",
                path=where,
                hint="drop --option party",
            )
        frame = select_rows(frame, party_column, party, where=where, option="party", what="party")
        filters.append(f"party = {party!r}")
    return frame


def option_slugs(options: Mapping[str, str]) -> list[str]:
    """The election-id parts of a chosen district and party (``district-3``, ``rep``)."""
    parts = []
    district = options.get("district")
    if district and not option_all(district):
        parts.append(f"district-{district.strip().lower()}")
    party = options.get("party")
    if party and not option_all(party):
        parts.append(party.strip().lower())
    return parts


def us_general_election_date(year: int) -> str:
    """The US general election day: the Tuesday after the first Monday of November."""
    first = dt.date(year, 11, 1)
    monday = first + dt.timedelta(days=(0 - first.weekday()) % 7)
    return (monday + dt.timedelta(days=1)).isoformat()


def office_kind(office: str) -> str:
    """``presidential``, ``legislative``, ``referendum`` or ``other`` for an office name."""
    text = _normalise_office(office)
    if re.search(r"\bpresident", text) and "vice" not in text:
        return "presidential"
    if re.search(r"senate|house|assembly|representative|congress|legislat|delegate", text):
        return "legislative"
    if re.search(r"question|proposition|amendment|referend|measure|initiative|issue", text):
        return "referendum"
    return "other"


def office_slug(office: str) -> str:
    """A slug for ids: ``"US President"`` -> ``"president"``, ``"U.S. House"`` -> ``"us-house"``."""
    slug = slugify(office.replace(".", ""))
    return "president" if slug in {"us-president", "president-of-the-united-states"} else slug


@dataclass(frozen=True)
class Tally:
    """The wide table built by :func:`tally` and what was decided on the way.

    ``stations`` has ``station_id``, the carried attribute columns, one column per candidate (in
    the order of ``candidates``), ``valid``, ``invalid`` and ``is_unpublished``, one row per
    station in order of first appearance in the source. ``definitions`` are texts for
    ``meta.definitions``; ``clipped`` maps a candidate column to the votes removed by setting
    negative net counts to 0.
    """

    stations: pl.DataFrame
    candidates: tuple[Candidate, ...]
    definitions: Mapping[str, str]
    clipped: Mapping[str, int]


def _most_frequent(counts: pl.DataFrame, value: str, alias: str) -> pl.DataFrame:
    """Per identity, the ``value`` on most rows (ties: the smallest), from a count table."""
    return (
        counts.filter(pl.col(value).is_not_null())
        .group_by("identity", value)
        .agg(pl.col("_rows").sum())
        .sort(["identity", "_rows", value], descending=[False, True, False], nulls_last=True)
        .group_by("identity", maintain_order=True)
        .agg(pl.col(value).first().alias(alias))
    )


def _unique_columns(names: Sequence[tuple[str, str]], taken: set[str]) -> list[str]:
    """Column names for (display name, identity) pairs: display names, made unique."""
    result: list[str] = []
    seen = {t.casefold() for t in taken}
    for display, identity in names:
        candidate = display
        if candidate.casefold() in seen or candidate in RESERVED_COLUMNS:
            candidate = f"{display} ({identity})"
        number = 2
        base = candidate
        while candidate.casefold() in seen or candidate in RESERVED_COLUMNS:
            candidate = f"{base} #{number}"
            number += 1
        seen.add(candidate.casefold())
        result.append(candidate)
    return result


_INVALID_ROLES = ("over", "under", "over_under")
#: Up to this many columns the per-station sums are one group-by over one-hot columns (fastest
#: for the usual handful of candidates); beyond it, sums per (station, column) are scattered
#: into place, which keeps memory flat when every write-in gets a column.
ONE_HOT_LIMIT = 32


def _station_sums(
    coded: pl.DataFrame, attributes: Sequence[str], slots: Sequence[int], *, candidate_slots: int
) -> pl.DataFrame:
    """Per station (in order of first appearance): ``station_id``, ``_first_row``, the
    attributes, ``__v{slot}`` (sum of the votes coded ``slot``, null where the station has no
    number for it) and ``_published`` (some candidate slot has a number)."""
    candidate = [f"__v{i}" for i in slots if i < candidate_slots]
    if len(slots) <= ONE_HOT_LIMIT:
        onehot = coded.select(
            "station_id",
            "_row",
            *attributes,
            *[pl.when(pl.col("_code") == i).then(pl.col("votes")).alias(f"__v{i}") for i in slots],
        )
        return (
            onehot.lazy()
            .group_by("station_id")
            .agg(
                pl.col("_row").min().alias("_first_row"),
                *[pl.col(a).first(ignore_nulls=True).alias(a) for a in attributes],
                *[pl.col(f"__v{i}").sum().alias(f"__v{i}") for i in slots],
                *[pl.col(f"__v{i}").count().alias(f"__n{i}") for i in slots],
            )
            .sort("_first_row")
            .with_columns(
                # A column with no number from the source stays null (never a made-up 0).
                *[
                    pl.when(pl.col(f"__n{i}") > 0).then(pl.col(f"__v{i}")).alias(f"__v{i}")
                    for i in slots
                ],
                (
                    pl.sum_horizontal([pl.col(f"__n{i}") for i in slots if i < candidate_slots]) > 0
                    if candidate
                    else pl.lit(False)
                ).alias("_published"),
            )
            .drop([f"__n{i}" for i in slots])
            .collect()
        )
    base = (
        coded.group_by("station_id")
        .agg(
            pl.col("_row").min().alias("_first_row"),
            *[pl.col(a).first(ignore_nulls=True).alias(a) for a in attributes],
        )
        .sort("_first_row")
        .with_row_index("_station")
    )
    cells = (
        coded.filter(pl.col("_code").is_not_null())
        .join(base.select("station_id", "_station"), on="station_id", how="left")
        .group_by("_station", "_code")
        .agg(
            pl.when(pl.col("votes").count() > 0).then(pl.col("votes").sum()).alias("votes"),
        )
    )
    parts = cells.partition_by("_code", as_dict=True, include_key=False)
    size = base.height
    columns: list[pl.Series] = []
    for i in slots:
        column = pl.repeat(None, size, dtype=pl.Int64, eager=True).alias(f"__v{i}")
        part = parts.get((i,))
        if part is not None and part.height:
            column = column.scatter(part["_station"], part["votes"])
        columns.append(column)
    table = base.drop("_station").with_columns(columns)
    return table.with_columns(
        (
            pl.any_horizontal([pl.col(c).is_not_null() for c in candidate])
            if candidate
            else pl.lit(False)
        ).alias("_published")
    )


def tally(
    rows: pl.DataFrame,
    *,
    where: str,
    attributes: Sequence[str],
    min_share: float = 0.0,
    min_votes: float = 0.0,
    negative: str = "keep",
    votes_column: str = "votes",
) -> Tally:
    """Pivot long rows into one row per station with one column per candidate.

    ``rows`` has the columns ``station_id``, ``_row`` (line in the source), ``identity``
    (normalised candidate key, may be null), ``name`` (spelling as in the source), ``party``,
    ``writein`` (bool), ``role`` (see :func:`row_role_expr`), ``votes`` (signed ``Int64``, null
    where the source cell is empty) and the ``attributes`` to carry (first non-null value per
    station).

    Candidate identities whose total is at least ``min_votes`` and at least ``min_share`` of all
    candidate votes get their own column, named by their most frequent spelling; the others go to
    :data:`WRITE_INS` (write-in rows and write-in pseudo-identities) or :data:`OTHER`. Negative
    net counts are kept (``negative="keep"``: the data model accepts them on pseudo-stations
    such as signed adjustment rows, and refuses them on real stations), set to 0
    (``negative="clip"``, reported in ``clipped``) or refused (``negative="error"``, naming the
    first negative source row).
    """
    if negative not in {"keep", "clip", "error"}:
        raise PollwatchError(
            f"option negative={negative!r} is not 'keep', 'clip' or 'error'",
            hint="negative=keep (default), clip or error",
        )
    if negative == "error":
        bad = rows.filter(pl.col("votes") < 0)
        if bad.height:
            first = bad.sort("_row").row(0, named=True)
            raise CountError(
                f"negative count {first['votes']}",
                path=where,
                row=int(first["_row"]),
                column=votes_column,
                hint="signed adjustment rows: use --option negative=clip to set negative net "
                "counts to 0 (reported in the election's definitions)",
            )
    is_candidate = pl.col("role") == "candidate"
    if rows.filter(is_candidate).height == 0:
        raise InputError(
            "the contest has no candidate rows",
            path=where,
            hint="every row of the chosen contest is a total, over- or under-vote line; check "
            "the file or choose another office",
        )
    # One small table of (identity, spelling, party, write-in flag) with row counts and votes:
    # every decision about candidates is taken on it, not on the (possibly million) rows.
    counts = (
        rows.filter(is_candidate)
        .group_by("identity", "name", "party", "writein")
        .agg(pl.len().alias("_rows"), pl.col("votes").sum().alias("_votes"))
        .with_columns(
            pl.when(pl.col("identity").is_null())
            .then(pl.lit("writein"))
            .when(pl.col("identity").str.contains(_WRITE_IN_IDENTITY))
            .then(pl.lit("writein"))
            .when(pl.col("identity").str.contains(_OTHER_IDENTITY))
            .then(pl.lit("other"))
            .otherwise(pl.lit("person"))
            .alias("_kind")
        )
    )
    grand = int(counts["_votes"].sum() or 0)
    threshold = max(float(min_votes), float(min_share) * grand)
    persons = counts.filter(pl.col("_kind") == "person")
    totals = persons.group_by("identity").agg(pl.col("_votes").sum().alias("_total"))
    kept = (
        totals.filter(pl.col("_total") >= threshold)
        .join(_most_frequent(persons, "name", "_display"), on="identity", how="left")
        .join(_most_frequent(persons, "party", "_party"), on="identity", how="left")
        .with_columns(pl.coalesce("_display", "identity").alias("_display"))
        .sort(["_total", "_display", "identity"], descending=[True, False, False])
    )
    columns = _unique_columns(
        [(str(d), str(i)) for d, i in kept.select("_display", "identity").iter_rows()],
        {OTHER, WRITE_INS},
    )
    kept = kept.with_columns(pl.Series("_column", columns, dtype=pl.String))
    assignment = (
        counts.select("identity", "writein", "_kind")
        .unique()
        .join(kept.select("identity", "_column"), on="identity", how="left", nulls_equal=True)
        .with_columns(
            pl.when(pl.col("_column").is_not_null())
            .then(pl.col("_column"))
            .when((pl.col("_kind") == "writein") | pl.col("writein"))
            .then(pl.lit(WRITE_INS))
            .otherwise(pl.lit(OTHER))
            .alias("_column")
        )
    )
    used = set(assignment["_column"].unique().to_list())
    candidates = [
        Candidate(name=c, column=c, party=p)
        for c, p in kept.select("_column", "_party").iter_rows()
    ]
    candidates += [Candidate(name=b, column=b) for b in (OTHER, WRITE_INS) if b in used]
    ordered = [c.column for c in candidates]
    codes = {column: i for i, column in enumerate(ordered)}
    invalid_code = len(ordered)
    code_table = assignment.select(
        "identity",
        "writein",
        pl.col("_column")
        .replace_strict(codes, return_dtype=pl.Int32)
        .cast(pl.Int32)
        .alias("_code"),
    ).with_columns(pl.lit("candidate").alias("role"))

    # Each row gets the code of its column (or of the invalid column, or none for total lines);
    # one-hot columns then make the per-station sums one group-by over stations.
    coded = rows.join(
        code_table,
        on=["identity", "writein", "role"],
        how="left",
        nulls_equal=True,
        maintain_order="left",
    ).with_columns(
        pl.when(pl.col("role").is_in(list(_INVALID_ROLES)))
        .then(pl.lit(invalid_code, dtype=pl.Int32))
        .otherwise(pl.col("_code"))
        .alias("_code")
    )
    slots = [*range(len(ordered)), invalid_code]
    table = _station_sums(coded, attributes, slots, candidate_slots=len(ordered))
    vote_columns = [f"__v{i}" for i in range(len(ordered))]

    clipped: dict[str, int] = {}
    definitions: dict[str, str] = {}
    if vote_columns and negative == "clip":
        negatives = table.select(
            [pl.col(c).filter(pl.col(c) < 0).sum().alias(c) for c in vote_columns]
            + [(pl.col(c) < 0).sum().alias(f"{c}:n") for c in vote_columns]
        ).row(0, named=True)
        cells_clipped = sum(int(negatives[f"{c}:n"] or 0) for c in vote_columns)
        if cells_clipped:
            clipped = {
                col: int(negatives[f"__v{codes[col]}"])
                for col in ordered
                if negatives[f"__v{codes[col]}"]
            }
            table = table.with_columns(
                pl.when(pl.col(c) < 0).then(0).otherwise(pl.col(c)).alias(c) for c in vote_columns
            )
            detail = ", ".join(f"{c} {v:+d}" for c, v in clipped.items())
            definitions["negative_votes"] = (
                f"{cells_clipped} station cell(s) had a negative net count (signed adjustment "
                f"rows such as Michigan's 'Statistical Adjustments'); set to 0 because counts "
                f"are non-negative in the data model, so candidate totals exceed the file's by "
                f"the votes removed: {detail}"
            )
    invalid = f"__v{invalid_code}"
    negative_invalid = table.filter(pl.col(invalid) < 0).height if negative == "clip" else 0
    if negative_invalid:
        table = table.with_columns(
            pl.when(pl.col(invalid) < 0).then(0).otherwise(pl.col(invalid)).alias(invalid)
        )
        definitions["negative_invalid"] = (
            f"{negative_invalid} station(s) had negative net over/under votes; set to 0"
        )
    published = pl.col("_published")
    valid = pl.sum_horizontal([pl.col(c) for c in vote_columns]) if vote_columns else pl.lit(0)
    table = table.select(
        "station_id",
        *attributes,
        *[pl.col(f"__v{codes[c]}").cast(pl.Int64).alias(c) for c in ordered],
        pl.when(published).then(valid).otherwise(None).cast(pl.Int64).alias("valid"),
        pl.col(invalid).cast(pl.Int64).alias("invalid"),
        (~published).alias("is_unpublished"),
    )

    totals_rows = rows.filter(pl.col("role") == "total").height
    if totals_rows:
        definitions["total_rows"] = (
            f"{totals_rows} row(s) whose candidate is a total line ('Total', 'Total Votes', "
            f"'Ballots Cast' ...) are not candidates and are left out of the sums"
        )
    return Tally(
        stations=table,
        candidates=tuple(candidates),
        definitions=definitions,
        clipped=clipped,
    )


def with_lookup(frame: pl.DataFrame, keys: Sequence[str], exprs: Sequence[pl.Expr]) -> pl.DataFrame:
    """``frame`` with ``exprs`` (aliased, over ``keys`` only) computed once per distinct key.

    Long files repeat a few thousand candidate spellings over a million rows: evaluating
    regexes on the distinct values and joining back is an order of magnitude faster.
    """
    if not keys:
        return frame.with_columns(exprs)
    lookup = frame.select(keys).unique().with_columns(exprs)
    return frame.join(lookup, on=list(keys), how="left", nulls_equal=True, maintain_order="left")


def year_from_name(name: str) -> int | None:
    """The first stand-alone 19xx/20xx number in a file name, if any."""
    match = re.search(r"(?<!\d)(19\d{2}|20\d{2})(?!\d)", name)
    return int(match.group(1)) if match else None
