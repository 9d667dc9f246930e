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
