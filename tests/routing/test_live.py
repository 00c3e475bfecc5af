"""Live routing from BMP: RIB logs, bulk withdrawal, time-versioned snapshots, snapshot files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flowmatrix.routing import PeTables, RoutingState, resolve_egress
from flowmatrix.routing.live import LiveConfig, LiveRouting, read_snapshot, write_snapshot
from flowmatrix.routing.mrt import read_mrt, write_mrt
from flowmatrix.routing.testing import (
    bgp_table,
    bgp_update,
    blue_red_state,
    bmp_initiation,
    bmp_peer_down,
    bmp_peer_up,
    bmp_route_monitoring,
    connected_table,
    network,
    nlri,
    rd_table,
)

PES = [
    ("pe1", "192.0.2.1", "2001:db8::1"),
    ("pe2", "192.0.2.2", "2001:db8::2"),
    ("pe3", "192.0.2.3", "2001:db8::3"),
]
PE2 = {"peer": "192.0.2.2", "bgp_id": "192.0.2.2", "post_policy": True}
PE3 = {"peer": "192.0.2.3", "bgp_id": "192.0.2.3", "post_policy": True}


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _live(clock: Clock, **kw: object) -> tuple[LiveRouting, list[RoutingState]]:
    published: list[RoutingState] = []
    live = LiveRouting(
        LiveConfig(**kw),  # type: ignore[arg-type]
        network(PES),
        base=blue_red_state(PES),
        on_state=published.append,
        clock=clock,
    )
    return live, published


def _announce(prefixes: list[str], rd: str, rt: str, nh: str, **attrs: object) -> bytes:
    return bgp_update(
        announce=[nlri(p, rd=rd) for p in prefixes],
        rts=[rt],
        next_hop=nh,
        **attrs,  # type: ignore[arg-type]
    )


def _egress(state: RoutingState, flows: list[tuple[int, int]], at_ms: int) -> list[str]:
    res = resolve_egress(
        state,
        pe=["pe1"] * len(flows),
        in_if=[f[0] for f in flows],
        ip_version=[4] * len(flows),
        dst_hi=[0] * len(flows),
        dst_lo=[f[1] for f in flows],
        start_ms=[at_ms] * len(flows),
    )
    return res.egress_pe_name().to_pylist()  # type: ignore[no-any-return]


FLOWS = [(101, 0x0A020001), (101, 0x0A030001), (102, 0x0A020001), (101, 0xAC100001)]


def _rr_stream() -> bytes:
    """A reflector's BMP: Adj-RIB-In from pe2 and pe3 (blue, red, a multihomed site)."""
    return b"".join(
        [
            bmp_initiation(sys_name="rr1"),
            bmp_peer_up(**PE2),
            bmp_peer_up(**PE3),
            bmp_route_monitoring(
                _announce(["10.2.0.0/16"], "65000:12", "65000:1", "192.0.2.2"), **PE2
            ),
            bmp_route_monitoring(
                _announce(["10.3.0.0/16"], "65000:13", "65000:1", "192.0.2.3"), **PE3
            ),
            bmp_route_monitoring(
                _announce(["10.2.0.0/16"], "65000:93", "65000:9", "192.0.2.3"), **PE3
            ),
            bmp_route_monitoring(
                _announce(["172.16.0.0/24"], "65000:12", "65000:1", "192.0.2.2", local_pref=100),
                **PE2,
            ),
            bmp_route_monitoring(
                _announce(["172.16.0.0/24"], "65000:13", "65000:1", "192.0.2.3", local_pref=200),
                **PE3,
            ),
        ]
    )


def test_bmp_routes_become_a_route_reflector_version_that_resolves_flows() -> None:
    clock = Clock()
    live, published = _live(clock)
    rr = live.connect("198.51.100.1")
    assert live.feed(rr, _rr_stream()) == 5
    assert rr.name == "rr1"
    assert len(rr.peers_up) == 2
    version = live.snapshot()
    assert version is not None
    assert len(version.vpn) == 5
    assert len(version.global_bgp) == 0
    assert version.taken_at_ms == 1_000_000
    assert published
    assert published[-1] is live.state
    assert _egress(live.state, FLOWS, 1_000_000) == ["pe2", "pe3", "pe3", "pe3"]
    # before the first live version there is no route reflector table at all
    assert _egress(live.state, FLOWS, 999_999) == ["unresolved"] * 4
    # originators come from the peer the route was learned from
    assert sorted(version.vpn.originators) == ["pe2", "pe3"]
    assert set(version.vpn.rds) == {"65000:12", "65000:13", "65000:93"}


