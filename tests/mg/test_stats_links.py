"""Link loads of every period on the MG's topology: history, forecasts and link alarms."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flowmatrix.capacity.topology import (
    Link,
    Node,
    ServiceNode,
    Topology,
    build_topology,
    dump_topology,
)
from flowmatrix.config.model import AlarmRule, NetworkConfig
from flowmatrix.matrix.partial import MEDIA_TYPE, PartialMeta, encode_partial
from flowmatrix.matrix.store import Store
from flowmatrix.mg import cli
from flowmatrix.mg.app import create_app
from flowmatrix.mg.auth import issue_tokens, read_token
from flowmatrix.mg.service import MgService
from flowmatrix.mg.stats import MgStats
from flowmatrix.mg.testing import AsgiClient, MgClient, partial_table

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"
P0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z
STEP = 300_000
CORE = "par-p1--lon-p1"
#: bytes in a 300 s period for 1 bit/s
BYTES_PER_BPS = 300 / 8


def partial(*items: tuple[str, str, str, float]) -> pa.Table:
    """Rows of (ingress, egress, class, bit/s over the 300 s period); in_if 3, no VRF, tos 0."""
    return partial_table((i, e, c, bps * BYTES_PER_BPS, 1.0) for i, e, c, bps in items)


def topology(core_bps: float = 1000.0) -> Topology:
    """par-pe1, par-pe2 — par-p1 — lon-p1 — lon-pe1; the core link carries ``core_bps``."""
    nodes = [
        Node("par-pe1", "PAR", "pe"),
        Node("par-pe2", "PAR", "pe"),
        Node("par-p1", "PAR"),
        Node("lon-p1", "LON"),
        Node("lon-pe1", "LON", "pe"),
    ]
    links = [
        Link("par-pe1--par-p1", "par-pe1", "par-p1", 10_000.0, 10, 10),
        Link("par-pe2--par-p1", "par-pe2", "par-p1", 10_000.0, 10, 10),
        Link(CORE, "par-p1", "lon-p1", core_bps, 10, 10),
        Link("lon-p1--lon-pe1", "lon-p1", "lon-pe1", 10_000.0, 10, 10),
    ]
    return build_topology(nodes, links, [ServiceNode("PAR"), ServiceNode("LON")])


def store_period(store: Store, frp: str, start: int, table: pa.Table) -> None:
    meta = PartialMeta(
        frp=frp, interval="always", period_start_ms=start, period_end_ms=start + STEP
    )
    assert store.put_partial(table, meta).status == "stored"


def put(stats: MgStats, frp: str, start: int, table: pa.Table) -> None:
    store_period(stats.store, frp, start, table)
    stats.observe("always", start)


def test_each_period_is_routed_on_the_topology_into_link_loads_in_bit_per_second(
    config: NetworkConfig,
) -> None:
    with Store(":memory:") as store:
        stats = MgStats(config, store, topology=topology())
        stats.start()
        # period 0: par-pe1 → lon-pe1 100 bit/s (two classes), par-pe2 → lon-pe1 50, back 20
        put(
            stats,
            "frp-par",
            P0,
            partial(
                ("par-pe1", "lon-pe1", "BE", 60.0),
                ("par-pe1", "lon-pe1", "EF", 40.0),
                ("par-pe2", "lon-pe1", "BE", 50.0),
                ("par-pe1", "unresolved", "BE", 999.0),
            ),
        )
        put(stats, "frp-lon", P0, partial(("lon-pe1", "par-pe2", "BE", 20.0)))
        put(stats, "frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 300.0)))
        east = stats.link_history("always", CORE)
        assert (east.src, east.dst, east.capacity_bps) == ("par-p1", "lon-p1", 1000.0)
        assert east.period_start_ms == [P0, P0 + STEP]
        # unresolved traffic reaches no link
        assert east.bps == pytest.approx([150.0, 300.0])
        west = stats.link_history("always", CORE, src="lon-p1")
        assert (west.src, west.dst) == ("lon-p1", "par-p1")
        assert west.bps == pytest.approx([20.0, 0.0])
        access = stats.link_history("always", "par-pe2--par-p1")
        assert (access.src, access.bps) == ("par-pe2", pytest.approx([50.0, 0.0]))
        with pytest.raises(LookupError, match="no link 'nope'"):
            stats.link_history("always", "nope")
        with pytest.raises(LookupError, match="leaving lon-pe1"):
            stats.link_history("always", CORE, src="lon-pe1")
    with Store(":memory:") as store:
        bare = MgStats(config, store)
        bare.start()
        with pytest.raises(LookupError, match="no topology"):
            bare.link_history("always", CORE)


def test_link_history_survives_a_restart_and_a_new_topology_rebuilds_it(
    config: NetworkConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "mg.duckdb"
    with Store(db) as store:
        stats = MgStats(config, store, topology=topology())
        stats.start()
        put(stats, "frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 100.0)))
        put(stats, "frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 200.0)))
        want = stats.link_history("always", CORE)
        stats.stop()
    caplog.set_level(logging.WARNING, logger="flowmatrix.mg.stats")
    with Store(db) as store:
        again = MgStats(config, store, topology=topology())
        again.start()
        assert caplog.text == ""
        assert again.link_history("always", CORE) == want
        # another link set is another topology: the loads are rebuilt from the store
        other = topology()
        other = build_topology(
            other.nodes,
            [*other.links, Link("par-pe1--lon-pe1", "par-pe1", "lon-pe1", 10.0, 100, 100)],
            other.service_nodes,
        )
        rebuilt = MgStats(config, store, topology=other)
        rebuilt.start()
        assert "the service nodes, read-out periods or topology changed" in caplog.text
        assert rebuilt.link_history("always", CORE).bps == pytest.approx([100.0, 200.0])


# --- forecast and CLI ---------------------------------------------------------------------------


@pytest.fixture
def mg(config: NetworkConfig, tmp_path: Path) -> Iterator[tuple[AsgiClient, dict[str, str]]]:
    with Store(":memory:") as store:
        issue_tokens(store, config, tmp_path)
        tokens = {p.stem: read_token(p) for p in tmp_path.glob("*.token")}
        stats = MgStats(config, store, topology=topology())
        stats.start()
        for i in range(30):  # 100 + 20 i bit/s: 80 % of 1000 is reached at period 35
            store_period(
                store,
                "frp-par",
                P0 + i * STEP,
                partial(("par-pe1", "lon-pe1", "BE", 100.0 + 20 * i)),
            )
            stats.observe("always", P0 + i * STEP)
        yield AsgiClient(create_app(config, store, stats=stats)), tokens


def get(mg: tuple[AsgiClient, dict[str, str]], path: str, **params: object) -> httpx.Response:
    client, tokens = mg
    return client.request(
        "GET",
        f"/api/v1{path}",
        params=params,
        headers={"Authorization": f"Bearer {tokens['operator']}"},
    )


def test_link_forecast_says_when_the_link_crosses_80_percent_of_its_capacity(
    mg: tuple[AsgiClient, dict[str, str]],
) -> None:
    r = get(mg, "/forecast", interval="always", link=CORE, horizon=12)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["link"] == {"name": CORE, "src": "par-p1", "dst": "lon-p1", "capacity_bps": 1000.0}
    assert (body["capacity_bps"], body["threshold"], body["history_periods"]) == (1000.0, 0.8, 30)
    first = body["forecast"][0]
    assert first["period_start_ms"] == P0 + 30 * STEP
    assert first["bps"] == pytest.approx(700.0, rel=0.02)
    assert first["utilization"] == pytest.approx(first["bps"] / 1000.0)
    assert abs(body["crossing_ms"] - (P0 + 35 * STEP)) <= STEP
    # the other direction carries nothing: never crosses
    back = get(mg, "/forecast", interval="always", link=CORE, src="lon-p1").json()
    assert (back["link"]["src"], back["crossing_ms"]) == ("lon-p1", None)
    # a lower threshold of a given capacity crosses earlier
    early = get(mg, "/forecast", interval="always", link=CORE, capacity_bps=1000, threshold=0.7)
    assert abs(early.json()["crossing_ms"] - (P0 + 30 * STEP)) <= STEP


def test_link_forecast_answers_404_and_422(mg: tuple[AsgiClient, dict[str, str]]) -> None:
    assert get(mg, "/forecast", interval="always", link="nope").status_code == 404
    both = get(mg, "/forecast", interval="always", link=CORE, ingress="par-pe1")
    assert both.status_code == 422
    assert get(mg, "/forecast", interval="always", ingress="par-pe1").status_code == 422
    assert get(mg, "/forecast", interval="always", src="par-p1").status_code == 422


def test_tm_forecast_link_prints_the_crossing(
    mg: tuple[AsgiClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: list[dict[str, Any]] = []

    monkeypatch.setattr(cli, "_fetch", MgClient(*mg).fetcher(asked))
    args = ["forecast", "--mg", "http://mg", "--token-file", str(tmp_path / "operator.token")]
    shown = CliRunner().invoke(cli.tm_app, [*args, "--link", CORE])
    assert shown.exit_code == 0, shown.output
    assert (asked[0]["link"], asked[0]["threshold"], asked[0]["ingress"]) == (CORE, 0.8, None)
    assert f"forecast link {CORE} par-p1 > lon-p1 (1kbit/s)" in shown.output
    assert "80 % of capacity: crosses at 2027-01-15T" in shown.output
    neither = CliRunner().invoke(cli.tm_app, args)
    assert neither.exit_code == 2


# --- link alarms --------------------------------------------------------------------------------


def test_link_rules_raise_and_clear_on_utilization_and_bit_rate(
    config: NetworkConfig, caplog: pytest.LogCaptureFixture
) -> None:
    hot = AlarmRule(
        "hot-core", "link", "utilization", 0.5, src="par-p1", hold_down=dt.timedelta(minutes=5)
    )
    idle = AlarmRule("idle", "link", "bps", 1.0, op="below", src="lon-p1", dst="par-p1")
    ruled = dataclasses.replace(config, alarms=(hot, idle))
    with Store(":memory:") as store:
        stats = MgStats(ruled, store, topology=topology())
        stats.start()
        put(stats, "frp-par", P0, partial(("par-pe1", "lon-pe1", "BE", 600.0)))
        # 60 % on par-p1 → lon-p1: pending for 5 minutes; the idle reverse direction raises now
        assert [(a.rule, a.key) for a in stats.active_alarms()] == [
            ("idle", f"{CORE}:lon-p1>par-p1")
        ]
        put(stats, "frp-par", P0 + STEP, partial(("par-pe1", "lon-pe1", "BE", 550.0)))
        active = {a.rule: a for a in stats.active_alarms()}
        assert active["hot-core"].key == f"{CORE}:par-p1>lon-p1"
        assert active["hot-core"].value == pytest.approx(0.55)
        assert active["hot-core"].since_ms == P0 + 2 * STEP
        # traffic back (FRP lon only): the reverse direction is busy, the core direction idle;
        # idle clears at once, hot-core after 5 minutes below
        put(stats, "frp-lon", P0 + 2 * STEP, partial(("lon-pe1", "par-pe1", "BE", 5.0)))
        assert [a.rule for a in stats.active_alarms()] == ["hot-core"]
        put(stats, "frp-lon", P0 + 3 * STEP, partial(("lon-pe1", "par-pe1", "BE", 5.0)))
        assert stats.active_alarms() == []
    # without a topology the link rules are skipped, with a log line
    caplog.set_level(logging.INFO, logger="flowmatrix.mg.stats")
    with Store(":memory:") as store:
        MgStats(ruled, store).start()
    assert "rule=hot-core link rules need a topology" in caplog.text


@pytest.mark.e2e
def test_mg_serve_with_a_topology_forecasts_its_links(tmp_path: Path) -> None:
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(dump_topology(topology())))
    service = MgService(
        VALID,
        tmp_path / "mg.duckdb",
        port=0,
        issue_tokens=tmp_path,
        topology=path,
        log_level="warning",
    )
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}/api/v1"
        frp = read_token(tmp_path / "frp-par.token")
        for i in range(6):
            start = P0 + i * STEP
            meta = PartialMeta(
                frp="frp-par", interval="always", period_start_ms=start, period_end_ms=start + STEP
            )
            table = partial(("par-pe1", "lon-pe1", "BE", 100.0 * (i + 1)))
            r = httpx.put(
                f"{url}/partials/frp-par/always/{start}",
                content=encode_partial(table, meta),
                headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {frp}"},
                timeout=10,
            )
            assert r.json()["status"] == "stored"
        operator = read_token(tmp_path / "operator.token")
        r = httpx.get(
            f"{url}/forecast",
            params={"interval": "always", "link": CORE, "horizon": 4},
            headers={"Authorization": f"Bearer {operator}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["history_periods"] == 6
        # 100 … 600 bit/s, rising by 100: 800 bit/s is period 7
        assert body["forecast"][0]["bps"] == pytest.approx(700.0, rel=0.05)
        assert abs(body["crossing_ms"] - (P0 + 7 * STEP)) <= STEP
    finally:
        service.stop()
