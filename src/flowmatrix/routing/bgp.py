"""Decode BGP UPDATE messages into columnar route batches (RFC 4271, 4760, 4364, 7911, 7606).

An UPDATE is walked once in Python for its path attributes (interned: every
route of an UPDATE, and every UPDATE with the same attributes, shares one
:class:`PathAttributes` row of an :class:`AttributeTable`); its NLRI fields
are only *located* (offset of each NLRI) and then decoded for a whole batch
of UPDATEs at once with numpy (:func:`decode_nlri`): label stack, RD and
prefix of a million VPNv4 routes never become a million Python objects.

Families: IPv4/IPv6 unicast (AFI 1/2, SAFI 1) and VPNv4/VPNv6 (SAFI 128),
with ADD-PATH path identifiers (RFC 7911) where the session negotiated them.

Errors follow RFC 7606: a malformed optional attribute that routes depend on
(AS_PATH, NEXT_HOP, COMMUNITIES, ORIGINATOR_ID, extended communities, ...)
makes the UPDATE *treat-as-withdraw*; unknown attributes are ignored; an
UPDATE whose attributes or NLRI cannot even be delimited raises
:class:`UpdateError` so the caller skips it and counts it.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from flowmatrix.errors import UpdateError

__all__ = [
    "AFI_IPV4",
    "AFI_IPV6",
    "SAFI_MPLS_VPN",
    "SAFI_UNICAST",
    "AttributeTable",
    "NlriRegion",
    "PathAttributes",
    "RouteColumns",
    "UpdateError",
    "decode_nlri",
    "parse_update",
    "rd_text",
    "rd_value",
    "rt_bytes",
    "rt_text",
]

U64 = npt.NDArray[np.uint64]

#: AFI / SAFI numbers (IANA)
AFI_IPV4, AFI_IPV6 = 1, 2
SAFI_UNICAST, SAFI_MPLS_VPN = 1, 128
#: path attribute type codes (RFC 4271, 1997, 4456, 4760, 4360, 6793)
ATTR_ORIGIN, ATTR_AS_PATH, ATTR_NEXT_HOP, ATTR_MED, ATTR_LOCAL_PREF = 1, 2, 3, 4, 5
ATTR_COMMUNITIES, ATTR_ORIGINATOR_ID, ATTR_CLUSTER_LIST = 8, 9, 10
ATTR_MP_REACH, ATTR_MP_UNREACH, ATTR_EXT_COMMUNITIES, ATTR_AS4_PATH = 14, 15, 16, 17
#: attribute flag: two-byte length
FLAG_EXTENDED = 0x10
#: AS_PATH segment types (RFC 4271, 5065)
AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET = 1, 2, 3, 4
#: extended community subtype of a route target (RFC 4360)
EXT_ROUTE_TARGET = 2
#: label value of a withdrawn VPN NLRI (RFC 8277 §2.4; 0 from older speakers)
WITHDRAW_LABEL = 0x800000
#: the families this decoder understands
FAMILIES = frozenset(
    {
        (AFI_IPV4, SAFI_UNICAST),
        (AFI_IPV6, SAFI_UNICAST),
        (AFI_IPV4, SAFI_MPLS_VPN),
        (AFI_IPV6, SAFI_MPLS_VPN),
    }
)


def rd_value(text: str) -> int:
    """The 8 wire bytes of an RD (``ASN:n`` type 0 or 2, ``IP:n`` type 1) as an integer."""
    admin, _, number = text.rpartition(":")
    n = int(number)
    if "." in admin:
        return (1 << 48) | (int(ipaddress.IPv4Address(admin)) << 16) | (n & 0xFFFF)
    a = int(admin)
    if a <= 0xFFFF:
        return (a << 32) | (n & 0xFFFF_FFFF)
    return (2 << 48) | (a << 16) | (n & 0xFFFF)


def rd_text(value: int) -> str:
    """``ASN:n`` / ``IP:n`` text of an RD held as its 8 wire bytes (unknown types as hex)."""
    kind = value >> 48
    if kind == 0:
        return f"{(value >> 32) & 0xFFFF}:{value & 0xFFFF_FFFF}"
    if kind == 1:
        return f"{ipaddress.IPv4Address((value >> 16) & 0xFFFF_FFFF)}:{value & 0xFFFF}"
    if kind == 2:
        return f"{(value >> 16) & 0xFFFF_FFFF}:{value & 0xFFFF}"
    return f"0x{value:016x}"


def rt_bytes(rt: str) -> bytes:
    """The route target extended community (8 octets) of its ``ASN:n`` / ``IP:n`` text.

    >>> rt_text(rt_bytes("65000:100")), rt_text(rt_bytes("192.0.2.1:7"))
    ('65000:100', '192.0.2.1:7')
    """
    admin, _, number = rt.rpartition(":")
    n = int(number)
    if "." in admin:
        return b"\x01\x02" + ipaddress.IPv4Address(admin).packed + n.to_bytes(2, "big")
    a = int(admin)
    if a <= 0xFFFF:
        return b"\x00\x02" + a.to_bytes(2, "big") + n.to_bytes(4, "big")
    return b"\x02\x02" + a.to_bytes(4, "big") + n.to_bytes(2, "big")


def rt_text(raw: bytes) -> str | None:
    """``ASN:n`` / ``IP:n`` text of a route target extended community, None for others."""
    kind, sub = raw[0] & 0x3F, raw[1]
    if sub != EXT_ROUTE_TARGET:
        return None
    if kind == 0:
        return f"{int.from_bytes(raw[2:4], 'big')}:{int.from_bytes(raw[4:8], 'big')}"
    if kind == 1:
        return f"{ipaddress.IPv4Address(raw[2:6])}:{int.from_bytes(raw[6:8], 'big')}"
    if kind == 2:
        return f"{int.from_bytes(raw[2:6], 'big')}:{int.from_bytes(raw[6:8], 'big')}"
    return None


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """The path attributes routes share (one row of an :class:`AttributeTable`)."""

    #: 0 IGP, 1 EGP, 2 incomplete
    origin: int = 2
    #: AS numbers in path order (an AS_SET's members included)
    as_path: tuple[int, ...] = ()
    #: AS path length for the decision: an AS_SET counts one, confederation segments none
    as_path_len: int = 0
    #: next hop: family (4, 6; 0 = none), high and low 64 bits (IPv4 in ``lo``)
    nh_family: int = 0
    nh_hi: int = 0
    nh_lo: int = 0
    med: int = 0
    local_pref: int = 100
    communities: tuple[int, ...] = ()
    #: ORIGINATOR_ID as an integer, 0 = absent
    originator_id: int = 0
    route_targets: frozenset[str] = frozenset()


@dataclass
class AttributeTable:
    """Interned :class:`PathAttributes`: rows are referenced by index from route batches."""

    rows: list[PathAttributes] = field(default_factory=list)
    _index: dict[bytes, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    def intern(self, key: bytes, make: PathAttributes | None = None) -> int:
        """Index of the attributes known by ``key`` (its wire bytes), adding ``make`` if new."""
        got = self._index.get(key)
        if got is None:
            if make is None:
                return -1
            got = len(self.rows)
            self.rows.append(make)
            self._index[key] = got
        return got

    def lookup(self, key: bytes) -> int:
        """Index of already interned attributes, -1 when unknown."""
        return self._index.get(key, -1)

    def subset(self, keep: npt.NDArray[np.int64]) -> tuple[AttributeTable, npt.NDArray[np.int32]]:
        """A new table of the rows ``keep`` (sorted) and each old row's new index (-1: gone)."""
        mapping = np.full(len(self.rows), -1, dtype=np.int32)
        mapping[keep] = np.arange(len(keep), dtype=np.int32)
        kept = mapping >= 0
        table = AttributeTable([self.rows[i] for i in keep.tolist()])
        table._index = {k: int(mapping[i]) for k, i in self._index.items() if kept[i]}
        return table, mapping

    def columns(self) -> dict[str, npt.NDArray[np.generic]]:
        """Numeric columns of every row (next hop, LOCAL_PREF, MED, AS path length, ...)."""
        rows = self.rows
        return {
            "nh_family": np.array([a.nh_family for a in rows], dtype=np.uint8),
            "nh_hi": np.array([a.nh_hi for a in rows], dtype=np.uint64),
            "nh_lo": np.array([a.nh_lo for a in rows], dtype=np.uint64),
            "local_pref": np.array([a.local_pref for a in rows], dtype=np.int64),
            "med": np.array([a.med for a in rows], dtype=np.int64),
            "as_path_len": np.array([a.as_path_len for a in rows], dtype=np.int64),
            "originator_id": np.array([a.originator_id for a in rows], dtype=np.uint64),
        }


