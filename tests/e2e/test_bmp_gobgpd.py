"""Two real gobgpd speakers (a PE with VRFs and a route reflector) report over BMP to our listener.

The live view follows each step — initial tables, a route injected, a route
withdrawn, the reflector's session to the PE torn down, the PE stopped — and
egress resolution of a fixed set of flows changes exactly as expected, from
the time of each change on.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowmatrix.routing import RoutingState, resolve_egress
from flowmatrix.routing.bmp_server import BmpServer, BmpServerConfig
from flowmatrix.routing.live import LiveConfig, LiveRouting
from flowmatrix.routing.mrt import read_mrt
from flowmatrix.routing.testing import Gobgpd, blue_red_state, free_tcp_port, network

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("gobgpd") is None or shutil.which("gobgp") is None,
        reason="Debian gobgpd/gobgp not installed",
    ),
]

#: pe1 is the ingress PE of the flows (its RD table from native files); pe2 is the gobgpd PE
#: (router id and session address 127.0.0.2); pe3 is a PE known only through the reflector
PES = [
    ("pe1", "192.0.2.1", ""),
    ("pe2", "127.0.0.2", ""),
    ("pe3", "192.0.2.3", ""),
]
#: (ingress ifIndex, destination): blue 10.2.0.1, blue 10.3.0.1, red 10.2.0.1,
#: blue multihomed 172.16.0.1, blue 10.2.128.1
FLOWS = [
    (101, 0x0A020001),
    (101, 0x0A030001),
    (102, 0x0A020001),
    (101, 0xAC100001),
    (101, 0x0A028001),
]


def _wait(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Speaker(Gobgpd):
    """A gobgpd on loopback peering with one neighbor and reporting over BMP."""

    def __init__(
        self,
        workdir: Path,
        *,
        router_id: str,
        port: int,
        neighbor: str,
        neighbor_port: int,
        bmp: int,
        rr_client: bool,
    ) -> None:
        rr = (
            "  [neighbors.route-reflector.config]\n"
            "    route-reflector-client = true\n"
            f'    route-reflector-cluster-id = "{router_id}"\n'
            if rr_client
            else ""
        )
        super().__init__(
            workdir,
            "[global.config]\n"
            "  as = 65000\n"
            f'  router-id = "{router_id}"\n'
            f"  port = {port}\n"
            f'  local-address-list = ["{router_id}"]\n'
            "[[neighbors]]\n"
            "  [neighbors.config]\n"
            f'    neighbor-address = "{neighbor}"\n'
            "    peer-as = 65000\n"
            "  [neighbors.transport.config]\n"
            f'    local-address = "{router_id}"\n'
            f"    remote-port = {neighbor_port}\n"
            f"{rr}"
            "  [[neighbors.afi-safis]]\n"
            "    [neighbors.afi-safis.config]\n"
            '      afi-safi-name = "l3vpn-ipv4-unicast"\n'
            "[[bmp-servers]]\n"
            "  [bmp-servers.config]\n"
            '    address = "127.0.0.1"\n'
            f"    port = {bmp}\n"
            '    route-monitoring-policy = "all"\n',
        )


def _egress(state: RoutingState, at_ms: int) -> list[str]:
    res = resolve_egress(
        state,
        pe=["pe1"] * len(FLOWS),
        in_if=[f[0] for f in FLOWS],
        ip_version=[4] * len(FLOWS),
        dst_hi=[0] * len(FLOWS),
        dst_lo=[f[1] for f in FLOWS],
        start_ms=[at_ms] * len(FLOWS),
    )
    return res.egress_pe_name().to_pylist()  # type: ignore[no-any-return]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[LiveRouting, BmpServer, Speaker, Speaker]]:
    published: list[int] = []
    live = LiveRouting(
        LiveConfig(interval=0.3, max_versions=64, keep=3600, snapshot_dir=tmp_path / "snapshot"),
        network(PES),
        base=blue_red_state(PES),
        on_state=lambda s: published.append(s.generation),
    )
    server = BmpServer(BmpServerConfig(host="127.0.0.1", port=0), live)
    live.start()
    server.start()
    rr_port, pe_port = free_tcp_port(), free_tcp_port()
    speakers: list[Speaker] = []
    try:
        (tmp_path / "rr").mkdir()
        (tmp_path / "pe").mkdir()
        rr = Speaker(
            tmp_path / "rr",
            router_id="127.0.0.1",
            port=rr_port,
            neighbor="127.0.0.2",
            neighbor_port=pe_port,
            bmp=server.address[1],
            rr_client=True,
        )
        speakers.append(rr)
        pe = Speaker(
            tmp_path / "pe",
            router_id="127.0.0.2",
            port=pe_port,
            neighbor="127.0.0.1",
            neighbor_port=rr_port,
            bmp=server.address[1],
            rr_client=False,
        )
        speakers.append(pe)
        yield live, server, rr, pe
    finally:
        for s in reversed(speakers):
            s.stop()
        server.stop()
        live.stop()


def _step(
    live: LiveRouting,
    before_ms: int,
    previous: list[str] | None,
    expected: list[str],
    what: str,
) -> int:
    """Wait for the first version resolving as ``expected``; check when it took force.

    ``previous`` is what the flows resolve to just before (None: intermediate
    versions are allowed, as while the initial tables arrive route by route).
    """

    def version() -> int | None:
        with live.lock:
            times = [v.taken_at_ms for v in live.state.rr_versions]
            for t in times:
                if t >= before_ms and _egress(live.state, t) == expected:
                    return t
        return None

    _wait(lambda: version() is not None, what)
    observed = int(time.time() * 1000)
    t = version()
    assert t is not None
    assert before_ms <= t <= observed, what
    with live.lock:
        if previous is not None:
            assert _egress(live.state, t - 1) == previous, what
        assert _egress(live.state, t) == expected, what
    return t


def test_live_bmp_view_follows_gobgpd_and_resolution_changes_at_each_step(
    lab: tuple[LiveRouting, BmpServer, Speaker, Speaker], tmp_path: Path
) -> None:
    live, _, rr, pe = lab
    start = int(time.time() * 1000)
    # the PE: two VRFs with their own RDs and route targets; red reuses blue's prefix
    pe.run("vrf", "add", "blue", "rd", "65000:12", "rt", "import", "65000:1", "export", "65000:1")
    pe.run("vrf", "add", "red", "rd", "65000:92", "rt", "import", "65000:9", "export", "65000:9")
    pe.run("vrf", "blue", "rib", "add", "10.2.0.0/16")
    pe.run("vrf", "red", "rib", "add", "10.2.0.0/16")
    # the multihomed blue site: backup through pe2 (LOCAL_PREF 100), primary through pe3 (200)
    pe.run("vrf", "blue", "rib", "add", "172.16.0.0/24", "local-pref", "100")
    for prefix, extra in (("10.3.0.0/16", []), ("172.16.0.0/24", ["local-pref", "200"])):
        rr.run(
            "global", "rib", "-a", "vpnv4", "add", prefix, "label", "100", "rd", "65000:13",
            "rt", "65000:1", "nexthop", "192.0.2.3", *extra,
        )  # fmt: skip
    _wait(
        lambda: "Establ" in rr.run("neighbor"), "the BGP session between the speakers", timeout=40
    )
    initial = ["pe2", "pe3", "pe2", "pe3", "pe2"]
    _step(live, start, None, initial, "the initial tables")
    with live.lock:
        assert _egress(live.state, start - 1) == ["unresolved"] * 5
    # gobgpd's sysName is "GoBGP" for both: the PE is found by its BGP identifier
    assert [r["router"] for r in live.summary()] == ["GoBGP", "GoBGP"]
    assert sorted(str(r["pe"]) for r in live.summary()) == ["", "pe2"]  # rr maps to no PE

    # 1. a more specific route injected at the reflector
    before = int(time.time() * 1000)
    rr.run(
        "global", "rib", "-a", "vpnv4", "add", "10.2.128.0/17", "label", "100", "rd",
        "65000:13", "rt", "65000:1", "nexthop", "192.0.2.3",
    )  # fmt: skip
    injected = ["pe2", "pe3", "pe2", "pe3", "pe3"]
    _step(live, before, initial, injected, "the injected /17")

    # 2. the primary path of the multihomed site withdrawn: the backup through pe2 takes over
    before = int(time.time() * 1000)
    rr.run("global", "rib", "-a", "vpnv4", "del", "172.16.0.0/24", "label", "100", "rd", "65000:13")
    withdrawn = ["pe2", "pe3", "pe2", "pe2", "pe3"]
    _step(live, before, injected, withdrawn, "the withdrawn primary path")

    # 3. the reflector's session to the PE torn down: Peer Down withdraws what the reflector
    # had from pe2, but pe2's own Loc-RIB still holds its routes, so resolution is unchanged
    rr_router = next(r for r in live.routers if r.pe is None)
    rr.run("neighbor", "127.0.0.2", "disable")
    _wait(lambda: not rr_router.peers_up, "the Peer Down on the reflector's BMP session")
    snap = live.snapshot()
    assert snap is not None
    with live.lock:
        assert _egress(live.state, snap.taken_at_ms) == withdrawn
    assert all(k.peer[0] == 3 for k in rr_router.ribs)  # only its Loc-RIB is left

    # 4. the PE stops: its BMP session ends and everything it reported is withdrawn
    before = int(time.time() * 1000)
    pe.stop()
    gone = ["unresolved", "pe3", "unresolved", "unresolved", "pe3"]
    _step(live, before, withdrawn, gone, "the PE's session loss")

    # the snapshot written at the end reads back as the live view (native and MRT)
    live.stop()
    vpn, _ = read_mrt(tmp_path / "snapshot" / "table.mrt")
    assert len(vpn) == 2  # 10.3.0.0/16 and 10.2.128.0/17 behind pe3
    assert sorted(vpn.rds) == ["65000:13"]
