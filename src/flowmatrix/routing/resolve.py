"""Resolve each flow's egress PE: interface → VRF → RD, LPM in the VRF's view → next hop → PE.

The state's tables are compiled once per change into one :class:`Lpm` over
every *view* (the routes one VRF of one PE version sees) plus arrays mapping
flows to table versions, interfaces to VRFs and next hops to PEs; a batch is
then resolved with a handful of vectorized searches and no per-flow Python,
once per distinct lookup (flows of one PE, interface and destination between
the same two table versions resolve alike) rather than once per flow.

A view is the PE's own VPN table rows of that VRF when the PE uploaded one,
otherwise the route reflector's paths whose route targets the VRF imports
(plus the PE's own paths under the VRF's RD, as on a hub that does not import
its own export target). Several paths for one prefix go through the path
decision: paths marked not-best (and not multipath) are dropped, then the
highest LOCAL_PREF, shortest AS path and lowest MED win; paths still tied
form a multipath set that splits the flow equally.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import Counter, Gauge

from flowmatrix.addr import format_addresses, format_prefixes
from flowmatrix.routing.lpm import Lpm, search_sorted
from flowmatrix.routing.tables import BgpTable, PeTables, RoutingState, parse_addresses

__all__ = [
    "REASONS",
    "RESOLVED_REASONS",
    "UNRESOLVED",
    "Explanation",
    "PeSummary",
    "Resolution",
    "compile_state",
    "egress_unresolved_total",
    "explain",
    "resolve_egress",
    "routing_view_age_seconds",
    "summarize",
    "unknown_next_hops",
    "watch_view_age",
]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U64 = npt.NDArray[np.uint64]

#: reason codes, index = the ``reason`` column's value
REASONS = (
    "bgp",  # longest match in the VRF's BGP view, next hop → PE
    "local",  # connected/static prefix of the VRF not carried in BGP → the ingress PE
    "record_next_hop",  # the flow record's own BGP next hop (IE 18/63) mapped to a PE
    "no_tables",  # no table version of the ingress PE in force at the flow's start
    "no_vrf",  # the input interface (or ingress VRF id) is not in the RD table
    "no_route",  # no prefix of the VRF's view (or the global table) covers the destination
    "unknown_next_hop",  # the best path's next hop is no PE loopback and no external next hop
)
#: reasons under which the egress PE is known
RESOLVED_REASONS = frozenset({0, 1, 2})
#: egress name of flows that could not be resolved
UNRESOLVED = "unresolved"
_BGP, _LOCAL, _RECORD, _NO_TABLES, _NO_VRF, _NO_ROUTE, _UNKNOWN_NH = range(7)

#: flows (weighted by multipath share) whose egress stayed unresolved, per reason
egress_unresolved_total = Counter(
    "egress_unresolved_total", "Flows whose egress PE could not be resolved.", ["reason"]
)
#: seconds since the view a PE resolves with last changed (computed when scraped)
routing_view_age_seconds = Gauge(
    "routing_view_age_seconds",
    "Seconds since the routing view a PE resolves with last changed (table files or BMP).",
    ["pe"],
)


def _age(clock: Callable[[], float], since: float) -> float:
    return clock() - since


def watch_view_age(
    state: RoutingState, pes: Iterable[str], *, clock: Callable[[], float] = time.time
) -> None:
    """Point ``routing_view_age_seconds{pe}`` at the newest version each PE resolves with.

    That is the PE's newest table upload, or the route reflector's newest
    version when it is newer and the PE has no VPN table of its own. The gauge
    is computed when scraped, so the age grows between versions.
    """
    rr = state.rr_versions[-1] if state.rr_versions else None
    for pe in pes:
        versions = state.pe_versions.get(pe, [])
        times = [v.taken_at_ms for v in versions[-1:]]
        if rr is not None and (not versions or versions[-1].bgp is None):
            times.append(rr.taken_at_ms)
        if times:
            routing_view_age_seconds.labels(pe=pe).set_function(
                partial(_age, clock, max(times) / 1000)
            )


_MAPPED = 0xFFFF_0000_0000  # ::ffff:0:0/96, 6VPE's IPv4-mapped next hops (low word)
#: low 44 bits of a version key: the time the version was taken (ms)
_TIME_MASK = (1 << 44) - 1
#: a batch with at least this many flows is resolved once per distinct lookup
#: (:func:`_distinct_flows`) ...
_DISTINCT_MIN = 256
#: ... when its distinct lookups are at most this share of its flows
_DISTINCT_SHARE = 0.75


@dataclass(frozen=True, slots=True)
class Resolution:
    """Egress columns for a batch: one row per flow, or per path of a multipath set.

    ``flow`` indexes the input batch; a flow split over k paths has k rows with
    ``share`` 1/k each, so volumes times ``share`` sum back to the flow's.
    """

    flow: I64
    #: egress PE index into ``pe_names``; -1 = unresolved
    egress_pe: I32
    #: egress service node index into ``node_names``; -1 = unknown
    egress_node: I32
    #: VRF index into ``vrf_names``; -1 = global table or none
    vrf: I32
    #: RD index into ``rd_names``; -1 = none
    rd: I32
    #: index into :data:`REASONS`
    reason: npt.NDArray[np.uint8]
    share: npt.NDArray[np.float64]
    #: length of the matching prefix; -1 when none matched
    prefix_len: npt.NDArray[np.int16]
    pe_names: list[str]
    node_names: list[str]
    vrf_names: list[str]
    rd_names: list[str]

    def __len__(self) -> int:
        return len(self.flow)

    def _names(self, index: npt.NDArray[np.integer], names: list[str], none: str) -> pa.Array:
        table = pa.array([*names, none], pa.string())
        return table.take(pa.array(np.where(index >= 0, index, len(names))))

    def egress_pe_name(self) -> pa.Array:
        """Egress PE names, ``unresolved`` where none."""
        return self._names(self.egress_pe, self.pe_names, UNRESOLVED)

    def egress_node_name(self) -> pa.Array:
        """Egress service node names, ``unresolved`` where none."""
        return self._names(self.egress_node, self.node_names, UNRESOLVED)

    def vrf_name(self) -> pa.Array:
        """VRF names, empty for the global table."""
        return self._names(self.vrf, self.vrf_names, "")

    def rd_name(self) -> pa.Array:
        """Route distinguishers, empty for the global table."""
        return self._names(self.rd, self.rd_names, "")

    def reason_name(self) -> pa.Array:
        """Reason texts (see :data:`REASONS`)."""
        return pa.array(list(REASONS), pa.string()).take(pa.array(self.reason))

    @property
    def resolved(self) -> npt.NDArray[np.bool_]:
        """True where the egress PE is known."""
        return self.egress_pe >= 0


@dataclass
class _Blocks:
    """Path rows gathered per view before the path decision."""

    view: list[I64]
    table: list[BgpTable]
    rows: list[I64]
    pe: list[I32]


@dataclass(frozen=True, slots=True)
class Compiled:
    """The state's tables compiled for vectorized resolution (rebuilt when the state changes)."""

    generation: int
    pe_names: list[str]
    pe_node: I32
    node_names: list[str]
    nh_lpm: Lpm
    nh_pe: I32
    ver_key: U64
    ver_pe: I64
    versions: list[PeTables]
    rr_times: I64
    if_key: U64
    if_slot: I64
    vid_key: U64
    vid_slot: I64
    slot_vrf: I32
    slot_rd: I32
    slot_pe: I32
    slot_ver: I64
    slot_local: I64
    #: view per slot and route reflector version (column 0 when there is none)
    slot_view: I64
    #: the slot's view is the PE's own table, whatever the route reflector's version
    slot_fixed: npt.NDArray[np.bool_]
    vrf_names: list[str]
    rd_names: list[str]
    lpm: Lpm
    #: connected/static prefixes not in BGP; its labels are entries from ``local_base`` on
    local_lpm: Lpm
    local_base: int
    entry_view: I64
    entry_family: npt.NDArray[np.uint8]
    entry_hi: U64
    entry_lo: U64
    entry_len: npt.NDArray[np.int16]
    entry_start: I64
    entry_count: I64
    path_pe: I32
    path_nh_family: npt.NDArray[np.uint8]
    path_nh_hi: U64
    path_nh_lo: U64
    views: int


