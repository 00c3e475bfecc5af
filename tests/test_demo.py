from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.demo import run_demo, total


def test_demo_matrix_sums_the_ground_truth_flows(tmp_path: Path):
    steps: list[str] = []
    result = run_demo(tmp_path, flows=2_000, step=steps.append)
    flows = pq.read_table(tmp_path / "traffic" / "truth" / "flows.parquet")
    assert total(result.matrix, "bytes") == pc.sum(flows["bytes"]).as_py()
    assert total(result.matrix, "packets") == pc.sum(flows["packets"]).as_py()
    pairs = {
        (r["ingress"], r["egress"]) for r in result.matrix.select(["ingress", "egress"]).to_pylist()
    }
    assert len(pairs) == result.matrix.num_rows
    assert len(steps) == 4
    assert set(result.seconds) == {"network", "config", "traffic", "matrix"}


def test_demo_writes_the_matrix_its_plot_and_the_pcaps(tmp_path: Path):
    result = run_demo(tmp_path, flows=500)
    assert result.files["heatmap"].read_bytes()[:4] == b"\x89PNG"
    assert (
        result.files["matrix_csv"].read_text().splitlines()[0]
        == '"ingress","egress","bytes","packets"'
    )
    pcaps = sorted(result.files["pcaps"].glob("*.pcap"))
    assert pcaps
    assert {p.stem for p in pcaps} <= {pe.name for pe in result.config.pes}


def test_demo_command_prints_the_matrix(tmp_path: Path):
    outcome = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path), "--flows", "500", "--top", "3"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "PE-to-PE traffic matrix, largest 3 of" in outcome.output
    assert str(tmp_path / "matrix_pe_pe.png") in outcome.output.replace("\n", "")
