"""Named checks, running them all, and the pytest decorator."""

from __future__ import annotations

import unittest
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Check", "Skipped", "parametrize_with_checks", "run_checks"]


@dataclass(frozen=True)
class Check:
    """One conformance check of one plug-in, ready to call.

    Calling it returns None when the plug-in passes, raises :class:`AssertionError` saying what
    is wrong when it does not, and raises :class:`unittest.SkipTest` (which pytest reports as a
    skip) when the check does not apply, with the reason.
    """

    #: the plug-in checked, e.g. ``"integer-percentages"``
    subject: str
    #: the check, e.g. ``"clone"``
    name: str
    function: Callable[[], None]

    @property
    def id(self) -> str:
        """``"<subject>-<name>"``: the pytest test id and the name in failure messages."""
        return f"{self.subject}-{self.name}"

    def __call__(self) -> None:
        self.function()

    def __repr__(self) -> str:
        return f"Check({self.id})"


@dataclass(frozen=True)
class Skipped:
    """A check that did not apply, and why (returned by ``check_method`` and its siblings)."""

    check: str
    reason: str


def run_checks(checks: Iterable[Check]) -> tuple[Skipped, ...]:
    """Run every check in order; the skipped ones, or AssertionError at the first failure.

    The AssertionError names the subject and the failing check, and chains the original
    exception (an error other than AssertionError inside a check is a failure too).
    """
    skipped: list[Skipped] = []
    for check in checks:
        try:
            check()
        except unittest.SkipTest as exc:
            skipped.append(Skipped(check.id, str(exc)))
        except AssertionError as exc:
            raise AssertionError(f"{check.subject}: check {check.name!r} failed: {exc}") from exc
        except Exception as exc:
            raise AssertionError(
                f"{check.subject}: check {check.name!r} failed with {type(exc).__name__}: {exc}"
            ) from exc
    return tuple(skipped)


def _checks_of(item: Any) -> Iterator[Check]:
    # Imported here: each family of checks imports its seam (forensics, importers, injectors).
    from pollwatch.forensics.base import Method
    from pollwatch.results.importers.base import Importer
    from pollwatch.synthetic.injectors import Injector
    from pollwatch.testing.importers import importer_checks
    from pollwatch.testing.injectors import injector_checks
    from pollwatch.testing.methods import method_checks

    if isinstance(item, type) and issubclass(item, Method):
        yield from method_checks(item)
    elif isinstance(item, Importer) or (isinstance(item, type) and issubclass(item, Importer)):
        yield from importer_checks(item)
    elif isinstance(item, type) and issubclass(item, Injector):
        yield from injector_checks(item)
    else:
        raise TypeError(
            f"parametrize_with_checks: {item!r} is not a Method subclass, an Importer (class or "
            f"instance) or an Injector subclass"
        )


def parametrize_with_checks(items: Iterable[Any]) -> Any:
    """A pytest ``parametrize`` mark running every check of every item, one test each.

    ``items`` mixes method classes, importers (classes or instances) and injector classes::

        from pollwatch.testing import parametrize_with_checks

        @parametrize_with_checks([FullTurnout])
        def test_conformance(check):
            check()

    Test ids are ``<name>-<check>`` (``full-turnout-clone``), so ``pytest -k clone`` picks one
    check. pytest is imported here only: it is not a dependency of pollwatch.
    """
    import pytest

    checks = [check for item in items for check in _checks_of(item)]
    return pytest.mark.parametrize("check", checks, ids=[check.id for check in checks])
