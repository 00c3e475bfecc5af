from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress

import numpy as np
import pyarrow as pa
import pytest

from flowmatrix.config.model import (
    Exporter,
    Interval,
    NetworkConfig,
    PeRouter,
    ServiceClass,
)
from flowmatrix.matrix.aggregate import (
    IngressPlan,
    add_partials,
    address_halves,
    aggregate,
    aggregate_batch,
    aggregate_groups,
    ingress_records,
    no_resolution,
    partial_matrix,
)
from flowmatrix.matrix.partial import INGRESS_SCHEMA, PARTIAL_SCHEMA
from flowmatrix.routing.resolve import REASONS, Resolution
from flowmatrix.schema import FlowBatch

ip = ipaddress.ip_address
#: 2026-01-05T00:00Z
T0 = 1_767_571_200_000


def config() -> NetworkConfig:
    pes = (
        PeRouter(
            "pe1",
            ip("198.19.0.1"),
            "PAR",
            frp="frp-par",
            sampling_rate=100,
            exporters=(Exporter(ip("127.0.0.1"), 1), Exporter(ip("127.0.0.1"), 2)),
        ),
        PeRouter(
            "pe2", ip("198.19.0.2"), "PAR", frp="frp-par", exporters=(Exporter(ip("127.0.0.2")),)
        ),
        PeRouter("pe3", ip("198.19.0.3"), "LON"),  # remote
    )
    return NetworkConfig(
        "t",
        65000,
        pes=pes,
        classes=(ServiceClass("ef", (46,)), ServiceClass("be", (0,), default=True)),
        intervals=(
            Interval("always", "continuous", readout_seconds=300),
            Interval(
                "check",
                "once",
                readout_seconds=60,
                start=dt.datetime(2026, 1, 5, 0, 0),
                duration=dt.timedelta(minutes=2),
            ),
        ),
    )


def batch(rows: list[dict[str, int]]) -> FlowBatch:
    cols = {k: [r.get(k, 0) for r in rows] for k in {k for r in rows for k in r}}
    base = {"exporter_version": 4, "ip_version": 4}
    return FlowBatch.from_columns({**base, **cols}, len(rows))


def test_records_map_to_pes_by_exporter_address_and_source_id() -> None:
    b = batch(
        [
            {"exporter_lo": 0x7F000001, "source_id": 1, "start_ms": T0 + 400_000},
            {"exporter_lo": 0x7F000001, "source_id": 2, "start_ms": T0 + 400_000},
            {"exporter_lo": 0x7F000001, "source_id": 3, "start_ms": T0 + 400_000},  # no such id
            {"exporter_lo": 0x7F000002, "source_id": 77, "start_ms": T0 + 400_000},  # any id
            {"exporter_lo": 0x7F000003, "source_id": 0, "start_ms": T0 + 400_000},  # unknown
        ]
    )
    got = ingress_records(b, config())
    assert got.table.column("ingress_pe").to_pylist() == ["pe1", "pe1", "pe2"]
    assert got.table.column("ingress_loopback").to_pylist() == ["198.19.0.1"] * 2 + ["198.19.0.2"]
    assert got.unmatched == 2
    assert got.unmatched_by_exporter == {("127.0.0.1", 3): 1, ("127.0.0.3", 0): 1}
    assert got.table.schema.equals(INGRESS_SCHEMA)
    assert got.table.column("egress_pe").null_count == 3


def test_records_outside_every_interval_are_counted_and_dropped() -> None:
    b = batch(
        [{"exporter_lo": 0x7F000002, "start_ms": -5}, {"exporter_lo": 0x7F000002, "start_ms": T0}]
    )
    got = ingress_records(b, config())
    assert got.outside == 1
    assert got.table.num_rows == 2  # the second record is in both intervals


