"""The ``flowmatrix`` command: parse options, load inputs, call one package function, render.

No logic lives here beyond rendering; every command calls into a package.
Exit codes (docs/cli.md): 0 success, 1 the answer is "no" (invalid
configuration, threshold exceeded, failed check, the MG's error answer),
2 usage (typer's own, unusable output names, unreadable token files, an
unreachable MG).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flowmatrix import __version__
from flowmatrix.frp.cli import frp_app
from flowmatrix.mg.cli import mg_app, print_whole, tm_app

if TYPE_CHECKING:
    from flowmatrix.config.model import NetworkConfig
    from flowmatrix.demo import CapacityStory

app = typer.Typer(
    name="flowmatrix",
    help="Measure MPLS/IP VPN traffic matrices from NetFlow/IPFIX and check capacity.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Check and inspect XML configurations.", no_args_is_help=True)
synth_app = typer.Typer(
    help="Generate networks and traffic with ground truth.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(synth_app, name="synth")

out = Console()
err = Console(stderr=True)


@contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, off when stderr is no terminal: ``advance(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        f"[bold]{what}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = bar.add_task(what, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance


@contextmanager
def _status(what: str) -> Iterator[Callable[[str], None]]:
    """A spinner with a status line on stderr, off when stderr is no terminal: ``say(text)``."""
    if not err.is_terminal:
        yield lambda _: None
        return
    with err.status(what) as status:
        yield lambda text: status.update(text)


def _version(value: bool) -> None:
    if value:
        out.print(f"flowmatrix {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Measure MPLS/IP VPN traffic matrices from NetFlow/IPFIX and check capacity."""


# --- config ------------------------------------------------------------------------------------


