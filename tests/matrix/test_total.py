from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import load_config
from flowmatrix.matrix.partial import PARTIAL_SCHEMA, ExporterReport, PartialMeta
from flowmatrix.matrix.store import Upload
from flowmatrix.matrix.total import (
    GRANULARITIES,
    Total,
    expected_frps,
    output_columns,
    period_statuses,
    total_matrix,
)

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"


@pytest.fixture(scope="module")
def config() -> NetworkConfig:
    return load_config(VALID)


def partial(rows: list[tuple[object, ...]]) -> pa.Table:
    """Rows of (ingress, in_if, vrf, egress, tos, class, bytes, packets, flows, bvar, pvar)."""
    names = ["ingress_pe", "in_if", "vrf", "egress_pe", "tos", "class", "bytes", "packets"]
    names += ["flows", "bytes_var", "packets_var"]
    cols = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    cols["sampled_packets"] = cols["packets"]
    return pa.table({n: cols[n] for n in PARTIAL_SCHEMA.names}).cast(PARTIAL_SCHEMA)


PAR = partial(
    [
        ("par-pe1", 3, "cust-a", "lon-pe1", 0, "BE", 100.0, 10.0, 1.0, 4.0, 1.0),
        ("par-pe1", 4, "cust-a", "lon-pe1", 0, "BE", 50.0, 5.0, 1.0, 0.0, 0.0),
        ("par-pe1", 3, "cust-a", "lon-pe1", 184, "EF", 7.0, 1.0, 1.0, 0.0, 0.0),
        ("par-pe2", 1, "", "unresolved", 0, "BE", 3.0, 1.0, 1.0, 0.0, 0.0),
        ("par-pe2", 1, "", "par-pe1", 0, "BE", 20.0, 2.0, 0.5, 9.0, 0.0),
    ]
)
LON = partial([("lon-pe1", 9, "cust-a", "par-pe1", 0, "BE", 1000.0, 100.0, 2.0, 0.0, 0.0)])


def rows(table: pa.Table, *cols: str) -> list[tuple[object, ...]]:
    return list(zip(*(table.column(c).to_pylist() for c in cols), strict=True))


def test_pe_pe_total_is_the_hand_computed_sum_of_the_partials(config: NetworkConfig) -> None:
    total = total_matrix(config, [PAR, LON, PAR], seconds=600)
    assert total.column_names == list(output_columns("pe_pe"))
    assert rows(total, "ingress", "egress", "class", "bytes", "packets", "flows", "seconds") == [
        ("lon-pe1", "par-pe1", "BE", 1000.0, 100.0, 2.0, 600),
        ("par-pe1", "lon-pe1", "BE", 300.0, 30.0, 4.0, 600),
        ("par-pe1", "lon-pe1", "EF", 14.0, 2.0, 2.0, 600),
        ("par-pe2", "par-pe1", "BE", 40.0, 4.0, 1.0, 600),
        ("par-pe2", "unresolved", "BE", 6.0, 2.0, 2.0, 600),
    ]


def test_err95_is_196_times_the_root_of_the_summed_variance(config: NetworkConfig) -> None:
    total = total_matrix(config, [PAR, PAR])
    got = dict(
        zip(
            rows(total, "ingress", "egress", "class"), total["bytes_err95"].to_pylist(), strict=True
        )
    )
    assert got[("par-pe1", "lon-pe1", "BE")] == pytest.approx(1.96 * math.sqrt(8.0))
    assert got[("par-pe2", "par-pe1", "BE")] == pytest.approx(1.96 * math.sqrt(18.0))
    packets = dict(
        zip(rows(total, "ingress", "class"), total["packets_err95"].to_pylist(), strict=True)
    )
    assert packets[("par-pe1", "BE")] == pytest.approx(1.96 * math.sqrt(2.0))


def test_pop_pop_maps_pes_to_service_nodes_and_keeps_unresolved(config: NetworkConfig) -> None:
    total = total_matrix(config, [PAR, LON], granularity="pop_pop", class_="all")
    assert rows(total, "ingress", "egress", "class", "bytes") == [
        ("LON", "PAR", "all", 1000.0),
        ("PAR", "LON", "all", 157.0),
        ("PAR", "PAR", "all", 20.0),
        ("PAR", "unresolved", "all", 3.0),
    ]


