"""Beber & Scacco (2012) last-digit tests, and the digit helpers the EFT tests share.

Beber, B. and Scacco, A. (2012), "What the Numbers Say: A Digit-Based Test for Election Fraud",
*Political Analysis* 20(2): 211-234, doi:10.1093/pan/mps003.

People who invent numbers favour some numerals, repeat digits too rarely, write pairs of
adjacent digits (23, 78) too often and pairs of distinct, non-adjacent digits too rarely. In
honest counts that are spread over many tens of votes the last digit is uniform on 0..9 and
independent of the digit before it, so (with ``n`` counts of at least ``minimum_count`` votes):

* **last digit**: Pearson's chi-square of the ten last-digit frequencies against ``n / 10``
  each, 9 degrees of freedom; this is the method's statistic and p-value;
* **repeated pairs**: the last two digits are equal (11, 477); expected share 0.1;
* **adjacent pairs**: the last two digits differ by one, 0 and 9 counting as adjacent (21,
  56, 90); expected share 0.2;
* **distinct non-adjacent pairs**: neither repeated nor adjacent (17, 64); expected 0.7 (the
  share Beber and Scacco quote for Iran 2009 in their Washington Post article of 20 June
  2009, which fixes their adjacency to include 0-9).

The three pair shares are reported in ``details`` with exact two-sided binomial p-values. The
pair expectations need only the *last* digit to be uniform and independent of the penultimate
one, whatever the penultimate digit's own distribution, so two-digit counts qualify.

Definition choices (pollwatch):

* counts of at least ``minimum_count`` (10) votes, as in the paper: a one-digit count's last
  digit is the count itself, which is small far more often than large;
* the counts of one candidate by default, the election's leader (``candidate="leader"``);
  ``candidate="all"`` pools every candidate's counts as the paper pools the main candidates,
  or name one candidate. Every candidate's own test is in ``details["candidates"]``.

Known pitfalls: uniformity of the last digit needs counts spread over much more than ten
votes. Small parties whose counts pile up just above 10 favour small last digits, so a pooled
test on a large election rejects without any manipulation; test such candidates on their own
and read their mean count in the details. Deckert, Myagkov & Ordeshook (2011, *Political
Analysis* 19(3)) show that digit tests can both miss manipulation and flag honest counts; a
small p-value is an anomaly to explain, not a finding of manipulation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    eligible_stations,
    leader_of,
)
from pollwatch.forensics.parameters import Constraint, Interval, Text
from pollwatch.results.model import Election

__all__ = [
    "BeberScacco",
    "benford_second_digit",
    "benjamini_hochberg",
    "candidate_columns",
    "last_digits",
    "second_digits",
]

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


# --- digit helpers (shared with the EFT tests) ---------------------------------------------
def last_digits(counts: np.ndarray) -> np.ndarray:
    """The last decimal digit of each non-negative integer count."""
    return np.asarray(counts, dtype=np.int64) % 10


def second_digits(counts: np.ndarray) -> np.ndarray:
    """The second significant digit of each count of at least 10 (undefined below 10)."""
    values = np.asarray(counts, dtype=np.int64).copy()
    big = values >= 100
    while big.any():
        values[big] //= 10
        big = values >= 100
    return values % 10


def benford_second_digit() -> np.ndarray:
    """Benford's law for the second significant digit: P(d) = sum_k log10(1 + 1/(10k + d))."""
    k = np.arange(1, 10)[:, None]
    d = np.arange(10)[None, :]
    probabilities: np.ndarray = np.log10(1.0 + 1.0 / (10 * k + d)).sum(axis=0)
    return probabilities


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in q]


def candidate_columns(election: Election, candidate: str) -> list[str]:
    """The vote columns ``candidate`` names: ``"leader"``, ``"all"`` or one candidate."""
    if candidate == "all":
        return election.candidate_columns
    if candidate == "leader":
        leader = leader_of(election, hint="import its vote columns")
        return [leader.column]
    return [election.column_of(candidate)]


def digit_chart(title: str, shares: Sequence[float], expected: Sequence[float]) -> dict[str, Any]:
    """A bar chart of observed digit shares with the expected shares as ticks."""
    values = [
        {"digit": d, "observed": float(o), "expected": float(e)}
        for d, (o, e) in enumerate(zip(shares, expected, strict=True))
    ]
    return {
        "$schema": VEGA_LITE,
        "title": title,
        "data": {"values": values},
        "layer": [
            {
                "mark": "bar",
                "encoding": {
                    "x": {"field": "digit", "type": "ordinal"},
                    "y": {"field": "observed", "type": "quantitative", "title": "share"},
                },
            },
            {
                "mark": {"type": "tick", "color": "black", "thickness": 2},
                "encoding": {
                    "x": {"field": "digit", "type": "ordinal"},
                    "y": {"field": "expected", "type": "quantitative"},
                },
            },
        ],
    }


# --- Beber & Scacco -------------------------------------------------------------------------
PAIR_EXPECTATIONS: Mapping[str, float] = {
    "repeated": 0.1,
    "adjacent": 0.2,
    "distinct_non_adjacent": 0.7,
}


