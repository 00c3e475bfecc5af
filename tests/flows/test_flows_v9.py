from __future__ import annotations

import struct

import pytest

from flowmatrix.flows import Decoder
from flowmatrix.flows.testing import (
    data_set,
    pack_record,
    v9_message,
    v9_options_template_set,
    v9_template_set,
)

#: a v9 datagram from source id 21: template 260 (21 fields, 67 octets) then one data record
#: padded by 3 octets; BGP next hop 198.19.0.3, VRF ids 7/8, MPLS label 100, sampler 1

FIELDS = [(8, 4), (12, 4), (1, 4), (2, 4), (22, 4), (21, 4)]


def record(n: int) -> bytes:
    return pack_record(FIELDS, {8: 0x0A000000 + n, 12: 0x0A010000, 1: 100 * n, 2: n})


def decode(*dgrams: bytes, decoder: Decoder | None = None) -> tuple[Decoder, object]:
    decoder = decoder or Decoder()
    return decoder, decoder.decode([(d, "127.0.0.1", 0.0) for d in dgrams])


def test_v9_golden_datagram_decodes_field_by_field(golden: dict[str, bytes]) -> None:
    batch = Decoder().decode([(golden["v9"], "127.0.0.21", 0.0)])
    assert len(batch) == 1
    row = {name: int(batch[name][0]) for name in batch}
    assert (row["export_version"], row["source_id"]) == (9, 21)
    assert (row["src_lo"], row["dst_lo"]) == (0xC0000201, 0xC6336407)
    assert (row["ip_next_hop_version"], row["ip_next_hop_lo"]) == (4, 0xCB007109)
    assert (row["bgp_next_hop_version"], row["bgp_next_hop_lo"]) == (4, 0xC6130003)
    assert (row["in_if"], row["out_if"], row["packets"], row["bytes"]) == (1101, 2, 10, 4200)
    assert row["start_ms"] == 1_767_600_000_000 - 10_000
    assert row["end_ms"] == 1_767_600_000_000 - 500
    assert (row["src_port"], row["dst_port"], row["protocol"], row["tos"]) == (40000, 443, 6, 0xB8)
    assert (row["src_mask"], row["dst_mask"], row["direction"]) == (24, 16, 0)
    assert (row["ingress_vrf_id"], row["egress_vrf_id"], row["mpls_label_1"]) == (7, 8, 100)
    assert row["sampler_id"] == 1


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_v9_template_anywhere_in_the_datagram_decodes_every_record(where: str) -> None:
    template = v9_template_set(256, FIELDS)
    sets = [data_set(256, record(1) + record(2)), data_set(256, record(3))]
    at = {"first": 0, "middle": 1, "last": 2}[where]
    sets.insert(at, template)
    decoder, batch = decode(v9_message(sets))
    assert sorted(batch["packets"].tolist()) == [1, 2, 3]
    assert sum(decoder.stats.template_misses.values()) == (0 if at == 0 else 1 if at == 1 else 2)


def test_v9_data_before_template_is_held_then_decoded() -> None:
    decoder = Decoder()
    _, first = decode(v9_message([data_set(256, record(5))]), decoder=decoder)
    assert len(first) == 0
    assert decoder.stats.template_misses["127.0.0.1"] == 1
    _, later = decode(v9_message([v9_template_set(256, FIELDS)]), decoder=decoder)
    assert later["packets"].tolist() == [5]


def test_v9_held_data_expires_and_is_counted() -> None:
    decoder = Decoder(hold_seconds=1.0)
    decoder.decode([(v9_message([data_set(256, record(5))]), "127.0.0.1", 100.0)])
    decoder.decode([(v9_message([]), "127.0.0.1", 200.0)])
    assert decoder.stats.by_reason() == {"template_expired": 1}


def test_v9_hold_is_bounded_per_template() -> None:
    decoder = Decoder(hold_sets=2)
    dgram = v9_message([data_set(256, record(1))])
    decoder.decode([(dgram, "127.0.0.1", 1.0)] * 5)
    assert decoder.stats.by_reason() == {"template_expired": 3}


def test_v9_template_refresh_changes_the_layout_from_then_on() -> None:
    other = [(8, 4), (2, 4)]
    dgrams = [
        v9_message([v9_template_set(256, FIELDS), data_set(256, record(1))]),
        v9_message([v9_template_set(256, other), data_set(256, pack_record(other, {2: 9}))]),
    ]
    _, batch = decode(*dgrams)
    assert sorted(batch["packets"].tolist()) == [1, 9]


def test_v9_templates_are_kept_per_exporter_and_source_id() -> None:
    decoder = Decoder()
    decoder.decode([(v9_message([v9_template_set(256, FIELDS)], source_id=1), "127.0.0.1", 0)])
    batch = decoder.decode(
        [
            (v9_message([data_set(256, record(1))], source_id=2), "127.0.0.1", 0),
            (v9_message([data_set(256, record(2))], source_id=1), "127.0.0.2", 0),
            (v9_message([data_set(256, record(3))], source_id=1), "127.0.0.1", 0),
        ]
    )
    assert batch["packets"].tolist() == [3]
    assert sum(decoder.stats.template_misses.values()) == 2


def test_v9_padding_after_the_last_record_is_ignored() -> None:
    _, batch = decode(v9_message([v9_template_set(256, FIELDS), data_set(256, record(1), pad=3)]))
    assert batch["packets"].tolist() == [1]


def test_v9_header_count_is_not_trusted() -> None:
    dgram = v9_message([v9_template_set(256, FIELDS), data_set(256, record(1) * 4)], count=2)
    _, batch = decode(dgram)
    assert len(batch) == 4


def test_v9_options_sampling_as_pmacct_sends_it_scales_records_by_sampler() -> None:
    # pmacct: options template scoped by System, IEs 48 sampler id, 49 mode, 50 interval;
    # every data record carries IE 48
    scope = [(1, 4)]
    options = [(48, 1), (49, 1), (50, 4)]
    data_fields = [*FIELDS, (48, 1)]
    opt = pack_record([*scope, *options], {1: 0, 48: 1, 49: 2, 50: 10})
    dgram = v9_message(
        [
            v9_options_template_set(257, scope, options),
            data_set(257, opt, pad=2),
            v9_template_set(256, data_fields),
            data_set(256, pack_record(data_fields, {2: 4, 48: 1})),
        ]
    )
    _, batch = decode(dgram)
    assert batch["sampling_interval"].tolist() == [10]
    assert batch["sampler_id"].tolist() == [1]


def test_v9_options_sampling_interval_without_sampler_applies_to_the_source_id() -> None:
    scope = [(1, 4)]
    options = [(34, 4), (35, 1)]
    opt = pack_record([*scope, *options], {34: 100, 35: 2})
    dgram = v9_message(
        [
            v9_options_template_set(257, scope, options),
            data_set(257, opt, pad=3),
            v9_template_set(256, FIELDS),
            data_set(256, record(1)),
        ]
    )
    _, batch = decode(dgram)
    assert batch["sampling_interval"].tolist() == [100]


def test_v9_bad_template_of_one_exporter_leaves_another_exporters_templates_alone() -> None:
    decoder = Decoder()
    good = v9_message([v9_template_set(256, FIELDS)])
    bad = v9_message([v9_template_set(256, FIELDS)[:-3]])
    data = v9_message([data_set(256, record(1))])
    batch = decoder.decode([(good, "127.0.0.1", 0), (bad, "127.0.0.2", 0), (data, "127.0.0.1", 0)])
    assert batch["packets"].tolist() == [1]
    assert decoder.stats.dropped_total() >= 1


def test_v9_flowset_running_past_the_datagram_is_dropped_and_counted() -> None:
    dgram = v9_message([v9_template_set(256, FIELDS), data_set(256, record(1))])[:-4]
    decoder, batch = decode(dgram)
    assert len(batch) == 0
    assert decoder.stats.by_reason() == {"set_length": 1}


def test_options_records_resent_after_other_ones_are_applied_again() -> None:
    options = v9_options_template_set(260, [(1, 4)], [(34, 4)])
    decoder = Decoder()
    for interval in (10, 20, 10, 10):
        record = struct.pack("!II", 0, interval)
        decoder.decode([(v9_message([options, data_set(260, record)]), "192.0.2.1", 0.0)])
        assert decoder.domains[(0, 9, 0)].sampling_interval == interval


def test_a_malformed_options_template_set_is_counted_each_time_it_is_sent() -> None:
    good = v9_options_template_set(260, [(1, 4)], [(34, 4)])
    bad = good[:4] + struct.pack("!HHH", 260, 6, 4) + good[10:]
    decoder = Decoder()
    for _ in range(3):
        decoder.decode([(v9_message([bad]), "192.0.2.1", 0.0)])
    assert decoder.stats.by_reason()["template"] == 3
