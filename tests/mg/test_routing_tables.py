"""The MG's routing tables: FRPs' bundles kept, merged over a base directory, compiled."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from flowmatrix.addr import format_addresses
from flowmatrix.errors import UploadError
from flowmatrix.matrix.store import Store
from flowmatrix.mg.routing import MgRouting
from flowmatrix.mg.testing import MgClient, open_mg
from flowmatrix.routing.bundle import pack
from flowmatrix.routing.native import read_native
from flowmatrix.routing.resolve import explain
from flowmatrix.routing.tables import RoutingState
from flowmatrix.synth import generate_network, write_network


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("net")
    write_network(generate_network("tiny", seed=1), path)
    return path


@pytest.fixture(scope="module")
def state(network: Path) -> RoutingState:
    return read_native(network)


def pes_of(state: RoutingState, frp: str) -> list[str]:
    return [p.name for p in state.config.pes_of(frp)]


def lookups(state: RoutingState, pe: str, address: str) -> list[tuple[object, ...]]:
    return [
        (e.vrf, e.rd, e.prefix, tuple(e.next_hops), tuple(e.egress), e.reason)
        for e in explain(state, pe, address)
    ]


def held(tables: MgRouting, state: RoutingState) -> RoutingState:
    """A state holding the MG's compilation (as the /routing/explain route does)."""
    compiled = tables.compiled
    assert compiled is not None
    return RoutingState(state.config, generation=compiled.generation, compiled=compiled)


