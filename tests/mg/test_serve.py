from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flowmatrix.matrix.partial import MEDIA_TYPE, PARTIAL_SCHEMA, PartialMeta, encode_partial
from flowmatrix.mg.cli import mg_app, tm_app
from flowmatrix.mg.service import MgService

pytestmark = pytest.mark.e2e

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"
P0 = 1_800_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mg_process(db: Path, tokens: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real MG (uvicorn) process on 127.0.0.1:port, killed at the end."""
    cmd = [sys.executable, "-c", "from flowmatrix.mg.cli import mg_app; mg_app()", "serve"]
    config = db.parent / "config"
    config.mkdir(exist_ok=True)
    (config / "network.xml").write_bytes(VALID.read_bytes())
    cmd += ["--config", str(config), "--db", str(db), "--port", str(port)]
    cmd += ["--issue-tokens", str(tokens), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "MG did not start"
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def partial(bytes_: float) -> pa.Table:
    values = ["par-pe1", 3, "", "lon-pe1", 0, "BE", bytes_, 1.0, 1.0, 1.0, 0.0, 0.0]
    return pa.table({n: [v] for n, v in zip(PARTIAL_SCHEMA.names, values, strict=True)}).cast(
        PARTIAL_SCHEMA
    )


def upload(url: str, token: str, table: pa.Table) -> httpx.Response:
    meta = PartialMeta(
        frp="frp-par", interval="always", period_start_ms=P0, period_end_ms=P0 + 300_000
    )
    return httpx.put(
        f"{url}/api/v1/partials/frp-par/always/{P0}",
        content=encode_partial(table, meta),
        headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_uploads_survive_kill_9_and_are_served_after_restart(tmp_path: Path) -> None:
    db, tokens, port = tmp_path / "mg.duckdb", tmp_path / "tokens", free_port()
    with mg_process(db, tokens, port) as (proc, url):
        assert sorted(p.name for p in tokens.iterdir()) == [
            "frp-lon.token",
            "frp-par.token",
            "operator.token",
        ]
        assert (tokens / "frp-par.token").stat().st_mode & 0o777 == 0o600
        frp = (tokens / "frp-par.token").read_text().strip()
        assert upload(url, frp, partial(100.0)).json()["version"] == 1
        assert upload(url, frp, partial(250.0)).json()["version"] == 2
        held = CliRunner().invoke(mg_app, ["token", "--db", str(db), "--frp", "frp-par"])
        assert held.exit_code == 1
        assert "is an MG serving this file?" in held.output
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    # the DB is free again: a token can be issued offline
    runner = CliRunner()
    made = runner.invoke(mg_app, ["token", "--db", str(db), "--operator", "alice"])
    assert made.exit_code == 0, made.output
    alice = made.output.strip().splitlines()[-1]

    with mg_process(db, tokens, port) as (_, url):
        operator = tokens / "operator.token"
        assert sorted(p.name for p in tokens.iterdir())[-1] == "operator.token"
        assert upload(url, frp, partial(250.0)).json()["status"] == "unchanged"
        r = httpx.get(
            f"{url}/api/v1/matrix",
            params={"interval": "always", "period_start_ms": P0},
            headers={"Authorization": f"Bearer {alice}"},
        )
        assert r.status_code == 200
        assert r.json()["rows"][0][:4] == ["par-pe1", "lon-pe1", "BE", 250.0]
        assert r.json()["missing"] == ["frp-lon"]

        base = ["--mg", url, "--token-file", str(operator), "--interval", "always"]
        shown = runner.invoke(tm_app, ["show", *base, "--period", "2027-01-15T08:00:00Z"])
        assert shown.exit_code == 0, shown.output
        assert "par-pe1" in shown.output
        assert "status incomplete missing: frp-lon" in shown.output
        for ext in ("csv", "parquet", "json"):
            out = tmp_path / f"tm.{ext}"
            done = runner.invoke(tm_app, ["export", *base, "--output", str(out)])
            assert done.exit_code == 0, done.output
        assert pq.read_table(tmp_path / "tm.parquet")["bytes"].to_pylist() == [250.0]
        assert "ingress" in (tmp_path / "tm.csv").read_text().splitlines()[0]
        assert json.loads((tmp_path / "tm.json").read_text())["status"] == "incomplete"

        refused = runner.invoke(
            tm_app, ["show", "--mg", url, "--token-file", str(tokens / "frp-par.token")]
        )
        assert refused.exit_code == 1
        bad_ext = runner.invoke(tm_app, ["export", *base, "--output", str(tmp_path / "x.xlsx")])
        assert bad_ext.exit_code == 2

    gone = runner.invoke(tm_app, ["show", "--mg", url, "--token-file", str(operator)])
    assert gone.exit_code == 2
    assert "cannot reach the MG" in gone.output


def test_service_in_a_thread_takes_concurrent_uploads_and_stops_cleanly(tmp_path: Path) -> None:
    service = MgService(
        VALID, tmp_path / "mg.duckdb", port=0, issue_tokens=tmp_path, log_level="warning"
    )
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        token = (tmp_path / "frp-par.token").read_text().strip()

        def put(k: int) -> int:
            start = P0 + 300_000 * k
            meta = PartialMeta(
                frp="frp-par",
                interval="always",
                period_start_ms=start,
                period_end_ms=start + 300_000,
            )
            r = httpx.put(
                f"{url}/api/v1/partials/frp-par/always/{start}",
                content=encode_partial(partial(float(k + 1)), meta),
                headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {token}"},
                timeout=20,
            )
            return r.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(put, range(16))) == [200] * 16
        operator = (tmp_path / "operator.token").read_text().strip()
        periods = httpx.get(
            f"{url}/api/v1/periods", headers={"Authorization": f"Bearer {operator}"}
        ).json()
        assert len(periods) == 16
        assert all(p["missing"] == ["frp-lon"] for p in periods)
        assert "mg_periods_incomplete 16.0" in httpx.get(f"{url}/metrics").text
    finally:
        service.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/api/v1/health", timeout=1)
