"""One registry class for every seam (methods, importers, injectors, datasets, backends).

Built-in implementations and outside packages register through the same door, :meth:`Registry.add`,
with the same checks: built-ins register themselves in code when their modules are imported (a
registry may name those ``builtins`` modules, imported on first use), outside packages through
the Python entry-point group ``pollwatch.<kind>`` (for example ``pollwatch.methods``), loaded on
first use too. Either way they show up everywhere the built-ins do, CLI included (datasette
builds its own default plug-ins on the hooks third parties use).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from pollwatch.errors import RegistryError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named implementations of one kind, with lazy loading of built-ins and entry points.

    ``check(name, obj)`` runs on every registration, built-in or plug-in, and raises
    :class:`~pollwatch.errors.RegistryError` for an object that is not of the registry's kind
    (a method registry checks for a ``Method`` subclass whose ``name`` is its registered name).
    ``builtins`` names modules imported on first use, before the entry points; they register
    their implementations on import (``@registry.register(name)``).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        builtins: Sequence[str] = (),
        check: Callable[[str, T], None] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.builtins = tuple(builtins)
        self._check = check
        self._items: dict[str, T] = {}
        self._loaded_builtins = False
        self._loaded_entry_points = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (a name may be registered once)."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` after the registry's check; the same object twice is a
        no-op, another object under a taken name a RegistryError."""
        if self._check is not None:
            self._check(name, obj)
        existing = self._items.get(name)
        if existing is not None and existing is not obj:
            raise RegistryError(
                f"{self.kind} {name!r} is already registered",
                hint="a plug-in must not reuse the name of a built-in or of another plug-in",
            )
        self._items[name] = obj

    def _load(self) -> None:
        """Import the built-in modules, then the entry points (each once)."""
        if not self._loaded_builtins:
            self._loaded_builtins = True
            for module in self.builtins:
                importlib.import_module(module)
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for point in entry_points(group=self.group):
            try:
                obj = point.load()
            except Exception as exc:  # one line that names the plug-in, never a traceback
                raise RegistryError(
                    f"{self.kind} plug-in {point.name!r} ({point.value}) failed to load: {exc}",
                    hint=f"fix or uninstall the package that provides entry point group "
                    f"{self.group}",
                ) from None
            try:
                self.add(point.name, obj)
            except RegistryError as exc:
                raise RegistryError(
                    f"{self.kind} plug-in {point.name!r} ({point.value}): {exc.message}",
                    hint=exc.hint,
                ) from None

    def get(self, name: str) -> T:
        """The implementation registered under ``name``; suggests close names when unknown."""
        self._load()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(self.names())}"
            raise RegistryError(f"unknown {self.kind} {name!r}", hint=hint) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, implementation) pairs, sorted by name."""
        self._load()
        for name in sorted(self._items):
            yield name, self._items[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __len__(self) -> int:
        self._load()
        return len(self._items)
