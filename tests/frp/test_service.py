from __future__ import annotations

import socket
import time
from pathlib import Path

from flowmatrix.config.xml import config_to_bytes
from flowmatrix.frp.service import FrpOptions, FrpService
from flowmatrix.frp.testing import FakeMg, Received, small_config, v5_flows

READOUT = 2


def options(mg: FakeMg, data: Path) -> FrpOptions:
    return FrpOptions(
        mg=mg.url,
        name="frp-a",
        token="secret",
        data=data,
        listen=(("127.0.0.1", 0),),
        grace=0.3,
        settle=0.1,
        flush=0.2,
        config_refresh=0,
        tick=0.05,
    )


def send(port: int, dgram: bytes, source: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.sendto(dgram, ("127.0.0.1", port))


def uploads_of(mg: FakeMg, start_ms: int) -> list[Received]:
    return [r for r in mg.received if r.meta.period_start_ms == start_ms]


def wait_for(check: object, timeout: float = 15.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def period_of(t: float) -> int:
    return int(t // READOUT) * READOUT * 1000


def test_a_restarted_frp_uploads_what_its_files_hold_and_not_what_was_delivered(
    tmp_path: Path,
) -> None:
    view = small_config(READOUT).view_for_frp("frp-a")
    with FakeMg(config_to_bytes(view)) as mg:
        frp = FrpService(options(mg, tmp_path / "data"))
        frp.start()
        try:
            port = frp.addresses[0][1]
            t = time.time()
            first = period_of(t)
            send(port, v5_flows(5, sequence=0, at=t))
            wait_for(lambda: any(r.meta.records == 5 for r in uploads_of(mg, first)))
            # records of a later period, flushed to files but not yet due at stop
            wait_for(lambda: time.time() % READOUT < READOUT / 2)
            t = time.time()
            second = period_of(t)
            send(port, v5_flows(7, sequence=5, at=t))
            pipeline = frp.pipeline
            assert pipeline is not None
            wait_for(lambda: bool(pipeline.files.parts("always", second)), timeout=5)
        finally:
            frp.stop()
        assert not any(r.meta.records for r in uploads_of(mg, second))
        assert (tmp_path / "data" / "config.xml").is_file()
        before = len(uploads_of(mg, first))
        again = FrpService(options(mg, tmp_path / "data"))
        again.start()
        try:
            wait_for(lambda: any(r.meta.records == 7 for r in uploads_of(mg, second)))
        finally:
            again.stop()
        assert len(uploads_of(mg, first)) == before  # delivered, files unchanged: not again
        (got,) = [r for r in uploads_of(mg, second) if r.meta.records]
        assert sum(row["bytes"] for row in got.rows) == 700  # type: ignore[misc]


def test_an_frp_starts_from_its_last_config_when_the_mg_is_down(tmp_path: Path) -> None:
    view = small_config(READOUT).view_for_frp("frp-a")
    mg = FakeMg(config_to_bytes(view))
    mg.start()
    frp = FrpService(options(mg, tmp_path))
    frp.start()
    frp.stop()
    mg.stop()
    again = FrpService(options(mg, tmp_path))
    again.start()
    try:
        assert again.client is not None
        assert again.client.current == view
    finally:
        again.stop()


def test_frp_metrics_are_served_and_count_the_records(tmp_path: Path) -> None:
    import dataclasses

    import httpx

    view = small_config(READOUT).view_for_frp("frp-a")
    with FakeMg(config_to_bytes(view)) as mg:
        opts = dataclasses.replace(options(mg, tmp_path / "data"), metrics=("127.0.0.1", 0))
        frp = FrpService(opts)
        frp.start()
        try:

            def scrape() -> float:
                text = httpx.get(f"http://127.0.0.1:{frp.metrics_port}/metrics", timeout=5).text
                lines = [x for x in text.splitlines() if x.startswith("frp_records_total ")]
                return float(lines[0].split()[-1]) if lines else 0.0

            before = scrape()
            send(frp.addresses[0][1], v5_flows(7, sequence=0, at=time.time()))
            wait_for(lambda: scrape() >= before + 7)
        finally:
            frp.stop()


def test_a_new_configuration_admits_its_exporters_without_closing_the_socket(
    tmp_path: Path,
) -> None:
    import dataclasses
    import ipaddress

    from flowmatrix.config.model import Exporter

    config = small_config(READOUT)
    pe2 = config.pe("pe2")
    more = dataclasses.replace(
        pe2, exporters=(*pe2.exporters, Exporter(ipaddress.ip_address("127.0.0.3")))
    )
    grown = dataclasses.replace(config, pes=(config.pe("pe1"), more))
    with FakeMg(config_to_bytes(config.view_for_frp("frp-a"))) as mg:
        opts = dataclasses.replace(options(mg, tmp_path / "data"), config_refresh=0.2)
        frp = FrpService(opts)
        frp.start()
        try:
            assert frp.collector is not None
            collector = frp.collector
            port = frp.addresses[0][1]
            send(port, v5_flows(3, sequence=0, at=time.time()), source="127.0.0.3")
            wait_for(lambda: collector.refused.get("127.0.0.3", 0) == 1)
            mg.config_xml = config_to_bytes(grown.view_for_frp("frp-a"))
            wait_for(lambda: "127.0.0.3" in (collector.config.exporters or ()))
            send(port, v5_flows(3, sequence=3, at=time.time()), source="127.0.0.3")
            wait_for(lambda: collector.stats.records["127.0.0.3"] == 3)
            assert frp.collector is collector
            assert frp.addresses[0][1] == port
        finally:
            frp.stop()