def test_bundles_of_every_frp_give_the_same_lookups_as_the_files(state: RoutingState):
    tables = MgRouting(state.config)
    tables.start()
    assert tables.compiled is None
    for frp in state.config.frps:
        receipt = tables.put(frp.name, pack(state, pes=pes_of(state, frp.name)))
        assert receipt["status"] == "stored"
        assert receipt["pes"] == sorted(pes_of(state, frp.name))
    assert tables.compiled is not None
    mg = held(tables, state)
    vpn = state.rr_versions[-1].vpn
    step = max(1, len(vpn) // 25)
    sample = format_addresses(vpn.family[::step], vpn.hi[::step], vpn.lo[::step]).to_pylist()
    found = 0
    for pe in state.pe_versions:
        for address in ("192.0.2.1", "2001:db8::1", *sample):
            want = lookups(state, pe, address)
            assert lookups(mg, pe, address) == want
            found += any(e[2] for e in want)
    assert found > 20  # lookups that found a prefix, not only empty answers


def test_an_identical_bundle_changes_nothing_and_a_foreign_pe_is_refused(state: RoutingState):
    tables = MgRouting(state.config)
    tables.start()
    data = pack(state, pes=pes_of(state, "frp-par"))
    assert tables.put("frp-par", data)["status"] == "stored"
    before = tables.compiled
    assert tables.put("frp-par", data)["status"] == "unchanged"
    assert tables.compiled is before
    with pytest.raises(UploadError, match="does not serve: lon-pe1"):
        tables.put("frp-par", pack(state, pes=["par-pe1", "lon-pe1"]))
    with pytest.raises(UploadError, match="unreadable bundle"):
        tables.put("frp-par", b"garbage")
    with pytest.raises(LookupError, match="unknown FRP"):
        tables.put("frp-nowhere", data)
    assert tables.compiled is before  # what was in force stays
    assert [len(s["bundles"]) for s in tables.status()] == [1]


def test_bundles_survive_a_restart_and_only_the_newest_are_kept(
    state: RoutingState, tmp_path: Path
):
    mine = pes_of(state, "frp-lon")
    tables = MgRouting(state.config, directory=tmp_path, keep=2)
    tables.start()
    rr = state.rr_versions[-1]
    for k in range(3):  # three route reflector versions, a minute apart
        newer = RoutingState(state.config, dict(state.pe_versions), [])
        newer.add_rr(replace(rr, taken_at_ms=rr.taken_at_ms + k * 60_000))
        tables.put("frp-lon", pack(newer, pes=mine), now_ms=1_800_000_000_000 + k)
    kept = sorted(p.name for p in (tmp_path / "frp-lon").iterdir())
    assert len(kept) == 2
    assert kept[0].startswith("1800000000001-")
    again = MgRouting(state.config, directory=tmp_path, keep=2)
    again.start()
    assert again.status() == tables.status()
    assert [b["rr_taken_at_ms"] for b in again.status()[0]["bundles"]] == [
        [rr.taken_at_ms + 60_000],
        [rr.taken_at_ms + 120_000],
    ]
    assert again.compiled is not None
    assert again.compiled.rr_times.tolist() == [rr.taken_at_ms + 60_000, rr.taken_at_ms + 120_000]


def test_a_damaged_kept_bundle_is_skipped_at_start(state: RoutingState, tmp_path: Path):
    tables = MgRouting(state.config, directory=tmp_path)
    tables.start()
    tables.put("frp-fra", pack(state, pes=pes_of(state, "frp-fra")), now_ms=1_800_000_000_000)
    kept = next((tmp_path / "frp-fra").iterdir())
    (tmp_path / "frp-fra" / "1800000000001-00000000000000ff.tar.gz").write_bytes(b"broken")
    (tmp_path / "frp-fra" / ".1800000000002-00000000000000ee.tar.gz.tmp").write_bytes(b"half")
    (tmp_path / "not-an-frp").mkdir()
    again = MgRouting(state.config, directory=tmp_path)
    again.start()
    assert [b["digest"] for b in again.status()[0]["bundles"]] == [kept.name.split("-")[1][:16]]
    assert not (tmp_path / "frp-fra" / ".1800000000002-00000000000000ee.tar.gz.tmp").exists()


def test_the_base_directory_is_merged_under_the_bundles(state: RoutingState, network: Path):
    tables = MgRouting(state.config, base=network)
    tables.start()
    assert tables.compiled is not None
    base_versions = len(tables.compiled.versions)
    tables.put("frp-par", pack(state, pes=pes_of(state, "frp-par")))
    # the same PE tables (same times) replace the base's versions rather than add to them
    assert len(tables.compiled.versions) == base_versions


def put_bundle(mg: MgClient, frp: str, data: bytes, *, token: str | None = None,
               media: str = "application/gzip") -> httpx.Response:  # fmt: skip
    return mg.client.put(
        f"/api/v1/frps/{frp}/routing",
        content=data,
        headers={"Content-Type": media, "Authorization": f"Bearer {token or mg.tokens[frp]}"},
    )


def test_the_routing_route_takes_an_frps_own_bundle_and_explains_with_it(
    state: RoutingState, tmp_path: Path
):
    with Store(":memory:") as store:
        mg = open_mg(state.config, store, tmp_path / "tokens")
        assert mg.get("/routing/explain", pe="par-pe1", address="10.0.0.1").status_code == 404
        data = pack(state, pes=pes_of(state, "frp-par"))
        # refused: another FRP's token, an operator's, the wrong media type, a foreign PE
        assert put_bundle(mg, "frp-par", data, token=mg.tokens["frp-lon"]).status_code == 403
        assert put_bundle(mg, "frp-par", data, token=mg.tokens["operator"]).status_code == 403
        assert put_bundle(mg, "frp-par", data, media="application/json").status_code == 415
        foreign = put_bundle(mg, "frp-par", pack(state, pes=["par-pe1", "fra-pe1"]))
        assert foreign.status_code == 400
        assert "fra-pe1" in foreign.json()["error"]
        assert put_bundle(mg, "frp-par", b"\x1f\x8bjunk").status_code == 400
        assert mg.get("/routing").json() == {"base": None, "compiled": False, "frps": []}
        stored = put_bundle(mg, "frp-par", data)
        assert stored.status_code == 200, stored.text
        assert stored.json()["status"] == "stored"
        assert put_bundle(mg, "frp-par", data).json()["status"] == "unchanged"
        body = mg.get("/routing").json()
        assert body["compiled"] is True
        assert [f["frp"] for f in body["frps"]] == ["frp-par"]
        assert sorted(body["frps"][0]["bundles"][0]["pes"]) == ["par-pe1", "par-pe2"]
        assert mg.get("/routing", token=mg.tokens["frp-par"]).status_code == 403
        why = mg.get("/routing/explain", pe="par-pe1", address="10.0.0.1")
        assert why.status_code == 200, why.text
        assert why.json()["lookups"] == [
            {"vrf": e.vrf, "rd": e.rd, "interfaces": e.interfaces, "prefix": e.prefix,
             "next_hops": e.next_hops, "egress": e.egress, "reason": e.reason}
            for e in explain(state, "par-pe1", "10.0.0.1")
        ]  # fmt: skip
        assert mg.get("/network").json()["features"]["routing"] is True


def test_centralized_records_wait_for_routing_tables_with_a_503(
    state: RoutingState, tmp_path: Path
):
    from flowmatrix.matrix.partial import INGRESS_SCHEMA, MEDIA_TYPE, PartialMeta, encode_ingress

    with Store(":memory:") as store:
        mg = open_mg(state.config, store, tmp_path / "tokens")
        meta = PartialMeta(frp="frp-par", interval="always", period_start_ms=0,
                           period_end_ms=300_000, mode="centralized")  # fmt: skip
        answer = mg.client.request(
            "POST",
            "/api/v1/ingress/frp-par/always/0",
            content=encode_ingress(INGRESS_SCHEMA.empty_table(), meta),
            headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {mg.tokens['frp-par']}"},
        )
        assert answer.status_code == 503  # the FRP keeps it and tries again
        assert answer.headers["Retry-After"] == "5"
        assert "no routing tables yet" in answer.json()["error"]


def test_each_table_version_is_held_once_and_route_reflector_versions_are_bounded(
    state: RoutingState,
):
    tables = MgRouting(state.config, keep=2)
    tables.start()
    rr = state.rr_versions[-1]
    # every FRP sends the same route reflector view (same time): one copy is held
    for frp in state.config.frps:
        tables.put(frp.name, pack(state, pes=pes_of(state, frp.name)))
    held = [b for kept in tables._bundles.values() for b in kept]
    assert sum(len(b.state.rr_versions) for b in held) == 1
    assert all(b.rr_taken_at_ms == [rr.taken_at_ms] for b in held)  # each says what it held
    # newer route reflector versions from one FRP: only the newest `keep` in all are held
    for k in range(1, 4):
        newer = RoutingState(state.config, dict(state.pe_versions), [])
        newer.add_rr(replace(rr, taken_at_ms=rr.taken_at_ms + k * 60_000))
        tables.put("frp-par", pack(newer, pes=pes_of(state, "frp-par")))
    held = [b for kept in tables._bundles.values() for b in kept]
    times = sorted(r.taken_at_ms for b in held for r in b.state.rr_versions)
    assert times == [rr.taken_at_ms + 120_000, rr.taken_at_ms + 180_000]
    assert tables.compiled is not None
    assert tables.compiled.rr_times.tolist() == times
    # a PE's same version sent again by later bundles is held once
    par = tables._bundles["frp-par"]
    assert sum(len(b.state.pe_versions.get("par-pe1", [])) for b in par) == 1
    assert all("par-pe1" in b.pes for b in par)


def test_a_bundle_beyond_the_upload_limit_is_refused_with_413(state: RoutingState, tmp_path: Path):
    with Store(":memory:") as store:
        mg = open_mg(state.config, store, tmp_path / "tokens", max_body=10_000)
        data = pack(state, pes=pes_of(state, "frp-par"))
        assert len(data) > 10_000
        assert put_bundle(mg, "frp-par", data).status_code == 413
        assert mg.get("/routing").json()["frps"] == []


def test_routing_show_asks_the_mg_and_prints_what_the_files_say(network: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from flowmatrix.cli import app
    from flowmatrix.mg.service import MgService

    service = MgService(
        network / "network.xml",
        tmp_path / "mg.duckdb",
        port=0,
        issue_tokens=tmp_path / "tokens",
        routing=network,
        log_level="warning",
    )
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}"
        token = str(tmp_path / "tokens" / "operator.token")
        runner = CliRunner()
        for address in ("10.0.0.1", "185.0.0.1"):
            files = runner.invoke(
                app, ["routing", "show", "--network", str(network), "par-pe1", "--lookup", address]
            )
            asked = runner.invoke(
                app, ["routing", "show", "par-pe1", "--lookup", address, "--mg", url,
                      "--token-file", token],
            )  # fmt: skip
            assert asked.exit_code == files.exit_code == 0, asked.output
            assert asked.output == files.output
        as_json = runner.invoke(
            app, ["routing", "show", "par-pe1", "--lookup", "10.0.0.1", "--mg", url,
                  "--token-file", token, "--json"],
        )  # fmt: skip
        assert as_json.exit_code == 0
        assert json.loads(as_json.output)[0]["reason"]
        unknown = runner.invoke(
            app, ["routing", "show", "nope", "--lookup", "10.0.0.1", "--mg", url,
                  "--token-file", token],
        )  # fmt: skip
        assert unknown.exit_code == 1
        assert "unknown PE" in unknown.output
        assert runner.invoke(app, ["routing", "show", "par-pe1"]).exit_code == 2
        no_lookup = runner.invoke(app, ["routing", "show", "par-pe1", "--mg", url])
        assert no_lookup.exit_code == 2
    finally:
        service.stop()
