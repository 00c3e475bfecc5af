from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flowmatrix.config.model import AlarmRule, NetworkConfig
from flowmatrix.matrix.partial import MEDIA_TYPE, PARTIAL_SCHEMA, PartialMeta, encode_partial
from flowmatrix.matrix.store import Store
from flowmatrix.mg.auth import read_token
from flowmatrix.mg.cli import render_stats, tm_app
from flowmatrix.mg.service import MgService
from flowmatrix.mg.stats import MgStats
from flowmatrix.mg.testing import MgClient as Mg
from flowmatrix.mg.testing import open_mg, partial_table

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"
P0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z, on the hour
STEP = 300_000


def partial(*items: tuple[str, str, str, float, float]) -> pa.Table:
    """Rows of (ingress, egress, class, bytes, packets); in_if 3, no VRF, tos 0."""
    return partial_table(items)


def assert_same_stats(got: dict[Any, dict[str, Any]], want: dict[Any, dict[str, Any]]) -> None:
    """Equal keys and columns; figures equal up to rounding (replace un-Welfords a period)."""
    assert got.keys() == want.keys()
    for key, row in want.items():
        figures = {c: v for c, v in row.items() if not isinstance(v, str)}
        assert {c: v for c, v in got[key].items() if isinstance(v, str)} == {
            c: v for c, v in row.items() if isinstance(v, str)
        }
        assert {c: got[key][c] for c in figures} == pytest.approx(figures, rel=1e-12, abs=1e-9)


