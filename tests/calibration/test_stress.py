"""Stress tests across methods: planted manipulation at 0-90 % of stations, estimated back.

Each case of :data:`pollwatch.calibration.stress.STRESS_CASES` is run on one simulated
election of 3,000 stations (one region) per share manipulated, 0 % being the clean twin. The
bounds come from the spread over seeds 0-19 (no salt) measured with ``pollwatch
calibrate-stress --seed 0 ... --seed 19`` and shown in docs/stress-tests.md; each is at least
the observed range widened by a margin, so the tests also pass under ``--seed-salt 1`` and
``--seed-salt 2``. Two cases do not track, for reasons documented in docs/stress-tests.md;
they are strict xfails, so that a change that makes them track is noticed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from pollwatch.calibration.stress import (
    STRESS_CASES,
    STRESS_SHARES,
    StressCase,
    StressResult,
    run_stress,
)
from pollwatch.errors import PollwatchError

STATIONS = 3000


@dataclass(frozen=True)
class Bounds:
    """What a case must do on one seed.

    ``clean``: the clean twin's estimate, in absolute value, at most this fraction of the
    amount planted at 10 %; ``ratios``: share -> (lowest, highest) estimate / planted;
    ``monotone``: shares (0 included) over which the estimate strictly rises.
    """

    clean: float
    ratios: dict[float, tuple[float, float]]
    monotone: tuple[float, ...]


#: case key -> bounds; the comment gives the range over seeds 0-19 (docs/stress-tests.md)
BOUNDS: dict[str, Bounds] = {
    # clean twin 0.03-0.35 of the 10 % amount; ratios 0.82-1.16 at 10-60 %; at 90 % 0.18-0.37:
    # the clean peak is a shoulder without a maximum (the documented limit of the method, see
    # docs/methods/shpilkin.md), so 90 % is bounded apart and left out of the monotone run.
    "shpilkin/incremental-stuffing": Bounds(
        clean=0.5,
        ratios={0.1: (0.67, 1.5), 0.3: (0.67, 1.5), 0.6: (0.67, 1.5), 0.9: (0.1, 0.5)},
        monotone=(0.0, 0.1, 0.3, 0.6),
    ),
    # clean twin 0.01-0.07 of the 10 % amount; ratios 1.12-1.37: each moved vote counts twice
    # against the clean ratio (by design)
    "shpilkin/extreme-stuffing": Bounds(
        clean=0.15,
        ratios={s: (1.0, 1.6) for s in STRESS_SHARES[1:]},
        monotone=STRESS_SHARES,
    ),
    # clean f_i + f_e 0-0.085; 10 %: 0.03-0.21 (not apart from the clean twin); 30-60 %:
    # 1.06-1.40; 90 %: 0.36-1.0 (the clean tenth alone anchors the fit)
    "klimek-fraud-model/incremental-stuffing": Bounds(
        clean=1.5,
        ratios={0.1: (0.0, 2.6), 0.3: (0.67, 1.6), 0.6: (0.67, 1.6), 0.9: (0.3, 1.12)},
        monotone=(0.0, 0.3, 0.6),
    ),
    # 10-60 %: 1.31-1.81 (the model's extreme stations spread over 93-100 % turnout and
    # over-fill the one spiked bin); 90 %: 1.0, f_e capped at all stations
    "klimek-fraud-model/extreme-stuffing": Bounds(
        clean=1.5,
        ratios={0.1: (1.0, 2.2), 0.3: (1.0, 2.0), 0.6: (1.0, 1.7), 0.9: (1.0, 1.12)},
        monotone=(0.0, 0.1, 0.3, 0.6),
    ),
    # clean 0 every time (the excess is max(0, ...)); 0.92-1.00 at 10-90 %
    "klimek-fingerprint/extreme-stuffing": Bounds(
        clean=0.05,
        ratios={s: (0.8, 1.05) for s in STRESS_SHARES[1:]},
        monotone=STRESS_SHARES,
    ),
    # clean -27 to 40 stations (planted at 10 %: 300); 0.69-0.93 at 10 %, 0.75-0.81 beyond:
    # a fifth of the rounded stations would have hit a whole percent by chance anyway
    "integer-percentages/round-percentages": Bounds(
        clean=0.25,
        ratios={0.1: (0.55, 1.05), 0.3: (0.65, 0.9), 0.6: (0.7, 0.86), 0.9: (0.7, 0.86)},
        monotone=STRESS_SHARES,
    ),
    # 20 resamples (as in the stress cases): clean 0.010-0.046; 10 %: 0.72-1.01; 30-90 %:
    # 0.72-0.82 (a station rounded up to a multiple of 5 % that the smooth null also puts
    # there by chance is not an excess)
    "rozenas-spikes/round-percentages": Bounds(
        clean=0.7,
        ratios={0.1: (0.5, 1.25), 0.3: (0.6, 0.95), 0.6: (0.6, 0.95), 0.9: (0.6, 0.95)},
        monotone=STRESS_SHARES,
    ),
}

#: cases that do not track, with the reason (docs/stress-tests.md, "What does not track")
NOT_TRACKING: dict[str, str] = {
    "integer-percentages/extreme-stuffing": "stuffed stations sit at exactly 100 % turnout, "
    "which the binomial null centred on each station's own turnout reproduces with "
    "probability 1: the excess stays 0 at every share",
    "rozenas-spikes/extreme-stuffing": "a mixture component at a share of 1 makes the "
    "resampled null spike at 100 % too: the estimated fraction stays at the clean level",
}


def cases() -> list[object]:
    out: list[object] = []
    for case in STRESS_CASES:
        if case.key in NOT_TRACKING:
            mark = pytest.mark.xfail(reason=NOT_TRACKING[case.key], strict=True)
            out.append(pytest.param(case, id=case.key, marks=mark))
        else:
            out.append(pytest.param(case, id=case.key))
    return out


def test_every_case_has_bounds_or_a_documented_reason() -> None:
    keys = {case.key for case in STRESS_CASES}
    assert keys == set(BOUNDS) | set(NOT_TRACKING)
    assert not set(BOUNDS) & set(NOT_TRACKING)
    # every estimating method is in the table
    assert {case.method for case in STRESS_CASES} == {
        "shpilkin",
        "klimek-fraud-model",
        "klimek-fingerprint",
        "integer-percentages",
        "rozenas-spikes",
    }


def tracking_bounds(case: StressCase) -> Bounds:
    """The bounds of a tracking case; a case that does not track is held to the weakest
    tracking there is: at least half the planted amount from 30 % on, and rising."""
    if case.key in BOUNDS:
        return BOUNDS[case.key]
    return Bounds(clean=0.5, ratios={s: (0.5, 2.0) for s in (0.3, 0.6, 0.9)}, monotone=(0.0, 0.3))


@pytest.mark.parametrize("case", cases())
def test_the_estimate_tracks_what_was_planted(case: StressCase) -> None:
    result = run_stress(stations=STATIONS, seeds=(0,), cases=(case,))
    bounds = tracking_bounds(case)
    points = {share: result.of(case, share)[0] for share in STRESS_SHARES}
    clean = points[0.0]
    assert clean.planted == 0 and clean.estimate is not None
    smallest = points[0.1].planted
    assert smallest > 0
    # the clean twin: near zero, relative to the smallest planted amount
    assert abs(clean.estimate) <= bounds.clean * smallest, (clean.estimate, smallest)
    ratios = {share: points[share].ratio for share in STRESS_SHARES[1:]}
    for share, (low, high) in bounds.ratios.items():
        ratio = ratios[share]
        assert ratio is not None and low <= ratio <= high, (share, ratios)
    rising = [points[share].estimate or 0.0 for share in bounds.monotone]
    assert all(a < b for a, b in itertools.pairwise(rising)), rising


def test_planted_amounts_follow_the_labels() -> None:
    """The planted column is what the injectors' labels say, share for share."""
    case = next(c for c in STRESS_CASES if c.key == "klimek-fingerprint/extreme-stuffing")
    result = run_stress(stations=500, seeds=(4,), cases=(case,))
    assert [p.planted for p in result.points] == [0.0, 50.0, 150.0, 300.0, 450.0]
    assert result.points[0].ratio is None
    rows = result.rows()
    assert [r["share"] for r in rows] == list(STRESS_SHARES)
    assert rows[1]["planted"] == 50.0 and rows[1]["seeds"] == 1
    text = result.markdown()
    assert text.count("\n") == 2 + len(STRESS_SHARES)
    assert (
        "| `klimek-fingerprint` | `extreme-stuffing` (0.9) | stations manipulated | 10 % | 50 |"
        in (text)
    )
    again = run_stress(stations=500, seeds=(4,), cases=(case,))
    assert again == result  # seed-determined
    assert isinstance(result, StressResult) and result.to_dict()["format"] == "pollwatch-stress/1"


def test_bad_stress_settings_are_refused() -> None:
    with pytest.raises(PollwatchError, match="stations=10"):
        run_stress(stations=10)
    with pytest.raises(PollwatchError, match="no seeds"):
        run_stress(seeds=())
    with pytest.raises(PollwatchError, match="quantity='ballots'"):
        StressCase("shpilkin", "extreme-stuffing", 0.5, "ballots")
