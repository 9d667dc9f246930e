"""The store as the routes see it: loaded elections with their checks and analysis, in memory.

:class:`Catalogue` (one per app, on ``app.state.catalogue``) loads a stored election once per
process with its protocol checks and its method results: the suite's cached results
(:func:`pollwatch.web.views.cached_results`) plus the methods whose class says ``fast``,
computed (and cached) where missing. A loaded election is keyed by its ``meta.json``
modification time, so a re-import is picked up on the next request. :class:`Loaded` holds one
election with what the pages derive from it, each computed once (``memoised``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pollwatch.errors import StoreError
from pollwatch.forensics.base import METHODS, MethodResult, method_names
from pollwatch.forensics.parameters import parse_assignments
from pollwatch.forensics.sections import (
    FingerprintCells,
    MethodDetails,
    RegionTable,
    StationRanking,
    provider,
)
from pollwatch.forensics.suite import SuiteReport, run_suite
from pollwatch.forensics.verdict import Verdict, verdict
from pollwatch.results.checks import QualityReport, check_protocols
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore, check_election_id
from pollwatch.settings import Settings

from . import views
from .responses import NotFound

__all__ = ["Catalogue", "Loaded"]

T = TypeVar("T")


@dataclass
class Loaded:
    """One stored election with what the pages need, computed once per process."""

    election: Election
    quality: QualityReport
    stamp: int
    results: dict[str, MethodResult] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict)

    def memoised(self, key: str, make: Callable[[], T]) -> T:
        if key not in self.memo:
            self.memo[key] = make()
        made: T = self.memo[key]
        return made

    def overview(self) -> dict[str, Any]:
        """Metadata, summary and protocol-check counts (:func:`views.overview`)."""
        return self.memoised("overview", lambda: views.overview(self.election, self.quality))

    def provider(self, kind: type[MethodDetails]) -> MethodResult | None:
        """The result whose method provides details of ``kind`` (a station ranking, ...)."""
        return provider(self.results.values(), kind)

    def provider_name(self, kind: type[MethodDetails]) -> str:
        """The method that provides ``kind`` here (its result's, else the first registered)."""
        result = self.provider(kind)
        if result is not None:
            return result.method
        return next(iter(method_names(provides=kind)), "")

    def regions(self) -> list[dict[str, Any]]:
        """One row per region, from the per-region results (:func:`views.region_table`)."""
        return self.memoised(
            "regions",
            lambda: views.region_table(
                self.provider(RegionTable), self.provider(StationRanking), self.election
            ),
        )

    def histograms(self) -> dict[str, list[dict[str, Any]]]:
        """Turnout and leader-share histograms (:func:`views.histograms`)."""
        return self.memoised("histograms", lambda: views.histograms(self.election))

    def fingerprint_cells(self) -> list[dict[str, Any]]:
        """The cells of the fingerprint result (:func:`views.fingerprint_cells`)."""
        return views.fingerprint_cells(self.provider(FingerprintCells))

    def skip_reason(self, method: str) -> str:
        """Why ``method`` has no result here, in words."""
        return next(
            (reason for name, reason in self.skipped if name == method),
            "not computed yet (run pollwatch analyze)",
        )

    def stations(self, page: int, size: int, sort: str, region: str | None) -> dict[str, Any]:
        """One page of the station list (:func:`views.stations_page`)."""
        return views.stations_page(
            self.election,
            self.provider(StationRanking),
            page=page,
            size=size,
            sort=sort,
            region=region or None,
        )

    def station(self, station_id: str) -> dict[str, Any]:
        """Everything the station page shows; 404 for an unknown station."""
        try:
            return views.station_detail(
                self.election, station_id, self.quality, list(self.results.values())
            )
        except KeyError:
            raise NotFound(f"no station {station_id!r} in election {self.election.id!r}") from None

    def suite(self) -> SuiteReport:
        """The results shown, as one suite report (by method name)."""
        return SuiteReport(
            election_id=self.election.id,
            input_digest=self.election.content_digest(),
            results=tuple(self.results[name] for name in sorted(self.results)),
            skipped=tuple(self.skipped),
        )

    def verdict(self) -> Verdict:
        """The verdict over the results shown (pollwatch.forensics.verdict decides it)."""
        return self.memoised(
            "verdict",
            lambda: verdict(self.suite(), simulation=self.election.meta.simulation_notice),
        )

    def methods_rows(self) -> list[dict[str, Any]]:
        """The methods table, by method name (:func:`views.methods_rows`)."""
        return views.methods_rows(sorted(self.results.values(), key=lambda r: r.method))

    def fast_only(self) -> bool:
        """Whether only the fast methods have results (``pollwatch analyze`` not run yet)."""
        return all(m in method_names("fast") for m in self.results)


class Catalogue:
    """The store, with loaded elections and their analysis kept in memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ElectionStore(settings.elections_dir)
        self._loaded: dict[str, Loaded] = {}
        self._lock = threading.Lock()
        self._running = threading.Lock()

    def _stamp(self, election_id: str) -> int:
        try:
            check_election_id(election_id)
        except StoreError:
            raise NotFound(f"no election {election_id!r} in the store") from None
        path = self.settings.elections_dir / election_id / "meta.json"
        try:
            return path.stat().st_mtime_ns
        except OSError:
            raise NotFound(f"no election {election_id!r} in the store") from None

    def get(self, election_id: str) -> Loaded:
        """The election with its checks and analysis; 404 when it is not stored."""
        stamp = self._stamp(election_id)
        with self._lock:
            loaded = self._loaded.get(election_id)
            if loaded is not None and loaded.stamp == stamp:
                return loaded
            election = self.store.load(election_id)
            loaded = Loaded(election=election, quality=check_protocols(election), stamp=stamp)
            self._analyse(loaded)
            self._loaded[election_id] = loaded
            return loaded

    def _analyse(self, loaded: Loaded) -> None:
        """Cached suite results, plus the fast subset computed (and cached) where missing."""
        election = loaded.election
        cache = self.settings.analysis_dir
        digest = election.content_digest()
        loaded.results = views.cached_results(cache, election.id, digest)
        # the methods whose class says ``fast``: the others appear once ``pollwatch analyze``
        # has cached them; per-region results feed the region table, so a cached run without
        # them is run again by region
        missing = [m for m in method_names("fast") if m not in loaded.results]
        for name in method_names(provides=RegionTable):
            cached = loaded.results.get(name)
            if cached is not None and cached.detail() is None and name not in missing:
                missing.append(name)
        if missing:
            report = run_suite(election, missing, by_region=True, cache_dir=cache)
            for result in report.results:
                loaded.results[result.method] = result
            loaded.skipped = list(report.skipped)

    def run_method(
        self, loaded: Loaded, name: str, assignments: Sequence[str]
    ) -> tuple[dict[str, Any], SuiteReport]:
        """Run one method with ``KEY=VALUE`` parameters (validated), through the result cache.

        404 for a method that is not registered; ParameterError for a bad parameter. One run
        at a time: a request for what another is computing waits, then reads the cache.
        """
        if name not in method_names():
            raise NotFound(f"no method {name!r}; known: {', '.join(method_names())}")
        values = parse_assignments(METHODS.get(name), assignments)
        with self._running:
            report = run_suite(
                loaded.election,
                [name],
                parameters={name: values} if values else None,
                cache_dir=self.settings.analysis_dir,
            )
        return values, report

    def forget(self, election_id: str) -> None:
        with self._lock:
            self._loaded.pop(election_id, None)
