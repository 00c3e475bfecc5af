import datetime as dt
import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv
from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.synth import generate_network, generate_traffic, write_network


def test_generated_topology_and_truth_matrix_are_checked_from_the_cli(tmp_path: Path):
    write_network(generate_network("tiny", 5), tmp_path / "net")
    generate_traffic(
        tmp_path / "net",
        tmp_path / "t",
        seed=5,
        flows=2_000,
        start=dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC),
        duration_s=600,
    )
    matrix = tmp_path / "t" / "truth" / "pe_pe.csv"
    result = CliRunner().invoke(
        app,
        [
            "capacity",
            "check",
            "--topology",
            str(tmp_path / "net" / "topology.json"),
            "--matrix",
            str(matrix),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    topology = json.loads((tmp_path / "net" / "topology.json").read_text())
    assert len(report["links"]) == 2 * len(topology["links"])
    truth = pacsv.read_csv(matrix)
    offered_bps = 8 * pc.sum(truth["bytes"]).as_py() / 600
    # every byte that leaves its ingress PE crosses exactly one PE uplink (PEs hang off P routers)
    pes = {n["name"] for n in topology["nodes"] if n["role"] == "pe"}
    remote = pc.sum(
        pc.multiply(truth["bytes"], pc.not_equal(truth["ingress"], truth["egress"]).cast("int64"))
    )
    uplink_bps = sum(link["load_bps"] for link in report["links"] if link["src"] in pes)
    assert abs(uplink_bps - 8 * remote.as_py() / 600) < 1e-6 * offered_bps