def test_a_record_in_two_intervals_belongs_to_each_with_its_period() -> None:
    b = batch(
        [
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 61_000},
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 301_000},
        ]
    )
    got = ingress_records(b, config())
    seen = [(s.interval, s.period_start_ms - T0, s.pe, s.stop - s.start) for s in got.segments]
    assert seen == [
        ("always", 0, "pe2", 1),
        ("always", 300_000, "pe2", 1),
        ("check", 60_000, "pe2", 1),
    ]
    for s in got.segments:
        part = got.table.slice(s.start, s.stop - s.start)
        assert set(part.column("interval").to_pylist()) == {s.interval}
        assert set(part.column("period_start_ms").to_pylist()) == {s.period_start_ms}


def test_partial_renormalizes_by_record_interval_else_config_rate() -> None:
    b = batch(
        [
            # record says 1-in-10: N = 10
            {
                "exporter_lo": 0x7F000001,
                "source_id": 1,
                "start_ms": T0 + 400_000,
                "bytes": 1000,
                "packets": 4,
                "sampling_interval": 10,
                "tos": 46 << 2,
                "in_if": 1101,
            },
            # no interval in the record: the PE's configured 1-in-100
            {
                "exporter_lo": 0x7F000001,
                "source_id": 1,
                "start_ms": T0 + 400_000,
                "bytes": 300,
                "packets": 2,
                "tos": 1,
                "in_if": 1101,
            },
            # unsampled PE
            {
                "exporter_lo": 0x7F000002,
                "start_ms": T0 + 400_000,
                "bytes": 50,
                "packets": 1,
                "in_if": 7,
            },
        ]
    )
    plan = IngressPlan(config())
    got = ingress_records(b, plan)
    table = partial_matrix(got.table, no_resolution(got.table.num_rows), plan)
    assert table.schema.equals(PARTIAL_SCHEMA)
    rows = table.to_pylist()
    assert [
        (r["ingress_pe"], r["in_if"], r["tos"], r["class"], r["egress_pe"], r["vrf"]) for r in rows
    ] == [
        ("pe1", 1101, 1, "be", "unresolved", ""),
        ("pe1", 1101, 184, "ef", "unresolved", ""),
        ("pe2", 7, 0, "be", "unresolved", ""),
    ]
    be, ef, plain = rows
    assert ef["bytes"] == 10_000
    assert ef["packets"] == 40
    assert ef["sampled_packets"] == 4
    assert ef["packets_var"] == pytest.approx(10 * 9 * 4)
    assert ef["bytes_var"] == pytest.approx(10 * 9 * 1000 * 1500)  # Σs² ≤ Σs × 1500
    assert be["bytes"] == 30_000
    assert be["packets"] == 200
    assert be["flows"] == 1
    assert be["bytes_var"] == pytest.approx(100 * 99 * 300 * 1500)
    assert plain["bytes"] == 50
    assert plain["bytes_var"] == 0
    assert plain["packets_var"] == 0


def resolution(
    flow: list[int], egress: list[int], share: list[float], vrf: list[int], reason: list[int]
) -> Resolution:
    n = len(flow)
    return Resolution(
        flow=np.array(flow, dtype=np.int64),
        egress_pe=np.array(egress, dtype=np.int32),
        egress_node=np.full(n, -1, dtype=np.int32),
        vrf=np.array(vrf, dtype=np.int32),
        rd=np.full(n, -1, dtype=np.int32),
        reason=np.array(reason, dtype=np.uint8),
        share=np.array(share, dtype=np.float64),
        prefix_len=np.full(n, -1, dtype=np.int16),
        pe_names=["pe1", "pe2", "pe3"],
        node_names=[],
        vrf_names=["cust1"],
        rd_names=[],
    )


