"""Collector records/s from a UDP socket on loopback, and whether any datagram was lost.

A sender process (on the other core) blasts softflowd's v9 datagrams of a synth
pcap (or built ones) at the collector as fast as it can; the collector (pinned to
one core) drains, decodes and hands batches to a counting sink. Prints records/s
from the first datagram to the last decoded batch, the receive buffer granted,
and the kernel drops read from /proc/net/udp — the figure counts only when that
is zero.

Run: ``.venv/bin/python bench/bench_flows_collector.py [DATAGRAMS]``
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sys
import threading
import time

from bench_flows import built_datagrams
from flowmatrix.flows import Collector, CollectorConfig, Decoder
from flowmatrix.schema import FlowBatch

DATAGRAMS = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000


def _send(port: int, datagrams: list[bytes], count: int, core: int) -> None:
    os.sched_setaffinity(0, {core})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(count):
            s.sendto(datagrams[i % len(datagrams)], ("127.0.0.1", port))


def main() -> None:
    collector_core = int(os.environ.get("FLOWMATRIX_BENCH_CORE", "0"))
    os.sched_setaffinity(0, {collector_core})
    datagrams = built_datagrams(9)
    per = len(Decoder().decode([(d, "127.0.0.1", 0.0) for d in datagrams])) / len(datagrams)
    expected = round(per * DATAGRAMS)
    records = 0
    last = 0.0
    done = threading.Event()

    def sink(batch: FlowBatch) -> None:
        nonlocal records, last
        records += len(batch)
        last = time.perf_counter()
        if records >= expected:
            done.set()

    collector = Collector(CollectorConfig(listen=(("127.0.0.1", 0),)), sink=sink)
    collector.start()
    port = collector.addresses[0][1]
    sender = mp.Process(target=_send, args=(port, datagrams, DATAGRAMS, 1 - collector_core))
    began = time.perf_counter()
    sender.start()
    sender.join()
    done.wait(timeout=30)
    (granted,) = collector.receive_buffers()
    collector.stop()
    seconds = last - began
    kernel = collector.stats.by_reason().get("kernel", 0)
    print(
        f"collector: {DATAGRAMS} v9 datagrams ({expected} records) sent on loopback, "
        f"{records} decoded in {seconds:.2f} s = {records / seconds / 1e6:.2f} M records/s; "
        f"receive buffer {granted / 2**20:.0f} MiB; kernel drops {kernel}; "
        f"{'no loss' if records == expected else f'LOST {expected - records} records'}"
    )


if __name__ == "__main__":
    main()
