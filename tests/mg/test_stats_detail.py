"""if_pe and vrf statistics: summed from every period's finest elements, kept across restarts."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowmatrix import loopback
from flowmatrix.config.model import NetworkConfig
from flowmatrix.loopback import Loopback
from flowmatrix.matrix.partial import PARTIAL_SCHEMA, PartialMeta
from flowmatrix.matrix.store import Store
from flowmatrix.matrix.total import total_matrix
from flowmatrix.mg import cli
from flowmatrix.mg.service import MgService
from flowmatrix.mg.stats import (
    DETAIL_OFF,
    SNAPSHOT_VERSION,
    MgStats,
    StatsGranularity,
    stats_columns,
)
from flowmatrix.mg.testing import MgClient as Mg
from flowmatrix.mg.testing import open_mg

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"
P0 = 1_800_000_000_000  # Friday 2027-01-15T08:00:00Z, on the hour
STEP = 300_000
HOUR = 3_600_000

#: (ingress, in_if, vrf, egress, class, bytes, packets)
Row = tuple[str, int, str, str, str, float, float]


def partial(*rows: Row) -> pa.Table:
    """A partial matrix of (ingress, in_if, vrf, egress, class, bytes, packets) rows, ToS 0."""
    cols: dict[str, list[object]] = {n: [] for n in PARTIAL_SCHEMA.names}
    for ingress, in_if, vrf, egress, cls, b, p in rows:
        values = [ingress, in_if, vrf, egress, 0, cls, b, p, 1.0, p, 0.0, 0.0]
        for name, value in zip(PARTIAL_SCHEMA.names, values, strict=True):
            cols[name].append(value)
    return pa.table(cols).cast(PARTIAL_SCHEMA)


def std(*values: float) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def keyed(
    rows: list[dict[str, Any]], granularity: StatsGranularity
) -> dict[tuple[Any, ...], dict[str, Any]]:
    keys = stats_columns(granularity)[:4]
    return {tuple(r[k] for k in keys): r for r in rows}


def get(
    mg: Mg, granularity: StatsGranularity, **params: object
) -> dict[tuple[Any, ...], dict[str, Any]]:
    r = mg.get("/stats", interval="always", granularity=granularity, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == list(stats_columns(granularity))
    return keyed(
        [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]], granularity
    )


def three_periods(mg: Mg) -> None:
    """par-pe1 → lon-pe1 through interfaces 1 and 2 of VRFs red and blue.

    ======  ==================  ==================  ==================  ============
    period  if 1 red BE         if 2 blue BE        if 1 blue BE        if 1 red EF
    ======  ==================  ==================  ==================  ============
    08:00   100 (1 pkt)         40 (4)                                  10 (1)
    08:05   300 (3)                                 20 (2)
    08:10                       60 (6)
    ======  ==================  ==================  ==================  ============
    """
    mg.upload(
        "frp-par",
        P0,
        partial(
            ("par-pe1", 1, "red", "lon-pe1", "BE", 100.0, 1.0),
            ("par-pe1", 2, "blue", "lon-pe1", "BE", 40.0, 4.0),
            ("par-pe1", 1, "red", "lon-pe1", "EF", 10.0, 1.0),
        ),
    )
    mg.upload(
        "frp-par",
        P0 + STEP,
        partial(
            ("par-pe1", 1, "red", "lon-pe1", "BE", 300.0, 3.0),
            ("par-pe1", 1, "blue", "lon-pe1", "BE", 20.0, 2.0),
        ),
    )
    mg.upload("frp-par", P0 + 2 * STEP, partial(("par-pe1", 2, "blue", "lon-pe1", "BE", 60.0, 6.0)))


def test_if_pe_statistics_keep_each_ingress_interface_apart(mg: Mg) -> None:
    three_periods(mg)
    stats = get(mg, "if_pe")
    assert list(stats) == [
        ("par-pe1", 1, "lon-pe1", "BE"),
        ("par-pe1", 1, "lon-pe1", "EF"),
        ("par-pe1", 2, "lon-pe1", "BE"),
    ]
    one = stats["par-pe1", 1, "lon-pe1", "BE"]  # red and blue: 100, 320, 0
    assert one["periods"] == 3
    assert one["mean_bytes"] == pytest.approx(140.0)
    assert one["std_bytes"] == pytest.approx(std(100, 320, 0))
    assert (one["peak_bytes"], one["p95_bytes"]) == (320.0, 320.0)
    assert one["mean_packets"] == pytest.approx(2.0)  # 1, 3 + 2, 0
    assert (one["peak_packets"], one["p95_packets"]) == (5.0, 5.0)
    two = stats["par-pe1", 2, "lon-pe1", "BE"]  # 40, 0, 60
    assert (two["mean_bytes"], two["std_bytes"]) == pytest.approx((100 / 3, std(40, 0, 60)))
    assert (two["peak_bytes"], two["peak_packets"]) == (60.0, 6.0)
    ef = stats["par-pe1", 1, "lon-pe1", "EF"]  # 10, 0, 0
    assert (ef["mean_bytes"], ef["std_bytes"]) == pytest.approx((10 / 3, std(10, 0, 0)))


def test_vrf_statistics_keep_each_vpn_apart(mg: Mg) -> None:
    three_periods(mg)
    stats = get(mg, "vrf")
    assert list(stats) == [
        ("blue", "par-pe1", "lon-pe1", "BE"),
        ("red", "par-pe1", "lon-pe1", "BE"),
        ("red", "par-pe1", "lon-pe1", "EF"),
    ]
    blue = stats["blue", "par-pe1", "lon-pe1", "BE"]  # interfaces 2 and 1: 40, 20, 60
    assert (blue["mean_bytes"], blue["std_bytes"]) == pytest.approx((40.0, std(40, 20, 60)))
    assert (blue["peak_bytes"], blue["p95_bytes"]) == (60.0, 60.0)
    assert blue["mean_packets"] == pytest.approx(4.0)
    red = stats["red", "par-pe1", "lon-pe1", "BE"]  # 100, 300, 0
    assert (red["mean_bytes"], red["std_bytes"]) == pytest.approx((400 / 3, std(100, 300, 0)))
    assert red["peak_packets"] == 3.0


def test_class_filter_and_class_sum_work_at_if_pe_and_vrf(mg: Mg) -> None:
    three_periods(mg)
    assert list(get(mg, "vrf", **{"class": "EF"})) == [("red", "par-pe1", "lon-pe1", "EF")]
    assert list(get(mg, "if_pe", **{"class": "AF4"})) == []
    summed = get(mg, "if_pe", **{"class": "all"})
    assert list(summed) == [("par-pe1", 1, "lon-pe1", "all"), ("par-pe1", 2, "lon-pe1", "all")]
    one = summed["par-pe1", 1, "lon-pe1", "all"]  # BE + EF: 110, 320, 0
    assert (one["mean_bytes"], one["std_bytes"]) == pytest.approx((430 / 3, std(110, 320, 0)))
    red = get(mg, "vrf", **{"class": "all"})["red", "par-pe1", "lon-pe1", "all"]  # 110, 300, 0
    assert (red["mean_bytes"], red["peak_bytes"]) == (pytest.approx(410 / 3), 300.0)


def test_hourly_if_pe_and_vrf_statistics_sum_each_local_hour_first(mg: Mg) -> None:
    three_periods(mg)
    mg.upload("frp-par", P0 + HOUR, partial(("par-pe1", 2, "blue", "lon-pe1", "BE", 500.0, 5.0)))
    two = get(mg, "if_pe", timescale="hour")["par-pe1", 2, "lon-pe1", "BE"]
    # 08:00: 40 + 0 + 60, 09:00: 500
    assert two["periods"] == 2
    assert (two["mean_bytes"], two["std_bytes"]) == pytest.approx((300.0, 200.0))
    assert (two["peak_bytes"], two["p95_bytes"]) == (500.0, 500.0)
    blue = get(mg, "vrf", timescale="hour", **{"class": "all"})["blue", "par-pe1", "lon-pe1", "all"]
    # 08:00: 40 + 20 + 60, 09:00: 500
    assert (blue["mean_bytes"], blue["std_bytes"]) == pytest.approx((310.0, std(120, 500)))
    week = get(mg, "vrf", timescale="week")["red", "par-pe1", "lon-pe1", "BE"]
    assert (week["periods"], week["mean_bytes"], week["std_bytes"]) == (1, 400.0, 0.0)


def test_p95_at_vrf_is_the_billing_percentile_over_21_periods(mg: Mg) -> None:
    for i in range(21):
        mg.upload(
            "frp-par",
            P0 + i * STEP,
            partial(
                ("par-pe1", 1, "red", "lon-pe1", "BE", i + 1.0, 1.0),
                ("par-pe1", 1, "blue", "lon-pe1", "BE", 1000.0, 1.0),
            ),
        )
    red = get(mg, "vrf")["red", "par-pe1", "lon-pe1", "BE"]
    # sorted 1…21, drop the top floor(5 % of 21) = 1, take the largest left
    assert (red["periods"], red["peak_bytes"], red["p95_bytes"]) == (21, 21.0, 20.0)
    assert red["mean_bytes"] == pytest.approx(11.0)


def test_a_revised_or_late_partial_replaces_the_periods_finest_values(mg: Mg) -> None:
    three_periods(mg)
    revised = mg.upload(
        "frp-par", P0 + STEP, partial(("par-pe1", 3, "green", "lon-pe1", "BE", 50.0, 5.0))
    )
    assert revised["version"] == 2
    mg.upload("frp-lon", P0, partial(("lon-pe1", 7, "red", "par-pe1", "BE", 90.0, 9.0)))
    vrf = get(mg, "vrf")
    assert list(vrf) == [
        ("blue", "par-pe1", "lon-pe1", "BE"),
        ("green", "par-pe1", "lon-pe1", "BE"),
        ("red", "lon-pe1", "par-pe1", "BE"),
        ("red", "par-pe1", "lon-pe1", "BE"),
        ("red", "par-pe1", "lon-pe1", "EF"),
    ]
    assert all(r["periods"] == 3 for r in vrf.values())
    red = vrf["red", "par-pe1", "lon-pe1", "BE"]  # 100, (300 revised away), 0
    assert (red["mean_bytes"], red["peak_bytes"]) == (pytest.approx(100 / 3), 100.0)
    blue = vrf["blue", "par-pe1", "lon-pe1", "BE"]  # 40, (20 revised away), 60
    assert (blue["mean_bytes"], blue["std_bytes"]) == pytest.approx((100 / 3, std(40, 0, 60)))
    green = vrf["green", "par-pe1", "lon-pe1", "BE"]
    assert (green["mean_bytes"], green["peak_bytes"]) == (pytest.approx(50 / 3), 50.0)
    late = vrf["red", "lon-pe1", "par-pe1", "BE"]
    assert (late["mean_bytes"], late["peak_bytes"]) == (30.0, 90.0)
    if_pe = get(mg, "if_pe")
    assert ("par-pe1", 3, "lon-pe1", "BE") in if_pe
    assert if_pe["par-pe1", 1, "lon-pe1", "BE"]["peak_bytes"] == 100.0


# --- the finer rows against the PE-to-PE ones and against /matrix ------------------------------

PES = ("par-pe1", "par-pe2", "lon-pe1", "unresolved")
FRP_OF = {"par-pe1": "frp-par", "par-pe2": "frp-par", "lon-pe1": "frp-lon"}
ROWS = st.tuples(
    st.sampled_from(PES[:3]),
    st.integers(0, 3),
    st.sampled_from(["", "red", "blue"]),
    st.sampled_from(PES),
    st.sampled_from(["BE", "EF"]),
    st.integers(1, 10_000).map(float),
    st.integers(1, 100).map(float),
)
PERIODS = st.lists(st.lists(ROWS, max_size=12), min_size=1, max_size=6)


def store_period(store: Store, frp: str, start: int, table: pa.Table) -> None:
    """Store a partial without telling any MgStats."""
    meta = PartialMeta(
        frp=frp, interval="always", period_start_ms=start, period_end_ms=start + STEP
    )
    store.put_partial(table, meta)


def fill(stats: MgStats, periods: list[list[Row]]) -> None:
    """Each period's rows as one partial per FRP, stored and observed as the upload route does."""
    for k, rows in enumerate(periods):
        for frp in sorted({FRP_OF[r[0]] for r in rows}):
            mine = [r for r in rows if FRP_OF[r[0]] == frp]
            store_period(stats.store, frp, P0 + k * STEP, partial(*mine))
            stats.observe("always", P0 + k * STEP)


