"""Generate customer traffic entering a generated network's PEs, with its ground truth.

Flows are drawn column-wise from the generator's knowledge: for each egress
case (same VRF on another PE, multihomed primary, hub-and-spoke, extranet,
connected-only on the same PE, inter-AS, internet …) a source attachment and a
destination prefix are drawn with gravity-like weights, and the egress PE is
read from where the destination lives — never from a resolver. Packets are
written as one pcap per ingress PE; the truth as Parquet and CSV matrices.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowmatrix.addr import format_addresses
from flowmatrix.errors import SynthError
from flowmatrix.synth.files import read_network
from flowmatrix.synth.network import TAKEN_AT, SynthNetwork
from flowmatrix.synth.pcap import PacketColumns, write_pcap

__all__ = [
    "CASES",
    "DEFAULT_START",
    "TRUTH_FORMAT",
    "TrafficSummary",
    "generate_traffic",
]

Arr = npt.NDArray[Any]

#: egress cases and the share of flows drawn for each
CASES: dict[str, float] = {
    "vpn_remote": 0.42,  # same VRF, destination site on another PE
    "vpn_local": 0.04,  # same VRF, destination site on the ingress PE
    "connected": 0.03,  # prefix only connected/static on the ingress PE (not in BGP)
    "multihomed": 0.08,  # multihomed site: leaves at its primary PE (LOCAL_PREF)
    "hub": 0.06,  # spoke to spoke: leaves at the hub PE (default route)
    "extranet": 0.06,  # client VRF to shared services and back
    "interas": 0.03,  # VPN route behind an inter-AS option-B ASBR (external next hop)
    "internet_external": 0.18,  # global table, external (peering) next hop
    "internet_internal": 0.10,  # global table, PE loopback next hop
}
#: traffic starts here unless told otherwise: Monday 09:00 in Paris
DEFAULT_START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
#: ``format`` of truth/manifest.json
TRUTH_FORMAT = "flowmatrix-truth/1"
#: DSCP values drawn for flows and their shares
_DSCP = np.array([0, 46, 34, 26, 18, 10, 48])
_DSCP_P = np.array([0.72, 0.1, 0.05, 0.05, 0.04, 0.03, 0.01])
_TCP_PORTS = np.array([443, 80, 22, 25, 445, 993, 389, 8080, 3389, 1433])
_UDP_PORTS = np.array([53, 123, 161, 514, 500, 4789, 5060])
_ROLE_CODES = {"mesh": 0, "hub": 1, "spoke": 2, "shared": 3, "global": 4}
_SHARE_V6 = 0.3
_MINUTE_US = 60_000_000


@dataclass(frozen=True)
class TrafficSummary:
    """What :func:`generate_traffic` wrote: totals, files and flows per egress case."""

    flows: int
    packets: int
    bytes: int
    start: dt.datetime
    duration_s: int
    pcaps: dict[str, Path]
    truth: Path
    cases: dict[str, int] = field(default_factory=dict)


def _col(table: pa.Table, name: str) -> Arr:
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return np.asarray(column.to_numpy(zero_copy_only=False))


class _Groups:
    """Items grouped by an integer key, for drawing one item of a given group per row."""

    def __init__(self, keys: Arr, n_groups: int, weights: Arr | None = None) -> None:
        valid = np.flatnonzero(keys >= 0)
        order = valid[np.argsort(keys[valid], kind="stable")]
        self.items = order
        w = np.ones(len(order)) if weights is None else np.asarray(weights, float)[order]
        self.cum = np.concatenate([[0.0], np.cumsum(w)])
        self.bounds = np.searchsorted(keys[order], np.arange(n_groups + 1))

    def size(self, groups: Arr) -> Arr:
        return np.asarray(self.bounds[groups + 1] - self.bounds[groups])

    def draw(self, rng: np.random.Generator, groups: Arr) -> Arr:
        """One item per entry of ``groups`` (weighted), -1 where a group is empty."""
        lo, hi = self.bounds[groups], self.bounds[groups + 1]
        empty = hi <= lo
        u = self.cum[lo] + rng.random(len(groups)) * (self.cum[hi] - self.cum[lo])
        pos = np.clip(np.searchsorted(self.cum, u, side="right") - 1, lo, np.maximum(lo, hi - 1))
        out = self.items[np.minimum(pos, len(self.items) - 1)] if len(self.items) else pos
        return np.where(empty, -1, out)


@dataclass
class _Flows:
    """Columns of drawn flows, before packets."""

    att: list[Arr] = field(default_factory=list)
    dst_prefix: list[Arr] = field(default_factory=list)
    egress: list[Arr] = field(default_factory=list)
    case: list[Arr] = field(default_factory=list)

    def add(self, case: int, att: Arr, prefix: Arr, egress: Arr) -> None:
        self.att.append(att)
        self.dst_prefix.append(prefix)
        self.egress.append(egress)
        self.case.append(np.full(len(att), case, np.int8))


class _Draw:
    """Draw flows of each egress case from a network's knowledge."""

    def __init__(self, net: SynthNetwork, rng: np.random.Generator) -> None:
        self.rng = rng
        sites, att, p = net.sites, net.attachments, net.prefixes
        self.n_sites = sites.num_rows
        self.n_vrfs = net.vrfs.num_rows
        self.site_vrf = _col(sites, "vrf")
        self.site_pe = _col(sites, "pe")
        self.site_role = np.array([_ROLE_CODES[r] for r in _col(sites, "role")], np.int8)
        self.site_multi = _col(sites, "backup_pe") >= 0
        self.site_w = _col(sites, "weight")
        self.att_pe = _col(att, "pe")
        self.att_site = _col(att, "site")
        self.att_vrf = _col(att, "vrf")
        self.att_primary = _col(att, "homing") != "backup"
        self.p_family = _col(p, "family")
        self.p_vrf = _col(p, "vrf")
        self.p_site = _col(p, "site")
        self.p_att = _col(p, "attachment")
        self.p_origin = _col(p, "origin")
        self.p_in_bgp = _col(p, "in_bgp")
        self.p_egress = _col(p, "egress_pe")
        cust = self.p_origin == "site"
        self.site_prefixes = {
            f: _Groups(np.where(cust & (self.p_family == f), self.p_site, -1), self.n_sites)
            for f in (4, 6)
        }
        self.site_dual = self.site_prefixes[6].size(np.arange(self.n_sites)) > 0
        vrfs = net.vrfs
        self.vrf_extranet = _col(vrfs, "extranet_client")
        ext = net.external_paths
        best = _col(ext, "best") & (_col(ext, "kind") == "internet")
        self.inet_self = np.zeros(p.num_rows, bool)
        self.inet_self[_col(ext, "prefix")[best]] = _col(ext, "next_hop_self")[best]

    def _src(self, pool: Arr, m: int) -> Arr:
        w = self.site_w[self.att_site[pool]]
        return np.asarray(self.rng.choice(pool, size=m, p=w / w.sum()))

    def _family(self, src_site: Arr, dst_dual: Arr) -> Arr:
        v6 = self.site_dual[src_site] & dst_dual & (self.rng.random(len(src_site)) < _SHARE_V6)
        return np.where(v6, 6, 4)

    def _site_prefix(self, sites: Arr, family: Arr) -> Arr:
        out = self.site_prefixes[4].draw(self.rng, sites)
        v6 = family == 6
        out[v6] = self.site_prefixes[6].draw(self.rng, sites[v6])
        return out

    def _collect(self, n: int, propose: Callable[[int], tuple[Arr, Arr, Arr]]) -> tuple[Arr, Arr]:
        """Rows of ``propose`` whose third column is true, until there are ``n`` of them."""
        got: list[tuple[Arr, Arr]] = []
        have = 0
        for _ in range(200):
            if have >= n:
                break
            a, d, ok = propose(max(64, 2 * (n - have)))
            got.append((a[ok], d[ok]))
            have += int(ok.sum())
        if have == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a = np.concatenate([g[0] for g in got])[:n]
        d = np.concatenate([g[1] for g in got])[:n]
        return a, d

    def vpn_sites(self, n: int, *, local: bool) -> tuple[Arr, Arr]:
        """Same-VRF site pairs on different PEs (``local``: on the same PE)."""
        pool = np.flatnonzero((self.att_vrf >= 0) & self.att_primary)
        by_vrf = _Groups(self.site_vrf, self.n_vrfs, self.site_w)
        if local:
            # only VRFs with two plain sites on one PE can give a local pair
            key = self.site_vrf.astype(np.int64) * 1_000_000 + self.site_pe
            plain = (self.site_role == 0) & ~self.site_multi & (self.site_vrf >= 0)
            uniq, counts = np.unique(key[plain], return_counts=True)
            twice = uniq[counts > 1]
            pool = pool[np.isin(key[self.att_site[pool]], twice)]
            if len(pool) == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.int64)

        def propose(m: int) -> tuple[Arr, Arr, Arr]:
            a = self._src(pool, m)
            s = self.att_site[a]
            d = by_vrf.draw(self.rng, self.att_vrf[a])
            ra, rd = self.site_role[s], self.site_role[d]
            compat = ((ra == 0) & (rd == 0)) | ((ra == 2) & (rd == 1)) | ((ra == 1) & (rd == 2))
            compat |= (ra == 3) & (rd == 3)
            same_pe = self.site_pe[d] == self.att_pe[a]
            ok = (d != s) & compat & ~self.site_multi[d] & (same_pe if local else ~same_pe)
            return a, d, ok

        return self._collect(n, propose)

    def multihomed(self, n: int) -> tuple[Arr, Arr]:
        multi_vrf = np.where(self.site_multi, self.site_vrf, -1)
        groups = _Groups(multi_vrf, self.n_vrfs, self.site_w)
        has = np.zeros(self.n_vrfs + 1, bool)
        has[multi_vrf[multi_vrf >= 0]] = True
        pool = np.flatnonzero(
            (self.att_vrf >= 0)
            & self.att_primary
            & has[self.att_vrf]
            & (self.site_role[self.att_site] == 0)
        )
        if len(pool) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)

        def propose(m: int) -> tuple[Arr, Arr, Arr]:
            a = self._src(pool, m)
            d = groups.draw(self.rng, self.att_vrf[a])
            return a, d, (d >= 0) & (d != self.att_site[a])

        return self._collect(n, propose)

    def hub(self, n: int) -> tuple[Arr, Arr]:
        spokes = np.where(self.site_role == 2, self.site_vrf, -1)
        groups = _Groups(spokes, self.n_vrfs, self.site_w)
        pool = np.flatnonzero(self.att_primary & (self.site_role[self.att_site] == 2))
        if len(pool) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)

        def propose(m: int) -> tuple[Arr, Arr, Arr]:
            a = self._src(pool, m)
            d = groups.draw(self.rng, self.att_vrf[a])
            return a, d, (d >= 0) & (d != self.att_site[a])

        return self._collect(n, propose)

    def extranet(self, n: int) -> tuple[Arr, Arr]:
        client_site = (self.site_vrf >= 0) & self.vrf_extranet[np.maximum(self.site_vrf, 0)]
        shared_site = self.site_role == 3
        clients = np.flatnonzero(self.att_primary & client_site[self.att_site])
        shared = np.flatnonzero(self.att_primary & shared_site[self.att_site])
        if len(clients) == 0 or len(shared) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        w_client = self.site_w * client_site
        w_shared = self.site_w * shared_site
        half = n // 2
        a1 = self._src(clients, n - half)
        d1 = self.rng.choice(self.n_sites, size=n - half, p=w_shared / w_shared.sum())
        a2 = self._src(shared, half)
        d2 = self.rng.choice(self.n_sites, size=half, p=w_client / w_client.sum())
        return np.concatenate([a1, a2]), np.concatenate([d1, d2])

    def connected(self, n: int) -> tuple[Arr, Arr]:
        """(source attachment, prefix): a prefix not in BGP, another site of its PE and VRF."""
        target = np.flatnonzero(
            ((self.p_origin == "link") | (self.p_origin == "static"))
            & ~self.p_in_bgp
            & (self.p_vrf >= 0)
        )
        # sources: primary VPN attachments, grouped by (PE, VRF)
        source = (self.att_vrf >= 0) & self.att_primary
        key = self.att_pe.astype(np.int64) * 1_000_000 + self.att_vrf
        uniq, counts = np.unique(key[source], return_counts=True)
        t_att = self.p_att[target]
        t_key = key[t_att]
        pos = np.minimum(np.searchsorted(uniq, t_key), max(len(uniq) - 1, 0))
        found = (uniq[pos] == t_key) if len(uniq) else np.zeros(len(target), bool)
        others = np.where(found, counts[pos], 0) - source[t_att]
        target, pos = target[others > 0], pos[others > 0]
        if len(target) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        groups = _Groups(np.where(source, np.searchsorted(uniq, key), -1), len(uniq))

        def propose(m: int) -> tuple[Arr, Arr, Arr]:
            pick = self.rng.integers(0, len(target), m)
            a = groups.draw(self.rng, pos[pick])
            return a, target[pick], (a >= 0) & (a != self.p_att[target[pick]])

        return self._collect(n, propose)

    def interas(self, n: int) -> tuple[Arr, Arr]:
        remote = np.where(self.p_origin == "remote", self.p_vrf, -1)
        groups = _Groups(remote, self.n_vrfs)
        has = np.zeros(self.n_vrfs + 1, bool)
        has[remote[remote >= 0]] = True
        pool = np.flatnonzero((self.att_vrf >= 0) & self.att_primary & has[self.att_vrf])
        if len(pool) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a = self._src(pool, n)
        return a, groups.draw(self.rng, self.att_vrf[a])

    def internet(self, n: int, *, external: bool) -> tuple[Arr, Arr]:
        """(global attachment, destination prefix) pairs."""
        pool = np.flatnonzero(self.att_vrf < 0)
        inet = self.p_origin == "internet"
        if external:
            dest = inet & ~self.inet_self
        else:
            dest = (inet & self.inet_self) | ((self.p_origin == "site") & (self.p_vrf < 0))
        by_family = {f: np.flatnonzero(dest & (self.p_family == f)) for f in (4, 6)}

        def propose(m: int) -> tuple[Arr, Arr, Arr]:
            a = self._src(pool, m)
            s = self.att_site[a]
            fam = self._family(s, np.full(m, len(by_family[6]) > 0))
            d = np.empty(m, np.int64)
            for f in (4, 6):
                sel = fam == f
                d[sel] = by_family[f][
                    self.rng.integers(0, max(1, len(by_family[f])), int(sel.sum()))
                ]
            return a, d, self.p_site[d] != s

        if len(pool) == 0 or len(by_family[4]) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return self._collect(n, propose)


