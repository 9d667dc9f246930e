"""pollwatch: election forensics, evidence and observation for polling-station results.

Layers (imports point downward only)::

    cli/                      interfaces: compose and render, no analysis
    evidence/                 capability: tamper-evident archive (needs no results code)
    results/                  core: data model, importers, protocol checks, store, datasets
    settings, errors, registry

The public API is re-exported here and loaded lazily (PEP 562), so that ``import pollwatch``
does not import polars for tools that only need, say, the evidence archive. From Python and
notebooks (docs/python-api.md)::

    import pollwatch

    election = pollwatch.load("russia-2018")        # renders as tables and a fingerprint
    report = pollwatch.analyze(election)            # the CLI's result cache, the same keys
    pollwatch.methods(), pollwatch.elections()      # what is registered, what is stored
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("pollwatch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"

_EXPORTS = {
    "Candidate": "pollwatch.results.model",
    "Election": "pollwatch.results.model",
    "ElectionMeta": "pollwatch.results.model",
    "ElectionStore": "pollwatch.results.store",
    "ElectionSummary": "pollwatch.results.model",
    "MethodInfo": "pollwatch.api",
    "PollwatchError": "pollwatch.errors",
    "QualityReport": "pollwatch.results.checks",
    "Settings": "pollwatch.settings",
    "SuiteReport": "pollwatch.forensics.suite",
    "analyze": "pollwatch.api",
    "check_protocols": "pollwatch.results.checks",
    "elections": "pollwatch.api",
    "import_file": "pollwatch.results.importers",
    "load": "pollwatch.api",
    "load_settings": "pollwatch.settings",
    "make_election": "pollwatch.results.model",
    "methods": "pollwatch.api",
}

__all__ = [
    "Candidate",
    "Election",
    "ElectionMeta",
    "ElectionStore",
    "ElectionSummary",
    "MethodInfo",
    "PollwatchError",
    "QualityReport",
    "Settings",
    "SuiteReport",
    "__version__",
    "analyze",
    "check_protocols",
    "elections",
    "import_file",
    "load",
    "load_settings",
    "make_election",
    "methods",
]

if TYPE_CHECKING:
    from pollwatch.api import MethodInfo, analyze, elections, load, methods
    from pollwatch.errors import PollwatchError
    from pollwatch.forensics.suite import SuiteReport
    from pollwatch.results.checks import QualityReport, check_protocols
    from pollwatch.results.importers import import_file
    from pollwatch.results.model import (
        Candidate,
        Election,
        ElectionMeta,
        ElectionSummary,
        make_election,
    )
    from pollwatch.results.store import ElectionStore
    from pollwatch.settings import Settings, load_settings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pollwatch' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
