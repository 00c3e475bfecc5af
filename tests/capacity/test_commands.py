import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowmatrix.cli import app

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["capacity", *map(str, args)])


def test_check_json_lists_every_directed_link_and_exits_1_when_over(abilene_csv):
    result = run("check", "--topology", DATA / "abilene.txt", "--matrix", abilene_csv, "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["max_utilization"] == pytest.approx(1.0)
    assert doc["exceeded"] is True
    assert len(doc["links"]) == 30
    for link in doc["links"]:
        assert {"src", "dst", "load_bps", "capacity_bps", "utilization"} <= link.keys()
        assert link["utilization"] == pytest.approx(link["load_bps"] / link["capacity_bps"])
    assert {n["name"] for n in doc["service_nodes"]} >= {"ATLAng", "CHINng"}
    assert doc["unrouted"] == []


def test_check_exits_0_under_a_generous_threshold(abilene_csv):
    result = run(
        "check", "--topology", DATA / "abilene.txt", "--matrix", abilene_csv, "--threshold", "1.5"
    )
    assert result.exit_code == 0, result.output
    assert "ok: max link utilization 100.0%" in result.stdout


def test_check_table_names_the_overloaded_links(abilene_csv):
    result = run("check", "--topology", DATA / "abilene.txt", "--matrix", abilene_csv)
    assert result.exit_code == 1
    assert "ATLAng_IPLSng" in result.stdout
    assert "EXCEEDED" in result.stdout


def test_whatif_json_gives_worst_utilization_and_failure_per_link(abilene_csv):
    result = run("whatif", "--topology", DATA / "abilene.txt", "--matrix", abilene_csv, "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["failures"] == 15 + 12
    assert len(doc["links"]) == 30
    for link in doc["links"]:
        assert link["worst_utilization"] >= link["utilization"] - 1e-12
        assert link["worst_failure"] is None or link["worst_failure"].split(":")[0] in {
            "link",
            "node",
        }
    assert any(link["worst_failure"] for link in doc["links"])
    stub = next(s for s in doc["scenarios"] if s["failure"] == "link:ATLAM5_ATLAng")
    assert stub["disconnected_bps"] > 0  # ATLAM5 hangs off one link


def test_plan_json_reports_before_after_and_changes(abilene_csv):
    result = run(
        "plan",
        "--topology",
        DATA / "abilene.txt",
        "--matrix",
        abilene_csv,
        "--json",
        "--time-limit",
        "2",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["feasible"] is True
    assert doc["before_max_utilization"] == pytest.approx(1.0)
    assert doc["after_max_utilization"] <= 0.8
    assert doc["changes"]
    assert {c["kind"] for c in doc["changes"]} <= {"tunnel", "metric"}
    assert {p["method"] for p in doc["plans"]} == {"explicit-paths", "igp-metrics"}
    assert doc["config"]["iosxr"]
    assert doc["config"]["junos"]


def test_plan_with_metrics_only_prints_isis_configuration(abilene_csv):
    result = run(
        "plan",
        "--topology",
        DATA / "abilene.json",
        "--matrix",
        abilene_csv,
        "--method",
        "metrics",
        "--time-limit",
        "1",
    )
    assert result.exit_code in (0, 1), result.output
    assert "igp-metrics" in result.stdout


def test_broken_topology_exits_2_with_file_and_element(tmp_path, abilene_csv):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"format": "flowmatrix-topology/1", "nodes": [{"name": "a"}],'
        ' "links": [{"name": "x", "a": "a", "b": "b", "capacity_bps": 1}]}'
    )
    result = run("check", "--topology", bad, "--matrix", abilene_csv)
    assert result.exit_code == 2
    assert "bad.json: link[name=x]: dangling" in result.stderr


def test_unknown_statistic_exits_2(abilene_csv):
    result = run(
        "check",
        "--topology",
        DATA / "abilene.txt",
        "--matrix",
        abilene_csv,
        "--statistic",
        "median",
    )
    assert result.exit_code == 2
    assert "--statistic 'median'" in result.stderr


def test_plot_writes_two_pngs_and_a_standalone_page(tmp_path, abilene_csv):
    result = run(
        "plot",
        "--topology",
        DATA / "abilene.json",
        "--matrix",
        abilene_csv,
        "--out",
        tmp_path / "plots",
    )
    assert result.exit_code == 0, result.output
    for name in ("topology.png", "utilization-cdf.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000
    page = (tmp_path / "plots" / "capacity.html").read_text()
    assert "<script" in page
    assert "cdn.plot.ly" not in page.split("<body>", 1)[1][:2000]  # plotly inline, not fetched
    assert "Link utilization CDF" in page
    # every directed link has its hover text: "A → B<br>util % of capacity"
    topology = json.loads((DATA / "abilene.json").read_text())
    assert page.count(" of ") >= 2 * len(topology["links"])
