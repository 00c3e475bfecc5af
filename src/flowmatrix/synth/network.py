"""Generate a consistent MPLS/IP VPN backbone from a size and a seed.

The generator's knowledge is a handful of columnar tables (PEs, VRFs,
attachments, sites, prefixes, external paths, topology); the configuration,
the routing tables and the traffic's ground truth are all derived from them.
Everything is drawn from one ``numpy.random.Generator(PCG64(seed))`` in a fixed
order, so one seed always gives the same network.

Address plan (all synthetic; see ``docs/synth.md``):

=====================  ==========================================================
10.0.0.0/8             VPN sites, one /20 per site, **reused by every VRF**
172.16.0.0/12          multihomed VPN sites, one unique /24 each
100.64.0.0/10          extranet client sites, one unique /23 each
198.18.0.0/17          shared-services sites, one unique /24 each
198.18.128.0/17        PE management addresses
198.19.0.0/16          PE loopbacks (``::ffff:<loopback>`` is the 6VPE next hop)
185.0.0.0/8            internet (global table) customers, one /23 each
192.0.2.0/24 …         peering LANs of border PEs (external next hops, /29 each)
203.0.113.0/24         inter-AS option-B peer ASBRs (external next hops, /32)
127.0.0.0/8            FRP and exporter addresses, so one machine plays them all
fd0a:<block>::/48 …    IPv6 of dual-stack VPN sites (mirrors the IPv4 block)
2001:db8::/32          IPv6 internet customers, PE IPv6 loopbacks, peering LANs
2a00::/12              IPv6 internet routes
=====================  ==========================================================
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flowmatrix.config.model import (
    Exporter,
    ExternalNextHop,
    Frp,
    Interface,
    Interval,
    NetworkConfig,
    PeRouter,
    ServiceClass,
    ServiceNode,
    Slot,
)
from flowmatrix.errors import SynthError

__all__ = [
    "ASN",
    "GENERATOR_VERSION",
    "SIZES",
    "TAKEN_AT",
    "SizeSpec",
    "SynthNetwork",
    "build_config",
    "generate_network",
]

Arr = npt.NDArray[Any]

#: version of the generator; bumped whenever one seed would give a different network
GENERATOR_VERSION = "1"
#: the backbone's AS number
ASN = 65000
#: AS number of the other AS reached through inter-AS option-B ASBRs
REMOTE_ASN = 64512
#: the time every generated routing table is said to be taken at
TAKEN_AT = dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC)

#: service node (PoP) names, in order of creation
NODE_CODES = (
    "PAR", "LON", "FRA", "AMS", "MAD", "MIL", "BRU", "ZRH", "VIE", "PRG",
    "WAW", "CPH", "STO", "OSL", "HEL", "DUB", "LIS", "BCN", "LYS", "MRS",
    "MUC", "HAM", "BER", "DUS", "ROM", "NAP", "TRN", "ATH", "SOF", "BUC",
    "BUD", "ZAG", "LJU", "BTS", "RIX", "TLL", "VNO", "IST", "MAN", "EDI",
    "GLA", "BHX", "LIL", "NTE", "BOD", "TLS", "NCE", "STR", "GVA", "BSL",
)  # fmt: skip

#: route target / RD numbers (type 0, ``ASN:n``)
RT_BASE = 100_000  # mesh RT and hub RT of VRF v: ASN:(RT_BASE + v); per-VPN RD the same
RT_SPOKE = 200_000  # spoke RT of hub-and-spoke VRF v: ASN:(RT_SPOKE + v)
RT_SHARED = 300_000  # exported by the shared-services VRF
RT_EXTRANET = 300_001  # exported by extranet clients, imported by shared services
RD_PER_PE = 10_000_000  # per-PE RD of VRF v on PE p: ASN:(RD_PER_PE + 10000 v + p)

_V4_10 = 0x0A000000
_V4_172 = 0xAC100000
_V4_100 = 0x64400000
_V4_198_18 = 0xC6120000
_V4_MGMT = 0xC6128000
_V4_LOOP = 0xC6130000
_V4_185 = 0xB9000000
_V4_ASBR = 0xCB007100  # 203.0.113.0
_PEER_LANS = (0xC0000200, 0xC6336400)  # 192.0.2.0/24, 198.51.100.0/24: 32 /29s each
_V6_CUST = 0x20010DB8  # 2001:db8::/32, first 32 bits
_V6_LOOP_HI = 0x20010DB8FFFF0000  # 2001:db8:ffff::/48
_V6_PEER_HI = 0x20010DB8EEEE0000  # 2001:db8:eeee:<k>::/64

#: IPv4 address ranges of VPN site blocks: code, base, block length, BGP region length
_RANGES = {
    "reuse": (0x0A, _V4_10, 20),
    "multihomed": (0xAC, _V4_172, 24),
    "extranet": (0x64, _V4_100, 23),
    "shared": (0xC6, _V4_198_18, 24),
}
_RANGE_NAMES = tuple(_RANGES)
#: 10/8 block of inter-AS remote sites (real sites' blocks stay far below)
_REMOTE_BLOCK = 4094
#: first octets internet routes are drawn from (never one of ours or special)
_INTERNET_OCTETS = np.array(
    [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 185, 192, 198, 203)]
)

KINDS = ("mesh", "hub", "shared")
ROLES = ("mesh", "hub", "spoke", "shared", "global")
HOMINGS = ("single", "primary", "backup")
ORIGINS = ("site", "default", "link", "static", "remote", "internet")


@dataclass(frozen=True, slots=True)
class SizeSpec:
    """How big a generated network is."""

    name: str
    service_nodes: int
    pes_per_node: int
    p_per_node: int
    vrfs: int
    #: mean number of CE attachments per PE (VPN sites, backups and internet customers)
    attachments_per_pe: float
    #: mean number of BGP prefixes a VPN site advertises
    prefixes_per_site: float
    internet_routes: int
    internet_routes6: int
    border_pes: int
    asbrs: int
    #: write each PE's own BGP table (one row per route per VRF holding it)
    per_pe_tables: bool


#: the sizes ``generate_network`` knows
SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec("tiny", 3, 2, 1, 5, 5.0, 6.0, 200, 40, 2, 1, per_pe_tables=True),
    "medium": SizeSpec("medium", 20, 5, 2, 100, 20.0, 27.0, 5_000, 1_000, 6, 2, per_pe_tables=True),
    "large": SizeSpec(
        "large", 50, 20, 2, 1000, 50.0, 23.0, 50_000, 10_000, 40, 4, per_pe_tables=False
    ),
}


@dataclass(frozen=True, eq=False)
class SynthNetwork:
    """A generated network: the generator's knowledge as columnar tables, and its config.

    Tables (pyarrow), one row per:

    * ``pes`` — PE router (index ``pe``), ``routers`` and ``links`` — the IGP topology;
    * ``vrfs`` — VRF (index ``vrf``), with its kind and RD style;
    * ``attachments`` — CE-facing subinterface of a PE (VRF instance, RD, RTs);
    * ``sites`` — customer site (VPN or internet), its primary and backup attachment;
    * ``prefixes`` — customer, connected, static, inter-AS and internet prefix, with
      the PE that traffic to it leaves the backbone through (``egress_pe``);
    * ``external_paths`` — the BGP paths of prefixes reached through external next hops.
    """

    size: str
    seed: int
    config: NetworkConfig
    service_nodes: pa.Table
    routers: pa.Table
    links: pa.Table
    pes: pa.Table
    vrfs: pa.Table
    attachments: pa.Table
    sites: pa.Table
    prefixes: pa.Table
    external_paths: pa.Table

    @property
    def spec(self) -> SizeSpec:
        """The size specification this network was generated from."""
        return SIZES[self.size]

    def with_capacity_scale(self, factor: float) -> SynthNetwork:
        """The same network with every link and service-node capacity multiplied by ``factor``.

        Only capacities change (the topology file and the service nodes of the
        configuration); routing, sites and prefixes stay as drawn, so traffic
        generated for the network fits this one too.

        >>> net = generate_network("tiny", seed=1)
        >>> small = net.with_capacity_scale(1e-3)
        >>> float(small.links["capacity_bps"][0]), float(net.links["capacity_bps"][0])
        (40000000.0, 40000000000.0)
        >>> small.config.service_nodes[0].capacity_bps, net.config.service_nodes[0].capacity_bps
        (40000000.0, 40000000000.0)
        """
        if not factor > 0 or factor == float("inf"):
            msg = f"capacity scale must be a positive finite number, not {factor}"
            raise SynthError(msg)

        def scaled(table: pa.Table) -> pa.Table:
            at = table.schema.get_field_index("capacity_bps")
            column = pc.multiply(table.column(at), pa.scalar(float(factor), pa.float64()))
            return table.set_column(at, table.schema.field(at), column)

        nodes = tuple(
            replace(n, capacity_bps=None if n.capacity_bps is None else n.capacity_bps * factor)
            for n in self.config.service_nodes
        )
        return replace(
            self,
            config=replace(self.config, service_nodes=nodes),
            service_nodes=scaled(self.service_nodes),
            links=scaled(self.links),
        )

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables, for manifests and summaries."""
        prefixes = self.prefixes
        origin = np.asarray(prefixes.column("origin").to_numpy(zero_copy_only=False))
        return {
            "service_nodes": self.service_nodes.num_rows,
            "routers": self.routers.num_rows,
            "links": self.links.num_rows,
            "pes": self.pes.num_rows,
            "vrfs": self.vrfs.num_rows,
            "attachments": self.attachments.num_rows,
            "sites": self.sites.num_rows,
            "prefixes": prefixes.num_rows,
            "internet_prefixes": int((origin == "internet").sum()),
        }


