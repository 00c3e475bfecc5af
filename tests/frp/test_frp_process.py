from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowmatrix.config.xml import config_to_bytes
from flowmatrix.frp.testing import FakeMg, small_config, v5_flows

pytestmark = pytest.mark.e2e

READOUT = 4
RUN = "from flowmatrix.frp.cli import frp_app; frp_app()"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bound(port: int) -> bool:
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(int(line.split()[1].split(":")[1], 16) == port for line in lines)


def wait_for(check: object, timeout: float = 20.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_frp(mg: FakeMg, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    token = tmp_path / "frp-a.token"
    token.write_text("secret\n")
    args = [
        *("--mg", mg.url, "--name", "frp-a", "--token-file", str(token)),
        *("--listen", f"127.0.0.1:{port}", "--data", str(tmp_path / "data")),
        *("--grace", "1", "--settle", "0.2", "--flush", "0.2", "--config-refresh", "0"),
    ]
    with (tmp_path / "frp.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", RUN, "run", *args], stdout=subprocess.DEVNULL, stderr=log
        )
    wait_for(lambda: bound(port) or proc.poll() is not None)
    assert proc.poll() is None, (tmp_path / "frp.log").read_text()
    return proc


def send(port: int, dgram: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(dgram, ("127.0.0.1", port))


def test_a_killed_frp_restarts_from_its_files_and_reports_the_sequence_gap(
    tmp_path: Path,
) -> None:
    view = small_config(READOUT).view_for_frp("frp-a")
    port = free_udp_port()
    with FakeMg(config_to_bytes(view)) as mg:
        proc = start_frp(mg, tmp_path, port)
        try:
            t = time.time()
            send(port, v5_flows(10, sequence=0, at=t))
            wait_for(lambda: any(r.meta.records == 10 for r in mg.received))
            # mid-period: records reach the part files, then the FRP is killed
            wait_for(lambda: time.time() % READOUT < 1)
            t = time.time()
            period = int(t // READOUT) * READOUT * 1000
            send(port, v5_flows(10, sequence=10, at=t, nbytes=7))
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert not [r for r in mg.received if r.meta.period_start_ms == period]
            send(port, v5_flows(10, sequence=20, at=time.time()))  # nobody listens: lost
            proc = start_frp(mg, tmp_path, port)
            send(port, v5_flows(5, sequence=30, at=time.time(), nbytes=3))

            def rebuilt() -> bool:
                return any(
                    r.meta.period_start_ms == period and r.meta.records >= 10 for r in mg.received
                )

            wait_for(rebuilt)
            wait_for(lambda: any(e.gap for r in mg.received for e in r.meta.exporters))
            proc.send_signal(signal.SIGTERM)  # a clean stop: flush, exit 0
            assert proc.wait(timeout=20) == 0
            assert "signal=SIGTERM stopping" in (tmp_path / "frp.log").read_text()
        finally:
            proc.kill()
            proc.wait(timeout=10)
    (up,) = [r for r in mg.received if r.meta.period_start_ms == period and r.meta.records >= 10]
    assert sum(row["bytes"] for row in up.rows if row["ingress_pe"] == "pe1") >= 70  # type: ignore[misc]
    gaps = [(e.address, e.gap, e.gap_unit) for r in mg.received for e in r.meta.exporters if e.gap]
    assert gaps == [("127.0.0.1", 10, "flows")]