def test_multipath_shares_split_volume_and_unresolved_rows_are_reported() -> None:
    b = batch(
        [
            {
                "exporter_lo": 0x7F000002,
                "start_ms": T0 + 400_000,
                "bytes": 900,
                "packets": 3,
                "in_if": 5,
            },
            {
                "exporter_lo": 0x7F000002,
                "start_ms": T0 + 400_000,
                "bytes": 100,
                "packets": 1,
                "in_if": 5,
            },
        ]
    )
    plan = IngressPlan(config())
    got = ingress_records(b, plan)
    no_route = REASONS.index("no_route")
    res = resolution([0, 0, 1], [1, 2, -1], [0.5, 0.5, 1.0], [0, 0, 0], [0, 0, no_route])
    agg = aggregate(got, res, plan)
    rows = {r["egress_pe"]: r for r in agg.table.to_pylist()}
    assert set(rows) == {"pe2", "pe3", "unresolved"}
    assert rows["pe2"]["bytes"] == 450
    assert rows["pe3"]["bytes"] == 450
    assert rows["pe2"]["flows"] == 0.5
    assert rows["pe2"]["vrf"] == "cust1"
    assert rows["unresolved"]["bytes"] == 100
    assert [(u.reason, u.bytes, u.flows) for u in agg.unresolved] == [("no_route", 100.0, 1.0)]
    # the table form (names dictionary-encoded again) gives the same matrix
    assert aggregate(got.table, res, plan).table.equals(agg.table)


@pytest.mark.parametrize("twin", [False, True])
@pytest.mark.parametrize("multipath", [False, True])
def test_a_batch_aggregated_at_once_equals_each_period_aggregated_alone(
    multipath: bool, twin: bool
) -> None:
    b = batch(
        [
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 61_000, "bytes": 900, "packets": 3},
            {"exporter_lo": 0x7F000001, "source_id": 1, "start_ms": T0 + 70_000, "bytes": 50},
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 301_000, "bytes": 100, "packets": 1},
            {"exporter_lo": 0x7F000003, "start_ms": T0 + 301_000, "bytes": 7},  # no PE
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 1_000, "bytes": 30, "tos": 184},
        ]
    )
    network = config()
    if twin:  # an interval with the periods of "always": its partials are shared
        twin_interval = Interval("twin", "continuous", readout_seconds=300)
        network = dataclasses.replace(network, intervals=(*network.intervals, twin_interval))
    plan = IngressPlan(network)
    got = ingress_records(b, plan)
    records = np.unique(got.rows)  # batch rows 0, 1, 2, 4
    no_route = REASONS.index("no_route")
    if multipath:  # record 0 split over two egress PEs
        res = resolution(
            [0, 0, 1, 2, 3],
            [1, 2, 0, -1, 1],
            [0.5, 0.5, 1, 1, 1],
            [0, 0, -1, -1, 0],
            [0, 0, 0, no_route, 0],
        )
    else:
        res = resolution(
            [0, 1, 2, 3], [1, 0, -1, 1], [1, 1, 1, 1], [0, -1, -1, 0], [0, 0, no_route, 0]
        )
    # (interval, period) groups: runs of consecutive segments
    keys = [(s.interval, s.period_start_ms) for s in got.segments]
    groups = [
        s.stop for k, s in enumerate(got.segments) if k + 1 == len(keys) or keys[k + 1] != keys[k]
    ]
    at_once = aggregate_batch(got, res, plan, groups, flows=b, records=records)
    # the same, one group at a time, with the resolution repeated per ingress row
    position = {int(r): k for k, r in enumerate(records)}
    start = 0
    for stop, agg in zip(groups, at_once, strict=True):
        flow, take = [], []
        for j in range(start, stop):
            for t in np.flatnonzero(res.flow == position[int(got.rows[j])]).tolist():
                flow.append(j - start)
                take.append(t)
        alone = resolution(
            flow,
            res.egress_pe[take].tolist(),
            res.share[take].tolist(),
            res.vrf[take].tolist(),
            res.reason[take].tolist(),
        )
        expected = aggregate(got.table.slice(start, stop - start), alone, plan)
        assert agg.table.equals(expected.table)
        assert agg.unresolved == expected.unresolved
        start = stop
    assert len(at_once) == (6 if twin else 4)  # always 0 and 300 s, check 0 and 60 s
    assert aggregate_groups(got.table, no_resolution(got.table.num_rows), plan, groups)[
        0
    ].unresolved


