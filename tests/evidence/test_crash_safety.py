"""Crash safety: real writer processes append concurrently and are killed with SIGKILL.

Each writer appends batches and prints ``<index> <sha256 of the entry>`` for every entry only
after ``append`` has returned (the acknowledgement). The test kills the writers at random,
seeded moments, for several rounds, and then requires that the log verifies, that every
acknowledged entry is at its index, that no index was given twice, that the size only grew,
and that roots captured earlier (between rounds and while writers ran) are consistent with the
final root.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pollwatch.evidence.log import EvidenceLog
from pollwatch.evidence.merkle import verify_consistency

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="needs POSIX signals and fcntl locks"
)

WRITER = r"""
import hashlib, importlib.util, random, sys, types

# pollwatch/__init__.py imports the results layer (polars): about a second per process on a
# small machine, for nothing the log needs. A bare package object skips it; the modules under
# test (pollwatch.errors, pollwatch.evidence.merkle, pollwatch.evidence.log) load as usual.
package = types.ModuleType("pollwatch")
package.__path__ = list(importlib.util.find_spec("pollwatch").submodule_search_locations)
sys.modules["pollwatch"] = package
from pollwatch.evidence.log import EvidenceLog, canonical_json

folder, name, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
generator = random.Random(seed)
log = EvidenceLog(folder)
print("ready", flush=True)
counter = 0
while True:
    batch = []
    for _ in range(generator.randint(1, 40)):
        counter += 1
        pad = generator.randbytes(generator.randint(0, 300)).hex()
        batch.append(canonical_json({"writer": name, "n": counter, "pad": pad}))
    indices = log.append(batch)
    # Printed only now: these entries are acknowledged.
    sys.stdout.write("".join(
        f"{index} {hashlib.sha256(entry).hexdigest()}\n" for index, entry in zip(indices, batch)
    ))
    sys.stdout.flush()
"""

WRITERS = 3
ROUNDS = 6


class Writer:
    """One writer process and a thread that drains its output (so it never blocks)."""

    def __init__(self, folder: Path, name: str, seed: int) -> None:
        source = Path(__file__).resolve().parents[2] / "src"
        environment = {
            **os.environ,
            "PYTHONPATH": f"{source}{os.pathsep}" + os.environ.get("PYTHONPATH", ""),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), name, str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
        self.lines: list[bytes] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line == b"ready\n":
                self.ready.set()
            else:
                self.lines.append(line)
        self.ready.set()  # exited (or was killed) before saying ready

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.thread.join(timeout=10)

    def acknowledged(self) -> list[tuple[int, str]]:
        # A line cut short by the kill has no newline: it was never fully acknowledged.
        found = []
        for line in self.lines:
            if line.endswith(b"\n"):
                index, digest = line.split()
                found.append((int(index), digest.decode()))
        return found


def _check(log: EvidenceLog, acknowledged: dict[int, str]) -> None:
    for index, digest in acknowledged.items():
        assert hashlib.sha256(log.entry(index)).hexdigest() == digest, index


def test_sigkilled_writers_never_lose_acknowledged_entries(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    generator = random.Random(20240611)
    acknowledged: dict[int, str] = {}
    checkpoints: list[tuple[int, bytes]] = []
    sizes = [0]
    started = time.monotonic()
    for round_number in range(ROUNDS):
        writers = [
            Writer(folder, f"w{round_number}.{k}", generator.randrange(1 << 30))
            for k in range(WRITERS)
        ]
        for writer in writers:
            assert writer.ready.wait(timeout=60), writer.process.stderr
        time.sleep(generator.uniform(0.05, 0.3))
        if round_number == 1:
            # A root taken while the writers are appending.
            with EvidenceLog(folder) as reader:
                checkpoints.append((reader.size, reader.root()))
        for writer in writers:
            time.sleep(generator.uniform(0.0, 0.15))
            writer.kill()
        for writer in writers:
            stderr = writer.process.stderr.read() if writer.process.stderr else b""
            assert b"Traceback" not in stderr, stderr.decode()
            previous = -1
            for index, digest in writer.acknowledged():
                assert index > previous  # one writer's indices only grow
                previous = index
                assert acknowledged.setdefault(index, digest) == digest, (
                    f"index {index} acknowledged twice with different entries"
                )
        with EvidenceLog(folder) as log:
            size = log.verify()
            assert size >= sizes[-1]
            assert size > max(acknowledged, default=-1)
            _check(log, acknowledged)
            checkpoints.append((size, log.root()))
            sizes.append(size)

    assert len(acknowledged) >= 20, "the writers acknowledged too little for a real test"
    with EvidenceLog(folder) as log:
        final_size, final_root = log.size, log.root()
        assert log.verify(final_size, final_root) == final_size
        _check(log, acknowledged)
        for size, root in checkpoints:
            if size == 0:
                continue
            assert log.root(size) == root
            verify_consistency(size, final_size, root, final_root, log.consistency_proof(size))
    assert sizes == sorted(sizes)
    assert time.monotonic() - started < 120
