"""Per-service-node busy hours and element forecasts of the MG (issue 8, part 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flowmatrix.mg import cli
from flowmatrix.mg.cli import render_forecast, render_stats
from flowmatrix.mg.stats import ForecastError, element_forecast
from flowmatrix.mg.testing import MgClient as Mg
from flowmatrix.mg.testing import partial_table

P0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z, on the hour
STEP = 300_000
HOUR = 3_600_000


def partial(*items: tuple[str, str, str, float]) -> pa.Table:
    """Rows of (ingress, egress, class, bytes); 1 packet, in_if 3, no VRF, tos 0."""
    return partial_table((i, e, c, b, 1.0) for i, e, c, b in items)


def rising(mg: Mg, periods: int = 48) -> None:
    """par-pe1 → lon-pe1 BE: 1000 + 100 i bytes in period i."""
    for i in range(periods):
        mg.upload("frp-par", P0 + i * STEP, partial(("par-pe1", "lon-pe1", "BE", 1000.0 + 100 * i)))


# --- per-node busy hour -------------------------------------------------------------------------


def node_traffic(mg: Mg) -> None:
    """Hour 08: PAR 150, LON 450, network 550; hour 09: PAR 1300, LON 300, network 1300."""
    mg.upload(
        "frp-par",
        P0,
        partial(("par-pe1", "par-pe2", "BE", 100.0), ("par-pe1", "lon-pe1", "BE", 50.0)),
    )
    mg.upload("frp-lon", P0 + STEP, partial(("lon-pe1", "lon-pe1", "BE", 400.0)))
    mg.upload("frp-lon", P0 + HOUR, partial(("lon-pe1", "par-pe1", "EF", 300.0)))
    mg.upload("frp-par", P0 + HOUR + STEP, partial(("par-pe1", "unresolved", "BE", 1000.0)))


def test_node_busy_hours_count_an_element_for_both_its_nodes_once_and_unresolved_for_ingress(
    mg: Mg,
) -> None:
    node_traffic(mg)
    body = mg.get("/busy-hour", interval="always").json()
    assert body["busy_hour"]["start_ms"] == P0 + HOUR
    assert body["busy_hour"]["volume_bytes"] == 1300.0
    par, lon = body["nodes"]["PAR"], body["nodes"]["LON"]
    # PAR: 100 (inside PAR, once) + 50 at 08:00; 300 + 1000 (unresolved egress) at 09:00
    assert (par["start_ms"], par["volume_bytes"], par["periods"]) == (P0 + HOUR, 1300.0, 2)
    # LON: 50 + 400 at 08:00 beats 300 at 09:00; the unresolved element is not LON's
    assert (lon["start_ms"], lon["volume_bytes"], lon["periods"]) == (P0, 450.0, 2)
    assert lon["local_start"] == "2027-01-15T08:00:00+00:00"
    assert (lon["expected_periods"], lon["complete"]) == (12, False)


def test_render_stats_prints_the_network_busy_hour_and_one_line_per_node(
    mg: Mg, capsys: pytest.CaptureFixture[str]
) -> None:
    node_traffic(mg)
    render_stats(
        mg.get("/stats", interval="always").json(), mg.get("/busy-hour", interval="always").json()
    )
    shown = capsys.readouterr().out
    assert "busy hour: 2027-01-15T09:00:00+00:00" in shown
    assert "node LON: 2027-01-15T08:00:00+00:00 (2027-01-15T08:00:00Z, UTC), 450 bytes" in shown
    assert "node PAR: 2027-01-15T09:00:00+00:00" in shown
    assert "1.3k bytes, 2/12 periods, incomplete" in shown


# --- forecast -----------------------------------------------------------------------------------


def test_forecast_of_a_rising_series_crosses_the_threshold_at_the_expected_period(
    mg: Mg,
) -> None:
    rising(mg)
    # 0.8 × capacity = the rate of period 60: (1000 + 6000) bytes × 8 / 300 s
    capacity = 7000.0 * 8 / 300 / 0.8
    r = mg.get(
        "/forecast",
        interval="always",
        ingress="par-pe1",
        egress="lon-pe1",
        horizon=24,
        season=4,
        capacity_bps=capacity * 1.0001,
        threshold=0.8,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["element"] == {"ingress": "par-pe1", "egress": "lon-pe1", "class": None}
    assert (body["readout_seconds"], body["history_periods"]) == (300, 48)
    assert (body["season"], body["horizon"]) == (4, 24)
    assert [f["period_start_ms"] for f in body["forecast"]] == [
        P0 + (48 + k) * STEP for k in range(24)
    ]
    assert body["forecast"][0]["bytes"] == pytest.approx(5800.0, rel=0.02)
    assert body["forecast"][0]["bps"] == pytest.approx(body["forecast"][0]["bytes"] * 8 / 300)
    assert abs(body["crossing_ms"] - (P0 + 60 * STEP)) <= STEP
    # 48 ≥ 2 × 4 + 24: backtested; the trend fits a line better than last season repeated
    assert body["backtest"]["model_mape"] < body["backtest"]["naive_mape"]


def test_forecast_without_a_season_uses_the_trend_and_may_not_cross(mg: Mg) -> None:
    rising(mg, 12)
    body = mg.get(
        "/forecast",
        interval="always",
        ingress="par-pe1",
        egress="lon-pe1",
        **{"class": "BE"},
        horizon=3,
        capacity_bps=1e9,
        threshold=0.8,
    ).json()
    # 12 periods are not two days of 5-minute periods: no season, no backtest
    assert (body["season"], body["backtest"], body["crossing_ms"]) == (None, None, None)
    assert [round(f["bytes"]) for f in body["forecast"]] == pytest.approx(
        [2200, 2300, 2400], abs=30
    )


def test_forecast_needs_four_periods_of_history_and_two_seasons_when_one_is_given(
    mg: Mg,
) -> None:
    rising(mg, 3)
    r = mg.get("/forecast", interval="always", ingress="par-pe1", egress="lon-pe1")
    assert r.status_code == 400
    assert r.json() == {"error": "history of 3 period(s) is too short to forecast: need at least 4"}
    mg.upload("frp-par", P0 + 3 * STEP, partial(("par-pe1", "lon-pe1", "BE", 5.0)))
    r = mg.get("/forecast", interval="always", ingress="par-pe1", egress="lon-pe1", season=3)
    assert r.status_code == 400
    assert "two seasons (6 periods)" in r.json()["error"]


def test_forecast_is_404_for_unknown_elements_and_intervals_and_422_for_bad_parameters(
    mg: Mg,
) -> None:
    rising(mg, 4)
    base = {"interval": "always", "ingress": "par-pe1", "egress": "lon-pe1"}
    assert mg.get("/forecast", **{**base, "egress": "par-pe2"}).status_code == 404
    assert mg.get("/forecast", **{**base, "class": "EF"}).status_code == 404
    r = mg.get("/forecast", **{**base, "interval": "nope"})
    assert (r.status_code, r.json()) == (404, {"error": "unknown interval 'nope'"})
    for bad in ({"horizon": 0}, {"season": 1}, {"capacity_bps": -1, "threshold": 0.8}):
        assert mg.get("/forecast", **{**base, **bad}).status_code == 422
    r = mg.get("/forecast", **{**base, "capacity_bps": 1000})
    assert r.status_code == 422
    assert "together" in r.json()["error"]


def test_forecast_needs_an_operator_token(mg: Mg) -> None:
    rising(mg, 4)
    params = {"interval": "always", "ingress": "par-pe1", "egress": "lon-pe1"}
    assert mg.get("/forecast", mg.tokens["frp-par"], **params).status_code == 403
    assert mg.get("/forecast", "nonsense", **params).status_code == 401


def test_element_forecast_refuses_a_history_shorter_than_four_periods() -> None:
    with pytest.raises(ForecastError, match="at least 4"):
        element_forecast([0, 1, 2], [1.0, 2.0, 3.0], readout_seconds=300, horizon=2)


def test_render_forecast_prints_the_table_the_backtest_and_the_crossing(
    mg: Mg, capsys: pytest.CaptureFixture[str]
) -> None:
    rising(mg)
    params = {"interval": "always", "ingress": "par-pe1", "egress": "lon-pe1", "season": 4}
    crossing = mg.get("/forecast", **params, horizon=24, capacity_bps=200.0, threshold=0.8)
    render_forecast(crossing.json(), capacity=True, threshold=0.8)
    shown = capsys.readouterr().out
    assert "forecast par-pe1 > lon-pe1 (all classes), interval always" in shown
    assert "48 period(s) of history, season 4 periods" in shown
    assert "2027-01-15T12:00:00Z" in shown  # the first forecast period
    assert "backtest MAPE: model" in shown
    assert "80 % of capacity: crosses at 2027-01-15T1" in shown
    never = mg.get("/forecast", **params, horizon=2, capacity_bps=1e12, threshold=0.8)
    render_forecast(never.json(), capacity=True, threshold=0.8)
    assert "80 % of capacity: does not cross within the horizon" in capsys.readouterr().out
    render_forecast(never.json(), capacity=False)
    assert "capacity" not in capsys.readouterr().out


def test_tm_forecast_passes_its_options_as_query_parameters_and_renders_the_answer(
    mg: Mg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rising(mg)
    asked: list[dict[str, Any]] = []

    monkeypatch.setattr(cli, "_fetch", mg.fetcher(asked))
    args = ["forecast", "--mg", "http://mg", "--token-file", str(tmp_path / "operator.token")]
    args += ["--ingress", "par-pe1", "--egress", "lon-pe1", "--class", "BE", "--horizon", "6"]
    args += ["--season", "4", "--capacity-bps", "1e12"]
    shown = CliRunner().invoke(cli.tm_app, args)
    assert shown.exit_code == 0, shown.output
    assert asked[0]["threshold"] == 0.8
    assert (asked[0]["class"], asked[0]["horizon"], asked[0]["season"]) == ("BE", 6, 4)
    assert "forecast par-pe1 > lon-pe1 (BE)" in shown.output
    assert "does not cross within the horizon" in shown.output
    as_json = CliRunner().invoke(cli.tm_app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert '"crossing_ms": null' in as_json.output
