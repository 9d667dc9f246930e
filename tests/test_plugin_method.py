"""A method from an outside package appears everywhere a built-in does (issue 14, "Done when").

The package is the one docs/plugins.md builds: its files are the page's code blocks that
follow a ``<!-- file: PATH -->`` comment, so the page is what is tested. It is "installed" the
way pip installs a package, without pip and without touching the virtualenv: the source folder
and a ``pollwatch_full_turnout-<version>.dist-info/`` folder (``METADATA`` and an
``entry_points.txt`` made from the page's ``pyproject.toml``) on ``PYTHONPATH``, where
``importlib.metadata`` finds the entry point in group ``pollwatch.methods``.

Every command runs in a subprocess with that ``PYTHONPATH`` and a private ``POLLWATCH_HOME``
(no other ``POLLWATCH_*`` variable of the caller): ``pollwatch methods`` lists the plug-in,
``pollwatch analyze`` runs it in the default suite and alone with ``-p``, ``pollwatch report``
writes its section, ``pollwatch compare`` shows it (by default, since the class says
``in_comparison``, and with ``-m``), the plug-in's own report section (a table by region, from
its ``sections`` override) in ``analyze -m``, the report, the comparison page and the
dashboard's method page, ``pollwatch serve`` (on a free loopback port, waited for
with a deadline) shows it on the election page and in ``/api/elections/ID/methods`` of an
election never analysed (the class says ``fast``) and runs it with a parameter through
``/api/elections/ID/methods/NAME?p=KEY=VALUE``, the page's own tests
(``pollwatch.testing`` checks) pass, and ``pollwatch calibrate -m full-turnout --write-table``
with a tiny plan adds its calibration to the home's table folder while every other method's
calibration, and every calibration file in the source tree, stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pollwatch

ROOT = Path(__file__).resolve().parent.parent
POLLWATCH_SOURCES = Path(pollwatch.__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "plugins.md"
NAME = "full-turnout"
TITLE = "Stations reporting full turnout"
SECTION = "Stations at full turnout by region"  # the table the page's sections override adds
COMMAND_TIMEOUT = 300


def page_files(text: str) -> dict[str, str]:
    """PATH -> content of every code block right after a ``<!-- file: PATH -->`` line."""
    files: dict[str, str] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        marker = re.fullmatch(r"\s*<!--\s*file:\s*(\S+)\s*-->\s*", line)
        if marker is None:
            continue
        fence = re.match(r"\s*(`{3,})", lines[index + 1]) if index + 1 < len(lines) else None
        assert fence, f"docs/plugins.md:{index + 1}: a file marker must sit right above a fence"
        end = next(n for n in range(index + 2, len(lines)) if lines[n].strip() == fence.group(1))
        files[marker.group(1)] = "\n".join(lines[index + 2 : end]) + "\n"
    return files


@dataclass(frozen=True)
class Plugin:
    package: Path  # the outside package's folder
    home: Path  # POLLWATCH_HOME
    environment: dict[str, str]

    def completed(
        self, *args: str, timeout: int = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """``pollwatch ARGS`` run in a subprocess, in the package's folder."""
        return self.python("-m", "pollwatch", *args, timeout=timeout)

    def python(
        self, *args: str, timeout: int = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` (this interpreter) run in a subprocess, in the package's folder."""
        return subprocess.run(
            [sys.executable, *args],
            env=self.environment,
            cwd=self.package,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run(self, *args: str, timeout: int = COMMAND_TIMEOUT) -> str:
        """``pollwatch ARGS``: its output, after asserting it succeeded."""
        done = self.completed(*args, timeout=timeout)
        output = done.stdout + done.stderr
        assert done.returncode == 0, (
            f"pollwatch {' '.join(args)} exited {done.returncode}:\n{output}"
        )
        return output

    def analyze_json(self, *args: str) -> dict[str, Any]:
        """``pollwatch analyze ARGS --json``: the results by method name."""
        digest = hashlib.sha256(repr(args).encode()).hexdigest()[:8]
        target = self.home.parent / f"analyze-{digest}.json"
        self.run("analyze", *args, "--json", str(target))
        data = json.loads(target.read_text("utf-8"))
        return {result["method"]: result for result in data["results"]}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Plugin:
    """The page's package, installed on PYTHONPATH, and two simulated elections in its store."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "pollwatch-full-turnout"
    files = page_files(PAGE.read_text("utf-8"))
    assert {"pyproject.toml", "src/pollwatch_full_turnout/__init__.py"} <= set(files), files
    for relative, content in files.items():
        target = package / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    project = tomllib.loads(files["pyproject.toml"])["project"]
    points = project["entry-points"]["pollwatch.methods"]
    assert points == {NAME: "pollwatch_full_turnout:FullTurnout"}, points
    site = root / "site"  # what pip would write into site-packages, besides the source path
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
        encoding="utf-8",
    )
    (info / "entry_points.txt").write_text(
        "[pollwatch.methods]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()),
        encoding="utf-8",
    )
    home = root / "home"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POLLWATCH_")}
    environment.update(
        # the pollwatch under test (a worktree's sources, or the installed one) comes after
        PYTHONPATH=os.pathsep.join([str(site), str(package / "src"), str(POLLWATCH_SOURCES)]),
        POLLWATCH_HOME=str(home),
        POLLWATCH_DOWNLOAD="false",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
    )
    installed = Plugin(package, home, environment)
    installed.run("simulate", "--stations", "2000", "--seed", "1", "--id", "clean")
    stuffed = "simulate --stations 2000 --seed 1 --inject extreme-stuffing:0.05:0.5 --id stuffed"
    installed.run(*stuffed.split())
    return installed


def test_the_page_builds_a_package_whose_own_tests_pass(plugin: Plugin) -> None:
    """The page's tests/test_full_turnout.py: the pollwatch.testing checks and its numbers."""
    done = plugin.python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 5, done.stdout  # one per check, and more


def test_pollwatch_methods_lists_it_with_its_parameters(plugin: Plugin) -> None:
    listing = plugin.run("methods")
    assert NAME in listing and TITLE in listing, listing
    detail = plugin.run("methods", NAME)
    for parameter, default in (("min_registered", "100"), ("null_rate", "0.001")):
        assert re.search(rf"{parameter}\s*│\s*{re.escape(default)}\b", detail), detail


def test_analyze_runs_it_in_the_default_suite(plugin: Plugin) -> None:
    results = plugin.analyze_json("stuffed")
    assert NAME in results, sorted(results)
    assert len(results) > 10, sorted(results)  # beside the built-ins
    result = results[NAME]
    # 100 stations stuffed to full turnout (a few have under 100 registered)
    assert 90 <= result["details"]["stations_at_full_turnout"] <= 100, result["details"]
    assert result["p_value"] < 1e-50 and result["significant"] is True
    clean = plugin.analyze_json("clean", "-m", NAME)[NAME]
    assert (clean["statistic"], clean["p_value"], clean["flagged"]) == (0.0, 1.0, [])
    by_region = result["details"]["full_by_region"]
    assert sum(row[2] for row in by_region) == result["details"]["stations_at_full_turnout"]
    assert sum(row[1] for row in by_region) == result["sample_size"]


def _region_rows(by_region: list[list[Any]]) -> list[str]:
    """The first rows of the plug-in's table as the terminal prints them: region, used, full."""
    return [f"{region} {used:,} {full:,}" for region, used, full in by_region[:3]]


def test_analyze_prints_its_own_table_for_the_methods_named(plugin: Plugin) -> None:
    by_region = plugin.analyze_json("stuffed", "-m", NAME)[NAME]["details"]["full_by_region"]
    output = plugin.run("analyze", "stuffed", "-m", NAME)
    assert f"{NAME}: {SECTION}" in output, output
    squeezed = [" ".join(line.split()) for line in output.splitlines()]
    for row in _region_rows(by_region):
        assert row in squeezed, (row, output)
    assert "most stations at full turnout first" in output
    assert SECTION not in plugin.run("analyze", "stuffed")  # the default suite: one table


def test_analyze_runs_it_alone_with_a_parameter(plugin: Plugin) -> None:
    results = plugin.analyze_json("stuffed", "-m", NAME, "-p", "null_rate=0.0005")
    assert list(results) == [NAME]
    result = results[NAME]
    assert result["parameters"] == {"min_registered": 100, "null_rate": 0.0005, "alpha": 0.05}
    assert result["details"]["expected_under_null"] == pytest.approx(0.0005 * result["sample_size"])
    refused = plugin.completed("analyze", "stuffed", "-m", NAME, "-p", "null_rate=2")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "null_rate" in refused.stderr and "Traceback" not in refused.stderr


def test_the_html_report_has_its_section(plugin: Plugin) -> None:
    report = plugin.package / "report.html"
    plugin.run("report", "stuffed", "-o", str(report))
    text = report.read_text("utf-8")
    assert NAME in text and TITLE in text
    assert "share of stations at full turnout" in text
    section = text[text.index(f"<h3>{TITLE}") :]
    assert f"<h4>{SECTION}</h4>" in section.split("</section>")[0], section[:3000]


def test_compare_shows_it_by_default_and_by_name(plugin: Plugin) -> None:
    for args in ((), ("-m", NAME)):
        output = plugin.run("compare", "clean", "stuffed", *args)
        assert NAME in output, output
        # with -m, each election's own tables of the method follow (its sections)
        assert (f"{NAME}: {SECTION}" in output) == bool(args), output


def test_the_comparison_page_has_its_table_per_election(plugin: Plugin) -> None:
    page = plugin.package / "compare.html"
    plugin.run("compare", "clean", "stuffed", "--html", str(page))
    text = page.read_text("utf-8")
    heading = f"<h3>{SECTION} <small>({NAME})</small></h3>"
    assert heading in text, text[-5000:]
    tables = text.split(heading, 1)[1].split("</h3>", 1)[0]
    assert "<caption>clean</caption>" in tables and "<caption>stuffed</caption>" in tables


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


@pytest.fixture
def dashboard(plugin: Plugin, free_port: int) -> Iterator[str]:
    """``pollwatch serve`` on a free loopback port, up within a deadline; its base URL."""
    log = plugin.home.parent / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "pollwatch", "serve", "--port", str(free_port)],
            env=plugin.environment,
            cwd=plugin.package,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{free_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text("utf-8", "replace")
            try:
                if _get(f"{base}/api/elections")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "dashboard not up after 60 s\n" + log.read_text(
                "utf-8", "replace"
            )
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.network
def test_the_dashboard_shows_it_on_an_election_never_analysed(
    plugin: Plugin, dashboard: str
) -> None:
    plugin.run("simulate", "--stations", "500", "--seed", "2", "--id", "fresh")
    status, page = _get(f"{dashboard}/elections/fresh")
    assert status == 200 and NAME in page, page[:2000]
    status, body = _get(f"{dashboard}/api/elections/fresh/methods")
    assert status == 200, body
    data = json.loads(body)
    assert NAME in {row["method"] for row in data["methods"]}, data["methods"]
    assert NAME in {result["method"] for result in data["results"]}
    status, body = _get(f"{dashboard}/api/elections/fresh/methods/{NAME}?p=null_rate=0.0005")
    assert status == 200, body
    assert json.loads(body)["result"]["parameters"]["null_rate"] == 0.0005
    status, body = _get(f"{dashboard}/api/elections/fresh/methods/{NAME}?p=null_rate=2")
    assert status == 422 and "null_rate" in json.loads(body)["error"], body
    assert f"/elections/fresh/methods/{NAME}" in page  # the methods table links its page
    status, method_page = _get(f"{dashboard}/elections/fresh/methods/{NAME}")
    assert status == 200 and f"<h2>{SECTION}</h2>" in method_page, method_page[:3000]
    assert "<th>at full turnout</th>" in method_page
    status, _ = _get(f"{dashboard}/elections/fresh/methods/no-such-method")
    assert status == 404


def _source_calibration_files() -> dict[str, str]:
    """Digest of every calibration table shipped in the source tree."""
    source = ROOT / "src" / "pollwatch"
    found = {*source.rglob("calibration*.json"), *source.glob("calibration/tables/**/*")}
    return {
        str(path.relative_to(ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(found)
        if path.is_file()
    }


def test_calibrate_adds_its_calibration_and_changes_no_other(plugin: Plugin) -> None:
    shipped = _source_calibration_files()
    before = plugin.analyze_json("stuffed")
    assert not before[NAME]["calibration"], before[NAME]["calibration"]
    tiny_plan = "--elections 3 --stations 300 --replicates 1 --no-references --executor serial"
    plugin.run("calibrate", "-m", NAME, "--write-table", *tiny_plan.split(), timeout=600)
    assert (plugin.home / "calibration" / "tables" / f"{NAME}.json").is_file(), sorted(
        str(p.relative_to(plugin.home)) for p in (plugin.home / "calibration").rglob("*")
    )
    assert _source_calibration_files() == shipped, "calibrate wrote into the source tree"
    after = plugin.analyze_json("stuffed")
    calibration = after[NAME]["calibration"]
    assert calibration.get("calibrated") is True, calibration
    assert calibration.get("simulated_tests") == 3, calibration
    changed = [
        name
        for name in before
        if name != NAME and before[name]["calibration"] != after[name]["calibration"]
    ]
    assert not changed, changed
    alone = plugin.run("analyze", "stuffed", "-m", NAME)
    assert "not calibrated" not in alone, alone
