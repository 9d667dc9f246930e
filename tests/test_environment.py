"""Results record the releases they were computed with (issue: reproducible numbers)."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import polars as pl
import scipy

from pollwatch import __version__
from pollwatch.environment import numeric_versions
from pollwatch.forensics.base import MethodResult, get_method
from pollwatch.synthetic.simulator import simulate_clean


def test_numeric_versions_name_the_installed_releases() -> None:
    versions = numeric_versions()
    assert versions["pollwatch"] == __version__
    assert versions["numpy"] == np.__version__
    assert versions["scipy"] == scipy.__version__
    assert versions["polars"] == pl.__version__
    assert versions["pyarrow"] == version("pyarrow")
    versions["numpy"] = "changed"  # a copy: nobody can alter what later results record
    assert numeric_versions()["numpy"] == np.__version__


def test_a_method_result_records_its_environment_and_keeps_it_through_json() -> None:
    election = simulate_clean(stations=400, seed=3, regions=2)
    result = get_method("integer-percentages").run(election)
    assert result.environment == numeric_versions()
    again = MethodResult.from_json(result.to_json())
    assert again.environment == result.environment


def test_a_result_saved_without_an_environment_does_not_borrow_this_one() -> None:
    election = simulate_clean(stations=400, seed=3, regions=2)
    data = get_method("integer-percentages").run(election).to_dict()
    del data["environment"]
    assert MethodResult.from_dict(data).environment == {}
