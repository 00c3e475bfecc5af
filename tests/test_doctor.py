from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server
from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.doctor import (
    check_clock,
    check_config,
    check_exporters,
    check_frp_metrics,
    check_receive_buffer,
    check_routing,
    check_token,
    run_checks,
)
from flowmatrix.mg.service import MgService

VALID = Path(__file__).parent / "config" / "data" / "valid.xml"
BROKEN = Path(__file__).parent / "config" / "data"


@pytest.fixture(scope="module")
def mg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real MG (uvicorn in a thread) on a free port, with its issued tokens."""
    tmp = tmp_path_factory.mktemp("mg")
    service = MgService(VALID, tmp / "mg.duckdb", port=0, issue_tokens=tmp, log_level="warning")
    service.start()
    try:
        yield f"http://127.0.0.1:{service.port}", tmp
    finally:
        service.stop()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_clock_within_resolution_is_ok_and_skew_beyond_it_warns_then_fails() -> None:
    # the server second 1000 covers 1000.0–1000.999; a client at 1000.3 is in sync
    assert check_clock(server_s=1000, sent_s=1000.2, received_s=1000.4).status == "ok"
    warn = check_clock(server_s=1010, sent_s=1000.2, received_s=1000.4)
    assert warn.status == "warn"
    assert "+10.2 s" in warn.detail
    assert check_clock(server_s=900, sent_s=1000.0, received_s=1000.1).status == "fail"
    # a slow round trip widens what cannot be told apart
    assert check_clock(server_s=1003, sent_s=1000.0, received_s=1006.0).status == "ok"
    # a time to the millisecond (the MG's time_ms) leaves only the round trip
    exact = check_clock(server_s=1002.9, sent_s=1000.2, received_s=1000.4, resolution_s=0.0)
    assert exact.status == "warn"  # 2.6 s off, known to ±0.1 s
    assert "+2.6 s" in exact.detail
    assert "(±0.1 s)" in exact.detail


def test_config_check_names_the_first_problem(tmp_path: Path) -> None:
    ok, config = check_config(VALID)
    assert ok.status == "ok"
    assert config is not None
    assert f"{len(config.pes)} PEs" in ok.detail
    bad = tmp_path / "bad.xml"
    bad.write_text("<network name='x'")
    failed, none = check_config(bad)
    assert failed.status == "fail"
    assert none is None
    assert "bad.xml" in failed.detail


def test_mg_and_tokens_against_a_real_mg(mg: tuple[str, Path]) -> None:
    url, tokens = mg
    operator = (tokens / "operator.token").read_text().strip()
    frp = (tokens / "frp-par.token").read_text().strip()
    checks = run_checks(mg=url, token=operator)
    by = {c.name: c for c in checks}
    assert by["mg"].status == "ok"
    assert by["clock"].status == "ok"  # same host
    assert "(±0." in by["clock"].detail  # from /health's time_ms, not the Date header's second
    assert by["token"].status == "ok"
    assert check_token(url, frp, frp="frp-par").status == "ok"
    wrong = check_token(url, "not-a-token")
    assert (wrong.status, wrong.detail.split()[1]) == ("fail", "401")
    other = check_token(url, frp, frp="frp-lon")
    assert (other.status, other.detail.split()[1]) == ("fail", "403")


def test_unreachable_mg_fails_and_skips_the_token(tmp_path: Path) -> None:
    port = free_udp_port()  # nothing listens on TCP there
    checks = run_checks(mg=f"http://127.0.0.1:{port}", token="x")
    assert [c.name for c in checks[:1]] == ["mg"]
    assert checks[0].status == "fail"
    assert "unreachable" in checks[0].detail
    assert "token" not in {c.name for c in checks}


def test_receive_buffer_reports_what_the_kernel_granted() -> None:
    small = check_receive_buffer(64 * 1024)
    assert small.status == "ok"
    assert "granted" in small.detail
    # far beyond any kernel limit: the kernel grants less and the check says so
    huge = check_receive_buffer(2**31 - 1)
    assert huge.status == "warn"
    assert "rmem_max" in huge.detail or "limit" in huge.detail


def test_exporters_seen_missing_and_unknown_sources() -> None:
    port = free_udp_port()
    stop = time.monotonic() + 1.0

    def send() -> None:
        time.sleep(0.2)
        for source in ("127.0.1.1", "127.0.9.9"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((source, 0))
                s.sendto(b"\x00\x0a", ("127.0.0.1", port))
        while time.monotonic() < stop:
            time.sleep(0.05)

    sender = threading.Thread(target=send)
    sender.start()
    check = check_exporters(
        ("127.0.0.1", port), seconds=0.8, expected=frozenset({"127.0.1.1", "127.0.1.2"})
    )
    sender.join()
    assert check.status == "warn"
    assert "127.0.1.1 (1)" in check.detail
    assert "silent: 127.0.1.2" in check.detail
    assert "not configured (refused by the FRP): 127.0.9.9" in check.detail
    quiet = check_exporters(("127.0.0.1", free_udp_port()), seconds=0.2)
    assert quiet.status == "fail"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        busy = check_exporters(held.getsockname(), seconds=0.2)
    assert busy.status == "skip"
    assert "--frp-metrics" in busy.detail


def test_frp_metrics_must_show_records_moving() -> None:
    registry = CollectorRegistry()
    records = Counter("frp_records", "records", registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert check_frp_metrics(url, seconds=0.2).status == "fail"  # nothing moved
        ticker = threading.Timer(0.1, lambda: records.inc(50))
        ticker.start()
        moving = check_frp_metrics(url, seconds=0.4)
        ticker.join()
        assert moving.status == "ok"
        assert "records/s" in moving.detail
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_doctor_command_exit_codes_and_json(mg: tuple[str, Path]) -> None:
    url, tokens = mg
    runner = CliRunner()
    good = runner.invoke(
        app,
        ["doctor", "--config", str(VALID), "--mg", url, "--token-file",
         str(tokens / "operator.token"), "--json"],
    )  # fmt: skip
    assert good.exit_code == 0, good.output
    names = [c["name"] for c in json.loads(good.output)]
    assert names == ["config", "mg", "clock", "token", "routing", "receive-buffer", "exporters"]
    bad_token = tokens / "wrong.token"
    bad_token.write_text("nope\n")
    refused = runner.invoke(app, ["doctor", "--mg", url, "--token-file", str(bad_token)])
    assert refused.exit_code == 1
    assert "FAIL" in refused.output
    usage = runner.invoke(app, ["doctor", "--listen", "nohostport"])
    assert usage.exit_code == 2


def test_routing_check_names_the_frps_whose_tables_the_mg_lacks(tmp_path: Path) -> None:
    from flowmatrix.config.xml import load_config
    from flowmatrix.routing.bundle import pack
    from flowmatrix.routing.native import read_native

    config = load_config([VALID])
    routing = tmp_path / "routing"
    routing.mkdir()
    pes = {}
    for pe in config.pes:
        (routing / f"{pe.name}-rd.csv").write_text(
            "if_index,interface,vrf,rd,import_rts,export_rts\n1,Gi0/1,,,,\n"
        )
        (routing / f"{pe.name}-c.csv").write_text("vrf,prefix,in_bgp\n")
        pes[pe.name] = {"rd": f"{pe.name}-rd.csv", "connected": f"{pe.name}-c.csv"}
    manifest = {"format": "flowmatrix-routing/1", "taken_at": "2026-01-01T00:00:00Z", "pes": pes}
    (routing / "manifest.json").write_text(json.dumps(manifest))
    state = read_native(routing, config)
    service = MgService(VALID, tmp_path / "mg.duckdb", port=0, issue_tokens=tmp_path,
                        log_level="warning")  # fmt: skip
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        operator = (tmp_path / "operator.token").read_text().strip()
        none = check_routing(url, operator)
        assert none.status == "warn"
        assert "no routing tables from frp-par, frp-lon" in none.detail

        def send(frp: str) -> None:
            token = (tmp_path / f"{frp}.token").read_text().strip()
            answer = httpx.put(
                f"{url}/api/v1/frps/{frp}/routing",
                content=pack(state, pes=[p.name for p in config.pes_of(frp)]),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text

        send("frp-par")
        half = check_routing(url, operator)
        assert half.status == "warn"
        assert "no routing tables from frp-lon" in half.detail
        send("frp-lon")
        whole = check_routing(url, operator)
        assert whole.status == "ok"
        assert "tables from every FRP: frp-par (0 s ago), frp-lon (0 s ago)" in whole.detail
    finally:
        service.stop()
