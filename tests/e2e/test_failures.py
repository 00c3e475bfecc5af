"""Failures with real processes: an FRP killed mid-period, bad tokens and bodies at a real MG."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from flowmatrix.demo import DEMO_START
from flowmatrix.flows.v5 import build_v5
from flowmatrix.loopback import Loopback
from flowmatrix.matrix.partial import MEDIA_TYPE, PartialMeta, empty_partial, encode_partial
from flowmatrix.synth import generate_network, write_network

pytestmark = pytest.mark.e2e

AT = DEMO_START.timestamp() + 5  # inside the period starting at DEMO_START (60 s read-outs)
PERIOD = int(DEMO_START.timestamp() * 1000)
FLOWS, BYTES = 10, 1_000


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("failures")
    write_network(generate_network("tiny", seed=3), root / "network")
    return root / "network"


def datagram(sequence: int, engine_id: int) -> bytes:
    flow: dict[str, int | str] = {"src": "10.9.0.1", "dst": "10.9.0.2", "bytes": BYTES}
    flow |= {"packets": 2, "first": 100_000, "last": 100_500, "in_if": 1101}
    secs = int(AT)
    return build_v5([flow] * FLOWS, uptime=100_500, secs=secs, sequence=sequence,
                    engine=(0, engine_id))  # fmt: skip


def rows_written(data: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in data.glob("ingress/always/*/*/part-*.parquet"))


def wait_for(what: str, check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_frp_killed_mid_period_keeps_its_files_and_reports_the_gap(
    network: Path, tmp_path: Path
) -> None:
    with Loopback(network, tmp_path) as net:
        net.start_mg()
        pe = net.config.pes[0]
        frp = pe.frp
        assert frp is not None
        exporter = pe.exporters[0]
        engine = exporter.source_id or 0
        extra = ("--flush", "0.2")
        net.start_frp(frp, extra=extra)
        data = tmp_path / "frp" / frp
        target = (str(net.config.frp(frp).address), net.frp_ports[frp])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((str(exporter.address), 0))
            for seq in (0, FLOWS):
                sock.sendto(datagram(seq, engine), target)
            wait_for("the ingress files", lambda: rows_written(data) == 2 * FLOWS)
            net.kill_frp(frp, signal.SIGKILL)
            for seq in (2 * FLOWS, 3 * FLOWS):  # sent while the FRP is down: lost
                sock.sendto(datagram(seq, engine), target)
            net.start_frp(frp, extra=extra)
            sock.sendto(datagram(4 * FLOWS, engine), target)

            def delivered() -> bool:
                periods = net.get("periods", interval="always", since_ms=PERIOD,
                                  until_ms=PERIOD + 1).json()  # fmt: skip
                return bool(periods) and periods[0]["records"] == 3 * FLOWS

            wait_for("the revised partial at the MG", delivered)
        (period,) = net.get("periods", interval="always", since_ms=PERIOD,
                            until_ms=PERIOD + 1).json()  # fmt: skip
        matrix = net.matrix("always", period_start_ms=PERIOD)
    # everything written to the ingress files before the kill, and after the restart
    assert sum(matrix["bytes"].to_pylist()) == 3 * FLOWS * BYTES
    # what the exporter sent while the FRP was down is a gap, named per exporter
    assert period["gaps"] == [
        {"frp": frp, "exporter": str(exporter.address), "pe": pe.name, "gap": 2 * FLOWS,
         "gap_unit": "flows"}
    ]  # fmt: skip
    assert period["reported"] == [frp]
    assert period["status"] == "incomplete"
    assert set(period["missing"]) == {f.name for f in net.config.frps} - {frp}


def test_real_mg_refuses_wrong_tokens_and_bodies_and_stores_nothing(
    network: Path, tmp_path: Path
) -> None:
    with Loopback(network, tmp_path) as net:
        net.start_mg()
        frps = net.frp_names()
        mine, other = frps[0], frps[1]
        url = f"{net.mg_url}/api/v1/partials/{mine}/always/{PERIOD}"
        meta = PartialMeta(frp=mine, interval="always", period_start_ms=PERIOD,
                           period_end_ms=PERIOD + 60_000)  # fmt: skip
        body = encode_partial(empty_partial(), meta)

        def put(token: str, content: bytes = body) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": MEDIA_TYPE}
            return httpx.put(url, content=content, headers=headers, timeout=10)

        assert put("not-a-token").status_code == 401
        assert put(net.token(other)).status_code == 403
        assert put(net.token("operator")).status_code == 403
        assert put(net.token(mine), b"\x00garbage").status_code == 400
        config = httpx.get(f"{net.mg_url}/api/v1/frps/{other}/config", timeout=10,
                           headers={"Authorization": f"Bearer {net.token(mine)}"})  # fmt: skip
        assert config.status_code == 403
        assert net.get("periods", interval="always").json() == []
        first = put(net.token(mine))
        again = put(net.token(mine))
        assert (first.json()["status"], again.json()["status"]) == ("stored", "unchanged")
