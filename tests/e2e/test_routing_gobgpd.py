"""A real gobgpd learns VPNv4/VPNv6 routes; its RIB dump resolves flows to egress PEs."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowmatrix.routing import PeTables, RoutingState, RrTables, resolve_egress
from flowmatrix.routing.gobgp import read_gobgp_json
from flowmatrix.routing.mrt import read_mrt
from flowmatrix.routing.testing import (
    Gobgpd,
    bgp_table,
    connected_table,
    free_tcp_port,
    network,
    rd_table,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("gobgpd") is None or shutil.which("gobgp") is None,
        reason="Debian gobgpd/gobgp not installed",
    ),
]

PES = [
    ("pe1", "192.0.2.1", "2001:db8:ffff::1"),
    ("pe2", "192.0.2.2", "2001:db8:ffff::2"),
    ("pe3", "192.0.2.3", "2001:db8:ffff::3"),
]


class Speaker(Gobgpd):
    """A gobgpd with a table dump; routes are added through the gobgp CLI."""

    def __init__(self, workdir: Path) -> None:
        #: gobgpd writes its first table dump one dump interval (>= 60 s) after start
        self.mrt = workdir / "table.mrt"
        super().__init__(
            workdir,
            "[global.config]\n"
            "  as = 65000\n"
            '  router-id = "192.0.2.254"\n'
            f"  port = {free_tcp_port()}\n"
            '  local-address-list = ["127.0.0.1"]\n'
            "\n[[mrt-dump]]\n"
            "  [mrt-dump.config]\n"
            '    dump-type = "table"\n'
            f'    file-name = "{self.mrt}"\n'
            "    dump-interval = 60\n",
        )


@pytest.fixture(scope="module")
def speaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Speaker]:
    s = Speaker(tmp_path_factory.mktemp("gobgpd"))
    try:
        routes = [
            # blue (RT 65000:1), per-PE RDs
            ("vpnv4", "10.2.0.0/16", "65000:12", "65000:1", "192.0.2.2", []),
            ("vpnv4", "10.3.0.0/16", "65000:13", "65000:1", "192.0.2.3", []),
            ("vpnv4", "10.3.128.0/17", "65000:12", "65000:1", "192.0.2.2", []),
            # red reuses 10.2/16 (RT 65000:9)
            ("vpnv4", "10.2.0.0/16", "65000:93", "65000:9", "192.0.2.3", []),
            # a multihomed blue site: primary via pe3 (LOCAL_PREF 200), backup via pe2
            ("vpnv4", "172.16.0.0/24", "65000:12", "65000:1", "192.0.2.2", ["local-pref", "100"]),
            ("vpnv4", "172.16.0.0/24", "65000:13", "65000:1", "192.0.2.3", ["local-pref", "200"]),
            # 6VPE: IPv4-mapped next hop
            ("vpnv6", "fd0a:2::/48", "65000:12", "65000:1", "::ffff:192.0.2.2", []),
        ]
        for family, prefix, rd, rt, nh, extra in routes:
            s.run(
                "global",
                "rib",
                "-a",
                family,
                "add",
                prefix,
                "label",
                "100",
                "rd",
                rd,
                "rt",
                rt,
                "nexthop",
                nh,
                *extra,
            )
        yield s
    finally:
        s.stop()


def _state(vpn_json: str) -> RoutingState:
    state = RoutingState(network(PES))
    state.add_rr(RrTables(0, read_gobgp_json(vpn_json, file="gobgp-vpn"), bgp_table([])))
    rd = rd_table(
        [
            (101, "blue", "65000:11", "65000:1", "65000:1"),
            (102, "red", "65000:91", "65000:9", "65000:9"),
        ]
    )
    state.add_pe(PeTables("pe1", 0, rd, connected_table([("blue", "10.1.1.0/28", False)])))
    return state


def test_gobgpd_vpn_rib_resolves_flows_through_route_targets_lpm_and_path_decision(
    speaker: Speaker,
) -> None:
    v4 = json.loads(speaker.run("global", "rib", "-a", "vpnv4", "-j"))
    v6 = json.loads(speaker.run("global", "rib", "-a", "vpnv6", "-j"))
    assert len(v4) == 6  # RD:prefix keys; the multihomed site is under two RDs
    state = _state(json.dumps({**v4, **v6}))
    flows = [
        (101, 4, 0, 0x0A020001),  # blue 10.2.0.1 → pe2
        (101, 4, 0, 0x0A030001),  # blue 10.3.0.1 → pe3
        (101, 4, 0, 0x0A038001),  # blue 10.3.128.1 → the /17 → pe2
        (102, 4, 0, 0x0A020001),  # red 10.2.0.1 → pe3
        (101, 4, 0, 0xAC100001),  # blue multihomed → primary pe3
        (101, 6, 0xFD0A000200000000, 1),  # blue fd0a:2::1 → pe2 (6VPE)
        (101, 4, 0, 0x0A010105),  # blue static 10.1.1.0/28 → pe1 itself
        (102, 4, 0, 0x0A030001),  # red has no 10.3/16 → unresolved
    ]
    res = resolve_egress(
        state,
        pe=["pe1"] * len(flows),
        in_if=[f[0] for f in flows],
        ip_version=[f[1] for f in flows],
        dst_hi=[f[2] for f in flows],
        dst_lo=[f[3] for f in flows],
        start_ms=[1] * len(flows),
    )
    assert res.egress_pe_name().to_pylist() == [
        "pe2",
        "pe3",
        "pe2",
        "pe3",
        "pe3",
        "pe2",
        "pe1",
        "unresolved",
    ]
    assert res.reason_name().to_pylist()[-2:] == ["local", "no_route"]


def test_gobgpd_vrf_view_resolves_as_the_pes_own_table(speaker: Speaker) -> None:
    speaker.run(
        "vrf", "add", "blue", "rd", "65000:11", "rt", "import", "65000:1", "export", "65000:1"
    )
    try:
        view = speaker.run("vrf", "blue", "rib", "-j")
    finally:
        speaker.run("vrf", "del", "blue")
    own = read_gobgp_json(view, file="gobgp-vrf-blue", vrf="blue")
    assert (own.best == -1).all()  # gobgpd marks nothing best in a VRF view
    state = RoutingState(network(PES))
    rd = rd_table([(101, "blue", "65000:11", "65000:1", "65000:1")])
    state.add_pe(PeTables("pe1", 0, rd, connected_table(), bgp=own))
    res = resolve_egress(
        state,
        pe=["pe1"] * 3,
        in_if=[101] * 3,
        ip_version=[4, 4, 4],
        dst_hi=[0, 0, 0],
        dst_lo=[0x0A020001, 0xAC100001, 0x0A038001],
        start_ms=[1, 1, 1],
    )
    # the resolver's own path decision picks LOCAL_PREF 200 for the multihomed site
    assert res.egress_pe_name().to_pylist() == ["pe2", "pe3", "pe2"]


@pytest.mark.slow
def test_gobgpd_mrt_table_dump_resolves_like_its_json_rib(speaker: Speaker) -> None:
    deadline = time.monotonic() + 90
    while not (speaker.mrt.exists() and speaker.mrt.stat().st_size > 0):
        if time.monotonic() > deadline:
            pytest.fail("gobgpd wrote no MRT table dump within 90 s")
        time.sleep(0.5)
    time.sleep(0.5)  # let the dump finish
    vpn, _ = read_mrt(speaker.mrt)
    assert len(vpn) == 7
    state = RoutingState(network(PES))
    state.add_rr(RrTables(0, vpn, bgp_table([])))
    rd = rd_table([(101, "blue", "65000:11", "65000:1", "65000:1")])
    state.add_pe(PeTables("pe1", 0, rd, connected_table()))
    res = resolve_egress(
        state,
        pe=["pe1"] * 4,
        in_if=[101] * 4,
        ip_version=[4, 4, 4, 6],
        dst_hi=[0, 0, 0, 0xFD0A_0002_0000_0000],
        dst_lo=[0x0A020001, 0x0A038001, 0xAC100001, 1],
        start_ms=[1] * 4,
    )
    # MRT has no best marks: LOCAL_PREF 200 wins for the multihomed site
    assert res.egress_pe_name().to_pylist() == ["pe2", "pe2", "pe3", "pe2"]
