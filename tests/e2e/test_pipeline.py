"""The whole pipeline with real processes: MG, FRPs and pmacct exporters on loopback.

Unsampled runs must reproduce the generator's ground truth exactly at every
granularity; sampled runs must land within the error the MG reports.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from flowmatrix.addr import format_addresses
from flowmatrix.config.xml import load_config
from flowmatrix.demo import DEMO_INTERVAL, DEMO_START
from flowmatrix.loopback import Loopback, free_port
from flowmatrix.routing.native import read_native
from flowmatrix.routing.resolve import explain
from flowmatrix.synth import generate_network, generate_traffic, write_network

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("pmacctd") is None, reason="pmacct is not installed"),
]

DURATION_S = 120
SINCE = int(DEMO_START.timestamp() * 1000)
UNTIL = SINCE + DURATION_S * 1000

#: granularity → the MG's key columns and the truth's flow columns they come from
GRANULARITIES = {
    "pe_pe": {"ingress": "ingress_pe", "egress": "egress_pe", "class": "class"},
    "pop_pop": {"ingress": "ingress_node", "egress": "egress_node", "class": "class"},
    "if_pe": {
        "ingress": "ingress_pe",
        "if_index": "ingress_if_index",
        "egress": "egress_pe",
        "class": "class",
    },
    "vrf": {"vrf": "vrf", "ingress": "ingress_pe", "egress": "egress_pe", "class": "class"},
}


def truth_matrix(network: tuple[Path, Path], granularity: str) -> pa.Table:
    """The ground truth at one granularity, as pmacct's nfprobe can report it.

    nfprobe (pmacct 1.7.7) exports an IPv6 flow's traffic class as 0, so the
    truth's IPv6 flows count in the class of DSCP 0 — as softflowd's do.
    """
    flows = pq.read_table(network[1] / "truth" / "flows.parquet")
    zero_class = load_config([network[0] / "network.xml"]).dscp_classes()[0]
    klass = pc.if_else(pc.equal(flows["ip_version"], 6), zero_class, flows["class"])
    flows = flows.set_column(flows.schema.get_field_index("class"), "class", klass)
    columns = GRANULARITIES[granularity]
    grouped = flows.group_by(list(columns.values())).aggregate(
        [("bytes", "sum"), ("packets", "sum")]
    )
    return grouped.rename_columns([*columns, "bytes", "packets"])


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pipeline")
    write_network(generate_network("tiny", seed=2), root / "network")
    generate_traffic(
        root / "network", root / "traffic", seed=2, flows=3_000, start=DEMO_START,
        duration_s=DURATION_S,
    )  # fmt: skip
    return root / "network", root / "traffic"


def wait_routing(net: Loopback, frps: int, timeout: float = 30) -> dict[str, object]:
    """Wait until ``frps`` FRPs have sent their routing tables to the MG; its /routing."""
    deadline = time.monotonic() + timeout
    while True:
        body = net.get("routing").json()
        if len(body["frps"]) >= frps and body["compiled"]:
            return dict(body)
        assert time.monotonic() < deadline, f"routing tables not at the MG: {body}"
        time.sleep(0.2)


def cells(table: pa.Table, keys: tuple[str, ...]) -> Counter[tuple[object, ...]]:
    """(keys..., 'bytes'|'packets') → value, rounded to integers, zero cells left out."""
    out: Counter[tuple[object, ...]] = Counter()
    cols = [table[k].to_pylist() for k in keys]
    for value in ("bytes", "packets"):
        for *key, v in zip(*cols, table[value].to_pylist(), strict=True):
            if round(v):
                out[(*[str(k) for k in key], value)] += round(v)
    return out


def scrape(url: str) -> Counter[str]:
    """A /metrics page as 'name{label="v",...}' → value (counters summed over nothing else)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: Counter[str] = Counter()
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


@pytest.fixture(scope="module")
def unsampled_run(
    network: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, pa.Table], dict[str, tuple[Counter[str], Counter[str]]]]:
    """Matrices at every granularity, and each role's metrics before and after the traffic."""
    network_dir, traffic = network
    with Loopback(network_dir, tmp_path_factory.mktemp("run")) as net:
        net.start_mg()
        metrics = {"mg": f"{net.mg_url}/metrics"}
        for name in net.frp_names():
            port = free_port()
            net.start_frp(name, extra=("--metrics", f"127.0.0.1:{port}"))
            metrics[name] = f"http://127.0.0.1:{port}/metrics"
        before = {role: scrape(url) for role, url in metrics.items()}
        net.replay_all(traffic)
        net.wait_complete(DEMO_INTERVAL, SINCE, UNTIL, timeout=90, settled_s=1.5)
        matrices = {
            g: net.matrix(DEMO_INTERVAL, granularity=g, since_ms=SINCE, until_ms=UNTIL, klass=None)
            for g in GRANULARITIES
        }
        return matrices, {role: (before[role], scrape(url)) for role, url in metrics.items()}


