"""Routing state per PE, time-versioned: RD tables, connected/static prefixes, BGP tables.

A PE's tables arrive as one upload taken at ``taken_at``; a later upload
replaces the earlier one from its own ``taken_at`` on. The route reflector's
view (VPN table with route targets, global table) is versioned the same way.
Tables are columnar: prefixes and next hops are integer columns (IPv4 in
``lo`` with family 4, IPv6 as ``hi``/``lo``), strings that repeat (RDs, route
target sets, VRF names) are indices into small per-table lists.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import RoutingError

__all__ = [
    "BGP_DEFAULTS",
    "BgpTable",
    "ConnectedTable",
    "PeTables",
    "RdTable",
    "RoutingState",
    "RrTables",
    "bgp_from_rows",
    "parse_addresses",
    "parse_prefixes",
]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
U8 = npt.NDArray[np.uint8]

_V4_PREFIX = r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}/(3[0-2]|[12]?\d)$"
_V4_ADDR = r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$"


@dataclass(frozen=True, slots=True)
class Parsed:
    """Integer columns of parsed addresses or prefixes; ``bad`` marks unparsable rows."""

    family: U8
    hi: U64
    lo: U64
    length: npt.NDArray[np.int16]
    bad: npt.NDArray[np.bool_]
    #: what is wrong with each bad row ("" for good rows); only filled for bad rows
    why: list[str]


def _v4_words(text: pa.Array) -> U64:
    octets = pc.split_pattern(text, ".")
    flat = pc.cast(pc.list_flatten(octets), pa.uint64()).to_numpy(zero_copy_only=False)
    o = flat.reshape(-1, 4).astype(np.uint64)
    out: U64 = (o[:, 0] << 24) | (o[:, 1] << 16) | (o[:, 2] << 8) | o[:, 3]
    return out


def _parse(texts: pa.Array | list[str], *, prefixes: bool) -> Parsed:
    arr = pa.array(texts, pa.string()) if isinstance(texts, list) else texts
    arr = pc.cast(arr, pa.string())
    arr = pc.fill_null(arr, "")
    n = len(arr)
    family = np.zeros(n, dtype=np.uint8)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    length = np.zeros(n, dtype=np.int16)
    bad = np.zeros(n, dtype=bool)

    good4 = pc.match_substring_regex(arr, _V4_PREFIX if prefixes else _V4_ADDR)
    good4_np = good4.to_numpy(zero_copy_only=False).astype(bool)
    if good4_np.any():
        sel = pc.filter(arr, good4)
        if prefixes:
            parts = pc.split_pattern(sel, "/")
            addr = pc.list_element(parts, 0)
            plen = pc.cast(pc.list_element(parts, 1), pa.int16()).to_numpy(zero_copy_only=False)
        else:
            addr = sel
            plen = np.full(len(sel), 32, dtype=np.int16)
        family[good4_np] = 4
        lo[good4_np] = _v4_words(addr)
        length[good4_np] = plen
    rest = np.flatnonzero(~good4_np)
    reasons: dict[int, str] = {}
    if len(rest):
        texts_rest = arr.take(pa.array(rest)).to_pylist()
        cache: dict[str, tuple[int, int, int] | str] = {}
        for i, t in zip(rest.tolist(), texts_rest, strict=True):
            got = cache.get(t)
            if got is None:
                got = _parse_one(t, prefixes=prefixes)
                cache[t] = got
            if isinstance(got, str):
                bad[i] = True
                reasons[i] = got
            else:
                value, plen6, fam = got
                family[i] = fam
                hi[i] = value >> 64
                lo[i] = value & 0xFFFF_FFFF_FFFF_FFFF
                length[i] = plen6
    if prefixes:
        # host bits set below the prefix length: a typo, not a route
        v4 = family == 4
        m4 = np.where(
            length >= 32,
            np.uint64(0),
            (np.uint64(1) << (np.uint64(32) - np.clip(length, 0, 32).astype(np.uint64)))
            - np.uint64(1),
        )
        host = v4 & ((lo & m4) != 0)
        for i in np.flatnonzero(host).tolist():
            bad[i] = True
            reasons[i] = "host bits set"
    why = [""] * n if reasons else []
    for i, r in reasons.items():
        why[i] = r
    return Parsed(family, hi, lo, length, bad, why)


def _parse_one(text: str, *, prefixes: bool) -> tuple[int, int, int] | str:
    try:
        if prefixes:
            net = ipaddress.ip_network(text, strict=True)
            return int(net.network_address), net.prefixlen, net.version
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        return str(exc) if text else "empty"
    return int(addr), addr.max_prefixlen, addr.version


def parse_prefixes(texts: pa.Array | list[str]) -> Parsed:
    """Integer columns of ``address/length`` texts (IPv4 vectorized, IPv6 per distinct text)."""
    return _parse(texts, prefixes=True)


def parse_addresses(texts: pa.Array | list[str]) -> Parsed:
    """Integer columns of address texts; IPv4 ones get family 4, length 32."""
    return _parse(texts, prefixes=False)


@dataclass(frozen=True, slots=True)
class RdTable:
    """A PE's RD table: CE-facing interface → VRF → RD, and each VRF's route targets."""

    if_index: I64
    interface: list[str]
    #: VRF name per interface, "" = the global table
    vrf: list[str]
    #: RD per interface, "" for the global table
    rd: list[str]
    import_rts: list[frozenset[str]]
    export_rts: list[frozenset[str]]
    #: number the flow records use for the VRF (IPFIX ingressVRFID), 0 = none
    vrf_id: I64
    file: str = ""


@dataclass(frozen=True, slots=True)
class ConnectedTable:
    """A PE's connected and static prefixes per VRF ("" = global), and whether BGP carries them."""

    vrf: list[str]
    family: U8
    hi: U64
    lo: U64
    length: npt.NDArray[np.int16]
    in_bgp: npt.NDArray[np.bool_]
    file: str = ""


