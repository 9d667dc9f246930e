"""The EFT dip test: Hartigan's dip test of unimodality of turnout (or a vote share)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import (
    METHODS,
    MethodResult,
)
from pollwatch.forensics.eft._base import (
    EFT_REFERENCE,
    _EFTFamily,
    _histogram,
    _other_variables,
    _region_groups,
    _regions_table,
    _require_stations,
    _variable_values,
)
from pollwatch.forensics.parameters import Boolean, Constraint, Interval, Text
from pollwatch.results.model import Election


def dip_test(values: np.ndarray) -> tuple[float, float]:
    """Hartigan's dip statistic and its tabulated p-value (``diptest`` package)."""
    try:
        import diptest
    except ImportError:  # pragma: no cover - depends on the environment
        raise PollwatchError(
            "the dip test needs the 'diptest' package", hint="pip install diptest"
        ) from None
    with warnings.catch_warnings():
        # beyond 72,000 values the package extrapolates its table of critical values and
        # warns; the definitions say so instead (the library never prints)
        warnings.simplefilter("ignore", UserWarning)
        dip, p_value = diptest.diptest(np.sort(values), sort_x=False)
    return float(dip), float(p_value)


@METHODS.register("eft-dip")
@dataclass(frozen=True)
class EFTDip(_EFTFamily):
    """DipT: Hartigan's dip test of unimodality of turnout or of a vote share."""

    name: ClassVar[str] = "eft-dip"
    title: ClassVar[str] = "Dip test of unimodality (EFT DipT)"
    reference: ClassVar[str] = (
        EFT_REFERENCE + "; Hartigan, J. A. and Hartigan, P. M. (1985). The Dip Test of "
        "Unimodality. Annals of Statistics 13(1): 70-84"
    )
    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast")
    stochastic: ClassVar[bool] = False
    conformance_parameters: ClassVar[Mapping[str, Any]] = {}

    variable: str = "turnout"
    alpha: float = 0.05
    by_region: bool = False

    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        # "turnout" or a candidate whose vote share is the variable
        "variable": Text(),
        "alpha": Interval(float, 0, 1, closed="neither"),
        "by_region": Boolean(),
    }

    def run(self, election: Election) -> MethodResult:
        x, frame, selection, label = _variable_values(election, self.variable)
        _require_stations(election, x.size, 4, f"for {label}", "the dip test needs more stations")
        dip, p_value = dip_test(x)
        details: dict[str, Any] = {
            "variable": label,
            "others": {
                name: dict(zip(("dip", "p_value"), dip_test(v), strict=True))
                for name, v in _other_variables(election, self.variable)
            },
        }
        if self.by_region:
            rows = []
            for region, index in _region_groups(frame):
                region_dip, region_p = dip_test(x[index])
                rows.append(
                    {
                        "region": region,
                        "stations": int(index.size),
                        "dip": region_dip,
                        "p_value": region_p,
                    }
                )
            details["regions"], details["flagged_regions"] = _regions_table(rows, self.alpha)
        return self.result(
            election,
            statistic_name=f"dip of {label}",
            statistic=dip,
            sample_size=int(x.size),
            p_value=p_value,
            alpha=self.alpha,
            significant=p_value < self.alpha,
            details=details,
            charts={"distribution": _histogram(label, x, label)},
            definitions={
                "variable": label,
                "statistic": "Hartigan's dip: largest distance between the empirical "
                "distribution and the closest unimodal distribution",
                "p-value": "interpolated from the tabulated null (uniform) distribution, as R's "
                "dip.test (beyond 72,000 stations the table is extrapolated); small p means "
                "more than one mode",
                "filters": selection.describe(),
            },
        )
