"""Time generating and writing the large network (target < 60 s) and ~2 M packets of traffic.

Each figure is printed with a same-run reference: the same work done the
naive way (one Python loop iteration per route or per packet) on a sample,
extrapolated to the full count, so the ratio says what vectorizing buys on
this machine today.

Run: ``.venv/bin/python bench/bench_synth.py [--flows N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from flowmatrix.synth import generate_network, generate_traffic, write_network

#: the large network must be generated and written within this many seconds
TARGET_NETWORK_S = 60.0


def naive_route_rate(sample: int = 50_000) -> float:
    """Routes per second when each VPN route's text row is made by a Python loop."""
    rng = np.random.default_rng(0)
    nets = rng.integers(0, 1 << 24, sample).tolist()
    lengths = rng.integers(20, 31, sample).tolist()
    began = time.perf_counter()
    rows = []
    for i, (net, length) in enumerate(zip(nets, lengths, strict=True)):
        prefix = ipaddress.IPv4Network(((10 << 24 | net) >> (32 - length) << (32 - length), length))
        hop = ipaddress.IPv4Address(0xC6130000 + i % 1000)
        rows.append(f"65000:{100000 + i % 1000},{prefix},{hop},65000:{100000 + i % 1000},100,0,1")
    return sample / (time.perf_counter() - began)


def naive_packet_rate(path: Path, mean_ip_bytes: int, sample: int = 50_000) -> float:
    """Packets per second when each packet is packed by a Python loop and written to a file."""
    payload = bytes(max(0, mean_ip_bytes - 40))
    began = time.perf_counter()
    with path.open("wb") as fh:
        for i in range(sample):
            frame = struct.pack("!6s6sHHH", b"\2" * 6, b"\2" * 6, 0x8100, 101, 0x0800)
            frame += struct.pack(
                "!BBHHHBBHII", 0x45, 0, mean_ip_bytes, i & 0xFFFF, 0x4000, 64, 6, 0, i, i
            )
            frame += struct.pack("!HHIIHHHH", 40000, 443, i, 0, 0x5018, 65535, 0, 0) + payload
            fh.write(struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame)
    rate = sample / (time.perf_counter() - began)
    path.unlink()
    return rate


def io_floor(path: Path, size: int) -> float:
    """Seconds to write ``size`` zero bytes to a file in 64 MiB pieces: the disk's floor."""
    piece = np.zeros(64 << 20, np.uint8)
    began = time.perf_counter()
    with path.open("wb") as fh:
        for lo in range(0, size, len(piece)):
            piece[: min(len(piece), size - lo)].tofile(fh)
    seconds = time.perf_counter() - began
    path.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--flows", type=int, default=200_000, help="flows of traffic (~10 packets each)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write here and keep the files")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        began = time.perf_counter()
        net = generate_network("large", args.seed)
        generated = time.perf_counter() - began
        counts = write_network(net, root / "network")
        network_s = time.perf_counter() - began
        routes = counts["vpn_routes"] + counts["global_routes"]
        naive_s = routes / naive_route_rate()
        print(
            f"large network: {network_s:.1f} s (generate {generated:.1f} s, write "
            f"{network_s - generated:.1f} s; target < {TARGET_NETWORK_S:.0f} s) — "
            f"{counts['pes']} PEs, {counts['vrfs']} VRFs, {counts['vpn_routes']:,} VPN routes "
            f"({counts['vpn_routes'] - counts['vpnv6_routes']:,} VPNv4), "
            f"{counts['global_routes']:,} global routes"
        )
        print(
            f"  reference: a Python loop per route would take {naive_s:.1f} s just to format "
            f"the rows (ratio {naive_s / network_s:.1f}x)"
        )
        began = time.perf_counter()
        summary = generate_traffic(
            root / "network", root / "traffic", seed=args.seed, flows=args.flows, network=net
        )
        traffic_s = time.perf_counter() - began
        floor_s = io_floor(root / "floor.bin", summary.bytes + 34 * summary.packets)
        mean = summary.bytes // max(1, summary.packets)
        naive_s = summary.packets / naive_packet_rate(root / "naive.pcap", mean)
        print(
            f"traffic: {traffic_s:.1f} s for {summary.flows:,} flows, {summary.packets:,} packets, "
            f"{summary.bytes / 1e9:.2f} GB of IP in {len(summary.pcaps)} pcaps "
            f"({summary.packets / traffic_s / 1e6:.2f} M packets/s)"
        )
        print(
            f"  reference: a Python loop packing and writing each packet: {naive_s:.1f} s "
            f"(ratio {naive_s / traffic_s:.1f}x)"
        )
        print(
            f"  I/O floor: writing the same {summary.bytes / 1e9:.2f} GB from one buffer takes "
            f"{floor_s:.1f} s (traffic is {traffic_s / floor_s:.1f}x the floor)"
        )
        ok = network_s < TARGET_NETWORK_S
        print(f"target large network < {TARGET_NETWORK_S:.0f} s: {'met' if ok else 'MISSED'}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