def recomputed(
    config: NetworkConfig, store: Store, granularity: StatsGranularity
) -> dict[tuple[Any, ...], tuple[float, float, float, float]]:
    """Mean, std, peak, p95 of bytes per element from each stored period's /matrix total."""
    keys = stats_columns(granularity)[:4]
    per_period: list[dict[tuple[Any, ...], float]] = []
    for start in sorted({u.period_start_ms for u in store.current("always")}):
        uploads = store.current("always", period_start_ms=start)
        table = total_matrix(config, store.iter_rows(uploads), granularity=granularity)
        cells = zip(*(table[c].to_pylist() for c in (*keys, "bytes")), strict=True)
        per_period.append({tuple(c[:4]): c[4] for c in cells})
    elements = {key for p in per_period for key, v in p.items() if v > 0}
    out = {}
    for key in elements:
        column = np.array([p.get(key, 0.0) for p in per_period])
        out[key] = (
            float(column.mean()),
            float(column.std()),
            float(column.max()),
            float(np.percentile(column, 95, method="inverted_cdf")),
        )
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(periods=PERIODS)
def test_finer_rows_equal_matrix_totals_and_sum_to_the_pe_pe_rows(
    config: NetworkConfig, periods: list[list[Row]]
) -> None:
    with Store(":memory:") as store:
        stats = MgStats(config, store)
        stats.start()
        fill(stats, periods)
        stored = len({u.period_start_ms for u in store.current("always")})
        pe_pe = keyed(stats.rows("always"), "pe_pe")
        finer_granularities: tuple[StatsGranularity, ...] = ("if_pe", "vrf")
        for granularity in finer_granularities:
            rows = keyed(stats.rows("always", granularity=granularity), granularity)
            want = recomputed(config, store, granularity)
            assert rows.keys() == want.keys()
            for key, figures in want.items():
                row = rows[key]
                got = (row["mean_bytes"], row["std_bytes"], row["peak_bytes"], row["p95_bytes"])
                assert got == pytest.approx(figures, rel=1e-9, abs=1e-9)
                assert row["periods"] == stored
            # summed over if_index or vrf: the PE-to-PE element's total over the periods
            sums: dict[tuple[str, str, str], float] = {}
            for key, row in rows.items():
                pair = (key[0], key[2], key[3]) if granularity == "if_pe" else key[1:]
                sums[pair] = sums.get(pair, 0.0) + row["mean_bytes"] * row["periods"]
            totals = {k[:3]: r["mean_bytes"] * r["periods"] for k, r in pe_pe.items()}
            assert sums == pytest.approx(totals, rel=1e-9)
        stats.stop()