@dataclass(frozen=True, slots=True)
class BgpTable:
    """VPNv4/VPNv6 (``RD:prefix/len``) or global BGP paths, one row per path."""

    family: U8
    hi: U64
    lo: U64
    length: npt.NDArray[np.int16]
    #: index into ``rds``; -1 for global routes
    rd: I32
    rds: list[str]
    nh_family: U8
    nh_hi: U64
    nh_lo: U64
    #: index into ``rt_sets``
    rts: I32
    rt_sets: list[frozenset[str]]
    local_pref: I64
    med: I64
    as_path_len: I64
    #: 1 best, 0 not best, -1 not said
    best: I8
    #: 1 in the multipath set, 0 not, -1 not said
    multipath: I8
    #: index into ``originators`` (ORIGINATOR_ID as a PE name); -1 unknown
    originator: I32
    originators: list[str]
    #: VRF the row belongs to in a PE's own table (index into ``vrfs``); -1 when not said
    vrf: I32
    vrfs: list[str]
    file: str = ""

    def __len__(self) -> int:
        return len(self.family)

    @classmethod
    def from_parsed(
        cls,
        prefixes: Parsed,
        next_hops: Parsed,
        *,
        rd: tuple[I32, list[str]],
        route_targets: tuple[I32, list[str]],
        vrf: tuple[I32, list[str]],
        originator: tuple[I32, list[str]],
        local_pref: I64,
        med: I64,
        as_path_len: I64,
        best: I8,
        multipath: I8,
        file: str,
    ) -> BgpTable:
        """A table from parsed prefixes and next hops and (codes, texts) pairs of the rest.

        Route targets come as space-separated texts per distinct set.
        """
        return cls(
            family=prefixes.family,
            hi=prefixes.hi,
            lo=prefixes.lo,
            length=prefixes.length,
            rd=rd[0],
            rds=rd[1],
            nh_family=next_hops.family,
            nh_hi=next_hops.hi,
            nh_lo=next_hops.lo,
            rts=route_targets[0],
            rt_sets=[frozenset(x.split()) for x in route_targets[1]],
            local_pref=local_pref,
            med=med,
            as_path_len=as_path_len,
            best=best,
            multipath=multipath,
            originator=originator[0],
            originators=originator[1],
            vrf=vrf[0],
            vrfs=vrf[1],
            file=file,
        )

    @classmethod
    def empty(cls) -> BgpTable:
        """A table with no paths."""
        z8 = np.zeros(0, dtype=np.uint8)
        z64 = np.zeros(0, dtype=np.uint64)
        zi = np.zeros(0, dtype=np.int64)
        z32 = np.zeros(0, dtype=np.int32)
        zb = np.zeros(0, dtype=np.int8)
        return cls(
            family=z8,
            hi=z64,
            lo=z64,
            length=np.zeros(0, dtype=np.int16),
            rd=z32,
            rds=[],
            nh_family=z8,
            nh_hi=z64,
            nh_lo=z64,
            rts=z32,
            rt_sets=[],
            local_pref=zi,
            med=zi,
            as_path_len=zi,
            best=zb,
            multipath=zb,
            originator=z32,
            originators=[],
            vrf=z32,
            vrfs=[],
        )


@dataclass(frozen=True, slots=True)
class PeTables:
    """One upload of a PE: RD table, connected/static prefixes, optionally its own VPN table."""

    pe: str
    taken_at_ms: int
    rd: RdTable
    connected: ConnectedTable
    #: the PE's own VPN table (routes per VRF under the local RD); None = use the RR's
    bgp: BgpTable | None = None
    #: the PE's own global table; None = use the RR's
    global_bgp: BgpTable | None = None


@dataclass(frozen=True, slots=True)
class RrTables:
    """One upload of the route reflector's view: VPN paths with route targets, global paths."""

    taken_at_ms: int
    vpn: BgpTable
    global_bgp: BgpTable


