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
    from pollwatch.cli import main
    from pollwatch.forensics.base import all_methods

    outside = _declared_method("outside-method", "A method from another package", "nobody (2026)")
    _plug_in(monkeypatch, "outside-method", outside)
    assert dict(all_methods())["outside-method"] is outside
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


def _declared_method(method_name: str, method_title: str, source: str = "nobody") -> type:
    """A method class that only declares itself (what a plug-in gives; ``run`` is not called)."""
    from dataclasses import dataclass
    from typing import ClassVar

    from pollwatch.forensics.base import Method

    @dataclass(frozen=True)
    class Declared(Method):
        name: ClassVar[str] = method_name
        title: ClassVar[str] = method_title
        reference: ClassVar[str] = source

        def run(self, election):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    return Declared


def _plug_in(monkeypatch: pytest.MonkeyPatch, name: str, obj: object) -> None:
    """Make ``obj`` the only entry point of ``pollwatch.methods``, on a copy of the method table."""
    import pollwatch.registry
    from pollwatch.forensics.base import METHODS, all_methods

    class FakeEntryPoint:
        value = f"outside_package:{name}"

        def __init__(self) -> None:
            self.name = name

        def load(self) -> object:
            return obj

    all_methods()
    monkeypatch.setattr(
        pollwatch.registry,
        "entry_points",
        lambda group: [FakeEntryPoint()] if group == "pollwatch.methods" else [],
    )
    monkeypatch.setattr(METHODS, "_loaded_entry_points", False)
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))


def test_a_plug_in_that_is_not_a_method_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pollwatch.forensics.base import METHODS

    class NotAMethod:
        name = "not-a-method"

    _plug_in(monkeypatch, "not-a-method", NotAMethod)
    with pytest.raises(RegistryError) as info:
        METHODS.names()
    text = str(info.value)
    assert "method plug-in 'not-a-method' (outside_package:not-a-method)" in text
    assert "not a subclass of pollwatch.forensics.base.Method" in text
    assert "\n" not in text


def test_a_plug_in_whose_name_differs_from_its_entry_point_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pollwatch.cli import main
    from pollwatch.forensics.base import METHODS

    _plug_in(monkeypatch, "entry-name", _declared_method("other-name", "misnamed"))
    with pytest.raises(RegistryError, match=r"plug-in 'entry-name'.*says name = 'other-name'"):
        METHODS.names()
    monkeypatch.setattr(METHODS, "_loaded_entry_points", False)
    assert main(["methods"]) == 2  # one line, exit 2, no traceback


def test_a_plug_in_may_not_take_a_built_in_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from pollwatch.forensics.base import METHODS

    _plug_in(monkeypatch, "shpilkin", _declared_method("shpilkin", "not Shpilkin's"))
    with pytest.raises(RegistryError, match=r"plug-in 'shpilkin'.*already registered"):
        METHODS.get("shpilkin")


def test_built_ins_and_plug_ins_pass_the_same_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built-ins register through ``add`` with the registry's check, like entry points do."""
    import pollwatch.registry

    seen: list[tuple[str, object]] = []

    def check(name: str, obj: int) -> None:
        seen.append((name, obj))
        if obj < 0:
            raise RegistryError(f"thing {name!r} is negative")

    class Point:
        name = "plugged"
        value = "outside:plugged"

        def load(self) -> int:
            return 2

    monkeypatch.setattr(pollwatch.registry, "entry_points", lambda group: [Point()])
    registry: Registry[int] = Registry("thing", "pollwatch.things", check=check)
    registry.register("built-in")(1)
    with pytest.raises(RegistryError, match="negative"):
        registry.add("bad", -1)
    assert registry.names() == ["built-in", "plugged"]
    assert seen == [("built-in", 1), ("bad", -1), ("plugged", 2)]


def test_every_built_in_method_is_registered_under_its_class_name() -> None:
    from pollwatch.forensics.base import BUILTIN_MODULES, METHODS, all_methods

    methods = all_methods()
    assert METHODS.builtins == tuple(f"pollwatch.forensics.{m}" for m in BUILTIN_MODULES)
    assert {cls.__module__ for _, cls in methods} == set(METHODS.builtins)
    assert all(cls.name == name for name, cls in methods)


def test_a_registry_imports_its_built_in_modules_on_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    import pollwatch.registry

    imported: list[str] = []
    registry: Registry[int] = Registry("thing", "pollwatch.things", builtins=("a.b", "a.c"))
    monkeypatch.setattr(pollwatch.registry, "entry_points", lambda group: [])
    monkeypatch.setattr(importlib, "import_module", imported.append)
    registry.add("first", 1)
    assert imported == []  # registering loads nothing
    assert "first" in registry and registry.names() == ["first"]
    assert imported == ["a.b", "a.c"]  # once, in order
