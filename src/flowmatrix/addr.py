"""Address columns: IPv4 and IPv6 addresses and prefixes as integer columns, and their text.

Addresses are held as integers: IPv4 in one ``uint32`` column (or the low
word of a ``uint64`` pair with family 4), IPv6 as two ``uint64`` columns
(``hi``, ``lo``). Text is canonical (RFC 5952 for IPv6), so it equals what
:mod:`ipaddress` prints and round-trips through it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "format_addresses",
    "format_prefixes",
    "format_v4",
    "format_v6",
    "v4_int",
    "v6_int",
]

U64 = npt.NDArray[np.uint64]

#: "0" … "255", the text of each IPv4 octet
_OCTETS = pa.array([str(i) for i in range(256)], pa.string())
#: "0" … "ffff", the text of each IPv6 group
_GROUPS = pa.array([format(i, "x") for i in range(65536)], pa.string())
#: "/0" … "/128"
_LENGTHS = pa.array([f"/{i}" for i in range(129)], pa.string())


def v4_int(text: str) -> int:
    """The integer value of a dotted-quad IPv4 address."""
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def v6_int(text: str) -> tuple[int, int]:
    """The (hi, lo) 64-bit halves of an IPv6 address."""
    import ipaddress

    value = int(ipaddress.IPv6Address(text))
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def format_v4(addr: npt.NDArray[np.integer]) -> pa.StringArray:
    """Dotted-quad text of each IPv4 address in ``addr`` (integers < 2**32)."""
    a = np.asarray(addr, dtype=np.uint64)
    octets = [
        pc.take(_OCTETS, pa.array((a >> np.uint64(s)) & np.uint64(255))) for s in (24, 16, 8, 0)
    ]
    return pc.binary_join_element_wise(*octets, ".")


def format_v6(hi: U64, lo: U64) -> pa.StringArray:
    """RFC 5952 text of each IPv6 address given as 64-bit halves."""
    hi = np.asarray(hi, dtype=np.uint64)
    lo = np.asarray(lo, dtype=np.uint64)
    n = len(hi)
    groups = np.empty((8, n), dtype=np.uint16)
    for i in range(4):
        shift = np.uint64(48 - 16 * i)
        groups[i] = (hi >> shift) & np.uint64(0xFFFF)
        groups[4 + i] = (lo >> shift) & np.uint64(0xFFFF)
    # longest run of zero groups (first one on ties); only runs of 2+ are compressed
    zero = groups == 0
    run = np.zeros((8, n), dtype=np.int8)
    run[7] = zero[7]
    for i in range(6, -1, -1):
        run[i] = np.where(zero[i], run[i + 1] + 1, 0)
    best_len = run.max(axis=0)
    best_start = run.argmax(axis=0)
    compress = best_len >= 2
    start = np.where(compress, best_start, 9)
    end = np.where(compress, best_start + best_len, 9)
    pieces = []
    for i in range(8):
        inside = (start <= i) & (i < end)
        # inside the run: "" at its first group (and at group 1 / 7 when it touches an
        # end) so that joining the others with ":" yields "::"; null elsewhere = skipped
        empty = inside & ((i == start) | ((start == 0) & (i == 1)) | ((end == 8) & (i == 7)))
        text = pc.take(_GROUPS, pa.array(groups[i]))
        text = pc.if_else(pa.array(empty), "", text)
        pieces.append(pc.if_else(pa.array(inside & ~empty), pa.scalar(None, pa.string()), text))
    return pc.binary_join_element_wise(*pieces, ":", null_handling="skip")


def format_addresses(family: npt.NDArray[np.integer], hi: U64, lo: U64) -> pa.StringArray:
    """Text of mixed IPv4/IPv6 addresses; IPv4 ones (family 4) are held in ``lo``."""
    family = np.asarray(family)
    v4 = format_v4(lo & np.uint64(0xFFFF_FFFF))
    if not (family == 6).any():
        return v4
    v6 = format_v6(hi, lo)
    return pc.if_else(pa.array(family == 4), v4, v6)


def format_prefixes(
    family: npt.NDArray[np.integer], hi: U64, lo: U64, length: npt.NDArray[np.integer]
) -> pa.StringArray:
    """``address/length`` text of mixed IPv4/IPv6 prefixes."""
    lengths = pc.take(_LENGTHS, pa.array(np.asarray(length, dtype=np.int64)))
    return pc.binary_join_element_wise(format_addresses(family, hi, lo), lengths, "")
