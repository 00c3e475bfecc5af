"""Malformed input never crashes the decoder: counted drops, property tests and a bounded fuzz."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.flows import REASONS, Decoder
from flowmatrix.flows.testing import (
    data_set,
    ipfix_message,
    ipfix_template_set,
    pack_record,
    v9_message,
    v9_template_set,
)

FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4)]


@pytest.mark.parametrize(
    ("dgram", "reason"),
    [
        (b"\x00", "short"),
        (b"\x00\x07" + b"\0" * 30, "version"),
        (b"\x00\x09" + b"\0" * 10, "short"),
        (b"\x00\x0a" + b"\0" * 10, "short"),
        (b"\x00\x05" + b"\0" * 10, "short"),
        (v9_message([b"\x01\x00\x00\x02"]), "set_length"),
        (v9_message([struct.pack("!HHHH", 0, 8, 256, 0)]), "template"),
        (ipfix_message([struct.pack("!HHHHHH", 2, 12, 256, 2, 8, 4)]), "template"),
    ],
)
def test_malformed_datagrams_are_counted_by_reason(dgram: bytes, reason: str) -> None:
    decoder = Decoder()
    batch = decoder.decode([(dgram, "192.0.2.1", 0.0)])
    assert len(batch) == 0
    assert decoder.stats.by_reason() == {reason: 1}
    assert decoder.stats.dropped[("192.0.2.1", reason)] == 1
    assert reason in REASONS


records = st.lists(
    st.tuples(
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 65535),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
    ),
    min_size=0,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(0, 3), st.booleans())
def test_valid_datagrams_decode_every_record_exactly(
    rows: list[tuple[int, int, int, int, int]], pad: int, ipfix: bool
) -> None:
    body = b"".join(pack_record(FIELDS, {8: s, 12: d, 7: p, 1: b, 2: n}) for s, d, p, b, n in rows)
    if ipfix:
        dgram = ipfix_message([ipfix_template_set(300, FIELDS), data_set(300, body, pad=pad)])
    else:
        dgram = v9_message([v9_template_set(300, FIELDS), data_set(300, body, pad=pad)])
    decoder = Decoder()
    batch = decoder.decode([(dgram, "127.0.0.1", 0.0)])
    assert batch["src_lo"].tolist() == [r[0] for r in rows]
    assert batch["dst_lo"].tolist() == [r[1] for r in rows]
    assert batch["src_port"].tolist() == [r[2] for r in rows]
    assert batch["bytes"].tolist() == [r[3] for r in rows]
    assert batch["packets"].tolist() == [r[4] for r in rows]
    assert decoder.stats.dropped_total() == 0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([5, 9, 10]), st.binary(max_size=300))
def test_random_bodies_behind_a_valid_version_never_crash(version: int, body: bytes) -> None:
    decoder = Decoder()
    decoder.decode([(struct.pack("!H", version) + body, "127.0.0.1", 0.0)])


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        if kind == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 1:
            del buf[rng.randrange(len(buf) + 1) :]
        elif kind == 2:
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 3 and len(buf) > 4:
            # a plausible length or count field: a 16-bit word set to an edge value
            at = rng.randrange(len(buf) - 1)
            buf[at : at + 2] = struct.pack("!H", rng.choice([0, 1, 3, 4, 255, 256, 65535]))
        elif kind == 4 and len(buf) > 20:
            at = rng.randrange(len(buf) - 2)
            buf[at : at + 2] = b"\xff\xff"  # a variable-length marker
    return bytes(buf[:2]) + bytes(buf[2:]) if len(buf) >= 2 else bytes(buf)


@pytest.mark.parametrize(
    "name", ["v5", "v9", "ipfix", "softflowd_v9", "softflowd_v10", "softflowd_v5"]
)
def test_fuzzed_golden_datagrams_never_crash_the_decoder(
    name: str, softflowd: dict[int, list[bytes]], golden: dict[str, bytes]
) -> None:
    seeds = {
        "v5": [golden["v5"]],
        "v9": [golden["v9"]],
        "ipfix": [golden["ipfix"]],
        "softflowd_v9": softflowd[9][:2],
        "softflowd_v10": softflowd[10][:2],
        "softflowd_v5": softflowd[5][:1],
    }[name]
    rng = random.Random(name)
    decoder = Decoder()
    for i in range(3000):
        batch = []
        for seed in seeds:
            dgram = seed if i % 7 == 0 else _mutate(rng, seed)
            batch.append((dgram, f"127.0.0.{1 + i % 3}", float(i)))
        decoder.decode(batch)
    # a fresh, unmutated copy still decodes in full after all that
    clean = Decoder().decode([(s, "10.0.0.1", 0.0) for s in seeds])
    again = decoder.decode([(s, "10.0.0.1", 0.0) for s in seeds])
    assert len(again) == len(clean) > 0
