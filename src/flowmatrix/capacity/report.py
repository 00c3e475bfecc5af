"""Checks, what-ifs and plans → the JSON documents and rich tables the CLI prints.

The JSON shapes are part of the command contract (SPEC): ``check`` has
``max_utilization`` and per link ``src``, ``dst``, ``load_bps``,
``capacity_bps``, ``utilization``; ``whatif`` has per link
``worst_utilization`` and ``worst_failure``; ``plan`` has ``feasible``,
``before_max_utilization``, ``after_max_utilization`` and ``changes``.
Numbers that are not known (a service node without capacity) are ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from rich.console import RenderableType
from rich.table import Table

from flowmatrix.capacity.adequacy import DEFAULT_THRESHOLD, Adequacy
from flowmatrix.capacity.demands import STATISTICS, Demands, Statistic, load_matrix
from flowmatrix.capacity.plan import (
    Plan,
    PlanMethod,
    best_plan,
    render_iosxr,
    render_junos,
    rerouting_plans,
)
from flowmatrix.capacity.routing import Unrouted
from flowmatrix.capacity.topology import Topology, load_topology
from flowmatrix.capacity.whatif import WhatIf
from flowmatrix.errors import CapacityError

__all__ = [
    "CapacityInputs",
    "check_report",
    "check_tables",
    "load_inputs",
    "plan_report",
    "plan_tables",
    "plans_for",
    "to_json",
    "whatif_report",
    "whatif_tables",
]

#: how many rows a table shows before it says how many it left out
TABLE_ROWS = 25


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _matrix(demands: Demands) -> dict[str, Any]:
    return {
        "source": demands.source,
        "statistic": demands.statistic or None,
        "period": demands.period or None,
        "demands": len(demands),
        "total_bps": demands.total_bps,
    }


def _unrouted(items: Sequence[Unrouted]) -> list[dict[str, Any]]:
    return [
        {"ingress": u.ingress, "egress": u.egress, "bps": u.bps, "reason": u.reason} for u in items
    ]


def check_report(result: Adequacy) -> dict[str, Any]:
    """The ``capacity check --json`` document."""
    return {
        "threshold": result.threshold,
        "exceeded": result.exceeded,
        "max_utilization": result.max_utilization,
        "matrix": _matrix(result.routing.demands),
        "links": [
            {
                "link": x.link,
                "src": x.src,
                "dst": x.dst,
                "load_bps": x.load_bps,
                "capacity_bps": x.capacity_bps,
                "utilization": x.utilization,
                "over": x.over,
            }
            for x in result.links
        ],
        "service_nodes": [
            {
                "name": x.name,
                "load_bps": x.load_bps,
                "capacity_bps": _num(x.capacity_bps),
                "capacity_derived": x.derived,
                "utilization": _num(x.utilization),
                "over": x.over,
            }
            for x in result.service_nodes
        ],
        "unrouted": _unrouted(result.unrouted),
    }


def whatif_report(result: WhatIf, *, threshold: float) -> dict[str, Any]:
    """The ``capacity whatif --json`` document."""
    topo = result.routing.topology
    arcs = topo.arcs
    util = result.routing.utilization
    links = []
    for a in range(len(arcs)):
        src, dst = topo.arc_ends(a)
        links.append(
            {
                "link": topo.links[a // 2].name,
                "src": src,
                "dst": dst,
                "capacity_bps": float(arcs.capacity_bps[a]),
                "utilization": float(util[a]),
                "worst_utilization": float(result.worst_utilization[a]),
                "worst_failure": result.worst_failure(a),
                "over": bool(result.worst_utilization[a] > threshold),
            }
        )
    scenarios = [
        {
            "failure": o.failure.label,
            "kind": o.failure.kind,
            "max_utilization": o.max_utilization,
            "worst_link": topo.arc_name(o.worst_arc) if o.worst_arc >= 0 else None,
            "disconnected_bps": o.disconnected_bps,
            "disconnected": _unrouted(o.disconnected),
        }
        for o in result.outcomes
    ]
    return {
        "threshold": threshold,
        "exceeded": bool(result.max_utilization > threshold),
        "normal_max_utilization": result.routing.max_utilization,
        "max_utilization": result.max_utilization,
        "failures": len(result.outcomes),
        "seconds": result.seconds,
        "matrix": _matrix(result.routing.demands),
        "links": links,
        "scenarios": scenarios,
    }


def _changes(plan: Plan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "kind": "tunnel",
            "name": t.name,
            "ingress": t.ingress,
            "egress": t.egress,
            "path": list(t.path),
            "bps": t.bps,
            "share": t.share,
        }
        for t in plan.tunnels
    ]
    out.extend(
        {
            "kind": "metric",
            "link": c.link,
            "router": c.router,
            "neighbor": c.neighbor,
            "old_metric": c.old_metric,
            "new_metric": c.new_metric,
        }
        for c in plan.metric_changes
    )
    return out


def _plan_summary(plan: Plan) -> dict[str, Any]:
    return {
        "method": plan.method,
        "feasible": plan.feasible,
        "before_max_utilization": plan.before_max_utilization,
        "after_max_utilization": plan.after_max_utilization,
        "lp_optimum": plan.lp_optimum,
        "changes": len(plan.tunnels) + len(plan.metric_changes),
        "seconds": plan.seconds,
        "evaluations": plan.evaluations,
        "notes": list(plan.notes),
    }


def plan_report(plans: Sequence[Plan], topology: Topology) -> dict[str, Any]:
    """The ``capacity plan --json`` document: the recommended plan and a summary of each."""
    chosen = best_plan(plans)
    return {
        "feasible": chosen.feasible,
        "method": chosen.method,
        "threshold": chosen.threshold,
        "before_max_utilization": chosen.before_max_utilization,
        "after_max_utilization": chosen.after_max_utilization,
        "lp_optimum": chosen.lp_optimum,
        "changes": _changes(chosen),
        "notes": list(chosen.notes),
        "config": {
            "iosxr": render_iosxr(chosen, topology),
            "junos": render_junos(chosen, topology),
        },
        "plans": [_plan_summary(p) for p in plans],
    }


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def _gbps(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value / 1e9:.2f}"


def check_tables(result: Adequacy) -> list[RenderableType]:
    """Tables of links and service nodes over threshold, then a one-line verdict."""
    out: list[RenderableType] = []
    over = result.links_over
    if over:
        table = Table(title=f"Directed links over {_pct(result.threshold)}")
        for col in ("link", "from", "to", "load Gbit/s", "capacity Gbit/s", "utilization"):
            table.add_column(col, justify="right" if "/" in col or col == "utilization" else "left")
        for x in over[:TABLE_ROWS]:
            table.add_row(
                x.link, x.src, x.dst, _gbps(x.load_bps), _gbps(x.capacity_bps), _pct(x.utilization)
            )
        out.append(table)
        if len(over) > TABLE_ROWS:
            out.append(f"... and {len(over) - TABLE_ROWS} more directed links over threshold")
    nodes = result.service_nodes_over
    if nodes:
        table = Table(title=f"Service nodes over {_pct(result.threshold)}")
        for col in ("service node", "load Gbit/s", "capacity Gbit/s", "utilization"):
            table.add_column(col)
        for n in nodes[:TABLE_ROWS]:
            cap = _gbps(n.capacity_bps) + (" (derived)" if n.derived else "")
            table.add_row(n.name, _gbps(n.load_bps), cap, _pct(n.utilization))
        out.append(table)
    if result.unrouted:
        total = sum(u.bps for u in result.unrouted)
        out.append(
            f"unrouted: {len(result.unrouted)} demands, {total / 1e9:.3f} Gbit/s "
            f"({', '.join(sorted({u.reason for u in result.unrouted}))})"
        )
    verdict = "EXCEEDED" if result.exceeded else "ok"
    out.append(
        f"{verdict}: max link utilization {_pct(result.max_utilization)} against threshold "
        f"{_pct(result.threshold)}; {len(over)} directed links and {len(nodes)} service nodes over"
    )
    return out


def whatif_tables(result: WhatIf, *, threshold: float) -> list[RenderableType]:
    """The links whose worst single-failure utilization exceeds the threshold, worst first."""
    topo = result.routing.topology
    util = result.routing.utilization
    order = sorted(range(len(util)), key=lambda a: -result.worst_utilization[a])
    over = [a for a in order if result.worst_utilization[a] > threshold]
    out: list[RenderableType] = []
    if over:
        table = Table(title=f"Directed links over {_pct(threshold)} under a single failure")
        for col in ("link", "normal", "worst", "worst failure"):
            table.add_column(col)
        for a in over[:TABLE_ROWS]:
            table.add_row(
                topo.arc_name(a),
                _pct(float(util[a])),
                _pct(float(result.worst_utilization[a])),
                result.worst_failure(a) or "(none: normal state)",
            )
        out.append(table)
    cut = [o for o in result.outcomes if o.disconnected]
    if cut:
        table = Table(title="Failures that disconnect traffic")
        for col in ("failure", "demands", "Gbit/s"):
            table.add_column(col)
        for o in sorted(cut, key=lambda o: -o.disconnected_bps)[:TABLE_ROWS]:
            table.add_row(o.failure.label, str(len(o.disconnected)), _gbps(o.disconnected_bps))
        out.append(table)
    out.append(
        f"{len(result.outcomes)} failures in {result.seconds:.2f} s: worst utilization "
        f"{_pct(result.max_utilization)} (normal {_pct(result.routing.max_utilization)}); "
        f"{len(over)} directed links over {_pct(threshold)}"
    )
    return out


def plan_tables(plans: Sequence[Plan], topology: Topology) -> list[RenderableType]:
    """Before/after of each plan, the recommended plan's changes and router configuration."""
    chosen = best_plan(plans)
    table = Table(title="Rerouting plans")
    for col in ("method", "before", "after", "LP optimum", "changes", "meets threshold"):
        table.add_column(col)
    for p in plans:
        table.add_row(
            p.method,
            _pct(p.before_max_utilization),
            _pct(p.after_max_utilization),
            "" if p.lp_optimum is None else _pct(p.lp_optimum),
            str(p.changes),
            "yes" if p.feasible else "NO",
        )
    out: list[RenderableType] = [table]
    for p in plans:
        out.extend(f"{p.method}: {note}" for note in p.notes)
    if not chosen.feasible:
        out.append(
            f"No plan brings every link under {_pct(chosen.threshold)}; the best found reaches "
            f"{_pct(chosen.after_max_utilization)} ({chosen.method}). Capacity must be added."
        )
    out.append(f"Recommended: {chosen.method}, {chosen.changes} changes.")
    out.append("--- IOS-XR ---\n" + render_iosxr(chosen, topology))
    out.append("--- Junos ---\n" + render_junos(chosen, topology))
    return out


