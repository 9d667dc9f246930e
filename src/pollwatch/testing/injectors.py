"""Checks every manipulation injector must pass (the contract of
:mod:`pollwatch.synthetic.injectors`).

Only labelled stations change; the protocol stays consistent; ``round(share * eligible)``
stations are drawn, the same ones for the same generator state whatever the row order; share 0
changes nothing; out-of-range parameters are refused by name. The checks run on a clean
simulated election of 1,500 stations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import is_dataclass
from functools import partial

import numpy as np
import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.model import RESERVED_COLUMNS, Election, make_election
from pollwatch.synthetic.injectors import INJECTORS, Injector
from pollwatch.testing._checks import Check, Skipped, run_checks
from pollwatch.testing.elections import clean_election

__all__ = ["changed_station_ids", "check_injector", "injector_checks"]


def _election() -> Election:
    return clean_election(3)


def changed_station_ids(before: Election, after: Election) -> set[str]:
    """Ids of the stations whose row differs in any column (same stations, same columns)."""
    left = before.stations.sort("station_id")
    right = after.stations.sort("station_id")
    assert left["station_id"].to_list() == right["station_id"].to_list(), "stations changed"
    assert left.columns == right.columns, "columns changed"
    differs = pl.Series([False] * left.height)
    for column in left.columns:
        differs = differs | left[column].ne_missing(right[column])
    return set(left.filter(differs)["station_id"].to_list())


def _failures(election: Election) -> dict[str, int]:
    return {count.rule: count.failed for count in check_protocols(election).counts}


# --- the checks ----------------------------------------------------------------------------


def check_class_attributes(cls: type[Injector]) -> None:
    """Name, title, reference and docstring said; registered under its name; ranges sane.

    A frozen dataclass; ``magnitude_range`` finite and ordered with ``magnitude_meaning``
    said; ``calibration_magnitudes`` (if set) three increasing magnitudes within the range;
    ``needs`` names station columns; the defaults construct.
    """
    assert isinstance(cls, type) and issubclass(cls, Injector), f"{cls!r} is not an Injector"
    for attribute in ("name", "title", "reference", "magnitude_meaning", "__doc__"):
        value = getattr(cls, attribute, None)
        assert isinstance(value, str) and value.strip(), f"{attribute} is missing or empty"
    registered = [name for name, other in INJECTORS.items() if other is cls]
    for name in registered:
        assert name == cls.name, f"registered as {name!r} but its name is {cls.name!r}"
    if not registered and cls.name in INJECTORS:
        raise AssertionError(f"name {cls.name!r} is registered to another injector")
    assert is_dataclass(cls) and cls.__dataclass_params__.frozen, (  # type: ignore[attr-defined]
        "an injector is a frozen dataclass"
    )
    low, high = cls.magnitude_range
    assert math.isfinite(low) and math.isfinite(high) and low <= high, (
        f"magnitude_range {cls.magnitude_range} is not a finite (low, high)"
    )
    if cls.calibration_magnitudes is not None:
        magnitudes = cls.calibration_magnitudes
        assert len(magnitudes) == 3 and list(magnitudes) == sorted(set(magnitudes)), (
            f"calibration_magnitudes {magnitudes} are not three increasing magnitudes"
        )
        for magnitude in magnitudes:
            assert low <= magnitude <= high, f"calibration magnitude {magnitude} out of range"
            cls(magnitude=magnitude)
    assert isinstance(cls.needs, tuple), f"needs must be a tuple, not {cls.needs!r}"
    unknown = [c for c in cls.needs if c not in RESERVED_COLUMNS]
    assert not unknown, f"needs names columns a station table does not have: {unknown}"
    cls()


def check_only_labelled_stations_change(cls: type[Injector]) -> None:
    """Only labelled stations change, most of them do, and the result says what was planted."""
    election = _election()
    after, labels = cls(share=0.2).apply(election, np.random.default_rng(1))
    changed = changed_station_ids(election, after)
    assert changed, "the injection changed nothing"
    outside = changed - set(labels.stations)
    assert not outside, f"stations changed that are not labelled: {sorted(outside)[:5]}"
    # Most labelled stations really change (the exceptions have nothing to change, e.g. a share
    # already at a whole percent). Over 101 streams (no salt, salts 1-100): round-percentages
    # 0.84-0.93 (mean 0.896, sd 0.019), vote-transfer and invalidate-opponents at least 0.993,
    # the others 1 every time.
    assert len(changed) >= 0.8 * len(labels.stations), (
        f"only {len(changed)} of {len(labels.stations)} labelled stations changed"
    )
    assert list(labels.stations) == sorted(labels.stations), "labels are not sorted"
    assert labels.injector == cls.name, f"labels.injector is {labels.injector!r}"
    assert after.id == f"{election.id}+{cls.name}", f"the election id is {after.id!r}"
    assert any(key.startswith(f"injection:{cls.name}") for key in after.meta.definitions), (
        "the election's definitions do not say what was injected"
    )


def check_protocol_checks_have_no_new_failures(cls: type[Injector]) -> None:
    """Half the stations manipulated, the protocol checks still all pass."""
    election = _election()
    before = _failures(election)
    assert sum(before.values()) == 0, f"the clean election fails protocol checks: {before}"
    after, _ = cls(share=0.5).apply(election, np.random.default_rng(2))
    now = _failures(after)
    assert now == before, f"the injection breaks protocol checks: {now}"


def check_station_count_is_rounded_share_of_eligible(cls: type[Injector]) -> None:
    """``round(share * eligible)`` stations are labelled, all of them eligible."""
    election = _election()
    injector = cls(share=0.137)
    eligible = injector.eligible_station_ids(election)
    assert len(eligible) == election.stations.height, (
        f"{len(eligible)} of {election.stations.height} complete simulated stations eligible"
    )
    _, labels = injector.apply(election, np.random.default_rng(3))
    assert len(labels.stations) == round(0.137 * len(eligible)) == 206, (
        f"{len(labels.stations)} stations labelled, not round(0.137 x {len(eligible)})"
    )
    assert set(labels.stations) <= set(eligible), "labelled stations that are not eligible"


def check_same_seed_same_result_and_row_order_free(cls: type[Injector]) -> None:
    """Same generator state, same result, whatever the row order; another state, others."""
    election = _election()
    injector = cls(share=0.1)
    first, labels_a = injector.apply(election, np.random.default_rng(4))
    second, labels_b = injector.apply(election, np.random.default_rng(4))
    assert labels_a == labels_b, "two runs from the same seed label differently"
    assert first.stations.equals(second.stations), "two runs from the same seed differ"
    shuffled = make_election(election.meta, election.stations.reverse())
    third, labels_c = injector.apply(shuffled, np.random.default_rng(4))
    assert labels_c == labels_a, "the labelled stations depend on the row order"
    assert third.content_digest() == first.content_digest(), "the result depends on row order"
    _, other = injector.apply(election, np.random.default_rng(5))
    assert other.stations != labels_a.stations, "another seed labels the same stations"


def check_share_zero_changes_nothing(cls: type[Injector]) -> None:
    """Share 0: no station labelled, nothing moved, the stations table unchanged."""
    election = _election()
    after, labels = cls(share=0.0).apply(election, np.random.default_rng(6))
    assert labels.stations == (), f"share 0 labels {len(labels.stations)} stations"
    assert labels.ballots_added == labels.votes_moved == 0, "share 0 moves votes"
    assert after.stations.equals(election.stations), "share 0 changes the stations"


def check_out_of_range_parameters_are_named(cls: type[Injector]) -> None:
    """A share outside 0..1 or a magnitude outside its range: a PollwatchError naming it."""
    low, high = cls.magnitude_range
    span = max(high - low, 1.0)
    cases = [("share", value) for value in (-0.01, 1.01, math.nan)]
    cases += [("magnitude", value) for value in (low - 0.1 * span, high + span, 1e9, math.nan)]
    for parameter, value in cases:
        if parameter == "magnitude" and low <= value <= high:
            continue  # 1e9 within a very wide range
        try:
            cls(**{parameter: value})
        except PollwatchError as exc:
            assert parameter in str(exc), f"the error for {parameter}={value} does not name it"
            continue
        raise AssertionError(f"{parameter}={value} was accepted")


#: every injector check, in the order they run
INJECTOR_CHECKS: tuple[Callable[[type[Injector]], None], ...] = (
    check_class_attributes,
    check_only_labelled_stations_change,
    check_protocol_checks_have_no_new_failures,
    check_station_count_is_rounded_share_of_eligible,
    check_same_seed_same_result_and_row_order_free,
    check_share_zero_changes_nothing,
    check_out_of_range_parameters_are_named,
)


def injector_checks(cls: type[Injector]) -> Iterator[Check]:
    """The checks of one injector class, each a named callable (see :class:`Check`)."""
    subject = str(getattr(cls, "name", cls.__name__))
    for function in INJECTOR_CHECKS:
        yield Check(subject, function.__name__.removeprefix("check_"), partial(function, cls))


def check_injector(cls: type[Injector]) -> tuple[Skipped, ...]:
    """Run every injector check on ``cls``: the skipped ones, or AssertionError naming it."""
    return run_checks(injector_checks(cls))
