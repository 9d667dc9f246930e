"""Imports as background jobs: each in its own worker process, off the server's event loop.

An upload is saved to a private temporary folder, and :class:`ImportJobs` runs
:func:`run_import` on it in a fresh Python process (``python -m pollwatch.web.jobs ORDER``; at
most ``Settings.import_workers`` at once, the others queued). The server's event loop only waits
on the job's future, so every other request is answered while an import runs; an import's
memory lives and dies with its process, so what a large import took is given back to the system
when it ends, and a worker that is killed (out of memory, say) fails its job with a 500 while
the server goes on. The worker runs at a lower priority (:data:`WORKER_NICENESS`), so on a busy
machine the server's own requests come first. A plain process, not :mod:`multiprocessing`:
nothing of the server's own ``__main__`` runs in the worker.

The worker reports progress (a stage and a fraction) to a small JSON file in the job's folder,
which :meth:`ImportJobs.snapshot` reads; ``GET /api/jobs/{id}`` and the ``/jobs/{id}`` page show
it. A job is ``queued``, ``running``, ``done`` (``result``: the election's ``id`` and ``url``) or
``failed`` (``error``: the one-line message, ``status``: 400 bad content, 413 over a limit, 500
an unexpected failure); a finished job also says its worker's peak memory (``peak_memory_mib``).
The last :data:`KEEP_FINISHED` finished jobs are remembered; the upload folder is removed as
soon as a job ends, and the store is written atomically, so a failed import leaves nothing
behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pollwatch
from pollwatch.errors import LimitError, PollwatchError
from pollwatch.fileio import atomic_write_json
from pollwatch.results.importers import ImportLimits, import_file
from pollwatch.results.store import ElectionStore

__all__ = [
    "KEEP_FINISHED",
    "MAX_WAITING",
    "WORKER_NICENESS",
    "ImportJobs",
    "ImportOrder",
    "JobsBusy",
    "WorkerDied",
    "run_import",
]

#: How many finished jobs are remembered for ``GET /api/jobs/{id}``.
KEEP_FINISHED = 200
#: How many imports may wait for a worker, per worker, before new ones are refused (503).
MAX_WAITING = 8
#: An import is background work: its worker lowers its priority so the server answers first.
WORKER_NICENESS = 10

_PROGRESS_FILE = "progress.json"
_ORDER_FILE = "order.json"
_RESULT_FILE = "result.json"

JobState = Literal["queued", "running", "done", "failed"]


class JobsBusy(Exception):
    """Too many imports are waiting for a worker (503)."""


@dataclass(frozen=True)
class ImportOrder:
    """Everything a worker needs to import one upload (written to the job folder as JSON)."""

    folder: Path
    upload: Path
    upload_name: str
    importer: str | None
    mapping: Path | None
    election_id: str | None
    elections_dir: Path
    limits: ImportLimits
    #: all-or-nothing: the first bad row fails the import (else bad rows are quarantined)
    strict: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("folder", "upload", "mapping", "elections_dir"):
            data[key] = None if data[key] is None else str(data[key])
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ImportOrder:
        data = json.loads(text)
        return cls(
            folder=Path(data["folder"]),
            upload=Path(data["upload"]),
            upload_name=data["upload_name"],
            importer=data["importer"],
            mapping=None if data["mapping"] is None else Path(data["mapping"]),
            election_id=data["election_id"],
            elections_dir=Path(data["elections_dir"]),
            limits=ImportLimits(**data["limits"]),
            strict=bool(data.get("strict", False)),
        )


class _ProgressFile:
    """Writes ``{"stage", "progress"}`` atomically, at most every 0.2 s unless the stage changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stage = ""
        self.written = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.written < 0.2:
            return
        self.stage, self.written = stage, now
        atomic_write_json(self.path, {"stage": stage, "progress": round(fraction, 3)})


def run_import(order: ImportOrder) -> dict[str, Any]:
    """Import one upload and store it (in a worker process); a plain dict says how it went.

    Reading takes the first 90 % of the progress, storing the rest. Errors a user can fix come
    back as ``{"error", "status"}`` with the temporary folder taken out of the message.
    """
    progress = _ProgressFile(order.folder / _PROGRESS_FILE)
    progress("reading", 0.0)
    try:
        election = import_file(
            order.upload,
            importer=order.importer,
            mapping=order.mapping,
            election_id=order.election_id,
            limits=order.limits,
            strict=order.strict,
            progress=lambda stage, fraction: progress(stage, 0.9 * fraction),
        )
        progress("storing", 0.9)
        ElectionStore(order.elections_dir).save(election)
    except PollwatchError as exc:
        # The temporary folder means nothing to the user: name the uploaded file.
        message = exc.one_line().replace(f"{order.folder}{os.sep}", "")
        return {"error": message, "status": 413 if isinstance(exc, LimitError) else 400}
    return {"id": election.id, "stations": len(election)}


class WorkerDied(Exception):
    """The worker process ended without a result (killed, out of memory, crashed)."""


