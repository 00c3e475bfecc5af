"""A routing over threshold → a rerouting plan: explicit TE paths (LP) or IGP metric changes.

**Explicit paths.** A path-based multicommodity-flow LP minimises the
maximum utilization ``U``. Each candidate demand ``d`` (volume ``D_d``) may
keep its IGP routing (per-hop ECMP shares ``r_dh`` on each hop ``h``) or use
one of its ``k`` shortest simple paths by metric (Yen's algorithm from
networkx; above ``YEN_MAX_PAIRS`` candidates, the shortest path plus the
shortest detours around each of the hottest links, which scales)::

    min U
    s.t.  bg_h + Σ_d D_d (r_dh x_d0 + Σ_{p∋h} x_dp) ≤ U c_h     for every hop h
          x_d0 + Σ_p x_dp = 1,  x ≥ 0                           for every candidate d

A *hop* is an ordered router pair; parallel links form one hop of their
summed capacity and a tunnel's traffic spreads over them in proportion to
capacity. ``bg_h`` is the IGP load of the demands that are not candidates.
Volumes and capacities are divided by the median hop capacity before
solving, so coefficients are O(1) (HiGHS returned a suboptimal "optimal"
on raw kbit/s capacities around 1e7). Keeping the IGP routing is always a
choice, so the optimum ``U*`` never exceeds the IGP maximum. A second LP
then keeps ``U`` at most ``max(U*, margin × threshold)`` and minimises
bandwidth × hops, counting a tunnel path one hop longer than it is, so the
plan moves little traffic, onto short detours, with few tunnels. When there are more
demands than ``max_candidates``, only the largest users of the hottest links
become candidates — the plan says so in its notes.

**IGP metrics.** A local search in the style of Fortz and Thorup changes one
arc metric at a time, evaluates the maximum utilization (ties broken by
their piecewise-linear congestion cost) with the ECMP router, recomputing
only the destinations whose DAG the change can touch, accepts improvements,
and perturbs the best solution when it stalls, until its time or
evaluation budget is spent. Changes that do not help are then reverted.

Either way the reported utilization is recomputed from scratch: demands
left on the IGP are routed again and tunnel volumes are summed along their
paths; nothing is read back from the LP or the search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import dijkstra

from flowmatrix.capacity.adequacy import DEFAULT_THRESHOLD
from flowmatrix.capacity.demands import Demands, make_demands
from flowmatrix.capacity.routing import Routing, route, route_destinations
from flowmatrix.capacity.topology import Topology
from flowmatrix.errors import CapacityError

__all__ = [
    "LpMethod",
    "MetricChange",
    "PathSearch",
    "Plan",
    "PlanMethod",
    "Tunnel",
    "best_plan",
    "candidate_paths",
    "detour_paths",
    "plan_metrics",
    "plan_paths",
    "recompute_loads",
    "render_iosxr",
    "render_junos",
    "rerouting_plans",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PlanMethod = Literal["paths", "metrics", "both"]
LpMethod = Literal["highs", "highs-ds", "highs-ipm"]
PathSearch = Literal["auto", "yen", "detours"]

#: candidate demands up to which Yen's k shortest paths (networkx) is used
YEN_MAX_PAIRS = 400
#: hottest directed links that detour paths avoid, one Dijkstra each
DETOUR_HOPS = 8


@dataclass(frozen=True, slots=True)
class Tunnel:
    """An explicit-path TE tunnel carrying ``share`` of one ingress→egress demand."""

    name: str
    ingress: str
    egress: str
    #: routers from ingress to egress
    path: tuple[str, ...]
    bps: float
    share: float


@dataclass(frozen=True, slots=True)
class MetricChange:
    """A new IGP metric on one direction of a link, configured on router ``router``."""

    link: str
    router: str
    neighbor: str
    old_metric: float
    new_metric: float


@dataclass(frozen=True)
class Plan:
    """A rerouting plan with its effect, recomputed independently of how it was found."""

    #: ``explicit-paths`` or ``igp-metrics``
    method: str
    threshold: float
    before_max_utilization: float
    after_max_utilization: float
    #: per arc load after the plan, recomputed by routing and summing
    load_bps: FloatArray
    tunnels: tuple[Tunnel, ...] = ()
    metric_changes: tuple[MetricChange, ...] = ()
    #: the LP's minimum max-utilization (explicit paths only)
    lp_optimum: float | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    #: routings evaluated by the weight search
    evaluations: int = 0
    #: per arc metric after the plan (IGP metrics only)
    metric: FloatArray | None = field(default=None, repr=False)

    @property
    def feasible(self) -> bool:
        """True when no link exceeds the threshold after the plan."""
        return self.after_max_utilization <= self.threshold + 1e-9

    @property
    def changes(self) -> int:
        """Number of configuration changes (tunnels or metrics)."""
        return len(self.tunnels) + len(self.metric_changes)


# --- shared ---------------------------------------------------------------------------------


def _hop_capacity(routing: Routing) -> FloatArray:
    cap = routing.topology.arcs.capacity_bps * routing.alive
    return np.asarray(routing.graph.arc_to_hop.T.dot(cap), dtype=np.float64)


def _path_arc_loads(routing: Routing, tunnels: Sequence[Tunnel]) -> FloatArray:
    """Arc loads of tunnels: each hop's volume split over its live parallel arcs by capacity."""
    topo = routing.topology
    arcs = topo.arcs
    index = topo.node_index
    cap = arcs.capacity_bps * routing.alive
    by_pair: dict[tuple[int, int], list[int]] = {}
    for a in np.flatnonzero(routing.alive):
        by_pair.setdefault((int(arcs.src[a]), int(arcs.dst[a])), []).append(int(a))
    load = np.zeros(len(arcs))
    for tunnel in tunnels:
        hops = [index[r] for r in tunnel.path]
        for u, v in pairwise(hops):
            members = by_pair.get((u, v))
            if not members:
                msg = f"tunnel {tunnel.name}: no live link from {tunnel.path} hop {u}->{v}"
                raise CapacityError(msg)
            total = cap[members].sum()
            load[members] += tunnel.bps * cap[members] / total
    return load