@config_app.command("validate")
def config_validate(
    files: Annotated[list[Path], typer.Argument(help="XML configuration files (one network).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Check configuration files; exit 0 when valid, else one line per problem and exit 1."""
    config = _load_or_exit(files, as_json=as_json)
    if as_json:
        counts = {
            "service_nodes": len(config.service_nodes),
            "frps": len(config.frps),
            "pes": len(config.pes),
            "intervals": len(config.intervals),
        }
        _print_json({"valid": True, "network": config.name, "asn": config.asn, **counts})
        return
    out.print(
        f"valid: network {config.name} (AS{config.asn}): "
        f"{len(config.service_nodes)} service nodes, {len(config.frps)} FRPs, "
        f"{len(config.pes)} PEs, {len(config.intervals)} intervals",
        markup=False,
        highlight=False,
    )


def _print_json(value: object) -> None:
    """``value`` as indented JSON on stdout (addresses and other objects as text)."""
    out.print_json(json.dumps(value, default=str))


def _load_or_exit(files: list[Path], *, as_json: bool = False) -> NetworkConfig:
    from flowmatrix.config.xml import load_config
    from flowmatrix.errors import ConfigError

    try:
        return load_config(files)
    except ConfigError as exc:
        if as_json:
            from dataclasses import asdict

            _print_json({"valid": False, "problems": [asdict(p) for p in exc.problems]})
            raise typer.Exit(1) from None
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@config_app.command("show")
def config_show(
    files: Annotated[list[Path], typer.Argument(help="XML configuration files (one network).")],
    frp: Annotated[str | None, typer.Option(help="Show only what this FRP's view holds.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole configuration model as JSON.")
    ] = False,
) -> None:
    """Summarize a configuration: service nodes, FRPs, PEs, classes and intervals."""
    from flowmatrix.config.render import config_tables

    config = _load_or_exit(files)
    if frp is not None:
        config = _view_or_exit(config, frp)
    if as_json:
        from dataclasses import asdict

        _print_json(asdict(config))
        return
    for table in config_tables(config):
        print_whole(out, table)


@config_app.command("view")
def config_view(
    files: Annotated[list[Path], typer.Argument(help="XML configuration files (one network).")],
    frp: Annotated[str, typer.Option(help="The FRP whose view to write.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; stdout if absent.")
    ] = None,
) -> None:
    """Write the configuration one FRP downloads (its PEs in full, other PEs remote) as XML."""
    from flowmatrix.config.xml import config_to_bytes, write_config

    view = _view_or_exit(_load_or_exit(files), frp)
    if output is None:
        sys.stdout.buffer.write(config_to_bytes(view))
    else:
        write_config(view, output)


@app.command("demo")
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for every file the demo writes.")
    ] = Path("demo-out"),
    size: Annotated[str, typer.Option(help="Network size: tiny or medium.")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the generated network and traffic.")] = 1,
    flows: Annotated[int, typer.Option(help="Customer flows to generate.")] = 20_000,
    duration: Annotated[
        int, typer.Option(help="Seconds of traffic (read-out periods of --readout seconds).")
    ] = 180,
    readout: Annotated[int, typer.Option(help="Read-out period of the demo, seconds.")] = 60,
    top: Annotated[int, typer.Option(help="Matrix elements to print.")] = 15,
    no_serve: Annotated[
        bool,
        typer.Option(
            "--no-serve", help="Exit when done instead of serving the dashboard until Ctrl-C."
        ),
    ] = False,
) -> None:
    """Run a whole network on loopback (MG, FRPs, pmacct exporters) and print its matrix.

    Then serve the MG's dashboard until interrupted (unless --no-serve).
    """
    from flowmatrix.demo import run_demo, serve_dashboard, total
    from flowmatrix.errors import FlowmatrixError

    if out_dir.exists() and any(out_dir.iterdir()):
        import shutil

        shutil.rmtree(out_dir)
    try:
        with out.status("starting") as status:
            result = run_demo(
                out_dir,
                size=size,
                seed=seed,
                flows=flows,
                duration_s=duration,
                readout_s=readout,
                step=status.update,
                serve=not no_serve,
            )
    except FlowmatrixError as exc:
        err.print(f"demo failed: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    for name, took in result.seconds.items():
        out.print(f"  {name:<8} {took:6.2f} s", highlight=False)
    complete = sum(1 for p in result.periods if p["status"] == "complete")
    out.print(
        f"read-out periods: {complete} of {len(result.periods)} complete "
        f"(MG was at {result.mg_url})",
        highlight=False,
    )
    matrix = result.matrix
    table = Table(title=f"PE-to-PE traffic matrix, largest {top} of {matrix.num_rows} elements")
    for column in ("ingress", "egress", "bytes", "packets", "share"):
        table.add_column(
            column, justify="right" if column in ("bytes", "packets", "share") else "left"
        )
    all_bytes = total(matrix, "bytes")
    for row in matrix.slice(0, top).to_pylist():
        share = f"{100 * row['bytes'] / all_bytes:.1f} %" if all_bytes else "-"
        table.add_row(
            row["ingress"],
            row["egress"],
            f"{row['bytes']:,.0f}",
            f"{row['packets']:,.0f}",
            share,
        )
    print_whole(out, table)
    out.print(f"total {all_bytes:,} bytes, {total(matrix, 'packets'):,} packets", highlight=False)
    worst = result.difference.slice(0, 1).to_pylist()
    if worst and worst[0]["difference"]:
        w = worst[0]
        rel = abs(w["difference"]) / w["truth"] if w["truth"] else float("inf")
        out.print(
            f"largest difference from the ground truth: {w['difference']:+,.0f} bytes "
            f"({w['ingress']} → {w['egress']}, {100 * rel:.3f} % of {w['truth']:,.0f})",
            highlight=False,
        )
    else:
        out.print(
            f"largest difference from the ground truth: 0 bytes "
            f"(all {result.difference.num_rows} elements equal)",
            highlight=False,
        )
    if result.capacity is not None:
        _say_capacity(result.capacity, result.link_scale)
    for name, path in result.files.items():
        out.print(f"  {name:<15} {path}", highlight=False)
    if result.network is not None:
        serve_dashboard(result, lambda line: out.print(line, highlight=False))


def _say_capacity(story: CapacityStory, scale: float) -> None:
    """The demo's capacity check and rerouting plan, in a few lines."""
    say = functools.partial(out.print, highlight=False)
    say(f"capacity: links sized to the demo's traffic (generated capacities ÷ {1 / scale:,.0f})")
    links = "link" if story.over == 1 else "links"
    say(
        f"busiest read-out period {story.period}: {story.busiest} at "
        f"{100 * story.max_utilization:.1f} % (threshold {100 * story.threshold:.0f} %), "
        f"{story.over} directed {links} over"
    )
    if story.plan_method is not None:
        verdict = "brings" if story.plan_feasible else "cannot bring"
        changes = "change" if story.plan_changes == 1 else "changes"
        say(
            f"rerouting plan ({story.plan_method}, {story.plan_changes} {changes}) {verdict} "
            f"the busiest link to {100 * story.plan_max_utilization:.1f} %"
        )


def _view_or_exit(config: NetworkConfig, frp: str) -> NetworkConfig:
    try:
        return config.view_for_frp(frp)
    except KeyError:
        known = ", ".join(f.name for f in config.frps)
        err.print(f"unknown FRP {frp!r}; the configuration has: {known}", markup=False)
        raise typer.Exit(1) from None


# --- capacity ----------------------------------------------------------------------------------

capacity_app = typer.Typer(
    help="Route a matrix over the IGP topology: adequacy, failure what-ifs, rerouting plans.",
    no_args_is_help=True,
)
app.add_typer(capacity_app, name="capacity")

if TYPE_CHECKING:
    from rich.console import RenderableType

    from flowmatrix.capacity.report import CapacityInputs

TopologyOpt = Annotated[
    Path,
    typer.Option(
        "--topology", help="Topology: native .json/.yaml, Zoo .graphml, SNDlib, REPETITA .graph."
    ),
]
MatrixOpt = Annotated[
    Path,
    typer.Option(
        "--matrix",
        help="Matrix: .csv/.parquet (ingress, egress, bps|bytes+seconds), SNDlib, .demands.",
    ),
]
ThresholdOpt = Annotated[
    float, typer.Option("--threshold", help="Utilization above which capacity is short.")
]
StatisticOpt = Annotated[
    str, typer.Option("--statistic", help="Reduce several periods: busy-hour, peak, p95 or mean.")
]
ClassOpt = Annotated[str | None, typer.Option("--class", help="Only this service class.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _capacity_inputs(
    topology: Path, matrix: Path, statistic: str, traffic_class: str | None
) -> CapacityInputs:
    from flowmatrix.capacity.report import load_inputs
    from flowmatrix.errors import CapacityError

    try:
        return load_inputs(topology, matrix, statistic=statistic, traffic_class=traffic_class)
    except CapacityError as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _render(items: list[RenderableType]) -> None:
    for item in items:
        if isinstance(item, str):
            out.print(item, markup=False, highlight=False)
        elif isinstance(item, Table):
            print_whole(out, item)
        else:
            out.print(item)


@capacity_app.command("check")
def capacity_check(
    topology: TopologyOpt,
    matrix: MatrixOpt,
    threshold: ThresholdOpt = 0.8,
    statistic: StatisticOpt = "busy-hour",
    traffic_class: ClassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Links and service nodes over threshold; exit 1 when any is, 0 otherwise."""
    from flowmatrix.capacity import check_capacity
    from flowmatrix.capacity.report import check_report, check_tables, to_json

    topo, demands = _capacity_inputs(topology, matrix, statistic, traffic_class)
    result = check_capacity(topo, demands, threshold=threshold)
    if as_json:
        sys.stdout.write(to_json(check_report(result)))
    else:
        _render(check_tables(result))
    raise typer.Exit(1 if result.exceeded else 0)


@capacity_app.command("whatif")
def capacity_whatif(
    topology: TopologyOpt,
    matrix: MatrixOpt,
    threshold: ThresholdOpt = 0.8,
    statistic: StatisticOpt = "busy-hour",
    traffic_class: ClassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every single link, router and SRLG failure: worst utilization per link; exit 1 if over."""
    from flowmatrix.capacity import failure_sweep
    from flowmatrix.capacity.report import to_json, whatif_report, whatif_tables

    topo, demands = _capacity_inputs(topology, matrix, statistic, traffic_class)
    with _progress("failures") as advance:
        result = failure_sweep(topo, demands, progress=advance)
    if as_json:
        sys.stdout.write(to_json(whatif_report(result, threshold=threshold)))
    else:
        _render(whatif_tables(result, threshold=threshold))
    raise typer.Exit(1 if result.max_utilization > threshold else 0)


@capacity_app.command("plan")
def capacity_plan(
    topology: TopologyOpt,
    matrix: MatrixOpt,
    threshold: ThresholdOpt = 0.8,
    statistic: StatisticOpt = "busy-hour",
    traffic_class: ClassOpt = None,
    method: Annotated[
        str, typer.Option(help="paths (TE tunnels, LP), metrics (IGP weights) or both.")
    ] = "both",
    k: Annotated[int, typer.Option("--k", help="Candidate paths per demand for the LP.")] = 4,
    time_limit: Annotated[float, typer.Option(help="Seconds for the metric search.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed of the metric search.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """A rerouting plan (TE tunnels or IGP metrics) with before/after; exit 1 if none fits."""
    from flowmatrix.capacity.report import plan_report, plan_tables, plans_for, to_json
    from flowmatrix.errors import CapacityError

    topo, demands = _capacity_inputs(topology, matrix, statistic, traffic_class)
    try:
        with _status("planning") as say:
            plans = plans_for(
                topo,
                demands,
                method=method,
                threshold=threshold,
                k=k,
                time_limit=time_limit,
                seed=seed,
                progress=say,
            )
    except CapacityError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    report = plan_report(plans, topo)
    if as_json:
        sys.stdout.write(to_json(report))
    else:
        _render(plan_tables(plans, topo))
    raise typer.Exit(0 if report["feasible"] else 1)


@capacity_app.command("plot")
def capacity_plot(
    topology: TopologyOpt,
    matrix: MatrixOpt,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="Directory for topology.png, utilization-cdf.png and capacity.html."
        ),
    ],
    threshold: ThresholdOpt = 0.8,
    statistic: StatisticOpt = "busy-hour",
    traffic_class: ClassOpt = None,
) -> None:
    """Draw the topology coloured by link utilization and the utilization CDF (PNG and HTML)."""
    from flowmatrix.capacity.plot import plot_capacity

    topo, demands = _capacity_inputs(topology, matrix, statistic, traffic_class)
    for written in plot_capacity(topo, demands, out_dir, threshold=threshold):
        out.print(str(written), markup=False, highlight=False)


# --- synth -------------------------------------------------------------------------------------


@synth_app.command("network")
def synth_network(
    size: Annotated[str, typer.Option(help="tiny, medium or large.")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the generator (same seed, same files).")] = 1,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write into.")] = Path(
        "synth-network"
    ),
) -> None:
    """Generate a network: configuration XML, topology and routing tables."""
    import time

    from flowmatrix.errors import SynthError
    from flowmatrix.synth import generate_network, write_network

    began = time.perf_counter()
    try:
        with err.status(f"generating a {size} network (seed {seed})"):
            net = generate_network(size, seed)
        with err.status(f"writing {out_dir}"):
            counts = write_network(net, out_dir)
    except SynthError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    seconds = time.perf_counter() - began
    out.print(
        f"{size} network (seed {seed}) in {out_dir} in {seconds:.1f} s: "
        f"{counts['service_nodes']} service nodes, {counts['pes']} PEs, {counts['vrfs']} VRFs, "
        f"{counts['sites']} sites, {counts['attachments']} attachments, "
        f"{counts['vpn_routes']} VPN routes ({counts['vpnv6_routes']} VPNv6), "
        f"{counts['global_routes']} global routes",
        markup=False,
        highlight=False,
    )
    out.print(
        "files: network.xml, topology.json, routing/manifest.json, synth/manifest.json",
        markup=False,
        highlight=False,
    )


@synth_app.command("traffic")
def synth_traffic(
    network: Annotated[Path, typer.Option(help="Directory written by `synth network`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write into.")] = Path(
        "synth-traffic"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the traffic.")] = 1,
    flows: Annotated[int, typer.Option(help="Number of flows.")] = 2000,
    start: Annotated[
        str, typer.Option(help="ISO 8601 start time (UTC when no offset is given).")
    ] = "2026-01-05T08:00:00Z",
    duration: Annotated[int, typer.Option(help="Seconds of traffic.")] = 600,
) -> None:
    """Generate customer traffic: one pcap per ingress PE, ground-truth matrices."""
    import datetime as dt
    import time

    from flowmatrix.errors import SynthError
    from flowmatrix.synth import generate_traffic

    try:
        begin = dt.datetime.fromisoformat(start)
    except ValueError:
        err.print(f"--start: not an ISO 8601 time: {start!r}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=dt.UTC)
    began = time.perf_counter()
    try:
        with err.status(f"generating {flows} flows"):
            summary = generate_traffic(
                network, out_dir, seed=seed, flows=flows, start=begin, duration_s=duration
            )
    except SynthError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    seconds = time.perf_counter() - began
    out.print(
        f"{summary.flows} flows, {summary.packets} packets, {summary.bytes} bytes "
        f"into {len(summary.pcaps)} pcaps under {out_dir / 'pcap'} in {seconds:.1f} s",
        markup=False,
        highlight=False,
    )
    cases = ", ".join(f"{name} {count}" for name, count in summary.cases.items())
    out.print(f"egress cases: {cases}", markup=False, highlight=False)
    out.print(
        f"truth: {summary.truth}/flows.parquet, pe_pe.csv, pop_pop.csv, if_pe.csv, vrf.csv; "
        f"pmacct pre_tag maps: {out_dir / 'pmacct'}",
        markup=False,
        highlight=False,
    )


# --- flows ---------------------------------------------------------------------------------------

flows_app = typer.Typer(
    help="Decode NetFlow v5/v9/IPFIX exports from a capture or live.", no_args_is_help=True
)
app.add_typer(flows_app, name="flows")

if TYPE_CHECKING:
    from flowmatrix.flows.stats import DecodeStats
    from flowmatrix.schema import FlowBatch


def _flow_rows(batch: FlowBatch, limit: int) -> None:
    import datetime as dt

    from flowmatrix.flows.files import text_table

    rows = text_table(batch.take(slice(0, limit))).to_pylist()
    line = "{:<23} {:>8} {:>5} {:>45} {:>45} {:>5} {:>3} {:>8} {:>10} {}"
    out.print(
        line.format(
            "Date first seen (UTC)",
            "Duration",
            "Proto",
            "Src IP Addr:Port",
            "Dst IP Addr:Port",
            "In",
            "ToS",
            "Packets",
            "Bytes",
            "Exporter/Domain",
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for r in rows:
        first = dt.datetime.fromtimestamp(r["start_ms"] / 1000, dt.UTC)
        out.print(
            line.format(
                first.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                f"{(r['end_ms'] - r['start_ms']) / 1000:.3f}",
                r["protocol"],
                f"{r['src']}:{r['src_port']}",
                f"{r['dst']}:{r['dst_port']}",
                r["in_if"],
                r["tos"],
                r["packets"],
                r["bytes"],
                f"{r['exporter']}/{r['source_id']}",
            ),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _flow_summary(batch: FlowBatch, stats: DecodeStats) -> dict[str, object]:
    return {
        "flows": len(batch),
        "bytes": int(batch["bytes"].sum()),
        "packets": int(batch["packets"].sum()),
        "datagrams": sum(stats.datagrams.values()),
        "dropped": stats.by_reason(),
        "template_misses": sum(stats.template_misses.values()),
    }


def _flow_totals(batch: FlowBatch, stats: DecodeStats) -> None:
    s = _flow_summary(batch, stats)
    out.print(
        f"Summary: flows: {s['flows']}, bytes: {s['bytes']}, packets: {s['packets']}, "
        f"datagrams: {s['datagrams']}, dropped: {s['dropped'] or 0}, "
        f"template misses: {s['template_misses']}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@flows_app.command("read")
def flows_read(
    capture: Annotated[Path, typer.Argument(help="pcap or pcapng capture of export datagrams.")],
    output: Annotated[
        Path | None, typer.Option(help="Write the records to F.csv or F.parquet.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Only UDP datagrams sent to this port.")] = None,
    limit: Annotated[int, typer.Option(help="Rows shown without --output.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the first --limit records and the totals as JSON.")
    ] = False,
) -> None:
    """Decode the NetFlow v5/v9/IPFIX datagrams of a capture; print them or write a file."""
    from flowmatrix.errors import DecodeError
    from flowmatrix.flows import Decoder, udp_datagrams
    from flowmatrix.flows.files import write_batch

    if output is not None and output.suffix not in (".csv", ".parquet"):
        err.print(f"--output: use .csv or .parquet, not {output.name}", markup=False)
        raise typer.Exit(2)
    decoder = Decoder()
    try:
        with _status(f"decoding {capture}"):
            batch = decoder.decode(udp_datagrams(capture, port=port))
    except (DecodeError, OSError) as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    if output is not None:
        write_batch(batch, output)
    if as_json:
        from flowmatrix.flows.files import text_table

        rows = [] if output is not None else text_table(batch.take(slice(0, limit))).to_pylist()
        _print_json({"records": rows, "summary": _flow_summary(batch, decoder.stats)})
        return
    if output is not None:
        out.print(f"{len(batch)} flow records into {output}", markup=False, highlight=False)
    else:
        _flow_rows(batch, limit)
    _flow_totals(batch, decoder.stats)


@flows_app.command("listen")
def flows_listen(
    port: Annotated[int, typer.Option(help="UDP port to listen on.")] = 2055,
    address: Annotated[
        list[str] | None, typer.Option(help="Address to bind (repeatable; default 0.0.0.0 and ::).")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    exporter: Annotated[
        list[str] | None, typer.Option(help="Accept only this exporter (repeatable).")
    ] = None,
) -> None:
    """Receive exports over UDP and show the decoded records live, with counters."""
    import time

    from flowmatrix.flows.collector import CollectorConfig, collect
    from flowmatrix.flows.decoder import Decoder
    from flowmatrix.schema import FlowBatch

    hosts = address or ["0.0.0.0", "::"]
    config = CollectorConfig(
        listen=tuple((h, port) for h in hosts),
        exporters=frozenset(exporter) if exporter else None,
    )
    deadline = time.monotonic() + seconds if seconds is not None else None

    def done(total: int) -> bool:
        return (count is not None and total >= count) or (
            deadline is not None and time.monotonic() >= deadline
        )

    decoder = Decoder()
    seen: list[FlowBatch] = []
    err.print(f"listening on UDP port {port} ({', '.join(hosts)})", markup=False)
    try:
        for batch in collect(config, until=done, decoder=decoder):
            seen.append(batch)
            _flow_rows(batch, 20)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    _flow_totals(FlowBatch.concat(seen), decoder.stats)


# --- routing -----------------------------------------------------------------------------------

routing_app = typer.Typer(
    help="Load, check and look up routing tables (RD and BGP tables per PE).",
    no_args_is_help=True,
)
app.add_typer(routing_app, name="routing")


@routing_app.command("load")
def routing_load(
    directory: Annotated[Path, typer.Argument(help="Network directory (network.xml, routing/).")],
) -> None:
    """Load routing tables and print, per PE, its versions, VRFs and routes."""
    from flowmatrix.errors import FlowmatrixError
    from flowmatrix.routing import read_native, summarize
    from flowmatrix.routing.native import iso_time

    try:
        with _status(f"reading {directory}"):
            state = read_native(directory)
            rows = summarize(state)
    except FlowmatrixError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    out.print("pe\tversions\ttaken_at\tvrfs\tinterfaces\troutes\tlocal", highlight=False)
    for r in rows:
        out.print(
            f"{r.pe}\t{r.versions}\t{iso_time(r.taken_at_ms)}\t{r.vrfs}\t{r.interfaces}"
            f"\t{r.routes}\t{r.local_prefixes}",
            markup=False,
            highlight=False,
        )
    rr = len(state.rr_versions)
    paths = sum(len(v.vpn) + len(v.global_bgp) for v in state.rr_versions)
    out.print(
        f"{len(rows)} PEs, route reflector: {rr} version(s), {paths} paths",
        markup=False,
        highlight=False,
    )


@routing_app.command("validate")
def routing_validate(
    directory: Annotated[Path, typer.Argument(help="Network directory (network.xml, routing/).")],
) -> None:
    """Check every routing table; one line per problem (file:line), exit 1 if any."""
    from flowmatrix.routing import validate_native

    with _status(f"checking {directory}"):
        found = validate_native(directory)
    for line in found:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if found:
        raise typer.Exit(1)
    out.print(f"{directory}: routing tables valid", markup=False, highlight=False)


@routing_app.command("show")
def routing_show(
    pe: Annotated[str, typer.Argument(help="PE name.")],
    network: Annotated[
        Path | None, typer.Option("--network", help="Network directory (or --mg).")
    ] = None,
    vrf: Annotated[str | None, typer.Option("--vrf", help="Only this VRF.")] = None,
    lookup: Annotated[
        str | None, typer.Option("--lookup", help="Destination address to resolve.")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Time (ISO 8601) whose tables to use.")
    ] = None,
    bmp_snapshot: Annotated[
        Path | None,
        typer.Option(
            "--bmp-snapshot",
            help="Live routing snapshot directory (the FRP's DATA/bmp-snapshot): its route "
            "reflector view replaces the native one.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the VRFs or the explanations as JSON.")
    ] = False,
    mg: Annotated[
        str | None,
        typer.Option(
            "--mg",
            help="Ask this MG instead of reading files (with --lookup and --token-file): it "
            "explains with the tables the FRPs send it.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Operator token file (with --mg).")
    ] = None,
) -> None:
    """Show a PE's VRFs, or why a destination leaves where it does (VRF, RD, prefix, next hop)."""
    from flowmatrix.errors import FlowmatrixError
    from flowmatrix.routing import explain, read_native
    from flowmatrix.routing.native import iso_time, parse_time_ms

    if mg is not None:
        _explain_at_mg(mg, token_file, pe, lookup, vrf=vrf, at=at, as_json=as_json)
        return
    if network is None:
        err.print("error: give --network DIR (or --mg URL)", markup=False)
        raise typer.Exit(2)
    try:
        state = read_native(network, pes=[pe])
        at_ms = parse_time_ms(at) if at else None
        if bmp_snapshot is not None:
            from flowmatrix.routing.live import read_snapshot

            live = read_snapshot(bmp_snapshot, state.config)
            state.rr_versions = []
            state.add_rr(live)
            (err if as_json else out).print(
                f"bmp snapshot {bmp_snapshot}: taken_at={iso_time(live.taken_at_ms)} "
                f"vpn_paths={len(live.vpn)} global_paths={len(live.global_bgp)}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            if at_ms is None:
                at_ms = max([live.taken_at_ms, *state.version_times(pe)])
    except (FlowmatrixError, ValueError) as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    version = state.in_force(pe, at_ms) if at_ms is not None else None
    if version is None:
        versions = state.pe_versions.get(pe, [])
        version = versions[-1] if versions and at_ms is None else None
    if version is None:
        err.print(f"no routing tables for PE {pe!r} at that time", markup=False)
        raise typer.Exit(1)
    if lookup is None:
        rd = version.rd
        vrfs = []
        for name in dict.fromkeys(rd.vrf):
            if vrf is not None and name != vrf:
                continue
            i = rd.vrf.index(name)
            vrfs.append(
                {
                    "vrf": name,
                    "rd": rd.rd[i],
                    "interfaces": [
                        x for x, v in zip(rd.if_index.tolist(), rd.vrf, strict=True) if v == name
                    ],
                    "import": sorted(rd.import_rts[i]),
                    "export": sorted(rd.export_rts[i]),
                }
            )
        if as_json:
            _print_json(vrfs)
            return
        out.print("vrf\trd\tinterfaces\timport\texport", highlight=False)
        for v in vrfs:
            out.print(
                f"{v['vrf'] or '(global)'}\t{v['rd'] or '-'}"
                f"\t{','.join(map(str, v['interfaces']))}"
                f"\t{' '.join(v['import']) or '-'}\t{' '.join(v['export']) or '-'}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return
    found = explain(state, pe, lookup, vrf=vrf, at_ms=at_ms)
    if not found:
        err.print(f"nothing to look up: unknown VRF or bad address {lookup!r}", markup=False)
        raise typer.Exit(1)
    if as_json:
        _print_json([asdict(e) for e in found])
        return
    for e in found:
        _explanation_line(asdict(e))


def _explanation_line(e: dict[str, Any]) -> None:
    """One VRF's answer of ``routing show --lookup`` as one line."""
    out.print(
        f"vrf={e['vrf'] or '(global)'} rd={e['rd'] or '-'} interfaces={','.join(e['interfaces'])} "
        f"prefix={e['prefix'] or '-'} next_hop={','.join(e['next_hops']) or '-'} "
        f"egress={','.join(e['egress'])} reason={e['reason']}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _explain_at_mg(
    mg: str,
    token_file: Path | None,
    pe: str,
    lookup: str | None,
    *,
    vrf: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """``routing show --mg``: the MG's ``/routing/explain`` answer, printed as the files' one."""
    from flowmatrix.mg.cli import _fetch
    from flowmatrix.routing.native import parse_time_ms

    if lookup is None or token_file is None:
        err.print("error: --mg needs --lookup ADDRESS and --token-file F", markup=False)
        raise typer.Exit(2)
    try:
        at_ms = parse_time_ms(at) if at else None
    except ValueError as exc:
        err.print(f"error: --at: {exc}", markup=False)
        raise typer.Exit(2) from None
    params = {"pe": pe, "address": lookup, "vrf": vrf, "at_ms": at_ms}
    body, _ = _fetch(mg, token_file, params, path="routing/explain")
    found = json.loads(body)["lookups"]
    if not found:
        err.print(f"nothing to look up: unknown VRF or bad address {lookup!r}", markup=False)
        raise typer.Exit(1)
    if as_json:
        _print_json(found)
        return
    for e in found:
        _explanation_line(e)


# --- doctor ------------------------------------------------------------------------------------

_MARK = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]", "skip": "skip"}


@app.command("doctor")
def doctor(
    config: Annotated[
        Path | None, typer.Option("--config", help="Configuration file or directory to check.")
    ] = None,
    mg: Annotated[
        str | None, typer.Option("--mg", help="Base URL of the MG, e.g. http://127.0.0.1:8080.")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Bearer token to try (FRP or operator).")
    ] = None,
    frp: Annotated[
        str | None, typer.Option("--frp", help="The token is this FRP's; exporters are its PEs'.")
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="UDP HOST:PORT to listen on for exporters' datagrams."),
    ] = None,
    frp_metrics: Annotated[
        str | None,
        typer.Option("--frp-metrics", help="A running FRP's /metrics URL: are records flowing?"),
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", min=0.1, help="Seconds to watch for exporter traffic.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check configuration, MG reachability and token, clock skew, receive buffer and exporters.

    Exit code 1 when any check failed; warnings alone exit 0.
    """
    import json
    from dataclasses import asdict

    from flowmatrix.doctor import run_checks
    from flowmatrix.mg.auth import read_token

    where = None
    if listen is not None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            err.print(f"--listen {listen!r}: expected HOST:PORT", markup=False)
            raise typer.Exit(2)
        where = (host.strip("[]"), int(port))
    token = read_token(token_file) if token_file is not None else None
    checks = run_checks(
        config=config,
        mg=mg,
        token=token,
        frp=frp,
        listen=where,
        frp_metrics=frp_metrics,
        seconds=wait,
    )
    if as_json:
        out.print_json(json.dumps([asdict(c) for c in checks]))
    else:
        table = Table("check", "", "detail", box=None, pad_edge=False)
        for c in checks:
            table.add_row(c.name, _MARK[c.status], c.detail)
        out.print(table)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


# --- the two roles and queries (their commands live beside them) ------------------------------

app.add_typer(frp_app, name="frp")
app.add_typer(mg_app, name="mg")
app.add_typer(tm_app, name="tm")


def main() -> None:
    """Entry point of the ``flowmatrix`` console script."""
    app()
