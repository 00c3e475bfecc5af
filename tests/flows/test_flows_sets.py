"""The vectorized batch walk decodes exactly what the per-datagram walk decodes."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from flowmatrix.flows import Decoder
from flowmatrix.flows.decoder import MAX_RESOLVES
from flowmatrix.flows.sets import gather_records, walk_datagrams
from flowmatrix.flows.testing import (
    assert_batch_equal,
    data_set,
    ipfix_message,
    ipfix_options_template_set,
    ipfix_template_set,
    pack_record,
    v9_message,
    v9_template_set,
)
from flowmatrix.schema import FLOW_COLUMNS, FlowBatch

FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4)]
#: the same template id redefined with the byte and packet counters swapped
SWAPPED = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4)]
REC = pack_record(FIELDS, {8: 0x0A000001, 12: 0x0A000002, 7: 1, 11: 2, 4: 6, 1: 1500, 2: 3})

Batch = list[tuple[bytes, str, float]]


def _sorted(batch: FlowBatch) -> FlowBatch:
    return batch.take(np.lexsort([batch[c.name] for c in FLOW_COLUMNS]))


def _one_by_one(decoder: Decoder, batch: Batch) -> FlowBatch:
    """The per-datagram walk: ``feed`` every datagram, then ``flush``."""
    for data, address, arrival in batch:
        decoder.feed(data, address, arrival)
    return decoder.flush(max((d[2] for d in batch), default=None))


def assert_same_as_one_by_one(batches: list[Batch]) -> None:
    """``decode`` gives the rows, counters and sequence gaps of ``feed`` + ``flush``."""
    fast, slow = Decoder(), Decoder()
    for batch in batches:
        assert_batch_equal(_sorted(fast.decode(batch)), _sorted(_one_by_one(slow, batch)))
    assert fast.stats.dropped == slow.stats.dropped
    assert fast.stats.records == slow.stats.records
    assert fast.stats.datagrams == slow.stats.datagrams
    assert fast.stats.template_misses == slow.stats.template_misses
    # export sequence numbers: the same gaps, in the same order, and the same state
    assert fast.take_gaps() == slow.take_gaps()
    assert fast.stats.gaps == slow.stats.gaps
    assert fast.stats.reorders == slow.stats.reorders
    assert fast.sequences() == slow.sequences()


@pytest.mark.parametrize("version", [5, 9, 10])
@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_softflowd_batches_decode_as_one_datagram_at_a_time(
    version: int, size: int, softflowd: dict[int, list[bytes]]
) -> None:
    datagrams = softflowd[version]
    tagged = [(d, "127.0.0.1", float(i)) for i, d in enumerate(datagrams)]
    assert_same_as_one_by_one([tagged[i : i + size] for i in range(0, len(tagged), size)])


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(4)
        if kind == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 1:
            del buf[rng.randrange(len(buf) + 1) :]
        elif kind == 2 and len(buf) > 4:
            at = rng.randrange(len(buf) - 1)
            buf[at : at + 2] = struct.pack("!H", rng.choice([0, 3, 4, 255, 256, 1024, 65535]))
        elif kind == 3 and len(buf) > 20:
            # a header word: version, length, source id / domain
            at = rng.choice([0, 2, 12, 14, 16, 18])
            buf[at : at + 2] = struct.pack("!H", rng.choice([0, 1, 5, 9, 10, 16, len(buf)]))
    return bytes(buf)


@pytest.mark.parametrize("version", [5, 9, 10])
def test_mutated_batches_decode_as_one_datagram_at_a_time(
    version: int, softflowd: dict[int, list[bytes]]
) -> None:
    rng = random.Random(version)
    datagrams = softflowd[version][:40]
    batches = []
    for _ in range(60):
        batch = []
        for i in range(rng.randint(1, 50)):
            dgram = rng.choice(datagrams)
            if rng.random() < 0.3:
                dgram = _mutate(rng, dgram)
            batch.append((dgram, f"127.0.0.{1 + rng.randrange(2)}", float(i)))
        batches.append(batch)
    assert_same_as_one_by_one(batches)


def _bytes_packets(batch: FlowBatch) -> list[tuple[int, int]]:
    return sorted(zip(batch["bytes"].tolist(), batch["packets"].tolist(), strict=True))


@pytest.mark.parametrize(
    ("message", "template"), [(v9_message, v9_template_set), (ipfix_message, ipfix_template_set)]
)
def test_a_template_redefined_mid_batch_applies_from_that_datagram_on(
    message: object, template: object
) -> None:
    build, define = message, template
    assert callable(build)
    assert callable(define)
    learn = [(build([define(300, FIELDS)]), "192.0.2.1", 0.0)]
    batch = [
        (build([data_set(300, REC * 2)]), "192.0.2.1", 0.0),
        (build([define(300, SWAPPED)]), "192.0.2.1", 0.0),
        (build([data_set(300, REC * 3)]), "192.0.2.1", 0.0),
    ]
    decoder = Decoder()
    decoder.decode(learn)
    assert _bytes_packets(decoder.decode(batch)) == [(3, 1500)] * 3 + [(1500, 3)] * 2
    assert_same_as_one_by_one([learn, batch])


def test_templates_changing_in_every_datagram_decode_as_one_datagram_at_a_time() -> None:
    # more template changes than MAX_RESOLVES: the rest of the batch is walked one by one
    batch = []
    for i in range(3 * MAX_RESOLVES):
        fields = FIELDS if i % 2 else SWAPPED
        sets = [v9_template_set(300, fields), data_set(300, REC * (1 + i % 3))]
        batch += [
            (v9_message(sets), "192.0.2.1", 0.0),
            (v9_message([data_set(300, REC)]), "192.0.2.1", 0.0),
        ]
    decoded = Decoder().decode(batch)
    assert len(decoded) == sum(2 + i % 3 for i in range(3 * MAX_RESOLVES))
    assert_same_as_one_by_one([batch, batch[::-1]])


def test_data_before_its_template_in_the_same_batch_is_held_then_decoded() -> None:
    batch = [
        (v9_message([data_set(300, REC * 2)]), "192.0.2.1", 0.0),
        (v9_message([data_set(300, REC)]), "192.0.2.1", 0.0),
        (v9_message([v9_template_set(300, FIELDS)]), "192.0.2.1", 0.0),
        (v9_message([data_set(300, REC * 4)]), "192.0.2.1", 0.0),
    ]
    decoder = Decoder()
    assert len(decoder.decode(batch)) == 7
    assert decoder.stats.template_misses["192.0.2.1"] == 2
    assert_same_as_one_by_one([batch])


def test_an_ipfix_withdrawal_mid_batch_holds_the_data_after_it() -> None:
    learn = [(ipfix_message([ipfix_template_set(300, FIELDS)]), "192.0.2.1", 0.0)]
    batch = [
        (ipfix_message([data_set(300, REC * 2)]), "192.0.2.1", 0.0),
        (ipfix_message([ipfix_template_set(300, [])]), "192.0.2.1", 0.0),
        (ipfix_message([data_set(300, REC * 5)]), "192.0.2.1", 0.0),
    ]
    decoder = Decoder()
    decoder.decode(learn)
    assert len(decoder.decode(batch)) == 2
    assert decoder.stats.template_misses["192.0.2.1"] == 1
    assert_same_as_one_by_one([learn, batch])


def test_a_system_init_time_learned_mid_batch_dates_the_ipfix_data_after_it() -> None:
    fields = [(8, 4), (12, 4), (1, 4), (2, 4), (22, 4), (21, 4)]
    rec = pack_record(fields, {8: 1, 12: 2, 1: 100, 2: 1, 22: 5_000, 21: 6_000})
    init = ipfix_options_template_set(400, [(144, 4)], [(160, 8)])
    options = data_set(400, struct.pack("!IQ", 0, 1_767_599_000_000))
    learn = [(ipfix_message([ipfix_template_set(300, fields)]), "192.0.2.1", 0.0)]
    batch = [
        (ipfix_message([data_set(300, rec)]), "192.0.2.1", 0.0),
        (ipfix_message([init, options]), "192.0.2.1", 0.0),
        (ipfix_message([data_set(300, rec)]), "192.0.2.1", 0.0),
    ]
    decoder = Decoder()
    decoder.decode(learn)
    # before the options record: the export time; after it: init + sysUpTime
    assert sorted(decoder.decode(batch)["start_ms"].tolist()) == [
        1_767_599_005_000,
        1_767_600_000_000,
    ]
    assert_same_as_one_by_one([learn, batch])


def test_the_set_walk_stops_a_datagram_at_its_first_malformed_set() -> None:
    good = v9_message([data_set(300, REC)])
    bad = v9_message([data_set(300, REC), b"\x01\x2c\x00\x02"])
    buf = good + bad
    sizes = np.array([len(good), len(bad)], dtype=np.int64)
    head, sets = walk_datagrams(buf, np.array([0, len(good)], dtype=np.int64), sizes)
    assert head.version.tolist() == [9, 9]
    assert head.slow.tolist() == [False, True]
    assert sets.datagram.tolist() == [0, 1]
    assert sets.set_id.tolist() == [300, 300]
    assert sets.length.tolist() == [len(REC), len(REC)]
    records = gather_records(buf, len(REC), sets.start, np.array([1, 1], dtype=np.int64))
    assert [bytes(r) for r in records] == [REC, REC]
