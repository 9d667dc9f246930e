"""``pollwatch demo`` without the data mirror: offline it shows a simulated election with planted
manipulation, labelled as simulated; with network it imports what it can and says, one line
each, what it skipped.

Nothing here reaches the internet: "no network" is the demo's first dataset pointed at a closed
loopback port (what a download without network meets: a refused connection), "network" is a
loopback HTTP server serving a small dataset file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import pollwatch.cli
from pollwatch.cli import main
from pollwatch.results.datasets import DATASETS, Dataset
from pollwatch.results.importers.nist import export_nist
from pollwatch.results.special import special_stations
from pollwatch.results.store import ElectionStore
from pollwatch.synthetic.planted import DEMO_ELECTION_ID, INJECTIONS_FILE
from pollwatch.synthetic.simulator import simulate_clean
from tests.loopback import serve_folder

#: Nothing listens on the discard port of the loopback: a download there is refused at once.
UNREACHABLE = "http://127.0.0.1:9/2018.csv.zip"
MIRROR_ONLY = "us-2016-president-medsl"


def offline_russia() -> Dataset:
    """russia-2018 as a machine without network sees it: its download is refused."""
    return replace(DATASETS.get("russia-2018"), url=UNREACHABLE)


@pytest.fixture
def no_mirror(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("POLLWATCH_DATA_MIRROR", raising=False)
    monkeypatch.delenv("POLLWATCH_DOWNLOAD", raising=False)
    return home


def run_demo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["demo", "--no-serve", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out


def skip_lines(out: str) -> dict[str, str]:
    return {line.split(":", 1)[0]: line for line in out.splitlines() if ": skipped, " in line}


def test_demo_without_mirror_or_network_shows_a_simulated_election(
    no_mirror: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pollwatch.cli, "DEMO_DATASETS", (offline_russia(), MIRROR_ONLY))
    code, out = run_demo(capsys)
    assert code == 0, out
    skipped = skip_lines(out)
    assert skipped[MIRROR_ONLY] == (
        f"{MIRROR_ONLY}: skipped, exists only in a data mirror (set POLLWATCH_DATA_MIRROR)"
    )
    assert skipped["russia-2018"].startswith(f"russia-2018: skipped, cannot download {UNREACHABLE}")
    assert "no public dataset could be imported" in out

    # The simulated election is in the store, labelled by its metadata, with its labels.
    store = ElectionStore(no_mirror / "elections")
    assert [entry.id for entry in store.list()] == [DEMO_ELECTION_ID]
    election = store.load(DEMO_ELECTION_ID)
    assert election.meta.kind == "simulated" and len(election) == 10_000
    notice = election.meta.simulation_notice
    assert notice is not None and notice.startswith("SIMULATED election, not real results")
    assert "extreme ballot stuffing at 1,000 stations (10 % of 10,000" in notice
    assert "leader's share written as a whole percent at 1,000 stations" in notice
    assert store.list()[0].simulation == notice
    record = json.loads((no_mirror / "elections" / DEMO_ELECTION_ID / INJECTIONS_FILE).read_text())
    stuffed, rounded = (set(i["stations"]) for i in record["injections"])
    assert len(stuffed) == len(rounded) == 1_000

    # The output says SIMULATED and names the planted manipulation (on one line each time).
    assert notice in out.splitlines()
    assert "extreme-stuffing: 1,000 stations" in out

    # The analysis ran, and the planted manipulation is what the methods found.
    cached = {
        path.name.rsplit("-", 1)[0]: json.loads(path.read_text())
        for path in (no_mirror / "analysis" / DEMO_ELECTION_ID).glob("*.json")
    }
    assert {"integer-percentages", "klimek-fingerprint", "shpilkin", "triage"} <= set(cached)
    assert "Methods: simulated-demo" in out
    assert cached["integer-percentages"]["significant"] is True
    # Integer tests flag no station: their effect is the excess of whole-percent stations
    # over the null: 641 of the 1,000 rounded ones here (a rounded share of a small station
    # can miss the 0.05-point window, and some rounded stations hit a whole percent anyway).
    assert cached["integer-percentages"]["flagged"] == []
    assert cached["integer-percentages"]["effect"] > 500
    # Triage lists the stuffed stations, but for the small ones that look like hospitals
    # (near-complete turnout on a short list): those are shown as likely special stations.
    special = special_stations(election).ids()
    triaged = set(cached["triage"]["flagged"])
    assert not triaged & special
    assert len(triaged & stuffed) > 900
    assert len((triaged | special) & stuffed) > 950
    # Klimek's corner (turnout and leader share above 95 %): the stuffed stations, nearly all.
    assert cached["klimek-fingerprint"]["effect"] == pytest.approx(1_000, rel=0.05)
    report = (no_mirror / "reports" / f"{DEMO_ELECTION_ID}.html").read_text(encoding="utf-8")
    assert 'id="simulated"' in report and "SIMULATED election, not real results" in report

    # A second run finds everything in place and changes nothing.
    code, out = run_demo(capsys)
    assert code == 0 and f"{DEMO_ELECTION_ID}: unchanged (same numbers)" in out


# --- with network (a loopback server), no mirror ------------------------------------------
@pytest.fixture
def www(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    folder = tmp_path / "www"
    folder.mkdir()
    with serve_folder(folder) as url:
        yield folder, url


@pytest.mark.network
def test_demo_with_network_imports_what_it_can_and_names_what_it_skipped(
    no_mirror: Path,
    www: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, url = www
    # Numbers from the simulator, presented as real returns (a simulation stays labelled as
    # one through the NIST format, which is not what this test is about).
    real = simulate_clean(stations=400, regions=4, seed=5).replace_meta(
        kind="general", contest="President", definitions={}
    )
    export_nist(real, folder / "small.json")
    data = (folder / "small.json").read_bytes()
    served = Dataset(
        name="loopback-small",
        title="a small election served on the loopback",
        folder="loopback",
        filename="small.json",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        importer="nist-1500-100",
        license="CC0-1.0",
        url=f"{url}/small.json",
    )
    monkeypatch.setattr(pollwatch.cli, "DEMO_DATASETS", (served, offline_russia(), MIRROR_ONLY))
    code, out = run_demo(capsys)
    assert code == 0, out
    assert "loopback-small: imported, 400 stations" in out
    skipped = skip_lines(out)
    assert set(skipped) == {"russia-2018", MIRROR_ONLY}
    assert skipped[MIRROR_ONLY].endswith("exists only in a data mirror (set POLLWATCH_DATA_MIRROR)")
    assert skipped["russia-2018"].endswith("without network, set POLLWATCH_DATA_MIRROR)")
    # Something real was imported: no simulated fallback, and the real one was analysed.
    store = ElectionStore(no_mirror / "elections")
    assert [entry.id for entry in store.list()] == ["loopback-small"]
    assert store.list()[0].simulation is None and "SIMULATED" not in out
    assert any((no_mirror / "analysis" / "loopback-small").glob("triage-*.json"))
    assert (no_mirror / "cache" / "datasets" / "loopback" / "small.json").read_bytes() == data
