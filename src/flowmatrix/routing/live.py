"""Keep live VPN routing learned over BMP as time-versioned route reflector tables.

:class:`LiveRouting` holds, per monitored router and per RIB it reports (a
peer's Adj-RIB-In pre/post policy, its Loc-RIB), an append-only columnar log
of route changes with the time each arrived. Applying a batch appends
arrays; a Peer Down or the loss of the BMP session drops that peer's (or
router's) logs whole — a bulk withdrawal, whatever the route count.

At most every ``interval`` seconds, when something changed, the logs are
compacted (latest change per RD, prefix and path id; withdrawals dropped)
and merged into one :class:`~flowmatrix.routing.tables.RrTables` version of
a :class:`~flowmatrix.routing.tables.RoutingState`: the route reflector's
view, with route targets, which the resolver imports into every PE's VRFs.
The PEs' RD and connected tables come from the native files (the ``base``
state). A version is in force from the time of the newest change it holds;
old versions are pruned (``keep`` seconds, at most ``max_versions``), so
memory is bounded by the live routes and the versions open intervals need.

Which RIBs count: every Loc-RIB (RFC 9069), and per peer its post-policy
Adj-RIB-In when the router sends one, else the pre-policy one; Adj-RIB-Out
is ignored. The same path seen in several RIBs (a PE's Loc-RIB and the
reflector's Adj-RIB-In from that PE) is kept once. Next hop 0.0.0.0 / ``::``
(a router's own routes) becomes the loopback of the PE the router maps to.

A router maps to a PE of the configuration by ``routers`` (keys: BMP
sysName, the router's address, or its BGP identifier), else by sysName equal
to a PE name, else by its address or BGP identifier equal to a PE's loopback
or management address.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq
from prometheus_client import Counter, Gauge

from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import RoutingError
from flowmatrix.routing.bgp import SAFI_MPLS_VPN, SAFI_UNICAST, AttributeTable, rd_text
from flowmatrix.routing.bmp import PEER_LOC_RIB, PEER_RD, BmpBatch, BmpSession, PeerKey, RibKey
from flowmatrix.routing.native import ROUTING_FORMAT, bgp_table_arrow, iso_time, read_native
from flowmatrix.routing.resolve import watch_view_age
from flowmatrix.routing.tables import BgpTable, RoutingState, RrTables

__all__ = [
    "LiveConfig",
    "LiveRouting",
    "Router",
    "read_snapshot",
    "write_snapshot",
]

log = logging.getLogger("flowmatrix.routing.live")

#: a router's attribute rows are first collected at this count
ATTRS_MIN_COLLECT = 4096

U64 = npt.NDArray[np.uint64]

bmp_peers_up = Gauge("bmp_peers_up", "BGP peers up per monitored router (BMP).", ["router"])
bmp_routes = Gauge("bmp_routes", "Paths in the latest live view per VRF (RD's VRF name).", ["vrf"])
bmp_route_updates_total = Counter(
    "bmp_route_updates_total", "Route announcements and withdrawals received over BMP.", ["router"]
)
bmp_route_updates_per_second = Gauge(
    "bmp_route_updates_per_second", "Route updates per second over the last snapshot interval."
)
bmp_peer_withdrawals_total = Counter(
    "bmp_peer_withdrawals_total", "Peers whose routes were withdrawn in bulk.", ["router", "why"]
)


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """How live routing keeps its versions."""

    #: seconds between snapshots at most (changes in between are coalesced)
    interval: float = 5.0
    #: versions superseded longer ago than this many seconds are pruned
    keep: float = 900.0
    #: at most this many live route reflector versions are held
    max_versions: int = 8
    #: sysName, router address or BGP identifier → PE name
    routers: Mapping[str, str] = field(default_factory=dict)
    #: where snapshots are written (native files + ``table.mrt``) and reloaded from
    snapshot_dir: Path | None = None
    #: also write ``table.mrt`` with every snapshot
    write_mrt: bool = True
    #: seconds between snapshot files at most (one is also written at stop)
    save_every: float = 300.0


@dataclass
class _Chunk:
    rd: U64
    family: npt.NDArray[np.uint8]
    hi: U64
    lo: U64
    length: npt.NDArray[np.uint8]
    safi: npt.NDArray[np.uint8]
    path_id: npt.NDArray[np.uint32]
    attr: npt.NDArray[np.int32]
    time_ms: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.rd)

    def take(self, rows: npt.NDArray[np.integer]) -> _Chunk:
        return _Chunk(*(getattr(self, f)[rows] for f in _CHUNK_FIELDS))


_CHUNK_FIELDS = ("rd", "family", "hi", "lo", "length", "safi", "path_id", "attr", "time_ms")


def _concat(chunks: list[_Chunk]) -> _Chunk:
    if len(chunks) == 1:
        return chunks[0]
    return _Chunk(*(np.concatenate([getattr(c, f) for c in chunks]) for f in _CHUNK_FIELDS))


def _latest(chunk: _Chunk) -> _Chunk:
    """The last change per (RD, prefix, path id), announcements only."""
    if not len(chunk):
        return chunk
    k4 = (
        (chunk.family.astype(np.uint64) << np.uint64(48))
        | (chunk.length.astype(np.uint64) << np.uint64(32))
        | chunk.path_id.astype(np.uint64)
    )
    order = np.lexsort((k4, chunk.lo, chunk.hi, chunk.rd))  # stable: arrival order kept
    rd, hi, lo, k = chunk.rd[order], chunk.hi[order], chunk.lo[order], k4[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (rd[1:] != rd[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1]) | (k[1:] != k[:-1])
    rows = order[last]
    rows = rows[chunk.attr[rows] >= 0]
    return chunk.take(np.sort(rows))


class _Rib:
    """The change log of one RIB; ``compact`` leaves one chunk of live routes."""

    def __init__(self) -> None:
        self.chunks: list[_Chunk] = []
        self.compacted = True

    def append(self, chunk: _Chunk) -> None:
        self.chunks.append(chunk)
        self.compacted = False

    def compact(self) -> _Chunk:
        if not self.compacted or len(self.chunks) != 1:
            merged = _latest(_concat(self.chunks)) if self.chunks else _concat([_EMPTY])
            self.chunks = [merged]
            self.compacted = True
        return self.chunks[0]

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)


_EMPTY = _Chunk(
    np.zeros(0, np.uint64),
    np.zeros(0, np.uint8),
    np.zeros(0, np.uint64),
    np.zeros(0, np.uint64),
    np.zeros(0, np.uint8),
    np.zeros(0, np.uint8),
    np.zeros(0, np.uint32),
    np.zeros(0, np.int32),
    np.zeros(0, np.int64),
)


@dataclass
class Router:
    """One monitored router: its BMP session state, RIB logs and the PE it maps to."""

    address: str
    session: BmpSession = field(default_factory=BmpSession)
    pe: str | None = None
    ribs: dict[RibKey, _Rib] = field(default_factory=dict)
    peers_up: set[PeerKey] = field(default_factory=set)
    #: peer key → BGP identifier of the peer (from Peer Up / route messages)
    peer_ids: dict[PeerKey, int] = field(default_factory=dict)
    connected: bool = True
    last_change_ms: int = 0
    updates: int = 0
    #: attribute rows at which unused ones are collected next
    attrs_limit: int = 4096

    @property
    def name(self) -> str:
        """sysName when it names the router, else its address."""
        return self.session.sys_name or self.address

    @property
    def label(self) -> str:
        """What metrics and logs call the router: its PE, else name and BGP identifier."""
        if self.pe:
            return self.pe
        rid = self.session.router_id
        return f"{self.name}/{ipaddress.IPv4Address(rid)}" if rid else self.name

    @property
    def attrs(self) -> AttributeTable:
        """The router's interned path attributes."""
        return self.session.attrs

    def routes(self) -> int:
        """Changes held (live routes once compacted)."""
        return sum(len(r) for r in self.ribs.values())