class NlriRegion(NamedTuple):
    """Where one UPDATE's NLRI of one family lie in a buffer, and what they share."""

    start: int
    end: int
    afi: int
    safi: int
    addpath: bool
    #: attributes row; -1 = withdrawn
    attr: int


def _as_path(value: bytes, as4: bool) -> tuple[tuple[int, ...], int]:
    """(AS numbers, decision length) of an AS_PATH value; ValueError when malformed."""
    width = 4 if as4 else 2
    path: list[int] = []
    length = 0
    i = 0
    while i < len(value):
        if i + 2 > len(value):
            msg = "AS_PATH segment header cut"
            raise ValueError(msg)
        kind, count = value[i], value[i + 1]
        i += 2
        end = i + width * count
        if kind not in (AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET) or count == 0:
            msg = f"AS_PATH segment type {kind} count {count}"
            raise ValueError(msg)
        if end > len(value):
            msg = "AS_PATH segment overruns the attribute"
            raise ValueError(msg)
        path += [int.from_bytes(value[j : j + width], "big") for j in range(i, end, width)]
        if kind == AS_SEQUENCE:
            length += count
        elif kind == AS_SET:
            length += 1
        i = end
    return tuple(path), length


def _address(raw: bytes) -> tuple[int, int, int]:
    """(family, hi, lo) of a 4- or 16-byte address."""
    if len(raw) == 4:
        return 4, 0, int.from_bytes(raw, "big")
    value = int.from_bytes(raw[:16], "big")
    return 6, value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def _mp_next_hop(safi: int, raw: bytes) -> tuple[int, int, int]:
    """(family, hi, lo) of an MP_REACH next hop; VPN ones start with an 8-byte RD."""
    if safi == SAFI_MPLS_VPN:
        if len(raw) not in (12, 24, 48):
            msg = f"VPN next hop of {len(raw)} bytes"
            raise ValueError(msg)
        raw = raw[8:]
        if len(raw) == 32:  # global + link-local, each behind its RD (RFC 4659 §3.2.1.1)
            raw = raw[:16]
    elif len(raw) not in (4, 16, 32):
        msg = f"next hop of {len(raw)} bytes"
        raise ValueError(msg)
    return _address(raw[:16] if len(raw) >= 16 else raw)


