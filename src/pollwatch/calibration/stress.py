"""Stress tests with ground truth: planted manipulation at 0-90 % of stations, estimated back.

The calibration harness asks how often a method *flags* an election; this module asks whether
an estimating method's number *tracks* what was planted. For each :data:`STRESS_CASES` entry (a
method, an injector from :mod:`pollwatch.synthetic.injectors` at a fixed magnitude, and the
quantity compared) and each share in :data:`STRESS_SHARES`, a clean election is simulated
(:func:`pollwatch.synthetic.simulator.simulate_clean`, one region), the injector is planted at
that share of its stations with :func:`pollwatch.synthetic.planted.plant` (share 0: the
clean twin, nothing planted), and the method is run on it. Each point pairs the **planted**
amount, read from the injector's labels, with the method's **estimate**:

* ``votes``: extra votes for the leader, planted = ballots added + opponents' votes moved
  (the labels' ``ballots_added + votes_moved``); estimate = the method's effect (Shpilkin's
  anomalous votes, Kobak, Shpilkin & Pshenichnikov 2016 / Shpilkin 2009-2011; the Klimek et
  al. 2012 model's moved votes);
* ``share``: fraction of stations manipulated, planted = labelled stations / stations;
  estimate = the statistic ``f_i + f_e`` of the Klimek model, or the effect of the Rozenas
  (2017) test (its estimated fraction of stations with spiked shares);
* ``stations``: stations manipulated, planted = labelled stations; estimate = the effect,
  i.e. the excess of stations over the clean expectation (integer percentages: stations at a
  whole percent beyond the binomial null; the Klimek fingerprint: stations in the
  high-turnout, high-share corner beyond the clean peak's normal).

The estimate need not equal the planted amount: the injectors and the methods define their
quantities differently (an extreme-stuffed station counts each moved vote twice against the
clean ratio; a station rounded to a whole percent may have hit one by chance anyway). What a
method must do is *track*: rise with the planted share, stay within a stated factor of it, and
stay near zero on the clean twin. ``tests/calibration/test_stress.py`` asserts that, per
case, with factors from the spread over seeds; ``docs/stress-tests.md`` shows the table that
``pollwatch calibrate-stress`` prints.

Layer: imports forensics, results, errors and the other calibration modules; never cli or web.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import METHODS, MethodResult, all_methods
from pollwatch.synthetic.injectors import INJECTORS
from pollwatch.synthetic.planted import plant
from pollwatch.synthetic.simulator import simulate_clean

__all__ = [
    "STRESS_CASES",
    "STRESS_SHARES",
    "StressCase",
    "StressPoint",
    "StressResult",
    "run_stress",
    "stress_point",
]

#: shares of the stations manipulated (0: the clean twin)
STRESS_SHARES: tuple[float, ...] = (0.0, 0.1, 0.3, 0.6, 0.9)

_QUANTITIES = {
    "votes": "extra votes for the leader",
    "share": "fraction of stations manipulated",
    "stations": "stations manipulated",
}


@dataclass(frozen=True)
class StressCase:
    """One method against one injector: what is planted and which number estimates it.

    ``quantity`` is ``"votes"``, ``"share"`` or ``"stations"`` (see the module docstring);
    ``estimate`` is ``"effect"`` or ``"statistic"`` of the method's result; ``parameters`` are
    the method's (a seed is added for stochastic methods).
    """

    method: str
    injector: str
    magnitude: float
    quantity: str
    estimate: str = "effect"
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quantity not in _QUANTITIES:
            raise PollwatchError(
                f"stress case {self.method}/{self.injector}: quantity={self.quantity!r}",
                hint=f"use one of {', '.join(_QUANTITIES)}",
            )
        if self.estimate not in ("effect", "statistic"):
            raise PollwatchError(
                f"stress case {self.method}/{self.injector}: estimate={self.estimate!r}",
                hint="use effect or statistic",
            )

    @property
    def key(self) -> str:
        return f"{self.method}/{self.injector}"

    @property
    def meaning(self) -> str:
        return _QUANTITIES[self.quantity]


#: The cross-method table: each estimating method with incremental and extreme stuffing (the
#: integer tests and the Rozenas test look for round numbers, so they get the whole-percent
#: injector and extreme stuffing at magnitude 1, where the leader's share is exactly 100 %).
STRESS_CASES: tuple[StressCase, ...] = (
    StressCase("shpilkin", "incremental-stuffing", 0.3, "votes"),
    StressCase("shpilkin", "extreme-stuffing", 0.5, "votes"),
    StressCase(
        "klimek-fraud-model", "incremental-stuffing", 0.5, "share", "statistic", {"replicates": 0}
    ),
    StressCase(
        "klimek-fraud-model", "extreme-stuffing", 0.9, "share", "statistic", {"replicates": 0}
    ),
    StressCase("klimek-fingerprint", "extreme-stuffing", 0.9, "stations"),
    StressCase("integer-percentages", "round-percentages", 1.0, "stations"),
    StressCase("integer-percentages", "extreme-stuffing", 0.5, "stations"),
    StressCase(
        "rozenas-spikes",
        "round-percentages",
        5.0,
        "share",
        parameters={"replicates": 20, "interval_draws": 20},
    ),
    StressCase(
        "rozenas-spikes",
        "extreme-stuffing",
        1.0,
        "share",
        parameters={"replicates": 20, "interval_draws": 20},
    ),
)


@dataclass(frozen=True)
class StressPoint:
    """One simulated election: the share manipulated, the planted amount and the estimate."""

    method: str
    injector: str
    magnitude: float
    share: float
    seed: int
    stations: int
    planted: float
    estimate: float | None

    @property
    def ratio(self) -> float | None:
        """estimate / planted; None on the clean twin or without an estimate."""
        if self.estimate is None or self.planted == 0:
            return None
        return self.estimate / self.planted


def _estimate(case: StressCase, result: MethodResult) -> float | None:
    value = result.effect if case.estimate == "effect" else result.statistic
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def stress_point(case: StressCase, share: float, *, seed: int, stations: int) -> StressPoint:
    """Simulate, plant ``case.injector`` at ``share`` of the stations, run the method."""
    base = simulate_clean(stations=stations, regions=1, seed=seed, election_id=f"stress-{seed}")
    injectors = (
        [INJECTORS.get(case.injector)(share=share, magnitude=case.magnitude)] if share else []
    )
    planted = plant(base, injectors, seed=seed, election_id=f"stress-{seed}-planted")
    labelled = sum(len(label.stations) for label in planted.labels)
    if case.quantity == "votes":
        amount = float(sum(label.ballots_added + label.votes_moved for label in planted.labels))
    elif case.quantity == "share":
        amount = labelled / len(base)
    else:
        amount = float(labelled)
    all_methods()  # the built-in methods register on first use
    cls = METHODS.get(case.method)
    parameters = dict(case.parameters)
    if cls.stochastic and "seed" in getattr(cls, "__dataclass_fields__", {}):
        parameters["seed"] = seed
    result = cls(**parameters).run(planted.election)
    return StressPoint(
        method=case.method,
        injector=case.injector,
        magnitude=case.magnitude,
        share=share,
        seed=seed,
        stations=len(base),
        planted=amount,
        estimate=_estimate(case, result),
    )


@dataclass(frozen=True)
class StressResult:
    """Every point of a stress run, with the settings that reproduce it."""

    stations: int
    seeds: tuple[int, ...]
    shares: tuple[float, ...]
    cases: tuple[StressCase, ...]
    points: tuple[StressPoint, ...]

    def of(self, case: StressCase, share: float) -> list[StressPoint]:
        """The points of ``case`` at ``share``, one per seed."""
        return [
            p
            for p in self.points
            if p.method == case.method
            and p.injector == case.injector
            and p.magnitude == case.magnitude
            and p.share == share
        ]

    def rows(self) -> list[dict[str, Any]]:
        """Per case and share: mean planted, mean estimate, ratio mean and range over seeds."""
        out: list[dict[str, Any]] = []
        for case in self.cases:
            for share in self.shares:
                points = self.of(case, share)
                estimates = [p.estimate for p in points if p.estimate is not None]
                ratios = [r for p in points if (r := p.ratio) is not None]
                out.append(
                    {
                        "method": case.method,
                        "injector": case.injector,
                        "magnitude": case.magnitude,
                        "quantity": case.quantity,
                        "share": share,
                        "planted": _mean([p.planted for p in points]),
                        "estimate": _mean(estimates),
                        "estimate_min": min(estimates, default=None),
                        "estimate_max": max(estimates, default=None),
                        "ratio": _mean(ratios),
                        "ratio_min": min(ratios, default=None),
                        "ratio_max": max(ratios, default=None),
                        "seeds": len(points),
                    }
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "pollwatch-stress/1",
            "stations": self.stations,
            "seeds": list(self.seeds),
            "shares": list(self.shares),
            "rows": self.rows(),
        }

    def markdown(self) -> str:
        """The table as Markdown: one row per method, injector and share manipulated."""
        lines = [
            "| method | manipulation (magnitude) | compared | manipulated | planted | "
            "estimate (range over seeds) | estimate / planted (range) |",
            "|:--|:--|:--|--:|--:|--:|--:|",
        ]
        for row in self.rows():
            case = next(
                c
                for c in self.cases
                if c.method == row["method"]
                and c.injector == row["injector"]
                and c.magnitude == row["magnitude"]
            )
            ratio = (
                "—"
                if row["ratio"] is None
                else f"{row['ratio']:.2f} ({row['ratio_min']:.2f}–{row['ratio_max']:.2f})"
            )
            estimate = (
                "—"
                if row["estimate"] is None
                else f"{_format(row['estimate'], case.quantity)} "
                f"({_format(row['estimate_min'], case.quantity)} to "
                f"{_format(row['estimate_max'], case.quantity)})"
            )
            lines.append(
                f"| `{row['method']}` | `{row['injector']}` ({row['magnitude']:g}) | "
                f"{case.meaning} | {100 * row['share']:.0f} % | "
                f"{_format(row['planted'], case.quantity)} | {estimate} | {ratio} |"
            )
        return "\n".join(lines) + "\n"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _format(value: float | None, quantity: str) -> str:
    if value is None:
        return "—"
    if quantity == "share":
        return f"{value:.3f}"
    return f"{value:,.0f}"


def run_stress(
    *,
    stations: int = 3000,
    seeds: Sequence[int] = (0, 1, 2),
    shares: Sequence[float] = STRESS_SHARES,
    cases: Sequence[StressCase] = STRESS_CASES,
) -> StressResult:
    """Every case at every share and seed (see the module docstring)."""
    if stations < 100:
        raise PollwatchError(f"stress run: stations={stations}", hint="at least 100 stations")
    if not seeds:
        raise PollwatchError("stress run: no seeds", hint="give at least one seed")
    if any(not 0.0 <= s <= 1.0 for s in shares):
        raise PollwatchError(f"stress run: shares={tuple(shares)}", hint="fractions from 0 to 1")
    points = tuple(
        stress_point(case, share, seed=seed, stations=stations)
        for case in cases
        for share in shares
        for seed in seeds
    )
    return StressResult(
        stations=stations,
        seeds=tuple(seeds),
        shares=tuple(shares),
        cases=tuple(cases),
        points=points,
    )
