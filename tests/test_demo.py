from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.demo import compare


def test_compare_lists_the_largest_difference_first():
    measured = pa.table({"ingress": ["a", "a", "b"], "egress": ["b", "c", "a"],
                         "bytes": [10.0, 5.0, 7.0]})  # fmt: skip
    truth = pa.table({"ingress": ["a", "b", "c"], "egress": ["b", "a", "a"], "bytes": [10, 9, 1]})
    rows = compare(measured, truth).to_pylist()
    assert [(r["ingress"], r["egress"], r["difference"]) for r in rows] == [
        ("a", "c", 5.0),
        ("b", "a", -2.0),
        ("c", "a", -1.0),
        ("a", "b", 0.0),
    ]


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("pmacctd") is None, reason="pmacct is not installed")
def test_demo_command_measures_the_ground_truth_with_real_processes(tmp_path: Path):
    out = tmp_path / "demo"
    outcome = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--flows", "1500", "--duration", "120", "--top", "3"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "largest difference from the ground truth: 0 bytes (all" in outcome.output
    assert "read-out periods: 2 of 2 complete" in outcome.output
    assert (out / "matrix_pe_pe.png").read_bytes()[:4] == b"\x89PNG"
    table = pq.read_table(out / "matrix_pe_pe.parquet")
    assert table.column_names == ["ingress", "egress", "bytes", "packets"]
    assert (out / "matrix_pe_pe.csv").read_text().startswith('"ingress","egress","bytes"')
