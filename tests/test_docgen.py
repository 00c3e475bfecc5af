from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flowmatrix.docgen import api_reference, cli_reference, openapi_schema

DOCS = Path(__file__).parents[1] / "docs"


def test_api_reference_documents_every_endpoint() -> None:
    schema = openapi_schema()
    reference = api_reference()
    assert schema["paths"], "the MG serves no endpoint"
    for path, methods in schema["paths"].items():
        for method in methods:
            assert f"## `{method.upper()} {path}`" in reference


def test_committed_references_are_current() -> None:
    """`make docs` was run after the last change to a command or an endpoint."""
    assert (DOCS / "cli.md").read_text() == cli_reference() + "\n"
    assert (DOCS / "api.md").read_text() == api_reference() + "\n"
    assert json.loads((DOCS / "openapi.json").read_text()) == openapi_schema()


def test_docgen_module_prints_each_reference() -> None:
    run = [sys.executable, "-m", "flowmatrix.docgen", "openapi"]
    printed = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert json.loads(printed)["info"]["title"] == "flowmatrix MG"
