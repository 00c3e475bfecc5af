"""Decode a BMP stream (RFC 7854, Loc-RIB RFC 9069, Adj-RIB-Out RFC 8671) into route batches.

A :class:`BmpSession` is the state of one monitored router's TCP stream:
``feed(bytes)`` frames the complete messages it holds, keeps the rest for
the next call and returns a :class:`BmpBatch` — the routes of every Route
Monitoring message as :class:`~flowmatrix.routing.bgp.RouteColumns` (one
numpy decode per batch) plus the peer and session events in stream order.

Message types: Route Monitoring (0), Statistics Report (1), Peer Down (2),
Peer Up (3, its sent/received OPENs say whether ADD-PATH and 4-byte ASNs
are in use), Initiation (4, sysName/sysDescr TLVs), Termination (5); Route
Mirroring (6) and unknown types are skipped. Per-peer header peer types 0
(global instance), 1 (RD instance), 2 (local instance) and 3 (Loc-RIB).

Errors: a common header that cannot be trusted (version not 3, length
shorter than the header or over :data:`MAX_MESSAGE`) loses the framing, so
:class:`BmpSessionError` is raised and the session must be dropped (RFC
7854 §3.2 gives no way to resynchronise). A malformed message body is
skipped and counted in :attr:`BmpSession.malformed`; a malformed UPDATE
is skipped or treated as withdraw per RFC 7606 (counted too). Nothing else
escapes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from flowmatrix.errors import BmpSessionError
from flowmatrix.routing.bgp import (
    AFI_IPV4,
    AFI_IPV6,
    AttributeTable,
    NlriRegion,
    RouteColumns,
    UpdateError,
    decode_nlri,
    parse_update,
)

__all__ = [
    "MAX_MESSAGE",
    "BmpBatch",
    "BmpEvent",
    "BmpSession",
    "BmpSessionError",
    "PeerKey",
    "RibKey",
]

#: BMP version this decoder speaks
BMP_VERSION = 3
#: message types (RFC 7854 §4.1)
ROUTE_MONITORING, STATISTICS, PEER_DOWN, PEER_UP, INITIATION, TERMINATION, ROUTE_MIRRORING = range(
    7
)
MESSAGE_NAMES = (
    "route_monitoring",
    "statistics",
    "peer_down",
    "peer_up",
    "initiation",
    "termination",
    "route_mirroring",
)
#: peer types (RFC 7854 §4.2, RFC 9069 §4.1)
PEER_GLOBAL, PEER_RD, PEER_LOCAL, PEER_LOC_RIB = 0, 1, 2, 3
#: per-peer header flags (RFC 7854 §4.2, RFC 8671): IPv6 peer, post-policy, 2-byte AS_PATH,
#: Adj-RIB-Out
FLAG_V, FLAG_L, FLAG_A, FLAG_O = 0x80, 0x40, 0x20, 0x10
#: Initiation / Termination information TLV types (RFC 7854 §4.3, §4.4)
INFO_STRING, INFO_SYS_DESCR, INFO_SYS_NAME = 0, 1, 2
#: the longest message accepted; a longer length field means the framing is lost
MAX_MESSAGE = 1 << 24
#: BGP message header: 16-byte marker, length, type (RFC 4271 §4.1)
BGP_HEADER = 19
BGP_OPEN, BGP_UPDATE = 1, 2
#: BGP capabilities (RFC 6793, RFC 7911)
CAP_AS4, CAP_ADD_PATH = 65, 69

_COMMON = struct.Struct(">BIB")
_PEER = struct.Struct(">BBQ16sIIII")
_TIME = struct.Struct(">II")
PEER_HEADER = _PEER.size  # 42


#: (peer type, peer distinguisher, peer address) — what a Peer Down ends
PeerKey = tuple[int, int, str]

RibKind = Literal["pre", "post", "out-pre", "out-post", "loc"]


@dataclass(frozen=True, slots=True)
class RibKey:
    """One RIB a router reports: a peer's Adj-RIB-In/Out (pre or post policy) or its Loc-RIB."""

    peer: PeerKey
    kind: RibKind


@dataclass(frozen=True, slots=True)
class BmpEvent:
    """A non-route message, in stream order; ``before`` = routes of the batch preceding it."""

    kind: Literal["initiation", "termination", "peer_up", "peer_down", "statistics"]
    before: int
    peer: PeerKey | None = None
    #: peer AS and BGP identifier from the per-peer header (0 when not a peer message)
    peer_as: int = 0
    peer_bgp_id: int = 0
    time_ms: int = 0
    #: Peer Down reason code; statistics: (type, value) pairs; initiation: TLVs
    reason: int = 0
    info: tuple[tuple[int, int | str], ...] = ()


