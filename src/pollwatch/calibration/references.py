"""Clean real elections cut into test units, for false-positive rates on real data.

One election is one sample: a method run once on Poland 2020 says little about how often it
flags a clean election. The calibration harness therefore runs each method on *units* of the
clean references: each region (voivodeship, Land, state) with at least ``min_stations``
stations, as an election of its own, and ``subsamples`` random subsamples of the whole
election's stations (seeded), and counts every unit as one test.

The references (:data:`REFERENCES`, described in :data:`REFERENCE_DESCRIPTIONS`) are elections
without credible reports of count manipulation, run by independent commissions with observers:

* ``poland-2020-r1``, ``poland-2020-r2``: presidential election, rounds 1 and 2, per obwód
  (PKW), datasets of the same names; units: the 16 voivodeships;
* ``germany-ew2024``: European Parliament election 2024, per Wahlbezirk, dataset
  ``germany-ew2024``; units: the 16 Länder;
* ``canada-2011``: federal election 2011, per poll, the QSS/Rozenas reference file
  ``qss_rozenas_fraud_refs/canada2011.csv.gz`` (read by
  :func:`pollwatch.forensics.spikes.read_qss_reference`); the file has no regions, so its units
  are subsamples only;
* ``us-2016``: presidential election 2016, per precinct (MEDSL), dataset
  ``us-2016-president-medsl``; units: the states; no registered voters, so turnout methods
  are not applicable (the harness skips them).

Files are found through the datasets machinery (:func:`pollwatch.results.datasets.fetch`:
data mirror, then cache, then download where allowed) and checked against their SHA-256;
each reference is read once per :func:`reference_units` call. With ``whole=True`` it also
yields the whole election as a unit of kind ``"whole"``, first for its reference: the harness
runs each method on it once and reports the numbers, without counting it as a test.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pollwatch.errors import DatasetError, PollwatchError
from pollwatch.forensics.spikes import read_qss_reference
from pollwatch.results.datasets import import_dataset, verify_sha256
from pollwatch.results.model import Election, make_election
from pollwatch.settings import Settings

__all__ = [
    "REFERENCES",
    "REFERENCE_DESCRIPTIONS",
    "ReferenceUnit",
    "eligible",
    "load_reference",
    "reference_units",
    "sub_election",
]

#: reference id -> one line: the election, its unit, and why it counts as clean.
REFERENCE_DESCRIPTIONS: Mapping[str, str] = {
    "poland-2020-r1": "Poland, presidential election 2020, round 1 (PKW, per obwód); units: "
    "voivodeships; clean: independent commissions with party members, OSCE/ODIHR found no "
    "count manipulation",
    "poland-2020-r2": "Poland, presidential election 2020, round 2 (PKW, per obwód); units: "
    "voivodeships; clean: as round 1",
    "germany-ew2024": "Germany, European Parliament election 2024 (per Wahlbezirk); units: "
    "Länder (postal districts are pseudo-stations); clean: public counts by volunteer boards",
    "canada-2011": "Canada, federal election 2011 (per poll, QSS/Rozenas file); units: "
    "subsamples only (the file has no provinces); clean: the clean case of Rozenas (2017)",
    "us-2016": "United States, presidential election 2016 (MEDSL, per precinct); units: "
    "states; no registered voters (vote-share methods only); clean: audited state counts",
}

#: The reference ids, in the order :func:`reference_units` yields them.
REFERENCES: tuple[str, ...] = tuple(REFERENCE_DESCRIPTIONS)

#: reference id -> registered dataset name (see ``pollwatch.results.datasets``).
_DATASETS: Mapping[str, str] = {
    "poland-2020-r1": "poland-2020-r1",
    "poland-2020-r2": "poland-2020-r2",
    "germany-ew2024": "germany-ew2024",
    "us-2016": "us-2016-president-medsl",
}


@dataclass(frozen=True)
class _MirrorFile:
    """A reference file found only in a data mirror (no dataset entry, no importer)."""

    folder: str
    filename: str
    sha256: str


_MIRROR_FILES: Mapping[str, _MirrorFile] = {
    "canada-2011": _MirrorFile(
        "qss_rozenas_fraud_refs",
        "canada2011.csv.gz",
        "ce081c9dfc1d3b5ce50a0b3250902de433a088380f80c6277d70809f3c9e867b",
    ),
}


@dataclass(frozen=True)
class ReferenceUnit:
    """One test unit of a clean reference: a region or a random subsample, as an election.

    ``reference`` is the reference id (e.g. ``"poland-2020-r1"``), ``kind`` is ``"region"``,
    ``"subsample"`` or ``"whole"`` (the whole election, not a test), ``name`` the region's name,
    ``"subsample 07 (25% of stations)"`` or ``"whole election"``.
    """

    reference: str
    kind: str
    name: str
    election: Election


def _check_reference(reference: str) -> None:
    if reference not in REFERENCE_DESCRIPTIONS:
        raise PollwatchError(
            f"unknown reference {reference!r}",
            hint=f"known references: {', '.join(REFERENCES)}",
        )


def _read_mirror_file(reference: str, entry: _MirrorFile, settings: Settings) -> Election:
    relative = f"{entry.folder}/{entry.filename}"
    if settings.data_mirror is None:
        raise DatasetError(
            f"reference {reference!r}: {relative} is found only in a pollwatch data mirror, "
            "and no data mirror is set (POLLWATCH_DATA_MIRROR)",
            hint=f"set POLLWATCH_DATA_MIRROR to a folder holding {relative}",
        )
    path = settings.data_mirror / entry.folder / entry.filename
    if not path.is_file():
        raise DatasetError(
            f"reference {reference!r}: {relative} is not in the data mirror "
            f"{settings.data_mirror} (POLLWATCH_DATA_MIRROR)",
            hint="complete the mirror, or leave this reference out",
        )
    verify_sha256(
        path,
        entry.sha256,
        f"reference {reference!r}",
        hint="the file is damaged or a different version; replace it in the mirror",
    )
    return read_qss_reference(path).replace_meta(id=reference)


def load_reference(settings: Settings, reference: str) -> Election:
    """The whole reference election, with the reference id as its id.

    Read through :func:`~pollwatch.results.datasets.import_dataset` (mirror, cache, download as
    ``settings`` allow); a file missing from the mirror raises :class:`DatasetError` naming
    ``POLLWATCH_DATA_MIRROR``.
    """
    _check_reference(reference)
    if reference in _MIRROR_FILES:
        return _read_mirror_file(reference, _MIRROR_FILES[reference], settings)
    return import_dataset(_DATASETS[reference], settings).replace_meta(id=reference)


def eligible() -> pl.Expr:
    """Stations the methods use: not pseudo, cancelled or unpublished (true = keep)."""
    return ~pl.col("is_pseudo_station") & ~pl.col("is_cancelled") & ~pl.col("is_unpublished")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "unnamed"


def sub_election(
    election: Election,
    stations: pl.Expr | Sequence[str],
    *,
    suffix: str,
    description: str = "",
) -> Election:
    """The election restricted to some stations, keeping its metadata.

    ``stations`` is a polars filter expression (true = keep) or a sequence of station ids.
    The id becomes ``<id>.<suffix>`` (``suffix`` made of lower-case letters, digits and
    ``-``, so the unit can be stored); ``description`` (default: the suffix) is recorded in
    ``meta.definitions["subset"]``. Everything else (candidates, definitions, source) is
    kept; the leader is recomputed from the subset, as for any election.
    """
    if isinstance(stations, pl.Expr):
        frame = election.stations.filter(stations.fill_null(False))
    else:
        wanted = pl.Series("station_id", list(stations), dtype=pl.String)
        frame = election.stations.filter(pl.col("station_id").is_in(wanted.implode()))
        missing = len(set(wanted.to_list())) - frame.height
        if missing:
            raise PollwatchError(
                f"election {election.id!r}: {missing} of the requested stations do not exist",
                hint="give station ids of this election",
            )
    if frame.height == 0:
        raise PollwatchError(
            f"election {election.id!r}: the subset {suffix!r} has no station",
            hint="choose a non-empty subset",
        )
    definitions = {**dict(election.meta.definitions), "subset": description or suffix}
    meta = election.replace_meta(id=f"{election.id}.{_slug(suffix)}", definitions=definitions).meta
    return make_election(meta, frame)


def _units_of(
    reference: str,
    election: Election,
    *,
    subsamples: int,
    subsample_fraction: float,
    min_stations: int,
    seed: int,
) -> Iterator[ReferenceUnit]:
    usable = election.stations.filter(eligible())
    counts = (
        usable.filter(pl.col("region").is_not_null())
        .group_by("region")
        .len()
        .filter(pl.col("len") >= min_stations)
        .sort("region")
    )
    for region in counts["region"].to_list():
        yield ReferenceUnit(
            reference=reference,
            kind="region",
            name=region,
            election=sub_election(
                election,
                pl.col("region") == region,
                suffix=f"region-{_slug(region)}",
                description=f"region {region}",
            ),
        )
    ids = usable["station_id"].sort().to_numpy()
    size = round(subsample_fraction * ids.size)
    if not subsamples or size < 1:
        return
    # A stream per reference, so adding or dropping a reference leaves the others unchanged.
    rng = np.random.default_rng([seed, zlib.crc32(reference.encode("utf-8"))])
    width = max(2, len(str(subsamples)))
    percent = f"{100 * subsample_fraction:g}%"
    for index in range(1, subsamples + 1):
        chosen = ids[np.sort(rng.choice(ids.size, size, replace=False))]
        label = f"subsample {index:0{width}d} ({percent} of stations)"
        yield ReferenceUnit(
            reference=reference,
            kind="subsample",
            name=label,
            election=sub_election(
                election,
                pl.col("station_id").is_in(pl.Series(chosen.tolist(), dtype=pl.String).implode()),
                suffix=f"subsample-{index:0{width}d}",
                description=f"{label}, seed {seed}",
            ),
        )


def reference_units(
    settings: Settings,
    *,
    references: Sequence[str] | None = None,
    subsamples: int = 20,
    subsample_fraction: float = 0.25,
    min_stations: int = 300,
    seed: int = 0,
    whole: bool = False,
) -> Iterator[ReferenceUnit]:
    """The test units of the clean references, reference by reference.

    For each reference (default: all of :data:`REFERENCES`): every region with at least
    ``min_stations`` eligible stations (not pseudo, cancelled or unpublished), sorted by name,
    then ``subsamples`` random subsamples of ``round(subsample_fraction x eligible)`` eligible
    stations drawn without replacement from a generator seeded with ``(seed, crc32(reference
    id))``. With ``whole``, the whole election (as loaded, every station) comes first, as a
    unit of kind ``"whole"``. Each reference is read once per call; a missing file raises
    :class:`~pollwatch.errors.DatasetError` naming ``POLLWATCH_DATA_MIRROR``.
    """
    chosen = tuple(REFERENCES if references is None else references)
    for reference in chosen:
        _check_reference(reference)
    if not 0.0 < subsample_fraction <= 1.0:
        raise PollwatchError(
            f"subsample_fraction={subsample_fraction} is out of range",
            hint="a fraction of the stations, above 0 and at most 1",
        )
    if subsamples < 0 or min_stations < 1:
        raise PollwatchError(
            f"subsamples={subsamples}, min_stations={min_stations}",
            hint="subsamples >= 0 and min_stations >= 1",
        )
    loaded: dict[str, Election] = {}
    for reference in chosen:
        if reference not in loaded:
            loaded[reference] = load_reference(settings, reference)
        if whole:
            yield ReferenceUnit(
                reference=reference,
                kind="whole",
                name="whole election",
                election=loaded[reference],
            )
        yield from _units_of(
            reference,
            loaded[reference],
            subsamples=subsamples,
            subsample_fraction=subsample_fraction,
            min_stations=min_stations,
            seed=seed,
        )