_HDR = struct.Struct(">HH")


def parse_update(
    data: bytes,
    start: int,
    end: int,
    *,
    as4: bool,
    addpath: frozenset[tuple[int, int]],
    attrs: AttributeTable,
) -> tuple[list[NlriRegion], bool]:
    """The NLRI regions of the UPDATE body ``data[start:end]`` (after the 19-byte header).

    Returns the regions (announced ones referencing an interned attributes
    row, withdrawn ones with ``attr`` -1) and whether the UPDATE was
    *treat-as-withdraw* (RFC 7606): then every region is a withdrawal.
    ``as4`` says AS numbers are 4 bytes wide; ``addpath`` lists the (AFI,
    SAFI) whose NLRI carry a path identifier. Raises :class:`UpdateError`
    when the message cannot be delimited.
    """
    if end - start < 4:
        msg = "UPDATE shorter than its two length fields"
        raise UpdateError(msg)
    (wlen,) = struct.unpack_from(">H", data, start)
    at = start + 2
    if at + wlen + 2 > end:
        msg = f"withdrawn routes length {wlen} overruns the UPDATE"
        raise UpdateError(msg)
    regions: list[NlriRegion] = []
    v4_addpath = (AFI_IPV4, SAFI_UNICAST) in addpath
    if wlen:
        regions.append(NlriRegion(at, at + wlen, AFI_IPV4, SAFI_UNICAST, v4_addpath, -1))
    at += wlen
    (alen,) = struct.unpack_from(">H", data, at)
    at += 2
    a_end = at + alen
    if a_end > end:
        msg = f"path attributes length {alen} overruns the UPDATE"
        raise UpdateError(msg)
    nlri_start = a_end
    if not alen:
        if nlri_start < end:
            msg = "NLRI without path attributes"
            raise UpdateError(msg)
        return regions, False  # withdrawals only, or End-of-RIB
    # delimit attributes and find MP_REACH / MP_UNREACH; only a new attribute set is decoded
    mp_reach: tuple[int, int, int, int, int, int] | None = None  # afi, safi, nh at/len, nlri at/end
    mp_unreach: tuple[int, int, int, int] | None = None
    cuts: list[tuple[int, int, bytes]] = []  # (from, to, replacement) for the interning key
    i = at
    while i < a_end:
        if i + 3 > a_end:
            msg = "attribute header cut"
            raise UpdateError(msg)
        kind = data[i + 1]
        if data[i] & FLAG_EXTENDED:
            if i + 4 > a_end:
                msg = "attribute header cut"
                raise UpdateError(msg)
            v = i + 4
            v_end = v + ((data[i + 2] << 8) | data[i + 3])
        else:
            v = i + 3
            v_end = v + data[i + 2]
        if v_end > a_end:
            msg = f"attribute {kind} length {v_end - v} overruns the attributes"
            raise UpdateError(msg)
        if kind == ATTR_MP_REACH:
            if mp_reach is not None or v_end - v < 5:
                msg = "MP_REACH_NLRI repeated or cut"
                raise UpdateError(msg)
            afi, safi, nh_len = struct.unpack_from(">HBB", data, v)
            nh_at = v + 4
            n_at = nh_at + nh_len + 1  # one reserved byte after the next hop
            if n_at > v_end:
                msg = f"MP_REACH_NLRI next hop length {nh_len} overruns the attribute"
                raise UpdateError(msg)
            mp_reach = (afi, safi, nh_at, nh_len, n_at, v_end)
            # the key keeps family and next hop, not the length, which counts the NLRI
            cuts.append((i, v_end, b"\x0e" + data[v:n_at]))
        elif kind == ATTR_MP_UNREACH:
            if mp_unreach is not None or v_end - v < 3:
                msg = "MP_UNREACH_NLRI repeated or cut"
                raise UpdateError(msg)
            afi, safi = struct.unpack_from(">HB", data, v)
            mp_unreach = (afi, safi, v + 3, v_end)
            cuts.append((i, v_end, b""))
        i = v_end
    if mp_unreach is not None:
        afi, safi, u_at, u_end = mp_unreach
        if (afi, safi) in FAMILIES and u_end > u_at:
            regions.append(NlriRegion(u_at, u_end, afi, safi, (afi, safi) in addpath, -1))
    reach: list[tuple[int, int, int, int]] = []
    if mp_reach is not None:
        afi, safi, _, _, n_at, n_end = mp_reach
        if (afi, safi) in FAMILIES and n_end > n_at:
            reach.append((n_at, n_end, afi, safi))
    if nlri_start < end:
        reach.append((nlri_start, end, AFI_IPV4, SAFI_UNICAST))
    if not reach:
        return regions, False
    if not cuts:
        key = (b"\x01" if as4 else b"\x00") + data[at:a_end]
    else:
        parts = [b"\x01" if as4 else b"\x00"]
        last = at
        for c_from, c_to, instead in sorted(cuts):
            parts += (data[last:c_from], instead)
            last = c_to
        parts.append(data[last:a_end])
        key = b"".join(parts)
    attr = attrs.lookup(key)
    withdraw = False
    if attr < 0:
        spans = _spans(data, at, a_end)
        made = _decode_attributes(data, spans, mp_reach, as4=as4, plain_nlri=nlri_start < end)
        if made is None:
            withdraw = True
        else:
            attr = attrs.intern(key, made)
    for r_at, r_end, afi, safi in reach:
        regions.append(
            NlriRegion(r_at, r_end, afi, safi, (afi, safi) in addpath, -1 if withdraw else attr)
        )
    return regions, withdraw


