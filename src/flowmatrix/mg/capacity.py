"""The MG's capacity routes: its total PE-to-PE matrix routed on its topology (``/capacity``).

With a topology loaded (``mg serve --topology FILE``), one read-out period's
total PE-to-PE matrix becomes demands in bit/s (bytes × 8 / the period's
length) and goes through :mod:`flowmatrix.capacity`: ``check`` routes it
(IGP shortest paths, per-hop ECMP) and judges links and service nodes,
``whatif`` does the same under one failure (a link, a router or an SRLG), or
sweeps every single failure when none is named. ``period=busy`` (the
default) takes the interval's busiest read-out period: the one whose total
volume is highest (the ``busy-hour`` statistic of ``capacity check``).

Without a topology every route answers 404 with a one-line error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from flowmatrix.capacity.adequacy import DEFAULT_THRESHOLD, check_capacity
from flowmatrix.capacity.demands import Demands, make_demands
from flowmatrix.capacity.report import check_report, to_json, whatif_report
from flowmatrix.capacity.routing import route
from flowmatrix.capacity.topology import Topology
from flowmatrix.capacity.whatif import Failure, fail, failures, sweep
from flowmatrix.matrix.store import Principal
from flowmatrix.matrix.total import period_statuses, total_matrix
from flowmatrix.mg.app import MAX_MS, MgState, State
from flowmatrix.mg.auth import operator

__all__ = ["MatrixPeriod", "capacity_router", "find_failure", "period_demands", "topology_of"]

capacity_router = APIRouter(tags=["capacity"])

IntervalQ = Annotated[str, Query(min_length=1, max_length=200)]
#: ``busy`` or a read-out period start in unix milliseconds
PeriodQ = Annotated[str, Query(pattern=r"^(busy|[0-9]{1,16})$", description="busy or start ms.")]
ClassQ = Annotated[str | None, Query(alias="class", min_length=1, max_length=200)]
ThresholdQ = Annotated[float, Query(gt=0, le=10, allow_inf_nan=False)]


def topology_of(state: MgState) -> Topology:
    """The MG's topology; LookupError (404) when it was started without one."""
    if state.topology is None:
        msg = "this MG has no topology (start it with mg serve --topology FILE)"
        raise LookupError(msg)
    return state.topology


@dataclass(frozen=True, slots=True)
class MatrixPeriod:
    """The read-out period a capacity answer routes: its bounds and completeness."""

    interval: str
    start_ms: int
    end_ms: int
    status: str
    #: chosen as the interval's busiest period (``period=busy``)
    busy: bool

    @property
    def seconds(self) -> float:
        """Length of the period, seconds."""
        return (self.end_ms - self.start_ms) / 1000

    @property
    def label(self) -> str:
        """The period start as ISO UTC text."""
        start = dt.datetime.fromtimestamp(self.start_ms / 1000, dt.UTC)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def as_json(self) -> dict[str, Any]:
        """The period as the answers show it."""
        return {
            "interval": self.interval,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "start": self.label,
            "seconds": self.seconds,
            "status": self.status,
            "busy": self.busy,
        }


def _busy_start(state: MgState, interval: str) -> int:
    """Start of the interval's read-out period with the highest volume (earliest on ties)."""
    volumes = state.stats.volumes(interval) if state.stats is not None else {}
    if not volumes:
        starts = sorted({u.period_start_ms for u in state.store.current(interval)})
        if not starts:
            msg = f"no partial stored for interval {interval!r}"
            raise LookupError(msg)
        volumes = {s: _volume(state, interval, s) for s in starts}
    return min(volumes, key=lambda s: (-volumes[s], s))


def _volume(state: MgState, interval: str, start_ms: int) -> float:
    uploads = state.store.current(interval, period_start_ms=start_ms)
    table = total_matrix(state.config, state.store.iter_rows(uploads), granularity="pe_pe")
    return float(np.sum(table["bytes"].to_numpy())) if table.num_rows else 0.0


def period_demands(
    state: MgState, interval: str, period: str, class_: str | None
) -> tuple[Demands, MatrixPeriod]:
    """The PE-to-PE demands (bit/s) of one stored read-out period, and that period.

    ``period`` is ``busy`` or a period start in unix ms; ``class_`` keeps one
    class (None sums them). LookupError for an unknown interval or period.
    """
    state.check_interval(interval)
    busy = period == "busy"
    start = _busy_start(state, interval) if busy else int(period)
    if start > MAX_MS:
        msg = f"period {start} out of range"
        raise LookupError(msg)
    uploads = state.store.current(interval, period_start_ms=start)
    if not uploads:
        msg = f"no partial stored for interval {interval!r} in period {start}"
        raise LookupError(msg)
    status = period_statuses(state.config, uploads)[0]
    chosen = MatrixPeriod(interval, start, status.period_end_ms, status.status, busy)
    table = total_matrix(
        state.config,
        state.store.iter_rows(uploads),
        granularity="pe_pe",
        class_=class_,
        seconds=chosen.seconds,
    )
    bps = table["bytes"].to_numpy() * 8.0 / chosen.seconds
    demands = make_demands(
        np.asarray(table["ingress"].to_pylist(), dtype=np.str_),
        np.asarray(table["egress"].to_pylist(), dtype=np.str_),
        bps,
        source=f"mg:{interval}/{start}",
        statistic="busy-hour" if busy else "",
        period=chosen.label,
    )
    return demands, chosen


