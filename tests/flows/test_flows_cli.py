from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.flows.v5 import build_v5
from flowmatrix.schema import FlowBatch

runner = CliRunner()
DGRAM = build_v5(
    [{"src": "10.0.0.1", "dst": "10.9.0.2", "bytes": 100, "packets": 2, "protocol": 6}] * 5
)


def capture(tmp_path: Path, datagrams: list[bytes]) -> Path:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    for i, d in enumerate(datagrams):
        udp = struct.pack("!HHHH", 5000, 2055, 8 + len(d), 0) + d
        ip = (
            struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                i,
                0,
                64,
                17,
                0,
                bytes([127, 0, 1, 1]),
                bytes([127, 0, 0, 1]),
            )
            + udp
        )
        out += struct.pack("<IIII", 1_767_600_000, 0, len(ip), len(ip)) + ip
    path = tmp_path / "exports.pcap"
    path.write_bytes(out)
    return path


def test_flows_read_prints_records_and_totals(tmp_path: Path) -> None:
    result = runner.invoke(app, ["flows", "read", str(capture(tmp_path, [DGRAM, DGRAM]))])
    assert result.exit_code == 0, result.output
    assert "10.0.0.1:0" in result.output
    assert "Summary: flows: 10, bytes: 1000, packets: 20, datagrams: 2" in result.output


def test_flows_read_writes_parquet_and_csv(tmp_path: Path) -> None:
    pcap = capture(tmp_path, [DGRAM])
    for name in ("f.parquet", "f.csv"):
        result = runner.invoke(app, ["flows", "read", str(pcap), "--output", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    batch = FlowBatch.from_arrow(pq.read_table(tmp_path / "f.parquet"))
    assert len(batch) == 5
    assert batch["exporter_lo"].tolist() == [0x7F000101] * 5
    csv = pacsv.read_csv(tmp_path / "f.csv")
    assert csv.column("src").to_pylist() == ["10.0.0.1"] * 5
    assert csv.column("exporter").to_pylist() == ["127.0.1.1"] * 5


def test_flows_read_refuses_an_unknown_output_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["flows", "read", str(capture(tmp_path, [])), "--output", "x.txt"])
    assert result.exit_code == 2


def test_flows_listen_stops_after_count_records() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def sender() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(40):
                time.sleep(0.05)
                s.sendto(DGRAM, ("127.0.0.1", port))

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    result = runner.invoke(
        app,
        [
            "flows",
            "listen",
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--count",
            "10",
            "--seconds",
            "10",
        ],
    )
    thread.join()
    assert result.exit_code == 0, result.output
    assert "10.9.0.2:0" in result.output
    assert "Summary: flows:" in result.output


def test_flows_read_json_gives_records_and_summary(tmp_path: Path) -> None:
    import json

    pcap = capture(tmp_path, [DGRAM, DGRAM])
    result = runner.invoke(app, ["flows", "read", str(pcap), "--json", "--limit", "3"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert [r["src"] for r in answer["records"]] == ["10.0.0.1"] * 3
    assert answer["summary"] == {
        "flows": 10,
        "bytes": 1000,
        "packets": 20,
        "datagrams": 2,
        "dropped": {},
        "template_misses": 0,
    }
