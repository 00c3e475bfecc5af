"""Export sequence numbers: gaps, wrap-around, reorders and restarts per domain, both walks."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from flowmatrix.flows import Decoder, SequenceGap
from flowmatrix.flows.testing import (
    data_set,
    ipfix_message,
    ipfix_options_template_set,
    ipfix_template_set,
    pack_record,
    v9_message,
    v9_template_set,
)
from flowmatrix.flows.v5 import build_v5

FIELDS = [(8, 4), (12, 4), (1, 4), (2, 4)]
REC = pack_record(FIELDS, {8: 0x0A000001, 12: 0x0A000002, 1: 1500, 2: 3})
EXPORTER = "192.0.2.7"
#: records per datagram in these tests
RECORDS = 3
UNIT = {5: "flows", 9: "packets", 10: "records"}

Batch = list[tuple[bytes, str, float]]


def units(version: int) -> int:
    """Sequence units one test datagram carries: its records, or one v9 packet."""
    return 1 if version == 9 else RECORDS


def datagram(version: int, sequence: int, *, template: bool = False, source: int = 0) -> bytes:
    """One datagram of RECORDS records with ``sequence`` (v9 / IPFIX: template first if asked)."""
    sequence &= 0xFFFF_FFFF
    if version == 5:
        flows = [{"src": "10.0.0.1", "dst": "10.0.0.2", "bytes": 1500, "packets": 3}] * RECORDS
        return build_v5(flows, sequence=sequence, engine=(source >> 8, source & 0xFF))
    if version == 9:
        sets = [v9_template_set(256, FIELDS)] if template else []
        sets.append(data_set(256, REC * RECORDS))
        return v9_message(sets, sequence=sequence, source_id=source)
    sets = [ipfix_template_set(256, FIELDS)] if template else []
    sets.append(data_set(256, REC * RECORDS))
    return ipfix_message(sets, sequence=sequence, domain=source)


def stream(version: int, count: int, *, first: int = 0, source: int = 0) -> list[bytes]:
    """``count`` consecutive datagrams of one domain from sequence ``first``."""
    return [
        datagram(version, first + i * units(version), template=i == 0, source=source)
        for i in range(count)
    ]


def tagged(datagrams: list[bytes], exporter: str = EXPORTER) -> Batch:
    return [(d, exporter, float(i)) for i, d in enumerate(datagrams)]


def one_by_one(decoder: Decoder, datagrams: Batch) -> None:
    for data, address, arrival in datagrams:
        decoder.feed(data, address, arrival)
    decoder.flush(0.0)


VERSIONS = pytest.mark.parametrize("version", [5, 9, 10])


@VERSIONS
def test_consecutive_sequence_numbers_report_no_gap(version: int) -> None:
    decoder = Decoder()
    decoder.decode(tagged(stream(version, 8, first=1000)))
    assert decoder.take_gaps() == []
    assert decoder.stats.gaps == {}
    assert decoder.stats.reorders == {}
    assert decoder.sequences() == {f"{EXPORTER}|{version}|0": 1000 + 8 * units(version)}


@VERSIONS
def test_skipped_datagrams_are_a_gap_of_their_units(version: int) -> None:
    datagrams = stream(version, 8)
    decoder = Decoder()
    decoder.decode(tagged(datagrams[:3] + datagrams[5:]))
    missing = 2 * units(version)
    export_s = struct.unpack_from("!I", datagrams[5], 4 if version == 10 else 8)[0]
    assert decoder.take_gaps() == [
        SequenceGap(EXPORTER, version, 0, missing, UNIT[version], export_s)
    ]
    assert decoder.take_gaps() == []
    assert decoder.stats.gaps == {EXPORTER: missing}
    assert decoder.stats.reorders == {}


@VERSIONS
def test_sequence_numbers_wrap_around_at_two_to_the_32(version: int) -> None:
    datagrams = stream(version, 8, first=2**32 - 3 * units(version))
    decoder = Decoder()
    decoder.decode(tagged(datagrams[:2]))
    decoder.decode(tagged(datagrams[2:5]))
    assert decoder.take_gaps() == []
    # a gap across the wrap: 0xFFFFFFFD.. → after the wrap
    decoder = Decoder()
    first, last = (
        datagram(version, (2**32 - 2 * units(version)) + k * units(version), template=True)
        for k in (0, 5)
    )
    decoder.decode(tagged([first, last]))
    assert [g.missing for g in decoder.take_gaps()] == [4 * units(version)]
    assert decoder.stats.reorders == {}


@VERSIONS
def test_a_duplicate_or_late_datagram_is_a_reorder_not_a_gap(version: int) -> None:
    d = stream(version, 6)
    decoder = Decoder()
    decoder.decode(tagged([d[0], d[1], d[1], d[2], d[3]]))
    assert decoder.take_gaps() == []
    assert decoder.stats.reorders == {EXPORTER: 1}
    # an exporter restart: numbering starts again from 0
    decoder.decode(tagged(stream(version, 3)))
    assert decoder.take_gaps() == []
    assert decoder.stats.reorders == {EXPORTER: 2}


@VERSIONS
def test_a_late_datagram_resynchronises_on_itself(version: int) -> None:
    d = stream(version, 5)
    decoder = Decoder()
    decoder.decode(tagged([d[0], d[2], d[1], d[3], d[4]]))
    # d[2] reveals d[1] missing; d[1] then arrives behind: a reorder, and d[2] is due again
    assert [g.missing for g in decoder.take_gaps()] == [units(version), units(version)]
    assert decoder.stats.reorders == {EXPORTER: 1}


@VERSIONS
def test_domains_are_followed_apart(version: int) -> None:
    a, b = stream(version, 4, source=1), stream(version, 4, first=500, source=2)
    decoder = Decoder()
    decoder.decode(tagged([a[0], b[0], a[1], b[1], b[3], a[2], a[3]], EXPORTER))
    decoder.decode(tagged(a[:1], "192.0.2.8"))
    assert [(g.source_id, g.missing) for g in decoder.take_gaps()] == [(2, units(version))]
    assert set(decoder.sequences()) == {
        f"{EXPORTER}|{version}|1",
        f"{EXPORTER}|{version}|2",
        f"192.0.2.8|{version}|1",
    }


@VERSIONS
def test_restored_sequences_reveal_a_gap_across_a_restart(version: int) -> None:
    d = stream(version, 6)
    before = Decoder()
    before.decode(tagged(d[:2]))
    state = before.sequences()
    after = Decoder()
    after.restore_sequences(state)
    assert after.sequences() == state
    after.decode(tagged([datagram(version, 4 * units(version), template=True)]))
    assert [g.missing for g in after.take_gaps()] == [2 * units(version)]
    # without the restored state the first datagram only sets the expectation
    fresh = Decoder()
    fresh.decode(tagged([datagram(version, 4 * units(version), template=True)]))
    assert fresh.take_gaps() == []
    # nothing lost: nothing reported
    again = Decoder()
    again.restore_sequences(state)
    again.decode(tagged([datagram(version, 2 * units(version), template=True)]))
    assert again.take_gaps() == []


def test_restoring_replaces_what_the_decoder_expected() -> None:
    decoder = Decoder()
    decoder.decode(tagged(stream(5, 2)))
    decoder.restore_sequences({f"{EXPORTER}|5|0": 100})
    assert decoder.sequences() == {f"{EXPORTER}|5|0": 100}
    decoder.decode(tagged([datagram(5, 103)]))
    assert [g.missing for g in decoder.take_gaps()] == [3]


OPTIONS = ipfix_options_template_set(400, [(144, 4)], [(34, 4)])


def _options_records(n: int) -> bytes:
    return data_set(400, b"".join(struct.pack("!II", 0, 10) for _ in range(n)))


def test_ipfix_sequence_numbers_count_options_data_records() -> None:
    learn = ipfix_message([ipfix_template_set(256, FIELDS), OPTIONS], sequence=0)
    first = ipfix_message([_options_records(2), data_set(256, REC * 3)], sequence=0)
    # RFC 7011 / pmacct: 2 options records + 3 data records before the next message
    second = ipfix_message([data_set(256, REC * 3)], sequence=5)
    third = ipfix_message([data_set(256, REC * 3)], sequence=8 + 4)
    decoder = Decoder()
    decoder.decode(tagged([learn, first, second, third]))
    assert [(g.missing, g.unit) for g in decoder.take_gaps()] == [(4, "records")]
    assert decoder.sequences() == {f"{EXPORTER}|10|0": 15}


def test_ipfix_numbered_as_softflowd_counts_its_own_records_and_no_options() -> None:
    # softflowd 1.1.0: sequence = data records sent including this message's, no options
    learn = ipfix_message([ipfix_template_set(256, FIELDS), OPTIONS], sequence=0)
    messages = [
        ipfix_message([_options_records(1), data_set(256, REC * 3)], sequence=3),
        ipfix_message([data_set(256, REC * 2)], sequence=5),
        ipfix_message([data_set(256, REC * 4)], sequence=9),
        ipfix_message([data_set(256, REC * 1)], sequence=10),
        ipfix_message([data_set(256, REC * 3)], sequence=13),
    ]
    decoder = Decoder()
    decoder.decode(tagged([learn, *messages]))
    assert decoder.take_gaps() == []
    assert decoder.stats.reorders == {}
    # losing the message of 4 records: a gap of 4, batch or one by one
    for feed in ("batch", "one"):
        lossy = Decoder()
        batch = tagged([learn, *messages[:2], *messages[3:]])
        if feed == "batch":
            lossy.decode(batch)
        else:
            one_by_one(lossy, batch)
        assert [g.missing for g in lossy.take_gaps()] == [4]
        state = lossy.sequences()
        assert state == {f"{EXPORTER}|10|0": 13}
    # after a restart: the next message less its own records continues the state
    restarted = Decoder()
    restarted.restore_sequences(state)
    relearn = ipfix_message([ipfix_template_set(256, FIELDS)], sequence=13)
    restarted.decode(tagged([relearn, ipfix_message([data_set(256, REC * 2)], sequence=15)]))
    assert restarted.take_gaps() == []


def test_ipfix_data_for_an_unknown_template_resynchronises_without_a_gap() -> None:
    decoder = Decoder()
    decoder.decode(
        tagged(
            [
                ipfix_message([data_set(256, REC * 3)], sequence=0),
                ipfix_message([ipfix_template_set(256, FIELDS), data_set(256, REC)], sequence=50),
                ipfix_message([data_set(256, REC * 2)], sequence=51),
                ipfix_message([data_set(256, REC * 2)], sequence=60),
            ]
        )
    )
    assert [g.missing for g in decoder.take_gaps()] == [7]


def test_gaps_and_reorders_reach_the_prometheus_counters() -> None:
    def sample(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    missing = sample("flow_sequence_missing_total", {"unit": "flows"})
    reorders = sample("flow_sequence_reorders_total")
    d = stream(5, 4)
    Decoder().decode(tagged([d[0], d[2], d[2], d[3]]))
    assert sample("flow_sequence_missing_total", {"unit": "flows"}) == missing + 3
    assert sample("flow_sequence_reorders_total") == reorders + 1


@settings(max_examples=60, deadline=None)
@given(
    version=st.sampled_from([5, 9, 10]),
    picks=st.lists(st.integers(0, 24), min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 20), min_size=1, max_size=8),
    sources=st.lists(st.integers(0, 2), min_size=60, max_size=60),
)
def test_the_batch_walk_finds_the_gaps_of_the_per_datagram_walk(
    version: int, picks: list[int], cuts: list[int], sources: list[int]
) -> None:
    # datagrams of three domains, kept, dropped, repeated or reordered at random
    streams = {s: stream(version, 25, first=(s * 2**31 + 7) % 2**32, source=s) for s in (0, 1, 2)}
    # mostly in order (gaps, duplicates), sometimes shuffled (reorders)
    order = picks if len(picks) % 3 == 0 else sorted(picks)
    chosen = [streams[s][i] for s, i in zip(sources, order, strict=False)]
    chosen = [streams[s][0] for s in (0, 1, 2)] + chosen
    batch = tagged(chosen)
    fast, slow = Decoder(), Decoder()
    at = 0
    for cut in [*cuts, len(batch)]:
        fast.decode(batch[at : at + cut])
        at += cut
        if at >= len(batch):
            break
    one_by_one(slow, batch)
    assert fast.take_gaps() == slow.take_gaps()
    assert fast.stats.gaps == slow.stats.gaps
    assert fast.stats.reorders == slow.stats.reorders
    assert fast.sequences() == slow.sequences()