# --- restarts ----------------------------------------------------------------------------------


def four_periods(stats: MgStats) -> None:
    """Interfaces and VRFs over four periods; the second revised, a late FRP in the first."""
    fill(
        stats,
        [
            [("par-pe1", 1, "red", "lon-pe1", "BE", 100.0, 1.0)],
            [
                ("par-pe1", 1, "red", "lon-pe1", "BE", 300.0, 3.0),
                ("par-pe1", 2, "blue", "lon-pe1", "EF", 50.0, 5.0),
            ],
            [("par-pe1", 2, "red", "lon-pe1", "BE", 200.0, 2.0)],
            [("par-pe2", 1, "", "unresolved", "EF", 7.0, 1.0)],
        ],
    )
    store_period(
        stats.store,
        "frp-par",
        P0 + STEP,
        partial(("par-pe1", 3, "blue", "lon-pe1", "BE", 60.0, 6.0)),
    )
    stats.observe("always", P0 + STEP)
    store_period(
        stats.store, "frp-lon", P0, partial(("lon-pe1", 4, "red", "par-pe1", "AF4", 9.0, 9.0))
    )
    stats.observe("always", P0)


def finer(stats: MgStats) -> tuple[object, ...]:
    """Every if_pe and vrf figure of the interval ``always`` (class sums and hours too)."""
    return (
        stats.rows("always", granularity="if_pe"),
        stats.rows("always", granularity="vrf"),
        stats.rows("always", "all", granularity="if_pe", timescale="hour"),
        stats.rows("always", "BE", granularity="vrf", timescale="day"),
    )