def recompute_loads(
    routing: Routing,
    tunnels: Sequence[Tunnel] = (),
    metric: FloatArray | None = None,
) -> FloatArray:
    """Arc loads after a plan, from scratch: route what stays on the IGP, sum the tunnels."""
    topo = routing.topology
    names = np.array([n.name for n in topo.nodes], dtype=np.str_)
    m = routing.mapped
    ingress = list(names[m.src]) + [t.ingress for t in tunnels]
    egress = list(names[m.dst]) + [t.egress for t in tunnels]
    volume = np.concatenate([m.bps, [-t.bps for t in tunnels]])
    remaining = make_demands(ingress, egress, volume)
    clipped = make_demands(remaining.ingress, remaining.egress, np.maximum(remaining.bps, 0.0))
    igp = route(
        topo, clipped, metric=metric if metric is not None else routing.metric, alive=routing.alive
    )
    return igp.load_bps + _path_arc_loads(routing, tunnels)


def _max_util(load: FloatArray, capacity: FloatArray) -> float:
    return float((load / capacity).max()) if load.size else 0.0


# --- explicit paths -------------------------------------------------------------------------


def candidate_paths(
    routing: Routing, pairs: Sequence[tuple[int, int]], k: int
) -> list[list[tuple[int, ...]]]:
    """The ``k`` shortest simple router paths by metric for each (src, dst), on live arcs."""
    import networkx as nx

    arcs = routing.topology.arcs
    graph = nx.DiGraph()
    graph.add_nodes_from(range(routing.topology.n_nodes))
    for a in np.flatnonzero(routing.alive):
        u, v, w = int(arcs.src[a]), int(arcs.dst[a]), float(routing.metric[a])
        if not graph.has_edge(u, v) or graph[u][v]["weight"] > w:
            graph.add_edge(u, v, weight=w)
    out: list[list[tuple[int, ...]]] = []
    for s, t in pairs:
        paths: list[tuple[int, ...]] = []
        try:
            for path in nx.shortest_simple_paths(graph, s, t, weight="weight"):
                paths.append(tuple(path))
                if len(paths) >= k:
                    break
        except nx.NetworkXNoPath:
            pass
        out.append(paths)
    return out


