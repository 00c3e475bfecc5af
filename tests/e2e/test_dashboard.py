"""The dashboard in Debian's chromium (driven by Playwright) against a real MG process.

The MG runs as ``flowmatrix mg serve`` with the generated network's
configuration and topology (:class:`~flowmatrix.loopback.Loopback`) and is
filled through its real upload API with each FRP's partial matrices of twelve
read-out periods. Every page must load without a console error; what the
pages draw is compared with what the API answers. Screenshots go to
``$FLOWMATRIX_SCREENSHOTS`` (the docs' copies live in ``docs/img/``), else to
the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowmatrix.loopback import Loopback, synthetic_partials
from flowmatrix.matrix.partial import MEDIA_TYPE, encode_partial
from flowmatrix.routing.bundle import pack
from flowmatrix.routing.native import read_native
from flowmatrix.synth import generate_network, write_network

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
P0 = 1_800_000_000_000
PERIODS = 12
FAILED_LINK = "par-pe1--par-p1"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]

#: (fraction of the threshold, colour) of app.js's link colours; above the last: OVER
BUCKETS = [(0.25, "#1a9850"), (0.5, "#91cf60"), (0.75, "#fee08b"), (1.0, "#fc8d59")]
OVER, DOWN = "#d73027", "#9e9e9e"


def link_colour(utilization: float, threshold: float, down: bool = False) -> str:
    """The colour app.js gives a link (its worse direction's utilization)."""
    if down:
        return DOWN
    return next((c for share, c in BUCKETS if utilization <= share * threshold), OVER)


@dataclass
class Dashboard:
    url: str
    operator: str
    shots: Path
    net: Loopback
    errors: list[str] = field(default_factory=list)

    def api(self, path: str, **params: Any) -> Any:
        answer = httpx.get(
            f"{self.url}/api/v1/{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.operator}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    root = tmp_path_factory.mktemp("dashboard")
    write_network(generate_network("tiny", seed=1), root / "network")
    shots = Path(os.environ.get("FLOWMATRIX_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with Loopback(root / "network", root / "run", readout_seconds=None) as net:
        net.start_mg()
        for table, meta in synthetic_partials(
            net.config, interval="always", start_ms=P0, periods=PERIODS, seed=7
        ):
            answer = httpx.put(
                f"{net.mg_url}/api/v1/partials/{meta.frp}/always/{meta.period_start_ms}",
                content=encode_partial(table, meta),
                headers={
                    "Content-Type": MEDIA_TYPE,
                    "Authorization": f"Bearer {net.token(meta.frp)}",
                },
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
        # one FRP has sent its routing tables (the overview says so), the others not yet
        state = read_native(root / "network")
        answer = httpx.put(
            f"{net.mg_url}/api/v1/frps/frp-par/routing",
            content=pack(state, pes=[p.name for p in net.config.pes_of("frp-par")]),
            headers={
                "Content-Type": "application/gzip",
                "Authorization": f"Bearer {net.token('frp-par')}",
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        yield Dashboard(net.mg_url, net.token(), shots, net)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """A logged-in tab that records console errors and uncaught exceptions."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    dashboard.errors = errors
    tab.goto(f"{dashboard.url}/ui/#token={dashboard.operator}")
    tab.wait_for_selector("body[data-ready=overview]", timeout=20_000)
    yield tab
    tab.close()


def open_page(page: Any, name: str) -> float:
    """Go to one page of the dashboard; the seconds until it has drawn its data."""
    began = time.perf_counter()
    page.evaluate(f"location.hash = '#{name}'")
    page.wait_for_selector(f"body[data-ready={name}]", timeout=20_000)
    return time.perf_counter() - began


def test_overview_shows_periods_frps_exporters_and_alarms(page: Any, dashboard: Dashboard) -> None:
    assert page.inner_text("#network-name") == "synth-tiny (AS 65000)"
    intervals = page.locator("#ov-intervals tbody tr")
    assert intervals.count() == 3
    assert intervals.nth(0).inner_text().split("\t")[:7] == [
        "always", "continuous", "UTC", "300 s", "12", "12", "0",
    ]  # fmt: skip
    assert page.locator("#ov-periods tbody tr").count() == PERIODS
    frps = page.locator("#ov-frps tbody tr")
    assert [frps.nth(k).inner_text().split("\t")[0] for k in range(3)] == [
        "frp-par", "frp-lon", "frp-fra",
    ]  # fmt: skip
    routing = [frps.nth(k).inner_text().split("\t")[-1] for k in range(3)]
    assert routing[0].startswith("sent ")
    assert routing[1:] == ["none sent", "none sent"]
    api = dashboard.api("frps")
    exporters = [e for f in api["frps"] for e in f["exporters"]]
    assert page.locator("#ov-exporters tbody tr").count() == len(exporters) == 6
    # exporters that dropped datagrams or lost records are flagged
    assert page.locator("#ov-exporters tbody tr.bad").count() == sum(
        1 for e in exporters if e["dropped"] or e["gap"]
    )
    pct = 100 * api["unresolved_share"]
    share = f"{pct:#.2g} %" if 0 < pct < 1 else f"{pct:.1f} %"  # app.js's fmtPct
    assert share in page.inner_text("#ov-summary")
    assert "no alarm raised" in page.inner_text("#ov-alarms")
    page.screenshot(path=str(dashboard.shots / "overview.png"), full_page=True)
    assert dashboard.errors == []


@pytest.mark.parametrize(("view", "cells"), [("pe_pe", 30), ("pop_pop", 9)])
def test_heatmap_draws_one_cell_per_od_pair_with_the_api_values(
    page: Any, dashboard: Dashboard, view: str, cells: int
) -> None:
    open_page(page, "matrix")
    if view != "pe_pe":
        page.select_option("#tm-granularity", view)
        page.wait_for_function(
            f"() => window.fm.heatmap && window.fm.heatmap.cells.length === {cells}"
        )
    drawn = page.evaluate("window.fm.heatmap.cells")
    answer = dashboard.api("matrix", interval="always", granularity=view, **{"class": "all"})
    cols = answer["columns"]
    want = {
        (r[cols.index("ingress")], r[cols.index("egress")]): r[cols.index("bytes")]
        for r in answer["rows"]
    }
    assert len(drawn) == len(want) == cells
    assert {(c["ingress"], c["egress"]): c["value"] for c in drawn} == pytest.approx(want)
    assert page.inner_text("#tm-caption").startswith(f"{cells} cells")
    # the canvas holds a coloured pixel at every drawn cell
    lit = page.evaluate(
        """() => {
        const h = window.fm.heatmap, ctx = document.getElementById('tm-canvas').getContext('2d');
        return h.cells.filter((c) => {
            const i = h.rows.indexOf(c.ingress), j = h.columns.indexOf(c.egress);
            const x = h.layout.x0 + (j + 0.5) * h.layout.cell;
            const y = h.layout.y0 + (i + 0.5) * h.layout.cell;
            const [r, g, b, a] = ctx.getImageData(x, y, 1, 1).data;
            return a === 255 && !(r === 243 && g === 245 && b === 247);
        }).length;
    }"""
    )
    assert lit == cells
    page.screenshot(path=str(dashboard.shots / f"matrix-{view}.png"), full_page=True)
    assert dashboard.errors == []


def test_period_picker_and_bit_rate_show_that_period_s_rates(
    page: Any, dashboard: Dashboard
) -> None:
    start = P0 + 3 * 300_000
    open_page(page, "matrix")
    page.select_option("#tm-period", str(start))
    page.select_option("#tm-value", "bps")
    page.wait_for_function(
        f"() => window.fm.heatmap.value === 'bps' && window.fm.matrixAnswer.key.includes('{start}')"
    )
    drawn = page.evaluate("window.fm.heatmap.cells")
    answer = dashboard.api("matrix", interval="always", period_start_ms=start, **{"class": "all"})
    cols = answer["columns"]
    want = {
        (r[cols.index("ingress")], r[cols.index("egress")]): r[cols.index("bytes")] * 8 / 300
        for r in answer["rows"]
    }
    assert {(c["ingress"], c["egress"]): c["value"] for c in drawn} == pytest.approx(want)
    assert "1 period(s), complete" in page.inner_text("#tm-caption")
    assert dashboard.errors == []


def test_clicking_a_cell_opens_its_time_series(page: Any, dashboard: Dashboard) -> None:
    klass = dashboard.api("network")["classes"][0]  # synthetic_partials fills the first class
    open_page(page, "matrix")
    page.select_option("#tm-class", klass)
    page.wait_for_function("() => window.fm.heatmap && window.fm.heatmap.cells.length === 30")
    h = page.evaluate("window.fm.heatmap")
    i, j = h["rows"].index("par-pe1"), h["columns"].index("lon-pe2")
    box = page.locator("#tm-canvas").bounding_box()
    scale = box["width"] / page.evaluate("document.getElementById('tm-canvas').width")
    x = box["x"] + (h["layout"]["x0"] + (j + 0.5) * h["layout"]["cell"]) * scale
    y = box["y"] + (h["layout"]["y0"] + (i + 0.5) * h["layout"]["cell"]) * scale
    page.mouse.move(x, y)
    assert page.inner_text("#tm-tip").startswith("par-pe1 → lon-pe2: ")
    page.mouse.click(x, y)
    page.wait_for_function("() => window.fm.series && window.fm.series.egress === 'lon-pe2'")
    assert page.inner_text("#series-title") == f"par-pe1 → lon-pe2 ({klass}, always)"
    series = page.evaluate("window.fm.series")
    stats = dashboard.api("stats", interval="always", **{"class": klass})
    cols = stats["columns"]
    row = next(r for r in stats["rows"] if r[:3] == ["par-pe1", "lon-pe2", klass])
    assert series["mean"] == pytest.approx(row[cols.index("mean_bytes")])
    assert series["p95"] == pytest.approx(row[cols.index("p95_bytes")])
    history = dashboard.api(
        "series", interval="always", ingress="par-pe1", egress="lon-pe2", **{"class": klass}
    )
    assert [p["bytes"] for p in series["periods"]] == [p["bytes"] for p in history["periods"]]
    assert len(series["periods"]) == PERIODS
    forecast = dashboard.api(
        "forecast", interval="always", ingress="par-pe1", egress="lon-pe2", horizon=12,
        **{"class": klass},
    )  # fmt: skip
    assert series["forecast"]["forecast"] == forecast["forecast"]
    assert "Forecast: Holt–Winters" in page.inner_text("#series-note")
    page.locator("#series").scroll_into_view_if_needed()
    page.screenshot(path=str(dashboard.shots / "matrix-series.png"), full_page=True)
    assert dashboard.errors == []


def colours(page: Any) -> dict[str, str]:
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#topo-svg line.link')]"
        ".map((l) => [l.dataset.link, l.getAttribute('stroke')]))"
    )


def test_failure_toggle_recolours_exactly_the_links_the_whatif_names(
    page: Any, dashboard: Dashboard
) -> None:
    open_page(page, "topology")
    check = dashboard.api("capacity/check", interval="always")
    whatif = dashboard.api("capacity/whatif", interval="always", failure=f"link:{FAILED_LINK}")
    threshold = check["threshold"]

    def expected(links: list[dict[str, Any]]) -> dict[str, str]:
        worst: dict[str, float] = {}
        down: dict[str, bool] = {}
        for x in links:
            worst[x["link"]] = max(worst.get(x["link"], 0.0), x["utilization"])
            down[x["link"]] = down.get(x["link"], False) or bool(x.get("down"))
        return {k: link_colour(v, threshold, down[k]) for k, v in worst.items()}

    before = colours(page)
    assert before == expected(check["links"])
    page.screenshot(path=str(dashboard.shots / "topology.png"))
    page.select_option("#topo-failure", f"link:{FAILED_LINK}")
    page.wait_for_function(f"() => window.fm.topology.failure === 'link:{FAILED_LINK}'")
    after = colours(page)
    assert after == expected(whatif["links"])
    changed = {k for k in before if before[k] != after[k]}
    says = {k for k, v in expected(whatif["links"]).items() if v != expected(check["links"])[k]}
    assert changed == says
    assert FAILED_LINK in changed
    assert len(changed) >= 2  # the failed link and at least the one taking its traffic
    assert after[FAILED_LINK] == DOWN
    assert page.inner_text("#topo-table-title") == f"What-if: link:{FAILED_LINK}"
    rows = page.locator("#topo-links tbody tr")
    assert rows.count() == 2 * len(dashboard.api("capacity/topology")["links"])
    page.screenshot(path=str(dashboard.shots / "topology-failure.png"))
    page.select_option("#topo-failure", "")
    page.wait_for_function("() => window.fm.topology.failure === ''")
    assert colours(page) == before
    assert dashboard.errors == []


def test_an_interval_without_periods_says_so_without_errors(
    page: Any, dashboard: Dashboard
) -> None:
    open_page(page, "matrix")
    page.select_option("#tm-interval", "busy-hours")
    page.wait_for_function("() => window.fm.heatmap === null")
    assert page.inner_text("#tm-caption") == "No read-out period stored for this interval yet."
    open_page(page, "topology")
    page.select_option("#topo-interval", "migration-check")
    page.wait_for_function(
        "() => document.getElementById('topo-caption').textContent.startsWith('No read-out')"
    )
    open_page(page, "overview")
    page.select_option("#ov-interval", "busy-hours")
    page.wait_for_function(
        "() => document.getElementById('ov-periods').textContent.includes('no period stored')"
    )
    assert dashboard.errors == []


def test_routing_lookup_shows_what_the_resolver_explains(page: Any, dashboard: Dashboard) -> None:
    """The MG holds every PE's tables (the harness passes --routing): a lookup per VRF."""
    open_page(page, "routing")
    assert not page.is_visible("#rt-missing")
    pe = dashboard.api("network")["pes"][0]["name"]
    page.select_option("#rt-pe", pe)
    page.fill("#rt-address", "10.0.0.1")
    page.click("#rt-form button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('#rt-result tbody tr').length > 0")
    rows = page.eval_on_selector_all(
        "#rt-result tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    want = dashboard.api("routing/explain", pe=pe, address="10.0.0.1")["lookups"]
    assert want, "the synth PE has VRFs to explain"
    assert [r[0] for r in rows] == [e["vrf"] or "(global)" for e in want]
    assert [r[5] for r in rows] == [", ".join(e["egress"]) or "–" for e in want]
    assert [r[6] for r in rows] == [e["reason"] for e in want]
    page.screenshot(path=str(dashboard.shots / "routing.png"), full_page=True)
    assert dashboard.errors == []


def test_pages_load_quickly(page: Any, dashboard: Dashboard) -> None:
    took = {name: open_page(page, name) for name in ("matrix", "topology", "routing", "overview")}
    (dashboard.shots / "page-load.json").write_text(json.dumps(took, indent=1))
    assert max(took.values()) < 5.0, took
    assert dashboard.errors == []


@pytest.mark.parametrize("token", ["", "not-a-token", "frp"])
def test_a_missing_or_wrong_token_gets_the_login_page(
    browser: Any, dashboard: Dashboard, token: str
) -> None:
    tab = browser.new_page()
    try:
        if token == "frp":
            token = dashboard.net.token("frp-par")  # a real token, but not the operator's
        tab.goto(f"{dashboard.url}/ui/" + (f"#token={token}" if token else ""))
        tab.wait_for_selector("body[data-view=login]", timeout=20_000)
        assert tab.is_visible("#login-form")
        assert not tab.is_visible("#page")
        message = tab.inner_text("#login-error")
        assert message.startswith("The MG refused this token") if token else message == ""
        if token == "not-a-token":
            tab.screenshot(path=str(dashboard.shots / "login.png"))
        tab.fill("#token", dashboard.operator)
        tab.click("#login-form button")
        tab.wait_for_selector("body[data-ready=overview]", timeout=20_000)
        assert tab.is_visible("#overview")
    finally:
        tab.evaluate("sessionStorage.clear()")
        tab.close()


def big_network(directory: Path, pes: int) -> Path:
    """The tiny network's configuration with ``pes`` PEs spread over its three FRPs."""
    import dataclasses
    import ipaddress

    from flowmatrix.config.model import Exporter, PeRouter
    from flowmatrix.config.xml import load_config, write_config

    write_network(generate_network("tiny", seed=1), directory / "tiny")
    base = load_config([directory / "tiny" / "network.xml"])
    routers = []
    for i in range(pes):
        frp = base.frps[i % len(base.frps)]
        assert frp.service_node is not None
        routers.append(
            PeRouter(
                name=f"pe{i:03d}",
                loopback=ipaddress.ip_address(f"10.255.{i // 250}.{i % 250 + 1}"),
                service_node=frp.service_node,
                frp=frp.name,
                exporters=(
                    Exporter(ipaddress.ip_address(f"127.2.{i // 250}.{i % 250 + 1}"), i + 1),
                ),
            )
        )
    config = dataclasses.replace(base, pes=tuple(routers), external_next_hops=())
    (directory / "big").mkdir()
    write_config(config, directory / "big" / "network.xml")
    return directory / "big"


@pytest.mark.slow
def test_heatmap_of_500_by_500_pes_is_drawn_quickly(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import numpy as np
    import pyarrow as pa

    from flowmatrix.matrix.partial import PARTIAL_SCHEMA, PartialMeta

    n = 500
    root = tmp_path_factory.mktemp("big")
    shots = Path(os.environ.get("FLOWMATRIX_SCREENSHOTS") or root)
    with Loopback(big_network(root, n), root / "run", readout_seconds=None) as net:
        net.start_mg()
        names = np.array([f"pe{i:03d}" for i in range(n)])
        rng = np.random.default_rng(0)
        for k, frp in enumerate(net.config.frps):
            own = names[k :: len(net.config.frps)]
            ingress = np.repeat(own, n)
            volume = rng.lognormal(20, 1.5, ingress.size)
            columns = {
                "ingress_pe": ingress, "in_if": np.full(ingress.size, 1, np.uint32),
                "vrf": np.full(ingress.size, ""), "egress_pe": np.tile(names, own.size),
                "tos": np.zeros(ingress.size, np.uint8), "class": np.full(ingress.size, "be"),
                "bytes": volume, "packets": volume / 800, "flows": volume / 8000,
                "sampled_packets": volume / 800, "bytes_var": np.zeros(ingress.size),
                "packets_var": np.zeros(ingress.size),
            }  # fmt: skip
            table = pa.table(columns).cast(PARTIAL_SCHEMA)
            meta = PartialMeta(
                frp=frp.name, interval="always", period_start_ms=P0, period_end_ms=P0 + 300_000
            )
            answer = httpx.put(
                f"{net.mg_url}/api/v1/partials/{frp.name}/always/{P0}",
                content=encode_partial(table, meta),
                headers={
                    "Content-Type": MEDIA_TYPE,
                    "Authorization": f"Bearer {net.token(frp.name)}",
                },
                timeout=120,
            )
            assert answer.status_code == 200, answer.text
        tab = browser.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        try:
            tab.goto(f"{net.mg_url}/ui/#token={net.token()}")
            tab.wait_for_selector("body[data-ready=overview]", timeout=60_000)
            took = open_page(tab, "matrix")
            cells = tab.evaluate("window.fm.heatmap.cells.length")
            fetch_ms, draw_ms = tab.evaluate(
                "[window.fm.heatmap.fetchMs, window.fm.heatmap.drawMs]"
            )
            began = time.perf_counter()
            tab.select_option("#tm-value", "packets")
            tab.wait_for_function("() => window.fm.heatmap.value === 'packets'", timeout=60_000)
            redraw = time.perf_counter() - began
            tab.screenshot(path=str(shots / "matrix-500.png"))
        finally:
            tab.close()
    figures = {
        "page_s": took, "fetch_ms": fetch_ms, "draw_ms": draw_ms, "redraw_s": redraw, "cells": cells
    }  # fmt: skip
    (shots / "page-load-500.json").write_text(json.dumps(figures, indent=1))
    assert cells == n * n
    assert errors == []
    assert took < 20, figures
    assert redraw < 5, figures
