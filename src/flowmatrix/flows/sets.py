"""Vectorized set walk: many v5 / v9 / IPFIX datagrams in one buffer → tables of their sets.

The set headers of a whole batch are read with numpy, one step per set
position (step k reads the k-th set of every datagram still walking), so the
Python cost does not grow with the number of sets. Datagrams that need the
per-datagram walker — template sets, set ids below 256, malformed lengths,
IPFIX header length disagreeing with the datagram, a v5 count disagreeing
with the length — are only flagged here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DatagramTable", "SetTable", "gather_records", "walk_datagrams"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
#: v5 header and record octets
V5_HEADER, V5_RECORD = 24, 48


def _u16(a: U8, off: I64) -> I64:
    return (a[off].astype(np.int64) << 8) | a[off + 1]


def _u32(a: U8, off: I64) -> I64:
    return (_u16(a, off) << 16) | _u16(a, off + 2)


@dataclass
class DatagramTable:
    """Header fields of every datagram of a batch (zero where ``version`` is 0)."""

    #: export version: 5, 9, 10, or 0 for anything the per-datagram walker must see
    version: I64
    #: v9 source id / IPFIX observation domain
    source: I64
    #: export time, ms since the epoch (v9, IPFIX: whole seconds)
    export_ms: I64
    #: export time, whole seconds since the epoch (the header's unix secs)
    export_s: I64
    #: export sequence number: v5 flow sequence, v9 package sequence, IPFIX sequence number
    sequence: I64
    #: v5 / v9 sysUptime ms (IPFIX: 0, computed from options state by the decoder)
    uptime: I64
    #: v5 header sampling interval (14 bits), else 0
    sampling: I64
    #: True when the datagram must go through the per-datagram walker
    slow: npt.NDArray[np.bool_]


@dataclass
class SetTable:
    """The data sets (id ≥ 256; a v5 datagram's records: id 0) of the datagrams, in order."""

    #: index of the datagram in the batch
    datagram: I64
    #: offset of the set's first record in the joined buffer
    start: I64
    #: set id (template id)
    set_id: I64
    #: octets after the set header (records and padding)
    length: I64


def walk_datagrams(buf: bytes, starts: I64, sizes: I64) -> tuple[DatagramTable, SetTable]:
    """Read the headers and set headers of datagrams joined in ``buf`` at ``starts``."""
    a = np.frombuffer(buf, dtype=np.uint8)
    n = len(starts)
    version = np.zeros(n, dtype=np.int64)
    can = np.flatnonzero(sizes >= 20)
    version[can] = _u16(a, starts[can])
    # the second header word: v5 record count, IPFIX message length
    word = np.zeros(n, dtype=np.int64)
    word[can] = _u16(a, starts[can] + 2)
    v5 = (version == 5) & (sizes >= V5_HEADER) & (word == (sizes - V5_HEADER) // V5_RECORD)
    v9 = version == 9
    # IPFIX: the header's length must be the datagram's (else the walker counts `length`)
    v10 = (version == 10) & (word == sizes)
    version = np.where(v9, 9, np.where(v10, 10, np.where(v5, 5, 0)))
    source = np.zeros(n, dtype=np.int64)
    export_ms = np.zeros(n, dtype=np.int64)
    export_s = np.zeros(n, dtype=np.int64)
    sequence = np.zeros(n, dtype=np.int64)
    uptime = np.zeros(n, dtype=np.int64)
    sampling = np.zeros(n, dtype=np.int64)
    for v, at_source, at_secs, at_uptime, at_sequence in (
        (9, 16, 8, 4, 12),
        (10, 12, 4, -1, 8),
        (5, 20, 8, 4, 16),
    ):
        these = np.flatnonzero(version == v)
        at = starts[these]
        secs = _u32(a, at + at_secs)
        export_s[these] = secs
        export_ms[these] = secs * 1000
        sequence[these] = _u32(a, at + at_sequence)
        if at_uptime >= 0:
            uptime[these] = _u32(a, at + at_uptime)
        if v == 5:
            # engine type << 8 | engine id; nanoseconds; 14-bit sampling interval
            source[these] = _u16(a, at + at_source)
            export_ms[these] += _u32(a, at + 12) // 1_000_000
            sampling[these] = _u16(a, at + 22) & 0x3FFF
        else:
            source[these] = _u32(a, at + at_source)
    slow = version == 0
    # a v5 datagram is one "set" of id 0 (never a v9 / IPFIX data set id)
    five = np.flatnonzero(v5 & (word > 0))
    zero = np.zeros(len(five), dtype=np.int64)
    found: list[tuple[I64, I64, I64, I64]] = [
        (five, starts[five] + V5_HEADER, zero, word[five] * V5_RECORD)
    ]
    fast = np.flatnonzero((version == 9) | (version == 10))
    at = starts[fast]
    is9 = version[fast] == 9

    dg = fast
    off = at + np.where(is9, 20, 16)
    end = at + sizes[fast]
    while dg.size:
        live = off + 4 <= end
        if not live.all():
            dg, off, end = dg[live], off[live], end[live]
            if not dg.size:
                break
        sid = _u16(a, off)
        length = _u16(a, off + 2)
        bad = (length < 4) | (off + length > end) | (sid < 256)
        if bad.any():
            slow[dg[bad]] = True
            good = ~bad
            dg, off, end, sid, length = dg[good], off[good], end[good], sid[good], length[good]
        found.append((dg, off + 4, sid, length - 4))
        off = off + length
    cols = [np.concatenate(c) for c in zip(*found, strict=True)]
    order = np.argsort(cols[1], kind="stable")
    sets = SetTable(*(c[order] for c in cols))
    return DatagramTable(
        version, source, export_ms, export_s, sequence, uptime, sampling, slow
    ), sets


def gather_records(buf: bytes, record_length: int, starts: I64, counts: I64) -> npt.NDArray[Any]:
    """The records of several sets of ``buf`` (``counts[i]`` records at ``starts[i]``), joined.

    One fancy index over an overlapping view of ``buf`` whose items are
    ``record_length``-octet blobs starting at every octet.
    """
    blobs: npt.NDArray[Any] = np.ndarray(
        (len(buf) - record_length + 1,),
        dtype=np.dtype((np.void, record_length)),
        buffer=buf,
        strides=(1,),
    )
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    index = np.repeat(starts - first * record_length, counts)
    index += np.arange(total, dtype=np.int64) * record_length
    records: npt.NDArray[Any] = blobs[index]
    return records
