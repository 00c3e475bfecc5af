"""One test per egress case of claims 25–29 and the paper, on small hand-built tables."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from flowmatrix.routing import PeTables, Resolution, RoutingState, RrTables, resolve_egress
from flowmatrix.routing.testing import (
    bgp_table,
    connected_table,
    network,
    rd_table,
    two_pe_state,
)

PES = [
    ("pe1", "192.0.2.1", "2001:db8::1"),
    ("pe2", "192.0.2.2", "2001:db8::2"),
    ("pe3", "192.0.2.3", "2001:db8::3"),
]


def _resolve(state: RoutingState, flows: list[tuple[str, int, str]], **extra: object) -> Resolution:
    """Resolve (ingress PE, ifIndex, destination) flows at t = 1000."""
    addrs = [ipaddress.ip_address(d) for _, _, d in flows]
    return resolve_egress(
        state,
        pe=[f[0] for f in flows],
        in_if=[f[1] for f in flows],
        ip_version=[a.version for a in addrs],
        dst_hi=[int(a) >> 64 for a in addrs],
        dst_lo=[int(a) & ((1 << 64) - 1) for a in addrs],
        start_ms=extra.pop("start_ms", [1000] * len(flows)),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _egress(res: Resolution) -> list[tuple[str, str]]:
    return list(zip(res.egress_pe_name().to_pylist(), res.reason_name().to_pylist(), strict=True))


def _rr_state(
    vpn_rows: list[dict[str, object]],
    rd_rows: dict[str, list[tuple[int, str, str, str, str]]],
    *,
    global_rows: list[dict[str, object]] | None = None,
    connected: dict[str, list[tuple[str, str, bool]]] | None = None,
    external: list[tuple[str, str]] = (),
) -> RoutingState:
    state = RoutingState(network(PES, external))
    state.add_rr(RrTables(0, bgp_table(vpn_rows), bgp_table(global_rows or [])))
    for pe, rows in rd_rows.items():
        conn = connected_table((connected or {}).get(pe, []))
        state.add_pe(PeTables(pe, 0, rd_table(rows), conn))
    return state


MESH = {
    "pe1": [(101, "blue", "65000:1", "65000:1", "65000:1")],
    "pe2": [(201, "blue", "65000:1", "65000:1", "65000:1")],
}


def test_route_in_the_vrf_resolves_to_the_pe_whose_loopback_is_the_next_hop() -> None:
    res = _resolve(two_pe_state(), [("pe1", 101, "10.2.3.4"), ("pe1", 101, "10.1.3.4")])
    assert _egress(res) == [("pe2", "bgp"), ("pe1", "bgp")]
    assert res.vrf_name().to_pylist() == ["blue", "blue"]
    assert res.rd_name().to_pylist() == ["65000:1", "65000:1"]
    assert res.egress_node_name().to_pylist() == ["PE2", "PE1"]


def test_per_pe_rds_are_seen_through_route_target_import() -> None:
    vpn = [
        {"rd": "65000:11", "prefix": "10.1.0.0/16", "next_hop": "192.0.2.1", "rts": "65000:1"},
        {"rd": "65000:12", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"},
    ]
    rds = {
        "pe1": [(101, "blue", "65000:11", "65000:1", "65000:1")],
        "pe2": [(201, "blue", "65000:12", "65000:1", "65000:1")],
    }
    res = _resolve(_rr_state(vpn, rds), [("pe1", 101, "10.2.0.1"), ("pe2", 201, "10.1.0.1")])
    assert _egress(res) == [("pe2", "bgp"), ("pe1", "bgp")]


def test_a_vrf_does_not_see_routes_whose_targets_it_does_not_import() -> None:
    vpn = [
        {"rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"},
        {"rd": "65000:2", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.3", "rts": "65000:2"},
    ]
    rds = {
        "pe1": [
            (101, "blue", "65000:1", "65000:1", "65000:1"),
            (102, "red", "65000:2", "65000:2", "65000:2"),
            (103, "green", "65000:3", "65000:3", "65000:3"),
        ]
    }
    res = _resolve(_rr_state(vpn, rds), [("pe1", i, "10.2.0.1") for i in (101, 102, 103)])
    assert _egress(res) == [("pe2", "bgp"), ("pe3", "bgp"), ("unresolved", "no_route")]


def test_extranet_vrf_imports_a_shared_target_besides_its_own() -> None:
    vpn = [
        {"rd": "65000:9", "prefix": "198.18.0.0/24", "next_hop": "192.0.2.3", "rts": "65000:300"},
        {
            "rd": "65000:1",
            "prefix": "100.64.0.0/23",
            "next_hop": "192.0.2.2",
            "rts": "65000:1 65000:301",
        },
    ]
    rds = {
        "pe1": [(101, "blue", "65000:1", "65000:1 65000:300", "65000:1 65000:301")],
        "pe3": [(301, "shared", "65000:9", "65000:300 65000:301", "65000:300")],
    }
    res = _resolve(_rr_state(vpn, rds), [("pe1", 101, "198.18.0.9"), ("pe3", 301, "100.64.1.1")])
    assert _egress(res) == [("pe3", "bgp"), ("pe2", "bgp")]


def test_hub_and_spoke_spokes_leave_at_the_hub_and_the_hub_sees_its_own_sites() -> None:
    vpn = [
        # the hub (pe1) advertises a default and its own site with the hub target
        {"rd": "65000:11", "prefix": "0.0.0.0/0", "next_hop": "192.0.2.1", "rts": "65000:100"},
        {
            "rd": "65000:11",
            "prefix": "10.1.0.0/16",
            "next_hop": "192.0.2.1",
            "rts": "65000:100",
            "originator": "pe1",
        },
        {"rd": "65000:12", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:200"},
        {"rd": "65000:13", "prefix": "10.3.0.0/16", "next_hop": "192.0.2.3", "rts": "65000:200"},
    ]
    rds = {
        "pe1": [(101, "hub", "65000:11", "65000:200", "65000:100")],
        "pe2": [(201, "spoke", "65000:12", "65000:100", "65000:200")],
    }
    res = _resolve(
        _rr_state(vpn, rds),
        [("pe2", 201, "10.3.0.1"), ("pe1", 101, "10.2.0.1"), ("pe1", 101, "10.1.9.9")],
    )
    assert _egress(res) == [("pe1", "bgp"), ("pe2", "bgp"), ("pe1", "bgp")]


def test_connected_and_static_prefixes_not_in_bgp_resolve_to_the_ingress_pe() -> None:
    vpn = [{"rd": "65000:1", "prefix": "10.0.0.0/8", "next_hop": "192.0.2.2", "rts": "65000:1"}]
    conn = {
        "pe1": [
            ("blue", "10.1.1.252/30", False),
            ("blue", "10.1.2.0/28", False),
            ("blue", "10.1.3.0/24", True),
            ("red", "10.9.0.0/16", False),
        ]
    }
    res = _resolve(
        _rr_state(vpn, MESH, connected=conn),
        [
            ("pe1", 101, "10.1.1.253"),
            ("pe1", 101, "10.1.2.5"),
            ("pe1", 101, "10.1.3.5"),
            ("pe1", 101, "10.9.0.1"),
        ],
    )
    # the /24 is in BGP (not local), and red's static is not blue's
    assert _egress(res) == [("pe1", "local"), ("pe1", "local"), ("pe2", "bgp"), ("pe2", "bgp")]
    assert res.prefix_len.tolist() == [30, 28, 8, 8]


def test_a_more_specific_bgp_route_beats_a_covering_static() -> None:
    vpn = [{"rd": "65000:1", "prefix": "10.1.2.0/24", "next_hop": "192.0.2.2", "rts": "65000:1"}]
    conn = {"pe1": [("blue", "10.1.0.0/16", False)]}
    res = _resolve(
        _rr_state(vpn, MESH, connected=conn), [("pe1", 101, "10.1.2.1"), ("pe1", 101, "10.1.3.1")]
    )
    assert _egress(res) == [("pe2", "bgp"), ("pe1", "local")]


def test_interfaces_in_no_vrf_resolve_through_the_global_table_ipv4_and_ipv6() -> None:
    glob = [
        {"prefix": "185.0.0.0/23", "next_hop": "192.0.2.2"},
        {"prefix": "2001:db8:5::/48", "next_hop": "2001:db8::3"},
        {"prefix": "10.2.0.0/16", "next_hop": "192.0.2.3"},
    ]
    vpn = [{"rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"}]
    rds = {"pe1": [(101, "blue", "65000:1", "65000:1", "65000:1"), (110, "", "", "", "")]}
    res = _resolve(
        _rr_state(vpn, rds, global_rows=glob),
        [
            ("pe1", 110, "185.0.1.1"),
            ("pe1", 110, "2001:db8:5::1"),
            ("pe1", 110, "10.2.0.1"),
            ("pe1", 101, "10.2.0.1"),
        ],
    )
    assert _egress(res) == [("pe2", "bgp"), ("pe3", "bgp"), ("pe3", "bgp"), ("pe2", "bgp")]
    assert res.vrf_name().to_pylist() == ["", "", "", "blue"]


def test_6vpe_ipv4_mapped_next_hops_map_to_the_pe_loopback() -> None:
    vpn = [
        {
            "rd": "65000:1",
            "prefix": "fd0a:3::/48",
            "next_hop": "::ffff:192.0.2.2",
            "rts": "65000:1",
        },
        {"rd": "65000:1", "prefix": "fd0a:4::/48", "next_hop": "192.0.2.3", "rts": "65000:1"},
    ]
    res = _resolve(_rr_state(vpn, MESH), [("pe1", 101, "fd0a:3::9"), ("pe1", 101, "fd0a:4::9")])
    assert _egress(res) == [("pe2", "bgp"), ("pe3", "bgp")]


def test_next_hops_outside_the_as_map_to_a_pe_through_the_configuration() -> None:
    vpn = [
        {
            "rd": "65000:1",
            "prefix": "10.255.224.0/20",
            "next_hop": "203.0.113.7",
            "rts": "65000:1",
            "med": 5,
            "as_path_len": 2,
        }
    ]
    glob = [
        {"prefix": "8.8.8.0/24", "next_hop": "192.0.2.10"},
        {"prefix": "9.9.9.0/24", "next_hop": "198.51.100.1"},
    ]
    rds = {"pe1": [(101, "blue", "65000:1", "65000:1", "65000:1"), (110, "", "", "", "")]}
    state = _rr_state(
        vpn, rds, global_rows=glob, external=[("203.0.113.7/32", "pe3"), ("192.0.2.8/29", "pe2")]
    )
    res = _resolve(
        state, [("pe1", 101, "10.255.230.1"), ("pe1", 110, "8.8.8.8"), ("pe1", 110, "9.9.9.9")]
    )
    assert _egress(res) == [("pe3", "bgp"), ("pe2", "bgp"), ("unresolved", "unknown_next_hop")]


def test_a_next_hop_carried_in_the_record_is_used_unless_it_is_zero() -> None:
    flows = [("pe1", 101, "10.2.0.1")] * 3
    nh = [int(ipaddress.IPv4Address(a)) for a in ("192.0.2.3", "0.0.0.0", "172.31.0.1")]
    res = _resolve(two_pe_state(), flows, bgp_next_hop=([0, 0, 0], nh))
    # zero → the tables; an address no PE owns (a CE) → the tables too
    assert _egress(res) == [("pe3", "record_next_hop"), ("pe2", "bgp"), ("pe2", "bgp")]


def test_a_record_next_hop_of_a_known_pe_wins_over_the_tables() -> None:
    state = RoutingState(network(PES))
    vpn = bgp_table(
        [{"rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"}]
    )
    state.add_rr(RrTables(0, vpn, bgp_table([])))
    state.add_pe(PeTables("pe1", 0, rd_table(MESH["pe1"]), connected_table()))
    nh = int(ipaddress.IPv4Address("192.0.2.3"))
    res = _resolve(
        state, [("pe1", 101, "10.2.0.1")], bgp_next_hop=([0], [nh]), bgp_next_hop_version=[4]
    )
    assert _egress(res) == [("pe3", "record_next_hop")]


def test_the_best_and_multipath_marks_of_the_router_decide_when_given() -> None:
    vpn = [
        {
            "rd": "65000:1",
            "prefix": "172.16.0.0/24",
            "next_hop": "192.0.2.2",
            "rts": "65000:1",
            "local_pref": 100,
            "best": True,
        },
        {
            "rd": "65000:1",
            "prefix": "172.16.0.0/24",
            "next_hop": "192.0.2.3",
            "rts": "65000:1",
            "local_pref": 200,
            "best": False,
        },
    ]
    res = _resolve(_rr_state(vpn, MESH), [("pe1", 101, "172.16.0.1")])
    assert _egress(res) == [("pe2", "bgp")]


@pytest.mark.parametrize(
    ("attrs2", "attrs3", "winner"),
    [
        ({"local_pref": 200}, {"local_pref": 100}, "pe2"),
        ({"local_pref": 100}, {"local_pref": 200}, "pe3"),
        ({"as_path_len": 3}, {"as_path_len": 1}, "pe3"),
        ({"med": 10}, {"med": 0}, "pe3"),
        ({"local_pref": 200, "as_path_len": 5}, {"local_pref": 100, "as_path_len": 1}, "pe2"),
    ],
)
def test_without_marks_the_bgp_decision_picks_the_path(
    attrs2: dict[str, int], attrs3: dict[str, int], winner: str
) -> None:
    # per-PE RDs: both paths reach the VRF's view, unmarked
    vpn = [
        {
            "rd": "65000:12",
            "prefix": "172.16.0.0/24",
            "next_hop": "192.0.2.2",
            "rts": "65000:1",
            **attrs2,
        },
        {
            "rd": "65000:13",
            "prefix": "172.16.0.0/24",
            "next_hop": "192.0.2.3",
            "rts": "65000:1",
            **attrs3,
        },
    ]
    res = _resolve(_rr_state(vpn, MESH), [("pe1", 101, "172.16.0.1")])
    assert _egress(res) == [(winner, "bgp")]


def test_a_multipath_set_splits_the_flow_equally_and_says_so() -> None:
    vpn = [
        {"rd": "65000:12", "prefix": "172.16.0.0/24", "next_hop": "192.0.2.2", "rts": "65000:1"},
        {"rd": "65000:13", "prefix": "172.16.0.0/24", "next_hop": "192.0.2.3", "rts": "65000:1"},
    ]
    res = _resolve(_rr_state(vpn, MESH), [("pe1", 101, "10.9.9.9"), ("pe1", 101, "172.16.0.1")])
    assert res.flow.tolist() == [0, 1, 1]
    assert _egress(res) == [("unresolved", "no_route"), ("pe2", "bgp"), ("pe3", "bgp")]
    assert res.share.tolist() == [1.0, 0.5, 0.5]
    assert np.bincount(res.flow, weights=res.share).tolist() == [1.0, 1.0]


def test_marked_multipath_paths_are_kept_beside_the_best() -> None:
    vpn = [
        {
            "rd": "65000:1",
            "prefix": "172.16.0.0/24",
            "next_hop": "192.0.2.2",
            "rts": "65000:1",
            "best": True,
        },
        {
            "rd": "65000:1",
            "prefix": "172.16.0.0/24",
            "next_hop": "192.0.2.3",
            "rts": "65000:1",
            "best": False,
            "multipath": True,
        },
        {
            "rd": "65000:1",
            "prefix": "172.16.0.0/24",
            "next_hop": "192.0.2.1",
            "rts": "65000:1",
            "best": False,
            "multipath": False,
        },
    ]
    res = _resolve(_rr_state(vpn, MESH), [("pe1", 101, "172.16.0.1")])
    assert sorted(res.egress_pe_name().to_pylist()) == ["pe2", "pe3"]


def test_unresolvable_flows_are_kept_with_a_reason_and_counted() -> None:
    def count(reason: str) -> float:
        return REGISTRY.get_sample_value("egress_unresolved_total", {"reason": reason}) or 0.0

    before = {r: count(r) for r in ("no_vrf", "no_route", "no_tables")}
    res = _resolve(
        two_pe_state(),
        [
            ("pe1", 999, "10.2.0.1"),
            ("pe1", 101, "11.0.0.1"),
            ("pe9", 101, "10.2.0.1"),
            ("pe1", 101, "10.2.0.1"),
        ],
        start_ms=[1000, 1000, 1000, -5],
    )
    assert _egress(res) == [
        ("unresolved", "no_vrf"),
        ("unresolved", "no_route"),
        ("unresolved", "no_tables"),
        ("unresolved", "no_tables"),
    ]
    assert count("no_vrf") - before["no_vrf"] == 1
    assert count("no_route") - before["no_route"] == 1
    assert count("no_tables") - before["no_tables"] == 2


def test_a_pe_own_table_keyed_under_its_local_rd_is_used_instead_of_the_reflector() -> None:
    state = two_pe_state()
    own = bgp_table(
        [
            {
                "vrf": "blue",
                "rd": "65000:1",
                "prefix": "10.2.0.0/16",
                "next_hop": "192.0.2.3",
                "best": True,
            },
            # next hop 0.0.0.0: the PE's own route (gobgpd prints local paths so)
            {
                "vrf": "blue",
                "rd": "65000:1",
                "prefix": "10.7.0.0/16",
                "next_hop": "0.0.0.0",
                "best": True,
            },
        ]
    )
    v = state.pe_versions["pe1"][0]
    state.add_pe(PeTables("pe1", 0, v.rd, v.connected, bgp=own))
    res = _resolve(state, [("pe1", 101, "10.2.0.1"), ("pe1", 101, "10.7.0.1")])
    assert _egress(res) == [("pe3", "bgp"), ("pe1", "bgp")]


def test_the_ingress_vrf_id_of_the_record_selects_the_vrf() -> None:
    vpn = [
        {"rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"},
        {"rd": "65000:2", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.3", "rts": "65000:2"},
    ]
    rds = {
        "pe1": [
            (101, "blue", "65000:1", "65000:1", "65000:1"),
            (102, "red", "65000:2", "65000:2", "65000:2"),
        ]
    }
    # VRF ids number the VRFs in RD table order: blue 1, red 2
    res = _resolve(
        _rr_state(vpn, rds),
        [("pe1", 101, "10.2.0.1"), ("pe1", 0, "10.2.0.1")],
        ingress_vrf_id=[2, 1],
    )
    assert _egress(res) == [("pe3", "bgp"), ("pe2", "bgp")]


def test_a_later_upload_replaces_the_earlier_from_its_own_time_on() -> None:
    state = two_pe_state()
    moved = bgp_table(
        [{"vrf": "blue", "rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.3"}]
    )
    v = state.pe_versions["pe1"][0]
    state.add_pe(PeTables("pe1", 5000, v.rd, v.connected, bgp=moved))
    flows = [("pe1", 101, "10.2.0.1")] * 3
    res = _resolve(state, flows, start_ms=[4999, 5000, 9000])
    assert res.egress_pe_name().to_pylist() == ["pe2", "pe3", "pe3"]
    assert state.prune(6000) == 1
    assert state.version_times("pe1") == [5000]
    res = _resolve(state, flows, start_ms=[4999, 5000, 9000])
    assert _egress(res)[0] == ("unresolved", "no_tables")
    assert res.egress_pe_name().to_pylist()[1:] == ["pe3", "pe3"]


def test_prune_keeps_the_version_still_in_force() -> None:
    state = two_pe_state()
    assert state.prune(10**12) == 0
    assert state.version_times("pe1") == [0]


def test_flows_before_the_first_reflector_upload_have_no_tables() -> None:
    state = RoutingState(network(PES))
    vpn = bgp_table(
        [{"rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"}]
    )
    state.add_rr(RrTables(5000, vpn, bgp_table([])))
    state.add_pe(PeTables("pe1", 0, rd_table(MESH["pe1"]), connected_table()))
    res = _resolve(state, [("pe1", 101, "10.2.0.1")] * 2, start_ms=[4000, 6000])
    assert _egress(res) == [("unresolved", "no_tables"), ("pe2", "bgp")]


def _mixed_state() -> RoutingState:
    """Multipath, a connected prefix, a PE version taken at 5000 and a reflector at 3000."""
    vpn = [
        {"rd": "65000:12", "prefix": "172.16.0.0/24", "next_hop": "192.0.2.2", "rts": "65000:1"},
        {"rd": "65000:13", "prefix": "172.16.0.0/24", "next_hop": "192.0.2.3", "rts": "65000:1"},
        {"rd": "65000:12", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"},
        {"rd": "65000:12", "prefix": "2001:db8:2::/48", "next_hop": "192.0.2.2", "rts": "65000:1"},
    ]
    state = _rr_state(vpn, MESH, connected={"pe1": [("blue", "10.1.0.0/16", False)]})
    later = [{"rd": "65000:13", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.3", "rts": "65000:1"}]
    state.add_rr(RrTables(3000, bgp_table(vpn[:2] + later), bgp_table([])))
    v = state.pe_versions["pe1"][0]
    state.add_pe(PeTables("pe1", 5000, v.rd, v.connected))
    return state


#: (ingress PE, ifIndex, destination, start ms, record next hop) flows drawn from
POOL = [
    (pe, if_, dst, t, nh)
    for pe, if_ in (("pe1", 101), ("pe2", 201), ("pe1", 999), ("pe9", 101))
    for dst in ("172.16.0.1", "10.2.0.1", "10.1.2.3", "11.0.0.1", "2001:db8:2::1")
    for t in (1000, 4000, 6000)
    for nh in (0, 0xC000_0203)
]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(range(len(POOL))), min_size=256, max_size=700))
def test_a_batch_resolves_as_its_flows_one_by_one(picks: list[int]) -> None:
    # a batch this long is resolved once per distinct lookup; one flow alone never is
    state = _mixed_state()
    flows = [POOL[i] for i in picks]

    def resolve(part: list[tuple[str, int, str, int, int]]) -> Resolution:
        return _resolve(
            state,
            [(pe, if_, dst) for pe, if_, dst, _, _ in part],
            start_ms=[t for *_, t, _ in part],
            bgp_next_hop=([0] * len(part), [nh for *_, nh in part]),
            bgp_next_hop_version=[4] * len(part),
        )

    batch = resolve(flows)
    alone = [resolve([f]) for f in flows]
    assert batch.flow.tolist() == [i for i, r in enumerate(alone) for _ in range(len(r))]
    for column in ("egress_pe", "egress_node", "vrf", "rd", "reason", "share", "prefix_len"):
        expected = np.concatenate([getattr(r, column) for r in alone])
        assert getattr(batch, column).tolist() == expected.tolist(), column


def test_view_age_follows_the_newest_version_each_pe_resolves_with() -> None:
    import dataclasses

    from prometheus_client import REGISTRY

    from flowmatrix.routing.resolve import watch_view_age
    from flowmatrix.routing.testing import two_pe_state

    state = two_pe_state()  # every table taken at t = 0
    now = [100.0]
    watch_view_age(state, ["pe1", "pe2", "pe3"], clock=lambda: now[0])
    assert REGISTRY.get_sample_value("routing_view_age_seconds", {"pe": "pe1"}) == 100.0
    # pe3 has no tables of its own, but resolves through the route reflector's view
    assert REGISTRY.get_sample_value("routing_view_age_seconds", {"pe": "pe3"}) == 100.0
    now[0] = 160.0  # computed when scraped
    assert REGISTRY.get_sample_value("routing_view_age_seconds", {"pe": "pe2"}) == 160.0
    newer = dataclasses.replace(state.rr_versions[-1], taken_at_ms=150_000)
    state.add_rr(newer)
    watch_view_age(state, ["pe1"], clock=lambda: now[0])
    assert REGISTRY.get_sample_value("routing_view_age_seconds", {"pe": "pe1"}) == 10.0