def test_withdrawal_and_peer_down_give_new_versions_in_force_from_their_change() -> None:
    clock = Clock()
    live, _ = _live(clock)
    rr = live.connect("198.51.100.1")
    live.feed(rr, _rr_stream())
    first = live.snapshot()
    assert first is not None
    clock.t = 1010.0
    live.feed(
        rr,
        bmp_route_monitoring(
            bgp_update(withdraw=[nlri("172.16.0.0/24", rd="65000:13", label=None)]), **PE3
        ),
    )
    clock.t = 1012.0  # snapshot later than the change: in force from the change
    second = live.snapshot()
    assert second is not None
    assert second.taken_at_ms == 1_010_000
    assert _egress(live.state, FLOWS, 1_009_999)[3] == "pe3"
    assert _egress(live.state, FLOWS, 1_010_000)[3] == "pe2"  # the backup path now
    clock.t = 1020.0
    live.feed(rr, bmp_peer_down(**PE2))
    assert len(rr.peers_up) == 1
    third = live.snapshot()
    assert third is not None
    assert len(third.vpn) == 2
    assert _egress(live.state, FLOWS, 1_020_000) == ["unresolved", "pe3", "pe3", "unresolved"]
    assert _egress(live.state, FLOWS, 1_015_000) == ["pe2", "pe3", "pe3", "pe2"]
    clock.t = 1030.0
    live.disconnect(rr)
    fourth = live.snapshot()
    assert fourth is not None
    assert len(fourth.vpn) == 0
    assert _egress(live.state, FLOWS, 1_030_000) == ["unresolved"] * 4


def test_loc_rib_local_next_hop_becomes_the_mapped_pes_loopback() -> None:
    clock = Clock()
    live, _ = _live(clock)
    pe2 = live.connect("127.0.0.1")
    loc = {"peer": "0.0.0.0", "peer_type": 3, "bgp_id": "192.0.2.2"}
    live.feed(
        pe2,
        bmp_initiation(sys_name="GoBGP")
        + bmp_route_monitoring(_announce(["10.2.0.0/16"], "65000:12", "65000:1", "0.0.0.0"), **loc),
    )
    assert pe2.pe == "pe2"  # by the Loc-RIB BGP identifier = pe2's loopback
    live.snapshot()
    assert _egress(live.state, FLOWS[:1], 1_000_000) == ["pe2"]


def test_router_mapping_by_configuration_wins() -> None:
    clock = Clock()
    live, _ = _live(clock, routers={"edge-a": "pe3"})
    r = live.connect("203.0.113.9")
    live.feed(r, bmp_initiation(sys_name="edge-a"))
    assert r.pe == "pe3"


def test_same_path_in_loc_rib_and_adj_rib_in_is_kept_once_pre_policy_dropped_for_post() -> None:
    clock = Clock()
    live, _ = _live(clock)
    r = live.connect("198.51.100.1")
    u = _announce(["10.2.0.0/16"], "65000:12", "65000:1", "192.0.2.2")
    live.feed(
        r,
        bmp_route_monitoring(u, peer="0.0.0.0", peer_type=3, bgp_id="198.51.100.1")
        + bmp_route_monitoring(u, peer="192.0.2.2")  # pre-policy
        + bmp_route_monitoring(u, **PE2)  # post-policy
        + bmp_route_monitoring(u, peer="192.0.2.2", adj_rib_out=True),
    )
    version = live.snapshot()
    assert version is not None
    assert len(version.vpn) == 1