def _hosts(rng: np.random.Generator, family: Arr, hi: Arr, lo: Arr, length: Arr) -> tuple[Arr, Arr]:
    """A random host address inside each prefix (never the all-zeros host of a /30 or shorter)."""
    n = len(family)
    length = length.astype(np.int64)
    bits = np.where(family == 4, 32, 128) - length
    r_lo = rng.integers(0, 1 << 62, n, dtype=np.int64).astype(np.uint64) * np.uint64(4)
    r_lo |= rng.integers(0, 4, n).astype(np.uint64)
    r_hi = rng.integers(0, 1 << 62, n, dtype=np.int64).astype(np.uint64)
    lo_bits = np.minimum(bits, 64).astype(np.uint64)
    hi_bits = np.clip(bits - 64, 0, 64).astype(np.uint64)
    lo_mask = np.where(lo_bits >= 64, np.uint64(0xFFFF_FFFF_FFFF_FFFF),
                       (np.uint64(1) << np.minimum(lo_bits, 63)) - np.uint64(1))  # fmt: skip
    hi_mask = (np.uint64(1) << np.minimum(hi_bits, 63)) - np.uint64(1)
    host_lo = r_lo & lo_mask
    # avoid the network address itself where there is room (IPv4 /30 and shorter)
    zero = (host_lo == 0) & (bits >= 2)
    host_lo[zero] = 1
    return hi.astype(np.uint64) | (r_hi & hi_mask), lo.astype(np.uint64) | host_lo