@dataclass(frozen=True, slots=True)
class BmpBatch:
    """The routes and events of one ``feed``: routes as columns, a RIB and time per row."""

    routes: RouteColumns
    #: index into :attr:`BmpSession.ribs`, per route
    rib: npt.NDArray[np.int32]
    #: per-peer header timestamp (ms) of the message each route came in
    time_ms: npt.NDArray[np.int64]
    events: list[BmpEvent]
    #: complete messages framed, by type name
    messages: dict[str, int]

    def __len__(self) -> int:
        return len(self.routes)


@dataclass
class _Peer:
    as4: bool = True
    addpath: frozenset[tuple[int, int]] = frozenset()
    up: bool = False


_ADDRESSES: dict[tuple[bool, bytes], str] = {}


def _peer_address(flags: int, raw: bytes) -> str:
    """Text of a per-peer header's peer address (cached: a router has few peers)."""
    key = (bool(flags & FLAG_V), raw)
    got = _ADDRESSES.get(key)
    if got is None:
        if len(_ADDRESSES) > 65536:
            _ADDRESSES.clear()
        got = str(ipaddress.IPv6Address(raw) if key[0] else ipaddress.IPv4Address(raw[12:16]))
        _ADDRESSES[key] = got
    return got


def _open_capabilities(data: bytes, at: int, end: int) -> tuple[int, dict[int, list[bytes]]]:
    """(length of the OPEN message at ``at``, capability code → values); ValueError if malformed."""
    if end - at < BGP_HEADER + 10:
        msg = "OPEN cut"
        raise ValueError(msg)
    (length,) = struct.unpack_from(">H", data, at + 16)
    if data[at + 18] != BGP_OPEN or length < BGP_HEADER + 10 or at + length > end:
        msg = "not an OPEN or bad length"
        raise ValueError(msg)
    i = at + BGP_HEADER + 9
    plen = data[i]
    i += 1
    if plen == 255 and data[i] == 255:  # extended optional parameters (RFC 9072)
        (plen,) = struct.unpack_from(">H", data, i + 1)
        i += 3
        wide = True
    else:
        wide = False
    p_end = i + plen
    if p_end > at + length:
        msg = "OPEN parameters overrun"
        raise ValueError(msg)
    caps: dict[int, list[bytes]] = {}
    while i < p_end:
        ptype = data[i]
        if wide:
            (pl,) = struct.unpack_from(">H", data, i + 1)
            i += 3
        else:
            pl = data[i + 1]
            i += 2
        if i + pl > p_end:
            msg = "OPEN parameter overruns"
            raise ValueError(msg)
        if ptype == 2:  # capabilities
            j, c_end = i, i + pl
            while j + 2 <= c_end:
                code, cl = data[j], data[j + 1]
                caps.setdefault(code, []).append(data[j + 2 : j + 2 + cl])
                j += 2 + cl
        i += pl
    return length, caps


def _addpath_pairs(caps: dict[int, list[bytes]], direction: int) -> set[tuple[int, int]]:
    """(AFI, SAFI) pairs whose ADD-PATH capability includes ``direction`` (1 receive, 2 send)."""
    out: set[tuple[int, int]] = set()
    for value in caps.get(CAP_ADD_PATH, []):
        for j in range(0, len(value) - 3, 4):
            afi, safi, mode = struct.unpack_from(">HBB", value, j)
            if mode & direction:
                out.add((afi, safi))
    return out


def _tlvs(
    data: bytes, at: int, end: int, *, numbers: frozenset[int] = frozenset()
) -> tuple[tuple[int, int | str], ...]:
    """Information TLVs: (type, text), or (type, number) for the types in ``numbers``."""
    out: list[tuple[int, int | str]] = []
    while at + 4 <= end:
        kind, length = struct.unpack_from(">HH", data, at)
        value = data[at + 4 : min(end, at + 4 + length)]
        at += 4 + length
        if kind in numbers:
            out.append((kind, int.from_bytes(value, "big")))
        else:
            out.append((kind, value.decode("utf-8", "replace")))
    return tuple(out)