def _nh_table(state: RoutingState, pe_index: dict[str, int]) -> tuple[Lpm, I32]:
    fam: list[int] = []
    hi: list[int] = []
    lo: list[int] = []
    ln: list[int] = []
    pe: list[int] = []

    def add(address: ipaddress.IPv4Address | ipaddress.IPv6Address, length: int, p: int) -> None:
        value = int(address)
        fam.append(address.version)
        hi.append(value >> 64)
        lo.append(value & 0xFFFF_FFFF_FFFF_FFFF)
        ln.append(length)
        pe.append(p)

    for p in state.config.pes:
        i = pe_index[p.name]
        add(p.loopback, p.loopback.max_prefixlen, i)
        if p.loopback.version == 4:
            add(ipaddress.IPv6Address(_MAPPED | int(p.loopback)), 128, i)
        if p.loopback6 is not None:
            add(p.loopback6, 128, i)
    for hop in state.config.external_next_hops:
        if hop.pe in pe_index:
            add(hop.prefix.network_address, hop.prefix.prefixlen, pe_index[hop.pe])
    lpm = Lpm.build(
        view=np.zeros(len(fam), dtype=np.int64),
        family=np.array(fam, dtype=np.uint8),
        hi=np.array(hi, dtype=np.uint64),
        lo=np.array(lo, dtype=np.uint64),
        length=np.array(ln, dtype=np.int16),
    )
    return lpm, np.array(pe, dtype=np.int32)


def _next_hop_pe(c_lpm: Lpm, nh_pe: I32, family: npt.NDArray[np.integer], hi: U64, lo: U64) -> I32:
    label, _ = c_lpm.lookup(view=np.zeros(len(family), dtype=np.int64), family=family, hi=hi, lo=lo)
    return np.where(label >= 0, nh_pe[np.maximum(label, 0)] if len(nh_pe) else -1, -1).astype(
        np.int32
    )