def _run_worker(order: ImportOrder, running: dict[str, subprocess.Popen[bytes]]) -> dict[str, Any]:
    """Run one import in a fresh ``python -m pollwatch.web.jobs`` and read its result."""
    (order.folder / _ORDER_FILE).write_text(order.to_json(), encoding="utf-8")
    environment = dict(os.environ)
    # The worker imports this very pollwatch, wherever it was imported from.
    source_root = str(Path(pollwatch.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(
        [source_root, *filter(None, [environment.get("PYTHONPATH")])]
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pollwatch.web.jobs", str(order.folder / _ORDER_FILE)],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    running[str(order.folder)] = process
    try:
        _, stderr = process.communicate()
    finally:
        running.pop(str(order.folder), None)
    try:
        result: dict[str, Any] = json.loads((order.folder / _RESULT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise WorkerDied(f"exit status {process.returncode}; {last[0][:200]}") from None
    return result


@dataclass
class _Job:
    id: str
    order: ImportOrder
    future: Future[dict[str, Any]]
    created: float
    finished: float | None = None


class ImportJobs:
    """The dashboard's import jobs: worker processes and what each job has done.

    ``on_stored(election_id)`` is called (in a pool thread) after a job stored an election.
    """

    def __init__(self, workers: int, on_stored: Callable[[str], None]) -> None:
        self.workers = max(1, workers)
        self._on_stored = on_stored
        self._executor: ThreadPoolExecutor | None = None
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._lock = threading.Lock()

    def _pool(self) -> ThreadPoolExecutor:
        # Threads that only wait for their worker process: they hold no GIL while it runs.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="pollwatch-job")
        return self._executor

    def submit(self, order: ImportOrder) -> str:
        """Queue an import; returns the job id. :class:`JobsBusy` when too many are waiting."""
        with self._lock:
            waiting = sum(1 for job in self._jobs.values() if not job.future.done())
            if waiting >= MAX_WAITING * self.workers:
                raise JobsBusy(
                    f"{waiting} imports are already running or waiting; try again when one "
                    "has finished (or raise import_workers)"
                )
            future = self._pool().submit(_run_worker, order, self._running)
            job = _Job(id=uuid.uuid4().hex, order=order, future=future, created=time.time())
            self._jobs[job.id] = job
            self._forget_old()
        future.add_done_callback(lambda _: self._finished(job))
        return job.id

    def _finished(self, job: _Job) -> None:
        job.finished = time.time()
        shutil.rmtree(job.order.folder, ignore_errors=True)
        outcome = self._outcome(job)
        if outcome.get("error") is None and outcome.get("id"):
            self._on_stored(str(outcome["id"]))

    def _forget_old(self) -> None:
        finished = [key for key, job in self._jobs.items() if job.future.done()]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[key]

    @staticmethod
    def _outcome(job: _Job) -> dict[str, Any]:
        """The finished job's result, or its error with an HTTP status."""
        error = job.future.exception()
        if isinstance(error, WorkerDied):
            return {
                "error": "the import worker stopped unexpectedly (killed for using too much "
                f"memory?): {error}; nothing was stored",
                "status": 500,
            }
        if error is not None:
            line = str(error).splitlines()[0] if str(error) else ""
            return {"error": f"internal error: {type(error).__name__}: {line}", "status": 500}
        return dict(job.future.result())

    def known(self, job_id: str) -> bool:
        return job_id in self._jobs

    def snapshot(self, job_id: str) -> dict[str, Any]:
        """What ``GET /api/jobs/{id}`` answers: state, stage, progress, result or error."""
        job = self._jobs[job_id]
        state: JobState
        result: dict[str, Any] | None = None
        error: str | None = None
        status: int | None = None
        peak: float | None = None
        if job.future.done():
            outcome = self._outcome(job)
            peak = outcome.get("peak_memory_mib")
            if outcome.get("error") is not None:
                state, stage, fraction = "failed", "failed", 1.0
                error, status = str(outcome["error"]), int(outcome["status"])
            else:
                state, stage, fraction, status = "done", "done", 1.0, 201
                election_id = str(outcome["id"])
                result = {
                    "id": election_id,
                    "url": f"/elections/{election_id}",
                    "stations": outcome.get("stations"),
                }
        else:
            reported = _read_progress(job.order.folder / _PROGRESS_FILE)
            if reported is None:
                state, stage, fraction = "queued", "queued", 0.0
            else:
                state = "running"
                stage, fraction = reported
        return {
            "job": job.id,
            "kind": "import",
            "file": job.order.upload_name,
            "state": state,
            "stage": stage,
            "progress": fraction,
            "result": result,
            "error": error,
            "status": status,
            "peak_memory_mib": peak,
            "created": _iso(job.created),
            "finished": _iso(job.finished) if job.finished is not None else None,
            "poll": f"/api/jobs/{job.id}",
        }

    async def wait(self, job_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the job, without blocking the event loop."""
        future = self._jobs[job_id].future
        if not future.done() and timeout > 0:
            # A timeout leaves the job running; its own failure is read from its snapshot.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        return future.done()

    def shutdown(self) -> None:
        """Cancel the jobs still waiting and stop the running workers."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        for process in list(self._running.values()):
            with contextlib.suppress(OSError):
                process.kill()


def _peak_memory_mib() -> float | None:
    """This process's peak resident memory in MiB (None where the platform does not say).

    On Linux from ``VmHWM``: ``ru_maxrss`` there carries over the parent's peak from before
    ``exec``, so it would report the server's memory, not the import's.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _read_progress(path: Path) -> tuple[str, float] | None:
    try:
        data = json.loads(path.read_text())
        return str(data["stage"]), float(data["progress"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def _main(argv: list[str]) -> int:
    """``python -m pollwatch.web.jobs ORDER``: run the import and write its result next to it."""
    order_file = Path(argv[0])
    order = ImportOrder.from_json(order_file.read_text("utf-8"))
    with contextlib.suppress(AttributeError, OSError):  # no os.nice on Windows
        os.nice(WORKER_NICENESS)
    try:
        result = run_import(order)
    except MemoryError:
        result = {"error": "the import ran out of memory; nothing was stored", "status": 500}
    except Exception as exc:  # one line for the job, never a traceback
        line = str(exc).splitlines()[0] if str(exc) else ""
        result = {"error": f"internal error: {type(exc).__name__}: {line}", "status": 500}
    result["peak_memory_mib"] = _peak_memory_mib()
    atomic_write_json(order.folder / _RESULT_FILE, result)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
