"""Importers: one adapter per source format behind one interface (see :mod:`.base`)."""

from pollwatch.results.importers.base import (
    IMPORTERS,
    Importer,
    all_importers,
    detect_importer,
    get_importer,
    import_file,
)

__all__ = [
    "IMPORTERS",
    "Importer",
    "all_importers",
    "detect_importer",
    "get_importer",
    "import_file",
]
