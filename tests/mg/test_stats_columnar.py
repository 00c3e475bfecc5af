"""MgStats.put_total, the columnar update path of observe: equal to a recomputation from scratch."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest

from flowmatrix.config.model import Interval, NetworkConfig, PeRouter
from flowmatrix.matrix.store import Store
from flowmatrix.mg import stats as mg_stats
from flowmatrix.mg.stats import MgStats

PES = [f"pe{i}" for i in range(6)]
CLASSES = ["AF4", "BE", "EF"]
CONFIG = NetworkConfig(
    "n",
    1,
    pes=tuple(
        PeRouter(name, ipaddress.ip_address(f"10.0.0.{i + 1}"), "A" if i < 3 else "B")
        for i, name in enumerate(PES)
    ),
    intervals=(Interval("always", "continuous"),),
)


def totals(seed: int, periods: int) -> list[tuple[pa.Table, np.ndarray]]:
    """Random pe_pe totals: each period a random subset of the elements (some repeat the last
    period's set exactly), plus ``unresolved`` egress; and the dense bytes matrix they mean."""
    rng = np.random.default_rng(seed)
    ends = [*PES, "unresolved"]
    cells = [(i, e, c) for i in PES for e in ends for c in CLASSES]
    out = []
    keep = rng.random(len(cells)) < 0.5
    for _ in range(periods):
        if rng.random() < 0.6:  # otherwise: the same element set as the period before
            keep = rng.random(len(cells)) < 0.5
        chosen = [cells[k] for k in np.flatnonzero(keep)]
        values = rng.integers(1, 1000, len(chosen)).astype(float)
        table = pa.table(
            {
                "ingress": [c[0] for c in chosen],
                "egress": [c[1] for c in chosen],
                "class": [c[2] for c in chosen],
                "bytes": values,
                "packets": values / 10,
            }
        )
        dense = np.zeros(len(cells))
        dense[np.flatnonzero(keep)] = values
        out.append((table, dense))
    return out


@pytest.mark.parametrize("lut_cells", [1 << 24, 4], ids=["look-up table", "index search"])
@pytest.mark.parametrize("seed", range(4))
def test_put_total_equals_statistics_recomputed_from_every_period(
    seed: int, lut_cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mg_stats, "_LUT_CELLS", lut_cells)
    periods = totals(seed, 25)
    with Store(":memory:") as store:
        stats = MgStats(CONFIG, store, detail=False)  # pe_pe totals only
        stats.start()
        for k, (table, _) in enumerate(periods):
            stats.put_total(
                "always", k * 300_000, (k + 1) * 300_000, table, [k], persist=k % 5 == 0
            )
        rows = stats.rows("always")
    matrix = np.stack([d for _, d in periods])
    ends = [*PES, "unresolved"]
    cells = [(i, e, c) for i in PES for e in ends for c in CLASSES]
    seen = matrix.max(axis=0) > 0
    want = {
        cells[k]: (
            matrix[:, k].mean(),
            matrix[:, k].std(),
            matrix[:, k].max(),
            np.percentile(matrix[:, k], 95, method="inverted_cdf"),
        )
        for k in np.flatnonzero(seen)
    }
    got = {
        (r["ingress"], r["egress"], r["class"]): (
            r["mean_bytes"],
            r["std_bytes"],
            r["peak_bytes"],
            r["p95_bytes"],
        )
        for r in rows
    }
    assert got.keys() == want.keys()
    for key, figures in want.items():
        assert got[key] == pytest.approx(figures, rel=1e-9)
    assert all(r["periods"] == 25 for r in rows)
    # rows come sorted by keys
    assert [(r["ingress"], r["egress"], r["class"]) for r in rows] == sorted(got)


@pytest.mark.parametrize("seed", range(3))
def test_revised_periods_replace_their_values_and_survive_a_restart(seed: int) -> None:
    periods = totals(seed, 12)
    revisions = totals(seed + 100, 4)
    revised = [3, 7, 0, 11]
    with Store(":memory:") as store:
        stats = MgStats(CONFIG, store, detail=False)  # pe_pe totals only
        stats.start()
        for k, (table, _) in enumerate(periods):
            stats.put_total("always", k * 300_000, (k + 1) * 300_000, table, [k])
        for k, (table, dense) in zip(revised, revisions, strict=True):
            stats.put_total("always", k * 300_000, (k + 1) * 300_000, table, [100 + k])
            periods[k] = (table, dense)
        live = stats.rows("always")
        stats.stop()
        again = MgStats(CONFIG, store, detail=False)
        again.start()
        assert again.rows("always") == live
    matrix = np.stack([d for _, d in periods])
    cells = [(i, e, c) for i in PES for e in [*PES, "unresolved"] for c in CLASSES]
    got = {(r["ingress"], r["egress"], r["class"]): r for r in live}
    want = {cells[k]: matrix[:, k] for k in np.flatnonzero(matrix.max(axis=0) > 0)}
    assert got.keys() == want.keys()
    for key, column in want.items():
        row = got[key]
        assert row["periods"] == 12
        assert (row["mean_bytes"], row["std_bytes"]) == pytest.approx(
            (column.mean(), column.std()), rel=1e-9, abs=1e-9
        )
        assert row["peak_bytes"] == column.max()
