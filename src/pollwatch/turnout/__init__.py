"""Turnout: a country's elections as a series, and minimum-turnout scenarios.

* :mod:`.counting`: which stations a turnout figure counts (the one definition, stated);
* :mod:`.regions`: regions linked across elections, with a mapping of renamed or merged ones
  (Russia's ships with pollwatch);
* :mod:`.series`: :func:`turnout_series`, turnout nationally, per region and per linked station;
* :mod:`.scenario`: :func:`threshold_scenario`, which units would fail a minimum turnout, their
  registered voters, the outcome, and the same with Shpilkin's anomalous ballots taken out.

It imports the core (``pollwatch.results``) and ``pollwatch.forensics``, never the CLI or the
web. Documentation: ``docs/turnout.md``.
"""

from __future__ import annotations

from pollwatch.turnout.counting import DEFINITIONS, Exclusions, counted_stations, group_turnout
from pollwatch.turnout.regions import (
    RegionMapping,
    load_region_mapping,
    normalise_region,
    shipped_region_mapping,
)
from pollwatch.turnout.scenario import (
    LEVELS,
    Outcome,
    ThresholdScenario,
    UnitResult,
    shpilkin_estimate,
    threshold_scenario,
)
from pollwatch.turnout.series import (
    ElectionTurnout,
    RegionTurnout,
    StationLink,
    TurnoutSeries,
    turnout_series,
)

__all__ = [
    "DEFINITIONS",
    "LEVELS",
    "ElectionTurnout",
    "Exclusions",
    "Outcome",
    "RegionMapping",
    "RegionTurnout",
    "StationLink",
    "ThresholdScenario",
    "TurnoutSeries",
    "UnitResult",
    "counted_stations",
    "group_turnout",
    "load_region_mapping",
    "normalise_region",
    "shipped_region_mapping",
    "shpilkin_estimate",
    "threshold_scenario",
    "turnout_series",
]
