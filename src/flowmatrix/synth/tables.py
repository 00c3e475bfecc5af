"""Derive a generated network's routing tables from the generator's knowledge.

Three kinds of table, as a route reflector and the PEs hold them:

* the VPNv4/VPNv6 table as the route reflector sees it (every path it receives);
* the global IPv4/IPv6 table (internet customers and internet routes);
* per PE: its RD table, its VRFs' connected/static prefixes and (tiny, medium)
  its own BGP table — routes imported by route target re-keyed under the PE's
  local RD of each VRF, its own routes too.

All are pyarrow tables with the text columns written to disk; see
``docs/synth.md`` for their formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flowmatrix.addr import format_prefixes, format_v4, format_v6, v4_int, v6_int
from flowmatrix.synth.network import ASN, REMOTE_ASN, RT_BASE, SynthNetwork

__all__ = ["RoutingTables", "build_routing"]

Arr = npt.NDArray[Any]

#: columns of the route reflector's VPN table, in file order
VPN_COLUMNS = (
    "rd",
    "prefix",
    "next_hop",
    "route_targets",
    "local_pref",
    "med",
    "as_path_len",
    "originator",
    "best",
)
#: columns of the global table, in file order
GLOBAL_COLUMNS = (
    "prefix",
    "next_hop",
    "local_pref",
    "med",
    "as_path_len",
    "originator",
    "best",
)
#: columns of a PE's own BGP table, in file order
PE_BGP_COLUMNS = (
    "vrf",
    "rd",
    "prefix",
    "next_hop",
    "route_targets",
    "local_pref",
    "med",
    "as_path_len",
    "originator",
    "best",
    "source_rd",
)
#: columns of a PE's RD table, in file order
RD_COLUMNS = ("if_index", "interface", "vlan", "vrf", "rd", "import_rts", "export_rts")
#: columns of a PE's connected/static prefix table, in file order
CONNECTED_COLUMNS = ("vrf", "prefix", "kind", "if_index", "interface", "in_bgp")


@dataclass(frozen=True, eq=False)
class RoutingTables:
    """Every routing table of a generated network.

    ``vpn``, ``global_`` and ``pe_bgp`` carry, besides the file columns, the
    internal columns ``pe`` (PE index: the table's owner for ``pe_bgp``, the
    originating PE elsewhere, -1 for external paths) and ``prefix_id``.
    """

    vpn: pa.Table
    global_: pa.Table
    rd: pa.Table
    connected: pa.Table
    pe_bgp: pa.Table | None


def _col(table: pa.Table, name: str) -> Arr:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False))


def _loopback_text(net: SynthNetwork) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Per PE: IPv4 loopback, IPv4-mapped loopback (6VPE next hop), IPv6 loopback."""
    v4 = format_v4(_col(net.pes, "loopback"))
    mapped = pc.binary_join_element_wise("::ffff:", v4, "")
    return v4, mapped, net.pes.column("loopback6").combine_chunks()


def build_routing(net: SynthNetwork) -> RoutingTables:
    """The RR's VPN table, the global table and every PE's tables of ``net``."""
    prefixes = net.prefixes
    family = _col(prefixes, "family")
    prefix_text = format_prefixes(
        family, _col(prefixes, "hi"), _col(prefixes, "lo"), _col(prefixes, "length")
    )
    vpn = _vpn_table(net, prefix_text)
    global_ = _global_table(net, prefix_text)
    rd, connected = _pe_tables(net, prefix_text)
    pe_bgp = _pe_bgp(net, vpn) if net.spec.per_pe_tables else None
    return RoutingTables(vpn=vpn, global_=global_, rd=rd, connected=connected, pe_bgp=pe_bgp)