def test_announcement_replaced_by_a_later_one_for_the_same_rd_prefix() -> None:
    clock = Clock()
    live, _ = _live(clock)
    r = live.connect("198.51.100.1")
    live.feed(
        r,
        bmp_route_monitoring(_announce(["10.2.0.0/16"], "65000:12", "65000:1", "192.0.2.2"), **PE2),
    )
    live.feed(
        r,
        bmp_route_monitoring(_announce(["10.2.0.0/16"], "65000:12", "65000:1", "192.0.2.3"), **PE2),
    )
    version = live.snapshot()
    assert version is not None
    assert len(version.vpn) == 1
    assert int(version.vpn.nh_lo[0]) == 0xC0000203


def test_versions_are_pruned_by_count_and_age() -> None:
    clock = Clock()
    live, _ = _live(clock, max_versions=3, keep=25.0)
    r = live.connect("198.51.100.1")
    for k in range(6):
        clock.t = 1000.0 + 10 * k
        live.feed(
            r,
            bmp_route_monitoring(
                _announce([f"10.{k}.0.0/16"], "65000:12", "65000:1", "192.0.2.2"), **PE2
            ),
        )
        live.snapshot()
    times = [v.taken_at_ms for v in live.state.rr_versions]
    assert len(times) <= 3
    assert times[-1] == 1_050_000
    assert all(t >= 1_050_000 - 25_000 - 10_000 for t in times)


