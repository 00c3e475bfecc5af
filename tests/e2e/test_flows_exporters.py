"""Real exporters → our collector on loopback: softflowd (v5, v9, IPFIX) and pmacct's nfprobe.

Ground truth comes from the synth generator. The synth pcaps carry an 802.1Q
tag; softflowd counts "frame length − link header" and its link header for
a tagged frame is 18 octets, so its byte counts equal the truth's IP total
lengths exactly (asserted per flow below).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from flowmatrix.addr import format_addresses
from flowmatrix.flows import Collector, CollectorConfig, Datagram, Decoder
from flowmatrix.schema import FlowBatch
from flowmatrix.synth import generate_network, generate_traffic, write_network

pytestmark = pytest.mark.e2e

PE = "fra-pe2"


def _oracle() -> ModuleType:
    path = Path(__file__).parents[1] / "flows" / "oracle.py"
    spec = importlib.util.spec_from_file_location("flows_oracle_e2e", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingDecoder(Decoder):
    """A decoder that also keeps every datagram it was given (for the differential test)."""

    def __init__(self) -> None:
        super().__init__()
        self.datagrams: list[bytes] = []

    def decode(self, datagrams: Iterable[Datagram]) -> FlowBatch:
        batch = list(datagrams)
        self.datagrams.extend(d for d, _, _ in batch)
        return super().decode(batch)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = tmp_path_factory.mktemp("net")
    write_network(generate_network("tiny", seed=1), net)
    out = tmp_path_factory.mktemp("traffic")
    generate_traffic(net, out, seed=1, flows=2000)
    return out


def truth_rows(traffic: Path, pe: str, *, ipv4_only: bool = False) -> Counter[tuple[object, ...]]:
    """The truth's flows of one PE as softflowd exports them: IPv6 traffic class as 0."""
    t = pq.read_table(traffic / "truth" / "flows.parquet")
    t = t.filter(pc.equal(t["ingress_pe"], pe))
    if ipv4_only:
        t = t.filter(pc.equal(t["ip_version"], 4))
    # softflowd 1.1.0 does not read the IPv6 traffic class: it exports ToS 0 for IPv6 flows
    tos = pc.if_else(pc.equal(t["ip_version"], 6), 0, t["tos"])
    t = t.set_column(t.schema.get_field_index("tos"), "tos", tos)
    cols = ("src", "dst", "src_port", "dst_port", "protocol", "tos", "bytes", "packets")
    return Counter(zip(*(t[c].to_pylist() for c in cols), strict=True))


def batch_rows(batch: FlowBatch) -> Counter[tuple[object, ...]]:
    src = format_addresses(batch["ip_version"], batch["src_hi"], batch["src_lo"]).to_pylist()
    dst = format_addresses(batch["ip_version"], batch["dst_hi"], batch["dst_lo"]).to_pylist()
    cols = [src, dst] + [
        batch[c].tolist() for c in ("src_port", "dst_port", "protocol", "tos", "bytes", "packets")
    ]
    return Counter(zip(*cols, strict=True))


