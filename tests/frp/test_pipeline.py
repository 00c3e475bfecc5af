from __future__ import annotations

import dataclasses
from pathlib import Path

from flowmatrix.config.model import Interval
from flowmatrix.flows.decoder import Decoder
from flowmatrix.flows.v5 import build_v5
from flowmatrix.frp.ingress import IngressFiles
from flowmatrix.frp.pipeline import Pipeline, PipelineConfig
from flowmatrix.frp.testing import T0, flows, small_config
from flowmatrix.routing.resolve import compile_state
from flowmatrix.routing.testing import two_pe_state
from flowmatrix.schema import FlowBatch


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def pipeline(tmp_path: Path, clock: Clock, decoder: Decoder | None = None) -> Pipeline:
    p = Pipeline(
        PipelineConfig("frp-a", grace=10, settle=2),
        view=small_config(),
        files=IngressFiles(tmp_path / "ingress"),
        state_path=tmp_path / "state.json",
        decoder=decoder,
        clock=clock,
    )
    p.start()
    return p


def test_two_periods_are_uploaded_after_grace_and_settle(tmp_path: Path) -> None:
    clock = Clock(T0 / 1000 + 5)
    p = pipeline(tmp_path, clock)
    p.sink(flows(3, T0 + 1000))
    p.sink(flows(2, T0 + 61_000, exporter=0x7F000002, nbytes=50))
    clock.t = T0 / 1000 + 69  # first period ended 9 s ago: grace 10 s not over
    assert p.due() == []
    clock.t = T0 / 1000 + 70
    first = p.due()
    assert [(u.interval, u.period_start_ms) for u in first] == [("always", T0)]
    meta = first[0].meta
    assert (meta.records, meta.revision, meta.pes) == (3, 1, ("pe1", "pe2"))
    assert first[0].table.column("bytes").to_pylist() == [300.0]
    assert first[0].table.column("egress_pe").to_pylist() == ["unresolved"]
    assert [(u.reason, u.bytes) for u in meta.unresolved] == [("no_tables", 300.0)]
    assert [(e.address, e.pe, e.records) for e in meta.exporters] == [("127.0.0.1", "pe1", 3)]
    p.delivered(first[0])
    assert p.due() == []  # nothing changed
    clock.t = T0 / 1000 + 130
    second = p.due()
    assert [(u.period_start_ms, u.meta.records) for u in second] == [(T0 + 60_000, 2)]


def test_a_period_with_recent_records_waits_for_settle(tmp_path: Path) -> None:
    clock = Clock(T0 / 1000 + 100)
    p = pipeline(tmp_path, clock)
    p.sink(flows(1, T0 + 1000))  # a late record, its period long over
    assert p.due() == []
    clock.t += 2
    assert len(p.due()) == 1


def test_a_late_record_makes_a_revision_with_the_full_partial(tmp_path: Path) -> None:
    clock = Clock(T0 / 1000 + 5)
    p = pipeline(tmp_path, clock)
    p.sink(flows(3, T0 + 1000))
    clock.t = T0 / 1000 + 75
    (first,) = p.due()
    p.delivered(first)
    p.sink(flows(1, T0 + 2000, nbytes=1000))
    clock.t += 3
    (again,) = p.due()
    assert again.meta.revision == 2
    assert again.meta.records == 4
    assert again.table.column("bytes").to_pylist() == [1300.0]
    assert again.digest != first.digest


def test_periods_that_ended_after_start_are_uploaded_empty(tmp_path: Path) -> None:
    clock = Clock(T0 / 1000 + 30)
    p = pipeline(tmp_path, clock)
    clock.t = T0 / 1000 + 60 * 3 + 10
    got = p.due()
    # the period running at start (it ended after start) and the next two
    assert [u.period_start_ms - T0 for u in got] == [0, 60_000, 120_000]
    assert all(u.table.num_rows == 0 and u.meta.records == 0 for u in got)


def test_buffers_flush_to_part_files_with_the_sequence_state(tmp_path: Path) -> None:
    decoder = Decoder()
    clock = Clock(T0 / 1000 + 5)
    p = pipeline(tmp_path, clock, decoder)
    secs = T0 // 1000
    recs = [{"src": "10.0.0.1", "dst": "10.0.0.2", "bytes": 10, "packets": 1, "first": 99_000}] * 4
    dgram = build_v5(recs, uptime=100_000, secs=secs + 1, sequence=0)
    p.sink(decoder.decode([(dgram, "127.0.0.1", 0.0)]))
    p.flush()
    assert p.files.read("always", T0).num_rows == 4
    assert '"127.0.0.1|5|0": 4' in (tmp_path / "state.json").read_text()
    # a gap (4 flows missing) is attributed to the period of the revealing datagram's export time
    later = build_v5(recs, uptime=100_000, secs=secs + 2, sequence=8)
    p.sink(decoder.decode([(later, "127.0.0.1", 0.0)]))
    clock.t = T0 / 1000 + 75
    (up,) = p.due()
    (report,) = up.meta.exporters
    assert (report.records, report.gap, report.gap_unit, report.datagrams) == (8, 4, "flows", 2)


def test_a_restart_rebuilds_undelivered_periods_from_files_only(tmp_path: Path) -> None:
    clock = Clock(T0 / 1000 + 5)
    p = pipeline(tmp_path, clock)
    p.sink(flows(3, T0 + 1000))
    p.sink(flows(2, T0 + 61_000))
    clock.t = T0 / 1000 + 75
    (first,) = p.due()
    p.delivered(first)
    p.stop()
    again = pipeline(tmp_path, clock)
    clock.t = T0 / 1000 + 200
    got = again.due()
    # period 0 was delivered and its files did not change; 60 s is rebuilt from its files;
    # 120 s ended after the restart, so it is uploaded empty
    assert [(u.period_start_ms - T0, u.meta.records) for u in got] == [(60_000, 2), (120_000, 0)]


def test_a_record_in_two_intervals_is_resolved_for_each(tmp_path: Path) -> None:
    view = dataclasses.replace(
        small_config(),
        intervals=(
            Interval("always", "continuous", readout_seconds=60),
            Interval("minute", "continuous", readout_seconds=30),
        ),
    )
    p = Pipeline(
        PipelineConfig("frp-a", grace=0, settle=0),
        view=view,
        files=IngressFiles(tmp_path / "ingress"),
        state_path=tmp_path / "state.json",
        routing=compile_state(two_pe_state()),
        clock=Clock(T0 / 1000 + 5),
    )
    p.start()
    batch = FlowBatch.from_columns(
        {
            "exporter_version": 4,
            "exporter_lo": [0x7F000001, 0x7F000001],
            "ip_version": 4,
            "start_ms": T0 + 1000,
            "bytes": [100, 10],
            "packets": 1,
            "in_if": [101, 999],
            "dst_lo": [0x0A020001, 0x0A020001],  # 10.2.0.1 → pe2; ifIndex 999 has no VRF
        },
        2,
    )
    p.sink(batch)
    got = {u.interval: u for u in p.due(T0 / 1000 + 100) if u.meta.records}
    for name in ("always", "minute"):
        rows = {(r["egress_pe"], r["vrf"]): r["bytes"] for r in got[name].table.to_pylist()}
        assert rows == {("pe2", "blue"): 100.0, ("unresolved", ""): 10.0}
        assert [u.reason for u in got[name].meta.unresolved] == ["no_vrf"]