def _spans(data: bytes, at: int, end: int) -> list[tuple[int, int, int]]:
    """(type, value start, value end) of each attribute but MP_(UN)REACH; repeats dropped.

    The attributes were delimited already (see :func:`parse_update`).
    """
    spans: list[tuple[int, int, int]] = []
    seen: set[int] = set()
    i = at
    while i < end:
        kind = data[i + 1]
        if data[i] & FLAG_EXTENDED:
            v = i + 4
            v_end = v + ((data[i + 2] << 8) | data[i + 3])
        else:
            v = i + 3
            v_end = v + data[i + 2]
        if kind not in seen and kind not in (ATTR_MP_REACH, ATTR_MP_UNREACH):
            spans.append((kind, v, v_end))
        seen.add(kind)
        i = v_end
    return spans


def _decode_attributes(
    data: bytes,
    spans: list[tuple[int, int, int]],
    mp_reach: tuple[int, int, int, int, int, int] | None,
    *,
    as4: bool,
    plain_nlri: bool,
) -> PathAttributes | None:
    """The attributes of one UPDATE; None when RFC 7606 says treat-as-withdraw."""
    origin = 2
    as_path: tuple[int, ...] = ()
    as_path_len = 0
    nh = (0, 0, 0)
    med = 0
    local_pref = 100
    communities: tuple[int, ...] = ()
    originator = 0
    rts: list[str] = []
    try:
        for kind, v, v_end in spans:
            value = data[v:v_end]
            n = len(value)
            if kind == ATTR_ORIGIN:
                if n != 1 or value[0] > 2:
                    return None
                origin = value[0]
            elif kind == ATTR_AS_PATH:
                as_path, as_path_len = _as_path(value, as4)
            elif kind == ATTR_NEXT_HOP:
                if n != 4:
                    return None
                nh = _address(value)
            elif kind == ATTR_MED:
                if n != 4:
                    return None
                med = int.from_bytes(value, "big")
            elif kind == ATTR_LOCAL_PREF:
                if n != 4:
                    return None
                local_pref = int.from_bytes(value, "big")
            elif kind == ATTR_COMMUNITIES:
                if n % 4:
                    return None
                communities = struct.unpack(f">{n // 4}I", value)
            elif kind == ATTR_ORIGINATOR_ID:
                if n != 4:
                    return None
                originator = int.from_bytes(value, "big")
            elif kind == ATTR_EXT_COMMUNITIES:
                if n % 8:
                    return None
                rts += [t for j in range(0, n, 8) if (t := rt_text(value[j : j + 8]))]
        if mp_reach is not None and mp_reach[0:2] in FAMILIES:
            _, safi, nh_at, nh_len, _, _ = mp_reach
            nh = _mp_next_hop(safi, data[nh_at : nh_at + nh_len])
    except ValueError:
        return None
    if plain_nlri and nh[0] == 0:
        return None  # IPv4 NLRI without NEXT_HOP: a missing well-known attribute
    return PathAttributes(
        origin=origin,
        as_path=as_path,
        as_path_len=as_path_len,
        nh_family=nh[0],
        nh_hi=nh[1],
        nh_lo=nh[2],
        med=med,
        local_pref=local_pref,
        communities=communities,
        originator_id=originator,
        route_targets=frozenset(rts),
    )


