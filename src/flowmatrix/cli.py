"""The ``flowmatrix`` command: parse options, load inputs, call one package function, render.

No logic lives here beyond rendering; every command calls into a package.
Exit codes: 0 success, 1 a check failed (invalid configuration, threshold
exceeded), 2 usage error (typer's own).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from flowmatrix import __version__

if TYPE_CHECKING:
    from flowmatrix.config.model import NetworkConfig

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
) -> None:
    """Check configuration files; exit 0 when valid, else one line per problem and exit 1."""
    config = _load_or_exit(files)
    out.print(
        f"valid: network {config.name} (AS{config.asn}): "
        f"{len(config.service_nodes)} service nodes, {len(config.frps)} FRPs, "
        f"{len(config.pes)} PEs, {len(config.intervals)} intervals",
        markup=False,
        highlight=False,
    )


def _load_or_exit(files: list[Path]) -> NetworkConfig:
    from flowmatrix.config.xml import load_config
    from flowmatrix.errors import ConfigError

    try:
        return load_config(files)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@config_app.command("show")
def config_show(
    files: Annotated[list[Path], typer.Argument(help="XML configuration files (one network).")],
    frp: Annotated[str | None, typer.Option(help="Show only what this FRP's view holds.")] = None,
) -> None:
    """Summarize a configuration: service nodes, FRPs, PEs, classes and intervals."""
    from flowmatrix.config.render import config_tables

    config = _load_or_exit(files)
    if frp is not None:
        config = _view_or_exit(config, frp)
    for table in config_tables(config):
        out.print(table)


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
    top: Annotated[int, typer.Option(help="Matrix elements to print.")] = 15,
) -> None:
    """Run the system end to end on this machine and print and plot its traffic matrix."""
    from rich.table import Table

    from flowmatrix.config.render import config_tables
    from flowmatrix.demo import run_demo, total

    with out.status("starting") as status:
        result = run_demo(out_dir, size=size, seed=seed, flows=flows, step=status.update)
    for name, took in result.seconds.items():
        out.print(f"  {name:<8} {took:6.2f} s", highlight=False)
    for table in config_tables(result.config)[:2]:
        out.print(table)
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
            row["ingress"], row["egress"], f"{row['bytes']:,}", f"{row['packets']:,}", share
        )
    out.print(table)
    out.print(f"total {all_bytes:,} bytes, {total(matrix, 'packets'):,} packets", highlight=False)
    for name, path in result.files.items():
        out.print(f"  {name:<11} {path}", highlight=False)


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
    result = failure_sweep(topo, demands)
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
        plans = plans_for(
            topo, demands, method=method, threshold=threshold, k=k, time_limit=time_limit, seed=seed
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
        Path, typer.Option("--out", help="Directory for topology.png and utilization-cdf.png.")
    ],
    threshold: ThresholdOpt = 0.8,
    statistic: StatisticOpt = "busy-hour",
    traffic_class: ClassOpt = None,
) -> None:
    """Draw the topology coloured by link utilization and the utilization CDF (PNG)."""
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


def main() -> None:
    """Entry point of the ``flowmatrix`` console script."""
    app()
