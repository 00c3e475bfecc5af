"""The FRP's routing publisher: newest tables only, at most every N seconds, retried."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from flowmatrix.frp.publisher import PublisherConfig, RoutingPublisher
from flowmatrix.routing.bundle import read_bundle
from flowmatrix.routing.native import read_native
from flowmatrix.routing.tables import RoutingState
from flowmatrix.synth import generate_network, write_network


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> RoutingState:
    path = tmp_path_factory.mktemp("net")
    write_network(generate_network("tiny", seed=1), path)
    return read_native(path)


class Mg:
    """Answers PUTs with the statuses queued (200 once they run out), recording each."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.seen: list[tuple[float, httpx.Request]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append((time.monotonic(), request))
            status = self.statuses.pop(0) if self.statuses else 200
        return httpx.Response(status, json={"status": "stored" if status == 200 else "no"})


def publisher(mg: Mg, every: float, retry: float = 0.2) -> RoutingPublisher:
    return RoutingPublisher(
        PublisherConfig("http://mg", "frp-par", "secret", every=every, retry=retry),
        pes=lambda: ["par-pe1", "par-pe2"],
        transport=httpx.MockTransport(mg),
    )


def wait_for(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_first_tables_go_at_once_and_the_next_no_sooner_than_every(state: RoutingState):
    mg = Mg()
    pub = publisher(mg, every=1.0)
    pub.start()
    try:
        began = time.monotonic()
        pub.offer(state)
        wait_for(lambda: len(mg.seen) == 1)
        assert mg.seen[0][0] - began < 0.8
        request = mg.seen[0][1]
        assert request.url.path == "/api/v1/frps/frp-par/routing"
        assert request.headers["Authorization"] == "Bearer secret"
        assert request.headers["Content-Type"] == "application/gzip"
        sent = read_bundle(request.content, state.config, allowed=["par-pe1", "par-pe2"])
        assert sorted(sent.pe_versions) == ["par-pe1", "par-pe2"]
        pub.offer(state)
        pub.offer(state)  # replaces the waiting one: one more send, not two
        wait_for(lambda: len(mg.seen) == 2)
        assert mg.seen[1][0] - mg.seen[0][0] >= 0.95
        time.sleep(1.3)
        assert len(mg.seen) == 2
    finally:
        pub.stop()
    assert pub.sent == 2


def test_a_failed_send_is_retried_and_a_refused_one_is_not(state: RoutingState):
    mg = Mg(503, 401)
    pub = publisher(mg, every=0.1, retry=0.3)
    pub.start()
    try:
        pub.offer(state)
        wait_for(lambda: len(mg.seen) == 3)  # 503, 401, then accepted
        gaps = [b[0] - a[0] for a, b in zip(mg.seen, mg.seen[1:], strict=False)]
        assert all(g >= 0.28 for g in gaps)
        assert pub.sent == 1
        mg.statuses = [400]
        pub.offer(state)
        wait_for(lambda: len(mg.seen) == 4)
        time.sleep(0.8)
        assert len(mg.seen) == 4  # refused: dropped until the tables change again
    finally:
        pub.stop()


def test_an_unreachable_mg_is_retried(state: RoutingState, tmp_path: Path):
    calls: list[float] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"status": "stored"})

    pub = RoutingPublisher(
        PublisherConfig("http://mg", "frp-par", "secret", every=0.1, retry=0.2),
        pes=lambda: ["par-pe1"],
        transport=httpx.MockTransport(down),
    )
    pub.start()
    try:
        pub.offer(state)
        wait_for(lambda: pub.sent == 1)
    finally:
        pub.stop()
    assert len(calls) == 3