def assert_same(got: tuple[object, ...], want: tuple[object, ...]) -> None:
    """Same rows, figures equal up to rounding (a rebuild replays no revision)."""
    for g_rows, w_rows in zip(got, want, strict=True):
        assert isinstance(g_rows, list)
        assert isinstance(w_rows, list)
        assert [[v for v in r.values() if not isinstance(v, float)] for r in g_rows] == [
            [v for v in r.values() if not isinstance(v, float)] for r in w_rows
        ]
        for g, w in zip(g_rows, w_rows, strict=True):
            figures = {k: v for k, v in w.items() if isinstance(v, float)}
            assert {k: g[k] for k in figures} == pytest.approx(figures, rel=1e-12, abs=1e-9)


@pytest.fixture
def saved(config: NetworkConfig, tmp_path: Path) -> tuple[Path, tuple[object, ...]]:
    """A store file whose statistics (with the detail) were saved, and its finer figures."""
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        stats = MgStats(config, store)
        stats.start()
        four_periods(stats)
        figures = finer(stats)
        stats.stop()
    return db, figures


def test_a_restart_loads_the_finer_statistics_bit_for_bit_without_reading_a_partial(
    config: NetworkConfig,
    saved: tuple[Path, tuple[object, ...]],
    read_spy: Callable[[Store], list[int]],
) -> None:
    db, before = saved
    assert before[1]  # the figures are not empty
    with Store(db) as store:
        ids = read_spy(store)
        again = MgStats(config, store)
        again.start()
        assert ids == []
        assert finer(again) == before
        # a revision after the restart still replaces the period's finest values
        store_period(
            store,
            "frp-par",
            P0 + 2 * STEP,
            partial(("par-pe1", 2, "red", "lon-pe1", "BE", 1.0, 1.0)),
        )
        again.observe("always", P0 + 2 * STEP)
        red = keyed(again.rows("always", granularity="vrf"), "vrf")[
            "red", "par-pe1", "lon-pe1", "BE"
        ]
        assert red["peak_bytes"] == 100.0  # 100, 0, 1, 0: the 200 was replaced
        again.stop()