@dataclass(frozen=True, slots=True)
class RouteColumns:
    """Decoded NLRI, one row per route (announced or withdrawn)."""

    #: 4 or 6
    family: npt.NDArray[np.uint8]
    hi: U64
    lo: U64
    length: npt.NDArray[np.uint8]
    #: RD as its 8 wire bytes; 0 for unicast routes
    rd: U64
    #: 1 unicast, 128 VPN
    safi: npt.NDArray[np.uint8]
    #: ADD-PATH path identifier, 0 without ADD-PATH
    path_id: npt.NDArray[np.uint32]
    #: first MPLS label (20 bits); 0 for unicast
    label: npt.NDArray[np.uint32]
    #: attributes row, -1 = withdrawn
    attr: npt.NDArray[np.int32]
    #: index of the region (UPDATE part) each route came from
    region: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.family)

    @classmethod
    def empty(cls) -> RouteColumns:
        """No routes."""
        z = np.zeros(0, dtype=np.uint64)
        return cls(
            np.zeros(0, np.uint8),
            z,
            z,
            np.zeros(0, np.uint8),
            z,
            np.zeros(0, np.uint8),
            np.zeros(0, np.uint32),
            np.zeros(0, np.uint32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
        )

    def take(self, rows: npt.NDArray[np.integer]) -> RouteColumns:
        """The given rows."""
        return RouteColumns(
            self.family[rows],
            self.hi[rows],
            self.lo[rows],
            self.length[rows],
            self.rd[rows],
            self.safi[rows],
            self.path_id[rows],
            self.label[rows],
            self.attr[rows],
            self.region[rows],
        )


def _be(buf: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], width: int) -> U64:
    """Big-endian unsigned integers of ``width`` (1–8) bytes at each offset."""
    if width == 3:  # the byte before is always in the buffer: read 4, keep 3
        m = buf[(at - 1)[:, None] + np.arange(4)]
        word = m.view(">u4").reshape(-1) & np.uint32(0xFFFFFF)
        return np.asarray(word, dtype=np.uint64)
    if width in (4, 8):
        m = buf[at[:, None] + np.arange(width)]
        return np.asarray(m.view(f">u{width}").reshape(-1), dtype=np.uint64)
    m = buf[at[:, None] + np.arange(width)]
    m = np.concatenate([np.zeros((len(at), 8 - width), dtype=np.uint8), m], axis=1)
    return np.ascontiguousarray(m).view(">u8").reshape(-1).astype(np.uint64)