@dataclass
class RoutingState:
    """Every table version held, per PE and for the route reflector, over a configuration."""

    config: NetworkConfig
    #: per PE name, versions sorted by ``taken_at_ms``
    pe_versions: dict[str, list[PeTables]] = field(default_factory=dict)
    rr_versions: list[RrTables] = field(default_factory=list)
    #: bumped on every change; compiled lookups check it
    generation: int = 0
    #: the resolver's compilation of this state (``flowmatrix.routing.resolve.Compiled``)
    compiled: object = field(default=None, repr=False, compare=False)

    def add_pe(self, tables: PeTables) -> None:
        """Hold a PE upload; it is in force from its ``taken_at_ms`` until the next one."""
        versions = self.pe_versions.setdefault(tables.pe, [])
        times = [v.taken_at_ms for v in versions]
        at = bisect.bisect_left(times, tables.taken_at_ms)
        if at < len(versions) and versions[at].taken_at_ms == tables.taken_at_ms:
            versions[at] = tables
        else:
            versions.insert(at, tables)
        self.generation += 1

    def add_rr(self, tables: RrTables) -> None:
        """Hold a route reflector upload, in force from its ``taken_at_ms`` on."""
        times = [v.taken_at_ms for v in self.rr_versions]
        at = bisect.bisect_left(times, tables.taken_at_ms)
        if at < len(self.rr_versions) and times[at] == tables.taken_at_ms:
            self.rr_versions[at] = tables
        else:
            self.rr_versions.insert(at, tables)
        self.generation += 1

    def absorb(self, other: RoutingState) -> None:
        """Hold every version ``other`` holds too (a version of the same time replaces ours)."""
        for versions in other.pe_versions.values():
            for tables in versions:
                self.add_pe(tables)
        for rr in other.rr_versions:
            self.add_rr(rr)

    def prune(self, before_ms: int) -> int:
        """Drop versions no lookup at or after ``before_ms`` needs; returns how many went."""
        dropped = 0
        for name, versions in self.pe_versions.items():
            keep = _keep_from(versions, before_ms)
            dropped += keep
            self.pe_versions[name] = versions[keep:]
        keep = _keep_from(self.rr_versions, before_ms)
        dropped += keep
        self.rr_versions = self.rr_versions[keep:]
        if dropped:
            self.generation += 1
        return dropped

    def version_times(self, pe: str) -> list[int]:
        """``taken_at_ms`` of each version held for ``pe``, oldest first."""
        return [v.taken_at_ms for v in self.pe_versions.get(pe, [])]

    def in_force(self, pe: str, at_ms: int) -> PeTables | None:
        """The version of ``pe``'s tables in force at ``at_ms``, None before the first."""
        versions = self.pe_versions.get(pe, [])
        i = bisect.bisect_right([v.taken_at_ms for v in versions], at_ms) - 1
        return versions[i] if i >= 0 else None


def _keep_from(versions: list[PeTables] | list[RrTables], before_ms: int) -> int:
    """How many leading versions are superseded at ``before_ms`` (the one in force stays)."""
    times = [v.taken_at_ms for v in versions]
    return max(0, bisect.bisect_right(times, before_ms) - 1)


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    distinct = list(dict.fromkeys(v for v in values if v))
    index = {v: i for i, v in enumerate(distinct)}
    return np.array([index.get(v, -1) for v in values], dtype=np.int32), distinct


def _mark(value: object) -> int:
    return -1 if value is None else int(bool(value))


#: path attributes a table may leave out, and the value BGP gives their absence
#: (no LOCAL_PREF: the usual default 100; no MED: 0; no AS_PATH: an empty path)
BGP_DEFAULTS: Mapping[str, int] = {"local_pref": 100, "med": 0, "as_path_len": 0}


def bgp_from_rows(rows: Sequence[Mapping[str, object]], *, file: str = "<rows>") -> BgpTable:
    """A BGP table from dicts: ``prefix``, ``next_hop`` and optionally ``rd``, ``rts``
    (space-separated), ``local_pref``, ``med``, ``as_path_len``, ``best``, ``multipath``
    (True/False/None), ``originator``, ``vrf``."""
    p = parse_prefixes([str(r["prefix"]) for r in rows])
    nh = parse_addresses([str(r["next_hop"]) for r in rows])
    if p.bad.any() or nh.bad.any():
        bad = int(np.argmax(p.bad | nh.bad))
        msg = f"{file}: path {bad + 1}: bad prefix or next hop"
        raise RoutingError(msg)

    def ints(key: str, default: int) -> np.ndarray:
        return np.array([int(str(r.get(key, default))) for r in rows], dtype=np.int64)

    def codes(key: str) -> tuple[I32, list[str]]:
        return _codes([str(r.get(key, "")) for r in rows])

    return BgpTable.from_parsed(
        p,
        nh,
        rd=codes("rd"),
        route_targets=codes("rts"),
        vrf=codes("vrf"),
        originator=codes("originator"),
        local_pref=ints("local_pref", BGP_DEFAULTS["local_pref"]),
        med=ints("med", BGP_DEFAULTS["med"]),
        as_path_len=ints("as_path_len", BGP_DEFAULTS["as_path_len"]),
        best=np.array([_mark(r.get("best")) for r in rows], dtype=np.int8),
        multipath=np.array([_mark(r.get("multipath")) for r in rows], dtype=np.int8),
        file=file,
    )
