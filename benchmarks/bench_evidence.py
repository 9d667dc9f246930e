"""Evidence archive speed against the reference approach, in the same run, as ratios.

Three measurements (targets from the evidence issue):

1. Ingest hashing throughput: ``FilesystemBackend.put`` of a generated file (hash while writing
   a temporary copy, fsync, link into place) against ``sha256sum`` on the same file, both with
   the file in the page cache. Target: put >= 50% of sha256sum's MB/s.
2. Durable appends of small entries (~200 bytes, 100 per batch, fsync per batch):
   ``EvidenceLog.append`` against a plain ``open(path, 'ab')`` write + fsync of the same record
   bytes per batch. Target: >= 5,000 entries/s.
3. Verifying a 1,000,000-entry log from scratch: ``EvidenceLog(folder)`` then ``verify()``
   (every record re-read, every leaf hash and the root recomputed), against one hashlib pass over
   the same data file. Target: < 30 s.
   Then the check every archive open runs (``EvidenceLog.check`` against the checkpoint's size
   and root): cold (no seal yet: a full walk, then the seal is written), warm (the sealed prefix
   re-hashed in one pass), and warm after one more append (one entry walked). No target: the
   point is what each ``pollwatch evidence add`` pays on a large log.

Results go to ``benchmarks/results/evidence.json`` (ignored by git) and to standard output.

Usage: ``python benchmarks/bench_evidence.py [--workdir DIR] [--ingest-mb 256]
[--entries 1000000] [--repeat 3]``. The work folder must be on the disk you care about (a
RAM-backed /tmp makes fsync free); the default is a folder under ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, median_time, write_results
from pollwatch.evidence.log import EvidenceLog, canonical_json
from pollwatch.evidence.merkle import leaf_hash
from pollwatch.evidence.objects import FilesystemBackend


def filesystem_of(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "-T", str(path)], check=True, capture_output=True, text=True
        ).stdout
        return out.splitlines()[1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def generate_file(path: Path, megabytes: int) -> int:
    block = os.urandom(16 << 20)
    size = megabytes * 1000 * 1000
    with path.open("wb") as handle:
        written = 0
        while written < size:
            part = block[: size - written]
            handle.write(part)
            written += len(part)
        handle.flush()
        os.fsync(handle.fileno())
    return size


def bench_ingest(work: Path, megabytes: int, repeat: int) -> dict[str, float]:
    source = work / "ingest-source.bin"
    size = generate_file(source, megabytes)
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        raise SystemExit("sha256sum is not on PATH: it is the reference for the ingest benchmark")
    reference_digest = ""

    def reference() -> None:
        nonlocal reference_digest
        out = subprocess.run([sha256sum, str(source)], check=True, capture_output=True, text=True)
        reference_digest = out.stdout.split()[0]

    store = FilesystemBackend(work / "objects")
    stored = ""

    def put() -> None:
        nonlocal stored
        with source.open("rb") as handle:
            stored = store.put(handle).sha256

    def hash_only() -> None:
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)

    reference()  # warm the page cache for all three
    reference_seconds = median_time(reference, repeat)
    put_seconds = median_time(put, repeat)
    # Context, not the target: Python's hashlib (OpenSSL) reading the file without writing.
    hash_only_seconds = median_time(hash_only, repeat)
    if stored != reference_digest:
        raise SystemExit(f"put() stored {stored}, sha256sum says {reference_digest}")
    megabytes_total = size / 1e6
    result = {
        "file_mb": megabytes_total,
        "sha256sum_mb_per_s": megabytes_total / reference_seconds,
        "put_mb_per_s": megabytes_total / put_seconds,
        "hashlib_read_only_mb_per_s": megabytes_total / hash_only_seconds,
    }
    result["ratio"] = result["put_mb_per_s"] / result["sha256sum_mb_per_s"]
    source.unlink()
    return result


def small_entries(count: int, offset: int = 0) -> list[bytes]:
    entries = []
    for number in range(offset, offset + count):
        entry = canonical_json(
            {
                "kind": "item",
                "item": hashlib.sha256(number.to_bytes(8, "big")).hexdigest(),
                "size": 1000 + number,
                "media_type": "image/jpeg",
                "station": f"S-{number % 9973:05}",
                "captured": "2024-03-17T08:00:00Z",
                "n": number,
            }
        )
        entries.append(entry)
    return entries


def bench_appends(work: Path, count: int, batch: int) -> dict[str, float]:
    entries = small_entries(count)
    batches = [entries[i : i + batch] for i in range(0, count, batch)]

    folder = work / "append-log"
    with EvidenceLog(folder) as log:
        start = time.perf_counter()
        for part in batches:
            log.append(part)
        log_seconds = time.perf_counter() - start
        assert log.size == count

    records = [
        b"".join(len(e).to_bytes(4, "big") + e + leaf_hash(e) for e in part) for part in batches
    ]
    plain = work / "append-plain.bin"
    start = time.perf_counter()
    with plain.open("ab") as handle:
        for record in records:
            handle.write(record)
            handle.flush()
            os.fsync(handle.fileno())
    plain_seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    plain.unlink()
    result = {
        "entries": count,
        "batch": batch,
        "mean_entry_bytes": sum(map(len, entries)) / count,
        "log_entries_per_s": count / log_seconds,
        "plain_write_fsync_entries_per_s": count / plain_seconds,
    }
    result["ratio"] = result["log_entries_per_s"] / result["plain_write_fsync_entries_per_s"]
    return result


def bench_verify(work: Path, count: int) -> dict[str, float]:
    folder = work / "verify-log"
    build_start = time.perf_counter()
    with EvidenceLog(folder) as log:
        step = 10_000
        for offset in range(0, count, step):
            log.append(small_entries(min(step, count - offset), offset))
        root = log.root()
    build_seconds = time.perf_counter() - build_start

    start = time.perf_counter()
    with EvidenceLog(folder) as log:
        opened = time.perf_counter()
        size = log.verify(count, root)
        verified = time.perf_counter()
    assert size == count

    # The check of every archive open: the first one walks everything and seals, later ones
    # re-hash the sealed prefix and walk what was appended since.
    seal = folder / "verified.json"
    seal.unlink(missing_ok=True)
    with EvidenceLog(folder) as log:
        start_cold = time.perf_counter()
        log.check(count, root)
        cold = time.perf_counter() - start_cold
    start_warm = time.perf_counter()
    with EvidenceLog(folder) as log:
        opened_warm = time.perf_counter()
        log.check(count, root)
        warm = time.perf_counter() - opened_warm
        log.append(small_entries(1, count))
        start_after = time.perf_counter()
        log.check(count, root)
        after_append = time.perf_counter() - start_after

    data = folder / "entries.bin"
    start_reference = time.perf_counter()
    digest = hashlib.sha256()
    with data.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    reference_seconds = time.perf_counter() - start_reference
    data_mb = data.stat().st_size / 1e6
    shutil.rmtree(folder)
    return {
        "entries": count,
        "data_mb": data_mb,
        "build_s": build_seconds,
        "open_s": opened - start,
        "verify_s": verified - opened,
        "open_and_verify_s": verified - start,
        "hashlib_one_pass_s": reference_seconds,
        "ratio_to_one_pass": (verified - start) / reference_seconds,
        "check_cold_s": cold,
        "open_again_s": opened_warm - start_warm,
        "check_warm_s": warm,
        "check_after_one_append_s": after_append,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--ingest-mb", type=int, default=256)
    parser.add_argument("--append-entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    parent = args.workdir or RESULTS
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-evidence-", dir=parent))
    try:
        machine = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "openssl": __import__("ssl").OPENSSL_VERSION,
            "workdir_filesystem": filesystem_of(work),
        }
        print(f"machine: {machine}")
        ingest = bench_ingest(work, args.ingest_mb, args.repeat)
        print(
            f"ingest   put {ingest['put_mb_per_s']:.0f} MB/s, sha256sum "
            f"{ingest['sha256sum_mb_per_s']:.0f} MB/s, ratio {ingest['ratio']:.2f} "
            f"(target >= 0.5); hashlib read+hash only {ingest['hashlib_read_only_mb_per_s']:.0f} "
            "MB/s"
        )
        appends = bench_appends(work, args.append_entries, args.batch)
        print(
            f"appends  log {appends['log_entries_per_s']:.0f} entries/s, plain write+fsync "
            f"{appends['plain_write_fsync_entries_per_s']:.0f} entries/s, ratio "
            f"{appends['ratio']:.2f} (target >= 5000 entries/s)"
        )
        verify = bench_verify(work, args.entries)
        print(
            f"verify   {verify['entries']} entries ({verify['data_mb']:.0f} MB): open "
            f"{verify['open_s']:.2f} s + verify {verify['verify_s']:.2f} s = "
            f"{verify['open_and_verify_s']:.2f} s (target < 30 s); hashlib one pass "
            f"{verify['hashlib_one_pass_s']:.2f} s, ratio {verify['ratio_to_one_pass']:.1f}"
        )
        print(
            f"check    cold {verify['check_cold_s']:.2f} s (full walk, then sealed); warm: open "
            f"{verify['open_again_s']:.2f} s + check {verify['check_warm_s']:.2f} s; after one "
            f"append {verify['check_after_one_append_s']:.2f} s"
        )
        results = {"machine": machine, "ingest": ingest, "appends": appends, "verify": verify}
        print(f"written {write_results('evidence', results)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
