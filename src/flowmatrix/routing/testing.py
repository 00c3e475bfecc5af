"""Small hand-built routing tables for tests and examples (other components' fakes)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

import numpy as np

from flowmatrix.config.model import ExternalNextHop, NetworkConfig, PeRouter, ServiceNode
from flowmatrix.routing.tables import (
    BgpTable,
    ConnectedTable,
    PeTables,
    RdTable,
    RoutingState,
    RrTables,
    bgp_from_rows,
    parse_prefixes,
)

__all__ = ["bgp_table", "connected_table", "network", "rd_table", "two_pe_state"]


def bgp_table(rows: Sequence[Mapping[str, object]], *, file: str = "<test>") -> BgpTable:
    """A BGP table from dicts (see :func:`flowmatrix.routing.tables.bgp_from_rows`)."""
    return bgp_from_rows(rows, file=file)


def rd_table(rows: Sequence[tuple[int, str, str, str, str]]) -> RdTable:
    """An RD table from ``(if_index, vrf, rd, import_rts, export_rts)`` tuples."""
    vrfs = [r[1] for r in rows]
    numbers = {v: k + 1 for k, v in enumerate(dict.fromkeys(v for v in vrfs if v))}
    return RdTable(
        if_index=np.array([r[0] for r in rows], dtype=np.int64),
        interface=[f"Gi0/0/0/0.{r[0]}" for r in rows],
        vrf=vrfs,
        rd=[r[2] for r in rows],
        import_rts=[frozenset(r[3].split()) for r in rows],
        export_rts=[frozenset(r[4].split()) for r in rows],
        vrf_id=np.array([numbers.get(v, 0) for v in vrfs], dtype=np.int64),
    )


def connected_table(rows: Sequence[tuple[str, str, bool]] = ()) -> ConnectedTable:
    """Connected/static prefixes from ``(vrf, prefix, in_bgp)`` tuples."""
    p = parse_prefixes([r[1] for r in rows])
    return ConnectedTable(
        vrf=[r[0] for r in rows],
        family=p.family,
        hi=p.hi,
        lo=p.lo,
        length=p.length,
        in_bgp=np.array([r[2] for r in rows], dtype=bool),
    )


def network(
    pes: Sequence[tuple[str, str, str]], external: Sequence[tuple[str, str]] = ()
) -> NetworkConfig:
    """A configuration from ``(name, loopback, loopback6)`` PEs (each its own service node)
    and ``(prefix, pe)`` external next hops."""
    return NetworkConfig(
        name="test",
        asn=65000,
        service_nodes=tuple(ServiceNode(name=p[0].upper()) for p in pes),
        pes=tuple(
            PeRouter(
                name=p[0],
                loopback=ipaddress.ip_address(p[1]),
                service_node=p[0].upper(),
                loopback6=ipaddress.IPv6Address(p[2]) if p[2] else None,
            )
            for p in pes
        ),
        external_next_hops=tuple(
            ExternalNextHop(prefix=ipaddress.ip_network(e[0]), pe=e[1]) for e in external
        ),
    )


def two_pe_state() -> RoutingState:
    """Two PEs in one mesh VPN (RT 65000:1) seen through a route reflector; pe1 ifIndex 101.

    pe1 holds 10.1.0.0/16, pe2 10.2.0.0/16; tables taken at t = 0. A third PE,
    pe3 (192.0.2.3), is configured but has no tables.
    """
    state = RoutingState(
        network(
            [
                ("pe1", "192.0.2.1", "2001:db8::1"),
                ("pe2", "192.0.2.2", "2001:db8::2"),
                ("pe3", "192.0.2.3", "2001:db8::3"),
            ]
        )
    )
    vpn = bgp_table(
        [
            {"rd": "65000:1", "prefix": "10.1.0.0/16", "next_hop": "192.0.2.1", "rts": "65000:1"},
            {"rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"},
        ]
    )
    state.add_rr(RrTables(0, vpn, bgp_table([])))
    for name, if_index in (("pe1", 101), ("pe2", 201)):
        rd = rd_table([(if_index, "blue", "65000:1", "65000:1", "65000:1")])
        state.add_pe(PeTables(name, 0, rd, connected_table()))
    return state