@pytest.fixture(scope="module")
def unsampled(
    unsampled_run: tuple[dict[str, pa.Table], dict[str, tuple[Counter[str], Counter[str]]]],
) -> dict[str, pa.Table]:
    return unsampled_run[0]


def test_metrics_of_both_roles_move_with_the_traffic(
    unsampled_run: tuple[dict[str, pa.Table], dict[str, tuple[Counter[str], Counter[str]]]],
    network: tuple[Path, Path],
) -> None:
    scraped = unsampled_run[1]
    frps = [role for role in scraped if role != "mg"]
    assert len(frps) >= 2
    decoded = 0.0
    for frp in frps:
        before, after = scraped[frp]
        moved = {k: after[k] - before.get(k, 0.0) for k in after}
        # every record the FRP decoded reached its pipeline, and was written as ingress rows
        assert moved["flows_decoded_total"] > 0, frp
        assert 0 < moved["datagrams_received_total"] < moved["flows_decoded_total"], frp
        assert moved["frp_records_total"] == moved["flows_decoded_total"], frp
        assert moved["frp_ingress_rows_written_total"] >= moved["frp_records_total"], frp
        assert moved['frp_uploads_total{status="delivered"}'] >= 2, frp  # ≥ 2 one-minute periods
        assert moved["frp_upload_seconds_count"] >= moved['frp_uploads_total{status="delivered"}']
        assert after["frp_partials_pending"] == 0, frp
        decoded += moved["flows_decoded_total"]
    flows = pq.read_table(network[1] / "truth" / "flows.parquet").num_rows
    assert decoded >= flows  # an exporter may split a flow, never merge two
    before, after = scraped["mg"]
    delivered = sum(
        scraped[f][1]['frp_uploads_total{status="delivered"}']
        - scraped[f][0].get('frp_uploads_total{status="delivered"}', 0.0)
        for f in frps
    )
    mg_moved = {k: after[k] - before.get(k, 0.0) for k in after}
    assert (
        mg_moved['mg_uploads_total{status="stored"}']
        + mg_moved.get('mg_uploads_total{status="unchanged"}', 0.0)
        == delivered
    )
    assert mg_moved['mg_upload_bytes_total{kind="partial"}'] > 0
    # the traffic's periods are complete (wait_complete); a later, empty period may still wait
    # for an FRP's upload when scraped, so the gauge is only bounded by the periods stored
    stored = mg_moved['mg_uploads_total{status="stored"}']
    assert 0 <= after["mg_periods_incomplete"] < stored


@pytest.mark.parametrize("granularity", list(GRANULARITIES))
def test_unsampled_total_matrix_equals_the_ground_truth(
    granularity: str, unsampled: dict[str, pa.Table], network: tuple[Path, Path]
) -> None:
    keys = tuple(GRANULARITIES[granularity])
    assert cells(unsampled[granularity], keys) == cells(truth_matrix(network, granularity), keys)


def test_unsampled_class_sums_equal_the_truth_files(
    unsampled: dict[str, pa.Table], network: tuple[Path, Path]
) -> None:
    truth = pacsv.read_csv(network[1] / "truth" / "pe_pe.csv")
    measured = unsampled["pe_pe"]
    for column in ("bytes", "packets"):
        assert round(pc.sum(measured[column]).as_py()) == pc.sum(truth[column]).as_py()


def test_sampled_total_is_within_the_reported_error(
    network: tuple[Path, Path], tmp_path: Path
) -> None:
    network_dir, traffic = network
    with Loopback(network_dir, tmp_path) as net:
        net.start()
        net.replay_all(traffic, sampling=10)
        net.wait_complete(DEMO_INTERVAL, SINCE, UNTIL, timeout=90, settled_s=1.5)
        measured = net.matrix(DEMO_INTERVAL, granularity="pe_pe", since_ms=SINCE, until_ms=UNTIL)
    truth = pacsv.read_csv(traffic / "truth" / "pe_pe.csv")
    true_cells = cells(truth.group_by(["ingress", "egress"]).aggregate(
        [("bytes", "sum"), ("packets", "sum")]
    ).rename_columns(["ingress", "egress", "bytes", "packets"]), ("ingress", "egress"))  # fmt: skip
    total_true = sum(v for k, v in true_cells.items() if k[-1] == "bytes")
    total_measured = sum(measured["bytes"].to_pylist())
    total_err = sum(e**2 for e in measured["bytes_err95"].to_pylist()) ** 0.5
    assert total_err > 0
    assert abs(total_measured - total_true) <= total_err
    # per element: at least 80 % of the true values fall inside their 95 % interval
    rows = measured.to_pylist()
    inside = sum(
        abs(r["bytes"] - true_cells[(r["ingress"], r["egress"], "bytes")]) <= r["bytes_err95"]
        for r in rows
        if r["egress"] != "unresolved"
    )
    assert inside >= 0.8 * len(rows)


