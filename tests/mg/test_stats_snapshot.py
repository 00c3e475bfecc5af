"""Statistics snapshots in the store: a restart loads them and sums only what changed since."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pytest

from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import StoreError
from flowmatrix.matrix.partial import PartialMeta
from flowmatrix.matrix.store import StatsState, Store, Upload
from flowmatrix.mg.stats import SNAPSHOT_VERSION, MgStats
from flowmatrix.mg.testing import partial_table

P0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z, on the hour
STEP = 300_000


def partial(*items: tuple[str, str, str, float, float]) -> pa.Table:
    """Rows of (ingress, egress, class, bytes, packets); in_if 3, no VRF, tos 0."""
    return partial_table(items)


def store_period(store: Store, frp: str, start: int, table: pa.Table) -> None:
    """Store a partial without telling any MgStats (an upload while the MG was down)."""
    meta = PartialMeta(
        frp=frp, interval="always", period_start_ms=start, period_end_ms=start + STEP
    )
    assert store.put_partial(table, meta).status == "stored"


def put(stats: MgStats, frp: str, start: int, table: pa.Table) -> None:
    """Store a partial and observe it, as the upload route does."""
    store_period(stats.store, frp, start, table)
    stats.observe("always", start)


def assert_same_rows(got: list[dict[str, object]], want: list[dict[str, object]]) -> None:
    """Same elements, same order; figures equal up to rounding (a rebuild replays no revision)."""
    assert [[v for v in r.values() if isinstance(v, str)] for r in got] == [
        [v for v in r.values() if isinstance(v, str)] for r in want
    ]
    for g, w in zip(got, want, strict=True):
        figures = {k: v for k, v in w.items() if not isinstance(v, str)}
        assert {k: g[k] for k in figures} == pytest.approx(figures, rel=1e-12, abs=1e-9)


def ids_of(uploads: Sequence[Upload], *starts: int) -> list[int]:
    return sorted(u.id for u in uploads if u.period_start_ms in starts)


def four_periods(stats: MgStats) -> None:
    """par-pe1 → lon-pe1 BE, EF over four periods; the second revised, a late FRP in the first."""
    put(stats, "frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 100.0, 1.0)))
    put(
        stats,
        "frp-par",
        P0 + STEP,
        partial(("par-pe1", "lon-pe1", "BE", 300.0, 3.0), ("par-pe1", "lon-pe1", "EF", 50.0, 5.0)),
    )
    put(stats, "frp-par", P0 + 2 * STEP, partial(("par-pe1", "lon-pe1", "BE", 200.0, 2.0)))
    put(stats, "frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 600.0, 6.0)))
    put(stats, "frp-lon", P0, partial(("lon-pe1", "par-pe1", "AF4", 90.0, 9.0)))
    put(stats, "frp-par", P0 + 3 * STEP, partial(("par-pe2", "lon-pe1", "EF", 7.0, 1.0)))


@pytest.fixture
def saved(config: NetworkConfig, tmp_path: Path) -> Path:
    """A store file whose statistics were saved by a running MgStats."""
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        stats = MgStats(config, store)
        stats.start()
        four_periods(stats)
        stats.stop()
    return db


def everything(stats: MgStats) -> tuple[object, ...]:
    """Every figure MgStats serves for the interval ``always``."""
    return (
        stats.rows("always"),
        stats.rows("always", "all", granularity="pop_pop", timescale="hour"),
        stats.volumes("always"),
        stats.busy("always"),
        stats.node_busy("always"),
        stats.element_history("always", "par-pe1", "lon-pe1"),
    )


def test_a_restart_loads_the_saved_statistics_bit_for_bit_without_reading_a_partial(
    config: NetworkConfig, tmp_path: Path, read_spy: Callable[[Store], list[int]]
) -> None:
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        stats = MgStats(config, store)
        stats.start()
        four_periods(stats)
        before = everything(stats)
        stats.stop()
    with Store(db) as store:
        ids = read_spy(store)
        again = MgStats(config, store)
        again.start()
        assert ids == []
        assert everything(again) == before


def test_a_restart_sums_only_the_periods_stored_or_revised_since_the_snapshot(
    config: NetworkConfig, saved: Path, read_spy: Callable[[Store], list[int]]
) -> None:
    with Store(saved) as store:
        # while the MG was down: a new period, a revision of period 2 and a late FRP in period 3
        store_period(
            store, "frp-par", P0 + 4 * STEP, partial(("par-pe1", "lon-pe1", "BE", 1.0, 1.0))
        )
        store_period(
            store, "frp-par", P0 + 2 * STEP, partial(("par-pe1", "lon-pe1", "BE", 20.0, 2.0))
        )
        store_period(
            store, "frp-lon", P0 + 3 * STEP, partial(("lon-pe1", "par-pe2", "BE", 4.0, 4.0))
        )
        ids = read_spy(store)
        stats = MgStats(config, store)
        stats.start()
        changed = ids_of(store.current("always"), P0 + 2 * STEP, P0 + 3 * STEP, P0 + 4 * STEP)
        assert sorted(ids) == changed
        caught_up = stats.rows("always")
        # a full rebuild from the store agrees
        store.clear_stats()
        full = MgStats(config, store)
        full.start()
        assert_same_rows(caught_up, full.rows("always"))
    be = next(r for r in caught_up if r["ingress"] == "par-pe1" and r["class"] == "BE")
    # periods 100, 600, 20, 0, 1: a revision replaced period 2, nothing was added twice
    assert be["periods"] == 5
    assert be["mean_bytes"] == pytest.approx((100 + 600 + 20 + 0 + 1) / 5)
    assert be["peak_bytes"] == 600.0
    # and the catch-up was saved: the next restart reads nothing
    with Store(saved) as store:
        ids = read_spy(store)
        again = MgStats(config, store)
        again.start()
        assert ids == []
        assert again.rows("always") == caught_up


def test_a_corrupt_snapshot_is_dropped_with_a_warning_and_everything_rebuilt(
    config: NetworkConfig, saved: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(saved) as store:
        good = MgStats(config, store)
        good.start()
        want = good.rows("always")
        state = store.stats_states()[0]
        store.put_stats(dataclasses.replace(state, bytes_m2=b"\x00" * 5))
        caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
        stats = MgStats(config, store)
        stats.start()
        assert "statistics snapshot not used" in caplog.text
        assert "rebuilding from 4 stored period(s)" in caplog.text
        assert_same_rows(stats.rows("always"), want)
        # the rebuild saved a good snapshot again
        caplog.clear()
        again = MgStats(config, store)
        again.start()
        assert "snapshot" not in caplog.text
        assert again.rows("always") == stats.rows("always")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s: dataclasses.replace(s, meta_json="{"), id="meta not JSON"),
        pytest.param(lambda s: dataclasses.replace(s, keys=b"\x01" * 16), id="keys"),
        pytest.param(lambda s: dataclasses.replace(s, packets_mean=b""), id="short vector"),
        pytest.param(
            lambda s: dataclasses.replace(
                s, meta_json=s.meta_json.replace(f'"version": {SNAPSHOT_VERSION}', '"version": 9')
            ),
            id="version",
        ),
    ],
)
def test_every_kind_of_damaged_snapshot_falls_back_to_the_rebuild(
    config: NetworkConfig,
    saved: Path,
    caplog: pytest.LogCaptureFixture,
    damage: object,
) -> None:
    with Store(saved) as store:
        want = MgStats(config, store)
        want.start()
        state: StatsState = store.stats_states()[0]
        store.put_stats(damage(state))  # type: ignore[operator]
        caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
        stats = MgStats(config, store)
        stats.start()
        assert "statistics snapshot not used" in caplog.text
        assert_same_rows(stats.rows("always"), want.rows("always"))
        assert stats.volumes("always") == want.volumes("always")


def test_an_absent_snapshot_is_rebuilt_with_a_warning_and_a_changed_configuration_too(
    config: NetworkConfig,
    saved: Path,
    caplog: pytest.LogCaptureFixture,
    read_spy: Callable[[Store], list[int]],
) -> None:
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    with Store(saved) as store:
        store.clear_stats()
        stats = MgStats(config, store)
        stats.start()
        assert "no statistics snapshot: rebuilding from 4 stored period(s)" in caplog.text
        assert len(store.stats_periods("always")) == 4
        caplog.clear()
        # par-pe2 moves to LON: the saved per-node volumes no longer hold
        moved = dataclasses.replace(
            config,
            pes=tuple(
                dataclasses.replace(p, service_node="LON") if p.name == "par-pe2" else p
                for p in config.pes
            ),
        )
        ids = read_spy(store)
        other = MgStats(moved, store)
        other.start()
        assert "the service nodes, read-out periods or topology changed" in caplog.text
        assert sorted(ids) == sorted(u.id for u in store.current("always"))
        last = other.node_busy("always")
        assert last["LON"] is not None
        assert last["LON"].volume >= 7.0


def test_an_empty_store_starts_without_a_warning(
    config: NetworkConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    with Store(":memory:") as store:
        stats = MgStats(config, store)
        stats.start()
        assert stats.rows("always") == []
        assert store.stats_states() == []
    assert caplog.text == ""


def test_a_snapshot_write_that_fails_is_logged_and_caught_up_at_the_next_start(
    config: NetworkConfig,
    saved: Path,
    monkeypatch: pytest.MonkeyPatch,
    read_spy: Callable[[Store], list[int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Store(saved) as store:
        stats = MgStats(config, store)
        stats.start()

        def broken(*args: object, **kwargs: object) -> None:
            msg = "disk full"
            raise StoreError(msg)

        with monkeypatch.context() as patch:
            patch.setattr(store, "put_stats", broken)
            put(stats, "frp-par", P0 + 4 * STEP, partial(("par-pe1", "lon-pe1", "BE", 9.0, 1.0)))
            stats.flush()
        assert "event=save_failed interval=always" in caplog.text
        live = stats.rows("always")
        ids = read_spy(store)
        again = MgStats(config, store)
        again.start()
        # the saved snapshot stops at period 3: only period 4 is summed again
        assert sorted(ids) == ids_of(store.current("always"), P0 + 4 * STEP)
        assert_same_rows(again.rows("always"), live)
        assert again.rows("always")[0]["periods"] == 5


def test_a_changed_read_out_period_drops_the_snapshot(
    config: NetworkConfig, saved: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    slower = dataclasses.replace(
        config,
        intervals=tuple(
            dataclasses.replace(i, readout_seconds=600) if i.id == "always" else i
            for i in config.intervals
        ),
    )
    with Store(saved) as store:
        stats = MgStats(slower, store)
        stats.start()
    assert "read-out periods or topology changed): rebuilding from 4 stored" in caplog.text


def test_a_period_the_statistics_cannot_take_is_logged_and_the_rest_still_start(
    config: NetworkConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(":memory:") as store:
        for k in range(3):
            store_period(
                store, "frp-par", P0 + k * STEP, partial(("par-pe1", "lon-pe1", "BE", 10.0, 1.0))
            )
        stats = MgStats(config, store)
        put_period = MgStats._put

        def failing(self: MgStats, interval: str, start: int, *args: object, **kw: object) -> None:
            if start == P0 + STEP:
                raise ValueError("boom")
            put_period(self, interval, start, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(MgStats, "_put", failing)
        with caplog.at_level(logging.ERROR, logger="flowmatrix.mg"):
            stats.start()  # the MG must come up with what it can count
        try:
            (row,) = stats.rows("always")
            assert row["periods"] == 2
            assert "boom" in caplog.text
        finally:
            stats.stop()
