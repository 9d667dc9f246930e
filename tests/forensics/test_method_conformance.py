"""The shared conformance suite: every registered method passes ``pollwatch.testing``'s checks.

The checks live in :mod:`pollwatch.testing.methods` (shipped, so that plug-in authors run the
same ones): class attributes, parameter constraints, same seed same result, clone from
``result.parameters``, row order, JSON and renderings, edge stations, elections without
registered voters, and p-values on clean simulated elections. A newly registered method is
picked up here without any list to update.
"""

from __future__ import annotations

from pollwatch.forensics.base import all_methods
from pollwatch.testing import Check, parametrize_with_checks

METHODS = all_methods()


def test_methods_are_registered() -> None:
    assert METHODS, "no forensic method is registered"


@parametrize_with_checks([cls for _, cls in METHODS])
def test_method_conformance(check: Check) -> None:
    check()
