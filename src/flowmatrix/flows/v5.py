"""NetFlow v5: the 24-octet header and fixed 48-octet records, decoded as a built-in template."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from flowmatrix.flows.fields import V5_TEMPLATE
from flowmatrix.flows.templates import compile_layout

if TYPE_CHECKING:
    from flowmatrix.flows.decoder import Decoder
    from flowmatrix.flows.sequence import Mark

__all__ = ["HEADER", "LAYOUT", "RECORD", "build_v5", "walk"]

#: version, count, sysUptime ms, unix secs, unix nsecs, flow sequence, engine type, engine id,
#: sampling (2-bit mode, 14-bit interval)
HEADER = struct.Struct("!HHIIIIBBH")
#: octets per v5 record
RECORD = 48
#: the v5 record as a compiled template (element 0 = skipped octets)
LAYOUT = compile_layout(tuple((ie, length, 1 if ie == 0 else 0) for ie, length in V5_TEMPLATE))


def walk(dec: Decoder, data: bytes, exp: int) -> Mark | None:
    """Queue the records of one v5 datagram; their number comes from the datagram's length.

    Returns the datagram's sequence mark (its flow sequence and records).
    """
    if len(data) < HEADER.size:
        dec.drop(exp, "short", f"v5 datagram of {len(data)} octets")
        return None
    _, count, uptime, secs, nsecs, sequence, engine_type, engine_id, sampling = HEADER.unpack_from(
        data
    )
    fit = (len(data) - HEADER.size) // RECORD
    if fit != count:
        dec.drop(exp, "length", f"v5 count {count}, {fit} records fit")
        count = min(count, fit)
    source = (engine_type << 8) | engine_id
    mark = (5, source, sequence, count, count, secs)
    if count == 0:
        return mark
    context = (
        exp,
        5,
        source,
        secs * 1000 + nsecs // 1_000_000,
        uptime,
        sampling & 0x3FFF,
    )
    dec.add(LAYOUT, memoryview(data)[HEADER.size : HEADER.size + count * RECORD], context)
    return mark


def build_v5(
    records: Sequence[Mapping[str, int | str]],
    *,
    uptime: int = 100_000,
    secs: int = 1_767_600_000,
    nsecs: int = 0,
    sequence: int = 0,
    engine: tuple[int, int] = (0, 0),
    sampling: int = 0,
) -> bytes:
    """A v5 datagram from records given as dicts (``src``, ``dst``, ``bytes``, ``first``, …).

    Test and benchmark helper; unknown keys are ignored, missing ones are zero.
    """
    head = HEADER.pack(5, len(records), uptime, secs, nsecs, sequence, *engine, sampling)
    body = []
    for r in records:

        def ip(key: str, r: Mapping[str, int | str] = r) -> int:
            return int(ipaddress.IPv4Address(r.get(key, "0.0.0.0")))

        def n(key: str, r: Mapping[str, int | str] = r) -> int:
            return int(r.get(key, 0))

        body.append(
            struct.pack(
                "!IIIHHIIIIHHxBBBHHBBxx",
                ip("src"),
                ip("dst"),
                ip("next_hop"),
                n("in_if"),
                n("out_if"),
                n("packets"),
                n("bytes"),
                n("first"),
                n("last"),
                n("src_port"),
                n("dst_port"),
                n("tcp_flags"),
                n("protocol"),
                n("tos"),
                n("src_as"),
                n("dst_as"),
                n("src_mask"),
                n("dst_mask"),
            )
        )
    return head + b"".join(body)