def generate_traffic(
    network_dir: Path,
    out: Path,
    *,
    seed: int = 1,
    flows: int = 2000,
    start: dt.datetime = DEFAULT_START,
    duration_s: int = 600,
    mean_packets: float = 10.0,
    network: SynthNetwork | None = None,
) -> TrafficSummary:
    """Write one pcap per ingress PE of ``flows`` customer flows, and their ground truth.

    Parameters
    ----------
    network_dir
        A directory written by :func:`write_network`.
    out
        Where ``pcap/``, ``truth/`` and ``pmacct/`` are written.
    seed
        Seed of the traffic's random stream (the network has its own).
    flows
        Number of flows; each has a unique 5-tuple within its PE's pcap.
    start, duration_s
        Packets fall in ``[start, start + duration_s)``; no flow crosses a
        minute boundary of the epoch.
    mean_packets
        Mean number of packets per flow (heavy-tailed, at least 1).
    network
        The network already in memory, to skip reading ``network_dir``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from flowmatrix.synth import generate_network, write_network
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_network(generate_network("tiny", seed=1), d / "net")
    >>> summary = generate_traffic(d / "net", d / "traffic", flows=100)
    >>> summary.flows
    100
    """
    if flows < 1:
        msg = f"flows must be at least 1, not {flows}"
        raise SynthError(msg)
    if duration_s < 1:
        msg = f"duration must be at least 1 second, not {duration_s}"
        raise SynthError(msg)
    if seed < 0:
        msg = f"seed must be a non-negative integer, not {seed}"
        raise SynthError(msg)
    if mean_packets < 1:
        msg = f"mean packets per flow must be at least 1, not {mean_packets}"
        raise SynthError(msg)
    if start.tzinfo is None:
        msg = f"start time {start.isoformat()} has no time zone; give it in UTC"
        raise SynthError(msg)
    if start < TAKEN_AT:
        msg = f"traffic must start after the routing tables were taken ({TAKEN_AT.isoformat()})"
        raise SynthError(msg)
    net = network if network is not None else read_network(network_dir)
    rng = np.random.Generator(np.random.PCG64(seed))
    draw = _Draw(net, rng)
    names = list(CASES)
    wanted = rng.multinomial(flows, np.array(list(CASES.values())) / sum(CASES.values()))
    drawn = _Flows()
    short = 0
    for code, name in enumerate(names):
        n = int(wanted[code]) + (short if name == "internet_internal" else 0)
        if n == 0:
            continue
        a, d, egress = _draw_case(draw, name, n)
        short += n - len(a) if name != "internet_internal" else 0
        if len(a):
            drawn.add(code, a, d, egress)
    if short:  # cases the network cannot give go to plain VPN traffic
        a, d, egress = _draw_case(draw, "vpn_remote", short)
        drawn.add(0, a, d, egress)
    att = np.concatenate(drawn.att).astype(np.int64)
    dst = np.concatenate(drawn.dst_prefix).astype(np.int64)
    egress = np.concatenate(drawn.egress).astype(np.int64)
    case = np.concatenate(drawn.case)
    # a stable order for the rest of the draw: by case, then as drawn
    return _emit(net, rng, out, att, dst, egress, case, start, duration_s, mean_packets, names)


