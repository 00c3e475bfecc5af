"""softflowd's real export sequence numbers: a full replay has no gap; a lost datagram is one."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from flowmatrix.flows import Decoder
from flowmatrix.synth import generate_network, generate_traffic, write_network

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("softflowd") is None, reason="softflowd is not installed"),
]

PE = "fra-pe2"
SO_RCVBUFFORCE = 33


@pytest.fixture(scope="module")
def pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = tmp_path_factory.mktemp("net")
    write_network(generate_network("tiny", seed=1), net)
    out = tmp_path_factory.mktemp("traffic")
    generate_traffic(net, out, seed=1, flows=2000)
    return out / "pcap" / f"{PE}.pcap"


def replay(pcap: Path, version: int, tmp_path: Path) -> list[bytes]:
    """Every datagram softflowd sends replaying ``pcap``, received on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        command = [
            "softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", str(version),
            "-c", "none", "-d", "-a", "-p", str(tmp_path / "sf.pid"), "-m", "65536",
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        sock.settimeout(0.3)
        out: list[bytes] = []
        try:
            while len(out) < 100_000:
                out.append(sock.recv(65535))
        except TimeoutError:
            pass
    return out


@pytest.mark.parametrize("version", [5, 9, 10])
def test_a_softflowd_replay_has_no_sequence_gap_and_a_lost_datagram_is_one(
    version: int, pcap: Path, tmp_path: Path
) -> None:
    datagrams = replay(pcap, version, tmp_path)
    assert len(datagrams) > 10
    tagged = [(d, "127.0.0.1", 0.0) for d in datagrams]
    batch, one = Decoder(), Decoder()
    for i in range(0, len(tagged), 7):
        batch.decode(tagged[i : i + 7])
    for data, address, arrival in tagged:
        one.feed(data, address, arrival)
    one.flush(0.0)
    for decoder in (batch, one):
        assert decoder.take_gaps() == []
        assert decoder.stats.reorders == {}
        assert decoder.stats.dropped_total() == 0
    assert batch.sequences() == one.sequences()

    # lose one datagram in the middle: exactly its units are missing, dated by the next one
    lost = len(datagrams) // 2
    lossy = Decoder()
    lossy.decode(tagged[:lost] + tagged[lost + 1 :])
    counting = Decoder()
    counting.decode(tagged[:lost])
    before = sum(counting.stats.records.values())
    counting.decode(tagged[lost : lost + 1])
    units = 1 if version == 9 else sum(counting.stats.records.values()) - before
    (export_s,) = struct.unpack_from("!I", datagrams[lost + 1], 4 if version == 10 else 8)
    gaps = lossy.take_gaps()
    assert [(g.missing, g.version, g.export_s) for g in gaps] == [(units, version, export_s)]
    assert lossy.stats.reorders == {}
    assert lossy.sequences() == batch.sequences()
