"""One registry class for every seam (importers now; methods, backends, injectors later).

Built-in implementations register themselves in code; outside packages add theirs through the
Python entry-point group ``pollwatch.<kind>`` (for example ``pollwatch.importers``), and they show
up everywhere the built-ins do, CLI included.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from pollwatch.errors import RegistryError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named implementations of one kind, with lazy loading of entry points."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, T] = {}
        self._loaded_entry_points = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (a name may be registered once)."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; registering the same object twice is a no-op."""
        existing = self._items.get(name)
        if existing is not None and existing is not obj:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for point in entry_points(group=self.group):
            if point.name in self._items:
                continue
            try:
                self._items[point.name] = point.load()
            except Exception as exc:  # a broken plug-in must not break pollwatch
                raise RegistryError(
                    f"{self.kind} plug-in {point.name!r} ({point.value}) failed to load: {exc}",
                    hint=f"fix or uninstall the package that provides entry point group "
                    f"{self.group}",
                ) from None

    def get(self, name: str) -> T:
        """The implementation registered under ``name``; suggests close names when unknown."""
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(self.names())}"
            raise RegistryError(f"unknown {self.kind} {name!r}", hint=hint) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load_entry_points()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, implementation) pairs, sorted by name."""
        self._load_entry_points()
        for name in sorted(self._items):
            yield name, self._items[name]

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __len__(self) -> int:
        self._load_entry_points()
        return len(self._items)
