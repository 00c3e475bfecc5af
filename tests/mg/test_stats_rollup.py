"""/stats and tm stats over coarser time scales, service-node granularity and summed classes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flowmatrix.mg import cli
from flowmatrix.mg.testing import MgClient as Mg
from flowmatrix.mg.testing import partial_table

P0 = 1_800_000_000_000  # Friday 2027-01-15T08:00:00Z, on the hour
STEP = 300_000
HOUR = 3_600_000
DAY = 24 * HOUR


def partial(*items: tuple[str, str, str, float]) -> pa.Table:
    """Rows of (ingress, egress, class, bytes); packets = bytes / 10, in_if 3, no VRF, tos 0."""
    return partial_table((i, e, c, b, b / 10) for i, e, c, b in items)


def traffic(mg: Mg) -> None:
    """Five periods over two days (PAR = par-pe1, par-pe2; LON = lon-pe1).

    ==========  ===========================  =============================
    period      par-pe1 > lon-pe1            others
    ==========  ===========================  =============================
    08:00       BE 100, EF 10                par-pe1 > unresolved BE 7
    08:05       BE 200
    09:00       BE 50                        par-pe2 > lon-pe1 BE 30
    09:05                                    lon-pe1 > par-pe1 BE 5
    08:00 +1 d  BE 400
    ==========  ===========================  =============================
    """
    mg.upload(
        "frp-par",
        P0,
        partial(
            ("par-pe1", "lon-pe1", "BE", 100.0),
            ("par-pe1", "lon-pe1", "EF", 10.0),
            ("par-pe1", "unresolved", "BE", 7.0),
        ),
    )
    mg.upload("frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 200.0)))
    mg.upload(
        "frp-par",
        P0 + HOUR,
        partial(("par-pe1", "lon-pe1", "BE", 50.0), ("par-pe2", "lon-pe1", "BE", 30.0)),
    )
    mg.upload("frp-lon", P0 + HOUR + STEP, partial(("lon-pe1", "par-pe1", "BE", 5.0)))
    mg.upload("frp-par", P0 + DAY, partial(("par-pe1", "lon-pe1", "BE", 400.0)))


def std(*values: float) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def test_hourly_statistics_sum_the_periods_of_each_local_hour_first(mg: Mg) -> None:
    traffic(mg)
    be = mg.stats(timescale="hour")["par-pe1", "lon-pe1", "BE"]
    # hours 08:00 (100 + 200), 09:00 (50), 08:00 next day (400): three buckets
    assert be["periods"] == 3
    assert be["mean_bytes"] == pytest.approx(750 / 3)
    assert be["std_bytes"] == pytest.approx(std(300, 50, 400))
    assert (be["peak_bytes"], be["p95_bytes"]) == (400.0, 400.0)
    assert be["mean_packets"] == pytest.approx(75 / 3)
    # an element absent from an hour counts 0 there, as for periods
    ef = mg.stats(timescale="hour")["par-pe1", "lon-pe1", "EF"]
    assert (ef["mean_bytes"], ef["std_bytes"]) == pytest.approx((10 / 3, std(10, 0, 0)))


def test_daily_and_weekly_statistics_follow_local_days_and_iso_weeks(mg: Mg) -> None:
    traffic(mg)
    day = mg.stats(timescale="day")["par-pe1", "lon-pe1", "BE"]
    assert (day["periods"], day["mean_bytes"], day["std_bytes"]) == (2, 375.0, 25.0)
    assert day["peak_bytes"] == 400.0
    # Friday and Saturday are one ISO week: one bucket, no spread
    week = mg.stats(timescale="week")["par-pe1", "lon-pe1", "BE"]
    assert (week["periods"], week["mean_bytes"], week["std_bytes"]) == (1, 750.0, 0.0)
    assert week["p95_bytes"] == 750.0


def test_the_class_sum_adds_the_classes_of_each_period_before_the_statistics(mg: Mg) -> None:
    traffic(mg)
    stats = mg.stats(**{"class": "all"})
    assert set(stats) == {
        ("par-pe1", "lon-pe1", "all"),
        ("par-pe1", "unresolved", "all"),
        ("par-pe2", "lon-pe1", "all"),
        ("lon-pe1", "par-pe1", "all"),
    }
    pair = stats["par-pe1", "lon-pe1", "all"]
    # 110, 200, 50, 0, 400 over the five periods
    assert pair["periods"] == 5
    assert pair["mean_bytes"] == pytest.approx(760 / 5)
    assert pair["std_bytes"] == pytest.approx(std(110, 200, 50, 0, 400))
    assert (pair["peak_bytes"], pair["p95_bytes"]) == (400.0, 400.0)


def test_service_node_statistics_sum_the_pes_of_each_node_and_keep_unresolved(mg: Mg) -> None:
    traffic(mg)
    stats = mg.stats(granularity="pop_pop")
    assert set(stats) == {
        ("PAR", "LON", "BE"),
        ("PAR", "LON", "EF"),
        ("PAR", "unresolved", "BE"),
        ("LON", "PAR", "BE"),
    }
    be = stats["PAR", "LON", "BE"]
    # par-pe1 + par-pe2: 100, 200, 80, 0, 400
    assert be["mean_bytes"] == pytest.approx(780 / 5)
    assert be["std_bytes"] == pytest.approx(std(100, 200, 80, 0, 400))
    assert stats["LON", "PAR", "BE"]["peak_bytes"] == 5.0
    # nodes, classes summed, per hour: PAR > LON 310, 80, 400
    hourly = mg.stats(granularity="pop_pop", timescale="hour", **{"class": "all"})
    par_lon = hourly["PAR", "LON", "all"]
    assert par_lon["mean_bytes"] == pytest.approx(790 / 3)
    assert par_lon["std_bytes"] == pytest.approx(std(310, 80, 400))
    # one class of the service-node matrix
    assert set(mg.stats(granularity="pop_pop", **{"class": "EF"})) == {("PAR", "LON", "EF")}


def test_figures_recomputed_from_the_kept_periods_equal_the_running_ones(mg: Mg) -> None:
    traffic(mg)
    running = mg.stats()
    summed = mg.stats(**{"class": "all"})
    # a pair with one class: its class sum (recomputed from history) is the running element
    singles = [k for k in running if sum(1 for o in running if o[:2] == k[:2]) == 1]
    assert len(singles) == 3
    for ingress, egress, cls in singles:
        row, other = running[ingress, egress, cls], summed[ingress, egress, "all"]
        figures = [c for c in row if c not in ("ingress", "egress", "class")]
        assert {c: other[c] for c in figures} == pytest.approx({c: row[c] for c in figures})


def test_stats_refuse_unknown_timescales_and_granularities(mg: Mg) -> None:
    traffic(mg)
    assert mg.get("/stats", interval="always", timescale="month").status_code == 422
    assert mg.get("/stats", interval="always", granularity="if_vrf").status_code == 422


def test_tm_stats_passes_timescale_and_granularity_and_titles_the_table(
    mg: Mg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    traffic(mg)
    asked: list[dict[str, Any]] = []

    monkeypatch.setattr(cli, "_fetch", mg.fetcher(asked))
    args = ["stats", "--mg", "http://mg", "--token-file", str(tmp_path / "operator.token")]
    args += ["--granularity", "pop_pop", "--timescale", "hour", "--class", "all"]
    shown = CliRunner().invoke(cli.tm_app, args)
    assert shown.exit_code == 0, shown.output
    assert asked[0]["timescale"] == "hour"
    assert asked[0]["granularity"] == "pop_pop"
    assert "pop_pop statistics, interval always, 3 hour(s)" in shown.output
    assert "PAR" in shown.output
    assert "263.3" in shown.output  # 790 / 3