def find_failure(topology: Topology, name: str) -> Failure:
    """The failure of the link, router or SRLG called ``name`` (``kind:name`` picks one kind).

    A bare name is looked up among links first, then routers, then SRLGs.
    LookupError when nothing has that name.

    Examples
    --------
    >>> from flowmatrix.capacity.topology import Link, Node, build_topology
    >>> t = build_topology([Node("a", "A"), Node("b", "B")], [Link("ab", "a", "b", 10.0, 1, 1)])
    >>> find_failure(t, "ab").label, find_failure(t, "node:b").arcs
    ('link:ab', (0, 1))
    """
    kind, _, bare = name.partition(":")
    if not bare or kind not in ("link", "node", "srlg"):
        kind, bare = "", name
    for failure in failures(topology):
        if failure.name == bare and kind in ("", failure.kind):
            return failure
    msg = f"no link, router or SRLG named {name!r} in the topology"
    raise LookupError(msg)


def _json(document: dict[str, Any]) -> Response:
    return Response(to_json(document), media_type="application/json")


@capacity_router.get("/capacity/topology")
def capacity_topology(state: State, _: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
    """The MG's backbone topology: service nodes, routers and full-duplex links."""
    topo = topology_of(state)
    return {
        "name": topo.name,
        "source": topo.source,
        "service_nodes": [
            {"name": s.name, "capacity_bps": s.capacity_bps} for s in topo.service_nodes
        ],
        "nodes": [
            {
                "name": n.name,
                "service_node": n.service_node,
                "role": n.role,
                "position": list(n.position) if n.position is not None else None,
            }
            for n in topo.nodes
        ],
        "links": [
            {
                "name": x.name,
                "a": x.a,
                "b": x.b,
                "capacity_bps": x.capacity_bps,
                "metric_ab": x.metric_ab,
                "metric_ba": x.metric_ba,
                "srlgs": list(x.srlgs),
            }
            for x in topo.links
        ],
        "srlgs": sorted(topo.srlgs),
    }


@capacity_router.get("/capacity/check", response_class=Response)
def capacity_check(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: IntervalQ,
    period: PeriodQ = "busy",
    class_: ClassQ = None,
    threshold: ThresholdQ = DEFAULT_THRESHOLD,
) -> Response:
    """Link and service-node utilization of one period's total PE-to-PE matrix
    (``capacity check --json`` plus the period routed)."""
    topo = topology_of(state)
    demands, chosen = period_demands(state, interval, period, class_)
    report = check_report(check_capacity(topo, demands, threshold=threshold))
    return _json({"period": chosen.as_json(), "class": class_, **report})


@capacity_router.get("/capacity/whatif", response_class=Response)
def capacity_whatif(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: IntervalQ,
    period: PeriodQ = "busy",
    class_: ClassQ = None,
    threshold: ThresholdQ = DEFAULT_THRESHOLD,
    failure: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
) -> Response:
    """Link utilization under one failure (``failure`` = a link, router or SRLG name), or
    without it the worst case of every single failure (``capacity whatif --json``)."""
    topo = topology_of(state)
    chosen_failure = find_failure(topo, failure) if failure is not None else None
    demands, chosen = period_demands(state, interval, period, class_)
    routing = route(topo, demands)
    head = {"period": chosen.as_json(), "class": class_}
    if chosen_failure is None:
        return _json({**head, **whatif_report(sweep(routing), threshold=threshold)})
    outcome = fail(routing, chosen_failure)
    arcs = topo.arcs
    down = set(chosen_failure.arcs)
    normal = routing.utilization
    links = []
    for a in range(len(arcs)):
        src, dst = topo.arc_ends(a)
        util = float(outcome.load_bps[a] / arcs.capacity_bps[a])
        links.append(
            {
                "link": topo.links[a // 2].name,
                "src": src,
                "dst": dst,
                "load_bps": float(outcome.load_bps[a]),
                "capacity_bps": float(arcs.capacity_bps[a]),
                "utilization": util,
                "normal_utilization": float(normal[a]),
                "down": a in down,
                "over": util > threshold,
            }
        )
    return _json(
        {
            **head,
            "threshold": threshold,
            "failure": {
                "label": chosen_failure.label,
                "kind": chosen_failure.kind,
                "name": chosen_failure.name,
            },
            "exceeded": outcome.max_utilization > threshold,
            "normal_max_utilization": routing.max_utilization,
            "max_utilization": outcome.max_utilization,
            "links": links,
            "disconnected_bps": outcome.disconnected_bps,
            "disconnected": [
                {"ingress": u.ingress, "egress": u.egress, "bps": u.bps, "reason": u.reason}
                for u in outcome.disconnected
            ],
        }
    )
