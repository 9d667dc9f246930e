"""`analyze` on a national OpenElections file: wall time and peak memory, against Russia 2018.

Target (issue 12): the whole default method suite, as ``pollwatch analyze`` runs it, on a
synthetic 170,000-precinct national US election imported by the ``openelections`` importer
(candidate spellings consolidated) within 1.5x the time of the same suite on the Russian 2018
presidential election (97,699 stations, mirror file ``russia_cec/2018.csv.zip``, imported by the
``russia-cec`` importer), measured in the same run. Each measurement is a fresh process with no
result cache; national and Russian runs alternate, so that both see the same load, and the
ratio is reported with the ratio of each pair. Without the mirror the comparison is skipped with
a message and the national run is reported alone. The suite computes its methods on threads, so
``--per-method`` adds a fresh process per election that runs each method alone, one after
another, and reports its wall and CPU time.

The national file is generated here (not timed): 51 states, ~3,100 counties, precincts of
lognormal size with registered voters, "Times Cast", over and under votes, a total line and
write-ins inside the contest, and each county spelling the candidates its own way (22 spellings
of the leader, as in the file of the issue). ``--fragmented`` also times the suite on the same
file imported with ``separate=all`` (every spelling its own candidate: the behaviour before
consolidation).

Usage: ``python benchmarks/bench_openelections.py [--precincts 170000] [--repeat 2]
[--fragmented] [--per-method]``. Results go to ``benchmarks/results/openelections.json``
and standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from _common import write_results

MIRROR_FILE = Path("russia_cec") / "2018.csv.zip"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, source = sys.argv[1], sys.argv[2]
options = json.loads(sys.argv[3])
from pollwatch.results.importers import get_importer
from pollwatch.forensics.base import METHODS, MethodNotApplicable, get_method, method_names
from pollwatch.forensics.suite import run_suite
kind, _, alone = mode.partition("-")
start = time.perf_counter()
importer = "russia-cec" if kind == "russia" else "openelections"
election = get_importer(importer).read(Path(source), options=options or None)
imported = time.perf_counter() - start
methods, skipped = {}, []
if alone:  # each method alone, one after another, with its suite parameters
    election.content_digest()  # the suite computes it once, before any method
    start, cpu = time.perf_counter(), time.process_time()
    for name in method_names("in_default_suite"):
        one, one_cpu = time.perf_counter(), time.process_time()
        try:
            get_method(name, **dict(METHODS.get(name).suite_parameters)).run(election)
        except MethodNotApplicable:
            skipped.append(name)
        methods[name] = [time.perf_counter() - one, time.process_time() - one_cpu]
else:
    start, cpu = time.perf_counter(), time.process_time()
    report = run_suite(election)  # as 'pollwatch analyze' runs it, no cache
    skipped = [m for m, _ in report.skipped]
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "seconds": elapsed, "cpu_seconds": cpu, "import_seconds": imported, "peak_mib": peak,
    "methods": methods, "skipped": skipped, "stations": len(election),
    "candidates": len(election.meta.candidates),
}))
"""

# Spellings per candidate, the first the most common (issue 12 counted 22-25 per candidate).
SPELLINGS: dict[str, list[str]] = {
    "biden": [
        "Joseph R. Biden", "JOSEPH R BIDEN", "Biden, Joseph R.", "Biden/Harris",
        "JOSEPH R. BIDEN JR.", "Joseph R. Biden Jr.", "Joe Biden", "BIDEN / HARRIS",
        "Joseph Biden", "Biden, Joseph R., Jr.", "Joseph R Biden", "joseph r. biden",
        "Joseph R. Biden / Kamala D. Harris", "BIDEN, JOSEPH R", "Joseph Robinette Biden Jr.",
        "Biden and Harris", "JOE BIDEN", "Joseph R. Biden (DEM)", "Biden & Harris", "J. Biden",
        "Biden, Joe", "JOSEPH R. BIDEN / KAMALA D. HARRIS",
    ],
    "trump": [
        "Donald J. Trump", "DONALD J TRUMP", "Trump, Donald J.", "Trump/Pence",
        "Donald J. Trump / Michael R. Pence", "TRUMP, DONALD J.", "Donald Trump",
        "DONALD J. TRUMP", "Trump and Pence", "D. Trump", "Donald J Trump", "TRUMP / PENCE",
        "Trump, Donald", "Donald John Trump", "donald j. trump", "Donald J. Trump (REP)",
        "DONALD TRUMP", "Trump & Pence", "Donald J. Trump/Michael R. Pence", "Trump, Donald J",
        "DONALD J. TRUMP / MICHAEL R. PENCE", "Trump",
    ],
    "jorgensen": ["Jo Jorgensen", "JO JORGENSEN", "Jorgensen, Jo", "Jorgensen/Cohen",
                  "Jo Jorgensen / Jeremy Cohen", "JORGENSEN / COHEN"],
    "hawkins": ["Howie Hawkins", "HOWIE HAWKINS", "Hawkins, Howie", "Hawkins/Walker",
                "Howie Hawkins / Angela Walker"],
    "west": ["Kanye West", "KANYE WEST", "West, Kanye", "Kanye Omari West"],
}  # fmt: skip
SHARES = {"jorgensen": 0.012, "hawkins": 0.003, "west": 0.001}
STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
]
SPELLED_OUT = {"PA": "Pennsylvania", "WI": "Wisconsin", "NC": "North Carolina"}