def _mask(value: U64, keep: npt.NDArray[np.int64]) -> U64:
    """``value`` (64-bit words) with bits below the top ``keep`` (0..64) cleared."""
    k = np.clip(keep, 0, 64).astype(np.uint64)
    shift = np.uint64(64) - k
    # a shift by 64 is undefined in numpy: clear those words separately
    m = np.where(k == 0, np.uint64(0), ~np.uint64(0) << np.where(k == 0, np.uint64(0), shift))
    return value & m


def _walk(
    buf: npt.NDArray[np.uint8], regions: list[NlriRegion]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[int]]:
    """(offset, region) of every NLRI in stream order, and the regions they overrun.

    The k-th NLRI of every region is located in the same numpy step (one
    step per NLRI of the longest region), instead of a Python loop per NLRI.
    ``buf`` is padded so that reading one length byte past a region is safe.
    """
    r = len(regions)
    starts = np.array([x.start for x in regions], dtype=np.int64)
    ends = np.array([x.end for x in regions], dtype=np.int64)
    steps = np.array([4 if x.addpath else 0 for x in regions], dtype=np.int64)
    final = starts.copy()
    ids = np.flatnonzero(starts < ends)
    cur, end, step = starts[ids], ends[ids], steps[ids]
    found: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    while len(ids):
        found.append((ids, cur))
        cur = cur + step + 1 + ((buf[cur + step].astype(np.int64) + 7) >> 3)
        done = cur >= end
        if done.any():
            final[ids[done]] = cur[done]
            keep = ~done
            ids, cur, end, step = ids[keep], cur[keep], end[keep], step[keep]
    counts = np.zeros(r, dtype=np.int64)
    for ids_k, _ in found:
        counts[ids_k] += 1
    wrong = final != ends
    bad = np.flatnonzero(wrong).tolist()
    counts[wrong] = 0
    base = np.concatenate([[0], np.cumsum(counts)[:-1]])
    total = int(counts.sum())
    off = np.zeros(total, dtype=np.int64)
    region = np.zeros(total, dtype=np.int64)
    for k, (ids_k, cur_k) in enumerate(found):
        ok = ~wrong[ids_k]
        at = base[ids_k[ok]] + k
        off[at] = cur_k[ok]
        region[at] = ids_k[ok]
    return off, region, bad