def detour_paths(
    routing: Routing, pairs: Sequence[tuple[int, int]], k: int, avoid: Sequence[int]
) -> list[list[tuple[int, ...]]]:
    """Up to ``k`` short paths per (src, dst): the shortest, and shortest detours around hot hops.

    One Dijkstra per scenario from all destinations at once: the network as
    it is, without each hop of ``avoid`` (arcs, hottest first), and without
    all of them; each pair keeps its ``k`` shortest distinct paths by metric.
    The scalable stand-in for Yen's k shortest paths on large matrices.
    """
    g = routing.graph
    n = g.n
    metric = routing.metric
    dests = np.unique(np.array([t for _, t in pairs], dtype=np.int64))
    where = {int(t): i for i, t in enumerate(dests)}
    hop_pairs = [(int(g.src[a]), int(g.dst[a])) for a in avoid]
    scenarios: list[list[tuple[int, int]]] = [[]] + [[h] for h in hop_pairs]
    if len(hop_pairs) > 1:
        scenarios.append(hop_pairs)
    live = np.flatnonzero(routing.alive)
    key = g.src[live] * n + g.dst[live]
    order = np.lexsort((metric[live], key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = live[order[first]]
    weight = {(int(g.src[a]), int(g.dst[a])): float(metric[a]) for a in pick}
    found: list[dict[tuple[int, ...], float]] = [{} for _ in pairs]
    for removed in scenarios:
        blocked = {u * n + v for u, v in removed}
        keep = pick[~np.isin(g.src[pick] * n + g.dst[pick], list(blocked))] if blocked else pick
        graph = sp.csr_matrix((metric[keep], (g.dst[keep], g.src[keep])), shape=(n, n))
        _, pred = dijkstra(graph, directed=True, indices=dests, return_predecessors=True)
        pred = np.atleast_2d(pred)
        for k_pair, (s, t) in enumerate(pairs):
            row = pred[where[t]]
            path = [s]
            while path[-1] != t and len(path) <= n:
                nxt = int(row[path[-1]])
                if nxt < 0:
                    break
                path.append(nxt)
            if path[-1] == t:
                found[k_pair][tuple(path)] = sum(weight[h] for h in pairwise(path))
    return [sorted(f, key=lambda p: (f[p], len(p)))[:k] for f in found]


def _choose_candidates(
    routing: Routing, threshold: float, max_candidates: int
) -> tuple[IntArray, sp.csr_matrix, str]:
    """Mapped demand rows allowed to move, their routing-matrix columns, and a note."""
    m = routing.mapped
    st = routing.state
    reachable = (
        np.isfinite(
            st.dist[np.searchsorted(st.dests, m.dst).clip(0, max(len(st.dests) - 1, 0)), m.src]
        )
        if len(st.dests)
        else np.zeros(len(m), bool)
    )
    movable = np.flatnonzero((m.src != m.dst) & (m.bps > 0) & reachable)
    if len(movable) <= max_candidates:
        return movable, routing.routing_matrix(movable), ""
    util = routing.utilization
    peak = float(util.max())
    hot = np.flatnonzero(util >= min(threshold, 0.9 * peak))
    matrix = routing.routing_matrix(movable)
    crossing = np.asarray(matrix[hot].max(axis=0).todense()).ravel() * m.bps
    ranked = movable[np.argsort(-crossing[movable], kind="stable")]
    ranked = ranked[crossing[ranked] > 0][:max_candidates]
    note = (
        f"only {len(ranked)} of {len(movable)} demands were allowed to move: the largest users "
        f"of the {len(hot)} hottest directed links (utilization ≥ {min(threshold, 0.9 * peak):.2f})"
    )
    return np.sort(ranked), matrix, note


def _solve(
    c: FloatArray,
    a_ub: sp.csr_matrix,
    b_ub: FloatArray,
    a_eq: sp.csr_matrix,
    b_eq: FloatArray,
    bounds: list[tuple[float, float | None]],
    method: LpMethod,
) -> FloatArray:
    result = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method=method)
    if result.status != 0:
        msg = f"the rerouting LP failed: {result.message}"
        raise CapacityError(msg)
    return np.asarray(result.x, dtype=np.float64)


def plan_paths(
    routing: Routing,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    k: int = 4,
    max_candidates: int = 2000,
    margin: float | None = 0.95,
    method: LpMethod = "highs",
    path_search: PathSearch = "auto",
) -> Plan:
    """Explicit-path plan from the min-max-utilization path LP (see module doc).

    ``margin``: the second LP may leave utilization up to ``margin ×
    threshold`` (when the optimum is lower) to move as little traffic as
    possible; None keeps the optimum.
    """
    started = time.perf_counter()
    topo = routing.topology
    capacity = topo.arcs.capacity_bps
    before = routing.max_utilization
    cands, matrix, note = _choose_candidates(routing, threshold, max_candidates)
    notes = [note] if note else []
    g = routing.graph
    hop_cap = _hop_capacity(routing)
    n_hops = len(hop_cap)
    m = routing.mapped
    volume = m.bps[cands]
    igp_arc = matrix[:, cands]  # arcs × candidates
    background = routing.load_bps - np.asarray(igp_arc @ volume).ravel()
    bg_hop = np.asarray(g.arc_to_hop.T.dot(np.maximum(background, 0.0))).ravel()
    igp_hop = (g.arc_to_hop.T @ igp_arc).tocsc()  # hops × candidates
    pairs = [(int(m.src[i]), int(m.dst[i])) for i in cands]
    if path_search == "yen" or (path_search == "auto" and len(pairs) <= YEN_MAX_PAIRS):
        paths = candidate_paths(routing, pairs, k)
    else:
        util = routing.utilization
        hot = np.argsort(-util)[:DETOUR_HOPS]
        hot = hot[util[hot] >= min(threshold, 0.9 * before)]
        paths = detour_paths(routing, pairs, k, hot.tolist())
        notes.append(
            f"candidate paths: the shortest plus detours around the {len(hot)} hottest links "
            f"(Yen's k shortest paths is kept for at most {YEN_MAX_PAIRS} demands)"
        )
    hop_id = {
        (int(u), int(v)): h for h, (u, v) in enumerate(zip(g.hop_src, g.hop_dst, strict=True))
    }
    live_hops = hop_cap > 0
    scale = float(np.median(hop_cap[live_hops])) if live_hops.any() else 1.0
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    eq_rows: list[int] = []
    eq_cols: list[int] = []
    column_of: list[tuple[int, int]] = []  # (candidate, option) per column; option 0 = IGP
    for c in range(len(cands)):
        d = volume[c] / scale
        col = len(column_of)
        column_of.append((c, 0))
        start, end = igp_hop.indptr[c], igp_hop.indptr[c + 1]
        rows.extend(igp_hop.indices[start:end].tolist())
        cols.extend([col] * (end - start))
        vals.extend((igp_hop.data[start:end] * d).tolist())
        eq_rows.append(c)
        eq_cols.append(col)
        for p, path in enumerate(paths[c], start=1):
            col = len(column_of)
            column_of.append((c, p))
            for u, v in pairwise(path):
                rows.append(hop_id[(u, v)])
                cols.append(col)
                vals.append(d)
            eq_rows.append(c)
            eq_cols.append(col)
    n_x = len(column_of)
    u_col = n_x
    rows.extend(range(n_hops))
    cols.extend([u_col] * n_hops)
    vals.extend((-hop_cap / scale).tolist())
    a_ub = sp.csr_matrix((vals, (rows, cols)), shape=(n_hops, n_x + 1))
    b_ub = -bg_hop / scale
    a_eq = sp.csr_matrix((np.ones(len(eq_rows)), (eq_rows, eq_cols)), shape=(len(cands), n_x + 1))
    b_eq = np.ones(len(cands))
    # hops without capacity must carry nothing: their row reads usage ≤ -bg (bg is 0 there)
    bounds: list[tuple[float, float | None]] = [(0.0, 1.0)] * n_x + [(0.0, None)]
    objective = np.zeros(n_x + 1)
    objective[u_col] = 1.0
    x = _solve(objective, a_ub, b_ub, a_eq, b_eq, bounds, method)
    optimum = float(x[u_col])
    if margin is not None and optimum < margin * threshold:
        target = margin * threshold
    else:
        target = optimum * (1 + 1e-7) + 1e-9
    # bandwidth × hops, plus one hop's worth for every unit moved into a tunnel
    igp_hops = np.asarray(igp_hop.sum(axis=0)).ravel()
    cost = np.zeros(n_x + 1)
    for col, (c, option) in enumerate(column_of):
        hops = igp_hops[c] if option == 0 else len(paths[c][option - 1])
        cost[col] = volume[c] / scale * hops
    bounds[u_col] = (0.0, target)
    x = _solve(cost, a_ub, b_ub, a_eq, b_eq, bounds, method)
    tunnels: list[Tunnel] = []
    names = [n.name for n in topo.nodes]
    for col, (c, option) in enumerate(column_of):
        if option == 0 or x[col] <= 1e-6:
            continue
        hops = tuple(names[v] for v in paths[c][option - 1])
        tunnels.append(
            Tunnel(
                name=f"fm-{hops[0]}-{hops[-1]}-{option}",
                ingress=hops[0],
                egress=hops[-1],
                path=hops,
                bps=float(x[col] * volume[c]),
                share=float(x[col]),
            )
        )
    load = recompute_loads(routing, tunnels)
    after = _max_util(load, capacity)
    if after > threshold:
        notes.append(
            f"no explicit-path plan meets the threshold {threshold:.2f}: the best reachable "
            f"maximum utilization with {k} candidate paths per demand is {optimum:.3f}"
        )
    return Plan(
        method="explicit-paths",
        threshold=threshold,
        before_max_utilization=before,
        after_max_utilization=after,
        load_bps=load,
        tunnels=tuple(tunnels),
        lp_optimum=optimum,
        notes=tuple(notes),
        seconds=time.perf_counter() - started,
    )


# --- IGP metrics ----------------------------------------------------------------------------

#: Fortz–Thorup congestion cost: utilization breakpoints and slopes
_PHI_BREAKS = np.array([0.0, 1 / 3, 2 / 3, 0.9, 1.0, 1.1])
_PHI_SLOPES = np.array([1.0, 3.0, 10.0, 70.0, 500.0, 5000.0])


def _phi(util: FloatArray, capacity: FloatArray) -> float:
    """Fortz–Thorup piecewise-linear congestion cost, weighted by capacity."""
    excess = np.clip(util[:, None] - _PHI_BREAKS[None, :], 0.0, None)
    steps = np.diff(np.concatenate([[0.0], _PHI_SLOPES]))
    return float((excess @ steps * capacity).sum() / capacity.sum())


class _WeightState:
    """Metrics and their routing towards every destination, updated one metric at a time."""

    def __init__(self, routing: Routing, metric: FloatArray) -> None:
        self.routing = routing
        self.capacity = routing.topology.arcs.capacity_bps
        self.metric = metric.copy()
        self.evaluations = 0
        self.reset(metric)

    def reset(self, metric: FloatArray) -> None:
        r = self.routing
        st = r.state
        self.metric = metric.copy()
        state = route_destinations(
            r.topology, self.metric, r.alive, st.dests, st.demand_to, graph=r.graph
        )
        self.evaluations += 1
        self.dist, self.frac, self.arc_flow = state.dist, state.frac, state.arc_flow
        self.load = self.arc_flow.sum(axis=0) if len(st.dests) else np.zeros(len(self.metric))
        self.score = self.evaluate(self.load)

    def evaluate(self, load: FloatArray) -> tuple[float, float]:
        util = load / self.capacity
        return (round(float(util.max()) if util.size else 0.0, 9), _phi(util, self.capacity))

    def trial(
        self, arc: int, value: float
    ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, tuple[float, float]]:
        r = self.routing
        g = r.graph
        old = self.metric[arc]
        if value > old:
            touched = self.frac[:, arc] > 0
        else:
            src, dst = g.src[arc], g.dst[arc]
            touched = value + self.dist[:, dst] <= self.dist[:, src] * (1 + 1e-12)
        idx = np.flatnonzero(touched)
        metric = self.metric.copy()
        metric[arc] = value
        st = r.state
        state = route_destinations(
            r.topology, metric, r.alive, st.dests[idx], st.demand_to[idx], graph=g
        )
        self.evaluations += 1
        load = self.load - self.arc_flow[idx].sum(axis=0) + state.arc_flow.sum(axis=0)
        load = np.maximum(load, 0.0)
        return idx, state.dist, state.frac, state.arc_flow, load, self.evaluate(load)

    def accept(
        self,
        arc: int,
        value: float,
        trial: tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, tuple[float, float]],
    ) -> None:
        idx, dist, frac, arc_flow, load, score = trial
        self.metric[arc] = value
        self.dist[idx], self.frac[idx], self.arc_flow[idx] = dist, frac, arc_flow
        self.load = load
        self.score = score


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[0] - 1e-9 or (abs(a[0] - b[0]) <= 1e-9 and a[1] < b[1] * (1 - 1e-9))