def national_file(target: Path, precincts: int, seed: int = 2020) -> dict[str, int]:
    """Write the synthetic national file; returns its votes per candidate (source rows)."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 0.9, len(STATES))
    state = rng.choice(len(STATES), size=precincts, p=weights / weights.sum())
    counties_per_state = rng.integers(5, 120, len(STATES))
    county = (rng.random(precincts) * counties_per_state[state]).astype(np.int64)
    county_key = state * 1000 + county
    registered = np.maximum(20, rng.lognormal(np.log(900), 0.6, precincts)).astype(np.int64)
    turnout = np.clip(
        rng.normal(0.66, 0.08, len(STATES))[state] + rng.normal(0, 0.06, precincts), 0.2, 0.98
    )
    ballots = rng.binomial(registered, turnout)
    over = rng.binomial(ballots, 0.002)
    under = rng.binomial(ballots, 0.01)
    valid = ballots - over - under
    lean = (
        rng.normal(0, 0.6, len(STATES))[state] + rng.normal(0, 0.5, 100_000)[county_key % 100_000]
    )
    biden_share = 1 / (1 + np.exp(-(lean + rng.normal(0, 0.3, precincts))))
    minor = sum(SHARES.values()) + 0.002
    votes: dict[str, np.ndarray] = {}
    rest = valid.copy()
    votes["biden"] = rng.binomial(valid, biden_share * (1 - minor))
    rest = valid - votes["biden"]
    left = 1 - biden_share * (1 - minor)
    for name, share in SHARES.items():
        votes[name] = rng.binomial(rest, np.clip(share / left, 0, 1))
        rest = rest - votes[name]
        left = left - share
    writeins = rng.binomial(rest, np.clip(0.002 / left, 0, 1))
    votes["trump"] = rest - writeins
    # Each county spells a candidate its own way; the first spelling is the most common.
    names = np.array(
        [SPELLED_OUT.get(STATES[s], STATES[s]) for s in range(len(STATES))], dtype=object
    )
    base = pl.DataFrame(
        {
            "state": names[state],
            "county": [f"County {c + 1}" for c in county],
            "precinct": [f"Precinct {i + 1}" for i in range(precincts)],
        }
    )
    parts = []

    def rows(candidate: object, counts: np.ndarray) -> pl.DataFrame:
        return base.with_columns(
            pl.lit("President").alias("office"),
            pl.lit(None, dtype=pl.String).alias("district"),
            pl.lit(None, dtype=pl.String).alias("party"),
            (
                pl.Series("candidate", candidate, dtype=pl.String)
                if isinstance(candidate, np.ndarray)
                else pl.lit(candidate, dtype=pl.String).alias("candidate")
            ),
            pl.Series("votes", counts, dtype=pl.Int64),
        )

    totals: dict[str, int] = {}
    for person, spellings in SPELLINGS.items():
        popularity = 1 / np.arange(1, len(spellings) + 1) ** 0.7
        choice = rng.choice(len(spellings), size=100_000, p=popularity / popularity.sum())
        spelled = np.array(spellings, dtype=object)[choice[county_key % 100_000]]
        parts.append(rows(spelled, votes[person]))
        totals[person] = int(votes[person].sum())
    parts += [
        rows("Write-ins", writeins),
        rows("Over Votes", over),
        rows("Under Votes", under),
        rows("Registered Voters", registered),
        rows("Times Cast", ballots),
        rows("Total", valid),
    ]
    pl.concat(parts).write_csv(target)
    totals["write-ins"] = int(writeins.sum())
    return totals


def measure(mode: str, source: Path, options: dict[str, str] | None = None) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(source), json.dumps(options or {})],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return data


def summarise(results: list[dict[str, object]]) -> dict[str, object]:
    seconds = [float(r["seconds"]) for r in results]  # type: ignore[arg-type]
    return {
        "median_seconds": statistics.median(seconds),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "median_cpu_seconds": statistics.median(float(r["cpu_seconds"]) for r in results),  # type: ignore[arg-type]
        "import_seconds": statistics.median(float(r["import_seconds"]) for r in results),  # type: ignore[arg-type]
        "peak_mib": max(float(r["peak_mib"]) for r in results),  # type: ignore[arg-type]
        "stations": results[-1]["stations"],
        "candidates": results[-1]["candidates"],
        "skipped": results[-1]["skipped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precincts", type=int, default=170_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--fragmented", action="store_true")
    parser.add_argument("--per-method", action="store_true")
    args = parser.parse_args()
    mirror = os.environ.get("POLLWATCH_DATA_MIRROR", "")
    russia = Path(mirror) / MIRROR_FILE if mirror else None
    if russia is not None and not russia.exists():
        russia = None
    report: dict[str, object] = {
        "precincts": args.precincts,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    national_runs: list[dict[str, object]] = []
    russia_runs: list[dict[str, object]] = []
    alone: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "20201103__us__general__precinct.csv"
        report["source_totals"] = national_file(source, args.precincts)
        report["source_mib"] = source.stat().st_size / 2**20
        for _ in range(args.repeat):  # alternating, so that both see the same load
            national_runs.append(measure("national", source))
            if russia is not None:
                russia_runs.append(measure("russia", russia))
        report["national"] = summarise(national_runs)
        if args.fragmented:
            fragmented = [measure("national", source, {"separate": "all"})]
            report["fragmented"] = summarise(fragmented)
        if args.per_method:
            alone["national"] = measure("national-alone", source)["methods"]
            if russia is not None:
                alone["russia"] = measure("russia-alone", russia)["methods"]
            report["methods_alone"] = alone
    if russia_runs:
        report["russia_2018"] = summarise(russia_runs)
    else:
        print(f"Russia 2018 mirror file absent ({MIRROR_FILE} under POLLWATCH_DATA_MIRROR): "
              "comparison skipped")  # fmt: skip
    report["load_average_after"] = os.getloadavg()
    national = report["national"]
    assert isinstance(national, dict)
    print(
        f"national ({national['stations']:,} precincts, {national['candidates']} candidates, "
        f"{report['source_mib']:.0f} MiB CSV): import {national['import_seconds']:.1f} s, "
        f"analyze {national['median_seconds']:.1f} s ({national['min_seconds']:.1f}-"
        f"{national['max_seconds']:.1f}), CPU {national['median_cpu_seconds']:.1f} s, "
        f"peak {national['peak_mib']:.0f} MiB"
    )
    reference = report.get("russia_2018")
    if isinstance(reference, dict):
        ratios = [
            float(n["seconds"]) / float(r["seconds"])  # type: ignore[arg-type]
            for n, r in zip(national_runs, russia_runs, strict=True)
        ]
        ratio = float(national["median_seconds"]) / float(reference["median_seconds"])
        cpu_ratio = float(national["median_cpu_seconds"]) / float(reference["median_cpu_seconds"])
        memory = float(national["peak_mib"]) / float(reference["peak_mib"])
        report["ratio_time_national_over_russia"] = ratio
        report["ratio_cpu_national_over_russia"] = cpu_ratio
        report["ratios_per_pair"] = ratios
        report["ratio_peak_memory_national_over_russia"] = memory
        print(
            f"russia 2018 ({reference['stations']:,} stations): analyze "
            f"{reference['median_seconds']:.1f} s ({reference['min_seconds']:.1f}-"
            f"{reference['max_seconds']:.1f}), CPU {reference['median_cpu_seconds']:.1f} s, "
            f"peak {reference['peak_mib']:.0f} MiB"
        )
        print(
            f"ratio national / russia: time {ratio:.2f}x (target 1.5x; pairs "
            f"{', '.join(f'{r:.2f}' for r in ratios)}), CPU {cpu_ratio:.2f}x, "
            f"memory {memory:.2f}x"
        )
    before, after = report["load_average_before"], report["load_average_after"]
    print(f"load average (1, 5, 15 min) before {before}, after {after}; {os.cpu_count()} CPUs")
    fragmented_run = report.get("fragmented")
    if isinstance(fragmented_run, dict):
        print(
            f"fragmented (separate=all, {fragmented_run['candidates']} candidates): analyze "
            f"{fragmented_run['median_seconds']:.1f} s, peak {fragmented_run['peak_mib']:.0f} MiB"
        )
    ours = alone.get("national")
    if isinstance(ours, dict):
        theirs = alone.get("russia", {})
        assert isinstance(theirs, dict)
        print("each method alone (wall, CPU):")
        for method, (seconds, cpu) in sorted(ours.items(), key=lambda item: -float(item[1][0])):
            other = (
                f"   russia {theirs[method][0]:6.2f} s {theirs[method][1]:6.2f} s"
                if method in theirs
                else ""
            )
            print(f"  {method:24s} {seconds:6.2f} s {cpu:6.2f} s{other}")
    write_results("openelections", report)


if __name__ == "__main__":
    main()
