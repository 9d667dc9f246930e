"""Regions across elections: one normalised name per region, and the mapping of merged ones.

A region is linked across elections by its normalised name (:func:`normalise_region`: case,
``ё``/``е``, dashes, spaces and a leading number such as "99 " do not count), after a
:class:`RegionMapping` has sent renamed or merged regions to the region they became. A mapping
is a TOML file::

    title = "what it maps"

    [regions]
    "source name" = "region it is counted as"

Several source names may point to one region (a merger). The mapping for Russia's federal
subjects 2004-2018 ships with pollwatch (:func:`shipped_region_mapping` ``("russia")``; its
sources are in the file, ``src/pollwatch/turnout/russia_regions.toml``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pollwatch.errors import MappingError

__all__ = ["RegionMapping", "load_region_mapping", "normalise_region", "shipped_region_mapping"]

_LEADING_NUMBER = re.compile(r"^\s*\d+\s+")
_DASHES = re.compile(r"\s*[-‐‑‒–—]\s*")
_SPACES = re.compile(r"\s+")
#: shipped mappings by country code (lower case) and by name
_SHIPPED = {"russia": "russia_regions.toml", "ru": "russia_regions.toml"}


def normalise_region(name: str) -> str:
    """The comparison key of a region name: lower case, ``ё`` as ``е``, one kind of dash and
    space, quotes dropped, no leading number ("99 Территория ..." is "территория ...")."""
    text = _LEADING_NUMBER.sub("", name.strip())
    text = text.lower().replace("ё", "е")
    text = re.sub(r"[\"'«»„“”]", "", text)
    text = _DASHES.sub("-", text)
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class RegionMapping:
    """Source region names counted as another region (renamed or merged), by normalised name."""

    title: str = "no mapping"
    regions: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def canonical(self, name: str) -> str:
        """The region ``name`` is counted as: its mapping target, or itself (normalised key)."""
        key = normalise_region(name)
        target = self._keys().get(key)
        return normalise_region(target) if target is not None else key

    def target(self, name: str) -> str | None:
        """The display name ``name`` maps to, or None when it is not mapped."""
        return self._keys().get(normalise_region(name))

    def _keys(self) -> dict[str, str]:
        cached: dict[str, str] | None = self.__dict__.get("_normalised")
        if cached is None:
            cached = {normalise_region(k): v for k, v in self.regions.items()}
            object.__setattr__(self, "_normalised", cached)
        return cached

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "source": self.source, "regions": dict(self.regions)}


def load_region_mapping(path: Path) -> RegionMapping:
    """Read a region mapping file (TOML, see the module docstring)."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise MappingError(f"cannot read the region mapping ({exc.strerror})", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(
            f"not a TOML file ({exc})", path=path, hint="see docs/turnout.md for the format"
        ) from None
    return _mapping(data, str(path))


def _mapping(data: Mapping[str, Any], where: str) -> RegionMapping:
    unknown = set(data) - {"title", "regions"}
    if unknown:
        raise MappingError(
            f"unknown key(s) {sorted(unknown)} in the region mapping",
            path=where,
            hint="a region mapping has 'title' and a [regions] table",
        )
    regions = data.get("regions", {})
    if not isinstance(regions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in regions.items()
    ):
        raise MappingError(
            "[regions] must map region names to region names (text)",
            path=where,
            hint='write "source name" = "region it becomes"',
        )
    title = data.get("title", Path(where).stem)
    if not isinstance(title, str):
        raise MappingError("'title' must be text", path=where)
    return RegionMapping(title=title, regions=dict(regions), source=where)


def shipped_region_mapping(country: str) -> RegionMapping | None:
    """The region mapping shipped for ``country`` ("russia" or "RU"), or None when there is none."""
    name = _SHIPPED.get(country.strip().lower())
    if name is None:
        return None
    text = resources.files("pollwatch.turnout").joinpath(name).read_text("utf-8")
    return _mapping(tomllib.loads(text), f"pollwatch/turnout/{name}")