def test_if_pe_keeps_input_interfaces_apart(config: NetworkConfig) -> None:
    total = total_matrix(config, [PAR], granularity="if_pe", class_="BE")
    assert total.column_names[:4] == ["ingress", "if_index", "egress", "class"]
    assert rows(total, "ingress", "if_index", "egress", "bytes") == [
        ("par-pe1", 3, "lon-pe1", 100.0),
        ("par-pe1", 4, "lon-pe1", 50.0),
        ("par-pe2", 1, "par-pe1", 20.0),
        ("par-pe2", 1, "unresolved", 3.0),
    ]


def test_vrf_granularity_puts_the_vrf_first_and_global_as_empty(config: NetworkConfig) -> None:
    total = total_matrix(config, [PAR, LON], granularity="vrf")
    assert total.column_names[:4] == ["vrf", "ingress", "egress", "class"]
    assert rows(total, "vrf", "ingress", "egress", "class", "bytes")[:2] == [
        ("", "par-pe2", "par-pe1", "BE", 20.0),
        ("", "par-pe2", "unresolved", "BE", 3.0),
    ]


def test_class_filter_keeps_one_class_and_all_sums_them(config: NetworkConfig) -> None:
    ef = total_matrix(config, [PAR], class_="EF")
    assert rows(ef, "ingress", "egress", "class", "bytes") == [("par-pe1", "lon-pe1", "EF", 7.0)]
    every = total_matrix(config, [PAR], class_="all")
    assert set(every["class"].to_pylist()) == {"all"}
    assert sum(every["bytes"].to_pylist()) == pytest.approx(180.0)
    assert total_matrix(config, [PAR], class_="nope").num_rows == 0


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_every_granularity_preserves_the_grand_total(
    config: NetworkConfig, granularity: str
) -> None:
    total = total_matrix(config, [PAR, LON], granularity=granularity)  # type: ignore[arg-type]
    assert sum(total["bytes"].to_pylist()) == pytest.approx(1180.0)


def test_unknown_pes_and_empty_partials_are_summed_sparsely(config: NetworkConfig) -> None:
    odd = partial([("ghost", 1, "", "par-pe1", 0, "BE", 5.0, 1.0, 1.0, 0.0, 0.0)])
    total = total_matrix(config, [odd, PARTIAL_SCHEMA.empty_table(), odd])
    assert rows(total, "ingress", "egress", "bytes") == [("ghost", "par-pe1", 10.0)]


def test_dense_shuffled_and_sparse_paths_agree_with_a_group_by(config: NetworkConfig) -> None:
    rng = np.random.default_rng(1)
    n = 5000
    pes = [pe.name for pe in config.pes] + ["unresolved", "ghost"]
    table = pa.table(
        {
            "ingress_pe": rng.choice(pes[:3], n),
            "in_if": pa.array(rng.integers(0, 5, n), pa.uint32()),
            "vrf": rng.choice(["", "a"], n),
            "egress_pe": rng.choice(pes, n),
            "tos": pa.array(np.zeros(n, np.uint8)),
            "class": rng.choice(["BE", "EF", "AF4"], n),
            **{v: rng.random(n) for v in PARTIAL_SCHEMA.names[6:]},
        }
    ).cast(PARTIAL_SCHEMA)
    want = (
        table.group_by(["ingress_pe", "egress_pe", "class"])
        .aggregate([("bytes", "sum")])
        .sort_by([("ingress_pe", "ascending"), ("egress_pe", "ascending"), ("class", "ascending")])
    )
    got = total_matrix(config, [table.slice(0, 2500), table.slice(2500)])
    assert rows(got, "ingress", "egress", "class") == rows(want, "ingress_pe", "egress_pe", "class")
    np.testing.assert_allclose(got["bytes"].to_numpy(), want["bytes_sum"].to_numpy())


