"""Where calibration cells run: a plain loop in this process, or tasks on Ray.

An executor takes the pending elections (:class:`~pollwatch.calibration.harness.Cell`) and the
methods that still need them, and calls ``finished(record)`` once per election as it ends (the
harness caches one cell per method and reports progress), in any order:

* ``serial``: one process, cells in plan order; the reference that every other executor must
  match number for number.
* ``ray``: one Ray task per cell on a local Ray started with ``num_cpus = workers`` (or the
  cluster at ``address``), at most ``4 x workers`` tasks in flight, gathered with
  ``ray.wait`` as they finish. Simulated cells are built on the workers; reference units are
  sent to them as task arguments. Ray is the optional extra ``pollwatch[scale]``; its start-up
  output is kept off the terminal (no dashboard, no worker logs on the driver, no logging
  set-up).

The cells' seeds depend only on the plan and the cell, so both executors give identical records.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pollwatch.calibration.harness import CalibrationPlan, Cell, MethodSpec, run_cell
from pollwatch.errors import PollwatchError
from pollwatch.results.model import Election

__all__ = ["EXECUTORS", "Executor", "ray_executor", "serial_executor"]

#: executor(plan, cells, methods, reference elections by cell key, finished, workers, address)
Executor = Callable[
    [
        CalibrationPlan,
        Sequence[Cell],
        Sequence[MethodSpec],
        Mapping[str, Election],
        Callable[[dict[str, Any]], None],
        int,
        "str | None",
    ],
    None,
]


def serial_executor(
    plan: CalibrationPlan,
    cells: Sequence[Cell],
    methods: Sequence[MethodSpec],
    elections: Mapping[str, Election],
    finished: Callable[[dict[str, Any]], None],
    workers: int = 1,
    address: str | None = None,
) -> None:
    """Run the cells one after another in this process."""
    for cell in cells:
        finished(run_cell(plan, cell, methods, elections.get(cell.key)))


def _check_reachable(address: str) -> None:
    """Fail fast, in one line, when a ``host:port`` Ray address does not answer."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    host, port = parts.hostname, parts.port
    if not host or port is None:
        raise PollwatchError(
            f"Ray address {address!r} is not host:port",
            hint="give the head node as HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001",
        )
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        raise PollwatchError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})",
            hint="start it with `ray start --head` there, check host and port, or leave out "
            "--address to run on a local Ray",
        ) from None


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise PollwatchError(
            "the Ray executor needs the ray package",
            hint="install the extra: pip install 'pollwatch[scale]', or use --executor serial",
        ) from None
    return ray


def ensure_ray(workers: int, address: str | None) -> Any:
    """Ray, started locally with ``workers`` CPUs or joined to ``address`` (once per process)."""
    ray = _ray()
    if address:
        _check_reachable(address)
    if ray.is_initialized():
        return ray
    logging.getLogger("ray").setLevel(logging.ERROR)
    options: dict[str, Any] = {
        "log_to_driver": False,
        "include_dashboard": False,
        "configure_logging": False,
        "logging_level": logging.ERROR,
    }
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(address="local", num_cpus=workers, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "locally"
        raise PollwatchError(
            f"Ray could not start {where}: {str(exc).splitlines()[0] if str(exc) else exc}",
            hint="check the address, or run with --executor serial",
        ) from None
    return ray


def _task(
    plan: CalibrationPlan,
    cell: Cell,
    methods: Sequence[MethodSpec],
    election: Election | None,
) -> dict[str, Any]:
    return run_cell(plan, cell, methods, election)


def ray_executor(
    plan: CalibrationPlan,
    cells: Sequence[Cell],
    methods: Sequence[MethodSpec],
    elections: Mapping[str, Election],
    finished: Callable[[dict[str, Any]], None],
    workers: int = 1,
    address: str | None = None,
) -> None:
    """Run the cells as Ray tasks, at most ``4 x workers`` in flight, reporting each as it ends."""
    ray = ensure_ray(workers, address)
    remote = ray.remote(num_cpus=1, max_retries=2)(_task)
    plan_ref = ray.put(plan)
    methods_ref = ray.put(list(methods))
    limit = max(1, 4 * workers)
    queue = list(cells)
    queue.reverse()
    in_flight: list[Any] = []
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                cell = queue.pop()
                in_flight.append(
                    remote.remote(plan_ref, cell, methods_ref, elections.get(cell.key))
                )
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            for reference in ready:
                finished(_get(ray, reference))
    finally:
        for reference in in_flight:
            ray.cancel(reference, force=True)


def _get(ray: Any, reference: Any) -> dict[str, Any]:
    try:
        record: dict[str, Any] = ray.get(reference)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else None
        if isinstance(cause, PollwatchError):
            raise cause from None
        raise
    return record


EXECUTORS: dict[str, Executor] = {"serial": serial_executor, "ray": ray_executor}