class LiveRouting:
    """Live routing state fed by BMP sessions (Start/Stop component; see the module docstring)."""

    def __init__(
        self,
        config: LiveConfig,
        network: NetworkConfig,
        *,
        base: RoutingState | None = None,
        on_state: Callable[[RoutingState], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.network = network
        self.state = base if base is not None else RoutingState(network)
        self.on_state = on_state
        self.clock = clock
        self.routers: list[Router] = []
        self.lock = threading.RLock()
        self._dirty = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._updates_since = 0
        self._last_snapshot = 0.0
        #: wall-clock ms of the newest change (route, peer down, session loss)
        self._change_ms = 0
        self._saved = clock()
        #: VRF labels of ``bmp_routes`` set so far (reset to 0 when their paths go)
        self._vrf_labels: set[str] = set()
        self._index(network)

    def _index(self, network: NetworkConfig) -> None:
        """PE loopbacks and addresses, and each configured RD's VRF name."""
        self._loopback = {p.name: p.loopback for p in network.pes}
        #: low 64 bits of every PE address (IPv4, IPv4-mapped, IPv6 loopbacks)
        lows: list[int] = []
        for p in network.pes:
            lows += [int(p.loopback) & 0xFFFF_FFFF_FFFF_FFFF]
            if p.loopback.version == 4:
                lows.append(0xFFFF_0000_0000 | int(p.loopback))
            if p.loopback6 is not None:
                lows.append(int(p.loopback6) & 0xFFFF_FFFF_FFFF_FFFF)
        self._pe_lo = np.array(lows, dtype=np.uint64)
        self._by_address: dict[str, str] = {}
        for p in network.pes:
            for a in (p.loopback, p.management, p.loopback6):
                if a is not None:
                    self._by_address[str(a)] = p.name
        self._vrf_of_rd: dict[str, str] = {}
        #: (PE, RD) → export route targets of that PE's VRF, from its latest RD table
        self._export_rts: dict[tuple[str, str], frozenset[str]] = {}
        for pe, versions in self.state.pe_versions.items():
            for v in versions:
                for vrf, rd, export in zip(v.rd.vrf, v.rd.rd, v.rd.export_rts, strict=True):
                    if rd:
                        self._vrf_of_rd.setdefault(rd, vrf)
                        self._export_rts[pe, rd] = export

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Reload the last snapshot (if any) and start the snapshot thread."""
        d = self.config.snapshot_dir
        if d is not None and (d / "manifest.json").is_file():
            try:
                rr = read_snapshot(d, self.network)
            except RoutingError:
                log.exception("component=routing.live snapshot=%s unusable", d)
            else:
                with self.lock:
                    self.state.add_rr(rr)
                log.info(
                    "component=routing.live snapshot=%s reloaded paths=%d taken_at=%d",
                    d,
                    len(rr.vpn) + len(rr.global_bgp),
                    rr.taken_at_ms,
                )
                self._publish()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bmp-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the snapshot thread and write a last snapshot when a directory is configured."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.save()

    def save(self) -> bool:
        """Write the current live view as snapshot files; False when there is nothing to write.

        Nothing is written without a snapshot directory or a connected router,
        so shutting the sessions down never overwrites a good snapshot with an
        empty one.
        """
        if self.config.snapshot_dir is None or not self.routers:
            return False
        rr = self.snapshot(publish=False)
        write_snapshot(self.config.snapshot_dir, rr, write_mrt=self.config.write_mrt)
        self._saved = self.clock()
        log.info(
            "component=routing.live snapshot=%s written paths=%d",
            self.config.snapshot_dir,
            len(rr.vpn) + len(rr.global_bgp),
        )
        return True

    def _run(self) -> None:
        while not self._stop.wait(min(self.config.interval, 0.2)):
            try:
                if self._dirty and self.clock() - self._last_snapshot >= self.config.interval:
                    self.snapshot()
                if self.clock() - self._saved >= self.config.save_every:
                    self.save()
                    self._saved = self.clock()
            except Exception:  # a failing snapshot must not end live routing; retried
                log.exception("component=routing.live snapshot=failed")

    def rebase(self, base: RoutingState, network: NetworkConfig) -> None:
        """Use new native PE tables and configuration; live route reflector versions are kept."""
        with self.lock:
            self.network = network
            self.state.config = network
            self.state.pe_versions = dict(base.pe_versions)
            self.state.generation += 1
            self._index(network)
        self._dirty = True

    # --- sessions ----------------------------------------------------------------------------

    def connect(self, address: str) -> Router:
        """A new BMP session from ``address``."""
        router = Router(address)
        with self.lock:
            self.routers.append(router)
        log.info("component=routing.live router=%s session=up", address)
        return router

    def feed(self, router: Router, data: bytes) -> int:
        """Decode what arrived on ``router``'s session and apply it; routes applied.

        Raises :class:`~flowmatrix.routing.bmp.BmpSessionError` when the stream
        cannot be framed (the caller drops the session, then calls :meth:`disconnect`).
        """
        batch = router.session.feed(data)
        self.apply(router, batch)
        if len(router.attrs) >= router.attrs_limit:
            self._collect(router)
        return len(batch)

    def _collect(self, router: Router) -> None:
        """Drop attribute rows no logged change refers to any more (churn would grow them)."""
        with self.lock:
            used = [c.attr for rib in router.ribs.values() for c in rib.chunks]
            attr = np.concatenate(used) if used else np.zeros(0, dtype=np.int32)
            keep = np.unique(attr[attr >= 0]).astype(np.int64)
            before = len(router.attrs)
            if 2 * len(keep) <= before:
                table, mapping = router.attrs.subset(keep)
                for rib in router.ribs.values():
                    rib.chunks = [
                        replace(c, attr=np.where(c.attr >= 0, mapping[c.attr], -1).astype(np.int32))
                        for c in rib.chunks
                    ]
                # a new table, not an edited one: a snapshot being built keeps the old
                router.session.attrs = table
                log.info(
                    "component=routing.live router=%s attributes=%d kept=%d",
                    router.label,
                    before,
                    len(keep),
                )
            router.attrs_limit = max(ATTRS_MIN_COLLECT, 2 * len(router.attrs))

    def disconnect(self, router: Router, why: str = "closed") -> None:
        """The session ended: withdraw everything the router reported, in bulk."""
        with self.lock:
            routes = router.routes()
            router.ribs.clear()
            router.connected = False
            if router in self.routers:
                self.routers.remove(router)
            self._changed(int(self.clock() * 1000))
        bmp_peers_up.labels(router=router.label).set(0)
        bmp_peer_withdrawals_total.labels(router=router.label, why="session").inc(
            len(router.peers_up) or 1
        )
        log.info(
            "component=routing.live router=%s session=down why=%s withdrawn=%d",
            router.label,
            why,
            routes,
        )

    def apply(self, router: Router, batch: BmpBatch) -> None:
        """Append a batch's routes to their RIB logs; handle its events in stream order."""
        now_ms = int(self.clock() * 1000)
        routes = batch.routes
        with self.lock:
            if router.pe is None:
                router.pe = self._pe_of(router)
            start = 0
            for event in [*batch.events, None]:
                stop = len(routes) if event is None else event.before
                if stop > start:
                    self._append(router, batch, start, stop, now_ms)
                start = stop
                if event is None:
                    break
                if event.kind == "peer_up" and event.peer is not None:
                    router.peers_up.add(event.peer)
                    router.peer_ids[event.peer] = event.peer_bgp_id
                    if router.pe is None:
                        router.pe = self._pe_of(router)
                elif event.kind == "peer_down" and event.peer is not None:
                    self._peer_down(router, event.peer)
                    self._changed(now_ms)
                elif event.kind == "initiation" and router.pe is None:
                    router.pe = self._pe_of(router)
            bmp_peers_up.labels(router=router.label).set(len(router.peers_up))

    def _append(self, router: Router, batch: BmpBatch, start: int, stop: int, now_ms: int) -> None:
        r = batch.routes
        sl = slice(start, stop)
        ribs = batch.rib[sl]
        keys = router.session.ribs
        n = stop - start
        if n and (ribs == ribs[0]).all():
            groups = [(int(ribs[0]), np.arange(start, stop))]
        else:
            order = np.argsort(ribs, kind="stable")
            bounds = np.flatnonzero(np.diff(ribs[order])) + 1
            groups = [(int(ribs[g[0]]), g + start) for g in np.split(order, bounds) if len(g)]
        for rib, rows in groups:
            chunk = _Chunk(
                r.rd[rows],
                r.family[rows],
                r.hi[rows],
                r.lo[rows],
                r.length[rows],
                r.safi[rows],
                r.path_id[rows],
                r.attr[rows],
                np.full(len(rows), now_ms, dtype=np.int64),
            )
            router.ribs.setdefault(keys[rib], _Rib()).append(chunk)
        router.updates += n
        router.last_change_ms = now_ms
        self._updates_since += n
        bmp_route_updates_total.labels(router=router.label).inc(n)
        self._changed(now_ms)

    def _peer_down(self, router: Router, peer: PeerKey) -> None:
        gone = [k for k in router.ribs if k.peer == peer]
        routes = sum(len(router.ribs[k]) for k in gone)
        for k in gone:
            del router.ribs[k]
        router.peers_up.discard(peer)
        bmp_peer_withdrawals_total.labels(router=router.label, why="peer_down").inc()
        log.info(
            "component=routing.live router=%s peer=%s peer_type=%d peer=down withdrawn=%d",
            router.label,
            peer[2],
            peer[0],
            routes,
        )

    def _changed(self, at_ms: int) -> None:
        self._dirty = True
        self._change_ms = max(self._change_ms, at_ms)

    def _pe_of(self, router: Router) -> str | None:
        s = router.session
        ids = [str(ipaddress.IPv4Address(s.router_id))] if s.router_id else []
        names = [x for x in (s.sys_name, router.address, *ids) if x]
        for n in names:
            if n in self.config.routers:
                return self.config.routers[n]
        if s.sys_name in self._loopback:
            return s.sys_name
        for n in (*ids, router.address):
            if n in self._by_address:
                return self._by_address[n]
        return None

    # --- snapshots ---------------------------------------------------------------------------

    def snapshot(self, *, publish: bool = True) -> RrTables:
        """Build a route reflector version from every router's RIBs now; publish it.

        With no router connected the version is empty: every route was withdrawn.
        """
        started = self.clock()
        with self.lock:
            self._dirty = False
            parts = [(router, router.attrs, self._selected(router)) for router in self.routers]
            # the version is in force from the newest change it holds
            taken = self._change_ms or int(started * 1000)
            updates, self._updates_since = self._updates_since, 0
        rr = self._tables(parts, taken)
        elapsed = max(self.clock() - self._last_snapshot, 1e-3) if self._last_snapshot else 0
        self._last_snapshot = self.clock()
        if elapsed:
            bmp_route_updates_per_second.set(updates / elapsed)
        if publish:
            with self.lock:
                last = self.state.rr_versions[-1].taken_at_ms if self.state.rr_versions else -1
                rr = RrTables(max(rr.taken_at_ms, last + 1), rr.vpn, rr.global_bgp)
                self.state.add_rr(rr)
                self._prune(rr.taken_at_ms)
            self._publish()
        log.info(
            "component=routing.live snapshot vpn=%d global=%d taken_at=%d seconds=%.3f",
            len(rr.vpn),
            len(rr.global_bgp),
            rr.taken_at_ms,
            self.clock() - started,
        )
        return rr

    def _prune(self, now_ms: int) -> None:
        self.state.prune(now_ms - int(self.config.keep * 1000))
        extra = len(self.state.rr_versions) - self.config.max_versions
        if extra > 0:
            self.state.rr_versions = self.state.rr_versions[extra:]
            self.state.generation += 1

    def _publish(self) -> None:
        if self.on_state is not None:
            self.on_state(self.state)
        self._metrics()

    def _metrics(self) -> None:
        with self.lock:
            rr = self.state.rr_versions[-1] if self.state.rr_versions else None
            watch_view_age(self.state, [pe.name for pe in self.network.pes], clock=self.clock)
        if rr is not None:
            counts: dict[str, int] = dict.fromkeys(self._vrf_labels, 0)
            for code, n in zip(*np.unique(rr.vpn.rd, return_counts=True), strict=True):
                rd = rr.vpn.rds[int(code)] if code >= 0 else ""
                name = self._vrf_of_rd.get(rd, "other")
                counts[name] = counts.get(name, 0) + int(n)
            counts["(global)"] = len(rr.global_bgp)
            for name, n in counts.items():
                bmp_routes.labels(vrf=name).set(n)
            self._vrf_labels = set(counts)

    def _selected(self, router: Router) -> list[tuple[RibKey, _Chunk]]:
        """Compacted RIBs that count (Loc-RIB; post-policy Adj-RIB-In, else pre-policy)."""
        posts = {k.peer for k in router.ribs if k.kind == "post"}
        out: list[tuple[RibKey, _Chunk]] = []
        for key, rib in sorted(router.ribs.items(), key=lambda kv: kv[0].kind != "loc"):
            if (
                key.kind == "loc"
                or key.kind == "post"
                or (key.kind == "pre" and key.peer not in posts)
            ):
                out.append((key, rib.compact()))
        return out

    def _tables(
        self,
        parts: list[tuple[Router, AttributeTable, list[tuple[RibKey, _Chunk]]]],
        taken: int,
    ) -> RrTables:
        cols: dict[str, list[npt.NDArray[np.generic]]] = {
            k: []
            for k in (
                "rd",
                "family",
                "hi",
                "lo",
                "length",
                "safi",
                "nh_family",
                "nh_hi",
                "nh_lo",
                "local_pref",
                "med",
                "as_path_len",
                "rts",
                "originator",
            )
        }
        rt_codes: dict[frozenset[str], int] = {}
        origin_codes: dict[str, int] = {}
        for router, attrs, ribs in parts:
            if not ribs:
                continue
            a = attrs.columns()
            rts = np.array(
                [rt_codes.setdefault(x.route_targets, len(rt_codes)) for x in list(attrs.rows)],
                dtype=np.int32,
            )
            orig_pe = np.array(
                [
                    origin_codes.setdefault(p, len(origin_codes)) if p else -1
                    for p in (
                        self._by_address.get(str(ipaddress.IPv4Address(int(o))), "") if o else ""
                        for o in a["originator_id"].tolist()
                    )
                ],
                dtype=np.int32,
            )
            own = self._loopback.get(router.pe) if router.pe else None
            for key, c in ribs:
                if not len(c):
                    continue
                at = c.attr
                if key.kind == "loc":
                    peer_pe = router.pe or ""
                else:
                    pid = router.peer_ids.get(key.peer, 0)
                    peer_pe = self._by_address.get(key.peer[2], "") or (
                        self._by_address.get(str(ipaddress.IPv4Address(pid)), "") if pid else ""
                    )
                peer_code = origin_codes.setdefault(peer_pe, len(origin_codes)) if peer_pe else -1
                nh_family = a["nh_family"][at]
                nh_hi = a["nh_hi"][at]
                nh_lo = a["nh_lo"][at]
                if own is not None:
                    zero = (nh_hi == 0) & (nh_lo == 0)
                    if zero.any():
                        mine = int(own)
                        v6 = c.family == 6
                        nh_family = np.where(zero, np.where(v6, 6, 4), nh_family).astype(np.uint8)
                        nh_lo = np.where(
                            zero,
                            np.where(v6, np.uint64(0xFFFF_0000_0000 | mine), np.uint64(mine)),
                            nh_lo,
                        ).astype(np.uint64)
                originator = orig_pe[at]
                cols["originator"].append(np.where(originator >= 0, originator, peer_code))
                row_rd, row_safi, row_rts = c.rd, c.safi, rts[at]
                instance = key.peer[0] in (PEER_RD, PEER_LOC_RIB) and key.peer[1] != 0
                if instance and own is not None:
                    # in a VRF instance, a next hop that is no PE's (a CE's) means this PE
                    foreign = ~np.isin(nh_lo, self._pe_lo) & ((nh_hi != 0) | (nh_lo != 0))
                    if foreign.any():
                        v6 = c.family == 6
                        mine = int(own)
                        nh_family = np.where(foreign, np.where(v6, 6, 4), nh_family)
                        nh_family = nh_family.astype(np.uint8)
                        nh_hi = np.where(foreign, np.uint64(0), nh_hi).astype(np.uint64)
                        nh_lo = np.where(
                            foreign,
                            np.where(v6, np.uint64(0xFFFF_0000_0000 | mine), np.uint64(mine)),
                            nh_lo,
                        ).astype(np.uint64)
                if instance:
                    # a VRF's RIB instance (RFC 7854 peer type 1, RFC 9069 per-VRF Loc-RIB):
                    # its unicast routes are the VRF's, under the instance's RD, and carry
                    # the VRF's export targets when the router sent none
                    uni = c.safi == SAFI_UNICAST
                    row_rd = np.where(uni, np.uint64(key.peer[1]), c.rd).astype(np.uint64)
                    row_safi = np.where(uni, SAFI_MPLS_VPN, c.safi).astype(np.uint8)
                    export = self._export_rts.get((router.pe or "", rd_text(key.peer[1])))
                    if export:
                        code = rt_codes.setdefault(export, len(rt_codes))
                        bare = uni & (row_rts == rt_codes.get(frozenset(), -2))
                        row_rts = np.where(bare, code, row_rts).astype(np.int32)
                cols["rd"].append(row_rd)
                cols["safi"].append(row_safi)
                cols["rts"].append(row_rts)
                for f in ("family", "hi", "lo", "length"):
                    cols[f].append(getattr(c, f))
                cols["nh_family"].append(nh_family)
                cols["nh_hi"].append(nh_hi)
                cols["nh_lo"].append(nh_lo)
                for f in ("local_pref", "med", "as_path_len"):
                    cols[f].append(a[f][at])
        if not cols["rd"]:
            return RrTables(taken, BgpTable.empty(), BgpTable.empty())
        m = {k: np.concatenate(v) for k, v in cols.items()}
        # one copy of a path seen in several RIBs: same RD, prefix and next hop
        plen = (m["family"].astype(np.uint64) << np.uint64(8)) | m["length"].astype(np.uint64)
        keys = (m["nh_lo"], m["nh_hi"], plen, m["lo"], m["hi"], m["rd"])
        order = np.lexsort(keys)
        s = {k: v[order] for k, v in m.items()}
        first = np.ones(len(order), dtype=bool)
        first[1:] = False
        for k in keys:
            ks = k[order]
            first[1:] |= ks[1:] != ks[:-1]
        s = {k: v[first] for k, v in s.items()}
        rt_sets: list[frozenset[str]] = [frozenset()] * len(rt_codes)
        for rts_set, code in rt_codes.items():
            rt_sets[code] = rts_set
        origins = [""] * len(origin_codes)
        for name, code in origin_codes.items():
            origins[code] = name
        vpn = s["safi"] == SAFI_MPLS_VPN
        return RrTables(
            taken,
            _bgp(s, vpn, rt_sets, origins, with_rd=True),
            _bgp(s, ~vpn, rt_sets, origins, with_rd=False),
        )

    # --- views -------------------------------------------------------------------------------

    def summary(self) -> list[dict[str, object]]:
        """One row per monitored router: name, PE, peers up, RIBs, routes, last change."""
        with self.lock:
            return [
                {
                    "router": r.name,
                    "address": r.address,
                    "pe": r.pe or "",
                    "peers_up": len(r.peers_up),
                    "ribs": len(r.ribs),
                    "routes": r.routes(),
                    "updates": r.updates,
                    "last_change_ms": r.last_change_ms,
                    "malformed": sum(r.session.malformed.values()),
                }
                for r in self.routers
            ]


def _bgp(
    s: Mapping[str, npt.NDArray[np.generic]],
    rows: npt.NDArray[np.bool_],
    rt_sets: list[frozenset[str]],
    origins: list[str],
    *,
    with_rd: bool,
) -> BgpTable:
    """A BgpTable of the selected rows of the merged columns."""
    rd_raw = np.asarray(s["rd"][rows], dtype=np.uint64)
    if with_rd and len(rd_raw):
        uniq, codes = np.unique(rd_raw, return_inverse=True)
        rds = [rd_text(int(x)) for x in uniq.tolist()]
        rd = codes.astype(np.int32)
    else:
        rds, rd = [], np.full(len(rd_raw), -1, dtype=np.int32)
    n = len(rd_raw)
    return BgpTable(
        family=np.asarray(s["family"][rows], dtype=np.uint8),
        hi=np.asarray(s["hi"][rows], dtype=np.uint64),
        lo=np.asarray(s["lo"][rows], dtype=np.uint64),
        length=np.asarray(s["length"][rows], dtype=np.int16),
        rd=rd,
        rds=rds,
        nh_family=np.asarray(s["nh_family"][rows], dtype=np.uint8),
        nh_hi=np.asarray(s["nh_hi"][rows], dtype=np.uint64),
        nh_lo=np.asarray(s["nh_lo"][rows], dtype=np.uint64),
        rts=np.asarray(s["rts"][rows], dtype=np.int32),
        rt_sets=rt_sets,
        local_pref=np.asarray(s["local_pref"][rows], dtype=np.int64),
        med=np.asarray(s["med"][rows], dtype=np.int64),
        as_path_len=np.asarray(s["as_path_len"][rows], dtype=np.int64),
        best=np.full(n, -1, dtype=np.int8),
        multipath=np.full(n, -1, dtype=np.int8),
        originator=np.asarray(s["originator"][rows], dtype=np.int32),
        originators=origins,
        vrf=np.full(n, -1, dtype=np.int32),
        vrfs=[],
        file="<bmp>",
    )


# --- snapshot files ----------------------------------------------------------------------------


def write_snapshot(directory: Path, rr: RrTables, *, write_mrt: bool = True) -> None:
    """Write a route reflector version as native files (``manifest.json``, Parquet) and MRT."""
    from flowmatrix.routing.mrt import write_mrt as write_mrt_file

    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(bgp_table_arrow(rr.vpn, vpn=True), directory / "vpn.parquet.tmp")
    pq.write_table(bgp_table_arrow(rr.global_bgp, vpn=False), directory / "global.parquet.tmp")
    (directory / "vpn.parquet.tmp").replace(directory / "vpn.parquet")
    (directory / "global.parquet.tmp").replace(directory / "global.parquet")
    if write_mrt:
        write_mrt_file(
            directory / "table.mrt.tmp", rr.vpn, rr.global_bgp, taken_at_ms=rr.taken_at_ms
        )
        (directory / "table.mrt.tmp").replace(directory / "table.mrt")
    manifest = {
        "format": ROUTING_FORMAT,
        "taken_at": iso_time(rr.taken_at_ms),
        "source": "bmp",
        "route_reflector": {
            "taken_at": iso_time(rr.taken_at_ms),
            "vpn": "vpn.parquet",
            "global": "global.parquet",
        },
        "pes": {},
    }
    tmp = directory / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    tmp.replace(directory / "manifest.json")


def read_snapshot(directory: Path, network: NetworkConfig) -> RrTables:
    """The route reflector version a snapshot directory holds."""
    state = read_native(directory, network)
    if not state.rr_versions:
        msg = f"{directory}: snapshot without route reflector tables"
        raise RoutingError(msg)
    return state.rr_versions[-1]