def _draw_case(draw: _Draw, name: str, n: int) -> tuple[Arr, Arr, Arr]:
    """(source attachment, destination prefix, egress PE) of ``n`` flows of one case."""
    empty = np.zeros(0, np.int64)
    if name in ("vpn_remote", "vpn_local", "multihomed", "hub", "extranet"):
        if name == "vpn_remote":
            a, d = draw.vpn_sites(n, local=False)
        elif name == "vpn_local":
            a, d = draw.vpn_sites(n, local=True)
        elif name == "multihomed":
            a, d = draw.multihomed(n)
        elif name == "hub":
            a, d = draw.hub(n)
        else:
            a, d = draw.extranet(n)
        if len(a) == 0:
            return empty, empty, empty
        s = draw.att_site[a]
        family = draw._family(s, draw.site_dual[d])
        prefix = draw._site_prefix(d, family)
        if name == "hub":
            hub_pe = np.full(draw.n_vrfs, -1)
            hubs = np.flatnonzero(draw.site_role == 1)
            hub_pe[draw.site_vrf[hubs]] = draw.site_pe[hubs]
            return a, prefix, hub_pe[draw.att_vrf[a]]
        return a, prefix, draw.site_pe[d]
    if name == "connected":
        a, prefix = draw.connected(n)
        return a, prefix, draw.att_pe[a] if len(a) else empty
    if name == "interas":
        a, prefix = draw.interas(n)
    else:
        a, prefix = draw.internet(n, external=name == "internet_external")
    if len(a) == 0:
        return empty, empty, empty
    return a, prefix, draw.p_egress[prefix]