@dataclass
class BmpSession:
    """The decoding state of one router's BMP stream (see the module docstring)."""

    attrs: AttributeTable = field(default_factory=AttributeTable)
    #: RIBs seen, in order of first appearance (batches refer to them by index)
    ribs: list[RibKey] = field(default_factory=list)
    sys_name: str = ""
    sys_descr: str = ""
    #: the monitored router's own BGP identifier (Loc-RIB per-peer header, Peer Up sent OPEN)
    router_id: int = 0
    initiated: bool = False
    terminated: bool = False
    #: messages skipped as malformed, by type name
    malformed: dict[str, int] = field(default_factory=dict)
    #: UPDATEs treated as withdraw (RFC 7606)
    treated_as_withdraw: int = 0
    #: messages of unknown type skipped
    unknown: int = 0
    _rib_index: dict[RibKey, int] = field(default_factory=dict, repr=False)
    _peers: dict[PeerKey, _Peer] = field(default_factory=dict, repr=False)
    _buffer: bytes = field(default=b"", repr=False)
    #: first 26 bytes of a per-peer header → what :meth:`_head` found (cleared on Peer Up/Down)
    _heads: dict[bytes, tuple[int, bool, frozenset[tuple[int, int]]]] = field(
        default_factory=dict, repr=False
    )

    def _bad(self, kind: str) -> None:
        self.malformed[kind] = self.malformed.get(kind, 0) + 1

    def _rib(self, key: RibKey) -> int:
        got = self._rib_index.get(key)
        if got is None:
            got = len(self.ribs)
            self.ribs.append(key)
            self._rib_index[key] = got
        return got

    def feed(self, data: bytes) -> BmpBatch:
        """Frame and decode every complete message of what arrived; keep the rest.

        Raises :class:`BmpSessionError` when the framing is lost.

        Examples
        --------
        >>> from flowmatrix.routing.testing import bgp_update, bmp_route_monitoring, nlri
        >>> update = bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")], rts=["65000:1"])
        >>> session = BmpSession()
        >>> batch = session.feed(bmp_route_monitoring(update, peer="192.0.2.2"))
        >>> len(batch), session.ribs[0].kind, sorted(session.attrs.rows[0].route_targets)
        (1, 'pre', ['65000:1'])
        """
        buf = self._buffer + data if self._buffer else bytes(data)
        size = len(buf)
        at = 0
        regions: list[NlriRegion] = []
        region_rib: list[int] = []
        region_time: list[int] = []
        events: list[tuple[int, BmpEvent]] = []  # (regions before it, event)
        counts = [0] * (len(MESSAGE_NAMES) + 1)
        unpack_common = _COMMON.unpack_from
        while size - at >= 6:
            version, length, kind = unpack_common(buf, at)
            if version != BMP_VERSION or length < 6 or length > MAX_MESSAGE:
                self._buffer = b""
                msg = f"BMP common header: version {version}, length {length}, type {kind}"
                raise BmpSessionError(msg)
            end = at + length
            if end > size:
                break
            body = at + 6
            at = end
            if kind > ROUTE_MIRRORING:
                self.unknown += 1
                counts[-1] += 1
                continue
            counts[kind] += 1
            if kind == ROUTE_MONITORING:
                self._route_monitoring(buf, body, end, regions, region_rib, region_time)
            elif kind == ROUTE_MIRRORING:
                continue
            else:
                event = self._event(kind, buf, body, end)
                if event is not None:
                    events.append((len(regions), event))
        self._buffer = buf[at:]
        return self._batch(buf, regions, region_rib, region_time, events, counts)

    def _route_monitoring(
        self,
        buf: bytes,
        at: int,
        end: int,
        regions: list[NlriRegion],
        region_rib: list[int],
        region_time: list[int],
    ) -> None:
        if end - at < PEER_HEADER + BGP_HEADER + 4:
            self._bad("route_monitoring")
            return
        u = at + PEER_HEADER
        (blen,) = struct.unpack_from(">H", buf, u + 16)
        if buf[u + 18] != BGP_UPDATE or u + blen != end or blen < BGP_HEADER + 4:
            self._bad("route_monitoring")
            return
        # peer type, flags, distinguisher and address decide the RIB: looked up once per peer
        head = buf[at : at + 26]
        known = self._heads.get(head)
        if known is None:
            known = self._head(buf, at)
            self._heads[head] = known
        rib, as4, addpath = known
        sec, usec = _TIME.unpack_from(buf, at + 34)
        try:
            found, withdraw = parse_update(
                buf, u + BGP_HEADER, end, as4=as4, addpath=addpath, attrs=self.attrs
            )
        except (UpdateError, IndexError, struct.error):
            self._bad("update")
            return
        if withdraw:
            self.treated_as_withdraw += 1
        t = sec * 1000 + usec // 1000
        regions += found
        region_rib += [rib] * len(found)
        region_time += [t] * len(found)

    def _head(self, buf: bytes, at: int) -> tuple[int, bool, frozenset[tuple[int, int]]]:
        """(RIB index, 4-byte ASNs, ADD-PATH families) of a Route Monitoring per-peer header."""
        ptype, flags, dist, addr, _, bgp_id, _, _ = _PEER.unpack_from(buf, at)
        peer_key: PeerKey = (ptype, dist, _peer_address(flags, addr))
        peer = self._peers.get(peer_key)
        addpath = peer.addpath if peer is not None else frozenset()
        if ptype == PEER_LOC_RIB:
            self.router_id = bgp_id
            return self._rib(RibKey(peer_key, "loc")), True, addpath
        post = bool(flags & FLAG_L)
        kind: RibKind = (
            ("out-post" if post else "out-pre") if flags & FLAG_O else ("post" if post else "pre")
        )
        return self._rib(RibKey(peer_key, kind)), not flags & FLAG_A, addpath

    def _event(self, kind: int, buf: bytes, at: int, end: int) -> BmpEvent | None:
        try:
            if kind == INITIATION:
                info = _tlvs(buf, at, end)
                for code, value in info:
                    if code == INFO_SYS_NAME:
                        self.sys_name = str(value)
                    elif code == INFO_SYS_DESCR:
                        self.sys_descr = str(value)
                self.initiated = True
                return BmpEvent("initiation", 0, info=info)
            if kind == TERMINATION:
                self.terminated = True
                # Termination TLV 1 is a 2-byte reason code (RFC 7854 §4.5)
                info = _tlvs(buf, at, end, numbers=frozenset({1}))
                return BmpEvent("termination", 0, info=info)
            if end - at < PEER_HEADER:
                self._bad(MESSAGE_NAMES[kind])
                return None
            ptype, flags, dist, addr, peer_as, bgp_id, sec, usec = _PEER.unpack_from(buf, at)
            peer_key: PeerKey = (ptype, dist, _peer_address(flags, addr))
            t = sec * 1000 + usec // 1000
            b = at + PEER_HEADER
            if kind == PEER_UP:
                if end - b < 20:
                    msg = "Peer Up cut"
                    raise ValueError(msg)
                sent_len, sent = _open_capabilities(buf, b + 20, end)
                _, received = _open_capabilities(buf, b + 20 + sent_len, end)
                # the monitored router receives what the peer sends: ADD-PATH is in use on
                # an (AFI, SAFI) when the router offered to receive and the peer to send
                addpath = _addpath_pairs(sent, 1) & _addpath_pairs(received, 2)
                as4 = CAP_AS4 in sent and CAP_AS4 in received
                # the sent OPEN's BGP identifier is the monitored router's own
                (self.router_id,) = struct.unpack_from(">I", buf, b + 20 + BGP_HEADER + 5)
                self._peers[peer_key] = _Peer(as4=as4, addpath=frozenset(addpath), up=True)
                self._heads.clear()
                return BmpEvent("peer_up", 0, peer_key, peer_as, bgp_id, t)
            if kind == PEER_DOWN:
                reason = buf[b] if b < end else 0
                self._peers.pop(peer_key, None)
                self._heads.clear()
                return BmpEvent("peer_down", 0, peer_key, peer_as, bgp_id, t, reason)
            if kind == STATISTICS:
                (count,) = struct.unpack_from(">I", buf, b)
                i = b + 4
                stats: list[tuple[int, int | str]] = []
                for _ in range(min(count, 1024)):
                    if i + 4 > end:
                        break
                    stype, slen = struct.unpack_from(">HH", buf, i)
                    raw = buf[i + 4 : min(end, i + 4 + slen)]
                    stats.append((stype, int.from_bytes(raw[-8:], "big") if raw else 0))
                    i += 4 + slen
                return BmpEvent("statistics", 0, peer_key, peer_as, bgp_id, t, info=tuple(stats))
        except (ValueError, IndexError, struct.error):
            self._bad(MESSAGE_NAMES[kind])
        return None

    def _batch(
        self,
        buf: bytes,
        regions: list[NlriRegion],
        region_rib: list[int],
        region_time: list[int],
        events: list[tuple[int, BmpEvent]],
        counts: list[int],
    ) -> BmpBatch:
        routes, bad = decode_nlri(buf, regions) if regions else (RouteColumns.empty(), [])
        for _ in bad:
            self._bad("nlri")
        rib = np.array(region_rib, dtype=np.int32)[routes.region]
        time_ms = np.array(region_time, dtype=np.int64)[routes.region]
        # an event after the first k regions comes after the routes of those regions
        firsts = np.searchsorted(routes.region, [k for k, _ in events], side="left")
        placed = [
            BmpEvent(e.kind, int(f), e.peer, e.peer_as, e.peer_bgp_id, e.time_ms, e.reason, e.info)
            for (_, e), f in zip(events, firsts.tolist(), strict=True)
        ]
        names = [*MESSAGE_NAMES, "unknown"]
        return BmpBatch(
            routes=routes,
            rib=rib,
            time_ms=time_ms,
            events=placed,
            messages={names[k]: c for k, c in enumerate(counts) if c},
        )


def family_of(afi: int) -> int:
    """4 or 6 for AFI 1 or 2."""
    return 4 if afi == AFI_IPV4 else 6 if afi == AFI_IPV6 else 0