def test_adding_partials_sums_rows_with_equal_keys() -> None:
    b = batch([{"exporter_lo": 0x7F000002, "start_ms": T0 + 400_000, "bytes": 10, "packets": 1}])
    plan = IngressPlan(config())
    got = ingress_records(b, plan)
    one = partial_matrix(got, no_resolution(1), plan)
    total = add_partials(one, one, one)
    assert total.num_rows == 1
    assert total["bytes"].to_pylist() == [30.0]


def test_address_halves_read_the_arrow_address_form() -> None:
    b = batch([{"dst_lo": 0x0A000001}, {"dst_lo": 5}])
    hi, lo = address_halves(b.to_arrow().column("dst").slice(1))
    assert lo.tolist() == [5]
    assert hi.tolist() == [0]
    assert address_halves(pa.nulls(1, pa.binary(16)))[1].tolist() == [0]


def test_unsampled_partials_equal_the_formulas_with_n_one() -> None:
    base = config()
    pes = tuple(dataclasses.replace(p, sampling_rate=1) for p in base.pes)
    plan = IngressPlan(dataclasses.replace(base, pes=pes))
    b = batch(
        [
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 400_000, "bytes": 901, "packets": 7},
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 400_000, "bytes": 100, "packets": 1},
            {"exporter_lo": 0x7F000002, "start_ms": T0 + 400_000, "bytes": 5, "packets": 2},
        ]
    )
    b.columns["sampling_interval"][2] = 1  # 1-in-1 is unsampled too
    got = ingress_records(b, plan)
    third = 1 / 3
    res = resolution(
        [0, 0, 0, 1, 2], [0, 1, 2, 1, 0], [third, third, third, 1.0, 1.0], [0] * 5, [0] * 5
    )
    rows = aggregate(got, res, plan).table.to_pylist()
    expected: dict[str, dict[str, float]] = {}
    for egress in ("pe1", "pe2", "pe3"):  # record 0, split three ways
        expected[egress] = {"bytes": 901 * 1.0 * third, "packets": 7 * third * 1.0}
    for f, egress in ((1, "pe2"), (2, "pe1")):
        volume = {"bytes": [901, 100, 5][f] * 1.0 * 1.0, "packets": [7, 1, 2][f] * 1.0 * 1.0}
        expected[egress] = {k: expected[egress][k] + v for k, v in volume.items()}
    assert {r["egress_pe"]: {"bytes": r["bytes"], "packets": r["packets"]} for r in rows} == (
        expected
    )
    assert all(r["bytes_var"] == 0.0 and r["packets_var"] == 0.0 for r in rows)
    assert all(r["sampled_packets"] == r["packets"] for r in rows)


def test_partial_rows_sort_by_names_not_by_configuration_order() -> None:
    base = config()
    renamed = (
        dataclasses.replace(base.pes[0], name="zz"),
        dataclasses.replace(base.pes[1], name="aa"),
        base.pes[2],
    )
    plan = IngressPlan(dataclasses.replace(base, pes=renamed))
    b = batch(
        [
            {"exporter_lo": lo, "source_id": 1, "start_ms": T0 + 400_000, "bytes": 10, "tos": tos}
            for lo in (0x7F000001, 0x7F000002)
            for tos in (184, 0)
        ]
    )
    got = ingress_records(b, plan)
    n = got.table.num_rows
    res = resolution(list(range(n)), [2, 0, -1, 1][:n], [1.0] * n, [0, -1, 0, -1][:n], [0] * n)
    res = dataclasses.replace(res, pe_names=["zz", "aa", "pe3"], vrf_names=["x"])
    table = aggregate(got, res, plan).table
    assert table.equals(table.sort_by([(k, "ascending") for k in table.column_names[:6]]))
    assert table.column("ingress_pe").to_pylist()[0] == "aa"