def three_periods(mg: Mg) -> None:
    """BE par-pe1 → lon-pe1: 100, 300, 200 bytes (1, 3, 2 packets); EF 50 bytes in period 1 only."""
    mg.upload("frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 100.0, 1.0)))
    mg.upload(
        "frp-par",
        P0 + STEP,
        partial(
            ("par-pe1", "lon-pe1", "BE", 300.0, 3.0),
            ("par-pe1", "lon-pe1", "EF", 50.0, 5.0),
        ),
    )
    mg.upload("frp-par", P0 + 2 * STEP, partial(("par-pe1", "lon-pe1", "BE", 200.0, 2.0)))


def test_stats_of_three_periods_equal_hand_computed_mean_std_peak_and_p95(mg: Mg) -> None:
    three_periods(mg)
    stats = mg.stats()
    be, ef = stats["par-pe1", "lon-pe1", "BE"], stats["par-pe1", "lon-pe1", "EF"]
    assert be["periods"] == ef["periods"] == 3
    assert be["mean_bytes"] == pytest.approx(200.0)
    assert be["std_bytes"] == pytest.approx(math.sqrt((100**2 + 100**2 + 0) / 3))
    assert (be["peak_bytes"], be["p95_bytes"]) == (300.0, 300.0)
    assert be["mean_packets"] == pytest.approx(2.0)
    assert (be["peak_packets"], be["p95_packets"]) == (3.0, 3.0)
    # absent from two periods: zero-filled
    assert ef["mean_bytes"] == pytest.approx(50.0 / 3)
    assert ef["std_bytes"] == pytest.approx(math.sqrt((2 * (50 / 3) ** 2 + (100 / 3) ** 2) / 3))
    assert (ef["peak_bytes"], ef["peak_packets"]) == (50.0, 5.0)
    assert list(mg.stats(**{"class": "EF"})) == [("par-pe1", "lon-pe1", "EF")]


def test_p95_is_the_billing_percentile_below_the_peak_over_21_periods(mg: Mg) -> None:
    for i in range(21):
        mg.upload("frp-par", P0 + i * STEP, partial(("par-pe1", "lon-pe1", "BE", i + 1.0, 1.0)))
    be = mg.stats()["par-pe1", "lon-pe1", "BE"]
    # sorted 1…21, drop the top floor(5 % of 21) = 1, take the largest left
    assert (be["periods"], be["peak_bytes"], be["p95_bytes"]) == (21, 21.0, 20.0)
    assert be["mean_bytes"] == pytest.approx(11.0)


def test_a_revised_or_late_upload_replaces_its_period_instead_of_adding_one(mg: Mg) -> None:
    three_periods(mg)
    revised = mg.upload("frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 600.0, 6.0)))
    assert (revised["status"], revised["version"]) == ("stored", 2)
    stats = mg.stats()
    be = stats["par-pe1", "lon-pe1", "BE"]
    assert be["periods"] == 3
    assert be["mean_bytes"] == pytest.approx((100 + 600 + 200) / 3)
    assert be["peak_bytes"] == 600.0
    # the revision dropped EF: no traffic left in any period, not listed
    assert ("par-pe1", "lon-pe1", "EF") not in stats
    # a late FRP adds its elements to the period's current total, still three periods
    mg.upload("frp-lon", P0, partial(("lon-pe1", "par-pe1", "BE", 90.0, 9.0)))
    stats = mg.stats()
    lon = stats["lon-pe1", "par-pe1", "BE"]
    assert (lon["periods"], lon["mean_bytes"], lon["peak_bytes"]) == (3, 30.0, 90.0)
    assert stats["par-pe1", "lon-pe1", "BE"]["mean_bytes"] == pytest.approx(300.0)
    # the same content again is "unchanged" and counts nothing
    again = mg.upload("frp-lon", P0, partial(("lon-pe1", "par-pe1", "BE", 90.0, 9.0)))
    assert again["status"] == "unchanged"
    assert mg.stats() == stats


def test_busy_hour_is_the_utc_hour_with_most_bytes_and_says_if_complete(mg: Mg) -> None:
    hour = 3_600_000
    mg.upload("frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 100.0, 1.0)))
    mg.upload("frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 100.0, 1.0)))
    mg.upload("frp-par", P0 + hour, partial(("par-pe1", "lon-pe1", "EF", 250.0, 1.0)))
    busy = mg.get("/busy-hour", interval="always").json()
    assert busy["periods"] == 3
    assert busy["timezone"] == "UTC"
    assert busy["busy_hour"] == {
        "start_ms": P0 + hour,
        "end_ms": P0 + 2 * hour,
        "local_start": "2027-01-15T09:00:00+00:00",
        "volume_bytes": 250.0,
        "periods": 1,
        "expected_periods": 12,
        "complete": False,
    }
    mg.upload("frp-lon", P0 + 2 * STEP, partial(("lon-pe1", "par-pe1", "BE", 100.0, 1.0)))
    busy = mg.get("/busy-hour", interval="always").json()["busy_hour"]
    assert (busy["start_ms"], busy["volume_bytes"], busy["periods"]) == (P0, 300.0, 3)


def test_busy_hour_is_given_in_the_intervals_local_time_with_its_offset(mg: Mg) -> None:
    mg.upload("frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 100.0, 1.0)), interval="busy")
    busy = mg.get("/busy-hour", interval="busy").json()
    assert busy["timezone"] == "Europe/Paris"
    local = dt.datetime.fromisoformat(busy["busy_hour"]["local_start"])
    assert local.isoformat() == "2027-01-15T09:00:00+01:00"
    # the other interval saw nothing
    assert mg.get("/busy-hour", interval="always").json()["busy_hour"] is None


def test_stats_and_busy_hour_are_empty_before_any_upload_and_404_for_unknown_intervals(
    mg: Mg,
) -> None:
    assert mg.get("/stats", interval="always").json()["rows"] == []
    assert mg.get("/busy-hour", interval="always").json() == {
        "interval": "always",
        "timezone": "UTC",
        "periods": 0,
        "busy_hour": None,
        "nodes": {"LON": None, "PAR": None},
    }
    for path in ("/stats", "/busy-hour"):
        r = mg.get(path, interval="nope")
        assert r.status_code == 404
        assert r.json() == {"error": "unknown interval 'nope'"}


def test_stats_need_an_operator_token(mg: Mg) -> None:
    headers = {"Authorization": f"Bearer {mg.tokens['frp-par']}"}
    for path in ("/stats", "/busy-hour"):
        r = mg.client.request("GET", f"/api/v1{path}?interval=always", headers=headers)
        assert r.status_code == 403


def test_stats_come_as_csv_and_parquet_with_the_json_columns(mg: Mg) -> None:
    three_periods(mg)
    columns = mg.get("/stats", interval="always").json()["columns"]
    csv = mg.get("/stats", interval="always", format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    table = pacsv.read_csv(io.BytesIO(csv.content))
    assert table.column_names == columns
    assert table.num_rows == 2
    parquet = pq.read_table(
        io.BytesIO(mg.get("/stats", interval="always", format="parquet").content)
    )
    assert parquet.column_names == columns
    assert sorted(parquet["peak_bytes"].to_pylist()) == [50.0, 300.0]
    empty = mg.get("/stats", interval="busy", format="parquet")
    assert pq.read_table(io.BytesIO(empty.content)).num_rows == 0


def test_statistics_rebuilt_at_start_from_the_store_equal_the_incremental_ones(
    config: NetworkConfig, tmp_path: Path
) -> None:
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        mg = open_mg(config, store, tmp_path)
        three_periods(mg)
        mg.upload("frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 600.0, 6.0)))
        before = mg.stats()
        busy_before = mg.get("/busy-hour", interval="always").json()
        # MgStats.start on the same open store rebuilds the same figures
        rebuilt = MgStats(config, store)
        rebuilt.start()
        assert_same_stats(
            {(r["ingress"], r["egress"], r["class"]): r for r in rebuilt.rows("always")}, before
        )
    with Store(db) as store:
        again = open_mg(config, store, tmp_path)
        assert_same_stats(again.stats(), before)
        assert again.get("/busy-hour", interval="always").json() == busy_before


def test_render_stats_prints_the_largest_mean_first_and_the_busy_hour(
    mg: Mg, capsys: pytest.CaptureFixture[str]
) -> None:
    three_periods(mg)
    body = mg.get("/stats", interval="always").json()
    hour = mg.get("/busy-hour", interval="always").json()
    render_stats(body, hour, limit=1)
    shown = capsys.readouterr().out
    assert "par-pe1" in shown
    assert "BE" in shown
    assert "EF" not in shown
    assert "2 rows (1 shown)" in shown
    assert "busy hour: 2027-01-15T08:00:00+00:00" in shown
    assert "650 bytes, 3/12 periods, incomplete" in shown


@pytest.mark.e2e
def test_tm_stats_prints_the_table_from_a_running_mg(tmp_path: Path) -> None:
    rule = '<alarms><rule id="hot" target="element" statistic="bps" threshold="8"/></alarms>'
    xml = tmp_path / "network.xml"
    xml.write_text(VALID.read_text().replace("</intervals>", "</intervals>" + rule))
    service = MgService(
        xml, tmp_path / "mg.duckdb", port=0, issue_tokens=tmp_path, log_level="warning"
    )
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        frp = read_token(tmp_path / "frp-par.token")
        table = partial(("par-pe1", "lon-pe1", "BE", 1234.0, 2.0))
        meta = PartialMeta(
            frp="frp-par", interval="always", period_start_ms=P0, period_end_ms=P0 + STEP
        )
        r = httpx.put(
            f"{url}/api/v1/partials/frp-par/always/{P0}",
            content=encode_partial(table, meta),
            headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {frp}"},
            timeout=10,
        )
        assert r.json()["status"] == "stored"
        base = ["--mg", url, "--token-file", str(tmp_path / "operator.token")]
        shown = CliRunner().invoke(tm_app, ["stats", *base])
        assert shown.exit_code == 0, shown.output
        assert "par-pe1" in shown.output
        assert "1.234k" in shown.output
        assert "busy hour: 2027-01-15T08:00:00+00:00" in shown.output
        as_json = CliRunner().invoke(tm_app, ["stats", *base, "--json", "--class", "EF"])
        assert as_json.exit_code == 0, as_json.output
        assert '"rows": []' in as_json.output
        unknown = CliRunner().invoke(tm_app, ["stats", *base, "--interval", "nope"])
        assert unknown.exit_code == 1
        # 1234 bytes in 300 s = 32.9 bit/s > 8
        alarms = CliRunner().invoke(tm_app, ["alarms", *base])
        assert alarms.exit_code == 0, alarms.output
        assert "par-pe1>lon-pe1" in alarms.output
        assert "1 alarm(s) raised" in alarms.output
    finally:
        service.stop()


# --- alarms -------------------------------------------------------------------------------------

HOT = AlarmRule("hot", "element", "bps", 8.0, interval="always", egress="LON")
BIG = AlarmRule("big", "network", "bytes", 2000.0, hold_down=dt.timedelta(minutes=5))
LINK = AlarmRule("core", "link", "utilization", 0.8)


def test_alarm_rules_raise_and_clear_from_period_totals_and_are_listed(
    config: NetworkConfig, tmp_path: Path
) -> None:
    ruled = dataclasses.replace(config, alarms=(HOT, BIG, LINK))
    with Store(":memory:") as store:
        mg = open_mg(ruled, store, tmp_path)
        assert mg.get("/alarms").json() == []
        # 100 bytes in 300 s: 2.7 bit/s, below 8
        mg.upload("frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 100.0, 1.0)))
        assert mg.get("/alarms").json() == []
        # 3000 bytes: 80 bit/s (the classes summed), and the network's first period above 2000
        mg.upload(
            "frp-par",
            P0 + STEP,
            partial(
                ("par-pe1", "lon-pe1", "BE", 2000.0, 1.0), ("par-pe1", "lon-pe1", "EF", 1000.0, 1.0)
            ),
        )
        assert mg.get("/alarms").json() == [
            {
                "rule": "hot",
                "interval": "always",
                "key": "par-pe1>lon-pe1",
                "since_ms": P0 + 2 * STEP,
                "value": 80.0,
                "threshold": 8.0,
            }
        ]
        # still above: the network alarm's 5-minute hold-down is over; egress PAR is not watched
        mg.upload("frp-par", P0 + 2 * STEP, partial(("par-pe1", "lon-pe1", "BE", 2400.0, 1.0)))
        mg.upload("frp-lon", P0 + 2 * STEP, partial(("lon-pe1", "par-pe1", "BE", 9000.0, 1.0)))
        active = {(a["rule"], a["key"]): a for a in mg.get("/alarms").json()}
        assert set(active) == {("hot", "par-pe1>lon-pe1"), ("big", "network")}
        assert active["big", "network"]["since_ms"] == P0 + 3 * STEP
        # a late upload of that period changes no alarm: the period was already observed
        assert active["big", "network"]["value"] == 2400.0
        # back to quiet: both clear (hold-down 0 for hot; big needs 5 minutes below)
        mg.upload("frp-par", P0 + 3 * STEP, partial(("par-pe1", "lon-pe1", "BE", 10.0, 1.0)))
        assert [a["rule"] for a in mg.get("/alarms").json()] == ["big"]
        mg.upload("frp-par", P0 + 4 * STEP, partial(("par-pe1", "lon-pe1", "BE", 10.0, 1.0)))
        assert mg.get("/alarms").json() == []


def test_alarm_state_survives_a_restart_and_replayed_periods_raise_nothing_twice(
    config: NetworkConfig, tmp_path: Path
) -> None:
    ruled = dataclasses.replace(config, alarms=(HOT,))
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        mg = open_mg(ruled, store, tmp_path)
        mg.upload("frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 3000.0, 1.0)))
        raised = mg.get("/alarms").json()
        assert [a["key"] for a in raised] == ["par-pe1>lon-pe1"]
        assert json.loads(store.get_meta("alarm_state") or "{}")["streams"][0]["rule"] == "hot"
    with Store(db) as store:
        again = open_mg(ruled, store, tmp_path)
        assert again.get("/alarms").json() == raised
        again.upload("frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 1.0, 1.0)))
        assert again.get("/alarms").json() == []


def test_alarm_transitions_are_posted_once_to_the_rules_webhook(
    config: NetworkConfig, tmp_path: Path
) -> None:
    posted: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Receiver) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        ruled = dataclasses.replace(config, alarms=(dataclasses.replace(HOT, webhook=url),))
        with Store(":memory:") as store:
            stats = MgStats(ruled, store)
            stats.start()
            try:
                mg = open_mg(ruled, store, tmp_path, stats=stats)
                mg.upload("frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 3000.0, 1.0)))
                mg.upload("frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 3001.0, 1.0)))
                mg.upload("frp-par", P0 + 2 * STEP, partial(("par-pe1", "lon-pe1", "BE", 1.0, 1.0)))
            finally:
                stats.stop()
        server.shutdown()
    assert [(p["rule"], p["key"], p["state"], p["at_ms"]) for p in posted] == [
        ("hot", "par-pe1>lon-pe1", "raised", P0 + STEP),
        ("hot", "par-pe1>lon-pe1", "cleared", P0 + 3 * STEP),
    ]


def test_an_empty_partial_is_stored_and_counts_as_a_period_of_zeros(mg: Mg) -> None:
    frp = next(name for name in mg.tokens if name != "operator")
    assert mg.upload(frp, P0, PARTIAL_SCHEMA.empty_table())["status"] == "stored"
    assert mg.stats() == {}
    busy = mg.get("/busy-hour", interval="always")
    assert busy.status_code == 200, busy.text
