"""The importer seam: one small interface, one registry.

An importer turns a source file into an :class:`~pollwatch.results.model.Election`:

* ``detect(path) -> float`` says how confident it is (0 to 1) that it can read the file; it
  only peeks, and never raises.
* ``read(path, *, mapping=None, options=None) -> Election`` reads it, or raises a
  :class:`~pollwatch.errors.PollwatchError` naming file, row and column; it refuses options
  not in ``known_options`` and hands the rest to ``read_file(path, options, mapping)``, the
  method an importer implements.
* ``example(folder) -> Example`` writes a small valid file in its format and says what reading
  it must give; the conformance suite uses it, and it documents the format by example.

Built-ins register in :data:`IMPORTERS` below; outside packages add theirs through the entry
point group ``pollwatch.importers`` (value: the importer class), and the shared conformance
suite in ``tests/test_importer_conformance.py`` runs against every registered importer.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pollwatch.errors import FormatError, PollwatchError
from pollwatch.registry import Registry
from pollwatch.results.importers.limits import ImportLimits, Progress, applied, report_progress
from pollwatch.results.model import Election
from pollwatch.results.quarantine import Collector, Quarantine, collecting

__all__ = [
    "IMPORTERS",
    "Example",
    "Importer",
    "check_options",
    "detect_importer",
    "import_file",
    "slugify",
]


@dataclass(frozen=True)
class Example:
    """A small valid source written by :meth:`Importer.example` and what reading it gives."""

    path: Path
    totals: Mapping[str, int]
    stations: int
    mapping: Path | None = None
    options: Mapping[str, str] = field(default_factory=dict)


class Importer(ABC):
    """Base class of all importers (subclass it and register the class)."""

    #: registry name, e.g. ``"russia-cec"``
    name: ClassVar[str]
    #: one line for ``pollwatch import --help`` and the docs
    description: ClassVar[str]
    #: whether ``read`` needs a mapping file
    needs_mapping: ClassVar[bool] = False

    @abstractmethod
    def detect(self, path: Path) -> float:
        """Confidence in [0, 1] that this importer reads ``path``; never raises."""

    #: option name -> what it sets; ``read`` refuses any other option
    known_options: ClassVar[Mapping[str, str]] = {}

    def read(
        self,
        path: Path,
        *,
        mapping: Path | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Election:
        """Read ``path`` into an election; raise a PollwatchError on bad input.

        ``options`` are importer-specific settings (``pollwatch import --option KEY=VALUE``);
        an option not in :attr:`known_options` is an error, not silently ignored. The checked
        options go to :meth:`read_file`, which each importer implements.
        """
        checked = check_options(options, self.known_options, self.name)
        return self.read_file(Path(path), checked, mapping)

    @abstractmethod
    def read_file(self, path: Path, options: dict[str, str], mapping: Path | None) -> Election:
        """Read ``path`` with ``options`` already checked against :attr:`known_options`."""

    @abstractmethod
    def example(self, folder: Path) -> Example:
        """Write a small valid source file into ``folder`` and return what it must read as."""


IMPORTERS: Registry[type[Importer]] = Registry("importer", "pollwatch.importers")


#: The module of each built-in importer (its registration line here): naming one imports that
#: module only (the others, jsonschema and the mapping machinery, cost a tenth of a second).
_BUILTIN_MODULES: dict[str, str] = {
    "mapping": "mapping",
    "medsl": "medsl",
    "nist-1500-100": "nist",
    "openelections": "openelections",
    "russia-cec": "russia_cec",
    "russia-cec-evoting": "russia_cec",
}


def _load_builtins() -> None:
    # Imported here so that registering does not import every importer at package import.
    for module in sorted(set(_BUILTIN_MODULES.values())):
        importlib.import_module(f"pollwatch.results.importers.{module}")


def get_importer(name: str) -> Importer:
    """An instance of the importer registered under ``name``."""
    module = _BUILTIN_MODULES.get(name)
    if module is None:
        _load_builtins()
    else:
        importlib.import_module(f"pollwatch.results.importers.{module}")
    return IMPORTERS.get(name)()


def all_importers() -> list[Importer]:
    """An instance of every registered importer, sorted by name."""
    _load_builtins()
    return [cls() for _, cls in IMPORTERS.items()]


def detect_importer(path: Path) -> Importer:
    """The importer most confident it can read ``path`` (confidence at least 0.5)."""
    scores: list[tuple[float, str, Importer]] = []
    for importer in all_importers():
        if importer.needs_mapping:
            continue
        try:
            score = float(importer.detect(path))
        except Exception:  # detect must never raise; a buggy plug-in must not stop detection
            score = 0.0
        scores.append((score, importer.name, importer))
    scores.sort(key=lambda item: (-item[0], item[1]))
    if not scores or scores[0][0] < 0.5:
        raise FormatError(
            "cannot tell which format this is",
            path=path,
            hint="pass --format NAME (see 'pollwatch import --help') or --mapping FILE",
        )
    return scores[0][2]


def import_file(
    path: Path,
    *,
    importer: str | None = None,
    mapping: Path | None = None,
    options: Mapping[str, str] | None = None,
    election_id: str | None = None,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
    strict: bool = False,
) -> Election:
    """Read one source file with the named importer, or the detected one.

    With ``mapping`` and no importer name, the generic mapping importer is used;
    ``election_id`` replaces the id the importer chose. The read stays within ``limits``
    (default: the built-in ones; ``ImportLimits.from_settings(settings)`` for configured ones)
    and tells ``progress(stage, fraction)`` how far it is. An election without stations is
    refused.

    Rows that fail a row-level check (a count that is not a whole number, an empty station
    identifier...) are set aside into ``election.quarantine`` and the import goes on
    (:mod:`pollwatch.results.quarantine`); with ``strict=True`` the first one raises its
    one-line error instead and nothing is returned.
    """
    with applied(limits, progress):
        if strict:
            election = _import_file(path, importer, mapping, options, Quarantine())
        else:
            with collecting() as collector:
                election = _import_file(path, importer, mapping, options, collector)
    if election_id is not None:
        election = election.replace_meta(id=election_id)
    return election


def _import_file(
    path: Path,
    importer: str | None,
    mapping: Path | None,
    options: Mapping[str, str] | None,
    collector: Quarantine | Collector,
) -> Election:
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "file not found"
        raise FormatError(what, path=path, hint="check the path")
    if importer is None and mapping is not None:
        importer = "mapping"
    chosen = get_importer(importer) if importer else detect_importer(path)
    if chosen.needs_mapping and mapping is None:
        raise PollwatchError(
            f"importer {chosen.name!r} needs a mapping file", hint="pass --mapping FILE"
        )
    report_progress("reading", 0.0)
    election = chosen.read(path, mapping=mapping, options=options)
    collected = collector if isinstance(collector, Quarantine) else collector.quarantine()
    if len(collected):
        quarantine = Quarantine(
            rows=election.quarantine.rows + collected.rows,
            rows_checked=election.quarantine.rows_checked + collected.rows_checked,
        )
        election = election.with_quarantine(quarantine)
    if len(election) == 0 and len(election.quarantine):
        raise FormatError(
            f"no stations in {path}: every row was set aside ({election.quarantine.one_line()})",
            hint="check the file holds results by station; pass --strict to see the first error",
        )
    if len(election) == 0:
        raise FormatError(
            f"no stations in {path}: importer {chosen.name!r} found no polling-station rows",
            hint="check the file holds results by station (and the options or mapping)",
        )
    report_progress("read", 1.0)
    return election


def check_options(
    options: Mapping[str, str] | None, known: Mapping[str, str], importer: str
) -> dict[str, str]:
    """Refuse unknown importer options; ``known`` maps option name to its description."""
    given = dict(options or {})
    for key in given:
        if key not in known:
            listing = ", ".join(f"{k} ({v})" for k, v in known.items()) or "none"
            raise PollwatchError(
                f"importer {importer!r} has no option {key!r}", hint=f"its options: {listing}"
            )
    return given


_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Lower-case ASCII slug for election ids (``"Russia 2018"`` -> ``"russia-2018"``)."""
    slug = _SLUG.sub("-", text.lower()).strip("-")
    return slug or "election"
