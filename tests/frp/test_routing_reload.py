"""A running FRP takes new table versions put in its --routing directory, and sends them on."""

from __future__ import annotations

import json
import time
from pathlib import Path

from flowmatrix.config.xml import config_to_bytes
from flowmatrix.frp.service import FrpOptions, FrpService
from flowmatrix.frp.testing import FakeMg, small_config
from flowmatrix.routing import resolve_egress
from flowmatrix.routing.bundle import read_bundle
from flowmatrix.routing.resolve import Compiled

T1, T2 = "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"
MS_T2 = 1_780_272_000_000  # 2026-06-01T00:00:00Z


def version(routing: Path, tag: str, taken_at: str, next_hop: str) -> dict[str, str]:
    """One table version of pe1: interface 5 in VRF blue, 10.2.0.0/16 via ``next_hop``."""
    (routing / f"rd-{tag}.csv").write_text(
        "if_index,interface,vrf,rd,import_rts,export_rts\n5,Gi0/0/0/5,blue,65000:1,65000:1,65000:1\n"
    )
    (routing / f"connected-{tag}.csv").write_text("vrf,prefix,in_bgp\n")
    (routing / f"vpn-{tag}.csv").write_text(
        f"vrf,rd,prefix,next_hop\nblue,65000:1,10.2.0.0/16,{next_hop}\n"
    )
    return {
        "taken_at": taken_at,
        "rd": f"rd-{tag}.csv",
        "connected": f"connected-{tag}.csv",
        "bgp": f"vpn-{tag}.csv",
    }


def write_manifest(routing: Path, versions: list[dict[str, str]]) -> None:
    tmp = routing / ".manifest.tmp"
    tmp.write_text(json.dumps({"format": "flowmatrix-routing/1", "pes": {"pe1": versions}}))
    tmp.replace(routing / "manifest.json")


def egress(compiled: Compiled, at_ms: int) -> str:
    res = resolve_egress(
        compiled, pe=["pe1"], in_if=[5], ip_version=[4], dst_hi=[0], dst_lo=[0x0A020001],
        start_ms=[at_ms],
    )  # fmt: skip
    return str(res.egress_pe_name().to_pylist()[0])


def wait_for(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_new_versions_in_the_routing_directory_are_used_from_their_time_on(tmp_path: Path):
    routing = tmp_path / "net" / "routing"
    routing.mkdir(parents=True)
    first = version(routing, "a", T1, "198.19.0.1")  # pe1's own loopback: stays local
    write_manifest(routing, [first])
    view = small_config(60).view_for_frp("frp-a")
    with FakeMg(config_to_bytes(view)) as mg:
        frp = FrpService(
            FrpOptions(
                mg=mg.url, name="frp-a", token="secret", data=tmp_path / "data",
                listen=(("127.0.0.1", 0),), routing=tmp_path / "net", config_refresh=0,
                tick=0.05, routing_check=0.1, routing_upload=0.1,
            )
        )  # fmt: skip
        frp.start()
        try:
            pipeline = frp.pipeline
            assert pipeline is not None
            assert isinstance(pipeline.routing, Compiled)
            assert egress(pipeline.routing, MS_T2 + 1) == "pe1"
            wait_for(lambda: len(mg.routing) == 1)
            # a later version: from T2 on, 10.2/16 leaves through pe2
            write_manifest(routing, [first, version(routing, "b", T2, "198.19.0.2")])
            wait_for(lambda: len(pipeline.routing.versions) == 2)  # type: ignore[union-attr]
            assert egress(pipeline.routing, MS_T2 + 1) == "pe2"  # type: ignore[arg-type]
            assert egress(pipeline.routing, MS_T2 - 1) == "pe1"  # type: ignore[arg-type]
            wait_for(lambda: len(mg.routing) == 2)
            sent = read_bundle(mg.routing[-1], view, allowed=["pe1"])
            assert [v.taken_at_ms for v in sent.pe_versions["pe1"]][-1] == MS_T2
            # a broken manifest keeps what is in force
            (routing / "manifest.json").write_text("{not json")
            time.sleep(0.5)
            assert egress(pipeline.routing, MS_T2 + 1) == "pe2"  # type: ignore[arg-type]
        finally:
            frp.stop()
