"""``flowmatrix frp run --bmp``: live snapshots reach the pipeline's routing; the CLI option."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from typer.testing import CliRunner

from flowmatrix.cli import app
from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import config_to_bytes
from flowmatrix.frp.service import FrpOptions, FrpService
from flowmatrix.frp.testing import FakeMg, small_config
from flowmatrix.routing import resolve_egress
from flowmatrix.routing.bundle import read_bundle
from flowmatrix.routing.native import bgp_table_arrow
from flowmatrix.routing.resolve import Compiled
from flowmatrix.routing.testing import bgp_update, bmp_peer_up, bmp_route_monitoring, nlri

PE2 = {"peer": "198.19.0.2", "bgp_id": "198.19.0.2", "post_policy": True}


def _native(directory: Path) -> Path:
    routing = directory / "routing"
    routing.mkdir(parents=True)
    (routing / "pe1-rd.csv").write_text(
        "if_index,interface,vrf,rd,import_rts,export_rts\n5,Gi0/0/0/5,blue,65000:1,65000:1,65000:1\n"
    )
    (routing / "pe1-connected.csv").write_text("vrf,prefix,in_bgp\n")
    (routing / "manifest.json").write_text(
        json.dumps(
            {
                "format": "flowmatrix-routing/1",
                "taken_at": "2020-01-01T00:00:00Z",
                "pes": {"pe1": {"rd": "pe1-rd.csv", "connected": "pe1-connected.csv"}},
            }
        )
    )
    return directory


def _egress(compiled: Compiled, at_ms: int) -> str:
    res = resolve_egress(
        compiled,
        pe=["pe1"],
        in_if=[5],
        ip_version=[4],
        dst_hi=[0],
        dst_lo=[0x0A020001],
        start_ms=[at_ms],
    )
    return str(res.egress_pe_name().to_pylist()[0])


def _has_route(bundle: bytes, view: NetworkConfig) -> bool:
    """Whether a routing bundle's route reflector view holds the live route 65000:2:10.2/16."""
    state = read_bundle(bundle, view, allowed=["pe1", "pe2"])
    if not state.rr_versions:
        return False
    vpn = bgp_table_arrow(state.rr_versions[-1].vpn, vpn=True)
    return bool(
        [r for r in vpn.to_pylist() if r["prefix"] == "10.2.0.0/16" and r["rd"] == "65000:2"]
    )


def test_frp_with_bmp_hands_live_snapshots_to_the_pipeline(tmp_path: Path) -> None:
    view = small_config(60).view_for_frp("frp-a")
    with FakeMg(config_to_bytes(view)) as mg:
        options = FrpOptions(
            mg=mg.url,
            name="frp-a",
            token="secret",
            data=tmp_path / "data",
            listen=(("127.0.0.1", 0),),
            routing=_native(tmp_path / "net"),
            config_refresh=0,
            bmp=("127.0.0.1", 0),
            bmp_interval=0.1,
            routing_upload=0.1,
        )
        frp = FrpService(options)
        frp.start()
        try:
            assert frp.bmp is not None
            assert frp.pipeline is not None
            before = int(time.time() * 1000)
            update = bgp_update(
                announce=[nlri("10.2.0.0/16", rd="65000:2")], rts=["65000:1"], next_hop="198.19.0.2"
            )
            with socket.create_connection(frp.bmp.address) as s:
                s.sendall(bmp_peer_up(**PE2) + bmp_route_monitoring(update, **PE2))
                deadline = time.monotonic() + 10
                pipeline = frp.pipeline
                while True:
                    routing = pipeline.routing
                    if (
                        isinstance(routing, Compiled)
                        and _egress(routing, int(time.time() * 1000)) == "pe2"
                    ):
                        break
                    assert time.monotonic() < deadline, "no live routing reached the pipeline"
                    time.sleep(0.05)
                assert _egress(routing, before - 1) == "unresolved"
                # the live view goes to the MG too (its routing lookups, centralized mode)
                while not any(_has_route(b, view) for b in list(mg.routing)):
                    assert time.monotonic() < deadline, "no live routing bundle reached the MG"
                    time.sleep(0.05)
                frp.stop()  # with the session still up: the last snapshot is written
        finally:
            frp.stop()
    # stopping wrote a snapshot that the next start reloads
    assert (tmp_path / "data" / "bmp-snapshot" / "manifest.json").is_file()
    assert (tmp_path / "data" / "bmp-snapshot" / "table.mrt").is_file()


def test_a_centralized_frp_with_bmp_resolves_nothing_but_sends_the_live_view(
    tmp_path: Path,
) -> None:
    view = small_config(60).view_for_frp("frp-a")
    with FakeMg(config_to_bytes(view)) as mg:
        frp = FrpService(
            FrpOptions(
                mg=mg.url, name="frp-a", token="secret", data=tmp_path / "data",
                listen=(("127.0.0.1", 0),), routing=_native(tmp_path / "net"), config_refresh=0,
                bmp=("127.0.0.1", 0), bmp_interval=0.1, routing_upload=0.1, mode="centralized",
            )
        )  # fmt: skip
        frp.start()
        try:
            assert frp.bmp is not None
            assert frp.pipeline is not None
            update = bgp_update(
                announce=[nlri("10.2.0.0/16", rd="65000:2")], rts=["65000:1"], next_hop="198.19.0.2"
            )
            with socket.create_connection(frp.bmp.address) as s:
                s.sendall(bmp_peer_up(**PE2) + bmp_route_monitoring(update, **PE2))
                deadline = time.monotonic() + 10
                while not any(_has_route(b, view) for b in list(mg.routing)):
                    assert time.monotonic() < deadline, "no live routing bundle reached the MG"
                    time.sleep(0.05)
                assert frp.pipeline.routing is None  # the MG resolves the records
        finally:
            frp.stop()


def test_frp_run_has_the_bmp_options() -> None:
    out = CliRunner().invoke(app, ["frp", "run", "--help"], terminal_width=200)
    assert out.exit_code == 0
    assert "--bmp" in out.output
    assert "--bmp-interval" in out.output
