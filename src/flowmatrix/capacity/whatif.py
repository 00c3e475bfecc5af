"""A routing → the worst utilization of every link under every single failure.

Failures are each link (both directions), each router (its links and the
traffic it originates or terminates) and each shared risk link group. A
failure only changes the routing towards destinations whose DAG carries
traffic over a failed element, so only those destinations are recomputed:
their flows are subtracted from the normal-state loads, re-routed with the
failed arcs removed, and added back. Traffic a failure disconnects (no path
left) or loses with a failed router is reported per failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from flowmatrix.capacity.demands import Demands
from flowmatrix.capacity.routing import Routing, Unrouted, route, route_destinations, unreachable
from flowmatrix.capacity.topology import Topology

__all__ = [
    "Failure",
    "FailureKind",
    "FailureOutcome",
    "WhatIf",
    "fail",
    "failure_sweep",
    "failures",
    "sweep",
]

FailureKind = Literal["link", "node", "srlg"]
#: every failure kind, in the order a sweep goes through them
KINDS: tuple[FailureKind, ...] = ("link", "node", "srlg")


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure scenario: the arcs it takes down and the router, if a router fails."""

    kind: FailureKind
    name: str
    arcs: tuple[int, ...]
    node: int | None = None

    @property
    def label(self) -> str:
        """``kind:name``, e.g. ``link:par-p1--lon-p1``."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class FailureOutcome:
    """Loads after one failure and what it disconnected."""

    failure: Failure
    load_bps: npt.NDArray[np.float64]
    max_utilization: float
    #: arc with the highest utilization under this failure (-1 without links)
    worst_arc: int
    #: traffic with no path left (``unreachable``) or lost with a router (``endpoint failed``)
    disconnected: tuple[Unrouted, ...]
    #: destinations whose DAG had to be recomputed
    recomputed: int

    @property
    def disconnected_bps(self) -> float:
        """Total traffic disconnected by this failure."""
        return sum(u.bps for u in self.disconnected)


@dataclass(frozen=True)
class WhatIf:
    """The outcome of a failure sweep: per arc, its worst utilization and the failure causing it."""

    routing: Routing
    outcomes: tuple[FailureOutcome, ...]
    #: per arc, the highest utilization over the normal state and every failure
    worst_utilization: npt.NDArray[np.float64]
    #: per arc, index into ``outcomes`` of the failure causing it, -1 when the normal state is worst
    worst_outcome: npt.NDArray[np.int64]
    seconds: float

    def worst_failure(self, arc: int) -> str | None:
        """Label of the failure that gives ``arc`` its worst utilization (None: no failure)."""
        k = int(self.worst_outcome[arc])
        return None if k < 0 else self.outcomes[k].failure.label

    @property
    def max_utilization(self) -> float:
        """Highest utilization of any arc under any single failure."""
        return float(self.worst_utilization.max()) if self.worst_utilization.size else 0.0


def failures(topology: Topology, kinds: Iterable[FailureKind] = KINDS) -> list[Failure]:
    """Every single failure of the given kinds, links first, then routers, then SRLGs."""
    chosen = set(kinds)
    out: list[Failure] = []
    if "link" in chosen:
        out.extend(
            Failure("link", link.name, (2 * i, 2 * i + 1)) for i, link in enumerate(topology.links)
        )
    if "node" in chosen:
        arcs = topology.arcs
        for v, node in enumerate(topology.nodes):
            touching = np.flatnonzero((arcs.src == v) | (arcs.dst == v))
            out.append(Failure("node", node.name, tuple(int(a) for a in touching), v))
    if "srlg" in chosen:
        for name, links in topology.srlgs.items():
            out.append(Failure("srlg", name, tuple(a for i in links for a in (2 * i, 2 * i + 1))))
    return out


def fail(routing: Routing, failure: Failure) -> FailureOutcome:
    """Loads after ``failure``, recomputing only the destinations it touches."""
    topo = routing.topology
    st = routing.state
    dead = np.array(failure.arcs, dtype=np.int64)
    alive = routing.alive.copy()
    alive[dead] = False
    touched = (st.arc_flow[:, dead] > 0).any(axis=1) if dead.size else np.zeros(len(st.dests), bool)
    lost: list[Unrouted] = []
    node = failure.node
    if node is not None:
        touched |= (st.node_flow[:, node] > 0) | (st.dests == node)
    idx = np.flatnonzero(touched)
    load = routing.load_bps - st.arc_flow[idx].sum(axis=0)
    demand_to = st.demand_to[idx].copy()
    dests = st.dests[idx]
    if node is not None:
        name = topo.nodes[node].name
        lost.extend(
            Unrouted(
                name, topo.nodes[int(dests[i])].name, float(demand_to[i, node]), "endpoint failed"
            )
            for i in np.flatnonzero(demand_to[:, node] > 0)
        )
        demand_to[:, node] = 0.0
        gone = dests == node
        for v in np.flatnonzero(demand_to[gone].sum(axis=0) > 0):
            value = float(demand_to[gone][:, v].sum())
            lost.append(Unrouted(topo.nodes[int(v)].name, name, value, "endpoint failed"))
        dests, demand_to = dests[~gone], demand_to[~gone]
    if len(dests):
        state = route_destinations(
            topo, routing.metric, alive, dests, demand_to, graph=routing.graph
        )
        load = load + state.arc_flow.sum(axis=0)
        lost.extend(unreachable(topo, state))
    load = np.maximum(load, 0.0)
    load[dead] = 0.0
    util = load / topo.arcs.capacity_bps
    worst = int(np.argmax(util)) if util.size else -1
    return FailureOutcome(
        failure=failure,
        load_bps=load,
        max_utilization=float(util[worst]) if util.size else 0.0,
        worst_arc=worst,
        disconnected=tuple(lost),
        recomputed=len(idx),
    )


def sweep(
    routing: Routing,
    scenarios: Sequence[Failure] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> WhatIf:
    """Every single link, router and SRLG failure (or the given ones): worst case per arc.

    ``progress(done, total)`` is called after each failure (for a progress bar).

    Examples
    --------
    >>> from flowmatrix.capacity.topology import Link, Node, build_topology
    >>> from flowmatrix.capacity.demands import make_demands
    >>> from flowmatrix.capacity.routing import route
    >>> t = build_topology(
    ...     [Node("a", "A"), Node("b", "B"), Node("c", "C")],
    ...     [Link("ab", "a", "b", 10, 1, 1), Link("bc", "b", "c", 10, 1, 1),
    ...      Link("ac", "a", "c", 10, 5, 5)],
    ... )
    >>> w = sweep(route(t, make_demands(["a"], ["c"], [4.0])))
    >>> w.worst_failure(4), float(w.worst_utilization[4])
    ('link:ab', 0.4)
    """
    started = time.perf_counter()
    chosen = failures(routing.topology) if scenarios is None else list(scenarios)
    worst = routing.utilization.copy()
    cause = np.full(worst.shape, -1, dtype=np.int64)
    outcomes = []
    capacity = routing.topology.arcs.capacity_bps
    for k, failure in enumerate(chosen):
        outcome = fail(routing, failure)
        util = outcome.load_bps / capacity
        better = util > worst + 1e-12
        worst[better] = util[better]
        cause[better] = k
        outcomes.append(outcome)
        if progress is not None:
            progress(k + 1, len(chosen))
    return WhatIf(routing, tuple(outcomes), worst, cause, time.perf_counter() - started)


def failure_sweep(
    topology: Topology,
    demands: Demands,
    kinds: Iterable[FailureKind] = KINDS,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> WhatIf:
    """Route ``demands`` on ``topology`` and sweep every single failure of the given kinds."""
    routing = route(topology, demands)
    return sweep(routing, failures(topology, kinds), progress=progress)
