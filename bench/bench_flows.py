"""Decoder-only records/s for NetFlow v5, v9 and IPFIX on one core, against the netflow package.

The datagrams are softflowd 1.1.0's own exports of a synth pcap (tiny network,
20,000 flows, one PE) when softflowd is installed — real template mix, 24–29
records per datagram, templates resent every 16 datagrams — else built here.
The same datagrams are decoded by PyPI ``netflow`` (a sample) in the same
run, and the ratio printed. Target: ≥ 5 M records/s per version.

Run: ``.venv/bin/python bench/bench_flows.py``
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flowmatrix.flows import Decoder
from flowmatrix.flows.testing import (
    data_set,
    ipfix_message,
    ipfix_template_set,
    pack_record,
    v9_message,
    v9_template_set,
)
from flowmatrix.flows.v5 import build_v5
from flowmatrix.synth import generate_network, generate_traffic, write_network

TARGET = 5e6
#: datagrams per decode call (one collector drain)
BATCH = 4096
SECONDS = 2.0
SAMPLE = 300


def softflowd_datagrams(pcap: Path, version: int) -> list[bytes]:
    """Every datagram softflowd sends replaying ``pcap``, received on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, 33, 128 << 20)  # SO_RCVBUFFORCE
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", str(version),
                 "-c", "none", "-d", "-a", "-p", f"{tmp}/pid", "-m", "65536"],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        sock.settimeout(0.5)
        out = []
        try:
            while True:
                out.append(sock.recv(65535))
        except TimeoutError:
            pass
    return out


def softflowd_exports(versions: tuple[int, ...] = (5, 9, 10)) -> tuple[str, dict[int, list[bytes]]]:
    """softflowd's datagrams per version for the largest PE pcap of synth tiny, and its name."""
    with tempfile.TemporaryDirectory() as tmp:
        net, traffic = Path(tmp, "net"), Path(tmp, "traffic")
        write_network(generate_network("tiny", seed=1), net)
        generate_traffic(net, traffic, seed=1, flows=20_000)
        pcap = max((traffic / "pcap").iterdir(), key=lambda p: p.stat().st_size)
        return pcap.name, {v: softflowd_datagrams(pcap, v) for v in versions}


def built_datagrams(version: int) -> list[bytes]:
    """Datagrams built here when softflowd is missing: 29 (v5) or 24 records each."""
    if version == 5:
        return [build_v5([{"src": "10.0.0.1", "bytes": 1000, "packets": 3}] * 29)] * 1000
    fields = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (10, 4), (14, 4), (7, 2),
              (11, 2), (4, 1), (6, 1), (60, 1), (5, 1)]  # fmt: skip
    rec = pack_record(fields, {8: 1, 12: 2, 1: 1000, 2: 3, 60: 4})
    message, template = (
        (ipfix_message, ipfix_template_set(1024, fields))
        if version == 10
        else (v9_message, v9_template_set(1024, fields))
    )
    # the template is resent every 16 datagrams, as softflowd does
    return [
        message([template, data_set(1024, rec * 24)] if i % 16 == 0 else [data_set(1024, rec * 24)])
        for i in range(1024)
    ]


def ours(datagrams: list[bytes]) -> tuple[float, int]:
    """Records/s of our decoder, decoding ``BATCH`` datagrams per call for ``SECONDS``."""
    decoder = Decoder()
    tagged = [(d, "127.0.0.1", 0.0) for d in datagrams]
    while len(tagged) < BATCH:
        tagged += tagged
    tagged = tagged[:BATCH]
    decoder.decode(tagged)  # learn the templates
    records, began = 0, time.perf_counter()
    while time.perf_counter() - began < SECONDS:
        records += len(decoder.decode(tagged))
    return records / (time.perf_counter() - began), records


def theirs(version: int, datagrams: list[bytes]) -> float:
    """Records/s of PyPI netflow on a sample of the same datagrams (templates learned first)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "flows"))
    from netflow.ipfix import IPFIXExportPacket
    from netflow.v5 import V5ExportPacket
    from netflow.v9 import V9ExportPacket

    __import__("oracle")  # applies the v9 padding fix
    templates: dict[int, object] = {}
    parse = {
        5: lambda d: V5ExportPacket(d),
        9: lambda d: V9ExportPacket(d, templates),
        10: lambda d: IPFIXExportPacket(d, templates),
    }[version]
    for d in datagrams:
        parse(d)
    sample = (datagrams * (SAMPLE // len(datagrams) + 1))[:SAMPLE]
    records, began = 0, time.perf_counter()
    for d in sample:
        records += len(parse(d).flows)
    return records / (time.perf_counter() - began)


def main() -> None:
    # one core; FLOWMATRIX_BENCH_CORE picks another when core 0 is busy with other work
    os.sched_setaffinity(0, {int(os.environ.get("FLOWMATRIX_BENCH_CORE", "0"))})
    source = "built"
    data: dict[int, list[bytes]] = {}
    if shutil.which("softflowd"):
        pcap, data = softflowd_exports()
        source = f"softflowd -a replaying {pcap}"
    else:
        data = {v: built_datagrams(v) for v in (5, 9, 10)}
    print(f"one core; {BATCH} datagrams per decode call")
    print(
        f"{'datagrams':<34} {'ver':>3} {'count':>6} {'ours rec/s':>11} {'netflow':>10} {'ratio':>6}"
    )
    sets = [(source, data)]
    if source != "built":
        sets.append(
            ("built: one template, 24-29 rec/dgram", {v: built_datagrams(v) for v in (5, 9, 10)})
        )
    for name, datagrams in sets:
        for version in (5, 9, 10):
            rate, _ = ours(datagrams[version])
            ref = theirs(version, datagrams[version])
            mark = "ok" if rate >= TARGET else f"below target {TARGET / 1e6:.0f} M"
            print(
                f"{name:<34} {version:>3} {len(datagrams[version]):>6} {rate / 1e6:>9.2f} M "
                f"{ref / 1e6:>8.3f} M {rate / ref:>5.0f}x  {mark}"
            )


if __name__ == "__main__":
    main()
