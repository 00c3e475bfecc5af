from __future__ import annotations

import socket
import threading
import time

from flowmatrix.flows import Collector, CollectorConfig, allowed_exporters
from flowmatrix.flows.collector import kernel_drops
from flowmatrix.flows.v5 import build_v5
from flowmatrix.schema import FlowBatch

DGRAM = build_v5([{"src": "10.0.0.1", "bytes": 100, "packets": 1}] * 10)


class Sink:
    def __init__(self) -> None:
        self.batches: list[FlowBatch] = []
        self.lock = threading.Lock()

    def __call__(self, batch: FlowBatch) -> None:
        with self.lock:
            self.batches.append(batch)

    def records(self) -> int:
        with self.lock:
            return sum(len(b) for b in self.batches)


def wait_for(check: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not check():  # type: ignore[operator]
        time.sleep(0.02)


def send(address: tuple[str, int], data: bytes, *, source: str, count: int = 1) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        for _ in range(count):
            s.sendto(data, address)


def test_collector_receives_on_ipv4_and_ipv6_and_tags_the_exporter() -> None:
    sink = Sink()
    collector = Collector(CollectorConfig(listen=(("127.0.0.1", 0), ("::1", 0))), sink=sink)
    collector.start()
    try:
        v4, v6 = collector.addresses
        send(v4, DGRAM, source="127.0.0.7", count=3)
        send(v6, DGRAM, source="::1")
        wait_for(lambda: sink.records() >= 40)
    finally:
        collector.stop()
    batch = FlowBatch.concat(sink.batches)
    assert len(batch) == 40
    assert sorted(
        set(zip(batch["exporter_version"].tolist(), batch["exporter_lo"].tolist(), strict=True))
    ) == [
        (4, 0x7F000007),
        (6, 1),
    ]
    assert collector.stats.records["127.0.0.7"] == 30


def test_collector_refuses_unknown_exporters_and_counts_them_per_address() -> None:
    sink = Sink()
    config = CollectorConfig(listen=(("127.0.0.1", 0),), exporters=frozenset({"127.0.0.2"}))
    collector = Collector(config, sink=sink)
    collector.start()
    try:
        (address,) = collector.addresses
        send(address, DGRAM, source="127.0.0.3", count=2)
        send(address, DGRAM, source="127.0.0.2")
        wait_for(lambda: sink.records() >= 10 and collector.refused)
    finally:
        collector.stop()
    assert sink.records() == 10
    assert collector.refused == {"127.0.0.3": 2}
    assert collector.stats.dropped[("127.0.0.3", "unknown_exporter")] == 2


def test_collector_asks_for_a_large_receive_buffer() -> None:
    collector = Collector(CollectorConfig(listen=(("127.0.0.1", 0),)), sink=Sink())
    collector.start()
    try:
        (granted,) = collector.receive_buffers()
    finally:
        collector.stop()
    assert granted >= 1024 * 1024


def test_kernel_drops_are_read_from_proc_for_the_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.1", 0))
        assert kernel_drops(sock) == 0
        send(sock.getsockname(), DGRAM, source="127.0.0.1", count=200)
        assert kernel_drops(sock) > 0


def test_allowed_exporters_come_from_the_configured_pes() -> None:
    from flowmatrix.synth import generate_network

    config = generate_network("tiny", seed=1).config
    allowed = allowed_exporters(config)
    assert "127.0.1.1" in allowed
    assert len(allowed) == len(config.pes)


def test_fake_collector_hands_its_batches_to_the_sink_on_start() -> None:
    from flowmatrix.flows.testing import FakeCollector

    got: list[FlowBatch] = []
    fake = FakeCollector(sink=got.append, batches=[FlowBatch.empty(2), FlowBatch.empty(3)])
    fake.start()
    fake.stop()
    assert [len(b) for b in got] == [2, 3]
