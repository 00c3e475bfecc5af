"""The MG's /capacity routes against the capacity package run by hand on the same matrix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from flowmatrix.capacity import check_capacity, load_topology, make_demands, route
from flowmatrix.capacity.topology import Topology, build_topology
from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import load_config
from flowmatrix.loopback import synthetic_partials
from flowmatrix.matrix.partial import MEDIA_TYPE, encode_partial
from flowmatrix.matrix.store import Store
from flowmatrix.mg.app import create_app
from flowmatrix.mg.testing import AsgiClient
from flowmatrix.synth import generate_network, write_network

P0 = 1_800_000_000_000
PERIODS = 6


@dataclass
class Filled:
    config: NetworkConfig
    topology: Topology
    client: AsgiClient
    operator: str
    frp: str

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.operator}"}
        return self.client.get(f"/api/v1/{path}", params=params, headers=headers)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("capacity-routes") / "network"
    write_network(generate_network("tiny", seed=3), root)
    return root


def fill(config: NetworkConfig, store: Store, client: AsgiClient) -> dict[str, str]:
    tokens = {f.name: store.add_token(f.name, "frp") for f in config.frps}
    for table, meta in synthetic_partials(
        config, interval="always", start_ms=P0, periods=PERIODS, seed=4
    ):
        answer = client.put(
            f"/api/v1/partials/{meta.frp}/always/{meta.period_start_ms}",
            content=encode_partial(table, meta),
            headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {tokens[meta.frp]}"},
        )
        assert answer.status_code == 200, answer.text
    return tokens


@pytest.fixture(scope="module")
def mg(network: Path) -> Iterator[Filled]:
    config = load_config([network / "network.xml"])
    topology = load_topology(network / "topology.json")
    with Store(":memory:") as store:
        client = AsgiClient(create_app(config, store, topology=topology))
        tokens = fill(config, store, client)
        yield Filled(config, topology, client, store.add_token("op", "operator"), tokens["frp-par"])


def demands_from_matrix(mg: Filled, start_ms: int, klass: str = "all") -> Any:
    """The period's demands in bit/s, built here from the /matrix answer."""
    answer = mg.get("matrix", interval="always", period_start_ms=start_ms, **{"class": klass})
    body = answer.json()
    cols = body["columns"]
    rows = body["rows"]
    bps = [r[cols.index("bytes")] * 8 / body["seconds"] for r in rows]
    return make_demands(
        [r[cols.index("ingress")] for r in rows], [r[cols.index("egress")] for r in rows], bps
    )


def by_arc(links: list[dict[str, Any]], key: str) -> dict[tuple[str, str, str], float]:
    return {(x["link"], x["src"], x["dst"]): x[key] for x in links}


def test_check_routes_the_busiest_period_in_bit_per_second(mg: Filled) -> None:
    volumes = {}
    for k in range(PERIODS):
        start = P0 + k * 300_000
        body = mg.get("matrix", interval="always", period_start_ms=start).json()
        volumes[start] = sum(r[body["columns"].index("bytes")] for r in body["rows"])
    busiest = max(volumes, key=lambda s: volumes[s])
    answer = mg.get("capacity/check", interval="always")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["period"]["start_ms"] == busiest
    assert got["period"]["busy"] is True
    assert got["period"]["status"] == "complete"
    assert got["period"]["seconds"] == 300.0
    expected = check_capacity(mg.topology, demands_from_matrix(mg, busiest))
    want = {(x.link, x.src, x.dst): x.utilization for x in expected.links}
    assert by_arc(got["links"], "utilization") == pytest.approx(want, rel=1e-9)
    assert got["max_utilization"] == pytest.approx(expected.max_utilization)
    assert got["max_utilization"] > 0.2  # the synthetic traffic loads the PE uplinks
    assert got["matrix"]["total_bps"] == pytest.approx(volumes[busiest] * 8 / 300)
    assert [n["name"] for n in got["service_nodes"]] == ["PAR", "LON", "FRA"]


def test_check_of_one_period_and_class_with_a_lower_threshold(mg: Filled) -> None:
    start = P0 + 2 * 300_000
    klass = sorted(set(mg.config.dscp_classes()))[0]
    got = mg.get(
        "capacity/check", interval="always", period=start, threshold=0.1, **{"class": klass}
    ).json()
    assert got["period"]["start_ms"] == start
    assert got["period"]["busy"] is False
    assert got["class"] == klass
    expected = check_capacity(mg.topology, demands_from_matrix(mg, start, klass), threshold=0.1)
    assert by_arc(got["links"], "utilization") == pytest.approx(
        {(x.link, x.src, x.dst): x.utilization for x in expected.links}
    )
    over = {(x.link, x.src, x.dst) for x in expected.links if x.over}
    assert over
    assert {k for k, v in by_arc(got["links"], "over").items() if v} == over
    assert got["exceeded"] is True