def generate_network(size: str, seed: int) -> SynthNetwork:
    """A network of the named size (``tiny``, ``medium``, ``large``) drawn from ``seed``.

    Examples
    --------
    >>> net = generate_network("tiny", seed=1)
    >>> net.pes.num_rows, net.config.asn
    (6, 65000)
    """
    if size not in SIZES:
        msg = f"unknown network size {size!r}; choose one of {', '.join(SIZES)}"
        raise SynthError(msg)
    if seed < 0:
        msg = f"seed must be a non-negative integer, not {seed}"
        raise SynthError(msg)
    return _Builder(SIZES[size], seed).build()


def _cat(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string())


def _rts(values: list[int]) -> str:
    return " ".join(f"{ASN}:{v}" for v in values)


def _colour(vrf: Arr, pe: Arr, n_vrfs: int, n_pes: int) -> Arr:
    """A block number per site, distinct within each VRF and on each PE, smallest first.

    Sites are the edges of the bipartite VRF–PE graph; a greedy edge colouring
    (at most 2Δ-1 colours) gives every VRF blocks from 0 up, so VRFs overlap
    as much as they can while no VRF and no PE sees one block twice.
    """
    used_v = np.zeros((n_vrfs, 4096), bool)
    used_p = np.zeros((n_pes, 4096), bool)
    out = np.empty(len(vrf), np.int64)
    for k, (v, p) in enumerate(zip(vrf.tolist(), pe.tolist(), strict=True)):
        c = int(np.argmin(used_v[v] | used_p[p]))
        used_v[v, c] = used_p[p, c] = True
        out[k] = c
    return out