def test_mg_killed_during_uploads_loses_nothing(network: tuple[Path, Path], tmp_path: Path) -> None:
    network_dir, traffic = network
    with Loopback(network_dir, tmp_path) as net:
        net.start()
        pes = sorted(p.stem for p in (traffic / "pcap").glob("*.pcap"))
        first, rest = pes[: len(pes) // 2], pes[len(pes) // 2 :]
        net.replay_all(traffic, pes=first)
        net.kill("mg")  # SIGKILL while the FRPs are uploading
        net.replay_all(traffic, pes=rest)  # these partials can only be spooled
        net.start_mg()
        net.wait_complete(DEMO_INTERVAL, SINCE, UNTIL, timeout=90, settled_s=3)
        measured = net.matrix(DEMO_INTERVAL, granularity="pe_pe", since_ms=SINCE, until_ms=UNTIL,
                              klass=None)  # fmt: skip
    keys = tuple(GRANULARITIES["pe_pe"])
    assert cells(measured, keys) == cells(truth_matrix(network, "pe_pe"), keys)


@pytest.mark.parametrize(
    "mg_routing", [True, False], ids=["mg-has-the-files", "tables-only-from-the-frps"]
)
def test_centralized_mode_gives_the_distributed_matrix(
    network: tuple[Path, Path], unsampled: dict[str, pa.Table], tmp_path: Path, mg_routing: bool
) -> None:
    network_dir, traffic = network
    with Loopback(network_dir, tmp_path, mode="centralized", mg_routing=mg_routing) as net:
        net.start()
        if not mg_routing:  # the FRPs' routing bundles reach the MG before their records
            wait_routing(net, len(net.frp_names()))
        net.replay_all(traffic)
        net.wait_complete(DEMO_INTERVAL, SINCE, UNTIL, timeout=90, settled_s=1.5)
        central = {
            g: net.matrix(DEMO_INTERVAL, granularity=g, since_ms=SINCE, until_ms=UNTIL, klass=None)
            for g in ("pe_pe", "if_pe")
        }
        metrics = net.metrics()
    for granularity, table in central.items():
        keys = tuple(GRANULARITIES[granularity])
        assert cells(table, keys) == cells(unsampled[granularity], keys)
    assert 'mg_upload_bytes_total{kind="ingress"}' in metrics
    sent = [line for line in metrics.splitlines() if line.startswith("mg_upload_bytes_total{")]
    by_kind = {line.split('"')[1]: float(line.split()[-1]) for line in sent}
    assert by_kind["ingress"] > 0
    assert by_kind.get("partial", 0.0) == 0.0


def test_the_mg_explains_lookups_with_the_tables_the_frps_send(
    network: tuple[Path, Path], tmp_path: Path
) -> None:
    network_dir, _ = network
    state = read_native(network_dir)
    vpn = state.rr_versions[-1].vpn
    sample = format_addresses(vpn.family[::7], vpn.hi[::7], vpn.lo[::7]).to_pylist()
    with Loopback(network_dir, tmp_path, mg_routing=False) as net:
        net.start()
        body = wait_routing(net, len(net.frp_names()))
        answers = {
            (pe, address): net.get("routing/explain", pe=pe, address=address).json()["lookups"]
            for pe in state.pe_versions
            for address in sample[:12]
        }
        features = net.get("network").json()["features"]
        # an FRP stopped and started with the same tables sends an identical bundle: kept once
        name = net.frp_names()[0]
        net.kill_frp(name, signal.SIGTERM)
        net.start_frp(name)
        time.sleep(2)
        again = {f["frp"]: len(f["bundles"]) for f in net.get("routing").json()["frps"]}
    assert features["routing"] is True
    assert {f["frp"] for f in body["frps"]} == set(net.frp_names())  # type: ignore[index]
    assert again[name] == 1
    found = 0
    for (pe, address), lookups in answers.items():
        want = [
            {"vrf": e.vrf, "rd": e.rd, "interfaces": e.interfaces, "prefix": e.prefix,
             "next_hops": e.next_hops, "egress": e.egress, "reason": e.reason}
            for e in explain(state, pe, address)
        ]  # fmt: skip
        assert lookups == want, (pe, address)
        found += any(x["prefix"] for x in want)
    assert found > 10
