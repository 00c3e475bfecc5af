"""Run flowmatrix end to end on one machine: a generated network measured by real processes.

The demo generates a network and its customer traffic, starts one MG and one
FRP per service node as real processes on loopback (:mod:`flowmatrix.loopback`),
replays every PE's traffic through pmacct's ``nfprobe`` exporter to its FRP,
waits until the MG holds a complete total matrix for every read-out period,
and compares that matrix with the generator's ground truth. The synthetic
network's links are sized to the demo's few Mbit/s (:func:`link_scale`): the
MG's capacity check of the busiest read-out period then finds the busiest
link over its 80 % threshold, and the demo computes the rerouting plan that
brings it back under. With
``serve=True`` the network stays up after the run, so the MG's dashboard
(``/ui/``) shows it until :func:`serve_dashboard` is interrupted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowmatrix.capacity.demands import Demands, make_demands
from flowmatrix.capacity.report import plan_report, plans_for, to_json
from flowmatrix.capacity.routing import route
from flowmatrix.capacity.topology import Topology, load_topology
from flowmatrix.config.model import NetworkConfig
from flowmatrix.loopback import Loopback
from flowmatrix.matrix.plot import heatmap
from flowmatrix.synth import generate_network, generate_traffic, write_network

__all__ = [
    "DEMO_INTERVAL",
    "DEMO_LINK_UTILIZATION",
    "DEMO_START",
    "CapacityStory",
    "DemoResult",
    "compare",
    "link_scale",
    "run_demo",
    "serve_dashboard",
    "total",
]

#: the demo's traffic starts at this fixed time, so runs are reproducible
DEMO_START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
#: the interval whose matrix the demo shows (continuous: every period counts)
DEMO_INTERVAL = "always"
#: the demo's links are sized so that its traffic, at its average rate, loads the busiest
#: link to this utilization: over the 80 % threshold, with room for a rerouting plan
DEMO_LINK_UTILIZATION = 0.9

Step = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CapacityStory:
    """The MG's capacity check of the busiest read-out period, and a plan when it fails."""

    #: start of the busiest read-out period, ISO UTC text
    period: str
    threshold: float
    max_utilization: float
    #: the busiest directed link, ``src → dst``
    busiest: str
    #: directed links over the threshold
    over: int
    #: the recommended rerouting plan (None when nothing is over the threshold)
    plan_method: str | None = None
    plan_feasible: bool = False
    plan_changes: int = 0
    plan_max_utilization: float = 0.0


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run produced: its configuration, matrices, comparison and files."""

    config: NetworkConfig
    #: PE-to-PE matrix from the MG summed over classes and periods
    matrix: pa.Table
    #: the same from the generator's ground truth
    truth: pa.Table
    #: per (ingress, egress): MG bytes, truth bytes, difference
    difference: pa.Table
    #: read-out periods the MG reported, with their status
    periods: list[dict[str, object]]
    files: dict[str, Path]
    seconds: dict[str, float]
    mg_url: str
    #: the network, still running when the demo was asked to serve (else stopped)
    network: Loopback | None = None
    #: capacity of the busiest read-out period (None when the run did not get that far)
    capacity: CapacityStory | None = None
    #: the factor applied to the generated network's capacities (see :func:`link_scale`)
    link_scale: float = 1.0

    @property
    def dashboard_url(self) -> str:
        """Where the MG serves the dashboard."""
        return f"{self.mg_url}/ui/"


def total(matrix: pa.Table, column: str) -> int:
    """The sum of one column of a matrix."""
    return round(pc.sum(matrix[column]).as_py() or 0)


def compare(measured: pa.Table, truth: pa.Table) -> pa.Table:
    """Per (ingress, egress): measured and true bytes and their difference, largest first."""
    keys = ["ingress", "egress"]
    m = measured.group_by(keys).aggregate([("bytes", "sum")]).rename_columns([*keys, "measured"])
    t = truth.group_by(keys).aggregate([("bytes", "sum")]).rename_columns([*keys, "truth"])
    joined = m.join(t, keys, join_type="full outer")
    measured_b = pc.fill_null(pc.cast(joined["measured"], pa.float64()), 0.0)
    truth_b = pc.fill_null(pc.cast(joined["truth"], pa.float64()), 0.0)
    diff = pc.subtract(measured_b, truth_b)
    table = pa.table(
        {
            "ingress": joined["ingress"],
            "egress": joined["egress"],
            "measured": measured_b,
            "truth": truth_b,
            "difference": diff,
            "abs": pc.abs(diff),
        }
    )
    return table.sort_by([("abs", "descending"), ("ingress", "ascending")]).drop_columns("abs")


def _demands(matrix: pa.Table, seconds: float) -> Demands:
    """A matrix's ``ingress, egress, bytes`` over ``seconds`` as demands in bit/s (pairs summed)."""
    return make_demands(
        matrix["ingress"].to_numpy(zero_copy_only=False),
        matrix["egress"].to_numpy(zero_copy_only=False),
        np.asarray(matrix["bytes"].to_numpy(), dtype=np.float64) * 8 / seconds,
    )


def link_scale(topology: Topology, truth: pa.Table, seconds: float, utilization: float) -> float:
    """The factor on every capacity that makes ``truth``, at its average rate over
    ``seconds``, load the busiest link of ``topology`` to ``utilization``: ``1/N`` with
    ``N`` rounded to two significant digits.

    >>> from flowmatrix.capacity.topology import Link, Node, build_topology
    >>> t = build_topology([Node("a", "A"), Node("b", "B")], [Link("ab", "a", "b", 1e9, 1, 1)])
    >>> truth = pa.table({"ingress": ["a"], "egress": ["b"], "bytes": [1_250_000]})  # 10 Mbit
    >>> link_scale(t, truth, seconds=10, utilization=0.5)  # 1 Mbit/s on 2 Mbit/s
    0.002
    """
    busiest = route(topology, _demands(truth, seconds)).max_utilization
    if not busiest > 0:
        return 1.0
    divisor = utilization / busiest
    digits = int(np.floor(np.log10(divisor))) - 1
    return float(1 / round(divisor, -digits))


def _capacity_story(net: Loopback, topology: Topology, out: Path) -> CapacityStory:
    """Ask the MG to check the busiest period; plan a rerouting (TE tunnels) when it fails."""
    response = net.get("capacity/check", interval=DEMO_INTERVAL, period="busy")
    response.raise_for_status()
    check = response.json()
    (out / "capacity_check.json").write_text(to_json(check))
    links = check["links"]
    busiest = max(links, key=lambda x: x["utilization"]) if links else None
    story = CapacityStory(
        period=check["period"]["start"],
        threshold=check["threshold"],
        max_utilization=check["max_utilization"],
        busiest=f"{busiest['src']} → {busiest['dst']}" if busiest else "-",
        over=sum(1 for x in links if x["over"]),
    )
    if not check["exceeded"]:
        return story
    period = check["period"]
    matrix = net.matrix(DEMO_INTERVAL, period_start_ms=int(period["start_ms"]))
    demands = _demands(matrix, period["seconds"])
    plans = plans_for(topology, demands, method="paths", threshold=check["threshold"])
    report = plan_report(plans, topology)
    (out / "capacity_plan.json").write_text(to_json(report))
    return replace(
        story,
        plan_method=report["method"],
        plan_feasible=report["feasible"],
        plan_changes=len(report["changes"]),
        plan_max_utilization=report["after_max_utilization"],
    )


def run_demo(
    out: Path,
    *,
    size: str = "tiny",
    seed: int = 1,
    flows: int = 20_000,
    duration_s: int = 180,
    readout_s: int = 60,
    step: Step = lambda _: None,
    keep: Callable[[Loopback], None] | None = None,
    serve: bool = False,
    stats_detail: bool = True,
) -> DemoResult:
    """Measure a generated network with a real MG, FRPs and exporters on loopback.

    ``keep``, when given, is called with the running network before it is
    stopped. With ``serve`` the network is left running: the result's
    ``network`` holds it, and :func:`serve_dashboard` (or its ``stop()``)
    ends it. ``stats_detail`` False runs the MG without the if_pe and vrf
    statistics (``mg serve --no-stats-detail``).
    """
    seconds: dict[str, float] = {}
    files: dict[str, Path] = {}

    def timed(name: str, message: str) -> Callable[[], None]:
        step(message)
        began = time.perf_counter()
        return lambda: seconds.__setitem__(name, time.perf_counter() - began)

    done = timed("network", f"generating a {size} network (seed {seed})")
    network_dir = out / "network"
    network = generate_network(size, seed)
    write_network(network, network_dir)
    done()

    done = timed("traffic", f"generating {flows:,} customer flows entering every PE")
    traffic_dir = out / "traffic"
    generate_traffic(
        network_dir, traffic_dir, seed=seed, flows=flows, start=DEMO_START, duration_s=duration_s
    )
    truth = pacsv.read_csv(traffic_dir / "truth" / "pe_pe.csv")
    done()

    done = timed("links", "sizing the links to the demo's traffic")
    scale = link_scale(
        load_topology(network_dir / "topology.json"), truth, duration_s, DEMO_LINK_UTILIZATION
    )
    write_network(network.with_capacity_scale(scale), network_dir)
    topology = load_topology(network_dir / "topology.json")
    done()

    since = int(DEMO_START.timestamp() * 1000)
    until = since + duration_s * 1000
    with ExitStack() as running:
        net = running.enter_context(
            Loopback(network_dir, out / "run", readout_seconds=readout_s, stats_detail=stats_detail)
        )
        done = timed("start", "starting the MG and one FRP per service node")
        net.start()
        done()
        done = timed("export", "replaying every PE's traffic through pmacct nfprobe (IPFIX)")
        pes = net.replay_all(traffic_dir)
        done()
        done = timed("periods", "waiting for every read-out period to be complete")
        periods = net.wait_complete(
            DEMO_INTERVAL,
            since,
            until,
            timeout=90,
            settled_s=1.5,
            progress=lambda k, n: step(f"read-out periods complete: {k}/{n} ({len(pes)} PEs)"),
        )
        done()
        done = timed("matrix", "querying the total matrix and drawing it")
        matrix = net.matrix(DEMO_INTERVAL, granularity="pe_pe", since_ms=since, until_ms=until)
        if keep is not None:
            keep(net)
        mg_url = net.mg_url
        pe_pe = (
            matrix.group_by(["ingress", "egress"])
            .aggregate([("bytes", "sum"), ("packets", "sum")])
            .rename_columns(["ingress", "egress", "bytes", "packets"])
            .sort_by([("bytes", "descending"), ("ingress", "ascending"), ("egress", "ascending")])
        )
        files["matrix_csv"] = out / "matrix_pe_pe.csv"
        pacsv.write_csv(pe_pe, files["matrix_csv"])
        files["matrix_parquet"] = out / "matrix_pe_pe.parquet"
        pq.write_table(pe_pe, files["matrix_parquet"])
        files["heatmap"] = heatmap(
            np.asarray(pe_pe["ingress"]),
            np.asarray(pe_pe["egress"]),
            np.asarray(pe_pe["bytes"]),
            out / "matrix_pe_pe.png",
            title=f"{net.config.name}: PE-to-PE bytes measured by the MG",
        )
        files["truth"] = traffic_dir / "truth" / "pe_pe.csv"
        files["mg_db"] = net.db
        files["logs"] = net.logs
        done()
        done = timed("capacity", "checking the busiest read-out period's link loads")
        capacity = _capacity_story(net, topology, out)
        files["capacity_check"] = out / "capacity_check.json"
        if capacity.plan_method is not None:
            files["capacity_plan"] = out / "capacity_plan.json"
        done()
        if serve:
            running.pop_all()  # the caller stops it (serve_dashboard)
    return DemoResult(
        config=net.config,
        matrix=pe_pe,
        truth=truth,
        difference=compare(pe_pe, truth),
        periods=periods,
        files=files,
        seconds=seconds,
        mg_url=mg_url,
        network=net if serve else None,
        capacity=capacity,
        link_scale=scale,
    )


def _until_interrupted() -> None:
    while True:
        time.sleep(3600)


def serve_dashboard(
    result: DemoResult,
    say: Callable[[str], None],
    *,
    wait: Callable[[], None] = _until_interrupted,
) -> None:
    """Say where the dashboard is and how to log in, then keep the network up until interrupted.

    ``wait`` blocks until the user is done (Ctrl-C: KeyboardInterrupt); every
    process of the demo's network is stopped afterwards.
    """
    net = result.network
    if net is None:
        msg = "the demo's network is not running (run_demo(serve=True) keeps it)"
        raise ValueError(msg)
    try:
        say(f"dashboard: {result.dashboard_url}")
        say(f"log in with the operator token in {net.tokens / 'operator.token'}")
        say("serving the MG and the FRPs until interrupted (Ctrl-C)")
        wait()
    except KeyboardInterrupt:
        say("interrupted: stopping the MG and the FRPs")
    finally:
        net.stop()
