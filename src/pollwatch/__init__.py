"""pollwatch: election forensics, evidence and observation for polling-station results.

Layers (imports point downward only)::

    cli/                      interfaces: compose and render, no analysis
    results/                  core: data model, importers, protocol checks, store, datasets
    settings, errors, registry

The public API is re-exported here.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pollwatch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"

from pollwatch.errors import PollwatchError  # noqa: E402
from pollwatch.results.checks import QualityReport, check_protocols  # noqa: E402
from pollwatch.results.importers import import_file  # noqa: E402
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election  # noqa: E402
from pollwatch.results.store import ElectionStore  # noqa: E402
from pollwatch.settings import Settings, load_settings  # noqa: E402

__all__ = [
    "Candidate",
    "Election",
    "ElectionMeta",
    "ElectionStore",
    "PollwatchError",
    "QualityReport",
    "Settings",
    "__version__",
    "check_protocols",
    "import_file",
    "load_settings",
    "make_election",
]
