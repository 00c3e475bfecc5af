from __future__ import annotations

from pathlib import Path

from flowmatrix.schema import markdown_table

DOCS = Path(__file__).parents[2] / "docs" / "flows.md"


def test_docs_schema_table_is_the_one_generated_from_flow_columns() -> None:
    assert markdown_table() in DOCS.read_text()