def test_snapshot_files_round_trip_native_and_mrt(tmp_path: Path) -> None:
    vpn = bgp_table(
        [
            {
                "rd": "65000:12",
                "prefix": "10.2.0.0/16",
                "next_hop": "192.0.2.2",
                "rts": "65000:1 65000:7",
                "local_pref": 200,
                "med": 5,
                "as_path_len": 2,
                "originator": "pe2",
            },
            {
                "rd": "192.0.2.3:4",
                "prefix": "10.3.0.0/17",
                "next_hop": "192.0.2.3",
                "rts": "65000:1",
            },
            {
                "rd": "65000:12",
                "prefix": "fd0a:2::/48",
                "next_hop": "::ffff:192.0.2.2",
                "rts": "65000:1",
            },
            {"rd": "65000:12", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.3", "rts": "65000:1"},
        ]
    )
    glob = bgp_table(
        [
            {"prefix": "198.51.100.0/24", "next_hop": "192.0.2.3"},
            {"prefix": "2001:db8:5::/48", "next_hop": "2001:db8::3"},
        ]
    )
    from flowmatrix.routing import RrTables

    write_snapshot(tmp_path, RrTables(1_700_000_000_000, vpn, glob))
    back = read_snapshot(tmp_path, network(PES))
    assert back.taken_at_ms == 1_700_000_000_000

    def rows(t):  # type: ignore[no-untyped-def]
        return sorted(
            (
                t.rds[r] if r >= 0 else "",
                int(f),
                int(h),
                int(lo),
                int(n),
                int(nf),
                int(nh),
                int(nl),
                tuple(sorted(t.rt_sets[c])) if c >= 0 else (),
                int(lp),
                int(m),
                int(a),
            )
            for r, f, h, lo, n, nf, nh, nl, c, lp, m, a in zip(
                t.rd,
                t.family,
                t.hi,
                t.lo,
                t.length,
                t.nh_family,
                t.nh_hi,
                t.nh_lo,
                t.rts,
                t.local_pref,
                t.med,
                t.as_path_len,
                strict=True,
            )
        )

    assert rows(back.vpn) == rows(vpn)
    assert rows(back.global_bgp) == rows(glob)
    assert back.vpn.originators == ["pe2"]
    mrt_vpn, mrt_glob = read_mrt(tmp_path / "table.mrt")
    assert rows(mrt_vpn) == rows(vpn)
    assert rows(mrt_glob) == rows(glob)


def test_write_mrt_counts_one_record_per_rd_and_prefix(tmp_path: Path) -> None:
    vpn = bgp_table(
        [
            {"rd": "65000:1", "prefix": "10.1.0.0/16", "next_hop": "192.0.2.1"},
            {"rd": "65000:1", "prefix": "10.1.0.0/16", "next_hop": "192.0.2.2"},
            {"rd": "65000:2", "prefix": "10.1.0.0/16", "next_hop": "192.0.2.2"},
        ]
    )
    assert write_mrt(tmp_path / "t.mrt", vpn, bgp_table([])) == 2
    assert len(read_mrt(tmp_path / "t.mrt")[0]) == 3


def test_restart_reloads_the_snapshot_and_resolves_before_any_session(tmp_path: Path) -> None:
    clock = Clock()
    live, _ = _live(clock, snapshot_dir=tmp_path)
    r = live.connect("198.51.100.1")
    live.feed(r, _rr_stream())
    live.start()
    live.stop()  # writes the last snapshot
    assert (tmp_path / "manifest.json").is_file()
    assert (tmp_path / "table.mrt").is_file()
    again, published = _live(Clock(2000.0), snapshot_dir=tmp_path)
    again.start()
    try:
        assert published
        assert len(again.state.rr_versions) == 1
        assert _egress(again.state, FLOWS, 1_500_000) == ["pe2", "pe3", "pe3", "pe3"]
    finally:
        again.stop()


def test_snapshot_thread_coalesces_changes(tmp_path: Path) -> None:
    import time

    live, published = _live(Clock(0.0), interval=0.05)
    live.clock = time.time
    r = live.connect("198.51.100.1")
    live.start()
    try:
        for k in range(5):
            live.feed(
                r,
                bmp_route_monitoring(
                    _announce([f"10.{k}.0.0/16"], "65000:12", "65000:1", "192.0.2.2"), **PE2
                ),
            )
        deadline = time.monotonic() + 5
        while not published and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        live.stop()
    assert published
    assert len(live.state.rr_versions[-1].vpn) == 5
    assert len(live.state.rr_versions) <= 2
    assert np.all(np.diff([v.taken_at_ms for v in live.state.rr_versions]) > 0)


def test_per_vrf_loc_rib_unicast_routes_become_the_vrfs_vpn_routes_with_its_targets() -> None:
    clock = Clock()
    live, _ = _live(clock)
    # pe2's RD table: blue under RD 65000:12, exporting 65000:1
    live.state.add_pe(
        PeTables(
            "pe2",
            0,
            rd_table([(201, "blue", "65000:12", "65000:1", "65000:1")]),
            connected_table(),
        )
    )
    live.rebase(live.state, live.network)
    pe2 = live.connect("127.0.0.1")
    vrf_loc = {
        "peer": "0.0.0.0",
        "peer_type": 3,
        "bgp_id": "192.0.2.2",
        "distinguisher": "65000:12",
    }
    unicast = bgp_update(
        afi=1,
        safi=1,
        announce=[nlri("10.2.0.0/16"), nlri("10.3.0.0/16")],
        next_hop="198.51.100.7",  # a CE of pe2's blue VRF
    )
    imported = bgp_update(afi=1, safi=1, announce=[nlri("10.4.0.0/16")], next_hop="192.0.2.3")
    live.feed(
        pe2,
        bmp_route_monitoring(unicast, **vrf_loc) + bmp_route_monitoring(imported, **vrf_loc),
    )
    version = live.snapshot()
    assert len(version.global_bgp) == 0
    assert sorted(version.vpn.rds) == ["65000:12"]
    assert {frozenset(version.vpn.rt_sets[c]) for c in version.vpn.rts} == {frozenset({"65000:1"})}
    flows = [(101, 0x0A020001), (101, 0x0A030001), (101, 0x0A040001)]
    # the CE's routes leave at pe2; the route pe2 imported from pe3 still leaves at pe3
    assert _egress(live.state, flows, 1_000_000) == ["pe2", "pe2", "pe3"]


def test_attribute_rows_no_route_uses_are_collected_and_routes_keep_theirs() -> None:
    clock = Clock()
    live, _ = _live(clock)
    r = live.connect("198.51.100.1")
    r.attrs_limit = 8
    # the same prefix re-announced with a new MED each time: one new attribute row each
    for med in range(20):
        live.feed(
            r,
            bmp_route_monitoring(
                _announce(["10.2.0.0/16"], "65000:12", "65000:1", "192.0.2.2", med=med), **PE2
            ),
        )
        if med % 5 == 4:
            live.snapshot()  # compaction drops the replaced announcements
    assert len(r.attrs) < 20
    version = live.snapshot()
    assert len(version.vpn) == 1
    assert int(version.vpn.med[0]) == 19
    assert _egress(live.state, FLOWS[:1], 1_000_000) == ["pe2"]
