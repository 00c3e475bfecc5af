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
from flowmatrix.routing.native import read_bgp_table
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


def _ambiguous(net: Path, truth: pa.Table) -> np.ndarray:
    """Flows whose destination more than one best global path covers.

    The generator means internet prefixes not to overlap, but at medium size some
    are drawn twice or nested (docs/routing.md): its truth then follows the prefix
    it drew, a router (and the resolver) the longest match or the path decision.
    """
    table = read_bgp_table(next((net / "routing").glob("global.*")), vpn=False)
    best = (table.best == 1) & (table.family == 4)
    dst = parse_addresses(truth.column("dst"))
    covering = np.zeros(truth.num_rows, dtype=np.int64)
    for length in np.unique(table.length[best]).tolist():
        mask = np.uint64(((1 << 32) - 1) ^ ((1 << (32 - length)) - 1))
        nets = np.sort(table.lo[best & (table.length == length)])
        key = dst.lo & mask
        left = np.searchsorted(nets, key, side="left")
        right = np.searchsorted(nets, key, side="right")
        covering += np.where(dst.family == 4, right - left, 0)
    return covering > 1


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
    # the only disagreements allowed: destinations under a global prefix the generator
    # wrote twice with two different best paths (its truth follows the later one)
    ambiguous = _ambiguous(net, truth) & (np.array(truth.column("vrf").to_pylist()) == "")
    assert not (wrong & ~ambiguous).any(), truth.filter(pa.array(wrong & ~ambiguous)).slice(0, 3)
    assert wrong.sum() <= max(1, truth.num_rows // 500)
    nodes = np.array(res.egress_node_name().to_pylist())
    assert (nodes[~wrong] == np.array(truth.column("egress_node").to_pylist())[~wrong]).all()
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
