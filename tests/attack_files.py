"""Hostile and large results files, generated in the test (issue 17, finding 3), and a probe
that imports one in a fresh process and says what it cost.

The attack shapes as reported: a zip of blank lines of 8, 32 and 64 kB (a MEDSL header then
blank lines: it used to import as a one-station election, 2.2 GB of memory for 8 kB, 7.9 GB and
26 s for 32 kB, over 12 GB for 64 kB) and a 32 MB plain CSV of blank lines (7.9 GB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

#: The header of a MEDSL precinct-returns file: detected as MEDSL, as the attacker's was.
MEDSL_HEADER = (
    b"state_postal,county_fips,county_name,jurisdiction,precinct,candidate,"
    b"candidate_normalized,party,writein,mode,votes\n"
)
#: deflate shrinks a run of newlines about 1,030 times: this many blank lines a kB of zip.
_BLANK_LINES_PER_KB = 1024 * 1000


def zip_of_blank_lines(folder: Path, kilobytes: int, *, header: bool = True) -> Path:
    """A zip of about ``kilobytes`` kB: one CSV member, a MEDSL header and blank lines."""
    path = folder / f"blank-{kilobytes}k.zip"
    body = (MEDSL_HEADER if header else b"") + b"\n" * (kilobytes * _BLANK_LINES_PER_KB)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("results.csv", body)
    size = path.stat().st_size
    assert 0.8 * kilobytes * 1024 < size < 1.2 * kilobytes * 1024, size
    return path


def csv_of_blank_lines(folder: Path, megabytes: int, *, header: bool = True) -> Path:
    """A plain CSV of ``megabytes`` MiB: a MEDSL header and blank lines."""
    path = folder / f"blank-{megabytes}m.csv"
    path.write_bytes((MEDSL_HEADER if header else b"") + b"\n" * (megabytes * 1024 * 1024))
    return path


_RUSSIAN_HEADER = (
    'region,tik,uik,"Число избирателей, включенных в список избирателей",'
    '"Число избирательных бюллетеней, полученных участковой избирательной комиссией",'
    '"Число избирательных бюллетеней, выданных избирателям, проголосовавшим досрочно",'
    '"Число избирательных бюллетеней, выданных в помещении для голосования в день голосования",'
    '"Число избирательных бюллетеней, выданных вне помещения для голосования в день голосования",'
    "Число погашенных избирательных бюллетеней,"
    "Число избирательных бюллетеней в переносных ящиках для голосования,"
    "Число бюллетеней в стационарных ящиках для голосования,"
    "Число недействительных избирательных бюллетеней,"
    "Число действительных избирательных бюллетеней,"
    "Число утраченных избирательных бюллетеней,"
    '"Число избирательных бюллетеней, не учтенных при получении",'
    "Иванов Иван Иванович,Петрова Мария Сергеевна,url\n"
)


def russian_table(path: Path, megabytes: float) -> int:
    """A genuine-looking Kobak/Shpilkin table of about ``megabytes`` MiB; returns its stations."""
    lines = [_RUSSIAN_HEADER]
    size = len(_RUSSIAN_HEADER.encode())
    station = 0
    while size < megabytes * 1024 * 1024:
        station += 1
        registered = 800 + station % 1700
        mobile = station % 40
        stationary = registered // 2 + station % 97
        invalid = station % 11
        valid = mobile + stationary - invalid
        first = valid * 3 // 5
        row = (
            f"Республика {station // 5000} (регион),{station // 500} Территориальная,"
            f"{station},{registered},{registered},0,{stationary},{mobile},"
            f"{registered - stationary - mobile},{mobile},{stationary},{invalid},{valid},0,0,"
            f"{first},{valid - first},http://www.vybory.izbirkom.ru/example\n"
        )
        lines.append(row)
        size += len(row.encode())
    path.write_text("".join(lines), encoding="utf-8")
    return station


_PROBE = r"""
import json, resource, sys, time
from pathlib import Path
from pollwatch.results.importers import ImportLimits, import_file
path, limits = Path(sys.argv[1]), json.loads(sys.argv[2])
start = time.perf_counter()
answer = {}
try:
    election = import_file(path, limits=ImportLimits(**limits))
    answer["stations"] = len(election)
except Exception as exc:
    answer["error"] = type(exc).__name__
    answer["message"] = str(exc)
answer["seconds"] = time.perf_counter() - start
# VmHWM: the peak of this process; ru_maxrss would carry the test runner's over from before exec
peak = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")]
kib = int(peak[0].split()[1]) if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
answer["peak_mib"] = kib / 1024
print(json.dumps(answer))
"""


def import_in_fresh_process(path: Path, **limits: Any) -> dict[str, Any]:
    """Import ``path`` (``pollwatch.import_file``) in a new interpreter; what it gave and cost.

    ``peak_mib`` is the process's peak resident memory (``VmHWM`` on Linux), interpreter and
    libraries included (about 55 MiB before any file is read).
    """
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), json.dumps(limits)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer
