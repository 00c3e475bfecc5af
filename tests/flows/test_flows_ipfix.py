from __future__ import annotations

from flowmatrix.flows import Decoder
from flowmatrix.flows.testing import (
    data_set,
    ipfix_message,
    ipfix_options_template_set,
    ipfix_template_set,
    pack_record,
)

#: an IPFIX message from domain 22: template 300 (IPv6 addresses, absolute ms times, total
#: counts, BGP next hop ::ffff:198.19.0.3) then one record

FIELDS = [(8, 4), (12, 4), (1, 8), (2, 8), (152, 8), (153, 8)]


def record(n: int, **extra: int) -> bytes:
    return pack_record(FIELDS, {8: 0x0A000000 + n, 1: 100 * n, 2: n, 152: 1000, 153: 2000})


def decode(*dgrams: bytes, decoder: Decoder | None = None):  # type: ignore[no-untyped-def]
    decoder = decoder or Decoder()
    return decoder, decoder.decode([(d, "2001:db8::21", 0.0) for d in dgrams])


def test_ipfix_golden_message_decodes_field_by_field(golden: dict[str, bytes]) -> None:
    _, batch = decode(golden["ipfix"])
    assert len(batch) == 1
    row = {name: int(batch[name][0]) for name in batch}
    assert (row["export_version"], row["source_id"]) == (10, 22)
    assert row["exporter_version"] == 6
    assert (row["exporter_hi"], row["exporter_lo"]) == (0x20010DB800000000, 0x21)
    assert row["ip_version"] == 6
    assert (row["src_hi"], row["src_lo"]) == (0x20010DB800010000, 1)
    assert (row["dst_hi"], row["dst_lo"]) == (0xFD0A000300000000, 2)
    assert (row["start_ms"], row["end_ms"]) == (1_767_600_001_234, 1_767_600_002_345)
    assert (row["protocol"], row["tos"], row["src_port"], row["dst_port"]) == (17, 0xB8, 5004, 5006)
    assert (row["bytes"], row["packets"]) == (2200, 10)
    assert row["bgp_next_hop_version"] == 6
    assert (row["bgp_next_hop_hi"], row["bgp_next_hop_lo"]) == (0, 0xFFFF_C613_0003)
    assert (row["in_if"], row["src_mask"], row["dst_mask"]) == (1102, 48, 64)


def test_ipfix_template_withdrawal_forgets_the_template() -> None:
    decoder, batch = decode(
        ipfix_message([ipfix_template_set(256, FIELDS), data_set(256, record(1))]),
        ipfix_message([ipfix_template_set(256, [])]),
        ipfix_message([data_set(256, record(2))]),
    )
    assert batch["packets"].tolist() == [1]
    assert sum(decoder.stats.template_misses.values()) == 1


def test_ipfix_withdraw_all_forgets_every_template_of_the_domain() -> None:
    decoder, batch = decode(
        ipfix_message([ipfix_template_set(256, FIELDS), ipfix_template_set(257, FIELDS)]),
        ipfix_message([ipfix_template_set(2, [])]),
        ipfix_message([data_set(256, record(1)), data_set(257, record(2))]),
    )
    assert len(batch) == 0
    assert sum(decoder.stats.template_misses.values()) == 2


def test_ipfix_enterprise_fields_are_skipped_by_their_length() -> None:
    # enterprise 29305 element 1 (same id as octetDeltaCount) must not be read as bytes
    fields = [(8, 4), (1, 8, 29305), (1, 8), (2, 8)]
    rec = pack_record(fields, {8: 1, 1: 0})
    rec = rec[:4] + (999).to_bytes(8, "big") + (500).to_bytes(8, "big") + (5).to_bytes(8, "big")
    _, batch = decode(ipfix_message([ipfix_template_set(256, fields), data_set(256, rec)]))
    assert (batch["bytes"].tolist(), batch["packets"].tolist()) == ([500], [5])


def test_ipfix_variable_length_fields_are_walked_per_record() -> None:
    fields = [(8, 4), (82, 65535), (1, 8), (2, 8), (83, 65535)]
    recs = b"".join(
        pack_record(fields, {8: n, 82: b"x" * (n * 100), 1: n * 10, 2: n, 83: b"desc"})
        for n in (1, 2, 3)
    )
    _, batch = decode(ipfix_message([ipfix_template_set(256, fields), data_set(256, recs)]))
    assert batch["bytes"].tolist() == [10, 20, 30]
    assert batch["src_lo"].tolist() == [1, 2, 3]


def test_ipfix_variable_length_record_past_its_set_is_counted() -> None:
    fields = [(8, 4), (82, 65535)]
    rec = (1).to_bytes(4, "big") + bytes([200]) + b"x" * 10
    decoder, batch = decode(ipfix_message([ipfix_template_set(256, fields), data_set(256, rec)]))
    assert len(batch) == 0
    assert decoder.stats.by_reason() == {"record": 1}


def test_ipfix_padding_after_records_is_ignored() -> None:
    _, batch = decode(
        ipfix_message([ipfix_template_set(256, FIELDS), data_set(256, record(1), pad=7)])
    )
    assert batch["packets"].tolist() == [1]


def test_ipfix_options_sampling_scoped_by_metering_process_as_pmacct_sends_it() -> None:
    # pmacct IPFIX: scope IE 144 (exportingProcessId), options 48/49/50; records carry IE 48
    scope = [(144, 4)]
    options = [(48, 1), (49, 1), (50, 4)]
    data_fields = [*FIELDS, (48, 1)]
    opt = pack_record([*scope, *options], {144: 1, 48: 3, 49: 2, 50: 64})
    _, batch = decode(
        ipfix_message(
            [
                ipfix_options_template_set(400, scope, options),
                data_set(400, opt),
                ipfix_template_set(256, data_fields),
                data_set(256, pack_record(data_fields, {2: 7, 48: 3})),
            ]
        )
    )
    assert (batch["sampling_interval"].tolist(), batch["sampler_id"].tolist()) == ([64], [3])


def test_ipfix_uptime_times_use_system_init_time_from_options() -> None:
    scope = [(143, 4)]
    options = [(160, 8)]
    fields = [(8, 4), (2, 8), (22, 4), (21, 4)]
    init = 1_767_600_000_188
    _, batch = decode(
        ipfix_message(
            [
                ipfix_options_template_set(256, scope, options),
                data_set(256, pack_record([*scope, *options], {160: init})),
                ipfix_template_set(1024, fields),
                data_set(1024, pack_record(fields, {2: 1, 22: 5_000, 21: 9_999})),
            ],
            export_s=1_767_600_010,
        )
    )
    assert (batch["start_ms"].tolist(), batch["end_ms"].tolist()) == (
        [init + 5_000],
        [init + 9_999],
    )


def test_ipfix_microsecond_and_nanosecond_times_are_ntp_timestamps() -> None:
    fields = [(2, 8), (154, 8), (157, 8)]
    ntp_s = 1_767_600_000 + 2_208_988_800
    rec = pack_record(fields, {2: 1, 154: (ntp_s << 32) | (1 << 31), 157: ((ntp_s + 1) << 32)})
    _, batch = decode(ipfix_message([ipfix_template_set(256, fields), data_set(256, rec)]))
    assert batch["start_ms"].tolist() == [1_767_600_000_500]
    assert batch["end_ms"].tolist() == [1_767_600_001_000]


def test_ipfix_length_disagreeing_with_the_datagram_is_counted() -> None:
    msg = ipfix_message([ipfix_template_set(256, FIELDS), data_set(256, record(1))])
    decoder, batch = decode(msg[:-4])
    assert len(batch) == 0
    assert decoder.stats.by_reason() == {"length": 1}


def test_ipfix_options_with_odd_field_lengths_are_read_without_error() -> None:
    scope = [(144, 4)]
    options = [(160, 3), (48, 3), (50, 3)]
    opt = pack_record([*scope, *options], {160: 7, 48: 2, 50: 9})
    data_fields = [*FIELDS, (48, 3)]
    decoder, batch = decode(
        ipfix_message(
            [
                ipfix_options_template_set(400, scope, options),
                data_set(400, opt),
                ipfix_template_set(256, data_fields),
                data_set(256, pack_record(data_fields, {2: 1, 48: 2})),
            ]
        )
    )
    assert batch["sampling_interval"].tolist() == [9]
    assert decoder.domains[(0, 10, 0)].system_init_ms == 7


def test_ipfix_template_of_zero_octets_is_counted_not_looped_on() -> None:
    fields = [(8, 0)]
    decoder, batch = decode(
        ipfix_message([ipfix_template_set(256, fields), data_set(256, b"\0" * 8)])
    )
    assert len(batch) == 0
    assert decoder.stats.by_reason() == {"record": 1}


def test_ipfix_template_refreshes_switch_layouts_back_and_forth() -> None:
    other = [(8, 4), (2, 4)]
    first = ipfix_template_set(256, FIELDS)
    second = ipfix_template_set(256, other)
    _, batch = decode(
        ipfix_message([first, data_set(256, record(1))]),
        ipfix_message([second, data_set(256, pack_record(other, {2: 9}))]),
        ipfix_message([first, data_set(256, record(3))]),
        ipfix_message([second, data_set(256, pack_record(other, {2: 11}))]),
    )
    assert sorted(batch["packets"].tolist()) == [1, 3, 9, 11]