def plan_metrics(
    routing: Routing,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    time_limit: float = 20.0,
    max_evaluations: int | None = None,
    max_metric: float | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Plan:
    """IGP metric plan from a Fortz–Thorup style local search (see module doc).

    The search stops after ``time_limit`` seconds or ``max_evaluations``
    routings, whichever comes first; with ``max_evaluations`` alone and a
    fixed ``seed`` it is deterministic. ``progress`` gets a one-line status
    (routings tried, best maximum utilization, time) about four times a second.
    """
    started = time.perf_counter()
    said = started
    rng = np.random.default_rng(seed)
    topo = routing.topology
    original = routing.metric.copy()
    top = max_metric if max_metric is not None else max(20.0, 3.0 * float(original.max(initial=1)))
    state = _WeightState(routing, original)
    before = routing.max_utilization
    best_metric, best_score = state.metric.copy(), state.score
    m = len(original)
    stall = 0
    patience = max(30, m // 2)

    def budget_left() -> bool:
        if time.perf_counter() - started > time_limit:
            return False
        return max_evaluations is None or state.evaluations < max_evaluations

    while m and budget_left():
        if progress is not None and time.perf_counter() - said >= 0.25:
            said = time.perf_counter()
            progress(
                f"IGP metric search: {state.evaluations:,} routings, best maximum utilization "
                f"{100 * best_score[0]:.1f} %, {said - started:.0f} s of {time_limit:g} s"
            )
        util = state.load / state.capacity
        roll = rng.random()
        if roll < 0.6:
            hottest = np.argsort(-util)[: max(1, min(3, m))]
            arc = int(rng.choice(hottest))
            w = state.metric[arc]
            options = sorted(
                {min(top, w + 1), min(top, w + float(rng.integers(1, max(2, int(w)) + 1)))}
            )
        elif roll < 0.8:
            cold = np.flatnonzero(util < 0.5 * util.max()) if util.max() > 0 else np.arange(m)
            arc = int(rng.choice(cold if cold.size else np.arange(m)))
            w = state.metric[arc]
            options = sorted(
                {max(1.0, w - 1), max(1.0, float(rng.integers(1, max(2, int(w)) + 1)))}
            )
        else:
            arc = int(rng.integers(m))
            options = [float(rng.integers(1, int(top) + 1))]
        best_trial = None
        best_value = 0.0
        for value in options:
            if value == state.metric[arc]:
                continue
            trial = state.trial(arc, value)
            if best_trial is None or _better(trial[5], best_trial[5]):
                best_trial, best_value = trial, value
        if best_trial is not None and _better(best_trial[5], state.score):
            state.accept(arc, best_value, best_trial)
            stall = 0
            if _better(state.score, best_score):
                best_metric, best_score = state.metric.copy(), state.score
        else:
            stall += 1
        if stall >= patience:
            stall = 0
            kick = best_metric.copy()
            chosen = rng.choice(m, size=max(2, m // 20), replace=False)
            kick[chosen] = rng.integers(1, int(top) + 1, size=len(chosen))
            state.reset(kick)
    # revert the changes that do not help, smallest first
    state.reset(best_metric)
    changed = np.flatnonzero(best_metric != original)
    for arc in changed[np.argsort(np.abs(best_metric[changed] - original[changed]))]:
        if max_evaluations is not None and state.evaluations >= max_evaluations + len(changed):
            break
        trial = state.trial(int(arc), float(original[arc]))
        if trial[5][0] <= best_score[0] + 1e-9:
            state.accept(int(arc), float(original[arc]), trial)
    final = state.metric.copy()
    load = recompute_loads(routing, (), metric=final)
    after = _max_util(load, topo.arcs.capacity_bps)
    if after > before:  # never recommend something worse than today
        final, load, after = original.copy(), routing.load_bps.copy(), before
    changes = []
    for changed_arc in np.flatnonzero(final != original):
        src, dst = topo.arc_ends(int(changed_arc))
        changes.append(
            MetricChange(
                link=topo.links[int(changed_arc) // 2].name,
                router=src,
                neighbor=dst,
                old_metric=float(original[changed_arc]),
                new_metric=float(final[changed_arc]),
            )
        )
    notes = []
    if after > threshold:
        notes.append(
            f"no metric plan found that meets the threshold {threshold:.2f} within the search "
            f"budget; the best maximum utilization found is {after:.3f}"
        )
    return Plan(
        method="igp-metrics",
        threshold=threshold,
        before_max_utilization=before,
        after_max_utilization=after,
        load_bps=load,
        metric_changes=tuple(changes),
        notes=tuple(notes),
        seconds=time.perf_counter() - started,
        evaluations=state.evaluations,
        metric=final,
    )


def rerouting_plans(
    topology: Topology,
    demands: Demands,
    *,
    method: PlanMethod = "both",
    threshold: float = DEFAULT_THRESHOLD,
    k: int = 4,
    time_limit: float = 20.0,
    max_evaluations: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[Plan]:
    """Route ``demands`` on ``topology`` and compute the plans ``method`` asks for;
    ``progress`` gets one-line statuses of the work (for a spinner)."""
    say = progress if progress is not None else (lambda _: None)
    say("routing the matrix")
    routing = route(topology, demands)
    plans = []
    if method in ("paths", "both"):
        say(f"explicit paths: the multicommodity LP over {k} candidate paths a demand")
        plans.append(plan_paths(routing, threshold=threshold, k=k))
    if method in ("metrics", "both"):
        say("IGP metric search")
        plans.append(
            plan_metrics(
                routing,
                threshold=threshold,
                time_limit=time_limit,
                max_evaluations=max_evaluations,
                seed=seed,
                progress=progress,
            )
        )
    return plans


def best_plan(plans: Sequence[Plan]) -> Plan:
    """The plan to recommend: feasible with fewest changes, else the lowest utilization."""
    if not plans:
        msg = "no plan to choose from"
        raise CapacityError(msg)
    return min(
        plans,
        key=lambda p: (not p.feasible, 0.0 if p.feasible else p.after_max_utilization, p.changes),
    )


# --- router configuration -------------------------------------------------------------------


def _address(topology: Topology, router: str) -> str:
    node = topology.nodes[topology.node_index[router]]
    return node.loopback or router


def _kbps(bps: float) -> int:
    return max(1, math.ceil(bps / 1e3))


def render_iosxr(plan: Plan, topology: Topology) -> str:
    """IOS-XR snippets: ``explicit-path`` + ``interface tunnel-te``, or ``router isis`` metrics.

    Routers without a loopback in the topology are named where their
    address belongs; interfaces are named after the link.
    """
    lines: list[str] = []
    by_router: dict[str, list[Tunnel]] = {}
    for t in plan.tunnels:
        by_router.setdefault(t.ingress, []).append(t)
    number = 1000
    for router, tunnels in sorted(by_router.items()):
        lines.append(f"! ---- {router}")
        for t in tunnels:
            number += 1
            lines.append(f"explicit-path name {t.name}")
            for i, hop in enumerate(t.path[1:], start=1):
                lines.append(
                    f" index {10 * i} next-address strict ipv4 unicast {_address(topology, hop)}"
                )
            lines.append("!")
            lines.append(f"interface tunnel-te{number}")
            lines.append(
                f" description flowmatrix {t.ingress}->{t.egress} {100 * t.share:.0f}% of demand"
            )
            lines.append(" ipv4 unnumbered Loopback0")
            lines.append(f" signalled-bandwidth {_kbps(t.bps)}")
            lines.append(f" load-share {_kbps(t.bps)}")
            lines.append(" autoroute announce")
            lines.append(f" destination {_address(topology, t.egress)}")
            lines.append(f" path-option 10 explicit name {t.name}")
            lines.append("!")
    by_metric: dict[str, list[MetricChange]] = {}
    for c in plan.metric_changes:
        by_metric.setdefault(c.router, []).append(c)
    for router, changes in sorted(by_metric.items()):
        lines.append(f"! ---- {router}")
        lines.append("router isis CORE")
        for c in changes:
            lines.append(f" interface {c.link}")
            lines.append(f"  ! towards {c.neighbor}, was {c.old_metric:g}")
            lines.append("  address-family ipv4 unicast")
            lines.append(f"   metric {c.new_metric:g}")
        lines.append("!")
    return "\n".join(lines) + ("\n" if lines else "")


def render_junos(plan: Plan, topology: Topology) -> str:
    """Junos snippets: ``label-switched-path`` with a ``primary`` path, or IS-IS metrics."""
    lines: list[str] = []
    by_router: dict[str, list[Tunnel]] = {}
    for t in plan.tunnels:
        by_router.setdefault(t.ingress, []).append(t)
    for router, tunnels in sorted(by_router.items()):
        lines.append(f"/* ---- {router} */")
        lines.append("protocols {")
        lines.append("    mpls {")
        for t in tunnels:
            lines.append(f"        path {t.name} {{")
            lines.extend(f"            {_address(topology, hop)} strict;" for hop in t.path[1:])
            lines.append("        }")
            lines.append(f"        label-switched-path {t.name} {{")
            lines.append(f"            to {_address(topology, t.egress)};")
            lines.append(f"            bandwidth {math.ceil(t.bps)};")
            lines.append(f"            primary {t.name};")
            lines.append("        }")
        lines.append("    }")
        lines.append("}")
    by_metric: dict[str, list[MetricChange]] = {}
    for c in plan.metric_changes:
        by_metric.setdefault(c.router, []).append(c)
    for router, changes in sorted(by_metric.items()):
        lines.append(f"/* ---- {router} */")
        lines.append("protocols {")
        lines.append("    isis {")
        for c in changes:
            lines.append(
                f"        interface {c.link} {{  /* towards {c.neighbor}, was {c.old_metric:g} */"
            )
            lines.append(f"            level 2 metric {c.new_metric:g};")
            lines.append("        }")
        lines.append("    }")
        lines.append("}")
    return "\n".join(lines) + ("\n" if lines else "")