def _part(
    n: int,
    family: int,
    origin: int,
    *,
    length: Arr | int,
    hi: Arr | int = 0,
    lo: Arr | int = 0,
    site: Arr | int = -1,
    attachment: Arr | int = -1,
    in_bgp: Arr | bool = True,
) -> dict[str, Arr]:
    """Columns of ``n`` prefixes of one family and origin (scalars are broadcast)."""

    def col(value: Arr | int | bool, dtype: type) -> Arr:
        return np.broadcast_to(np.asarray(value).astype(dtype), (n,)).copy()

    return {
        "family": col(family, np.uint8),
        "hi": col(hi, np.uint64),
        "lo": col(lo, np.uint64),
        "length": col(length, np.uint8),
        "site": col(site, np.int32),
        "attachment": col(attachment, np.int32),
        "origin": col(origin, np.int8),
        "in_bgp": col(in_bgp, np.bool_),
    }


class _Builder:
    """One generation run; methods run in a fixed order and share the random stream."""

    def __init__(self, spec: SizeSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))

    # -- topology ------------------------------------------------------------------------------

    def build(self) -> SynthNetwork:
        self._nodes_and_pes()
        self._topology()
        self._vrfs()
        self._sites()
        self._attachments()
        self._prefixes()
        self._internet()
        tables = {
            "service_nodes": pa.table(
                {"name": _cat(self.node_names), "capacity_bps": pa.array(self.node_capacity)}
            ),
            "routers": self.routers,
            "links": self.links,
            "pes": self.pes,
            "vrfs": self.vrfs,
            "attachments": self.attachments,
            "sites": self.sites,
            "prefixes": self.prefixes,
            "external_paths": self.external_paths,
        }
        config = build_config(
            tables["service_nodes"], self.pes, self.attachments, name=f"synth-{self.spec.name}"
        )
        return SynthNetwork(size=self.spec.name, seed=self.seed, config=config, **tables)

    def _nodes_and_pes(self) -> None:
        spec, rng = self.spec, self.rng
        n_nodes = spec.service_nodes
        self.node_names = [
            NODE_CODES[i] if i < len(NODE_CODES) else f"N{i:03d}" for i in range(n_nodes)
        ]
        n_pes = n_nodes * spec.pes_per_node
        self.n_pes = n_pes
        pe_node = np.repeat(np.arange(n_nodes), spec.pes_per_node)
        pe_num = np.tile(np.arange(1, spec.pes_per_node + 1), n_nodes)
        self.pe_node = pe_node
        self.pe_names = [
            f"{self.node_names[n].lower()}-pe{k}" for n, k in zip(pe_node, pe_num, strict=True)
        ]
        # gravity: a PE's share of attachments and traffic
        self.pe_weight = rng.lognormal(0.0, 0.6, n_pes)
        # border PEs (internet peering) spread over nodes, ASBRs among them
        order = np.argsort(pe_num * 1000 + rng.permutation(n_pes), kind="stable")
        border = np.zeros(n_pes, bool)
        border[order[: spec.border_pes]] = True
        asbr = np.zeros(n_pes, bool)
        asbr[np.flatnonzero(border)[: spec.asbrs]] = True
        self.border, self.asbr = border, asbr
        idx = np.arange(n_pes)
        loop6 = [str(ipaddress.IPv6Address((_V6_LOOP_HI << 64) | (i + 1))) for i in range(n_pes)]
        border_rank = (np.cumsum(border) - 1).tolist()
        lan4 = [
            (f"{ipaddress.IPv4Address(_PEER_LANS[r // 32] + 8 * (r % 32))}/29" if border[i] else "")
            for i, r in enumerate(border_rank)
        ]
        lan6 = [
            f"{ipaddress.IPv6Address((_V6_PEER_HI | (r + 1)) << 64)}/64" if border[i] else ""
            for i, r in enumerate(border_rank)
        ]
        asbr_rank = (np.cumsum(asbr) - 1).tolist()
        asbr_peer = [
            str(ipaddress.IPv4Address(_V4_ASBR + r + 1)) if asbr[i] else ""
            for i, r in enumerate(asbr_rank)
        ]
        self.pes = pa.table(
            {
                "pe": pa.array(idx, pa.int32()),
                "name": _cat(self.pe_names),
                "service_node": _cat([self.node_names[n] for n in pe_node]),
                "frp": _cat([f"frp-{self.node_names[n].lower()}" for n in pe_node]),
                "loopback": pa.array(_V4_LOOP + idx + 1, pa.uint32()),
                "loopback6": _cat(loop6),
                "management": pa.array(_V4_MGMT + idx + 1, pa.uint32()),
                "exporter": pa.array(
                    0x7F000000 | ((1 + idx // 254) << 8) | (1 + idx % 254), pa.uint32()
                ),
                "source_id": pa.array(idx + 1, pa.uint32()),
                "weight": pa.array(self.pe_weight),
                "border": pa.array(border),
                "asbr": pa.array(asbr),
                "peer_lan4": _cat(lan4),
                "peer_lan6": _cat(lan6),
                "asbr_peer": _cat(asbr_peer),
            }
        )

    def _topology(self) -> None:
        spec, rng = self.spec, self.rng
        n_nodes, ppn = spec.service_nodes, spec.p_per_node
        p_names = [
            f"{self.node_names[n].lower()}-p{k + 1}" for n in range(n_nodes) for k in range(ppn)
        ]
        routers = {
            "name": self.pe_names + p_names,
            "service_node": [self.node_names[n] for n in self.pe_node]
            + [self.node_names[n] for n in range(n_nodes) for _ in range(ppn)],
            "role": ["pe"] * self.n_pes + ["p"] * len(p_names),
        }
        self.routers = pa.table({k: _cat(v) for k, v in routers.items()})
        links: dict[str, list[Any]] = {
            k: [] for k in ("name", "a", "b", "capacity_bps", "metric_ab", "metric_ba", "srlgs")
        }

        def link(a: str, b: str, cap: float, m_ab: int, m_ba: int, srlgs: list[str]) -> None:
            for key, value in zip(links, (f"{a}--{b}", a, b, cap, m_ab, m_ba, srlgs), strict=True):
                links[key].append(value)

        def p_of(node: int, k: int) -> str:
            return p_names[node * ppn + k % ppn]

        # inter-PoP adjacencies: a ring plus random chords, each carried by every P plane
        pairs = {(i, (i + 1) % n_nodes) for i in range(n_nodes) if n_nodes > 1}
        if n_nodes > 3:
            extra = rng.integers(0, n_nodes, size=(n_nodes, 2))
            pairs |= {(int(a), int(b)) for a, b in extra if a != b}
        pairs = {(min(a, b), max(a, b)) for a, b in pairs}
        for duct, (a, b) in enumerate(sorted(pairs)):
            metric = int(rng.integers(10, 100))
            cap = float(rng.choice([4e10, 1e11, 1e11]))
            asym = rng.random() < 0.15
            for k in range(ppn):
                link(
                    p_of(a, k),
                    p_of(b, k),
                    cap,
                    metric,
                    metric + (int(rng.integers(5, 30)) if asym else 0),
                    [f"duct-{duct + 1}"],
                )
        for n in range(n_nodes):
            for k in range(1, ppn):
                link(p_of(n, 0), p_of(n, k), 1e11, 5, 5, [])
        pe_caps = rng.choice([1e10, 4e10, 1e11], p=[0.5, 0.3, 0.2], size=self.n_pes)
        node_cap = np.zeros(n_nodes)
        for i, name in enumerate(self.pe_names):
            node = int(self.pe_node[i])
            # dual-homed to the P routers of its PoP; with one P per PoP, to the next PoP's too
            uplinks = [p_of(node, 0), p_of(node, 1)] if ppn > 1 else [p_of(node, 0)]
            if ppn == 1 and n_nodes > 1:
                uplinks.append(p_of((node + 1) % n_nodes, 0))
            for j, p in enumerate(uplinks):
                link(name, p, float(pe_caps[i]), 10 + 10 * j, 10 + 10 * j, [])
            node_cap[node] += 2 * pe_caps[i]
        self.node_capacity = node_cap
        self.pe_uplinks = 2 if ppn > 1 or n_nodes > 1 else 1
        self.links = pa.table(
            {
                "name": _cat(links["name"]),
                "a": _cat(links["a"]),
                "b": _cat(links["b"]),
                "capacity_bps": pa.array(links["capacity_bps"], pa.float64()),
                "metric_ab": pa.array(links["metric_ab"], pa.int32()),
                "metric_ba": pa.array(links["metric_ba"], pa.int32()),
                "srlgs": pa.array(links["srlgs"], pa.list_(pa.string())),
            }
        )

    # -- VPNs -----------------------------------------------------------------------------------

    def _vrfs(self) -> None:
        rng, n = self.rng, self.spec.vrfs
        u = rng.random((n, 6))
        kind = np.where(u[:, 0] < 0.05, 1, 0)  # 0 mesh, 1 hub, 2 shared
        per_pe = u[:, 1] < 0.4
        dual = u[:, 2] < 0.3
        extranet = (u[:, 3] < 0.05) & (kind == 0)
        interas = (u[:, 4] < 0.02) & (kind == 0) & ~extranet
        second = (u[:, 5] < 0.15) & (kind == 0)  # some VRFs get two sites on one PE
        # the first VRFs fix one of every feature, whatever the size
        kind[:4] = (2, 1, 0, 0)
        per_pe[:4] = (False, True, False, True)
        dual[:4] = (True, True, True, False)
        extranet[:4] = (False, False, True, True)
        interas[:4] = (False, False, True, False)
        second[:4] = (False, False, True, True)
        self.vrf_kind, self.vrf_per_pe, self.vrf_dual = kind, per_pe, dual
        self.vrf_extranet, self.vrf_interas, self.vrf_second = extranet, interas, second
        names = ["shared-svc"] + [f"cust{v:04d}" for v in range(1, n)]
        self.vrf_names = names
        self.vrfs = pa.table(
            {
                "vrf": pa.array(np.arange(n), pa.int32()),
                "name": _cat(names),
                "kind": _cat([KINDS[k] for k in kind]),
                "rd_style": _cat(["per-pe" if p else "per-vpn" for p in per_pe]),
                "dual_stack": pa.array(dual),
                "extranet_client": pa.array(extranet),
                "interas": pa.array(interas),
            }
        )

    def _sites(self) -> None:
        spec, rng, n_pes = self.spec, self.rng, self.n_pes
        n_vrfs = spec.vrfs
        target = n_pes * spec.attachments_per_pe * 0.85
        raw = rng.pareto(1.5, n_vrfs) + 1.0
        scale = target / raw.sum()
        for _ in range(30):  # fit the heavy-tailed sizes, capped at one site per PE, to target
            counts = np.clip(np.round(1 + raw * scale), 2, n_pes)
            scale *= target / counts.sum()
        counts = np.clip(np.round(1 + raw * scale), 2, n_pes).astype(int)
        counts[0] = min(n_pes, max(2, n_pes // 10))  # shared services: a few data centres
        counts[1] = max(counts[1], min(n_pes, 4))  # hub and spokes, at least 3 spokes
        p = self.pe_weight / self.pe_weight.sum()
        site_vrf: list[int] = []
        site_pe: list[int] = []
        site_role: list[int] = []  # index into ROLES
        site_j: list[int] = []
        for v in range(n_vrfs):
            pes = rng.choice(n_pes, size=int(counts[v]), replace=False, p=p)
            kind = int(self.vrf_kind[v])
            roles = (
                [3] * len(pes)
                if kind == 2
                else [1] + [2] * (len(pes) - 1)
                if kind == 1
                else [0] * len(pes)
            )
            site_vrf += [v] * len(pes)
            site_pe += [int(x) for x in pes]
            site_role += roles
            site_j += [0] * len(pes)
            if self.vrf_second[v]:
                site_vrf.append(v)
                site_pe.append(int(pes[0]))
                site_role.append(0)
                site_j.append(1)
        n_vpn = len(site_vrf)
        # internet customers in the global table
        n_global = max(n_pes // 2, round(0.1 * n_pes * spec.attachments_per_pe))
        g_pe = rng.choice(n_pes, size=n_global, p=p)
        g_pe[: min(n_pes, n_global)] = np.arange(min(n_pes, n_global))[:n_global]  # spread first
        vrf = np.array(site_vrf + [-1] * n_global, np.int32)
        pe = np.array(site_pe + [int(x) for x in g_pe], np.int32)
        role = np.array(site_role + [4] * n_global, np.int8)
        j = np.array(site_j + [0] * n_global, np.int8)
        n_sites = len(vrf)
        # multihomed: some single mesh sites get a backup PE (one of each RD style at least)
        multi = (rng.random(n_sites) < 0.06) & (role == 0) & (j == 0)
        forced = [int(np.flatnonzero(vrf == v)[1]) for v in (2, 3)]
        multi[forced] = True
        backup = np.full(n_sites, -1, np.int32)
        shift = rng.integers(1, max(2, n_pes), n_sites)
        backup[multi] = (pe[multi] + shift[multi]) % n_pes
        # blocks: reused 10/8 space for plain sites, unique ranges for the others
        rng_code = np.zeros(n_sites, np.int8)  # index into _RANGE_NAMES
        block = np.zeros(n_sites, np.int64)
        extranet = np.zeros(n_sites, bool)
        vpn = vrf >= 0
        extranet[vpn] = self.vrf_extranet[vrf[vpn]]
        rng_code[extranet] = 2
        rng_code[multi] = 1
        rng_code[role == 3] = 3
        for code in (1, 2, 3):
            sel = rng_code == code
            block[sel] = np.arange(sel.sum())
        plain = vpn & (rng_code == 0)
        block[plain] = _colour(vrf[plain], pe[plain], spec.vrfs, n_pes)
        block[~vpn] = np.arange((~vpn).sum())
        limits = {1: 4096, 2: 8192, 3: 128}
        for code, limit in limits.items():
            if (block[rng_code == code] >= limit).any():
                msg = f"too many {_RANGE_NAMES[code]} sites for the address plan"
                raise SynthError(msg)
        if (block[plain] >= _REMOTE_BLOCK - 8).any():
            msg = "too many sites per VRF or per PE for the 10.0.0.0/8 address plan"
            raise SynthError(msg)
        weight = rng.lognormal(0.0, 1.0, n_sites)
        self.site_vrf, self.site_pe, self.site_role, self.site_j = vrf, pe, role, j
        self.site_backup, self.site_range, self.site_block = backup, rng_code, block
        self.site_weight = weight
        self.n_sites, self.n_vpn_sites = n_sites, n_vpn

    def _attachments(self) -> None:
        rng = self.rng
        n_sites = self.n_sites
        multi = np.flatnonzero(self.site_backup >= 0)
        a_site = np.concatenate([np.arange(n_sites), multi]).astype(np.int32)
        a_pe = np.concatenate([self.site_pe, self.site_backup[multi]]).astype(np.int32)
        homing = np.concatenate(
            [np.where(self.site_backup >= 0, 1, 0), np.full(len(multi), 2)]
        ).astype(np.int8)
        # order on each PE: by VRF (global last), then site; VLAN = 101 + rank on the PE
        a_vrf = self.site_vrf[a_site]
        order = np.lexsort((a_site, np.where(a_vrf < 0, 1 << 30, a_vrf), a_pe))
        a_site, a_pe, homing, a_vrf = a_site[order], a_pe[order], homing[order], a_vrf[order]
        n_att = len(a_site)
        first = np.searchsorted(a_pe, np.arange(self.n_pes))
        rank = np.arange(n_att) - first[a_pe]
        vlan = 101 + rank
        if (vlan > 4094).any():
            msg = "more than 3994 attachments on one PE"
            raise SynthError(msg)
        port = 1 + rank // 200
        if_index = 1000 + vlan
        names = [
            f"GigabitEthernet0/0/0/{p}.{v}"
            for p, v in zip(port.tolist(), vlan.tolist(), strict=True)
        ]
        role = self.site_role[a_site]
        # RD and RTs of the VRF instance the attachment belongs to
        rd: list[str] = []
        imp: list[str] = []
        exp: list[str] = []
        desc: list[str] = []
        for v, p, r, s, h in zip(
            a_vrf.tolist(),
            a_pe.tolist(),
            role.tolist(),
            a_site.tolist(),
            homing.tolist(),
            strict=True,
        ):
            if v < 0:
                rd.append("")
                imp.append("")
                exp.append("")
                desc.append(f"internet customer {s}")
                continue
            per_pe = bool(self.vrf_per_pe[v])
            rd.append(f"{ASN}:{RD_PER_PE + 10000 * v + p if per_pe else RT_BASE + v}")
            if r == 1:  # hub
                i_rt, e_rt = [RT_SPOKE + v], [RT_BASE + v]
            elif r == 2:  # spoke
                i_rt, e_rt = [RT_BASE + v], [RT_SPOKE + v]
            elif r == 3:  # shared services
                i_rt, e_rt = [RT_SHARED, RT_EXTRANET], [RT_SHARED]
            elif self.vrf_extranet[v]:
                i_rt, e_rt = [RT_BASE + v, RT_SHARED], [RT_BASE + v, RT_EXTRANET]
            else:
                i_rt, e_rt = [RT_BASE + v], [RT_BASE + v]
            imp.append(_rts(i_rt))
            exp.append(_rts(e_rt))
            desc.append(f"{self.vrf_names[v]} site {s} {ROLES[r]} {HOMINGS[h]}")
        # a hub VRF instance on a PE has the hub's RTs; a spoke sharing that PE is not
        # generated (one site per VRF per PE), so an instance has one RT set
        self.att_site, self.att_pe, self.att_vrf, self.att_homing = a_site, a_pe, a_vrf, homing
        self.att_role = role
        self.att_if_index = if_index
        self.n_att = n_att
        att_of_site = np.full(n_sites, -1, np.int32)
        backup_att = np.full(n_sites, -1, np.int32)
        prim = homing != 2
        att_of_site[a_site[prim]] = np.flatnonzero(prim)
        backup_att[a_site[~prim]] = np.flatnonzero(~prim)
        self.site_att, self.site_backup_att = att_of_site, backup_att
        # CE-side static and connected link nets: which are redistributed into BGP
        self.att_link_bgp = rng.random(n_att) < 0.3
        self.att_static = rng.random(n_att) < 0.3
        self.attachments = pa.table(
            {
                "attachment": pa.array(np.arange(n_att), pa.int32()),
                "pe": pa.array(a_pe, pa.int32()),
                "if_index": pa.array(if_index, pa.int32()),
                "interface": _cat(names),
                "vlan": pa.array(vlan, pa.int32()),
                "vrf": pa.array(a_vrf, pa.int32()),
                "site": pa.array(a_site, pa.int32()),
                "role": _cat([ROLES[r] for r in role]),
                "homing": _cat([HOMINGS[h] for h in homing]),
                "rd": _cat(rd),
                "import_rts": _cat(imp),
                "export_rts": _cat(exp),
                "description": _cat(desc),
            }
        )
        self.sites = pa.table(
            {
                "site": pa.array(np.arange(n_sites), pa.int32()),
                "vrf": pa.array(self.site_vrf, pa.int32()),
                "role": _cat([ROLES[r] for r in self.site_role]),
                "pe": pa.array(self.site_pe, pa.int32()),
                "backup_pe": pa.array(self.site_backup, pa.int32()),
                "attachment": pa.array(att_of_site, pa.int32()),
                "backup_attachment": pa.array(backup_att, pa.int32()),
                "second_on_pe": pa.array(self.site_j == 1),
                "address_range": _cat([_RANGE_NAMES[c] for c in self.site_range]),
                "block": pa.array(self.site_block, pa.int32()),
                "weight": pa.array(self.site_weight),
            }
        )

    # -- prefixes -------------------------------------------------------------------------------

    def _prefixes(self) -> None:
        rng, spec = self.rng, self.spec
        n_sites = self.n_sites
        vpn = self.site_vrf >= 0
        code = self.site_range
        base_by_code = np.array([_RANGES[n][1] for n in _RANGE_NAMES], np.int64)
        blen_by_code = np.array([_RANGES[n][2] for n in _RANGE_NAMES], np.int64)
        blen = np.where(vpn, blen_by_code[code], 23)
        base = np.where(
            vpn,
            base_by_code[code] + (self.site_block << (32 - blen)),
            _V4_185 + (self.site_block << 9),
        )
        region = blen + 1  # BGP prefixes live in the first half of the block
        # number of BGP prefixes per site: heavy-tailed, capped by the block
        mean = spec.prefixes_per_site
        n4 = np.maximum(1, np.round(rng.lognormal(np.log(mean) - 0.5, 1.0, n_sites))).astype(
            np.int64
        )
        n4 = np.where(vpn, np.minimum(n4, 1 << (30 - region)), rng.choice([1, 2, 4], n_sites))
        plen = region + np.ceil(np.log2(n4)).astype(np.int64)
        site4 = np.repeat(np.arange(n_sites), n4)
        idx4 = np.arange(len(site4)) - np.repeat(np.cumsum(n4) - n4, n4)
        lo4 = base[site4] + (idx4 << (32 - plen[site4]))
        len4 = plen[site4]
        # IPv6 of dual-stack VPN sites and some internet customers
        dual = np.zeros(n_sites, bool)
        dual[vpn] = self.vrf_dual[self.site_vrf[vpn]]
        dual[~vpn] = rng.random(int((~vpn).sum())) < 0.3
        n6 = np.where(dual, np.where(vpn, np.clip(n4 // 4, 1, 256), 1), 0)
        site6 = np.repeat(np.arange(n_sites), n6)
        idx6 = np.arange(len(site6)) - np.repeat(np.cumsum(n6) - n6, n6)
        g0 = 0xFD00 | np.array([_RANGES[n][0] for n in _RANGE_NAMES], np.int64)[code]
        hi6_vpn = (g0[site6] << 48) | (self.site_block[site6] << 32) | (idx6 << 16)
        hi6_glob = (_V6_CUST << 32) | ((self.site_block[site6] + 1) << 16)
        is_vpn6 = vpn[site6]
        hi6 = np.where(is_vpn6, hi6_vpn, hi6_glob)
        len6 = np.where(is_vpn6, 64, 48)
        # hub default routes (0.0.0.0/0, ::/0 when dual-stack) advertised by the hub site
        hubs = np.flatnonzero(self.site_role == 1)
        hubs6 = hubs[dual[hubs]]
        # connected PE-CE link nets (last /30s of the block) and statics (/28 mid-block)
        att_site = self.att_site
        att_r = (self.att_homing == 2).astype(np.int64)
        blk_end = base[att_site] + (1 << (32 - blen[att_site]))
        link_lo = blk_end - 4 * (att_r + 1)
        static_att = np.flatnonzero(self.att_static & (self.att_vrf >= 0))
        static_lo = base[att_site[static_att]] + (1 << (31 - blen[att_site[static_att]]))
        att_dual = np.flatnonzero(dual[att_site])
        link6_hi = np.where(
            vpn[att_site[att_dual]],
            (g0[att_site[att_dual]] << 48)
            | (self.site_block[att_site[att_dual]] << 32)
            | ((0xFF00 + att_r[att_dual]) << 16),
            (_V6_CUST << 32) | ((self.site_block[att_site[att_dual]] + 1) << 16) | 0xFFFF,
        )
        n_att = self.n_att
        vpn_att = self.att_vrf >= 0
        self.site_parts = [
            _part(len(lo4), 4, 0, lo=lo4, length=len4, site=site4),
            _part(len(hi6), 6, 0, hi=hi6, length=len6, site=site6),
            _part(len(hubs), 4, 1, length=0, site=hubs, attachment=self.site_att[hubs]),
            _part(len(hubs6), 6, 1, length=0, site=hubs6, attachment=self.site_att[hubs6]),
            _part(n_att, 4, 2, lo=link_lo, length=30, site=att_site, attachment=np.arange(n_att),
                  in_bgp=self.att_link_bgp & vpn_att),
            _part(len(att_dual), 6, 2, hi=link6_hi, length=64, site=att_site[att_dual],
                  attachment=att_dual, in_bgp=self.att_link_bgp[att_dual] & vpn_att[att_dual]),
            _part(len(static_att), 4, 3, lo=static_lo, length=28, site=att_site[static_att],
                  attachment=static_att, in_bgp=False),
        ]  # fmt: skip
        self.site_dual = dual

    def _internet(self) -> None:
        """Inter-AS VPN prefixes, internet routes and their external paths."""
        rng, spec = self.rng, self.spec
        parts = self.site_parts
        border = np.flatnonzero(self.border)
        asbr = np.flatnonzero(self.asbr)
        # inter-AS option B: remote sites of interas VRFs behind an ASBR, in the VRF's 10/8
        # plan with pseudo PE numbers beyond the real ones
        ias_vrfs = np.flatnonzero(self.vrf_interas)
        r_vrf = np.repeat(ias_vrfs, 2)
        r_k = np.tile(np.arange(2), len(ias_vrfs))
        r_block = _REMOTE_BLOCK + r_k  # never a colour of a real site
        n_r = rng.integers(1, 8, len(r_vrf))
        r_site = np.repeat(np.arange(len(r_vrf)), n_r)
        r_idx = np.arange(len(r_site)) - np.repeat(np.cumsum(n_r) - n_r, n_r)
        r_len = 21 + np.ceil(np.log2(n_r)).astype(np.int64)[r_site]
        r_lo = _V4_10 + (r_block[r_site] << 12) + (r_idx << (32 - r_len))
        r_asbr = asbr[rng.integers(0, len(asbr), len(r_vrf))][r_site]
        # internet: non-overlapping routes, one per random /19 (v4) or /32 (v6) slot
        n_i4 = spec.internet_routes
        per_octet = 1 << (19 - 8)  # /19 slots in a /8
        slots = rng.choice(len(_INTERNET_OCTETS) * per_octet, size=n_i4, replace=False)
        i4_len = rng.choice(np.arange(19, 25), size=n_i4, p=[0.05, 0.1, 0.1, 0.15, 0.1, 0.5])
        octet = _INTERNET_OCTETS[slots // per_octet].astype(np.int64)
        i4_lo = (octet << 24) | ((slots % per_octet) << 13)
        n_i6 = spec.internet_routes6
        slots6 = rng.choice(1 << 20, size=n_i6, replace=False)
        i6_len = rng.choice([32, 36, 40, 44, 48], size=n_i6, p=[0.4, 0.1, 0.1, 0.1, 0.3])
        i6_hi = (0x2A000000 + slots6.astype(np.int64)) << 32
        base = sum(len(p["lo"]) for p in parts)
        n_rem = len(r_lo)

        parts.append(_part(n_rem, 4, 4, lo=r_lo, length=r_len))
        parts.append(_part(n_i4, 4, 5, lo=i4_lo, length=i4_len))
        parts.append(_part(n_i6, 6, 5, hi=i6_hi, length=i6_len))
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        n_pref = len(cols["lo"])
        site = cols["site"]
        att = cols["attachment"]
        origin = cols["origin"]
        vrf = np.full(n_pref, -1, np.int32)
        has_site = site >= 0
        vrf[has_site] = self.site_vrf[site[has_site]]
        vrf[base : base + n_rem] = r_vrf[r_site]
        egress = np.full(n_pref, -1, np.int32)
        # customer prefixes leave at the site's primary PE; link nets and statics at their PE
        egress[has_site] = self.site_pe[site[has_site]]
        has_att = att >= 0
        egress[has_att] = self.att_pe[att[has_att]]
        egress[base : base + n_rem] = r_asbr
        # external paths: the remote prefixes (one path each) and internet routes (1-3 paths)
        inet = np.flatnonzero(origin == 5)
        n_paths = rng.choice([1, 2, 3], size=len(inet), p=[0.4, 0.4, 0.2])
        n_paths = np.minimum(n_paths, len(border))
        p_pref = np.repeat(inet, n_paths)
        p_rank = np.arange(len(p_pref)) - np.repeat(np.cumsum(n_paths) - n_paths, n_paths)
        first_border = rng.integers(0, len(border), len(inet))
        step = rng.integers(1, max(2, len(border)), len(inet))
        p_pe = border[
            (np.repeat(first_border, n_paths) + p_rank * np.repeat(step, n_paths)) % len(border)
        ]
        # different borders per path: step and rank keep them apart unless the ring wraps
        # path 0 has the strictly shortest AS path, so it is the best one everywhere
        aspath = np.repeat(1 + rng.integers(0, 4, len(inet)), n_paths) + p_rank
        nh_self = rng.random(len(p_pref)) < 0.2
        peer_host = 1 + rng.integers(0, 5, len(p_pref))
        remote_ids = np.arange(base, base + n_rem)
        ext_pref = np.concatenate([remote_ids, p_pref]).astype(np.int32)
        ext_pe = np.concatenate([r_asbr, p_pe]).astype(np.int32)
        ext_rank = np.concatenate([np.zeros(n_rem, np.int64), p_rank])
        ext_aspath = np.concatenate([1 + rng.integers(0, 3, n_rem), aspath])
        ext_self = np.concatenate([np.zeros(n_rem, bool), nh_self])
        ext_host = np.concatenate([np.zeros(n_rem, np.int64), peer_host])
        ext_kind = np.concatenate([np.full(n_rem, 1, np.int8), np.zeros(len(p_pref), np.int8)])
        ext_med = rng.integers(0, 4, len(ext_pref)) * 10
        dup = (p_rank > 0) & (p_pe == np.repeat(p_pe[p_rank == 0], n_paths))
        keep = np.concatenate([np.ones(n_rem, bool), ~dup])
        egress[p_pref[p_rank == 0]] = p_pe[p_rank == 0]
        self.prefixes = pa.table(
            {
                "prefix": pa.array(np.arange(n_pref), pa.int32()),
                "family": pa.array(cols["family"], pa.uint8()),
                "hi": pa.array(cols["hi"], pa.uint64()),
                "lo": pa.array(cols["lo"], pa.uint64()),
                "length": pa.array(cols["length"], pa.uint8()),
                "vrf": pa.array(vrf, pa.int32()),
                "site": pa.array(site, pa.int32()),
                "attachment": pa.array(att, pa.int32()),
                "origin": pa.DictionaryArray.from_arrays(
                    pa.array(origin, pa.int8()), _cat(list(ORIGINS))
                ),
                "in_bgp": pa.array(cols["in_bgp"]),
                "egress_pe": pa.array(egress, pa.int32()),
            }
        )
        self.external_paths = pa.table(
            {
                "prefix": pa.array(ext_pref[keep], pa.int32()),
                "pe": pa.array(ext_pe[keep], pa.int32()),
                "kind": _cat([("internet", "interas")[k] for k in ext_kind[keep].tolist()]),
                "best": pa.array(ext_rank[keep] == 0),
                "next_hop_self": pa.array(ext_self[keep]),
                "peer_host": pa.array(ext_host[keep], pa.int32()),
                "as_path_len": pa.array(ext_aspath[keep], pa.int32()),
                "med": pa.array(ext_med[keep], pa.int32()),
            }
        )


# -- configuration ------------------------------------------------------------------------------

#: service classes of every generated network: name, DSCPs
CLASSES = (
    ServiceClass("ef", (46,)),
    ServiceClass("af4", (34, 36, 38)),
    ServiceClass("af3", (26, 28, 30)),
    ServiceClass("af2", (18, 20, 22)),
    ServiceClass("af1", (10, 12, 14)),
    ServiceClass("nc", (48, 56)),
    ServiceClass("be", (0,), default=True),
)

#: measurement intervals of every generated network
INTERVALS = (
    Interval("always", "continuous", description="measured all the time"),
    Interval(
        "busy-hours",
        "weekly",
        timezone="Europe/Paris",
        slots=tuple(Slot(day, dt.time(9, 0), dt.timedelta(hours=3)) for day in range(5)),
        description="weekday mornings, Paris time",
    ),
    Interval(
        "migration-check",
        "once",
        timezone="UTC",
        readout_seconds=60,
        start=dt.datetime(2026, 1, 5, 8, 0),
        duration=dt.timedelta(hours=1),
        description="one hour around a migration",
    ),
)


def _v4(value: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(value))


def build_config(
    service_nodes: pa.Table, pes: pa.Table, attachments: pa.Table, *, name: str
) -> NetworkConfig:
    """The configuration (service nodes, FRPs, PEs, external next hops) of a generated network."""
    nodes = tuple(
        ServiceNode(n, capacity_bps=float(c))
        for n, c in zip(
            service_nodes.column("name").to_pylist(),
            service_nodes.column("capacity_bps").to_pylist(),
            strict=True,
        )
    )
    frps = tuple(
        Frp(f"frp-{node.name.lower()}", _v4(0x7F00000A + i), service_node=node.name)
        for i, node in enumerate(nodes)
    )
    att_pe = attachments.column("pe").to_numpy()
    bounds = np.searchsorted(att_pe, np.arange(pes.num_rows + 1))
    if_index = attachments.column("if_index").to_pylist()
    if_name = attachments.column("interface").to_pylist()
    if_desc = attachments.column("description").to_pylist()
    cols = {k: pes.column(k).to_pylist() for k in pes.column_names}
    routers = []
    hops = []
    for i, pe_name in enumerate(cols["name"]):
        uplinks = (
            Interface(1, "HundredGigE0/0/0/0", "core uplink"),
            Interface(2, "HundredGigE0/0/0/1", "core uplink"),
        )
        ce = tuple(
            Interface(if_index[k], if_name[k], if_desc[k]) for k in range(bounds[i], bounds[i + 1])
        )
        routers.append(
            PeRouter(
                name=pe_name,
                loopback=_v4(cols["loopback"][i]),
                service_node=cols["service_node"][i],
                frp=cols["frp"][i],
                management=_v4(cols["management"][i]),
                loopback6=ipaddress.IPv6Address(cols["loopback6"][i]),
                sampling_rate=1,
                exporters=(Exporter(_v4(cols["exporter"][i]), source_id=cols["source_id"][i]),),
                interfaces=uplinks + ce,
            )
        )
        hops += [
            ExternalNextHop(ipaddress.ip_network(cols[key][i]), pe_name)
            for key in ("peer_lan4", "peer_lan6")
            if cols[key][i]
        ]
        if cols["asbr_peer"][i]:
            hops.append(
                ExternalNextHop(ipaddress.ip_network(f"{cols['asbr_peer'][i]}/32"), pe_name)
            )
    return NetworkConfig(
        name=name,
        asn=ASN,
        service_nodes=nodes,
        frps=frps,
        pes=tuple(routers),
        external_next_hops=tuple(hops),
        classes=CLASSES,
        intervals=INTERVALS,
    )
