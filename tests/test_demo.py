from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.demo import DemoResult, compare, run_demo, serve_dashboard

#: ``flowmatrix demo`` serves the dashboard until Ctrl-C unless told not to
NO_SERVE = ["--no-serve"]


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
        app,
        [
            "demo",
            "--out",
            str(out),
            "--flows",
            "1500",
            "--duration",
            "120",
            "--top",
            "3",
            *NO_SERVE,
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "largest difference from the ground truth: 0 bytes (all" in outcome.output
    assert "read-out periods: 2 of 2 complete" in outcome.output
    assert (out / "matrix_pe_pe.png").read_bytes()[:4] == b"\x89PNG"
    table = pq.read_table(out / "matrix_pe_pe.parquet")
    assert table.column_names == ["ingress", "egress", "bytes", "packets"]
    assert (out / "matrix_pe_pe.csv").read_text().startswith('"ingress","egress","bytes"')
    # the links are sized to the demo's traffic: the busiest period is over the threshold and
    # the plan computed for it brings every link back under
    assert "capacity: links sized to the demo's traffic" in outcome.output
    check = json.loads((out / "capacity_check.json").read_text())
    assert check["exceeded"] is True
    assert check["period"]["busy"] is True
    assert check["max_utilization"] > check["threshold"]
    plan = json.loads((out / "capacity_plan.json").read_text())
    assert plan["feasible"] is True
    assert plan["after_max_utilization"] <= check["threshold"] < plan["before_max_utilization"]
    assert plan["changes"]


class FakeNetwork:
    def __init__(self, tokens: Path) -> None:
        self.tokens = tokens
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


def fake_result(network: object) -> DemoResult:
    table = pa.table({"ingress": ["a"], "egress": ["b"], "bytes": [1.0]})
    return DemoResult(
        config=SimpleNamespace(name="n"),  # type: ignore[arg-type]
        matrix=table,
        truth=table,
        difference=table,
        periods=[],
        files={},
        seconds={},
        mg_url="http://127.0.0.1:8123",
        network=network,  # type: ignore[arg-type]
    )


def test_serve_dashboard_says_where_and_how_to_log_in_then_stops_on_ctrl_c(tmp_path: Path):
    network = FakeNetwork(tmp_path / "tokens")
    said: list[str] = []

    def interrupted() -> None:
        assert network.stopped == 0  # serving while waiting
        raise KeyboardInterrupt

    serve_dashboard(fake_result(network), said.append, wait=interrupted)
    assert said == [
        "dashboard: http://127.0.0.1:8123/ui/",
        f"log in with the operator token in {tmp_path / 'tokens' / 'operator.token'}",
        "serving the MG and the FRPs until interrupted (Ctrl-C)",
        "interrupted: stopping the MG and the FRPs",
    ]
    assert network.stopped == 1


def test_serve_dashboard_needs_a_running_network():
    with pytest.raises(ValueError, match="not running"):
        serve_dashboard(fake_result(None), print, wait=lambda: None)


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("pmacctd") is None, reason="pmacct is not installed")
def test_demo_keeps_the_mg_serving_its_dashboard_until_stopped(tmp_path: Path):
    result = run_demo(tmp_path / "demo", flows=800, duration_s=60, serve=True)
    assert result.network is not None
    try:
        page = httpx.get(result.dashboard_url, timeout=10)
        assert page.status_code == 200
        assert "<title>flowmatrix</title>" in page.text
        token = (result.network.tokens / "operator.token").read_text().strip()
        network = httpx.get(
            f"{result.mg_url}/api/v1/network",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        assert network["features"]["topology"] is True
        assert network["features"]["routing"] is True  # the routing page can explain
        pe = network["pes"][0]["name"]
        why = httpx.get(
            f"{result.mg_url}/api/v1/routing/explain",
            params={"pe": pe, "address": "10.0.0.1"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert why.status_code == 200, why.text
    finally:
        serve_dashboard(result, lambda _: None, wait=lambda: None)
    with pytest.raises(httpx.TransportError):
        httpx.get(result.dashboard_url, timeout=2)
