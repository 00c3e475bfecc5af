"""MRT TABLE_DUMP_V2 dumps (a golden gobgpd 3.10.0 table dump) read field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowmatrix.addr import format_addresses, format_prefixes
from flowmatrix.errors import RoutingError
from flowmatrix.routing import PeTables, RoutingState, RrTables, resolve_egress
from flowmatrix.routing.mrt import read_mrt
from flowmatrix.routing.testing import connected_table, network, rd_table

#: gobgpd [[mrt-dump]] dump-type "table": RIB_GENERIC_ADDPATH (12) for VPNv4/VPNv6 and
#: RIB_IPV4_UNICAST_ADDPATH (8) for 185.0.0.0/24; routes added with the gobgp CLI
GOLDEN = Path(__file__).parent / "data" / "gobgpd-table.mrt"


def test_vpn_paths_of_a_gobgpd_table_dump_decode_field_by_field() -> None:
    vpn, glob = read_mrt(GOLDEN)
    assert format_prefixes(vpn.family, vpn.hi, vpn.lo, vpn.length).to_pylist() == [
        "10.2.0.0/16",
        "10.3.0.0/16",
        "fd0a:2::/48",
    ]
    assert [vpn.rds[i] for i in vpn.rd] == ["65000:12", "65000:13", "65000:12"]
    assert [sorted(vpn.rt_sets[i]) for i in vpn.rts] == [
        ["65000:1"],
        ["65000:1", "65000:2"],
        ["65000:1"],
    ]
    hops = format_addresses(vpn.nh_family, vpn.nh_hi, vpn.nh_lo).to_pylist()
    assert hops[:2] == ["192.0.2.2", "192.0.2.3"]
    assert vpn.nh_family[2] == 6
    assert (int(vpn.nh_lo[2]), int(vpn.nh_hi[2])) == (0xFFFF_C000_0202, 0)  # ::ffff:192.0.2.2
    assert vpn.local_pref.tolist() == [200, 100, 100]
    assert vpn.med.tolist() == [5, 0, 0]
    assert vpn.as_path_len.tolist() == [1, 0, 0]
    assert (vpn.best == -1).all()
    assert format_prefixes(glob.family, glob.hi, glob.lo, glob.length).to_pylist() == [
        "185.0.0.0/24"
    ]
    assert format_addresses(glob.nh_family, glob.nh_hi, glob.nh_lo).to_pylist() == ["192.0.2.9"]


def test_a_table_dump_resolves_flows_like_a_route_reflector_table() -> None:
    vpn, glob = read_mrt(GOLDEN)
    state = RoutingState(
        network([("pe1", "192.0.2.1", ""), ("pe2", "192.0.2.2", ""), ("pe3", "192.0.2.3", "")])
    )
    state.add_rr(RrTables(0, vpn, glob))
    rd = rd_table([(101, "blue", "65000:11", "65000:1", "65000:1")])
    state.add_pe(PeTables("pe1", 0, rd, connected_table()))
    res = resolve_egress(
        state,
        pe=["pe1"] * 3,
        in_if=[101] * 3,
        ip_version=[4, 4, 6],
        dst_hi=[0, 0, 0xFD0A_0002_0000_0000],
        dst_lo=[0x0A020001, 0x0A030001, 1],
        start_ms=[1, 1, 1],
    )
    assert res.egress_pe_name().to_pylist() == ["pe2", "pe3", "pe2"]


def test_a_truncated_dump_is_refused_naming_the_record_offset(tmp_path: Path) -> None:
    data = GOLDEN.read_bytes()
    cut = tmp_path / "cut.mrt"
    cut.write_bytes(data[:-5])
    with pytest.raises(RoutingError, match=r"cut\.mrt: offset \d+: truncated MRT record"):
        read_mrt(cut)