def test_a_rebuild_without_the_snapshot_gives_the_same_finer_statistics(
    config: NetworkConfig, saved: tuple[Path, tuple[object, ...]], caplog: pytest.LogCaptureFixture
) -> None:
    db, before = saved
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    with Store(db) as store:
        store.clear_stats()
        rebuilt = MgStats(config, store)
        rebuilt.start()
        assert "no statistics snapshot: rebuilding from 4 stored period(s)" in caplog.text
        assert_same(finer(rebuilt), before)


def test_a_snapshot_saved_without_the_detail_is_rebuilt_when_the_detail_is_on(
    config: NetworkConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        off = MgStats(config, store, detail=False)
        off.start()
        four_periods(off)
        with pytest.raises(ValueError, match="mg serve --stats-detail"):
            off.rows("always", granularity="vrf")
        pe_pe = off.rows("always")
        off.stop()
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    with Store(db) as store:
        on = MgStats(config, store)
        on.start()
        assert "saved without the if_pe and vrf detail" in caplog.text
        assert_same((on.rows("always"),), (pe_pe,))
        with Store(":memory:") as fresh:
            want = MgStats(config, fresh)
            want.start()
            four_periods(want)
            assert_same(finer(on), finer(want))
            want.stop()
        on.stop()
    # and a snapshot with the detail serves an MG without it, as it is
    caplog.clear()
    with Store(db) as store:
        off = MgStats(config, store, detail=False)
        off.start()
        assert caplog.text == ""
        assert off.rows("always") == pe_pe


def test_damaged_finest_keys_fall_back_to_the_rebuild(
    config: NetworkConfig, saved: tuple[Path, tuple[object, ...]], caplog: pytest.LogCaptureFixture
) -> None:
    db, before = saved
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    with Store(db) as store:
        state = store.stats_states()[0]
        # same length, keys past every pair and port
        damaged = np.frombuffer(state.detail_keys, "<i8").copy()
        damaged[-1] = (1 << 40) | 5
        store.put_stats(dataclasses.replace(state, detail_keys=damaged.tobytes()))
        stats = MgStats(config, store)
        stats.start()
        assert "the finest element keys name unknown names" in caplog.text
        assert_same(finer(stats), before)


def test_a_store_written_before_the_detail_columns_opens_and_rebuilds(
    config: NetworkConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        stats = MgStats(config, store)
        stats.start()
        four_periods(stats)
        want = finer(stats)
        stats.stop()
    # what the previous version left: no detail columns, a version 1 snapshot
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE stats_state DROP COLUMN detail_keys")
    con.execute("ALTER TABLE stats_periods DROP COLUMN detail_bytes")
    con.execute("ALTER TABLE stats_periods DROP COLUMN detail_packets")
    meta = json.loads(con.execute("SELECT meta_json FROM stats_state").fetchall()[0][0])
    del meta["detail"]
    meta["version"] = 1
    con.execute("UPDATE stats_state SET meta_json = ?", [json.dumps(meta)])
    con.close()
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    with Store(db) as store:
        assert store.stats_states()[0].detail_keys == b""
        assert {p.detail_bytes for p in store.stats_periods("always")} == {b""}
        stats = MgStats(config, store)
        stats.start()
        assert "snapshot version 1" in caplog.text
        assert "rebuilding from 4 stored period(s)" in caplog.text
        assert_same(finer(stats), want)
        stats.stop()
    with Store(db) as store:
        saved_meta = json.loads(store.stats_states()[0].meta_json)
        assert saved_meta["version"] == SNAPSHOT_VERSION
        assert len(store.stats_states()[0].detail_keys) > 0


# --- the HTTP route and the commands -----------------------------------------------------------


def test_finer_stats_come_as_csv_and_parquet_with_the_json_columns(mg: Mg) -> None:
    three_periods(mg)
    for granularity, extra in (("if_pe", "if_index"), ("vrf", "vrf")):
        body = mg.get("/stats", interval="always", granularity=granularity).json()
        assert extra in body["columns"]
        csv = mg.get("/stats", interval="always", granularity=granularity, format="csv")
        assert csv.headers["content-type"].startswith("text/csv")
        table = pacsv.read_csv(io.BytesIO(csv.content))
        assert table.column_names == body["columns"]
        assert table.num_rows == len(body["rows"]) == 3
        parquet = pq.read_table(
            io.BytesIO(
                mg.get(
                    "/stats", interval="always", granularity=granularity, format="parquet"
                ).content
            )
        )
        assert parquet.column_names == body["columns"]
        assert [list(r.values()) for r in parquet.to_pylist()] == body["rows"]
    parquet = pq.read_table(
        io.BytesIO(
            mg.get("/stats", interval="always", granularity="if_pe", format="parquet").content
        )
    )
    assert parquet.schema.field("if_index").type == pa.int64()


def test_without_stats_detail_if_pe_and_vrf_answer_422_saying_how_to_turn_them_on(
    config: NetworkConfig, tmp_path: Path
) -> None:
    with Store(":memory:") as store:
        mg = open_mg(config, store, tmp_path, stats_detail=False)
        three_periods(mg)
        for granularity in ("if_pe", "vrf"):
            for fmt in ("json", "csv"):
                r = mg.get("/stats", interval="always", granularity=granularity, format=fmt)
                assert r.status_code == 422
                assert r.json() == {"error": DETAIL_OFF}
                assert "--stats-detail" in r.json()["error"]
        assert mg.get("/stats", interval="always").status_code == 200
        assert mg.get("/stats", interval="always", granularity="pop_pop").status_code == 200


def test_tm_stats_shows_the_vrf_column_at_vrf_granularity(
    mg: Mg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    three_periods(mg)
    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "_fetch", mg.fetcher(asked))
    args = ["stats", "--mg", "http://mg", "--token-file", str(tmp_path / "operator.token")]
    shown = CliRunner().invoke(cli.tm_app, [*args, "--granularity", "vrf"])
    assert shown.exit_code == 0, shown.output
    assert asked[0]["granularity"] == "vrf"
    assert "vrf statistics, interval always, 3 period(s)" in shown.output
    header = next(line for line in shown.output.splitlines() if "ingress" in line)
    assert header.split()[:4] == ["vrf", "ingress", "egress", "class"]
    lines = [line.split() for line in shown.output.splitlines()]
    # largest mean first: red BE (133.3), blue BE (40), red EF (3.3)
    assert [line[0] for line in lines if line[1:2] == ["par-pe1"]] == ["red", "blue", "red"]
    assert "3 rows (3 shown)" in shown.output
    by_if = CliRunner().invoke(cli.tm_app, [*args, "--granularity", "if_pe", "--json"])
    assert by_if.exit_code == 0, by_if.output
    assert json.loads(by_if.output)["stats"]["columns"][:4] == [
        "ingress",
        "if_index",
        "egress",
        "class",
    ]


def test_mg_serve_passes_the_stats_detail_switch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []

    def serve(*args: object, **kwargs: Any) -> None:
        seen.append(kwargs)

    monkeypatch.setattr("flowmatrix.mg.service.serve", serve)
    base = ["serve", "--config", str(VALID), "--db", str(tmp_path / "mg.duckdb")]
    for extra, want in (([], True), (["--no-stats-detail"], False), (["--stats-detail"], True)):
        result = CliRunner().invoke(cli.mg_app, [*base, *extra])
        assert result.exit_code == 0, result.output
        assert seen[-1]["stats_detail"] is want


# --- forecasts of one if_pe or vrf element ------------------------------------------------------


def two_interfaces(mg: Mg, periods: int = 8) -> None:
    """par-pe1 → lon-pe1 BE: 1000 + 100 i bytes via interface 1 (red), 5000 via 2 (blue)."""
    for i in range(periods):
        mg.upload(
            "frp-par",
            P0 + i * STEP,
            partial(
                ("par-pe1", 1, "red", "lon-pe1", "BE", 1000.0 + 100 * i, 1.0),
                ("par-pe1", 2, "blue", "lon-pe1", "BE", 5000.0, 1.0),
            ),
        )


def test_element_history_of_one_interface_or_vpn_is_its_share_of_each_period(
    config: NetworkConfig, tmp_path: Path
) -> None:
    with Store(":memory:") as store:
        stats = MgStats(config, store)
        stats.start()
        two_interfaces(open_mg(config, store, tmp_path, stats=stats), periods=3)
        starts = [P0, P0 + STEP, P0 + 2 * STEP]
        by_if = stats.element_history("always", "par-pe1", "lon-pe1", if_index=1)
        assert by_if == (starts, [1000.0, 1100.0, 1200.0])
        by_vrf = stats.element_history("always", "par-pe1", "lon-pe1", "BE", vrf="blue")
        assert by_vrf == (starts, [5000.0] * 3)
        # red never entered through interface 2
        with pytest.raises(LookupError, match="if_index 2 vrf 'red'"):
            stats.element_history("always", "par-pe1", "lon-pe1", if_index=2, vrf="red")
        stats.stop()


def test_forecast_of_one_if_pe_or_vrf_element_uses_its_own_history(mg: Mg) -> None:
    two_interfaces(mg)
    r = mg.get("/forecast", interval="always", ingress="par-pe1", egress="lon-pe1", if_index=1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["element"] == {
        "ingress": "par-pe1",
        "egress": "lon-pe1",
        "class": None,
        "if_index": 1,
        "vrf": None,
    }
    assert body["history_periods"] == 8
    # a straight line of slope 100: Holt's trend carries it on
    assert body["forecast"][0]["bytes"] == pytest.approx(1800.0, rel=0.01)
    flat = mg.get("/forecast", interval="always", ingress="par-pe1", egress="lon-pe1", vrf="blue")
    assert [p["bytes"] for p in flat.json()["forecast"]] == pytest.approx([5000.0] * 12)
    both = mg.get("/forecast", interval="always", ingress="par-pe1", egress="lon-pe1")
    assert both.json()["forecast"][0]["bytes"] == pytest.approx(6800.0, rel=0.01)
    missing = mg.get(
        "/forecast", interval="always", ingress="par-pe1", egress="lon-pe1", if_index=9
    )
    assert missing.status_code == 404
    assert "if_index 9" in missing.json()["error"]


def test_forecast_by_interface_answers_422_without_stats_detail(
    config: NetworkConfig, tmp_path: Path
) -> None:
    with Store(":memory:") as store:
        mg = open_mg(config, store, tmp_path, stats_detail=False)
        two_interfaces(mg)
        r = mg.get("/forecast", interval="always", ingress="par-pe1", egress="lon-pe1", vrf="red")
        assert (r.status_code, r.json()) == (422, {"error": DETAIL_OFF})
        r = mg.get("/forecast", interval="always", ingress="par-pe1", egress="lon-pe1")
        assert r.status_code == 200


def test_tm_forecast_passes_if_index_and_vrf_and_titles_the_table(
    mg: Mg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    two_interfaces(mg)
    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "_fetch", mg.fetcher(asked))
    args = ["forecast", "--mg", "http://mg", "--token-file", str(tmp_path / "operator.token")]
    args += ["--ingress", "par-pe1", "--egress", "lon-pe1", "--if-index", "2", "--vrf", "blue"]
    shown = CliRunner().invoke(cli.tm_app, args)
    assert shown.exit_code == 0, shown.output
    assert (asked[0]["if_index"], asked[0]["vrf"]) == (2, "blue")
    assert "par-pe1 > lon-pe1 if_index 2 vrf 'blue' (all classes)" in shown.output


@pytest.mark.parametrize("detail", [True, False])
def test_mg_service_builds_its_statistics_with_the_switch(tmp_path: Path, detail: bool) -> None:
    service = MgService(VALID, tmp_path / "mg.duckdb", port=0, stats_detail=detail)
    service.build()
    try:
        assert service.stats is not None
        assert service.stats.detail is detail
    finally:
        service.stop()


@pytest.mark.parametrize(("detail", "flag"), [(True, False), (False, True)])
def test_loopback_starts_the_mg_with_no_stats_detail_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detail: bool, flag: bool
) -> None:
    network = tmp_path / "network"
    network.mkdir()
    (network / "network.xml").write_text(VALID.read_text())
    spawned: list[list[str]] = []
    net = Loopback(network, tmp_path / "run", stats_detail=detail)
    monkeypatch.setattr(net, "_spawn", lambda name, argv: spawned.append(argv))
    monkeypatch.setattr(loopback, "_wait", lambda *args, **kwargs: None)
    net.start_mg()
    (argv,) = spawned
    assert argv[argv.index("mg") : argv.index("mg") + 2] == ["mg", "serve"]
    assert ("--no-stats-detail" in argv) is flag
