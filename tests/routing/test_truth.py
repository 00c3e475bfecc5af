"""Resolving every ground-truth flow of generated networks gives the generator's egress PE."""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowmatrix.routing import Resolution, RoutingState, read_native, resolve_egress
from flowmatrix.routing.tables import parse_addresses, parse_prefixes

#: the generator's egress case → the reason the resolver must give
CASE_REASON = {
    "vpn_remote": "bgp",
    "vpn_local": "bgp",
    "connected": "local",
    "multihomed": "bgp",
    "hub": "bgp",
    "extranet": "bgp",
    "interas": "bgp",
    "internet_external": "bgp",
    "internet_internal": "bgp",
}


def _resolve(state: RoutingState, truth: pa.Table) -> Resolution:
    dst = parse_addresses(truth.column("dst"))
    return resolve_egress(
        state,
        pe=truth.column("ingress_pe"),
        in_if=truth.column("ingress_if_index").to_numpy(),
        ip_version=truth.column("ip_version").to_numpy(),
        dst_hi=dst.hi,
        dst_lo=dst.lo,
        start_ms=truth.column("first_ms").to_numpy(),
    )


def _check(net: Path, traffic: Path, *, own_tables: bool) -> None:
    state = read_native(net)
    if not own_tables:
        for name, versions in state.pe_versions.items():
            state.pe_versions[name] = [dataclasses.replace(v, bgp=None) for v in versions]
        state.generation += 1
    truth = pq.read_table(traffic / "truth" / "flows.parquet")
    res = _resolve(state, truth)
    # every flow is there, none split (the generator has no multipath)
    assert res.flow.tolist() == list(range(truth.num_rows))
    got = np.array(res.egress_pe_name().to_pylist())
    want = np.array(truth.column("egress_pe").to_pylist())
    wrong = got != want
    assert not wrong.any(), truth.filter(pa.array(wrong)).slice(0, 3)
    nodes = np.array(res.egress_node_name().to_pylist())
    assert (nodes == np.array(truth.column("egress_node").to_pylist())).all()
    cases = truth.column("egress_case").to_pylist()
    reasons = res.reason_name().to_pylist()
    assert collections.Counter(zip(cases, reasons, strict=True)) == collections.Counter(
        (c, CASE_REASON[c]) for c in cases
    )
    assert set(cases) == set(CASE_REASON)
    vrfs = res.vrf_name().to_pylist()
    assert vrfs == truth.column("vrf").to_pylist()
    assert res.rd_name().to_pylist() == truth.column("rd").to_pylist()


def test_tiny_network_every_flow_leaves_at_the_generators_egress_pe_from_pe_tables(
    tiny_net: tuple[Path, Path],
) -> None:
    _check(*tiny_net, own_tables=True)


def test_tiny_network_every_flow_leaves_at_the_generators_egress_pe_from_the_reflector(
    tiny_net: tuple[Path, Path],
) -> None:
    _check(*tiny_net, own_tables=False)


@pytest.mark.slow
def test_medium_network_every_flow_leaves_at_the_generators_egress_pe_from_pe_tables(
    medium_net: tuple[Path, Path],
) -> None:
    _check(*medium_net, own_tables=True)


@pytest.mark.slow
def test_medium_network_every_flow_leaves_at_the_generators_egress_pe_from_the_reflector(
    medium_net: tuple[Path, Path],
) -> None:
    _check(*medium_net, own_tables=False)


def test_parsed_prefixes_round_trip_through_their_text() -> None:
    from flowmatrix.addr import format_prefixes

    texts = ["0.0.0.0/0", "10.0.16.0/22", "255.255.255.255/32", "fd0a:3::/64", "::/0", "::1/128"]
    p = parse_prefixes(texts)
    assert not p.bad.any()
    assert format_prefixes(p.family, p.hi, p.lo, p.length).to_pylist() == texts
