"""The dashboard's assets under /ui and the read-only routes its pages call."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import load_config
from flowmatrix.loopback import synthetic_partials
from flowmatrix.matrix.partial import MEDIA_TYPE, encode_partial
from flowmatrix.matrix.store import Store
from flowmatrix.mg.app import create_app
from flowmatrix.mg.testing import AsgiClient
from flowmatrix.routing.native import read_native
from flowmatrix.routing.resolve import compile_state, explain
from flowmatrix.synth import generate_network, write_network

P0 = 1_800_000_000_000
PERIODS = 5


@dataclass
class Filled:
    config: NetworkConfig
    client: AsgiClient
    operator: str
    network: Path

    def get(self, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.operator}"}
        return self.client.get(f"/api/v1/{path}", params=params, headers=headers)


@pytest.fixture(scope="module")
def mg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    root = tmp_path_factory.mktemp("web") / "network"
    write_network(generate_network("tiny", seed=5), root)
    config = load_config([root / "network.xml"])
    routing = compile_state(read_native(root, config))
    with Store(":memory:") as store:
        client = AsgiClient(create_app(config, store, routing=routing))
        tokens = {f.name: store.add_token(f.name, "frp") for f in config.frps}
        for table, meta in synthetic_partials(
            config, interval="always", start_ms=P0, periods=PERIODS, seed=1
        ):
            if meta.frp == "frp-fra" and meta.period_start_ms == P0 + 4 * 300_000:
                continue  # the last period stays incomplete
            answer = client.put(
                f"/api/v1/partials/{meta.frp}/always/{meta.period_start_ms}",
                content=encode_partial(table, meta),
                headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {tokens[meta.frp]}"},
            )
            assert answer.status_code == 200, answer.text
        yield Filled(config, client, store.add_token("op", "operator"), root)


def test_ui_serves_the_packaged_page_with_a_same_origin_policy(mg: Filled) -> None:
    page = mg.client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.content == resources.files("flowmatrix.web").joinpath("index.html").read_bytes()
    assert "default-src 'self'" in page.headers["content-security-policy"]
    again = mg.client.get("/ui/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304
    assert mg.client.get("/ui").status_code == 308
    script = mg.client.get("/ui/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b"function linkColour" in script.content


def test_every_asset_the_page_loads_is_served_from_the_package(mg: Filled) -> None:
    html = mg.client.get("/ui/").text
    refs = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert sorted(refs) == ["app.js", "favicon.svg", "style.css"]
    for ref in refs:
        assert mg.client.get(f"/ui/{ref}").status_code == 200
    text = "".join(
        resources.files("flowmatrix.web").joinpath(n).read_text() for n in ("app.js", "style.css")
    )
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text


@pytest.mark.parametrize("name", ["__init__.py", "missing.js", ".hidden.js", "..%2Fapp.py"])
def test_ui_refuses_files_that_are_not_dashboard_assets(mg: Filled, name: str) -> None:
    assert mg.client.get(f"/ui/{name}").status_code == 404


def test_network_lists_intervals_frps_classes_and_features(mg: Filled) -> None:
    got = mg.get("network").json()
    assert [i["id"] for i in got["intervals"]] == [i.id for i in mg.config.intervals]
    assert got["expected_frps"] == ["frp-par", "frp-lon", "frp-fra"]
    assert got["classes"] == sorted(set(mg.config.dscp_classes()))
    assert got["features"] == {"statistics": True, "topology": False, "routing": True}
    assert {p["name"]: p["service_node"] for p in got["pes"]}["lon-pe2"] == "LON"


def test_frps_sum_what_the_envelopes_reported(mg: Filled) -> None:
    got = mg.get("frps", interval="always").json()
    assert got["uploads"] == 3 * PERIODS - 1
    frps = {f["name"]: f for f in got["frps"]}
    assert frps["frp-fra"]["uploads"] == PERIODS - 1
    assert frps["frp-par"]["last"]["period_start_ms"] == P0 + 4 * 300_000
    exporters = frps["frp-par"]["exporters"]
    assert [e["pe"] for e in exporters] == ["par-pe1", "par-pe2"]
    # synthetic_partials: one drop per PE in period 4, a gap of 2 on the first PE in period 3
    assert [e["dropped"] for e in exporters] == [1, 1]
    assert [e["gap"] for e in exporters] == [2, 0]
    assert exporters[0]["periods"] == PERIODS
    assert frps["frp-par"]["unresolved_bytes"] == {"no_route": 1e6 * (1 + 2 + 3 + 4 + 5)}
    volume = 0.0
    for k in range(PERIODS):
        body = mg.get("matrix", interval="always", period_start_ms=P0 + k * 300_000).json()
        volume += sum(r[body["columns"].index("bytes")] for r in body["rows"])
    assert got["unresolved_share"] == pytest.approx(got["unresolved_bytes"] / volume)


def test_series_is_the_statistics_history_and_pop_pop_sums_its_pe_pairs(mg: Filled) -> None:
    got = mg.get("series", interval="always", ingress="par-pe1", egress="lon-pe2").json()
    starts = [p["period_start_ms"] for p in got["periods"]]
    assert starts == [P0 + k * 300_000 for k in range(PERIODS)]
    for p in got["periods"]:
        rows = mg.get("matrix", interval="always", period_start_ms=p["period_start_ms"]).json()
        want = sum(r[3] for r in rows["rows"] if r[:2] == ["par-pe1", "lon-pe2"])
        assert p["bytes"] == pytest.approx(want)
        assert p["bps"] == pytest.approx(want * 8 / 300)
    pop = mg.get(
        "series", interval="always", ingress="PAR", egress="LON", granularity="pop_pop"
    ).json()
    first = mg.get("matrix", interval="always", period_start_ms=P0, granularity="pop_pop").json()
    want = sum(r[3] for r in first["rows"] if r[:2] == ["PAR", "LON"])
    assert pop["periods"][0]["bytes"] == pytest.approx(want)
    missing = mg.get("series", interval="always", ingress="par-pe1", egress="par-pe1")
    assert missing.status_code == 404


def test_routing_explain_answers_what_the_resolver_explains(mg: Filled) -> None:
    from flowmatrix.routing.tables import RoutingState

    pe = "par-pe1"
    state = read_native(mg.network, mg.config)
    vpn = (mg.network / "routing" / "vpn.csv").read_text().splitlines()[1].split(",")
    address = next(v.split("/")[0] for v in vpn if "/" in v)
    want = explain(state, pe, address)
    got = mg.get("routing/explain", pe=pe, address=address).json()
    assert got["lookups"] == [
        {
            "vrf": e.vrf,
            "rd": e.rd,
            "interfaces": e.interfaces,
            "prefix": e.prefix,
            "next_hops": e.next_hops,
            "egress": e.egress,
            "reason": e.reason,
        }
        for e in want
    ]
    assert want
    assert isinstance(state, RoutingState)
    assert mg.get("routing/explain", pe="nope", address=address).status_code == 404


def test_routing_explain_says_so_without_routing_tables(mg: Filled) -> None:
    with Store(":memory:") as store:
        client = AsgiClient(create_app(mg.config, store))
        token = store.add_token("op", "operator")
        answer = client.get(
            "/api/v1/routing/explain",
            params={"pe": "par-pe1", "address": "10.0.0.1"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 404
    assert "no routing tables" in answer.json()["error"]