def collect_from(command: list[str], collector: Collector, sink: list[FlowBatch]) -> FlowBatch:
    collector.start()
    try:
        subprocess.run(command, check=True, timeout=60, capture_output=True)
        settled, last = time.monotonic(), -1
        while time.monotonic() - settled < 0.5:
            now = sum(len(b) for b in sink)
            if now != last:
                settled, last = time.monotonic(), now
            time.sleep(0.05)
    finally:
        collector.stop()
    return FlowBatch.concat(sink)


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("softflowd") is None, reason="softflowd is not installed")
@pytest.mark.parametrize("version", [5, 9, 10])
def test_softflowd_replay_totals_equal_the_ground_truth(
    version: int, traffic: Path, tmp_path: Path
) -> None:
    port = free_port()
    sink: list[FlowBatch] = []
    decoder = RecordingDecoder()
    config = CollectorConfig(listen=(("127.0.0.1", port),), exporters=frozenset({"127.0.0.1"}))
    collector = Collector(config, sink=sink.append, decoder=decoder)
    command = [
        "softflowd", "-r", str(traffic / "pcap" / f"{PE}.pcap"), "-n", f"127.0.0.1:{port}",
        "-v", str(version), "-c", "none", "-d", "-a", "-p", str(tmp_path / "sf.pid"),
        "-m", "65536",
    ]  # fmt: skip
    batch = collect_from(command, collector, sink)

    truth = truth_rows(traffic, PE, ipv4_only=version == 5)
    assert collector.stats.dropped_total() == 0
    assert sum(k[6] * n for k, n in truth.items()) == int(batch["bytes"].sum())
    assert sum(k[7] * n for k, n in truth.items()) == int(batch["packets"].sum())
    # one record per flow, every field equal (bytes = IP total lengths despite the VLAN tag)
    assert batch_rows(batch) == truth

    # times: v5 and IPFIX to the millisecond (floor); v9's header has whole seconds only
    t = pq.read_table(traffic / "truth" / "flows.parquet")
    t = t.filter(pc.equal(t["ingress_pe"], PE))
    first = dict(zip(zip(t["src_port"].to_pylist(), t["dst_port"].to_pylist(), strict=True),
                     t["first_ms"].to_pylist(), strict=True))  # fmt: skip
    got = np.array([first[(s, d)] for s, d in zip(batch["src_port"].tolist(),
                    batch["dst_port"].tolist(), strict=True)])  # fmt: skip
    diff = batch["start_ms"] - got
    low = -1000 if version == 9 else -1
    assert low <= diff.min()
    assert diff.max() <= 0

    # differential: the netflow package decodes the same datagrams into the same records
    oracle = _oracle()
    expected = oracle.reference_rows(version, decoder.datagrams)
    keys = [k[0] for k in oracle.KEYS]
    ours = []
    for i in range(len(batch)):
        row = []
        for name in keys:
            if name in ("src", "dst"):
                row.append((int(batch[f"{name}_hi"][i]) << 64) | int(batch[f"{name}_lo"][i]))
            else:
                row.append(int(batch[name][i]))
        ours.append(tuple(row))
    assert sorted(ours) == sorted(expected)


PMACCT = """\
daemonize: false
plugins: nfprobe[pe]
pcap_savefile: {pcap}
nfprobe_receiver: 127.0.0.1:{port}
nfprobe_version[pe]: {version}
nfprobe_source_ip[pe]: 127.0.0.21
nfprobe_engine[pe]: 21
nfprobe_maxflows[pe]: 65536
nfprobe_direction[pe]: in
nfprobe_ifindex[pe]: tag
pre_tag_map: {pretag}
"""


@pytest.mark.skipif(shutil.which("pmacctd") is None, reason="pmacct is not installed")
@pytest.mark.parametrize("version", [9, 10])
def test_pmacct_nfprobe_totals_and_interfaces_equal_the_ground_truth(
    version: int, traffic: Path, tmp_path: Path
) -> None:
    port = free_port()
    conf = tmp_path / "pmacctd.conf"
    conf.write_text(
        PMACCT.format(
            pcap=traffic / "pcap" / f"{PE}.pcap",
            port=port,
            version=version,
            pretag=traffic / "pmacct" / f"{PE}.pretag.map",
        )
    )
    sink: list[FlowBatch] = []
    config = CollectorConfig(listen=(("127.0.0.1", port),), exporters=frozenset({"127.0.0.21"}))
    collector = Collector(config, sink=sink.append)
    batch = collect_from(["pmacctd", "-f", str(conf)], collector, sink)

    t = pq.read_table(traffic / "truth" / "flows.parquet")
    t = t.filter(pc.equal(t["ingress_pe"], PE))
    assert int(batch["bytes"].sum()) == pc.sum(t["bytes"]).as_py()
    assert int(batch["packets"].sum()) == pc.sum(t["packets"]).as_py()
    assert set(batch["source_id"].tolist()) == {21}
    # bytes per input interface (from the pre_tag_map) equal the truth's per ifIndex
    ours: Counter[int] = Counter()
    for i, b in zip(batch["in_if"].tolist(), batch["bytes"].tolist(), strict=True):
        ours[i] += b
    truth: Counter[int] = Counter()
    for i, b in zip(t["ingress_if_index"].to_pylist(), t["bytes"].to_pylist(), strict=True):
        truth[i] += b
    assert ours == truth
