"""A routing + threshold → which directed links and service nodes are adequate.

A directed link is adequate when its load is at most ``threshold`` times its
capacity. A service node's load is the traffic it switches: what enters it
from its customers (demand originating at its routers, local traffic
included) plus what arrives over links from other service nodes — which
equals what leaves it. Its capacity is the configured one, else the sum of
its links to other service nodes in one direction; a node with neither is
not assessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flowmatrix.capacity.demands import Demands
from flowmatrix.capacity.routing import Routing, Unrouted, route
from flowmatrix.capacity.topology import Topology

__all__ = [
    "DEFAULT_THRESHOLD",
    "Adequacy",
    "LinkLoad",
    "ServiceNodeLoad",
    "assess",
    "check_capacity",
]

#: utilization above which a link or service node is not adequate
DEFAULT_THRESHOLD = 0.8


@dataclass(frozen=True, slots=True)
class LinkLoad:
    """One direction of one link: its load against its capacity."""

    link: str
    src: str
    dst: str
    load_bps: float
    capacity_bps: float
    utilization: float
    over: bool


@dataclass(frozen=True, slots=True)
class ServiceNodeLoad:
    """One service node: the traffic it switches against its capacity."""

    name: str
    load_bps: float
    #: NaN when neither configured nor derivable
    capacity_bps: float
    #: NaN when not assessed
    utilization: float
    over: bool
    derived: bool


@dataclass(frozen=True)
class Adequacy:
    """The outcome of a capacity check."""

    threshold: float
    links: tuple[LinkLoad, ...]
    service_nodes: tuple[ServiceNodeLoad, ...]
    unrouted: tuple[Unrouted, ...]
    routing: Routing

    @property
    def max_utilization(self) -> float:
        """Highest directed-link utilization."""
        return max((link.utilization for link in self.links), default=0.0)

    @property
    def exceeded(self) -> bool:
        """True when any link or service node is over the threshold."""
        return any(x.over for x in self.links) or any(x.over for x in self.service_nodes)

    @property
    def links_over(self) -> list[LinkLoad]:
        """Directed links over the threshold, worst first."""
        return sorted((x for x in self.links if x.over), key=lambda x: -x.utilization)

    @property
    def service_nodes_over(self) -> list[ServiceNodeLoad]:
        """Service nodes over the threshold, worst first."""
        return sorted((x for x in self.service_nodes if x.over), key=lambda x: -x.utilization)


def assess(routing: Routing, *, threshold: float = DEFAULT_THRESHOLD) -> Adequacy:
    """Judge every directed link and service node of a routing against ``threshold``."""
    topo = routing.topology
    arcs = topo.arcs
    util = routing.utilization
    links = []
    for a in range(len(arcs)):
        src, dst = topo.arc_ends(a)
        links.append(
            LinkLoad(
                link=topo.links[a // 2].name,
                src=src,
                dst=dst,
                load_bps=float(routing.load_bps[a]),
                capacity_bps=float(arcs.capacity_bps[a]),
                utilization=float(util[a]),
                over=bool(util[a] > threshold),
            )
        )
    nodes = []
    cap = topo.service_capacity_bps
    load = routing.service_load_bps
    for i, sn in enumerate(topo.service_nodes):
        u = float(load[i] / cap[i]) if not math.isnan(cap[i]) else math.nan
        nodes.append(
            ServiceNodeLoad(
                name=sn.name,
                load_bps=float(load[i]),
                capacity_bps=float(cap[i]),
                utilization=u,
                over=bool(not math.isnan(u) and u > threshold),
                derived=sn.capacity_bps is None,
            )
        )
    return Adequacy(threshold, tuple(links), tuple(nodes), routing.unrouted, routing)


def check_capacity(
    topology: Topology, demands: Demands, *, threshold: float = DEFAULT_THRESHOLD
) -> Adequacy:
    """Route ``demands`` on ``topology`` and judge every link and service node.

    Examples
    --------
    >>> from flowmatrix.capacity.topology import Link, Node, build_topology
    >>> from flowmatrix.capacity.demands import make_demands
    >>> t = build_topology([Node("a", "A"), Node("b", "B")], [Link("ab", "a", "b", 10.0, 1, 1)])
    >>> result = check_capacity(t, make_demands(["a"], ["b"], [9.0]))
    >>> result.exceeded, result.max_utilization
    (True, 0.9)
    """
    if not (threshold > 0 and np.isfinite(threshold)):
        from flowmatrix.errors import CapacityError

        msg = f"threshold {threshold} is not > 0"
        raise CapacityError(msg)
    return assess(route(topology, demands), threshold=threshold)
