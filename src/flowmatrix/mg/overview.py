"""The MG's read-only overview routes: the network it serves, its FRPs and exporters.

``GET /network`` describes the configuration (intervals, FRPs, PEs, service
nodes, classes) and what this MG can answer (statistics, topology, routing
tables); ``GET /frps`` says, per FRP, what its current uploads reported:
the last upload, records, drops and sequence gaps per exporter, and the
volume left unresolved by reason. ``GET /routing/explain`` (with the tables the
FRPs send, or ``mg serve --routing``) says why an address leaves a PE where it
does. The dashboard's overview and routing pages read these.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from flowmatrix.matrix.store import Principal, Upload
from flowmatrix.matrix.total import expected_frps
from flowmatrix.mg.app import MAX_MS, MgState, State
from flowmatrix.mg.auth import operator
from flowmatrix.routing.resolve import explain
from flowmatrix.routing.tables import RoutingState

__all__ = ["frp_reports", "overview_router"]

overview_router = APIRouter(tags=["overview"])


@overview_router.get("/network")
def network(state: State, _: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
    """The network this MG serves and what it can answer (statistics, topology, routing)."""
    config = state.config
    return {
        "name": config.name,
        "asn": config.asn,
        "intervals": [
            {
                "id": i.id,
                "kind": i.kind,
                "timezone": i.timezone,
                "readout_seconds": i.readout_seconds,
                "description": i.description,
            }
            for i in config.intervals
        ],
        "service_nodes": [s.name for s in config.service_nodes],
        "frps": [
            {
                "name": f.name,
                "address": str(f.address),
                "service_node": f.service_node,
                "pes": [p.name for p in config.pes_of(f.name)],
            }
            for f in config.frps
        ],
        "expected_frps": list(expected_frps(config)),
        "pes": [{"name": p.name, "service_node": p.service_node, "frp": p.frp} for p in config.pes],
        "classes": sorted(set(config.dscp_classes())),
        "features": {
            "statistics": state.stats is not None,
            "topology": state.topology is not None,
            "routing": state.routing is not None,
        },
    }


def frp_reports(state: MgState, uploads: list[Upload]) -> list[dict[str, Any]]:
    """Per FRP of the configuration: what its current ``uploads`` reported, summed."""
    by_frp: dict[str, list[Upload]] = defaultdict(list)
    for u in uploads:
        by_frp[u.frp].append(u)
    # the newest routing bundle of each FRP (what the MG explains and resolves with)
    tables = state.tables.status() if state.tables is not None else []
    routing = {
        t["frp"]: {
            "received_ms": t["bundles"][-1]["received_ms"],
            "bundles": len(t["bundles"]),
            "pes": sorted(t["bundles"][-1]["pes"]),
            "rr_taken_at_ms": t["bundles"][-1]["rr_taken_at_ms"],
        }
        for t in tables
        if t["bundles"]
    }
    out = []
    for frp in state.config.frps:
        mine = by_frp.get(frp.name, [])
        last = max(mine, key=lambda u: (u.received_ms, u.period_start_ms), default=None)
        exporters: dict[tuple[str, int], dict[str, Any]] = {}
        unresolved: dict[str, float] = defaultdict(float)
        for u in sorted(mine, key=lambda u: u.period_start_ms):
            for r in u.meta.unresolved:
                unresolved[r.reason] += r.bytes
            for e in u.meta.exporters:
                row = exporters.setdefault(
                    (e.address, e.source_id),
                    {
                        "address": e.address,
                        "source_id": e.source_id,
                        "pe": e.pe,
                        "periods": 0,
                        "datagrams": 0,
                        "records": 0,
                        "dropped": 0,
                        "gap": 0,
                        "gap_unit": e.gap_unit,
                    },
                )
                row["periods"] += 1
                for key in ("datagrams", "records", "dropped", "gap"):
                    row[key] += getattr(e, key)
                row["gap_unit"] = e.gap_unit or row["gap_unit"]
                row["last_period_start_ms"] = u.period_start_ms
                row["last_received_ms"] = u.received_ms
        out.append(
            {
                "name": frp.name,
                "address": str(frp.address),
                "service_node": frp.service_node,
                "pes": [p.name for p in state.config.pes_of(frp.name)],
                "uploads": len(mine),
                "records": sum(u.meta.records for u in mine),
                "last": None
                if last is None
                else {
                    "interval": last.interval,
                    "period_start_ms": last.period_start_ms,
                    "period_end_ms": last.period_end_ms,
                    "received_ms": last.received_ms,
                    "version": last.version,
                    "mode": last.meta.mode,
                },
                "exporters": sorted(
                    exporters.values(), key=lambda e: (e["pe"], e["address"], e["source_id"])
                ),
                "dropped": sum(e["dropped"] for e in exporters.values()),
                "gap": sum(e["gap"] for e in exporters.values()),
                "unresolved_bytes": dict(sorted(unresolved.items())),
                "routing": routing.get(frp.name),
            }
        )
    return out


@overview_router.get("/frps")
def frps(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: Annotated[str | None, Query(max_length=200)] = None,
    since_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    until_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
) -> dict[str, Any]:
    """Per FRP: last upload, exporters (records, drops, sequence gaps), unresolved volume, its
    newest routing bundle (None before any); with the unresolved share of the interval's
    volume when statistics are kept."""
    if interval is not None:
        state.check_interval(interval)
    uploads = state.store.current(interval, since_ms=since_ms, until_ms=until_ms)
    reports = frp_reports(state, uploads)
    unresolved = sum(sum(r["unresolved_bytes"].values()) for r in reports)
    share = None
    if state.stats is not None:
        periods = {(u.interval, u.period_start_ms) for u in uploads}
        volumes = {i.id: state.stats.volumes(i.id) for i in state.config.intervals}
        volume = sum(volumes[i].get(s, 0.0) for i, s in periods)
        share = unresolved / volume if volume > 0 else None
    return {
        "interval": interval,
        "uploads": len(uploads),
        "unresolved_bytes": unresolved,
        "unresolved_share": share,
        "frps": reports,
    }


@overview_router.get("/routing/explain")
def routing_explain(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    pe: Annotated[str, Query(min_length=1, max_length=200)],
    address: Annotated[str, Query(min_length=1, max_length=100)],
    vrf: Annotated[str | None, Query(max_length=200)] = None,
    at_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
) -> dict[str, Any]:
    """Why traffic entering ``pe`` towards ``address`` leaves where it does, per VRF of the PE
    (needs routing tables: those the FRPs send, or ``mg serve --routing DIR``; 404 without)."""
    if state.routing is None:
        msg = "this MG has no routing tables yet (FRPs send theirs; or mg serve --routing DIR)"
        raise LookupError(msg)
    if pe not in {p.name for p in state.config.pes}:
        msg = f"unknown PE {pe!r}"
        raise LookupError(msg)
    compiled = state.routing
    holder = RoutingState(state.config, generation=compiled.generation, compiled=compiled)
    found = explain(holder, pe, address, vrf=vrf, at_ms=at_ms)
    return {
        "pe": pe,
        "address": address,
        "vrf": vrf,
        "lookups": [asdict(e) for e in found],
    }


@overview_router.get("/series")
def element_series(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: Annotated[str, Query(min_length=1, max_length=200)],
    ingress: Annotated[str, Query(min_length=1, max_length=200)],
    egress: Annotated[str, Query(min_length=1, max_length=200)],
    class_: Annotated[str | None, Query(alias="class", min_length=1, max_length=200)] = None,
    granularity: Literal["pe_pe", "pop_pop"] = "pe_pe",
) -> dict[str, Any]:
    """One OD pair's bytes per counted read-out period, oldest first (zero-filled, as the
    statistics count them); ``pop_pop`` sums the PE pairs of two service nodes."""
    state.check_interval(interval)
    if state.stats is None:
        msg = "this MG keeps no statistics"
        raise LookupError(msg)
    if granularity == "pe_pe":
        pairs = [(ingress, egress)]
    else:
        pes: dict[str, list[str]] = defaultdict(list)
        for p in state.config.pes:
            pes[p.service_node].append(p.name)
        pairs = [(a, b) for a in pes.get(ingress, []) for b in pes.get(egress, [])]
    summed: dict[int, float] = {}
    for a, b in pairs:
        try:
            starts, values = state.stats.element_history(interval, a, b, class_)
        except LookupError:
            continue
        for s, v in zip(starts, values, strict=True):
            summed[s] = summed.get(s, 0.0) + v
    if not summed:
        what = "every class" if class_ is None else f"class {class_}"
        msg = f"no traffic {ingress}>{egress} ({what}) in interval {interval!r}"
        raise LookupError(msg)
    spec = next(i for i in state.config.intervals if i.id == interval)
    return {
        "interval": interval,
        "granularity": granularity,
        "element": {"ingress": ingress, "egress": egress, "class": class_},
        "readout_seconds": spec.readout_seconds,
        "periods": [
            {"period_start_ms": s, "bytes": v, "bps": v * 8 / spec.readout_seconds}
            for s, v in sorted(summed.items())
        ],
    }