def compile_state(state: RoutingState) -> Compiled:
    """Compile every table version the state holds into one vectorized resolver."""
    names = [p.name for p in state.config.pes]
    names += sorted(n for n in state.pe_versions if n not in set(names))
    pe_index = {n: i for i, n in enumerate(names)}
    node_names = sorted({p.service_node for p in state.config.pes})
    node_index = {n: i for i, n in enumerate(node_names)}
    pe_node = np.full(len(names), -1, dtype=np.int32)
    for p in state.config.pes:
        pe_node[pe_index[p.name]] = node_index[p.service_node]
    nh_lpm, nh_pe = _nh_table(state, pe_index)

    table_nh: dict[int, I32] = {}

    def nh_of(table: BgpTable) -> I32:
        got = table_nh.get(id(table))
        if got is None:
            got = _next_hop_pe(nh_lpm, nh_pe, table.nh_family, table.nh_hi, table.nh_lo)
            zero = (table.nh_hi == 0) & (table.nh_lo == 0)
            got = np.where(zero, -2, got).astype(np.int32)  # -2: the table owner itself
            table_nh[id(table)] = got
        return got

    versions: list[PeTables] = []
    ver_pe: list[int] = []
    for name in sorted(state.pe_versions, key=lambda n: pe_index[n]):
        for v in state.pe_versions[name]:
            versions.append(v)
            ver_pe.append(pe_index[name])
    ver_pe_arr = np.array(ver_pe, dtype=np.int64)
    ver_time = np.array([v.taken_at_ms for v in versions], dtype=np.int64)
    ver_key = (ver_pe_arr.astype(np.uint64) << np.uint64(44)) | ver_time.astype(np.uint64)
    rr_times = np.array([r.taken_at_ms for r in state.rr_versions], dtype=np.int64)
    n_rr = max(1, len(state.rr_versions))

    blocks = _Blocks([], [], [], [])
    local_blocks: list[tuple[int, PeTables, I64, int]] = []
    n_views = 0

    def new_view() -> int:
        nonlocal n_views
        n_views += 1
        return n_views - 1

    def add_block(view: int, table: BgpTable, rows: I64, owner: int) -> None:
        if not len(rows):
            return
        nh = nh_of(table)[rows]
        blocks.view.append(np.full(len(rows), view, dtype=np.int64))
        blocks.table.append(table)
        blocks.rows.append(rows)
        blocks.pe.append(np.where(nh == -2, owner, nh).astype(np.int32))

    # route reflector: index each version's VPN rows by route target set and by RD once
    rr_index: list[tuple[I64, I64, I64, I64, I32]] = []
    rr_rt_codes: list[dict[str, list[int]]] = []
    rr_rd_codes: list[dict[str, int]] = []
    for r in state.rr_versions:
        by_rt: dict[str, list[int]] = {}
        for k, rts in enumerate(r.vpn.rt_sets):
            for rt in rts:
                by_rt.setdefault(rt, []).append(k)
        rr_rt_codes.append(by_rt)
        rr_rd_codes.append({rd: k for k, rd in enumerate(r.vpn.rds)})
        vpn = r.vpn
        order_rt = np.argsort(vpn.rts, kind="stable").astype(np.int64)
        bounds_rt = np.searchsorted(vpn.rts[order_rt], np.arange(len(vpn.rt_sets) + 1))
        order_rd = np.argsort(vpn.rd, kind="stable").astype(np.int64)
        bounds_rd = np.searchsorted(vpn.rd[order_rd], np.arange(len(vpn.rds) + 1))
        origin_names = np.array(
            [pe_index.get(o, -1) for o in vpn.originators] + [-1], dtype=np.int32
        )
        origin = np.where(
            vpn.originator >= 0, origin_names[vpn.originator], np.maximum(nh_of(vpn), -1)
        ).astype(np.int32)
        rr_index.append(
            (
                order_rt,
                np.asarray(bounds_rt, dtype=np.int64),
                order_rd,
                np.asarray(bounds_rd, dtype=np.int64),
                origin,
            )
        )
    rr_views: dict[tuple[int, object], int] = {}

    def rr_view(ri: int, imports: frozenset[str], own: tuple[int, str] | None) -> int:
        key = (ri, (imports, own))
        got = rr_views.get(key)
        if got is not None:
            return got
        view = new_view()
        rr_views[key] = view
        vpn = state.rr_versions[ri].vpn
        order_rt, bounds_rt, order_rd, bounds_rd, origin = rr_index[ri]
        codes = sorted({k for rt in imports for k in rr_rt_codes[ri].get(rt, ())})
        parts = [order_rt[bounds_rt[k] : bounds_rt[k + 1]] for k in codes]
        if own is not None and own[1] in rr_rd_codes[ri]:
            k = rr_rd_codes[ri][own[1]]
            mine = order_rd[bounds_rd[k] : bounds_rd[k + 1]]
            parts.append(mine[origin[mine] == own[0]])
        rows = _sorted_unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        add_block(view, vpn, rows, -1)
        return view

    rr_global: dict[int, int] = {}

    def rr_global_view(ri: int) -> int:
        if ri not in rr_global:
            rr_global[ri] = new_view()
            g = state.rr_versions[ri].global_bgp
            add_block(rr_global[ri], g, np.arange(len(g), dtype=np.int64), -1)
        return rr_global[ri]

    vrf_index: dict[str, int] = {}
    rd_index: dict[str, int] = {}
    slot_vrf: list[int] = []
    slot_rd: list[int] = []
    slot_pe: list[int] = []
    slot_ver: list[int] = []
    slot_local: list[int] = []
    slot_view: list[list[int]] = []
    slot_fixed: list[bool] = []
    if_keys: list[int] = []
    if_slots: list[int] = []
    vid_keys: list[int] = []
    vid_slots: list[int] = []
    for g, v in enumerate(versions):
        pe = ver_pe[g]
        rdt = v.rd
        conn = v.connected
        local_rows: dict[str, list[int]] = {}
        for i, (name, carried) in enumerate(zip(conn.vrf, conn.in_bgp.tolist(), strict=True)):
            if not carried:
                local_rows.setdefault(name, []).append(i)
        vrfs = list(dict.fromkeys(rdt.vrf))
        slots: dict[str, int] = {}
        for vrf in vrfs:
            first = rdt.vrf.index(vrf)
            s = len(slot_vrf)
            slots[vrf] = s
            rd = rdt.rd[first]
            slot_vrf.append(vrf_index.setdefault(vrf, len(vrf_index)) if vrf else -1)
            slot_rd.append(rd_index.setdefault(rd, len(rd_index)) if rd else -1)
            slot_pe.append(pe)
            slot_ver.append(g)
            row_views: list[int]
            fixed = False  # True: the view does not depend on the route reflector's version
            if not vrf:
                if v.global_bgp is not None:
                    view = new_view()
                    add_block(view, v.global_bgp, np.arange(len(v.global_bgp)), pe)
                    row_views = [view] * n_rr
                    fixed = True
                else:
                    row_views = [rr_global_view(ri) for ri in range(len(state.rr_versions))]
            elif v.bgp is not None:
                view = new_view()
                b = v.bgp
                if len(b.vrfs):
                    code = b.vrfs.index(vrf) if vrf in b.vrfs else -2
                    rows = np.flatnonzero(b.vrf == code)
                else:
                    code = b.rds.index(rd) if rd in b.rds else -2
                    rows = np.flatnonzero(b.rd == code)
                add_block(view, b, rows.astype(np.int64), pe)
                row_views = [view] * n_rr
                fixed = True
            else:
                imports = rdt.import_rts[first]
                own = None if rdt.export_rts[first] & imports else (pe, rd)
                row_views = [rr_view(ri, imports, own) for ri in range(len(state.rr_versions))]
            slot_view.append(row_views or [-1] * n_rr)
            slot_fixed.append(fixed)
            rows_l = np.array(local_rows.get(vrf, []), dtype=np.int64)
            if len(rows_l):
                lv = new_view()
                local_blocks.append((lv, v, rows_l, pe))
                slot_local.append(lv)
            else:
                slot_local.append(-1)
        for i, x in enumerate(rdt.if_index.tolist()):
            if_keys.append((g << 32) | (x & 0xFFFF_FFFF))
            if_slots.append(slots[rdt.vrf[i]])
            vid = int(rdt.vrf_id[i])
            if vid > 0:
                vid_keys.append((g << 32) | vid)
                vid_slots.append(slots[rdt.vrf[i]])

    # the path decision, for every view at once
    if blocks.rows:
        pview = np.concatenate(blocks.view)
        fam = np.concatenate([t.family[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        hi = np.concatenate([t.hi[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        lo = np.concatenate([t.lo[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        ln = np.concatenate([t.length[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        lp = np.concatenate(
            [t.local_pref[r] for t, r in zip(blocks.table, blocks.rows, strict=True)]
        )
        asp = np.concatenate(
            [t.as_path_len[r] for t, r in zip(blocks.table, blocks.rows, strict=True)]
        )
        med = np.concatenate([t.med[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        best = np.concatenate([t.best[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        mp = np.concatenate(
            [t.multipath[r] for t, r in zip(blocks.table, blocks.rows, strict=True)]
        )
        nf = np.concatenate(
            [t.nh_family[r] for t, r in zip(blocks.table, blocks.rows, strict=True)]
        )
        nhh = np.concatenate([t.nh_hi[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        nhl = np.concatenate([t.nh_lo[r] for t, r in zip(blocks.table, blocks.rows, strict=True)])
        ppe = np.concatenate(blocks.pe)
        keep = (best != 0) | (mp == 1)
        sel = np.flatnonzero(keep)
        order = sel[
            np.lexsort(
                (
                    nhl[sel],
                    nhh[sel],
                    med[sel],
                    asp[sel],
                    -lp[sel],
                    ln[sel],
                    lo[sel],
                    hi[sel],
                    fam[sel],
                    pview[sel],
                )
            )
        ]
        n = len(order)
        newgrp = np.ones(n, dtype=bool)
        if n:
            same = np.ones(n - 1, dtype=bool)
            for col in (pview, fam, hi, lo, ln):
                cs = col[order]
                same &= cs[1:] == cs[:-1]
            newgrp[1:] = ~same
        grp = np.cumsum(newgrp) - 1
        heads = np.flatnonzero(newgrp)
        lead = order[heads][grp]
        tie = (lp[order] == lp[lead]) & (asp[order] == asp[lead]) & (med[order] == med[lead])
        dup = np.zeros(n, dtype=bool)
        if n:
            dup[1:] = (
                ~newgrp[1:]
                & (nhh[order][1:] == nhh[order][:-1])
                & (nhl[order][1:] == nhl[order][:-1])
            )
        paths = order[tie & ~dup]
        pgrp = grp[tie & ~dup]
        count = np.bincount(pgrp, minlength=len(heads)).astype(np.int64)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        e_view, e_fam, e_hi, e_lo, e_len = (
            pview[order[heads]],
            fam[order[heads]],
            hi[order[heads]],
            lo[order[heads]],
            ln[order[heads]],
        )
        p_pe, p_nf, p_nh, p_nl = ppe[paths], nf[paths], nhh[paths], nhl[paths]
    else:
        e_view = np.zeros(0, dtype=np.int64)
        e_fam = np.zeros(0, dtype=np.uint8)
        e_hi = e_lo = np.zeros(0, dtype=np.uint64)
        e_len = np.zeros(0, dtype=np.int16)
        start = count = np.zeros(0, dtype=np.int64)
        p_pe = np.zeros(0, dtype=np.int32)
        p_nf = np.zeros(0, dtype=np.uint8)
        p_nh = p_nl = np.zeros(0, dtype=np.uint64)

    # connected/static prefixes not in BGP: one path each, to the PE itself
    lv_view = [np.full(len(r), lv, dtype=np.int64) for lv, _, r, _ in local_blocks]
    l_fam = [v.connected.family[r] for _, v, r, _ in local_blocks]
    l_hi = [v.connected.hi[r] for _, v, r, _ in local_blocks]
    l_lo = [v.connected.lo[r] for _, v, r, _ in local_blocks]
    l_len = [v.connected.length[r] for _, v, r, _ in local_blocks]
    l_pe = [np.full(len(r), pe, dtype=np.int32) for _, _, r, pe in local_blocks]
    n_local = sum(len(x) for x in lv_view)
    base = len(p_pe)
    local_base = len(e_view)
    e_view = np.concatenate([e_view, *lv_view]).astype(np.int64)
    e_fam = np.concatenate([e_fam, *l_fam]).astype(np.uint8)
    e_hi = np.concatenate([e_hi, *l_hi]).astype(np.uint64)
    e_lo = np.concatenate([e_lo, *l_lo]).astype(np.uint64)
    e_len = np.concatenate([e_len, *l_len]).astype(np.int16)
    start = np.concatenate([start, base + np.arange(n_local, dtype=np.int64)])
    count = np.concatenate([count, np.ones(n_local, dtype=np.int64)])
    p_pe = np.concatenate([p_pe, *l_pe]).astype(np.int32)
    p_nf = np.concatenate([p_nf, np.zeros(n_local, dtype=np.uint8)])
    p_nh = np.concatenate([p_nh, np.zeros(n_local, dtype=np.uint64)])
    p_nl = np.concatenate([p_nl, np.zeros(n_local, dtype=np.uint64)])

    # BGP views in one big table; the few local prefixes per VRF in a small one that
    # stays in cache (only flows whose VRF has any are searched there)
    lb = local_base
    lpm = Lpm.build(
        view=e_view[:lb], family=e_fam[:lb], hi=e_hi[:lb], lo=e_lo[:lb], length=e_len[:lb]
    )
    local_lpm = Lpm.build(
        view=e_view[lb:], family=e_fam[lb:], hi=e_hi[lb:], lo=e_lo[lb:], length=e_len[lb:]
    )
    if_key = np.array(if_keys, dtype=np.uint64)
    if_order = np.argsort(if_key)
    vid_key = np.array(vid_keys, dtype=np.uint64)
    vid_order = np.argsort(vid_key)
    return Compiled(
        generation=state.generation,
        pe_names=names,
        pe_node=pe_node,
        node_names=node_names,
        nh_lpm=nh_lpm,
        nh_pe=nh_pe,
        ver_key=ver_key,
        ver_pe=ver_pe_arr,
        versions=versions,
        rr_times=rr_times,
        if_key=if_key[if_order],
        if_slot=np.array(if_slots, dtype=np.int64)[if_order],
        vid_key=vid_key[vid_order],
        vid_slot=np.array(vid_slots, dtype=np.int64)[vid_order],
        slot_vrf=np.array(slot_vrf, dtype=np.int32),
        slot_rd=np.array(slot_rd, dtype=np.int32),
        slot_pe=np.array(slot_pe, dtype=np.int32),
        slot_ver=np.array(slot_ver, dtype=np.int64),
        slot_local=np.array(slot_local, dtype=np.int64),
        slot_view=np.array(slot_view, dtype=np.int64).reshape(len(slot_vrf), n_rr),
        slot_fixed=np.array(slot_fixed, dtype=bool),
        vrf_names=list(vrf_index),
        rd_names=list(rd_index),
        lpm=lpm,
        local_lpm=local_lpm,
        local_base=local_base,
        entry_view=e_view,
        entry_family=e_fam,
        entry_hi=e_hi,
        entry_lo=e_lo,
        entry_len=e_len,
        entry_start=start,
        entry_count=count,
        path_pe=p_pe,
        path_nh_family=p_nf,
        path_nh_hi=p_nh,
        path_nh_lo=p_nl,
        views=n_views,
    )


def _compiled(state: RoutingState) -> Compiled:
    """The state's compilation, rebuilt when the state changed since it was made."""
    got = state.compiled
    if not isinstance(got, Compiled) or got.generation != state.generation:
        state.compiled = None  # free the old one before building the new
        got = compile_state(state)
        state.compiled = got
    return got


def _sorted_unique(a: I64) -> I64:
    """Sorted distinct values (``np.unique`` without its hashing pass)."""
    a = np.sort(a)
    keep = np.ones(len(a), dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


def _find(keys: U64, sorted_keys: U64) -> I64:
    """Position of each key in a sorted array, -1 where absent."""
    if not len(sorted_keys):
        return np.full(len(keys), -1, dtype=np.int64)
    pos = search_sorted(sorted_keys, keys)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, pos, -1).astype(np.int64)


def _pe_indices(c: Compiled, pe: npt.ArrayLike | pa.Array | pa.ChunkedArray) -> I64:
    """PE indices of a column of PE names (or indices already); unknown names → -1."""
    if isinstance(pe, pa.ChunkedArray):
        pe = pe.combine_chunks()
    if isinstance(pe, pa.Array) and not pa.types.is_integer(pe.type):
        enc = pc.dictionary_encode(pc.cast(pe, pa.string()))
    else:
        arr = np.asarray(pe)
        if arr.dtype.kind not in "OUST":
            return arr.astype(np.int64).reshape(-1)
        enc = pc.dictionary_encode(pa.array(arr.astype(str).tolist(), pa.string()))
    index = {n: i for i, n in enumerate(c.pe_names)}
    mapped = np.array([index.get(n, -1) for n in enc.dictionary.to_pylist()] + [-1], np.int64)
    codes = pc.fill_null(enc.indices, len(mapped) - 1).to_numpy(zero_copy_only=False)
    return mapped[np.asarray(codes, dtype=np.int64)]


def resolve_egress(
    tables: RoutingState | Compiled,
    *,
    pe: npt.ArrayLike | pa.Array | pa.ChunkedArray,
    in_if: npt.ArrayLike,
    ip_version: npt.ArrayLike,
    dst_hi: npt.ArrayLike,
    dst_lo: npt.ArrayLike,
    start_ms: npt.ArrayLike,
    ingress_vrf_id: npt.ArrayLike | None = None,
    bgp_next_hop: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    bgp_next_hop_version: npt.ArrayLike | None = None,
) -> Resolution:
    """Egress PE, service node, VRF, RD, reason and multipath share of every flow.

    ``pe`` is the ingress PE (names as a numpy or Arrow column, or indices into
    the configuration's PEs);
    ``in_if`` the input ifIndex; destinations are IPv4 in ``dst_lo`` with
    ``ip_version`` 4, IPv6 as ``dst_hi``/``dst_lo``; ``start_ms`` picks the
    table version in force. ``ingress_vrf_id`` (> 0) selects the VRF instead of
    the interface; ``bgp_next_hop`` (hi, lo) is the record's own next hop,
    used where it is not zero and maps to a PE. Unresolved flows are kept,
    with egress -1 and a reason.

    Examples
    --------
    >>> from flowmatrix.routing.testing import two_pe_state
    >>> res = resolve_egress(two_pe_state(), pe=["pe1"], in_if=[101], ip_version=[4],
    ...     dst_hi=[0], dst_lo=[0x0A020001], start_ms=[10])
    >>> res.egress_pe_name().to_pylist(), res.reason_name().to_pylist()
    (['pe2'], ['bgp'])
    """
    c = tables if isinstance(tables, Compiled) else _compiled(tables)
    pe_i = _pe_indices(c, pe)
    flows = _Flows(
        pe=pe_i,
        in_if=np.asarray(in_if, dtype=np.int64).reshape(-1),
        fam=np.asarray(ip_version, dtype=np.uint8).reshape(-1),
        hi=np.asarray(dst_hi, dtype=np.uint64).reshape(-1),
        lo=np.asarray(dst_lo, dtype=np.uint64).reshape(-1),
        t=np.asarray(start_ms, dtype=np.int64).reshape(-1),
        vrf_id=(
            None
            if ingress_vrf_id is None
            else np.asarray(ingress_vrf_id, dtype=np.int64).reshape(-1)
        ),
        next_hop=_next_hops(bgp_next_hop, bgp_next_hop_version, ip_version),
    )
    distinct = _distinct_flows(c, flows)
    if distinct is None:
        res = _resolve(c, flows)
    else:  # resolve one flow of each distinct lookup, then give every flow its lookup's rows
        first, which = distinct
        res = _expand(_resolve(c, flows.take(first)), which)
    _count_unresolved(res)
    return res


@dataclass(frozen=True, slots=True)
class _Flows:
    """The input columns of :func:`resolve_egress`, one row per flow."""

    pe: I64
    in_if: I64
    fam: npt.NDArray[np.uint8]
    hi: U64
    lo: U64
    t: I64
    vrf_id: I64 | None
    #: the records' own next hops: (family, hi, lo)
    next_hop: tuple[npt.NDArray[np.uint8], U64, U64] | None

    def take(self, rows: I64) -> _Flows:
        """The flows at ``rows``."""
        nh = self.next_hop
        return _Flows(
            self.pe[rows],
            self.in_if[rows],
            self.fam[rows],
            self.hi[rows],
            self.lo[rows],
            self.t[rows],
            None if self.vrf_id is None else self.vrf_id[rows],
            None if nh is None else (nh[0][rows], nh[1][rows], nh[2][rows]),
        )


def _next_hops(
    bgp_next_hop: tuple[npt.ArrayLike, npt.ArrayLike] | None,
    bgp_next_hop_version: npt.ArrayLike | None,
    ip_version: npt.ArrayLike,
) -> tuple[npt.NDArray[np.uint8], U64, U64] | None:
    """The records' own next hops as (family, hi, lo) columns; None when not given."""
    if bgp_next_hop is None:
        return None
    family = ip_version if bgp_next_hop_version is None else bgp_next_hop_version
    return (
        np.asarray(family, dtype=np.uint8).reshape(-1),
        np.asarray(bgp_next_hop[0], dtype=np.uint64).reshape(-1),
        np.asarray(bgp_next_hop[1], dtype=np.uint64).reshape(-1),
    )


def _resolve(c: Compiled, f: _Flows) -> Resolution:
    """The resolution of every flow: table version, VRF slot, then :func:`_finish`."""
    n = len(f.pe)
    pe_i, t = f.pe, f.t
    reason = np.full(n, _BGP, dtype=np.uint8)
    # table version in force per flow: (pe << 44 | time) against the sorted version keys
    key = (np.maximum(pe_i, 0).astype(np.uint64) << np.uint64(44)) | np.maximum(t, 0).astype(
        np.uint64
    )
    ver = search_sorted(c.ver_key, key, side="right") - 1
    ok = (pe_i >= 0) & (ver >= 0)
    if len(c.ver_pe):
        ok &= c.ver_pe[np.maximum(ver, 0)] == pe_i
        taken = (c.ver_key[np.maximum(ver, 0)] & np.uint64(_TIME_MASK)).astype(np.int64)
        ok &= taken <= t
    else:
        ok[:] = False
    ver = np.where(ok, ver, -1)
    reason[~ok] = _NO_TABLES
    rr = np.searchsorted(c.rr_times, t, side="right").astype(np.int64) - 1

    vkey = (np.maximum(ver, 0).astype(np.uint64) << np.uint64(32)) | (
        f.in_if.astype(np.uint64) & np.uint64(0xFFFF_FFFF)
    )
    at = _find(vkey, c.if_key)
    slot = np.where(ok & (at >= 0), c.if_slot[np.maximum(at, 0)] if len(c.if_key) else -1, -1)
    if f.vrf_id is not None:
        vid = f.vrf_id
        k2 = (np.maximum(ver, 0).astype(np.uint64) << np.uint64(32)) | np.maximum(vid, 0).astype(
            np.uint64
        )
        pos = _find(k2, c.vid_key)
        by_id = np.where(pos >= 0, c.vid_slot[np.maximum(pos, 0)] if len(c.vid_slot) else -1, -1)
        slot = np.where(ok & (vid > 0), by_id, slot)
    reason[ok & (slot < 0)] = _NO_VRF
    return _finish(c, pe_i, slot, rr, f.fam, f.hi, f.lo, reason, f.next_hop)


def _distinct_flows(c: Compiled, f: _Flows) -> tuple[I64, I64] | None:
    """One flow per distinct lookup and the lookup of each flow: (flows, lookup per flow).

    A flow's resolution depends on its ingress PE, interface, VRF id,
    destination and own next hop, and on time only through the table versions
    in force: flows between the same two version times (of any PE, or of the
    route reflector) resolve alike. A batch holds several flows per
    destination (≈ 5 in a 40,000-record batch of the synthetic traffic), so
    version look-ups, longest-prefix searches and path expansion run once per
    distinct key. The key is those columns as one fixed-size binary value,
    hashed by Arrow's dictionary encoding. None when the batch is small,
    hardly repeats itself, or has times outside the version keys' range.
    """
    n = len(f.pe)
    if n < _DISTINCT_MIN:
        return None
    t_min, t_max = int(f.t.min()), int(f.t.max())
    if t_min < 0 or t_max > _TIME_MASK:
        return None
    columns: list[tuple[str, npt.NDArray[Any]]] = [
        ("pe", f.pe),
        ("in_if", f.in_if),
        ("fam", f.fam),
        ("hi", f.hi),
        ("lo", f.lo),
    ]
    if f.vrf_id is not None:
        columns.append(("vrf_id", f.vrf_id))
    nh = f.next_hop
    if nh is not None and bool((nh[1] | nh[2]).any()):
        columns += [("nh_fam", nh[0]), ("nh_hi", nh[1]), ("nh_lo", nh[2])]
    taken = (c.ver_key & np.uint64(_TIME_MASK)).astype(np.int64)
    times = np.unique(np.concatenate([taken, c.rr_times]))
    classes = np.searchsorted(times, [t_min, t_max], side="right")
    if classes[0] != classes[1]:  # a version changes within the batch
        columns.append(("era", np.searchsorted(times, f.t, side="right").astype(np.int64)))
    raw = np.zeros(n, dtype=[(name, a.dtype.newbyteorder("<")) for name, a in columns])
    for name, a in columns:
        raw[name] = a
    blobs = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(raw.dtype.itemsize), n, [None, pa.py_buffer(raw)]
    )
    encoded = pc.dictionary_encode(blobs)
    distinct = len(encoded.dictionary)
    if distinct > _DISTINCT_SHARE * n:
        return None
    which = encoded.indices.to_numpy().astype(np.int64)
    first = np.empty(distinct, dtype=np.int64)
    first[which] = np.arange(n, dtype=np.int64)  # any flow of each lookup: their keys are equal
    return first, which


def _expand(res: Resolution, which: I64) -> Resolution:
    """The resolution of distinct lookups → that of the flows (``which``: each flow's lookup)."""
    n = len(which)
    distinct = int(res.flow[-1]) + 1 if len(res.flow) else 0
    if len(res.flow) == distinct:  # one row per lookup: one row per flow
        take = which
        flow = np.arange(n, dtype=np.int64)
    else:  # multipath sets: a flow takes every row of its lookup
        per = np.bincount(res.flow, minlength=distinct)
        count = per[which]
        flow = np.repeat(np.arange(n, dtype=np.int64), count)
        within = np.arange(len(flow), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        take = np.repeat((np.cumsum(per) - per)[which], count) + within
    return Resolution(
        flow=flow,
        egress_pe=res.egress_pe[take],
        egress_node=res.egress_node[take],
        vrf=res.vrf[take],
        rd=res.rd[take],
        reason=res.reason[take],
        share=res.share[take],
        prefix_len=res.prefix_len[take],
        pe_names=res.pe_names,
        node_names=res.node_names,
        vrf_names=res.vrf_names,
        rd_names=res.rd_names,
    )


def _count_unresolved(res: Resolution) -> None:
    """Add the flows left unresolved (weighted by share) to ``egress_unresolved_total``."""
    unresolved = res.reason > _RECORD  # RESOLVED_REASONS are the codes up to _RECORD
    if unresolved.any():
        weights = np.bincount(
            res.reason[unresolved], weights=res.share[unresolved], minlength=len(REASONS)
        )
        for code in np.flatnonzero(weights):
            egress_unresolved_total.labels(REASONS[code]).inc(float(weights[code]))


def _finish(
    c: Compiled,
    pe_i: I64,
    slot: I64,
    rr: I64,
    fam: npt.NDArray[np.uint8],
    hi: U64,
    lo: U64,
    reason: npt.NDArray[np.uint8],
    next_hop: tuple[npt.NDArray[np.uint8], U64, U64] | None,
) -> Resolution:
    """The resolution of flows whose VRF slot (and reason so far) is known."""
    n = len(slot)
    has = slot >= 0
    s = np.maximum(slot, 0)
    col = np.clip(rr, 0, c.slot_view.shape[1] - 1) if c.slot_view.size else np.zeros(n, np.int64)
    bview = np.where(has, c.slot_view[s, col] if c.slot_view.size else -1, -1)
    # a flow before the first route reflector upload has no RR-derived view
    fixed = c.slot_fixed[s] if len(c.slot_fixed) else np.zeros(n, dtype=bool)
    no_rr = has & (rr < 0) & ~fixed
    bview = np.where(no_rr, -1, bview)
    lview = np.where(has, c.slot_local[s] if len(c.slot_local) else -1, -1)
    b_lab, b_len, l_lab, l_len = _lookup(c, bview, lview, fam, hi, lo)
    use_local = (l_lab >= 0) & (l_len >= b_len)
    entry = np.where(use_local, l_lab, b_lab)
    plen = np.where(use_local, l_len, b_len).astype(np.int16)
    found = has & (entry >= 0)
    reason[has & ~found] = _NO_ROUTE
    reason[no_rr & ~found] = _NO_TABLES
    reason[found & use_local] = _LOCAL

    # the record's own next hop wins where it is set and maps to a PE
    rec_pe = np.full(n, -1, dtype=np.int32)
    if next_hop is not None:
        nh_fam, nh_hi, nh_lo = next_hop
        nonzero = (nh_hi != 0) | (nh_lo != 0)
        if nonzero.all():
            rec_pe = _next_hop_pe(c.nh_lpm, c.nh_pe, nh_fam, nh_hi, nh_lo)
        elif nonzero.any():  # look up only the records that carry a next hop
            rec_pe[nonzero] = _next_hop_pe(
                c.nh_lpm, c.nh_pe, nh_fam[nonzero], nh_hi[nonzero], nh_lo[nonzero]
            )
    use_rec = (rec_pe >= 0) & (pe_i >= 0)
    reason[use_rec] = _RECORD

    e = np.maximum(entry, 0)
    cnt = np.where(found & ~use_rec, c.entry_count[e] if len(c.entry_count) else 1, 1)
    if bool((cnt == 1).all()):  # no multipath set: one row per flow, no gathers
        rows = np.arange(n, dtype=np.int64)
        within: I64 | int = 0

        def at(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a

    else:
        rows = np.repeat(np.arange(n, dtype=np.int64), cnt)
        within = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)

        def at(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a[rows]

    path = np.where(
        at(found) & ~at(use_rec),
        (c.entry_start[at(e)] if len(c.entry_start) else 0) + within,
        -1,
    )
    egress = np.where(path >= 0, c.path_pe[np.maximum(path, 0)] if len(c.path_pe) else -1, -1)
    r = at(reason)
    egress = np.where(at(use_rec), at(rec_pe), egress).astype(np.int32)
    r = np.where((r == _BGP) & (egress < 0), _UNKNOWN_NH, r).astype(np.uint8)
    unresolved = r > _RECORD  # RESOLVED_REASONS are the codes up to _RECORD
    egress = np.where(unresolved, -1, egress).astype(np.int32)
    share = 1.0 / at(cnt)
    s_rows = at(s)
    in_vrf = at(slot) >= 0
    vrf = np.where(in_vrf, c.slot_vrf[s_rows] if len(c.slot_vrf) else -1, -1)
    rd = np.where(in_vrf, c.slot_rd[s_rows] if len(c.slot_rd) else -1, -1)
    node = np.where(egress >= 0, c.pe_node[np.maximum(egress, 0)], -1).astype(np.int32)
    return Resolution(
        flow=rows,
        egress_pe=egress,
        egress_node=node,
        vrf=vrf.astype(np.int32),
        rd=rd.astype(np.int32),
        reason=r,
        share=share,
        prefix_len=np.where(path >= 0, at(plen), -1).astype(np.int16),
        pe_names=c.pe_names,
        node_names=c.node_names,
        vrf_names=c.vrf_names,
        rd_names=c.rd_names,
    )


@dataclass(frozen=True, slots=True)
class PeSummary:
    """What is held for one PE (``routing load``): versions, VRFs, routes in its views."""

    pe: str
    versions: int
    taken_at_ms: int
    vrfs: int
    interfaces: int
    routes: int
    local_prefixes: int


def summarize(state: RoutingState) -> list[PeSummary]:
    """Per PE, its latest version: VRFs, interfaces, prefixes in its VRFs' views."""
    c = _compiled(state)
    per_view = np.bincount(c.entry_view, minlength=max(c.views, 1))
    out: list[PeSummary] = []
    for name in c.pe_names:
        versions = state.pe_versions.get(name, [])
        if not versions:
            continue
        p = c.pe_names.index(name)
        g = int(np.flatnonzero(c.ver_pe == p)[-1])
        slots = np.flatnonzero(c.slot_ver == g)
        bgp_views = np.unique(c.slot_view[slots, -1])
        local_views = c.slot_local[slots]
        latest = versions[-1]
        out.append(
            PeSummary(
                pe=name,
                versions=len(versions),
                taken_at_ms=latest.taken_at_ms,
                vrfs=len({v for v in latest.rd.vrf if v}),
                interfaces=len(latest.rd.if_index),
                routes=int(per_view[bgp_views[bgp_views >= 0]].sum()),
                local_prefixes=int(per_view[local_views[local_views >= 0]].sum()),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a destination leaves where it does, for one VRF of one PE (``routing show``)."""

    vrf: str
    rd: str
    interfaces: list[str]
    prefix: str
    next_hops: list[str]
    egress: list[str]
    reason: str


def explain(
    state: RoutingState, pe: str, address: str, *, vrf: str | None = None, at_ms: int | None = None
) -> list[Explanation]:
    """Lookup of ``address`` in each VRF of ``pe`` (or ``vrf``): prefix, next hop, egress."""
    c = _compiled(state)
    if pe not in c.pe_names:
        return []
    p = c.pe_names.index(pe)
    idx = [g for g, v in enumerate(c.versions) if c.ver_pe[g] == p]
    if at_ms is not None:
        idx = [g for g in idx if c.versions[g].taken_at_ms <= at_ms]
    if not idx:
        return []
    g = idx[-1]
    when = c.versions[g].taken_at_ms if at_ms is None else at_ms
    parsed = parse_addresses([address])
    if parsed.bad.any():
        return []
    slots = np.flatnonzero(c.slot_ver == g)
    out: list[Explanation] = []
    rdt = c.versions[g].rd
    for s in slots.tolist():
        name = c.vrf_names[c.slot_vrf[s]] if c.slot_vrf[s] >= 0 else ""
        if vrf is not None and name != vrf:
            continue
        rr = np.searchsorted(c.rr_times, [when], side="right").astype(np.int64) - 1
        reason = np.zeros(1, dtype=np.uint8)
        res = _finish(
            c,
            np.array([p], dtype=np.int64),
            np.array([s], dtype=np.int64),
            rr,
            parsed.family,
            parsed.hi,
            parsed.lo,
            reason,
            None,
        )
        _count_unresolved(res)
        prefix = ""
        hops: list[str] = []
        # find the entry again for its prefix text and next hops
        entry = _entry_of(c, s, rr, parsed.family, parsed.hi, parsed.lo)
        if entry >= 0:
            prefix = format_prefixes(
                c.entry_family[[entry]],
                c.entry_hi[[entry]],
                c.entry_lo[[entry]],
                c.entry_len[[entry]],
            )[0].as_py()
            st, ct = int(c.entry_start[entry]), int(c.entry_count[entry])
            fams = c.path_nh_family[st : st + ct]
            texts = format_addresses(
                np.where(fams == 0, 4, fams), c.path_nh_hi[st : st + ct], c.path_nh_lo[st : st + ct]
            ).to_pylist()
            hops = [t if f else "(connected)" for t, f in zip(texts, fams.tolist(), strict=True)]
        out.append(
            Explanation(
                vrf=name,
                rd=c.rd_names[c.slot_rd[s]] if c.slot_rd[s] >= 0 else "",
                interfaces=[i for i, v in zip(rdt.interface, rdt.vrf, strict=True) if v == name],
                prefix=prefix,
                next_hops=hops,
                egress=res.egress_pe_name().to_pylist(),
                reason=res.reason_name().to_pylist()[0],
            )
        )
    return out


def _lookup(
    c: Compiled, bview: I64, lview: I64, fam: npt.NDArray[np.uint8], hi: U64, lo: U64
) -> tuple[I64, npt.NDArray[np.int16], I64, npt.NDArray[np.int16]]:
    """Longest match in each flow's BGP view and in its local (connected/static) view."""
    b_lab, b_len = c.lpm.lookup(view=bview, family=fam, hi=hi, lo=lo)
    l_lab, l_len = c.local_lpm.lookup(view=lview, family=fam, hi=hi, lo=lo)
    l_lab = np.where(l_lab >= 0, l_lab + c.local_base, -1)
    return b_lab, b_len, l_lab, l_len


def _entry_of(c: Compiled, s: int, rr: I64, fam: npt.NDArray[np.uint8], hi: U64, lo: U64) -> int:
    col = int(np.clip(rr[0], 0, c.slot_view.shape[1] - 1))
    b = np.array([c.slot_view[s, col]], dtype=np.int64)
    lv = np.array([c.slot_local[s]], dtype=np.int64)
    bl, blen, ll, llen = _lookup(c, b, lv, fam, hi, lo)
    if ll[0] >= 0 and llen[0] >= blen[0]:
        return int(ll[0])
    return int(bl[0])


def unknown_next_hops(state: RoutingState) -> list[str]:
    """One line per table whose next hops map to no PE (not a loopback, not external)."""
    c = _compiled(state)
    lines: list[str] = []
    tables: list[BgpTable] = []
    for r in state.rr_versions:
        tables += [r.vpn, r.global_bgp]
    for versions in state.pe_versions.values():
        for v in versions:
            tables += [t for t in (v.bgp, v.global_bgp) if t is not None]
    for table in tables:
        if not len(table):
            continue
        pe = _next_hop_pe(c.nh_lpm, c.nh_pe, table.nh_family, table.nh_hi, table.nh_lo)
        zero = (table.nh_hi == 0) & (table.nh_lo == 0)
        bad = np.flatnonzero((pe < 0) & ~zero)
        if len(bad):
            first = int(bad[0])
            text = format_addresses(
                table.nh_family[[first]], table.nh_hi[[first]], table.nh_lo[[first]]
            )[0].as_py()
            where = (
                f"{table.file}: row {first + 1}"
                if table.file.endswith(".parquet")
                else f"{table.file}:{first + 2}"
            )
            lines.append(f"{where}: next hop {text} maps to no PE ({len(bad)} rows in this file)")
    return lines
