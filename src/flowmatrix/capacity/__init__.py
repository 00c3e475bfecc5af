"""Turn a traffic matrix and a backbone topology into utilizations, what-ifs and rerouting plans.

``load_topology`` and ``load_matrix`` read the inputs; ``route`` spreads
every demand over IGP shortest paths with per-hop ECMP; ``check_capacity``
judges links and service nodes against a threshold; ``failure_sweep`` tries
every single link, router and SRLG failure; ``rerouting_plans`` proposes
explicit TE paths (LP) or IGP metric changes. Plots live in
:mod:`flowmatrix.capacity.plot`, JSON and tables in
:mod:`flowmatrix.capacity.report`.
"""

from flowmatrix.capacity.adequacy import DEFAULT_THRESHOLD, Adequacy, check_capacity
from flowmatrix.capacity.demands import STATISTICS, Demands, Statistic, load_matrix, make_demands
from flowmatrix.capacity.plan import (
    MetricChange,
    Plan,
    PlanMethod,
    Tunnel,
    best_plan,
    plan_metrics,
    plan_paths,
    recompute_loads,
    rerouting_plans,
)
from flowmatrix.capacity.routing import Routing, Unrouted, route, service_node_matrix
from flowmatrix.capacity.topology import (
    Link,
    Node,
    ServiceNode,
    Topology,
    build_topology,
    load_topology,
)
from flowmatrix.capacity.whatif import Failure, WhatIf, failure_sweep, failures, sweep

__all__ = [
    "DEFAULT_THRESHOLD",
    "STATISTICS",
    "Adequacy",
    "Demands",
    "Failure",
    "Link",
    "MetricChange",
    "Node",
    "Plan",
    "PlanMethod",
    "Routing",
    "ServiceNode",
    "Statistic",
    "Topology",
    "Tunnel",
    "Unrouted",
    "WhatIf",
    "best_plan",
    "build_topology",
    "check_capacity",
    "failure_sweep",
    "failures",
    "load_matrix",
    "load_topology",
    "make_demands",
    "plan_metrics",
    "plan_paths",
    "recompute_loads",
    "rerouting_plans",
    "route",
    "service_node_matrix",
    "sweep",
]
