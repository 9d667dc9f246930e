"""``import pollwatch`` from Python and notebooks: methods, the store, and analyze with the cache.

``pollwatch.analyze`` must share the CLI's result cache under the same keys: a second call runs
no method, and ``pollwatch analyze`` then finds the results Python computed (and the other way
round). Method runs are counted by wrapping every registered class's ``run``, never by time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import pollwatch
from pollwatch.cli import main
from pollwatch.errors import InputError, PollwatchError, RegistryError, StoreError
from pollwatch.forensics.base import Method, MethodResult, all_methods, method_names
from pollwatch.forensics.parameters import ParameterError
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore
from pollwatch.synthetic.simulator import simulate_clean
from tests.helpers import small_election

CHEAP = ["integer-percentages", "klimek-fingerprint", "triage"]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the methods run from now on (every class's own ``run`` is wrapped)."""
    ran: list[str] = []
    classes = {klass for _, cls in all_methods() for klass in cls.__mro__}
    for klass in classes:
        own = klass.__dict__.get("run")
        if own is None or klass is Method or getattr(own, "__isabstractmethod__", False):
            continue

        def counted(
            self: Method, election: Election, _run: Callable[..., MethodResult] = own
        ) -> MethodResult:
            ran.append(self.name)
            return _run(self, election)

        monkeypatch.setattr(klass, "run", counted)
    return ran


@pytest.fixture
def stored(home: Path) -> str:
    """A 300-station simulated election in the store of ``home`` (POLLWATCH_HOME)."""
    election = simulate_clean(stations=300, seed=5, election_id="api-sim")
    ElectionStore(home / "elections").save(election)
    return election.id


def _cache_files(home: Path, election_id: str) -> dict[str, int]:
    folder = home / "analysis" / election_id
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.json"))}


def test_import_pollwatch_stays_cheap() -> None:
    code = (
        "import sys, pollwatch\n"
        "assert 'polars' not in sys.modules, 'import pollwatch loaded polars'\n"
        "assert {'analyze', 'load', 'elections', 'methods'} <= set(dir(pollwatch))\n"
        "pollwatch.analyze\n"
        "assert 'polars' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_methods_lists_every_registered_method_with_its_defaults() -> None:
    catalogue = pollwatch.methods()
    assert catalogue.names() == method_names()
    classes = dict(all_methods())
    for info in catalogue:
        cls = classes[info.name]
        assert (info.title, info.reference) == (cls.title, cls.reference)
        # the recorded defaults build the same method as no arguments at all
        assert cls(**info.defaults).parameters() == cls().parameters()
        assert all(p.accepts for p in info.parameters), info.name
        assert info.suite_parameters == dict(cls.suite_parameters)
        assert info.calibration  # words, "not calibrated" at worst
    fingerprint = catalogue.get("klimek-fingerprint")
    assert fingerprint is not None
    assert fingerprint.defaults["bins"] == classes["klimek-fingerprint"]().parameters()["bins"]
    assert catalogue.get("no-such-method") is None
    page = catalogue._repr_html_()
    assert page.count("<tr>") == 1 + len(catalogue)
    assert "klimek-fingerprint" in fingerprint._repr_html_()


def test_elections_and_load_read_the_store(home: Path) -> None:
    store = ElectionStore(home / "elections")
    assert list(pollwatch.elections()) == []
    election = small_election("demo-x")
    store.save(election)
    listed = pollwatch.elections()
    assert [e.id for e in listed] == ["demo-x"] and "demo-x" in listed._repr_html_()
    loaded = pollwatch.load("demo-x")
    assert loaded.content_digest() == election.content_digest()
    with pytest.raises(StoreError) as raised:
        pollwatch.load("no-such-election")
    assert "\n" not in str(raised.value)


def test_analyze_twice_runs_each_method_once(home: Path, stored: str, runs: list[str]) -> None:
    first = pollwatch.analyze(stored, CHEAP)
    assert sorted(runs) == sorted(CHEAP)
    files = _cache_files(home, stored)
    assert len(files) == len(CHEAP)
    runs.clear()
    second = pollwatch.analyze(pollwatch.load(stored), CHEAP)
    assert runs == []  # every result served from the cache
    assert _cache_files(home, stored) == files  # nothing rewritten
    assert [r.to_dict() for r in second.results] == [r.to_dict() for r in first.results]
    assert second.simulation == first.simulation is not None


def test_the_cli_finds_what_python_computed(
    home: Path, stored: str, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    report = pollwatch.analyze(stored)  # the default suite, as `pollwatch analyze ID`
    assert sorted(set(runs)) == sorted(method_names("in_default_suite"))
    fewer = {"integer-percentages": {"replicates": 50}}
    ran = pollwatch.analyze(stored, "integer-percentages", parameters=fewer)
    assert ran.results[0].parameters["replicates"] == 50
    files = _cache_files(home, stored)
    runs.clear()
    assert main(["analyze", stored]) == 0
    assert main(["analyze", stored, "-m", "integer-percentages", "-p", "replicates=50"]) == 0
    assert runs == []
    assert _cache_files(home, stored) == files
    out = capsys.readouterr().out
    for result in report.results:
        assert result.method in out


def test_python_finds_what_the_cli_computed(home: Path, stored: str, runs: list[str]) -> None:
    assert main(["analyze", stored, "-m", "triage", "--seed", "3"]) == 0
    assert runs == ["triage"]
    runs.clear()
    report = pollwatch.analyze(stored, ["triage"], seed=3)
    assert runs == [] and report.result("triage") is not None


def test_analyze_refuses_bad_input_in_one_line(stored: str, runs: list[str]) -> None:
    with pytest.raises(ParameterError) as raised:
        pollwatch.analyze(stored, CHEAP, parameters={"integer-percentages": {"replicates": -3}})
    assert str(raised.value).startswith(
        "method 'integer-percentages': parameter 'replicates' must be"
    )
    with pytest.raises(RegistryError):
        pollwatch.analyze(stored, ["integer-percentage"])
    no_regions = small_election("flat", region=[None, None, None])
    with pytest.raises(InputError, match="has no regions"):
        pollwatch.analyze(no_regions, CHEAP, by_region=True)
    assert runs == []  # nothing ran before the refusals
    assert isinstance(raised.value, PollwatchError) and "\n" not in str(raised.value)


def test_analyze_takes_explicit_settings(tmp_path: Path, runs: list[str]) -> None:
    settings = pollwatch.load_settings({"home": tmp_path / "elsewhere"})
    election = simulate_clean(stations=200, seed=6, election_id="explicit")
    first = pollwatch.analyze(election, ["triage"], settings=settings)
    assert (tmp_path / "elsewhere" / "analysis" / "explicit").is_dir()
    runs.clear()
    second = pollwatch.analyze(election, ["triage"], settings=settings)
    assert runs == [] and second.results[0].to_dict() == first.results[0].to_dict()