def _vpn_table(net: SynthNetwork, prefix_text: pa.Array) -> pa.Table:
    p, att, sites = net.prefixes, net.attachments, net.sites
    origin = np.asarray(p.column("origin").combine_chunks().indices)
    vrf = _col(p, "vrf")
    in_bgp = _col(p, "in_bgp")
    site = _col(p, "site")
    p_att = _col(p, "attachment")
    family = _col(p, "family")
    # customer prefixes (0) from the primary attachment and, multihomed, the backup one;
    # hub defaults (1) and redistributed link nets (2) from their own attachment
    site_att = _col(sites, "attachment")
    site_backup = _col(sites, "backup_attachment")
    cust = np.flatnonzero((vrf >= 0) & in_bgp & (origin == 0))
    backup = cust[site_backup[site[cust]] >= 0]
    own = np.flatnonzero((vrf >= 0) & in_bgp & ((origin == 1) | (origin == 2)))
    r_pref = np.concatenate([cust, backup, own])
    r_att = np.concatenate([site_att[site[cust]], site_backup[site[backup]], p_att[own]])
    homing = np.asarray(att.column("homing").combine_chunks().to_numpy(zero_copy_only=False))
    is_backup = homing[r_att] == "backup"
    is_primary = homing[r_att] == "primary"
    per_vpn = _col(net.vrfs, "rd_style") == "per-vpn"
    r_vrf = vrf[r_pref]
    r_pe = _col(att, "pe")[r_att]
    v4, mapped, _ = _loopback_text(net)
    nh = pc.if_else(
        pa.array(family[r_pref] == 4), pc.take(v4, pa.array(r_pe)), pc.take(mapped, pa.array(r_pe))
    )
    internal = pa.table(
        {
            "rd": pc.take(att.column("rd").combine_chunks(), pa.array(r_att)),
            "prefix": pc.take(prefix_text, pa.array(r_pref)),
            "next_hop": nh,
            "route_targets": pc.take(att.column("export_rts").combine_chunks(), pa.array(r_att)),
            "local_pref": pa.array(np.where(is_primary, 200, 100), pa.int32()),
            "med": pa.array(np.zeros(len(r_pref)), pa.int32()),
            "as_path_len": pa.array(np.where(origin[r_pref] == 2, 0, 1), pa.int32()),
            "originator": pc.take(net.pes.column("name").combine_chunks(), pa.array(r_pe)),
            # the RR's best path per RD:prefix; only per-VPN RDs give it a choice
            "best": pa.array(~(is_backup & per_vpn[r_vrf])),
            "pe": pa.array(r_pe, pa.int32()),
            "vrf": pa.array(r_vrf, pa.int32()),
            "prefix_id": pa.array(r_pref, pa.int32()),
        }
    )
    # inter-AS option B: remote prefixes behind a peer ASBR, next hop unchanged
    ext = net.external_paths
    kind = _col(ext, "kind")
    rem = np.flatnonzero(kind == "interas")
    e_pref = _col(ext, "prefix")[rem]
    e_pe = _col(ext, "pe")[rem]
    e_vrf = vrf[e_pref]
    rt = pa.array([f"{ASN}:{RT_BASE + v}" for v in e_vrf.tolist()], pa.string())
    remote = pa.table(
        {
            "rd": pa.array([f"{REMOTE_ASN}:{RT_BASE + v}" for v in e_vrf.tolist()], pa.string()),
            "prefix": pc.take(prefix_text, pa.array(e_pref)),
            "next_hop": pc.take(net.pes.column("asbr_peer").combine_chunks(), pa.array(e_pe)),
            "route_targets": rt,
            "local_pref": pa.array(np.full(len(rem), 100), pa.int32()),
            "med": pa.array(_col(ext, "med")[rem], pa.int32()),
            "as_path_len": pa.array(_col(ext, "as_path_len")[rem], pa.int32()),
            "originator": pa.array([""] * len(rem), pa.string()),
            "best": pa.array(np.ones(len(rem), bool)),
            "pe": pa.array(np.full(len(rem), -1), pa.int32()),
            "vrf": pa.array(e_vrf, pa.int32()),
            "prefix_id": pa.array(e_pref, pa.int32()),
        }
    )
    return pa.concat_tables([internal, remote])


