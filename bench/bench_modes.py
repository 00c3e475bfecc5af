"""Bytes on the wire: distributed (partial matrices) versus centralized (ingress records).

Paper §4 compares computing the matrix where the records are collected with
shipping every record to one place. This runs the same generated traffic
through a loopback network twice — FRPs uploading partial matrices, then FRPs
forwarding their ingress records for the MG to resolve and aggregate — checks
that both total matrices are equal, and prints the upload bytes the MG
received in each mode (``mg_upload_bytes_total`` from its ``/metrics``).

Run: ``.venv/bin/python bench/bench_modes.py [FLOWS]`` (default 20,000 flows, tiny network).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from flowmatrix.demo import DEMO_INTERVAL, DEMO_START
from flowmatrix.loopback import Loopback
from flowmatrix.synth import generate_network, generate_traffic, write_network

DURATION_S = 180


def upload_bytes(net: Loopback) -> dict[str, float]:
    """The MG's upload byte counters, per kind of upload."""
    text = net.metrics()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mg_upload_bytes_total":
                kind = sample.labels.get("kind", "all")
                out[kind] = out.get(kind, 0.0) + sample.value
    return out


def run(
    network: Path, traffic: Path, work: Path, mode: str
) -> tuple[dict[str, float], list[object], float]:
    since = int(DEMO_START.timestamp() * 1000)
    until = since + DURATION_S * 1000
    began = time.perf_counter()
    with Loopback(network, work, mode=mode) as net:
        net.start()
        net.replay_all(traffic)
        net.wait_complete(DEMO_INTERVAL, since, until, timeout=120, settled_s=1.5)
        took = time.perf_counter() - began
        matrix = net.matrix(DEMO_INTERVAL, granularity="pe_pe", since_ms=since, until_ms=until)
        rows = sorted(matrix.select(["ingress", "egress", "bytes", "packets"]).to_pylist(),
                      key=lambda r: (r["ingress"], r["egress"]))  # fmt: skip
        return upload_bytes(net), rows, took


def main() -> None:
    flows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory(prefix="bench-modes-") as tmp:
        root = Path(tmp)
        write_network(generate_network("tiny", seed=1), root / "network")
        summary = generate_traffic(root / "network", root / "traffic", seed=1, flows=flows,
                                   start=DEMO_START, duration_s=DURATION_S)  # fmt: skip
        print(f"traffic: {summary.flows:,} flows, {summary.packets:,} packets")
        results = {m: run(root / "network", root / "traffic", root / m, m)
                   for m in ("distributed", "centralized")}  # fmt: skip
    dist, cent = results["distributed"], results["centralized"]
    same = dist[1] == cent[1]
    print(f"total matrices equal: {same}")
    for mode, (sent, _, took) in results.items():
        print(f"{mode:<12} upload bytes {sum(sent.values()):>12,.0f}  {sent}  ({took:.1f} s)")
    ratio = sum(cent[0].values()) / max(1.0, sum(dist[0].values()))
    print(f"centralized / distributed bytes on the wire: {ratio:.1f}x")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