CapacityInputs = tuple[Topology, Demands]


def load_inputs(
    topology: str | Path,
    matrix: str | Path,
    *,
    statistic: str = "busy-hour",
    traffic_class: str | None = None,
) -> CapacityInputs:
    """Read a topology file and a matrix file (names checked against the topology's routers)."""
    if statistic not in STATISTICS:
        msg = f"--statistic {statistic!r}: choose one of {', '.join(STATISTICS)}"
        raise CapacityError(msg)
    topo = load_topology(topology)
    demands = load_matrix(
        matrix,
        statistic=cast(Statistic, statistic),
        traffic_class=traffic_class,
        node_names=[n.name for n in topo.nodes],
    )
    return topo, demands


def plans_for(
    topology: Topology,
    demands: Demands,
    *,
    method: str = "both",
    threshold: float = DEFAULT_THRESHOLD,
    k: int = 4,
    time_limit: float = 20.0,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[Plan]:
    """:func:`rerouting_plans` with ``method`` checked: ``paths``, ``metrics`` or ``both``."""
    if method not in ("paths", "metrics", "both"):
        msg = f"--method {method!r}: choose paths, metrics or both"
        raise CapacityError(msg)
    if k < 1:
        msg = f"--k {k}: at least one candidate path per demand"
        raise CapacityError(msg)
    return rerouting_plans(
        topology,
        demands,
        method=cast(PlanMethod, method),
        threshold=threshold,
        k=k,
        time_limit=time_limit,
        seed=seed,
        progress=progress,
    )


def to_json(document: dict[str, Any]) -> str:
    """A report as indented JSON text ending in a newline (NaN written as null)."""
    return json.dumps(_clean(document), indent=1, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
