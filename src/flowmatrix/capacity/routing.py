"""Demands + topology → per-arc loads under IGP shortest paths with per-hop ECMP.

All demands are routed at once, destination by destination, never path by
path:

1. one Dijkstra run from every destination on the *reversed* graph
   (``scipy.sparse.csgraph.dijkstra``) gives ``dist[t, v]``, the IGP distance
   from router ``v`` to destination ``t``;
2. arc ``u→v`` is on the shortest-path DAG towards ``t`` when
   ``dist[t, u] == metric(u→v) + dist[t, v]``; every router splits the
   traffic it holds for ``t`` equally over its DAG arcs (parallel links are
   separate next hops) — equal splitting *at every hop*, as routers do;
3. traffic is pushed through each DAG in topological order (decreasing
   distance), all destinations advancing together one rank per step, so a
   router's total for ``t`` is complete before it is split.

The per-destination state (``dist``, split fractions, flows) is kept so
that failure what-ifs and weight searches recompute only the destinations
whose DAG a change touches. Demands whose destination cannot be reached are
returned in :attr:`Routing.unrouted`, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from flowmatrix.capacity.demands import Demands, make_demands
from flowmatrix.capacity.topology import Topology

__all__ = [
    "DagState",
    "MappedDemands",
    "Routing",
    "Unrouted",
    "map_demands",
    "route",
    "route_destinations",
    "service_node_matrix",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Unrouted:
    """Traffic that could not be routed, with the reason."""

    ingress: str
    egress: str
    bps: float
    #: ``unknown ingress``, ``unknown egress``, ``unreachable``, ``endpoint failed``
    reason: str


@dataclass(frozen=True)
class MappedDemands:
    """Demands mapped onto router indexes; ``row`` points back into the Demands."""

    src: IntArray
    dst: IntArray
    bps: FloatArray
    row: IntArray

    def __len__(self) -> int:
        return int(self.bps.shape[0])


def map_demands(topology: Topology, demands: Demands) -> tuple[MappedDemands, list[Unrouted]]:
    """Map matrix endpoints onto routers; service node names split over their PEs.

    A name that is a router maps to it; a name that is a service node (a
    PoP-to-PoP matrix) is split equally over that node's ``pe`` routers (all
    its routers when it has none); any other name is reported as unrouted.
    """
    index = topology.node_index
    members: dict[str, list[int]] = {}
    for i, node in enumerate(topology.nodes):
        members.setdefault(node.service_node, []).append(i)
    pes = {
        sn: [i for i in idx if topology.nodes[i].role == "pe"] or idx for sn, idx in members.items()
    }

    def targets(name: str) -> list[int] | None:
        if name in index:
            return [index[name]]
        return pes.get(name)

    unrouted: list[Unrouted] = []
    src: list[int] = []
    dst: list[int] = []
    bps: list[float] = []
    row: list[int] = []
    # dtype: an empty matrix must still give booleans (numpy's default is float64)
    simple = np.array([str(n) in index for n in demands.ingress], dtype=bool) & np.array(
        [str(n) in index for n in demands.egress], dtype=bool
    )
    if len(demands) and simple.all():
        s = np.fromiter((index[str(n)] for n in demands.ingress), np.int64, len(demands))
        d = np.fromiter((index[str(n)] for n in demands.egress), np.int64, len(demands))
        return MappedDemands(s, d, demands.bps.copy(), np.arange(len(demands))), []
    for k, (ing, egr, value) in enumerate(
        zip(demands.ingress, demands.egress, demands.bps, strict=True)
    ):
        a, b = targets(str(ing)), targets(str(egr))
        if a is None or b is None:
            reason = "unknown ingress" if a is None else "unknown egress"
            if value > 0:
                unrouted.append(Unrouted(str(ing), str(egr), float(value), reason))
            continue
        share = float(value) / (len(a) * len(b))
        for u in a:
            for v in b:
                src.append(u)
                dst.append(v)
                bps.append(share)
                row.append(k)
    mapped = MappedDemands(
        np.array(src, dtype=np.int64),
        np.array(dst, dtype=np.int64),
        np.array(bps, dtype=np.float64),
        np.array(row, dtype=np.int64),
    )
    return mapped, unrouted


@dataclass(frozen=True)
class DagState:
    """Shortest-path DAGs and flows towards a set of destinations (row ``i`` ↔ ``dests[i]``)."""

    dests: IntArray
    #: ``dist[i, v]``: IGP distance from router v to dests[i] (inf: unreachable)
    dist: FloatArray
    #: ``frac[i, a]``: share of its traffic for dests[i] that arc a's tail sends on a
    frac: FloatArray
    #: ``demand_to[i, v]``: traffic originating at v for dests[i]
    demand_to: FloatArray
    #: ``node_flow[i, v]``: all traffic at v for dests[i] (own + transit)
    node_flow: FloatArray
    #: ``arc_flow[i, a]``: traffic for dests[i] on arc a
    arc_flow: FloatArray


class _Graph:
    """Arc arrays and the structures the DAG pushes reuse across calls."""

    def __init__(self, n: int, src: IntArray, dst: IntArray) -> None:
        self.n = n
        self.src = src
        self.dst = dst
        m = len(src)
        # hops: distinct (tail, head) pairs; parallel arcs share a hop
        key = src * n + dst
        hop_keys, hop_of_arc = np.unique(key, return_inverse=True)
        self.hop_src = hop_keys // n
        self.hop_dst = hop_keys % n
        n_hops = len(hop_keys)
        self.arc_to_hop = sp.csr_matrix((np.ones(m), (np.arange(m), hop_of_arc)), shape=(m, n_hops))
        self.arc_to_tail = sp.csr_matrix((np.ones(m), (np.arange(m), src)), shape=(m, n))
        deg = np.bincount(self.hop_src, minlength=n)
        width = max(1, int(deg.max()) if n_hops else 1)
        order = np.argsort(self.hop_src, kind="stable")
        start = np.concatenate([[0], np.cumsum(deg)[:-1]])
        slot = np.arange(n_hops) - start[self.hop_src[order]]
        #: out_hops[v, k]: k-th hop out of v, or the sentinel n_hops
        self.out_hops = np.full((n, width), n_hops, dtype=np.int64)
        self.out_hops[self.hop_src[order], slot] = order
        self.hop_dst_ext = np.append(self.hop_dst, n)


def _dags(
    graph: _Graph, metric: FloatArray, alive: BoolArray, dests: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Distances to ``dests`` and per-arc split fractions of their shortest-path DAGs."""
    n, src, dst = graph.n, graph.src, graph.dst
    live = np.flatnonzero(alive)
    # parallel arcs: Dijkstra needs the cheapest; a sparse matrix would sum them
    key = src[live] * n + dst[live]
    order = np.lexsort((metric[live], key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = live[order[first]]
    reversed_graph = sp.csr_matrix((metric[pick], (dst[pick], src[pick])), shape=(n, n))
    dist = np.atleast_2d(dijkstra(reversed_graph, directed=True, indices=dests))
    du = dist[:, src]
    dv = dist[:, dst]
    with np.errstate(invalid="ignore"):
        on = (
            np.isfinite(du)
            & np.isfinite(dv)
            & (np.abs(du - metric - dv) <= 1e-9 * np.maximum(1.0, du))
            & alive
        )
    on_f = on.astype(np.float64)
    count = np.asarray(graph.arc_to_tail.T.dot(on_f.T)).T  # (T, n) DAG arcs per router
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(on, on_f / count[:, src], 0.0)
    return dist, frac


def _push(graph: _Graph, dist: FloatArray, frac: FloatArray, demand_to: FloatArray) -> FloatArray:
    """Node flows: push each router's traffic down its DAG in decreasing distance order."""
    t_count, n = demand_to.shape
    hop_frac = np.asarray(graph.arc_to_hop.T.dot(frac.T)).T  # (T, hops)
    hop_frac = np.concatenate([hop_frac, np.zeros((t_count, 1))], axis=1)
    flow = np.zeros((t_count, n + 1))
    flow[:, :n] = demand_to
    order = np.argsort(-dist, axis=1, kind="stable")
    rows = np.arange(t_count)[:, None]
    out_hops = graph.out_hops
    hop_dst = graph.hop_dst_ext
    for rank in range(n - 1):
        v = order[:, rank]
        amount = flow[rows[:, 0], v]
        if not amount.any():
            continue
        hops = out_hops[v]
        flow[rows, hop_dst[hops]] += amount[:, None] * hop_frac[rows, hops]
    return flow[:, :n]


def route_destinations(
    topology: Topology,
    metric: FloatArray,
    alive: BoolArray,
    dests: IntArray,
    demand_to: FloatArray,
    *,
    graph: _Graph | None = None,
) -> DagState:
    """Route the traffic ``demand_to[i, v]`` (from v to dests[i]) with the given arc state."""
    g = graph if graph is not None else _graph_of(topology)
    dist, frac = _dags(g, metric, alive, dests)
    node_flow = _push(g, dist, frac, demand_to)
    arc_flow = node_flow[:, g.src] * frac
    return DagState(dests, dist, frac, demand_to, node_flow, arc_flow)


def _graph_of(topology: Topology) -> _Graph:
    arcs = topology.arcs
    return _Graph(topology.n_nodes, arcs.src, arcs.dst)


def demand_columns(mapped: MappedDemands, n: int) -> tuple[IntArray, FloatArray]:
    """Destinations with demand and ``demand_to[i, v]`` (traffic from v to dests[i])."""
    dests, inverse = np.unique(mapped.dst, return_inverse=True)
    demand_to = np.zeros((len(dests), n))
    np.add.at(demand_to, (inverse, mapped.src), mapped.bps)
    # traffic a router sends to itself never reaches a link
    demand_to[np.arange(len(dests)), dests] = 0.0
    return dests.astype(np.int64), demand_to


@dataclass(frozen=True)
class Routing:
    """Loads of every directed arc for one matrix on one topology."""

    topology: Topology
    demands: Demands
    mapped: MappedDemands
    #: IGP metric per arc used for this routing
    metric: FloatArray
    #: arcs in service (failures set entries False)
    alive: BoolArray
    state: DagState
    #: load per arc in bit/s
    load_bps: FloatArray
    unrouted: tuple[Unrouted, ...]
    graph: _Graph

    @property
    def utilization(self) -> FloatArray:
        """Load over capacity per arc."""
        return self.load_bps / self.topology.arcs.capacity_bps

    @property
    def max_utilization(self) -> float:
        """Highest arc utilization (0 for a topology without links)."""
        util = self.utilization
        return float(util.max()) if util.size else 0.0

    @cached_property
    def service_load_bps(self) -> FloatArray:
        """Traffic each service node switches: what enters it from customers or other nodes."""
        topo = self.topology
        sn = topo.node_service
        arcs = topo.arcs
        reachable = np.isfinite(self.state.dist)
        originating = (self.state.demand_to * reachable).sum(axis=0)
        local = self._local_bps()
        trunk = sn[arcs.src] != sn[arcs.dst]
        k = len(topo.service_nodes)
        own = np.bincount(sn, weights=originating + local, minlength=k)
        arriving = np.bincount(sn[arcs.dst[trunk]], weights=self.load_bps[trunk], minlength=k)
        return np.asarray(own + arriving, dtype=np.float64)

    def _local_bps(self) -> FloatArray:
        same = self.mapped.src == self.mapped.dst
        return np.asarray(
            np.bincount(
                self.mapped.src[same],
                weights=self.mapped.bps[same],
                minlength=self.topology.n_nodes,
            ),
            dtype=np.float64,
        )

    @property
    def service_utilization(self) -> FloatArray:
        """Service node load over its capacity (NaN where no capacity is known)."""
        return self.service_load_bps / self.topology.service_capacity_bps

    def routing_matrix(self, columns: IntArray | None = None) -> sp.csr_matrix:
        """Sparse (arcs × mapped demands) matrix of the share of each demand on each arc.

        ``routing_matrix() @ mapped.bps`` gives :attr:`load_bps`; columns follow
        :attr:`mapped`, so a what-if on demand growth is one sparse product.
        With ``columns``, only those demands' columns are filled (others are 0).
        """
        g = self.graph
        n, m = g.n, len(g.src)
        st = self.state
        position = {int(t): i for i, t in enumerate(st.dests)}
        rows: list[IntArray] = []
        cols: list[IntArray] = []
        vals: list[FloatArray] = []
        by_dest: dict[int, list[int]] = {}
        wanted = np.arange(len(self.mapped)) if columns is None else np.asarray(columns)
        for k in wanted:
            s, d = self.mapped.src[k], self.mapped.dst[k]
            if s != d:
                by_dest.setdefault(int(d), []).append(int(k))
        for t, ks in by_dest.items():
            i = position[t]
            frac = st.frac[i]
            on = np.flatnonzero(frac)
            hop = sp.csr_matrix((frac[on], (g.src[on], g.dst[on])), shape=(n, n))
            to_arc = sp.csr_matrix((frac[on], (g.src[on], on)), shape=(n, m))
            sources = self.mapped.src[ks]
            reach = np.isfinite(st.dist[i, sources])
            start = sp.csr_matrix(
                (reach.astype(np.float64), (np.arange(len(ks)), sources)), shape=(len(ks), n)
            )
            total = start.copy()
            current = start
            for _ in range(n):
                current = current @ hop
                current.eliminate_zeros()
                if current.nnz == 0:
                    break
                total = total + current
            share = (total @ to_arc).tocoo()
            rows.append(share.col.astype(np.int64))
            cols.append(np.asarray(ks, dtype=np.int64)[share.row])
            vals.append(share.data)
        if not rows:
            return sp.csr_matrix((m, len(self.mapped)))
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(m, len(self.mapped)),
        )


def route(
    topology: Topology,
    demands: Demands,
    *,
    metric: FloatArray | None = None,
    alive: BoolArray | None = None,
) -> Routing:
    """Route every demand over IGP shortest paths with per-hop ECMP; report the unroutable.

    Examples
    --------
    >>> from flowmatrix.capacity.topology import Link, Node, build_topology
    >>> from flowmatrix.capacity.demands import make_demands
    >>> t = build_topology(
    ...     [Node("s", "S"), Node("a", "A"), Node("b", "B"), Node("t", "T")],
    ...     [Link("s-a", "s", "a", 10, 1, 1), Link("s-b", "s", "b", 10, 1, 1),
    ...      Link("a-t", "a", "t", 10, 1, 1), Link("b-t", "b", "t", 10, 1, 1)],
    ... )
    >>> r = route(t, make_demands(["s"], ["t"], [8.0]))
    >>> r.load_bps.tolist()
    [4.0, 0.0, 4.0, 0.0, 4.0, 0.0, 4.0, 0.0]
    """
    arcs = topology.arcs
    m = len(arcs)
    metric_ = arcs.metric.copy() if metric is None else np.asarray(metric, dtype=np.float64)
    alive_ = np.ones(m, dtype=bool) if alive is None else np.asarray(alive, dtype=bool)
    mapped, unrouted = map_demands(topology, demands)
    graph = _graph_of(topology)
    dests, demand_to = demand_columns(mapped, topology.n_nodes)
    state = route_destinations(topology, metric_, alive_, dests, demand_to, graph=graph)
    load = state.arc_flow.sum(axis=0) if len(dests) else np.zeros(m)
    unrouted.extend(unreachable(topology, state))
    return Routing(
        topology=topology,
        demands=demands,
        mapped=mapped,
        metric=metric_,
        alive=alive_,
        state=state,
        load_bps=load,
        unrouted=tuple(unrouted),
        graph=graph,
    )


def unreachable(topology: Topology, state: DagState) -> list[Unrouted]:
    """Demands of ``state`` whose destination their ingress router cannot reach."""
    lost = (state.demand_to > 0) & ~np.isfinite(state.dist)
    out = []
    for i, v in zip(*np.nonzero(lost), strict=True):
        out.append(
            Unrouted(
                topology.nodes[int(v)].name,
                topology.nodes[int(state.dests[i])].name,
                float(state.demand_to[i, v]),
                "unreachable",
            )
        )
    return out


def service_node_matrix(topology: Topology, demands: Demands) -> Demands:
    """Aggregate a router-to-router matrix into a service-node-to-service-node matrix."""
    of = {node.name: node.service_node for node in topology.nodes}

    def pop(name: str) -> str:
        # service node names and unknown names stay as they are
        return of.get(name, name)

    return make_demands(
        [pop(str(n)) for n in demands.ingress],
        [pop(str(n)) for n in demands.egress],
        demands.bps,
        source=demands.source,
        statistic=demands.statistic,
        period=demands.period,
    )
