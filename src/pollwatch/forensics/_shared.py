"""Work several methods of one suite share, computed once per election.

Inside :func:`shared_work` (:func:`~pollwatch.forensics.suite.run_suite` opens one around its
methods), :func:`shared` returns what an earlier call with the same key computed instead of
computing it again: the EFT tests' variables (turnout and vote shares) and their bootstrap
resample weights. A key names the election by its content digest and spells out
every definition and parameter the value depends on, so a hit is the very value the call would
have computed. Outside a scope nothing is kept: a long-lived process (the dashboard) holds
nothing between suites, and a method run on its own computes everything itself.

The cache is bounded (least recently used first out, by the bytes of the arrays and frames it
holds) and thread-safe: the methods of one suite run on several threads, and a value two of
them ask for at once is computed once. Values are shared, not copied: callers never modify
them.

:func:`one_blas_thread` runs a block with scipy's OpenBLAS on one thread: scipy's L-BFGS-B
makes thousands of tiny BLAS calls, on which OpenBLAS's own threads only wait and spin, and
the suite already keeps the cores busy with its methods' threads. numpy's OpenBLAS is left
alone: its matrix products (the EFT bootstrap sums) differ in the last bits with its thread
count, so changing it while another method multiplies would make results depend on timing.

Imports: numpy and polars only (and ctypes, to reach OpenBLAS).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

import numpy as np
import polars as pl

__all__ = ["SHARED_BYTES", "one_blas_thread", "shared", "shared_work", "sharing"]

T = TypeVar("T")

#: the most bytes a scope keeps (values above it are computed and not kept)
SHARED_BYTES = 200 * 2**20


def _nbytes(value: Any, seen: set[int] | None = None) -> int:
    """Bytes held by numpy arrays and polars frames in ``value`` (tuples, lists, dataclasses;
    an object held twice counts once)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, pl.DataFrame | pl.Series):
        return int(value.estimated_size())
    if isinstance(value, tuple | list):
        return sum(_nbytes(v, seen) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return sum(_nbytes(getattr(value, f.name), seen) for f in fields(value))
    return 0


class _Cache:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._computing: dict[Hashable, threading.Lock] = {}

    def _hit(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return True, self._values[key][0]
            return False, None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        found, value = self._hit(key)
        if found:
            return value  # type: ignore[no-any-return]
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:  # a second caller of the same key waits for the first
            found, value = self._hit(key)
            if found:
                return value  # type: ignore[no-any-return]
            result = compute()
            size = _nbytes(result)
            with self._lock:
                self._computing.pop(key, None)
                if size <= self.limit:
                    self._values[key] = (result, size)
                    self.held += size
                    while self.held > self.limit:
                        _, (_, dropped) = self._values.popitem(last=False)
                        self.held -= dropped
            return result


_SCOPE: ContextVar[_Cache | None] = ContextVar("pollwatch_shared_work", default=None)


@contextmanager
def shared_work(limit: int = SHARED_BYTES) -> Iterator[None]:
    """Share work between the methods run inside (see the module docstring); nested scopes
    use the outermost one."""
    if _SCOPE.get() is not None:
        yield
        return
    token = _SCOPE.set(_Cache(limit))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def sharing() -> bool:
    """Whether a :func:`shared_work` scope is open (values computed now may be reused)."""
    return _SCOPE.get() is not None


def shared(key: Callable[[], Hashable], compute: Callable[[], T]) -> T:
    """``compute()``, or the value an earlier call with the same ``key()`` computed in this
    scope (``key`` is called only inside a scope: it may cost something, a digest)."""
    cache = _SCOPE.get()
    if cache is None:
        return compute()
    return cache.get(key(), compute)


# --- BLAS threads ----------------------------------------------------------------------------
_BLAS_LOCK = threading.Lock()
_blas_users = 0
_blas_saved: list[int] = []


@functools.cache
def _openblas_thread_setters() -> tuple[Callable[[int], int], ...]:
    """``openblas_set_num_threads_local`` of the OpenBLAS that scipy's wheel brings (its own
    copy, in ``scipy.libs``, loaded with scipy's compiled modules), the setter returning the
    previous count; none where there is no ``/proc/self/maps`` (not Linux) or scipy uses
    another BLAS or shares numpy's (then numpy's matrix products would be touched too)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = sorted(
                {
                    line.split()[-1]
                    for line in maps
                    if "openblas" in line and "/scipy.libs/" in line.split()[-1]
                }
            )
    except OSError:
        return ()
    setters: list[Callable[[int], int]] = []
    for path in paths:
        try:  # RTLD_NOLOAD: a handle on the loaded copy, never a second one
            library = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            setter = library.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.argtypes = [ctypes.c_int]
        setter.restype = ctypes.c_int
        setters.append(setter)
    return tuple(setters)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with scipy's OpenBLAS on one thread; the previous count comes back when
    the last of the blocks open at once (on any thread) ends.

    The count is process-wide: scipy's BLAS calls on other threads meanwhile run on one thread
    too (L-BFGS-B's results are the same on 1, 2 or 4). Elsewhere (no separate scipy OpenBLAS,
    not Linux) it does nothing.
    """
    global _blas_users
    setters = _openblas_thread_setters()
    with _BLAS_LOCK:
        if _blas_users == 0:
            _blas_saved[:] = [setter(1) for setter in setters]
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_users -= 1
            if _blas_users == 0:
                for setter, count in zip(setters, _blas_saved, strict=True):
                    setter(count)
