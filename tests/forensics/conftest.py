"""Real elections from the data mirror, shared by the method tests (each skips without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pollwatch.results.datasets import import_dataset
from pollwatch.results.model import Election
from pollwatch.settings import load_settings
from tests.conftest import mirror_file


def _dataset(mirror: Path, name: str, relative: str) -> Election:
    mirror_file(mirror, relative)
    return import_dataset(name, load_settings({"data_mirror": str(mirror)}))


@pytest.fixture(scope="module")
def russia_2011(mirror: Path) -> Election:
    return _dataset(mirror, "russia-2011", "russia_cec/2011.csv.zip")


@pytest.fixture(scope="module")
def poland(mirror: Path) -> Election:
    zip_name = "round1_wyniki_gl_na_kand_po_obwodach_csv.zip"
    return _dataset(mirror, "poland-2020-r1", f"poland_2020_president_obwody_pkw/{zip_name}")


@pytest.fixture(scope="module")
def us_2016(mirror: Path) -> Election:
    path = "us_2016_president_precinct_medsl/us_2016_president_precinct_medsl.csv.gz"
    return _dataset(mirror, "us-2016-president-medsl", path)
