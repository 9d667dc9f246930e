"""Small elections built in code, for tests of the core."""

from __future__ import annotations

from typing import Any

import polars as pl

from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election


def small_election(election_id: str = "test", **columns: Any) -> Election:
    """Three stations, two candidates; keyword arguments replace whole columns."""
    data: dict[str, Any] = {
        "station_id": ["a", "b", "c"],
        "region": ["North", "North", "South"],
        "registered": [1000, 800, 500],
        "ballots_in_stationary_boxes": [550, 400, 300],
        "ballots_in_mobile_boxes": [50, 0, 20],
        "ballots_cast": [600, 400, 320],
        "ballots_issued_on_day": [560, 400, 300],
        "ballots_issued_outside": [50, 0, 20],
        "valid": [590, 395, 318],
        "invalid": [10, 5, 2],
        "Alpha": [400, 200, 300],
        "Beta": [190, 195, 18],
    }
    data.update(columns)
    meta = ElectionMeta(
        id=election_id,
        country="XX",
        date="2020-01-01",
        kind="presidential",
        contest="President",
        source="test",
        license="CC0",
        importer="test",
        candidates=(Candidate("Alpha", "Alpha"), Candidate("Beta", "Beta", party="B")),
    )
    return make_election(meta, pl.DataFrame(data))