def _global_table(net: SynthNetwork, prefix_text: pa.Array) -> pa.Table:
    p = net.prefixes
    origin = np.asarray(p.column("origin").combine_chunks().indices)
    vrf = _col(p, "vrf")
    family = _col(p, "family")
    in_bgp = _col(p, "in_bgp")
    v4, _, v6 = _loopback_text(net)
    names = net.pes.column("name").combine_chunks()
    cust = np.flatnonzero((vrf < 0) & in_bgp & (origin == 0))
    c_pe = _col(p, "egress_pe")[cust]
    c_nh = pc.if_else(
        pa.array(family[cust] == 4), pc.take(v4, pa.array(c_pe)), pc.take(v6, pa.array(c_pe))
    )
    n = len(cust)
    customers = pa.table(
        {
            "prefix": pc.take(prefix_text, pa.array(cust)),
            "next_hop": c_nh,
            "local_pref": pa.array(np.full(n, 100), pa.int32()),
            "med": pa.array(np.zeros(n), pa.int32()),
            "as_path_len": pa.array(np.ones(n), pa.int32()),
            "originator": pc.take(names, pa.array(c_pe)),
            "best": pa.array(np.ones(n, bool)),
            "pe": pa.array(c_pe, pa.int32()),
            "prefix_id": pa.array(cust, pa.int32()),
        }
    )
    ext = net.external_paths
    sel = np.flatnonzero(_col(ext, "kind") == "internet")
    e_pref = _col(ext, "prefix")[sel]
    e_pe = _col(ext, "pe")[sel]
    e_self = _col(ext, "next_hop_self")[sel]
    host = _col(ext, "peer_host")[sel].astype(np.uint64)
    fam = family[e_pref]
    lan4_base = np.array(
        [v4_int(s.split("/")[0]) if s else 0 for s in net.pes.column("peer_lan4").to_pylist()],
        np.uint64,
    )
    lan6_hi = np.array(
        [v6_int(s.split("/")[0])[0] if s else 0 for s in net.pes.column("peer_lan6").to_pylist()],
        np.uint64,
    )
    peer4 = format_v4(lan4_base[e_pe] + host)
    peer6 = format_v6(lan6_hi[e_pe], host)
    peer = pc.if_else(pa.array(fam == 4), peer4, peer6)
    self_nh = pc.if_else(
        pa.array(fam == 4), pc.take(v4, pa.array(e_pe)), pc.take(v6, pa.array(e_pe))
    )
    m = len(sel)
    internet = pa.table(
        {
            "prefix": pc.take(prefix_text, pa.array(e_pref)),
            "next_hop": pc.if_else(pa.array(e_self), self_nh, peer),
            "local_pref": pa.array(np.full(m, 100), pa.int32()),
            "med": pa.array(_col(ext, "med")[sel], pa.int32()),
            "as_path_len": pa.array(_col(ext, "as_path_len")[sel], pa.int32()),
            # ORIGINATOR_ID is left out for external next hops: the config maps those
            "originator": pc.if_else(pa.array(e_self), pc.take(names, pa.array(e_pe)), ""),
            "best": pa.array(_col(ext, "best")[sel]),
            "pe": pa.array(np.where(e_self, e_pe, -1), pa.int32()),
            "prefix_id": pa.array(e_pref, pa.int32()),
        }
    )
    return pa.concat_tables([customers, internet])


def _pe_tables(net: SynthNetwork, prefix_text: pa.Array) -> tuple[pa.Table, pa.Table]:
    """Every PE's RD table rows and connected/static rows, with a ``pe`` column."""
    att = net.attachments
    a_vrf = _col(att, "vrf")
    vrf_names = pa.array([*net.vrfs.column("name").to_pylist(), ""], pa.string())
    vrf_text = pc.take(vrf_names, pa.array(np.where(a_vrf < 0, len(vrf_names) - 1, a_vrf)))
    rd = pa.table(
        {
            "pe": att.column("pe"),
            "if_index": att.column("if_index"),
            "interface": att.column("interface"),
            "vlan": att.column("vlan"),
            "vrf": vrf_text,
            "rd": att.column("rd"),
            "import_rts": att.column("import_rts"),
            "export_rts": att.column("export_rts"),
        }
    )
    p = net.prefixes
    origin = np.asarray(p.column("origin").combine_chunks().indices)
    sel = np.flatnonzero((origin == 2) | (origin == 3))
    p_att = _col(p, "attachment")[sel]
    order = np.lexsort((sel, _col(att, "pe")[p_att]))
    sel, p_att = sel[order], p_att[order]
    idx = pa.array(p_att)
    connected = pa.table(
        {
            "pe": pc.take(att.column("pe").combine_chunks(), idx),
            "vrf": pc.take(vrf_text, idx),
            "prefix": pc.take(prefix_text, pa.array(sel)),
            "kind": pa.array(np.where(origin[sel] == 2, "connected", "static"), pa.string()),
            "if_index": pc.take(att.column("if_index").combine_chunks(), idx),
            "interface": pc.take(att.column("interface").combine_chunks(), idx),
            "in_bgp": pa.array(_col(p, "in_bgp")[sel]),
        }
    )
    return rd, connected