def _pair_kinds(counts: np.ndarray) -> dict[str, np.ndarray]:
    last = counts % 10
    penultimate = (counts // 10) % 10
    gap = np.abs(last - penultimate)
    repeated = gap == 0
    adjacent = (gap == 1) | (gap == 9)
    return {
        "repeated": repeated,
        "adjacent": adjacent,
        "distinct_non_adjacent": ~(repeated | adjacent),
    }


def _binomial_p(successes: int, trials: int, p: float) -> float:
    if trials == 0:
        return float("nan")
    return float(stats.binomtest(successes, trials, p).pvalue)


def digit_test(counts: np.ndarray) -> dict[str, Any]:
    """Beber and Scacco's statistics on counts already filtered to the minimum."""
    n = int(counts.size)
    frequencies = np.bincount(counts % 10, minlength=10)
    chi_square = float(((frequencies - n / 10) ** 2 / (n / 10)).sum()) if n else float("nan")
    p_value = float(stats.chi2.sf(chi_square, 9)) if n else float("nan")
    pairs: dict[str, Any] = {}
    for kind, mask in _pair_kinds(counts).items():
        hits = int(mask.sum())
        pairs[kind] = {
            "share": hits / n if n else None,
            "expected": PAIR_EXPECTATIONS[kind],
            "count": hits,
            "p_value": _binomial_p(hits, n, PAIR_EXPECTATIONS[kind]),
        }
    return {
        "counts": n,
        "chi_square": chi_square,
        "p_value": p_value,
        "frequencies": [int(f) for f in frequencies],
        "shares": [float(f / n) if n else None for f in frequencies],
        "mean_absolute_deviation": float(np.abs(frequencies / n - 0.1).mean()) if n else None,
        "mean_count": float(counts.mean()) if n else None,
        "pairs": pairs,
    }


@METHODS.register("beber-scacco")
@dataclass(frozen=True)
class BeberScacco(Method):
    """Last-digit uniformity and digit-pair frequencies of vote counts (Beber & Scacco 2012).

    Parameters:
        candidate: ``"leader"`` (default), ``"all"`` (pool every candidate) or one candidate's
            name or column.
        minimum_count: counts below it are left out (default 10: at least two digits).
        alpha: level of the chi-square test.
    """

    name: ClassVar[str] = "beber-scacco"
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Last-digit and digit-pair test of vote counts (Beber & Scacco)"
    reference: ClassVar[str] = (
        "Beber, B. and Scacco, A. (2012). What the Numbers Say: A Digit-Based Test for "
        "Election Fraud. Political Analysis 20(2): 211-234. doi:10.1093/pan/mps003"
    )
    needs: ClassVar[tuple[str, ...]] = ()
    stochastic: ClassVar[bool] = False
    conformance_parameters: ClassVar[Mapping[str, Any]] = {}
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        # "leader", "all" or a candidate's name or column (checked against the election)
        "candidate": Text(),
        # a count below 10 has a single digit, which is not a last digit
        "minimum_count": Interval(int, 10, None),
        "alpha": Interval(float, 0, 1, closed="neither"),
    }

    candidate: str = "leader"
    minimum_count: int = 10
    alpha: float = 0.05

    def run(self, election: Election) -> MethodResult:
        columns = candidate_columns(election, self.candidate)
        selection = eligible_stations(election)
        frame = selection.stations
        per_candidate: dict[str, Any] = {}
        pooled: list[np.ndarray] = []
        used = np.zeros(frame.height, dtype=bool)
        names = {c.column: c.name for c in election.meta.candidates}
        for column in election.candidate_columns:
            values = frame[column].drop_nulls().to_numpy().astype(np.int64)
            counts = values[values >= self.minimum_count]
            if column in columns:
                pooled.append(counts)
                used |= frame[column].fill_null(0).to_numpy() >= self.minimum_count
            result = digit_test(counts)
            per_candidate[names[column]] = {
                k: result[k]
                for k in ("counts", "chi_square", "p_value", "mean_count", "shares", "pairs")
            }
        counts = np.concatenate(pooled) if pooled else np.zeros(0, dtype=np.int64)
        if counts.size == 0:
            raise MethodNotApplicable(
                f"election {election.id!r}: no vote count of at least {self.minimum_count}",
                hint="lower minimum_count (at least 10) or choose another candidate",
            )
        main = digit_test(counts)
        details: dict[str, Any] = {
            "counts": main["counts"],
            "last_digit_frequencies": main["frequencies"],
            "last_digit_shares": main["shares"],
            "pairs": main["pairs"],
            "mean_absolute_deviation": main["mean_absolute_deviation"],
            "candidates_tested": [names[c] for c in columns],
            "candidates": per_candidate,
        }
        return self.result(
            election,
            statistic_name="chi-square of last digits (9 df)",
            statistic=main["chi_square"],
            sample_size=int(used.sum()),
            p_value=main["p_value"],
            alpha=self.alpha,
            significant=main["p_value"] < self.alpha,
            effect_name="mean absolute deviation of last-digit shares from 0.1",
            effect=main["mean_absolute_deviation"],
            details=details,
            charts={
                "last_digits": digit_chart("Last digits of vote counts", main["shares"], [0.1] * 10)
            },
            definitions={
                "counts": f"vote counts of {', '.join(names[c] for c in columns)} with at "
                f"least {self.minimum_count} votes ({main['counts']:,} counts)",
                "last digit": "count mod 10; expected uniform on 0..9",
                "pairs": "last two digits: repeated (equal, expected 0.1), adjacent (differ by "
                "one, 0 and 9 adjacent, expected 0.2), distinct non-adjacent (expected 0.7); "
                "exact binomial tests",
                "filters": selection.describe(),
            },
        )
