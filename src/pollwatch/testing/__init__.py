"""Conformance checks for plug-in authors: is my method, importer or injector well behaved?

The checks pollwatch runs on its own built-in methods, importers and injectors, shipped so
that a method in an outside package is held to the same contract (modelled on scikit-learn's
``check_estimator`` and ``parametrize_with_checks``)::

    from pollwatch.testing import check_method, parametrize_with_checks

    check_method(FullTurnout)            # AssertionError naming the first failing check

    @parametrize_with_checks([FullTurnout])
    def test_conformance(check):         # one pytest test per check
        check()

:func:`method_checks`, :func:`importer_checks` and :func:`injector_checks` yield the checks
one by one (each a named callable, :class:`Check`); :func:`check_method`,
:func:`check_importer` and :func:`check_injector` run them all and return the ones that did
not apply (:class:`Skipped`). The elections they run on are simulated by pollwatch's own
simulator (:mod:`pollwatch.testing.elections`); nothing is read from disk or the network.
pytest is needed only by :func:`parametrize_with_checks`.

Layer: imports forensics, calibration and results; nothing in pollwatch imports it.
"""

from pollwatch.testing._checks import Check, Skipped, parametrize_with_checks, run_checks
from pollwatch.testing.importers import check_importer, importer_checks
from pollwatch.testing.injectors import check_injector, injector_checks
from pollwatch.testing.methods import check_method, method_checks

__all__ = [
    "Check",
    "Skipped",
    "check_importer",
    "check_injector",
    "check_method",
    "importer_checks",
    "injector_checks",
    "method_checks",
    "parametrize_with_checks",
    "run_checks",
]