def test_whatif_of_a_link_failure_equals_routing_without_that_link(mg: Filled) -> None:
    failed = "par-pe1--par-p1"
    got = mg.get("capacity/whatif", interval="always", failure=failed).json()
    assert got["failure"] == {"label": f"link:{failed}", "kind": "link", "name": failed}
    start = got["period"]["start_ms"]
    demands = demands_from_matrix(mg, start)
    topo = mg.topology
    without = build_topology(
        topo.nodes, [x for x in topo.links if x.name != failed], topo.service_nodes
    )
    scratch = route(without, demands)
    want = {}
    for a in range(len(without.arcs)):
        src, dst = without.arc_ends(a)
        want[(without.links[a // 2].name, src, dst)] = float(scratch.utilization[a])
    util = by_arc(got["links"], "utilization")
    assert {k: v for k, v in util.items() if k[0] != failed} == pytest.approx(want, abs=1e-12)
    assert {k: v for k, v in by_arc(got["links"], "down").items() if v} == {
        (failed, "par-pe1", "par-p1"): True,
        (failed, "par-p1", "par-pe1"): True,
    }
    normal = mg.get("capacity/check", interval="always").json()
    assert by_arc(got["links"], "normal_utilization") == pytest.approx(
        by_arc(normal["links"], "utilization")
    )
    # the other uplink of par-pe1 takes its traffic
    assert (
        util[("par-pe1--lon-p1", "par-pe1", "lon-p1")]
        > by_arc(normal["links"], "utilization")[("par-pe1--lon-p1", "par-pe1", "lon-p1")]
    )
    assert got["disconnected"] == []


def test_whatif_of_a_router_reports_the_traffic_it_ends(mg: Filled) -> None:
    got = mg.get("capacity/whatif", interval="always", failure="node:par-pe1").json()
    assert got["failure"]["kind"] == "node"
    assert got["disconnected_bps"] > 0
    assert {d["reason"] for d in got["disconnected"]} == {"endpoint failed"}
    assert all("par-pe1" in (d["ingress"], d["egress"]) for d in got["disconnected"])
    assert np.isclose(
        sum(d["bps"] for d in got["disconnected"]), got["disconnected_bps"], rtol=1e-9
    )


def test_whatif_without_a_failure_sweeps_every_single_failure(mg: Filled) -> None:
    got = mg.get("capacity/whatif", interval="always").json()
    topo = mg.topology
    assert got["failures"] == len(topo.links) + len(topo.nodes) + len(topo.srlgs)
    assert got["max_utilization"] >= got["normal_max_utilization"] > 0
    assert {x["worst_failure"] for x in got["links"]} - {None} <= {
        s["failure"] for s in got["scenarios"]
    }


@pytest.mark.parametrize(
    ("path", "params", "status", "error"),
    [
        ("capacity/whatif", {"interval": "always", "failure": "nowhere"}, 404, "no link, router"),
        ("capacity/check", {"interval": "nope"}, 404, "unknown interval"),
        ("capacity/check", {"interval": "always", "period": "1"}, 404, "no partial stored"),
        ("capacity/check", {"interval": "always", "period": "noon"}, 422, "period"),
        ("capacity/check", {"interval": "always", "threshold": "0"}, 422, "threshold"),
        ("capacity/check", {"interval": "busy-hours"}, 404, "no partial stored"),
    ],
)
def test_capacity_routes_refuse_what_they_cannot_answer(
    mg: Filled, path: str, params: dict[str, str], status: int, error: str
) -> None:
    answer = mg.get(path, **params)
    assert answer.status_code == status
    assert error in answer.json()["error"]


def test_capacity_routes_need_an_operator_token(mg: Filled) -> None:
    assert mg.get("capacity/check", token=mg.frp, interval="always").status_code == 403
    assert mg.get("capacity/topology", token="wrong").status_code == 401


def test_capacity_routes_answer_404_without_a_topology(network: Path) -> None:
    config = load_config([network / "network.xml"])
    with Store(":memory:") as store:
        client = AsgiClient(create_app(config, store))
        operator = store.add_token("op", "operator")
        for path in ("capacity/topology", "capacity/check", "capacity/whatif"):
            answer = client.get(
                f"/api/v1/{path}",
                params={"interval": "always"},
                headers={"Authorization": f"Bearer {operator}"},
            )
            assert answer.status_code == 404
            assert answer.json() == {
                "error": "this MG has no topology (start it with mg serve --topology FILE)"
            }


def test_topology_route_lists_routers_links_and_srlgs(mg: Filled) -> None:
    got = mg.get("capacity/topology").json()
    assert [n["name"] for n in got["nodes"]] == [n.name for n in mg.topology.nodes]
    assert [(x["name"], x["a"], x["b"]) for x in got["links"]] == [
        (x.name, x.a, x.b) for x in mg.topology.links
    ]
    assert got["srlgs"] == sorted(mg.topology.srlgs)
