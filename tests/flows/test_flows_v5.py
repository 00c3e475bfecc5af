from __future__ import annotations

from flowmatrix.flows import Decoder
from flowmatrix.flows.v5 import build_v5

#: one v5 record: 192.0.2.1:40000 → 198.51.100.7:443 TCP, ToS 0xb8, 10 packets, 4200 octets,
#: first/last 90 000/99 500 ms of uptime, header uptime 100 000 ms at 1767600000.25 s,
#: engine 1/2, sampling mode 1 interval 100


def test_v5_golden_datagram_decodes_field_by_field(golden: dict[str, bytes]) -> None:
    batch = Decoder().decode([(golden["v5"], "127.0.0.21", 0.0)])
    assert len(batch) == 1
    row = {name: int(batch[name][0]) for name in batch}
    assert row["export_version"] == 5
    assert row["exporter_version"] == 4
    assert row["exporter_lo"] == 0x7F000015
    assert row["source_id"] == (1 << 8) | 2
    assert row["ip_version"] == 4
    assert (row["src_hi"], row["src_lo"]) == (0, 0xC0000201)
    assert row["dst_lo"] == 0xC6336407
    assert (row["ip_next_hop_version"], row["ip_next_hop_lo"]) == (4, 0xCB007109)
    assert row["bgp_next_hop_version"] == 0
    assert (row["in_if"], row["out_if"]) == (1101, 2)
    assert (row["packets"], row["bytes"]) == (10, 4200)
    # export time 1767600000.250 s at uptime 100 000 ms: first at 90 000, last at 99 500
    assert row["start_ms"] == 1_767_600_000_250 - 10_000
    assert row["end_ms"] == 1_767_600_000_250 - 500
    assert (row["src_port"], row["dst_port"], row["protocol"], row["tos"]) == (40000, 443, 6, 0xB8)
    assert (row["src_mask"], row["dst_mask"]) == (24, 16)
    assert row["sampling_interval"] == 100


def test_v5_builder_round_trips_through_the_decoder() -> None:
    dgram = build_v5([{"src": "10.0.0.1", "bytes": 7, "packets": 1}] * 29)
    batch = Decoder().decode([(dgram, "127.0.0.1", 0.0)])
    assert len(batch) == 29
    assert int(batch["bytes"].sum()) == 7 * 29


def test_v5_count_larger_than_the_datagram_decodes_what_fits_and_counts_it() -> None:
    dgram = bytearray(build_v5([{"bytes": 1}] * 3))
    dgram[2:4] = (30).to_bytes(2, "big")
    decoder = Decoder()
    batch = decoder.decode([(bytes(dgram), "127.0.0.1", 0.0)])
    assert len(batch) == 3
    assert decoder.stats.by_reason() == {"length": 1}


def test_v5_softflowd_datagrams_hold_29_records_each(softflowd: dict[int, list[bytes]]) -> None:
    dgrams = softflowd[5]
    batch = Decoder().decode([(d, "127.0.0.1", 0.0) for d in dgrams[:-1]])
    assert len(batch) == 29 * (len(dgrams) - 1)