def _windows(start: dt.datetime, duration_s: int) -> tuple[Arr, Arr]:
    """Start and end (µs since the epoch) of each epoch minute's part inside the run."""
    t0 = round(start.timestamp() * 1_000_000)
    t1 = t0 + duration_s * 1_000_000
    edges = np.arange((t0 // _MINUTE_US + 1) * _MINUTE_US, t1, _MINUTE_US, dtype=np.int64)
    bounds = np.concatenate([[t0], edges, [t1]])
    return bounds[:-1], bounds[1:]


def _emit(
    net: SynthNetwork,
    rng: np.random.Generator,
    out: Path,
    att: Arr,
    dst: Arr,
    egress: Arr,
    case: Arr,
    start: dt.datetime,
    duration_s: int,
    mean_packets: float,
    case_names: list[str],
) -> TrafficSummary:
    n = len(att)
    p = net.prefixes
    p_family = _col(p, "family")
    family = p_family[dst]
    src_site = _col(net.attachments, "site")[att]
    # source: a host in one of the source site's own prefixes, of the flow's family
    site_groups = {
        f: _Groups(
            np.where((_col(p, "origin") == "site") & (p_family == f), _col(p, "site"), -1),
            net.sites.num_rows,
        )
        for f in (4, 6)
    }
    src_prefix = site_groups[4].draw(rng, src_site)
    v6 = family == 6
    src_prefix[v6] = site_groups[6].draw(rng, src_site[v6])
    hi, lo, length = _col(p, "hi"), _col(p, "lo"), _col(p, "length")
    src_hi, src_lo = _hosts(rng, family, hi[src_prefix], lo[src_prefix], length[src_prefix])
    dst_hi, dst_lo = _hosts(rng, family, hi[dst], lo[dst], length[dst])
    # class, protocol and ports
    dscp = rng.choice(_DSCP, size=n, p=_DSCP_P)
    voice = dscp == 46
    proto = np.where(voice | (rng.random(n) < 0.2), 17, 6).astype(np.uint8)
    dport = np.where(proto == 6, rng.choice(_TCP_PORTS, n), rng.choice(_UDP_PORTS, n)).astype(
        np.int64
    )
    dport[voice] = 16384 + 2 * rng.integers(0, 8192, int(voice.sum()))  # RTP
    # source ports 32768-65535, destination ports below: no flow is another's reverse
    sport = rng.integers(32768, 65536, n)
    att_pe = _col(net.attachments, "pe")
    ingress = att_pe[att].astype(np.int64)
    for _ in range(100):  # unique 5-tuple per ingress PE: redraw the ports of duplicates
        key = np.stack(
            [ingress, proto, src_hi.view(np.int64), src_lo.view(np.int64),
             dst_hi.view(np.int64), dst_lo.view(np.int64), sport, dport],
            axis=1,
        )  # fmt: skip
        _, first = np.unique(key, axis=0, return_index=True)
        dup = np.ones(n, bool)
        dup[first] = False
        if not dup.any():
            break
        sport[dup] = rng.integers(32768, 65536, int(dup.sum()))
    # packets per flow (heavy-tailed) and their lengths
    sigma = 1.2
    mu = np.log(max(mean_packets - 1.0, 0.05)) - sigma**2 / 2
    packets = 1 + np.floor(rng.lognormal(mu, sigma, n)).astype(np.int64)
    packets = np.minimum(packets, 50_000)
    # times: each flow inside one epoch minute of the run
    w_start, w_end = _windows(start, duration_s)
    w_len = (w_end - w_start).astype(float)
    window = rng.choice(len(w_start), size=n, p=w_len / w_len.sum())
    room = w_end[window] - w_start[window] - 1
    first_off = np.floor(rng.random(n) * (room + 1)).astype(np.int64)
    length_us = np.minimum(
        np.where(packets > 1, rng.exponential(10e6, n), 0).astype(np.int64), room - first_off
    )
    first_us = w_start[window] + first_off
    flow_of = np.repeat(np.arange(n), packets)
    n_pkt = len(flow_of)
    starts = np.cumsum(packets) - packets
    u = rng.random(n_pkt)
    order = np.lexsort((u, flow_of))
    u = u[order]
    u[starts] = 0.0
    u[starts + packets - 1] = np.where(packets > 1, 1.0, 0.0)
    time_us = first_us[flow_of] + np.round(u * length_us[flow_of]).astype(np.int64)
    # IP lengths: voice constant, bulk flows mostly full-size, others small
    big_share = np.where(proto == 6, 0.6, 0.1)
    big = rng.random(n_pkt) < big_share[flow_of]
    ip_len = np.where(big, rng.integers(1400, 1501, n_pkt), rng.integers(64, 577, n_pkt))
    ip_len[voice[flow_of]] = np.where(family[flow_of][voice[flow_of]] == 4, 200, 220)
    ip_len = ip_len.astype(np.int64)
    header = np.where(family == 4, 20, 40) + np.where(proto == 6, 20, 8)
    payload = ip_len - header[flow_of]
    flow_bytes = np.bincount(flow_of, weights=ip_len, minlength=n).astype(np.int64)
    # TCP sequence numbers advance by the payload of the flow's earlier packets
    isn = rng.integers(0, 1 << 32, n)
    cum = np.cumsum(payload) - payload
    seq = isn[flow_of] + cum - cum[starts][flow_of]
    ident = rng.integers(0, 1 << 16, n)[flow_of] + (np.arange(n_pkt) - starts[flow_of])
    vlan = _col(net.attachments, "vlan")[att]
    tos = (dscp << 2).astype(np.uint8)
    cols = PacketColumns(
        time_us=time_us,
        family=family[flow_of],
        proto=proto[flow_of],
        ip_length=ip_len,
        vlan=vlan[flow_of],
        tos=tos[flow_of],
        src_hi=src_hi[flow_of],
        src_lo=src_lo[flow_of],
        dst_hi=dst_hi[flow_of],
        dst_lo=dst_lo[flow_of],
        sport=sport[flow_of],
        dport=dport[flow_of],
        ident=ident,
        seq=seq,
        ack=rng.integers(0, 1 << 32, n)[flow_of],
        mac_src=(0x02CE00000000 + att)[flow_of],
        mac_dst=(0x020000000000 + (ingress << 8))[flow_of],
    )
    pe_names = net.pes.column("name").to_pylist()
    (out / "pcap").mkdir(parents=True, exist_ok=True)
    by_pe = np.lexsort((np.arange(n_pkt), time_us, ingress[flow_of]))
    bounds = np.searchsorted(ingress[flow_of][by_pe], np.arange(len(pe_names) + 1))
    pcaps: dict[str, Path] = {}
    for i, name in enumerate(pe_names):
        if bounds[i] == bounds[i + 1]:
            continue
        path = out / "pcap" / f"{name}.pcap"
        write_pcap(path, cols.take(by_pe[bounds[i] : bounds[i + 1]]))
        pcaps[name] = path
    last_us = first_us + length_us
    _write_truth(
        net, out, att=att, ingress=ingress, egress=egress, case=case, case_names=case_names,
        family=family, src=(src_hi, src_lo), dst=(dst_hi, dst_lo), proto=proto, sport=sport,
        dport=dport, tos=tos, first_us=first_us, last_us=last_us, packets=packets,
        flow_bytes=flow_bytes, start=start, duration_s=duration_s,
    )  # fmt: skip
    _write_pretag(net, out)
    counts = np.bincount(case, minlength=len(case_names))
    return TrafficSummary(
        flows=n,
        packets=n_pkt,
        bytes=int(flow_bytes.sum()),
        start=start,
        duration_s=duration_s,
        pcaps=pcaps,
        truth=out / "truth",
        cases={name: int(c) for name, c in zip(case_names, counts, strict=True)},
    )


def _write_truth(
    net: SynthNetwork,
    out: Path,
    *,
    att: Arr,
    ingress: Arr,
    egress: Arr,
    case: Arr,
    case_names: list[str],
    family: Arr,
    src: tuple[Arr, Arr],
    dst: tuple[Arr, Arr],
    proto: Arr,
    sport: Arr,
    dport: Arr,
    tos: Arr,
    first_us: Arr,
    last_us: Arr,
    packets: Arr,
    flow_bytes: Arr,
    start: dt.datetime,
    duration_s: int,
) -> None:
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    pes = net.pes
    names = pes.column("name").combine_chunks()
    nodes = pes.column("service_node").combine_chunks()
    a = net.attachments
    a_vrf = _col(a, "vrf")[att]
    vrf_names = pa.array([*net.vrfs.column("name").to_pylist(), ""], pa.string())
    vrf_text = pc.take(vrf_names, pa.array(np.where(a_vrf < 0, len(vrf_names) - 1, a_vrf)))
    classes = pa.array(list(net.config.dscp_classes()), pa.string())
    dscp = (tos >> 2).astype(np.int64)
    i_idx, e_idx = pa.array(ingress), pa.array(egress)
    flows = pa.table(
        {
            "flow": pa.array(np.arange(len(att)), pa.int64()),
            "ingress_pe": pc.take(names, i_idx),
            "ingress_node": pc.take(nodes, i_idx),
            "ingress_if_index": pc.take(a.column("if_index").combine_chunks(), pa.array(att)),
            "vlan": pc.take(a.column("vlan").combine_chunks(), pa.array(att)),
            "vrf": vrf_text,
            "rd": pc.take(a.column("rd").combine_chunks(), pa.array(att)),
            "ip_version": pa.array(family, pa.uint8()),
            "src": format_addresses(family, src[0], src[1]),
            "dst": format_addresses(family, dst[0], dst[1]),
            "protocol": pa.array(proto, pa.uint8()),
            "src_port": pa.array(sport, pa.uint16()),
            "dst_port": pa.array(dport, pa.uint16()),
            "tos": pa.array(tos, pa.uint8()),
            "class": pc.take(classes, pa.array(dscp)),
            "first_ms": pa.array(first_us // 1000, pa.int64()),
            "last_ms": pa.array(last_us // 1000, pa.int64()),
            "first_us": pa.array(first_us, pa.int64()),
            "last_us": pa.array(last_us, pa.int64()),
            "packets": pa.array(packets, pa.int64()),
            "bytes": pa.array(flow_bytes, pa.int64()),
            "egress_pe": pc.take(names, e_idx),
            "egress_node": pc.take(nodes, e_idx),
            "egress_case": pc.take(pa.array(case_names, pa.string()), pa.array(case)),
        }
    )
    pq.write_table(flows, truth / "flows.parquet", compression="zstd")
    seconds = pa.scalar(duration_s, pa.int64())

    def matrix(keys: list[str], rename: dict[str, str], path: str, with_seconds: bool) -> None:
        grouped = flows.group_by(keys, use_threads=False).aggregate(
            [("bytes", "sum"), ("packets", "sum")]
        )
        grouped = grouped.sort_by([(k, "ascending") for k in keys])
        columns = {rename.get(k, k): grouped.column(k) for k in keys}
        columns["bytes"] = grouped.column("bytes_sum")
        columns["packets"] = grouped.column("packets_sum")
        if with_seconds:
            columns["seconds"] = pa.array([seconds.as_py()] * grouped.num_rows, pa.int64())
        pacsv.write_csv(pa.table(columns), truth / path, pacsv.WriteOptions(quoting_style="none"))

    pe_names = {"ingress_pe": "ingress", "egress_pe": "egress", "ingress_if_index": "if_index"}
    node_names = {"ingress_node": "ingress", "egress_node": "egress"}
    matrix(["ingress_pe", "egress_pe", "class"], pe_names, "pe_pe.csv", with_seconds=True)
    matrix(["ingress_node", "egress_node", "class"], node_names, "pop_pop.csv", with_seconds=True)
    matrix(
        ["ingress_pe", "ingress_if_index", "egress_pe", "class"],
        pe_names,
        "if_pe.csv",
        with_seconds=False,
    )
    matrix(["vrf", "ingress_pe", "egress_pe", "class"], pe_names, "vrf.csv", with_seconds=False)
    manifest = {
        "format": TRUTH_FORMAT,
        "start": start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "duration_s": duration_s,
        "flows": flows.num_rows,
        "packets": int(packets.sum()),
        "bytes": int(flow_bytes.sum()),
        "cases": {
            name: int(c)
            for name, c in zip(
                case_names, np.bincount(case, minlength=len(case_names)), strict=True
            )
        },
        "bytes_are": "sum of IP total lengths (no link header)",
    }
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _write_pretag(net: SynthNetwork, out: Path) -> None:
    """Per PE, a pmacct ``pre_tag_map`` setting the tag (= input ifIndex) from the VLAN."""
    directory = out / "pmacct"
    directory.mkdir(parents=True, exist_ok=True)
    a = net.attachments
    pe = _col(a, "pe")
    if_index = _col(a, "if_index")
    vlan = _col(a, "vlan")
    names = net.pes.column("name").to_pylist()
    bounds = np.searchsorted(pe, np.arange(len(names) + 1))
    for i, name in enumerate(names):
        lines = [
            f"! {name}: input ifIndex of each CE-facing subinterface, from its 802.1Q VLAN",
            "! use with nfprobe_direction[NAME]: in and nfprobe_ifindex[NAME]: tag",
        ]
        lines += [
            f"set_tag={if_index[k]} filter='vlan {vlan[k]}'"
            for k in range(bounds[i], bounds[i + 1])
        ]
        (directory / f"{name}.pretag.map").write_text("\n".join(lines) + "\n", encoding="utf-8")
