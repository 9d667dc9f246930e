"""The shared conformance suite: every registered importer passes ``pollwatch.testing``'s checks.

The checks live in :mod:`pollwatch.testing.importers` (shipped for plug-in authors): ``detect``
never raises and recognises the importer's own example; ``read`` gives the example's totals, is
idempotent, and answers garbage, random bytes and damaged copies of the example with a
PollwatchError, never a traceback.
"""

from __future__ import annotations

from pollwatch.results.importers import all_importers
from pollwatch.testing import Check, parametrize_with_checks

IMPORTERS = all_importers()


def test_builtins_are_registered() -> None:
    names = {importer.name for importer in IMPORTERS}
    assert {"russia-cec", "medsl", "openelections", "nist-1500-100", "mapping"} <= names


@parametrize_with_checks(IMPORTERS)
def test_importer_conformance(check: Check) -> None:
    check()
