"""The registry shared by every seam."""

from __future__ import annotations

import pytest

from pollwatch.errors import RegistryError
from pollwatch.registry import Registry


def test_register_get_and_suggest() -> None:
    registry: Registry[int] = Registry("thing", "pollwatch.test-things")
    registry.add("alpha", 1)
    registry.add("alpha", 1)  # same object twice is fine
    assert registry.get("alpha") == 1
    with pytest.raises(RegistryError, match="did you mean 'alpha'"):
        registry.get("alpah")
    with pytest.raises(RegistryError, match="already registered"):
        registry.add("alpha", 2)
    assert registry.names() == ["alpha"]
    assert "alpha" in registry and len(registry) == 1


def test_public_api_is_exported_lazily() -> None:
    import pollwatch

    for name in pollwatch.__all__:
        assert getattr(pollwatch, name) is not None
    with pytest.raises(AttributeError):
        _ = pollwatch.no_such_name


def test_outside_packages_plug_in_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """A method an outside package declares in ``pollwatch.methods`` appears like a built-in."""
    from dataclasses import dataclass
    from typing import ClassVar

    import pollwatch.registry
    from pollwatch.cli import main
    from pollwatch.forensics.base import METHODS, Method, all_methods

    @dataclass(frozen=True)
    class Outside(Method):
        name: ClassVar[str] = "outside-method"
        title: ClassVar[str] = "A method from another package"
        reference: ClassVar[str] = "nobody (2026)"

        def run(self, election):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    class FakeEntryPoint:
        name = "outside-method"
        value = "outside_package:Outside"

        def load(self) -> type[Method]:
            return Outside

    def fake_entry_points(group: str) -> list[FakeEntryPoint]:
        return [FakeEntryPoint()] if group == "pollwatch.methods" else []

    all_methods()  # built-ins register into the real table before it is swapped for a copy
    monkeypatch.setattr(pollwatch.registry, "entry_points", fake_entry_points)
    monkeypatch.setattr(METHODS, "_loaded_entry_points", False)
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    assert dict(all_methods())["outside-method"] is Outside
    assert main(["methods"]) == 0


def test_broken_plug_in_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pollwatch.registry

    class Broken:
        name = "broken"
        value = "missing_package:Thing"

        def load(self) -> object:
            raise ImportError("No module named 'missing_package'")

    monkeypatch.setattr(pollwatch.registry, "entry_points", lambda group: [Broken()])
    registry: Registry[int] = Registry("thing", "pollwatch.things")
    with pytest.raises(RegistryError, match=r"plug-in 'broken'.*failed to load"):
        registry.names()
