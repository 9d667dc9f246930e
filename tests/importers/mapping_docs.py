"""The annotated example of ``docs/mapping-files.md``, written out for the tests that read it."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "mapping-files.md"


def docs_example(folder: Path) -> tuple[Path, Path, str]:
    """Write the example's table and mapping file into ``folder``; (table, mapping, its text).

    Skips the calling test where the docs are not in the tree.
    """
    if not DOCS.is_file():
        pytest.skip("docs/mapping-files.md is not in this tree")
    text = DOCS.read_text(encoding="utf-8")
    table_text = text.split("```text\nFreedonia", 1)[1].split("```", 1)[0]
    mapping_text = text.split("```toml\n", 1)[1].split("```", 1)[0]
    table = folder / "freedonia.csv"
    table.write_text("Freedonia" + table_text, encoding="utf-8")
    mapping = folder / "freedonia.toml"
    mapping.write_text(mapping_text, encoding="utf-8")
    return table, mapping, mapping_text
