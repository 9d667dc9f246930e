"""Importers: one adapter per source format behind one interface (see :mod:`.base`)."""

from pollwatch.results.importers.base import (
    IMPORTERS,
    Importer,
    all_importers,
    detect_importer,
    get_importer,
    import_file,
)
from pollwatch.results.importers.limits import ImportLimits

__all__ = [
    "IMPORTERS",
    "ImportLimits",
    "Importer",
    "all_importers",
    "detect_importer",
    "get_importer",
    "import_file",
]