def decode_nlri(data: bytes, regions: list[NlriRegion]) -> tuple[RouteColumns, list[int]]:
    """Every NLRI of ``regions`` in ``data`` as columns, and the indices of bad regions.

    A region whose NLRI overrun it, or whose lengths are impossible for its
    family, is left out whole and reported (its UPDATE is malformed).
    """
    buf = np.frombuffer(data + bytes(64), dtype=np.uint8)
    off, region, bad = _walk(buf, regions)
    n = len(off)
    if not n:
        return RouteColumns.empty(), bad
    afi = np.array([r.afi for r in regions], dtype=np.uint8)[region]
    safi = np.array([r.safi for r in regions], dtype=np.uint8)[region]
    addp = np.array([r.addpath for r in regions], dtype=bool)[region]
    attr = np.array([r.attr for r in regions], dtype=np.int32)[region]
    path_id = np.where(addp, _be(buf, off, 4), np.uint64(0)).astype(np.uint32)
    p = off + np.where(addp, 4, 0)
    bits = buf[p].astype(np.int64)
    vpn = safi == SAFI_MPLS_VPN
    label = np.zeros(n, dtype=np.uint64)
    rd = np.zeros(n, dtype=np.uint64)
    cursor = p + 1
    ok = np.ones(n, dtype=bool)
    if vpn.any():
        first = _be(buf, cursor, 3)
        label = np.where(vpn, first >> np.uint64(4), np.uint64(0))
        labels = np.where(vpn, 1, 0).astype(np.int64)
        more = vpn & ((first & np.uint64(1)) == 0) & (first != WITHDRAW_LABEL) & (first != 0)
        for _ in range(7):  # deeper stacks than 8 labels are refused below
            if not more.any():
                break
            nxt = _be(buf, cursor + 3 * labels, 3)
            labels = labels + more
            more = more & ((nxt & np.uint64(1)) == 0)
        ok &= ~more
        cursor = cursor + 3 * labels
        rd = np.where(vpn, _be(buf, cursor, 8), np.uint64(0))
        cursor = cursor + np.where(vpn, 8, 0)
        bits = bits - np.where(vpn, 24 * labels + 64, 0)
    family = np.where(afi == AFI_IPV4, 4, 6).astype(np.uint8)
    top = np.where(family == 4, 32, 128)
    ok &= (bits >= 0) & (bits <= top)
    bits = np.clip(bits, 0, top)
    v4 = family == 4
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    # bytes past a prefix's length belong to the next NLRI: the host mask clears them
    if v4.all():
        lo = _mask(_be(buf, cursor, 4) << np.uint64(32), bits) >> np.uint64(32)
    else:
        w4 = np.flatnonzero(v4)
        lo[w4] = _mask(_be(buf, cursor[w4], 4) << np.uint64(32), bits[w4]) >> np.uint64(32)
        w6 = np.flatnonzero(~v4)
        hi[w6] = _mask(_be(buf, cursor[w6], 8), bits[w6])
        lo[w6] = _mask(_be(buf, cursor[w6] + 8, 8), bits[w6] - 64)
    if not ok.all():
        bad_regions = np.unique(region[~ok]).tolist()
        bad += bad_regions
        keep = ~np.isin(region, bad_regions)
        family, hi, lo, rd, label = family[keep], hi[keep], lo[keep], rd[keep], label[keep]
        bits, safi, path_id, attr = bits[keep], safi[keep], path_id[keep], attr[keep]
        region = region[keep]
    cols = RouteColumns(
        family=family.astype(np.uint8),
        hi=hi,
        lo=lo,
        length=bits.astype(np.uint8),
        rd=rd.astype(np.uint64),
        safi=safi.astype(np.uint8),
        path_id=path_id.astype(np.uint32),
        label=label.astype(np.uint32),
        attr=attr.astype(np.int32),
        region=region.astype(np.int64),
    )
    return cols, sorted(set(bad))
