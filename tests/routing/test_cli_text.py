"""Router CLI captures (IOS-XE, IOS-XR) read through TextFSM as RD and BGP VPN tables."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest

from flowmatrix.errors import RoutingError
from flowmatrix.routing import (
    BgpTable,
    PeTables,
    Resolution,
    RoutingState,
    read_cli_bgp_vpn,
    read_cli_if_index,
    read_cli_rd_table,
    resolve_egress,
)
from flowmatrix.routing.testing import connected_table, network

DATA = Path(__file__).parent / "data" / "cli"
IOS_BGP = DATA / "ios_show_bgp_vpnv4_unicast_all.txt"
XR_BGP = DATA / "xr_show_bgp_vpnv4_unicast.txt"
IOS_IFINDEX = DATA / "ios_show_snmp_mib_ifmib_ifindex.txt"
XR_IFINDEX = DATA / "xr_show_snmp_interface.txt"
JUNOS_BGP = DATA / "junos_show_route_table_detail.txt"
JUNOS_IFINDEX = DATA / "junos_show_snmp_mib_walk_ifname.txt"


def _rows(t: BgpTable) -> list[tuple[object, ...]]:
    """(rd, vrf, prefix, next hop, LOCAL_PREF, MED, AS path length, best, multipath) per path."""
    out = []
    for i in range(len(t)):
        prefix = f"{ipaddress.IPv4Address(int(t.lo[i]))}/{int(t.length[i])}"
        nh = str(ipaddress.IPv4Address(int(t.nh_lo[i])))
        vrf = t.vrfs[t.vrf[i]] if t.vrf[i] >= 0 else ""
        out.append(
            (
                t.rds[t.rd[i]] if t.rd[i] >= 0 else "",
                vrf,
                prefix,
                nh,
                int(t.local_pref[i]),
                int(t.med[i]),
                int(t.as_path_len[i]),
                int(t.best[i]),
                int(t.multipath[i]),
            )
        )
    return out


IOS_PATHS = [
    ("65000:1", "blue", "10.1.0.0/16", "0.0.0.0", 100, 0, 0, 1, 0),
    # learned from the CE (no "i"): leaves through this PE
    ("65000:1", "blue", "10.1.128.0/24", "0.0.0.0", 100, 0, 1, 1, 0),
    ("65000:1", "blue", "10.2.0.0/16", "192.0.2.2", 100, 0, 0, 1, 0),
    ("65000:1", "blue", "10.3.0.0/16", "192.0.2.3", 100, 10, 1, 0, 1),
    ("65000:1", "blue", "10.3.0.0/16", "192.0.2.4", 100, 10, 1, 1, 0),
    ("65000:1", "blue", "10.4.0.0/16", "192.0.2.3", 90, 0, 0, 0, 0),
    ("65000:1", "blue", "10.4.0.0/16", "192.0.2.4", 100, 0, 0, 1, 0),
    # an AS_SET counts one
    ("65000:1", "blue", "10.5.0.0/16", "192.0.2.3", 100, 0, 2, 1, 0),
    ("65000:1", "blue", "10.5.0.0/16", "192.0.2.4", 100, 0, 3, 0, 0),
    # wrapped: the prefix alone on its line, the path on the next
    ("65000:1", "blue", "10.255.255.128/25", "192.0.2.2", 100, 0, 0, 1, 0),
    ("65000:2", "red", "172.16.0.0/12", "0.0.0.0", 100, 0, 0, 1, 0),
    ("65000:2", "red", "172.17.0.0/16", "192.0.2.2", 100, 20, 0, 1, 0),
    ("65000:3", "", "10.3.0.0/16", "192.0.2.3", 100, 10, 1, 1, 0),
    ("65000:4", "", "10.3.0.0/16", "192.0.2.4", 100, 10, 1, 1, 0),
]


def test_ios_show_bgp_vpnv4_unicast_all_is_read_path_by_path_with_rd_and_marks() -> None:
    t = read_cli_bgp_vpn(IOS_BGP, platform="cisco_ios")
    assert _rows(t) == IOS_PATHS
    assert t.rds == ["65000:1", "65000:2", "65000:3", "65000:4"]
    assert t.vrfs == ["blue", "red"]
    assert t.file == str(IOS_BGP)


def test_xr_show_bgp_vpnv4_unicast_is_read_with_the_same_template() -> None:
    t = read_cli_bgp_vpn(XR_BGP, platform="cisco_xr")
    # the XR capture marks 10.3.0.0/16 via 192.0.2.3 "* i" (no multipath code)
    expected = [(*r[:8], 0) for r in IOS_PATHS]
    assert _rows(t) == expected


def test_an_snmp_interface_listing_gives_ifindex_per_interface() -> None:
    ios = read_cli_if_index(IOS_IFINDEX, platform="cisco_ios")
    assert ios["GigabitEthernet0/0/1.100"] == 12
    assert ios["Null0"] == 5
    assert len(ios) == 8
    xr = read_cli_if_index(XR_IFINDEX, platform="cisco_xr")
    assert xr["GigabitEthernet0/0/0/1.105"] == 31
    assert xr["Bundle-Ether10.200"] == 21
    assert len(xr) == 7


def test_ios_show_vrf_detail_gives_interfaces_rd_and_targets_of_vpn_vrfs_only() -> None:
    rd = read_cli_rd_table(
        DATA / "ios_show_vrf_detail.txt", platform="cisco_ios", if_index=IOS_IFINDEX
    )
    # several interfaces and targets on one line (as IOS prints them) are all read;
    # the management VRF (no RD) is left out
    assert rd.if_index.tolist() == [12, 3, 13]
    assert rd.interface == [
        "GigabitEthernet0/0/1.100",
        "GigabitEthernet0/0/2",
        "GigabitEthernet0/0/3.200",
    ]
    assert rd.vrf == ["blue", "blue", "red"]
    assert rd.rd == ["65000:1", "65000:1", "65000:2"]
    assert rd.import_rts == [frozenset({"65000:1", "65000:99"})] * 2 + [frozenset({"65000:2"})]
    assert rd.export_rts == [frozenset({"65000:1"})] * 2 + [frozenset({"65000:2"})]
    assert rd.vrf_id.tolist() == [1, 1, 2]


def test_ios_show_vrf_brief_gives_the_same_interfaces_and_rds_without_targets() -> None:
    rd = read_cli_rd_table(
        DATA / "ios_show_vrf.txt",
        platform="cisco_ios",
        if_index={"GigabitEthernet0/0/1.100": 12, "Gi0/0/2": 3, "GigabitEthernet0/0/3.200": 13},
    )
    assert rd.if_index.tolist() == [12, 3, 13]
    assert rd.vrf == ["blue", "blue", "red"]
    assert rd.rd == ["65000:1", "65000:1", "65000:2"]
    assert rd.import_rts == [frozenset()] * 3


def test_xr_show_vrf_all_detail_gives_full_interface_names_rd_and_targets() -> None:
    rd = read_cli_rd_table(
        DATA / "xr_show_vrf_all_detail.txt", platform="cisco_xr", if_index=XR_IFINDEX
    )
    assert rd.if_index.tolist() == [31, 10, 21]
    assert rd.interface == [
        "GigabitEthernet0/0/0/1.105",
        "GigabitEthernet0/0/0/2",
        "Bundle-Ether10.200",
    ]
    assert rd.vrf == ["blue", "blue", "red"]
    assert rd.rd == ["65000:1", "65000:1", "65000:2"]
    assert rd.import_rts[0] == frozenset({"65000:1", "65000:99"})
    assert rd.export_rts[2] == frozenset({"65000:2"})


JUNOS_PATHS = [
    # Static, Direct and BGP from the CE: no protocol next hop, this PE's
    ("", "blue", "10.1.0.0/16", "0.0.0.0", 100, 0, 0, 1, 0),
    ("", "blue", "10.1.1.0/30", "0.0.0.0", 100, 0, 0, 1, 0),
    ("", "blue", "10.1.128.0/24", "0.0.0.0", 100, 0, 1, 1, 0),
    ("65000:2", "blue", "10.2.0.0/16", "192.0.2.2", 100, 0, 0, 1, 0),
    ("65000:4", "blue", "10.4.0.0/16", "192.0.2.4", 100, 0, 0, 1, 0),
    ("65000:3", "blue", "10.4.0.0/16", "192.0.2.3", 90, 0, 0, 0, 0),
    ("65000:3", "blue", "10.5.0.0/16", "192.0.2.3", 100, 0, 2, 1, 0),
    ("65000:4", "blue", "10.5.0.0/16", "192.0.2.4", 100, 0, 3, 0, 0),
    ("65000:2", "blue", "10.255.255.128/25", "192.0.2.2", 100, 0, 0, 1, 0),
    ("", "red", "172.16.0.0/12", "0.0.0.0", 100, 0, 0, 1, 0),
    ("65000:12", "red", "172.17.0.0/16", "192.0.2.2", 100, 20, 0, 1, 0),
]


def test_junos_show_route_table_detail_is_read_entry_by_entry_with_protocol_next_hops() -> None:
    t = read_cli_bgp_vpn(JUNOS_BGP, platform="juniper_junos")
    rows = _rows(t)
    assert rows == JUNOS_PATHS
    assert t.vrfs == ["blue", "red"]


def test_junos_show_route_instance_detail_gives_the_vrf_instances_only() -> None:
    rd = read_cli_rd_table(
        DATA / "junos_show_route_instance_detail.txt",
        platform="juniper_junos",
        if_index=JUNOS_IFINDEX,
    )
    # master and __juniper_private1__ (type forwarding) are left out
    assert rd.if_index.tolist() == [545, 546, 601]
    assert rd.interface == ["ge-0/0/1.100", "ge-0/0/2.0", "ae0.200"]
    assert rd.vrf == ["blue", "blue", "red"]
    assert rd.rd == ["65000:1", "65000:1", "192.0.2.1:2"]
    assert rd.import_rts[0] == frozenset({"65000:1", "65000:99"})
    assert rd.export_rts[2] == frozenset({"65000:2"})


def test_junos_bgp_l3vpn_0_rows_take_their_rd_from_the_destination() -> None:
    text = JUNOS_BGP.read_text().replace("blue.inet.0:", "bgp.l3vpn.0:")
    text = text.replace("\n10.2.0.0/16 (", "\n65000:2:10.2.0.0/16 (")
    rows = _rows(read_cli_bgp_vpn(text, platform="juniper_junos"))
    assert rows[3][:4] == ("65000:2", "", "10.2.0.0/16", "192.0.2.2")


def test_a_junos_capture_cut_inside_an_entry_names_the_entry_line() -> None:
    text = _cut(JUNOS_BGP, 222)
    assert text.splitlines()[-1].strip() == "Protocol next hop: 192.0.2.2"
    with pytest.raises(
        RoutingError, match=r"^j:216: BGP entry of 172\.17\.0\.0/16 without its AS path"
    ):
        read_cli_bgp_vpn(text, platform="juniper_junos", file="j")


def test_a_junos_table_other_than_a_vrf_or_bgp_l3vpn_is_refused() -> None:
    text = JUNOS_BGP.read_text().replace("red.inet.0:", "inet.0:")
    with pytest.raises(RoutingError, match=r"^j:204: table 'inet\.0' not read"):
        read_cli_bgp_vpn(text, platform="juniper_junos", file="j")


def _resolve(state: RoutingState, flows: list[tuple[str, int, str]]) -> Resolution:
    addrs = [ipaddress.ip_address(d) for _, _, d in flows]
    return resolve_egress(
        state,
        pe=[f[0] for f in flows],
        in_if=[f[1] for f in flows],
        ip_version=[a.version for a in addrs],
        dst_hi=[int(a) >> 64 for a in addrs],
        dst_lo=[int(a) & ((1 << 64) - 1) for a in addrs],
        start_ms=[1000] * len(flows),
    )


PES = [(f"pe{k}", f"192.0.2.{k}", "") for k in range(1, 5)]


@pytest.mark.parametrize(
    ("platform", "vrfs", "bgp", "if_index", "blue", "red"),
    [
        ("cisco_ios", "ios_show_vrf_detail.txt", IOS_BGP, IOS_IFINDEX, 12, 13),
        ("cisco_xr", "xr_show_vrf_all_detail.txt", XR_BGP, XR_IFINDEX, 31, 21),
        (
            "juniper_junos",
            "junos_show_route_instance_detail.txt",
            JUNOS_BGP,
            JUNOS_IFINDEX,
            545,
            601,
        ),
    ],
)
def test_a_pe_loaded_from_cli_captures_resolves_flows_to_their_egress_pe(
    platform: str, vrfs: str, bgp: Path, if_index: Path, blue: int, red: int
) -> None:
    rd = read_cli_rd_table(DATA / vrfs, platform=platform, if_index=if_index)  # type: ignore[arg-type]
    table = read_cli_bgp_vpn(bgp, platform=platform)  # type: ignore[arg-type]
    state = RoutingState(network(PES))
    state.add_pe(PeTables("pe1", 0, rd, connected_table(), bgp=table))
    flows = [
        ("pe1", blue, "10.2.3.4"),  # remote PE
        ("pe1", blue, "10.4.1.1"),  # "* i" via pe3 is not used: pe4
        ("pe1", blue, "10.5.1.1"),  # best (shorter AS path): pe3
        ("pe1", blue, "10.1.128.9"),  # CE route of this PE
        ("pe1", blue, "10.1.2.3"),  # locally originated
        ("pe1", blue, "10.255.255.200"),  # the wrapped line
        ("pe1", red, "172.17.1.1"),
        ("pe1", red, "10.2.3.4"),  # not in red
        ("pe1", 999, "10.2.3.4"),  # interface in no VRF
        ("pe1", blue, "10.3.1.1"),  # IOS: multipath pe3 + pe4; XR: pe4 only; Junos: none
    ]
    res = _resolve(state, flows)
    egress = list(zip(res.egress_pe_name().to_pylist(), res.reason_name().to_pylist(), strict=True))
    tail = {
        "cisco_ios": [("pe3", "bgp"), ("pe4", "bgp")],
        "cisco_xr": [("pe4", "bgp")],
        "juniper_junos": [("unresolved", "no_route")],  # not in the Junos capture
    }[platform]
    assert egress == [
        ("pe2", "bgp"),
        ("pe4", "bgp"),
        ("pe3", "bgp"),
        ("pe1", "bgp"),
        ("pe1", "bgp"),
        ("pe2", "bgp"),
        ("pe2", "bgp"),
        ("unresolved", "no_route"),
        ("unresolved", "no_vrf"),
        *tail,
    ]
    assert np.bincount(res.flow, weights=res.share).tolist() == [1.0] * len(flows)
    assert res.vrf_name().to_pylist()[:7] == ["blue"] * 6 + ["red"]


def _cut(path: Path, lines: int, extra: str = "") -> str:
    return "\n".join(path.read_text().splitlines()[:lines]) + "\n" + extra


def test_a_capture_cut_in_the_middle_of_a_path_line_names_that_line() -> None:
    text = _cut(IOS_BGP, 12, " *>i 10.2.0.0/16      192.0.2.")
    with pytest.raises(
        RoutingError, match=r"^ios\.txt:13: not show bgp vpnv4 unicast all output: '\*>i 10\.2"
    ):
        read_cli_bgp_vpn(text, platform="cisco_ios", file="ios.txt")


def test_a_capture_that_ends_after_a_wrapped_prefix_names_the_prefix_line() -> None:
    text = _cut(IOS_BGP, 20)
    assert text.splitlines()[-1].endswith("10.255.255.128/25")
    with pytest.raises(RoutingError, match=r"^<cisco_ios bgp>:20: the capture ends after a prefix"):
        read_cli_bgp_vpn(text, platform="cisco_ios")


def test_a_wrapped_prefix_followed_by_another_prefix_is_an_error() -> None:
    lines = IOS_BGP.read_text().splitlines()
    del lines[20]  # the wrapped path's own line
    with pytest.raises(RoutingError, match=r"^x:20: prefix without its path"):
        read_cli_bgp_vpn("\n".join(lines), platform="cisco_ios", file="x")


def test_a_path_before_any_route_distinguisher_line_is_an_error() -> None:
    lines = IOS_BGP.read_text().splitlines()
    del lines[9]  # Route Distinguisher: 65000:1 (default for vrf blue)
    with pytest.raises(
        RoutingError, match=r"^x:10: path 10\.1\.0\.0/16 before any Route Distinguisher"
    ):
        read_cli_bgp_vpn("\n".join(lines), platform="cisco_ios", file="x")


def test_a_prefix_with_host_bits_names_its_line() -> None:
    text = IOS_BGP.read_text().replace("10.2.0.0/16     ", "10.2.0.1/16     ")
    with pytest.raises(RoutingError, match=r"^x:13: prefix '10\.2\.0\.1/16': host bits set"):
        read_cli_bgp_vpn(text, platform="cisco_ios", file="x")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Interface              IP-Address      OK? Method Status                Protocol\n",
        "% Invalid input detected at '^' marker.\n",
    ],
)
def test_text_that_holds_no_bgp_table_says_which_command_was_expected(text: str) -> None:
    with pytest.raises(
        RoutingError, match=r"^x:1: no BGP path found \(is this show bgp vpnv4 unicast output\?\)"
    ):
        read_cli_bgp_vpn(text, platform="cisco_xr", file="x")


def test_a_vrf_interface_without_an_ifindex_names_the_interface_line() -> None:
    with pytest.raises(RoutingError, match=r"^v:5: interface Gi0/0/2 \(VRF blue\) has no ifIndex"):
        read_cli_rd_table(
            (DATA / "ios_show_vrf_detail.txt").read_text(),
            platform="cisco_ios",
            if_index={"GigabitEthernet0/0/1.100": 12, "GigabitEthernet0/0/3.200": 13},
            file="v",
        )


def test_an_interface_in_two_vrfs_is_an_error() -> None:
    text = (DATA / "ios_show_vrf.txt").read_text().replace("Gi0/0/3.200", "Gi0/0/2")
    with pytest.raises(RoutingError, match=r"interface Gi0/0/2 in VRF red and VRF blue"):
        read_cli_rd_table(text, platform="cisco_ios", if_index=IOS_IFINDEX)


def test_a_vrf_listing_of_the_wrong_command_is_rejected_with_its_line() -> None:
    with pytest.raises(RoutingError, match=r"^v:1: not show vrf detail / show vrf output"):
        read_cli_rd_table(IOS_BGP.read_text(), platform="cisco_ios", if_index={}, file="v")
    with pytest.raises(
        RoutingError, match=r"^i:2: not show snmp interface output: 'GigabitEthernet"
    ):
        read_cli_if_index(
            "ifName : Null0  ifIndex : 3\nGigabitEthernet0/0/0/1: Ifindex = 4\n",
            platform="cisco_xr",
            file="i",
        )


def test_an_unknown_platform_is_refused() -> None:
    with pytest.raises(RoutingError, match="platform 'arista_eos' not read"):
        read_cli_bgp_vpn(IOS_BGP, platform="arista_eos")  # type: ignore[arg-type]
