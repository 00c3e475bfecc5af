"""gobgpd JSON RIB dumps read as BGP tables (captured from gobgpd 3.10.0)."""

from __future__ import annotations

import pytest

from flowmatrix.errors import RoutingError
from flowmatrix.routing import PeTables, RoutingState, RrTables, resolve_egress
from flowmatrix.routing.gobgp import read_gobgp_json
from flowmatrix.routing.testing import bgp_table, connected_table, network, rd_table

GLOBAL_RIB = (
    '{"65000:100:10.1.0.0/16":[{"nlri":{"prefix":"10.1.0.0/16","labels":[100],"rd":{"type":0,'
    '"admin":65000,"assigned":100}},"age":1795436105,"best":true,"attrs":[{"type":1,"value":2},'
    '{"type":16,"value":[{"type":0,"subtype":2,"value":"65000:100"}]},{"type":14,"nexthop":'
    '"192.0.2.1","afi":1,"safi":128,"value":[{"prefix":"10.1.0.0/16","labels":[100],"rd":{'
    '"type":0,"admin":65000,"assigned":100}}]}],"stale":false}],"65000:200:10.1.2.0/24":[{"nlri":'
    '{"prefix":"10.1.2.0/24","labels":[100],"rd":{"type":0,"admin":65000,"assigned":200}},"age":'
    '1795436105,"best":true,"attrs":[{"type":1,"value":2},{"type":2,"as_paths":[{"segment_type":2,'
    '"num":2,"asns":[65001,65002]}]},{"type":4,"metric":10},{"type":5,"value":200},{"type":16,'
    '"value":[{"type":0,"subtype":2,"value":"65000:100"}]},{"type":14,"nexthop":"192.0.2.2",'
    '"afi":1,"safi":128,"value":[{"prefix":"10.1.2.0/24","labels":[100],"rd":{"type":0,"admin":'
    '65000,"assigned":200}}]}],"stale":false}]}'
)
VRF_RIB = (
    '{"65000:100:10.1.0.0/16":[{"nlri":{"prefix":"10.1.0.0/16"},"age":1795436105,"best":false,'
    '"attrs":[{"type":1,"value":2},{"type":3,"nexthop":"192.0.2.1"}],"stale":false}],'
    '"65000:1:10.9.0.0/16":[{"nlri":{"prefix":"10.9.0.0/16"},"age":1795436361,"best":false,'
    '"attrs":[{"type":1,"value":2},{"type":3,"nexthop":"0.0.0.0"}],"stale":false}]}'
)


def test_a_global_vpnv4_rib_dump_gives_rd_prefix_next_hop_targets_and_attributes() -> None:
    t = read_gobgp_json(GLOBAL_RIB)
    assert t.rds == ["65000:100", "65000:200"]
    assert [sorted(s) for s in t.rt_sets] == [["65000:100"]]
    assert t.local_pref.tolist() == [100, 200]
    assert t.med.tolist() == [0, 10]
    assert t.as_path_len.tolist() == [0, 2]
    assert t.best.tolist() == [1, 1]
    assert t.nh_lo.tolist() == [0xC0000201, 0xC0000202]


def test_a_vrf_rib_dump_marks_nothing_best_so_the_marks_are_left_unsaid() -> None:
    t = read_gobgp_json(VRF_RIB, vrf="blue")
    assert t.best.tolist() == [-1, -1]
    assert t.rds == ["65000:100", "65000:1"]
    assert t.vrfs == ["blue"]


def test_a_vrf_rib_dump_resolves_as_the_pes_own_table() -> None:
    state = RoutingState(network([("pe1", "192.0.2.1", ""), ("pe2", "192.0.2.2", "")]))
    state.add_rr(RrTables(0, bgp_table([]), bgp_table([])))
    rd = rd_table([(101, "blue", "65000:1", "65000:100", "65000:100")])
    state.add_pe(
        PeTables("pe2", 0, rd, connected_table(), bgp=read_gobgp_json(VRF_RIB, vrf="blue"))
    )
    res = resolve_egress(
        state,
        pe=["pe2", "pe2"],
        in_if=[101, 101],
        ip_version=[4, 4],
        dst_hi=[0, 0],
        dst_lo=[0x0A010101, 0x0A090101],
        start_ms=[1, 1],
    )
    # 10.9/16 is local to the dumped speaker (next hop 0.0.0.0)
    assert res.egress_pe_name().to_pylist() == ["pe1", "pe2"]


def test_a_dump_that_is_not_json_is_refused_with_its_line() -> None:
    with pytest.raises(RoutingError, match=r"<gobgp>:2: not JSON"):
        read_gobgp_json('{"a":\n[')