def test_sorted_dense_codes_take_the_contiguous_path_and_sum_exactly(config: NetworkConfig) -> None:
    total = Total(config, "pe_pe", class_="BE")
    ing, eg = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    codes = [ing.ravel(), eg.ravel(), np.zeros(9, np.int32)]
    values = [np.arange(9.0), *[np.ones(9)] * 4]
    for _ in range(3):
        total.add_codes(codes, values)
    pes = total.vocabularies()[0]
    got = dict(
        zip(
            rows(total.table(), "ingress", "egress"),
            total.table()["bytes"].to_pylist(),
            strict=True,
        )
    )
    assert got == {(pes[i], pes[e]): 3.0 * (3 * i + e) for i in range(3) for e in range(3)}


def test_unknown_granularity_is_refused(config: NetworkConfig) -> None:
    with pytest.raises(ValueError, match="granularity"):
        Total(config, "as_as")  # type: ignore[arg-type]


def upload(frp: str, start: int, *, gap: int = 0, version: int = 1) -> Upload:
    meta = PartialMeta(
        frp=frp,
        interval="always",
        period_start_ms=start,
        period_end_ms=start + 300_000,
        records=10,
        exporters=(ExporterReport(address="127.0.1.1", pe="par-pe1", gap=gap, gap_unit="packets"),),
    )
    return Upload(1, frp, "always", start, start + 300_000, version, "d", start + 5, meta, 3)


def test_periods_name_missing_frps_and_list_gaps(config: NetworkConfig) -> None:
    assert expected_frps(config) == ("frp-par", "frp-lon")
    first, second = period_statuses(
        config, [upload("frp-par", 0, gap=4), upload("frp-par", 300_000, version=2)]
    )
    assert first.status == "incomplete"
    assert first.missing == ("frp-lon",)
    assert [(g.frp, g.exporter, g.gap, g.gap_unit) for g in first.gaps] == [
        ("frp-par", "127.0.1.1", 4, "packets")
    ]
    assert second.gaps == ()
    assert second.versions == 2
    (done,) = period_statuses(config, [upload("frp-par", 0, gap=1), upload("frp-lon", 0)])
    assert (done.status, done.missing, done.reported) == ("complete", (), ("frp-lon", "frp-par"))
    assert done.gaps
    assert done.records == 20


def test_every_dense_path_sums_like_a_plain_dictionary(config: NetworkConfig) -> None:
    grid_i, grid_e = (a.ravel() for a in np.meshgrid(np.arange(3), np.arange(3), indexing="ij"))
    rng = np.random.default_rng(7)
    shuffle = rng.permutation(9)
    cases = [
        *[(grid_i, grid_e, np.full(9, 2)) for _ in range(10)],  # contiguous, batched and flushed
        (np.arange(3), np.full(3, 1), np.zeros(3, int)),  # evenly spaced cells (stride 3)
        (grid_i[shuffle], grid_e[shuffle], np.ones(9, int)),  # shuffled: bincount
        (np.array([0, 0, 2]), np.array([0, 1, 2]), np.array([0, 0, 2])),  # far apart: add.at
        (np.array([1, 1, 1]), np.array([2, 2, 2]), np.array([1, 1, 1])),  # one cell
        (np.array([1, 5]), np.array([0, 0]), np.array([0, 0])),  # code 5: sparse side
    ]
    total = Total(config, "pe_pe")
    want: dict[tuple[int, int, int], float] = {}
    for ing, eg, cls in cases:
        b = rng.random(len(ing)) + 0.5
        for j, key in enumerate(zip(ing.tolist(), eg.tolist(), cls.tolist(), strict=True)):
            want[key] = want.get(key, 0.0) + float(b[j])
        total.vocabularies()[0].extend(["x", "y", "z"][: max(0, int(ing.max()) - 2)])
        total.add_codes([ing, eg, cls], [b, b, b, b, b])
    pes, _, classes = total.vocabularies()
    got = {
        (pes.index(i), pes.index(e), classes.index(c)): b
        for i, e, c, b in rows(total.table(), "ingress", "egress", "class", "bytes")
    }
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