def _pe_bgp(net: SynthNetwork, vpn: pa.Table) -> pa.Table:
    """Each PE's own VPN table: per VRF, routes imported by RT under the local RD, own ones too."""
    att = net.attachments
    a_vrf = _col(att, "vrf")
    a_pe = _col(att, "pe")
    sel = np.flatnonzero(a_vrf >= 0)
    key = a_pe[sel].astype(np.int64) * 1_000_000 + a_vrf[sel]
    _, first = np.unique(key, return_index=True)
    inst = sel[first]  # one attachment per VRF instance, ordered by (pe, vrf)
    i_pe, i_vrf = a_pe[inst], a_vrf[inst]
    i_imp = [set(s.split()) for s in att.column("import_rts").to_pylist()]
    # route groups: rows sharing one export RT set; visibility = RT sets intersect
    rts = vpn.column("route_targets").combine_chunks()
    groups, group_of = np.unique(
        np.asarray(rts.to_numpy(zero_copy_only=False)), return_inverse=True
    )
    g_sets = [set(g.split()) for g in groups.tolist()]
    rr_best = _col(vpn, "best")
    r_pe = _col(vpn, "pe")
    r_vrf = _col(vpn, "vrf")
    by_group = np.argsort(group_of, kind="stable")
    g_bounds = np.searchsorted(group_of[by_group], np.arange(len(groups) + 1))
    own_key = r_pe.astype(np.int64) * 1_000_000 + r_vrf
    by_own = np.argsort(own_key, kind="stable")
    own_sorted = own_key[by_own]
    chunks_rows: list[Arr] = []
    chunks_inst: list[Arr] = []
    for k, a in enumerate(inst.tolist()):
        imp = i_imp[a]
        parts = [by_group[g_bounds[g] : g_bounds[g + 1]] for g, s in enumerate(g_sets) if s & imp]
        visible = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        # without ADD-PATH a PE gets the RR's best path only; its own paths it always has
        visible = visible[rr_best[visible]]
        key_k = int(i_pe[k]) * 1_000_000 + int(i_vrf[k])
        lo, hi = np.searchsorted(own_sorted, [key_k, key_k + 1])
        rows = np.unique(np.concatenate([visible, by_own[lo:hi]]))
        chunks_rows.append(rows)
        chunks_inst.append(np.full(len(rows), k))
    rows = np.concatenate(chunks_rows)
    ik = np.concatenate(chunks_inst)
    # best path per VRF and prefix: highest LOCAL_PREF, then shortest AS path
    pid = _col(vpn, "prefix_id")[rows]
    lp = _col(vpn, "local_pref")[rows]
    aspath = _col(vpn, "as_path_len")[rows]
    order = np.lexsort((aspath, -lp, pid, ik))
    rows, ik, pid = rows[order], ik[order], pid[order]
    best = np.ones(len(rows), bool)
    best[1:] = (ik[1:] != ik[:-1]) | (pid[1:] != pid[:-1])
    vrf_names = net.vrfs.column("name").combine_chunks()
    taken = pa.array(rows)
    inst_idx = pa.array(inst[ik])
    return pa.table(
        {
            "pe": pa.array(i_pe[ik], pa.int32()),
            "vrf": pc.take(vrf_names, pa.array(i_vrf[ik])),
            "rd": pc.take(att.column("rd").combine_chunks(), inst_idx),
            "prefix": pc.take(vpn.column("prefix").combine_chunks(), taken),
            "next_hop": pc.take(vpn.column("next_hop").combine_chunks(), taken),
            "route_targets": pc.take(rts, taken),
            "local_pref": pc.take(vpn.column("local_pref").combine_chunks(), taken),
            "med": pc.take(vpn.column("med").combine_chunks(), taken),
            "as_path_len": pc.take(vpn.column("as_path_len").combine_chunks(), taken),
            "originator": pc.take(vpn.column("originator").combine_chunks(), taken),
            "best": pa.array(best),
            "source_rd": pc.take(vpn.column("rd").combine_chunks(), taken),
            "prefix_id": pa.array(pid, pa.int32()),
        }
    )
