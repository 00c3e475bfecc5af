"""The BMP listener over real TCP: sessions feed live routing; loss and garbage drop them."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from flowmatrix.routing.bmp_server import BmpServer, BmpServerConfig
from flowmatrix.routing.live import LiveConfig, LiveRouting
from flowmatrix.routing.testing import (
    bgp_update,
    bmp_initiation,
    bmp_peer_up,
    bmp_route_monitoring,
    network,
    nlri,
)

PES = [("pe1", "192.0.2.1", ""), ("pe2", "192.0.2.2", "")]
PE2 = {"peer": "192.0.2.2", "bgp_id": "192.0.2.2", "post_policy": True}


def _wait(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[tuple[BmpServer, LiveRouting]]:
    live = LiveRouting(LiveConfig(interval=3600), network(PES))
    srv = BmpServer(BmpServerConfig(host="127.0.0.1", port=0), live)
    srv.start()
    try:
        yield srv, live
    finally:
        srv.stop()


def _stream(n: int) -> bytes:
    update = bgp_update(
        announce=[nlri(f"10.{k // 256}.{k % 256}.0/24", rd="65000:12") for k in range(n)],
        rts=["65000:1"],
        next_hop="192.0.2.2",
    )
    return bmp_initiation(sys_name="rr1") + bmp_peer_up(**PE2) + bmp_route_monitoring(update, **PE2)


def test_a_session_feeds_routes_and_its_loss_withdraws_them(
    server: tuple[BmpServer, LiveRouting],
) -> None:
    srv, live = server
    with socket.create_connection(srv.address) as s:
        data = _stream(300)
        for i in range(0, len(data), 1000):  # messages cut across TCP segments
            s.sendall(data[i : i + 1000])
        _wait(lambda: sum(int(r["routes"]) for r in live.summary()) == 300, "300 routes")  # type: ignore[call-overload]
        assert live.summary()[0]["router"] == "rr1"
        assert live.summary()[0]["peers_up"] == 1
    _wait(lambda: not live.summary(), "the session to be gone")
    version = live.snapshot()
    assert version is not None
    assert len(version.vpn) == 0


def test_an_unframeable_stream_drops_only_that_session(
    server: tuple[BmpServer, LiveRouting],
) -> None:
    srv, live = server
    with (
        socket.create_connection(srv.address) as good,
        socket.create_connection(srv.address) as bad,
    ):
        good.sendall(_stream(10))
        bad.sendall(b"\x02\x00\x00\x00\x06\x00")  # BMP version 2
        _wait(lambda: len(live.summary()) == 1, "the bad session to drop")
        assert bad.recv(10) == b""
        _wait(lambda: live.summary()[0]["routes"] == 10, "the good session's routes")


def test_metrics_follow_sessions_peers_routes_and_view_age(
    server: tuple[BmpServer, LiveRouting],
) -> None:
    from prometheus_client import REGISTRY

    srv, live = server
    dropped = REGISTRY.get_sample_value("bmp_sessions_dropped_total") or 0.0
    with socket.create_connection(srv.address) as s:
        s.sendall(_stream(25))
        _wait(lambda: sum(int(str(r["routes"])) for r in live.summary()) == 25, "25 routes")
        assert REGISTRY.get_sample_value("bmp_sessions") == 1
        assert REGISTRY.get_sample_value("bmp_peers_up", {"router": "rr1/192.0.2.254"}) == 1
        updates = REGISTRY.get_sample_value(
            "bmp_route_updates_total", {"router": "rr1/192.0.2.254"}
        )
        assert updates is not None
        assert updates >= 25
        live.snapshot()
        assert REGISTRY.get_sample_value("bmp_routes", {"vrf": "other"}) == 25
        age = REGISTRY.get_sample_value("routing_view_age_seconds", {"pe": "pe1"})
        assert age is not None
        assert 0 <= age < 60
    with socket.create_connection(srv.address) as bad:
        bad.sendall(b"\x03\x00\x00\x00\x02\x00")  # length under the header
        _wait(lambda: bad.recv(10) == b"", "the bad session to close")
    _wait(
        lambda: (REGISTRY.get_sample_value("bmp_sessions_dropped_total") or 0) == dropped + 1,
        "the dropped session to be counted",
    )
