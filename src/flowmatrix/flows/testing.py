"""Build NetFlow v9 and IPFIX datagrams for tests and benchmarks, and compare batches.

>>> fields = [(8, 4), (12, 4), (1, 4), (2, 4)]
>>> record = pack_record(fields, {8: 0x0A000001, 12: 0x0A000002, 1: 1500, 2: 3})
>>> dgram = v9_message([v9_template_set(256, fields), data_set(256, record)])
>>> len(dgram)
64
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from flowmatrix.schema import FLOW_COLUMNS, FlowBatch

__all__ = [
    "FakeCollector",
    "assert_batch_equal",
    "data_set",
    "ipfix_message",
    "ipfix_options_template_set",
    "ipfix_template_set",
    "pack_record",
    "v9_message",
    "v9_options_template_set",
    "v9_template_set",
]

#: (element id, length) or (element id, length, enterprise number)
Spec = tuple[int, int] | tuple[int, int, int]


def pack_record(fields: Sequence[Spec], values: Mapping[int, int | bytes]) -> bytes:
    """One record of a template: integers big-endian in each field's length, bytes as given.

    Variable-length fields (length 65535) take ``bytes`` and get their length prefix.
    """
    out = bytearray()
    for spec in fields:
        ie, length = spec[0], spec[1]
        value = values.get(ie, 0)
        if length == 65535:
            raw = value if isinstance(value, bytes) else b""
            out += bytes([len(raw)]) if len(raw) < 255 else b"\xff" + struct.pack("!H", len(raw))
            out += raw
        elif isinstance(value, bytes):
            out += value[:length].ljust(length, b"\0")
        else:
            out += value.to_bytes(length, "big")
    return bytes(out)


def _pad(body: bytes, pad: int) -> bytes:
    return body + b"\0" * pad


def data_set(template_id: int, records: bytes, *, pad: int = 0) -> bytes:
    """A data flowset / set of ``records`` with ``pad`` zero octets of padding."""
    return struct.pack("!HH", template_id, 4 + len(records) + pad) + _pad(records, pad)


def v9_template_set(template_id: int, fields: Sequence[tuple[int, int]]) -> bytes:
    """A v9 template flowset (id 0) holding one template."""
    body = struct.pack("!HH", template_id, len(fields)) + b"".join(
        struct.pack("!HH", ie, length) for ie, length in fields
    )
    return struct.pack("!HH", 0, 4 + len(body)) + body


def v9_options_template_set(
    template_id: int, scope: Sequence[tuple[int, int]], options: Sequence[tuple[int, int]]
) -> bytes:
    """A v9 options template flowset (id 1), padded to 4 octets."""
    body = struct.pack("!HHH", template_id, 4 * len(scope), 4 * len(options)) + b"".join(
        struct.pack("!HH", t, n) for t, n in (*scope, *options)
    )
    body += b"\0" * (-len(body) % 4)
    return struct.pack("!HH", 1, 4 + len(body)) + body


def v9_message(
    sets: Sequence[bytes],
    *,
    uptime: int = 100_000,
    secs: int = 1_767_600_000,
    sequence: int = 0,
    source_id: int = 0,
    count: int | None = None,
) -> bytes:
    """A v9 datagram of ``sets``; ``count`` defaults to the number of sets (never trusted)."""
    head = struct.pack(
        "!HHIIII", 9, len(sets) if count is None else count, uptime, secs, sequence, source_id
    )
    return head + b"".join(sets)


def _ipfix_fields(fields: Sequence[Spec]) -> bytes:
    out = bytearray()
    for spec in fields:
        if len(spec) == 3 and spec[2]:
            out += struct.pack("!HHI", spec[0] | 0x8000, spec[1], spec[2])
        else:
            out += struct.pack("!HH", spec[0], spec[1])
    return bytes(out)


def ipfix_template_set(template_id: int, fields: Sequence[Spec]) -> bytes:
    """An IPFIX template set (id 2) holding one template; no fields = withdrawal."""
    body = struct.pack("!HH", template_id, len(fields)) + _ipfix_fields(fields)
    return struct.pack("!HH", 2, 4 + len(body)) + body


def ipfix_options_template_set(
    template_id: int, scope: Sequence[Spec], options: Sequence[Spec]
) -> bytes:
    """An IPFIX options template set (id 3): scope fields first."""
    body = struct.pack("!HHH", template_id, len(scope) + len(options), len(scope))
    body += _ipfix_fields([*scope, *options])
    body += b"\0" * (-len(body) % 4)
    return struct.pack("!HH", 3, 4 + len(body)) + body


def ipfix_message(
    sets: Sequence[bytes], *, export_s: int = 1_767_600_000, sequence: int = 0, domain: int = 0
) -> bytes:
    """An IPFIX message of ``sets``."""
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), export_s, sequence, domain) + body


def assert_batch_equal(left: FlowBatch, right: FlowBatch) -> None:
    """Raise AssertionError naming the first column where two batches differ."""
    assert len(left) == len(right), f"lengths differ: {len(left)} != {len(right)}"
    for c in FLOW_COLUMNS:
        a, b = left[c.name], right[c.name]
        if not np.array_equal(a, b):
            row = int(np.flatnonzero(a != b)[0])
            msg = f"column {c.name} differs first at row {row}: {a[row]} != {b[row]}"
            raise AssertionError(msg)


class FakeCollector:
    """A collector for other components' tests: ``start()`` hands fixed batches to the sink."""

    def __init__(
        self,
        config: object = None,
        *,
        sink: Callable[[FlowBatch], None],
        batches: Iterable[FlowBatch],
    ) -> None:
        self.config = config
        self.sink = sink
        self.batches = list(batches)
        self.running = False

    def start(self) -> None:
        """Deliver every batch to the sink, in order."""
        self.running = True
        for batch in self.batches:
            self.sink(batch)

    def stop(self) -> None:
        """Nothing to release."""
        self.running = False
