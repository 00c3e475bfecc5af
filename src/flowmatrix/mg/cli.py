"""The ``mg`` and ``tm`` commands: run the MG, issue tokens, read total matrices.

Exit codes: 0 success, 1 the MG (or the store) refused, 2 usage or
connection problem.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

__all__ = ["mg_app", "parse_period", "render_forecast", "render_stats", "tm_app"]

mg_app = typer.Typer(
    help="Run the matrix generator (MG) and manage its tokens.", no_args_is_help=True
)
tm_app = typer.Typer(help="Read total traffic matrices from a running MG.", no_args_is_help=True)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

#: matrix formats by file extension
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".json": "json"}


# --- mg -----------------------------------------------------------------------------------------


@mg_app.command("serve")
def mg_serve(
    config: Annotated[
        Path, typer.Option("--config", help="XML configuration file, or a directory of *.xml.")
    ],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the matrix store.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to listen on.")] = 8080,
    issue_tokens: Annotated[
        Path | None,
        typer.Option(
            "--issue-tokens",
            help="Directory receiving <name>.token for every FRP lacking one, and the operator.",
        ),
    ] = None,
    routing: Annotated[
        Path | None,
        typer.Option(
            help="Routing directory of PEs, read at start and merged under the tables the "
            "FRPs send (their routing bundles, kept beside --db): the MG resolves "
            "centralized-mode records and answers routing lookups (dashboard, API) with them."
        ),
    ] = None,
    topology: Annotated[
        Path | None,
        typer.Option(
            help="Backbone topology (any format `capacity check` reads): link loads, "
            "link forecasts and alarms, the dashboard's topology page."
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    stats_detail: Annotated[
        bool,
        typer.Option(
            "--stats-detail/--no-stats-detail",
            help="Keep every period's ingress interface × VRF detail for the if_pe and vrf "
            "statistics (16 octets per such element and period, in memory and in the store).",
        ),
    ] = True,
) -> None:
    """Serve configuration views, receive partial matrices and serve totals over HTTP."""
    from flowmatrix.errors import CapacityError, ConfigError, RoutingError, StoreError
    from flowmatrix.mg.service import serve

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        serve(
            config,
            db,
            host=host,
            port=port,
            issue_tokens_dir=issue_tokens,
            routing=routing,
            topology=topology,
            log_level=log_level.lower(),
            stats_detail=stats_detail,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(1) from None
    except (StoreError, RoutingError, CapacityError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


@mg_app.command("token")
def mg_token(
    db: Annotated[Path, typer.Option("--db", help="DuckDB file of the matrix store.")],
    frp: Annotated[str | None, typer.Option("--frp", help="Issue a token for this FRP.")] = None,
    operator: Annotated[
        str | None, typer.Option("--operator", help="Issue an operator token with this name.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Write the token to this file (mode 0600) instead of stdout."),
    ] = None,
) -> None:
    """Create a bearer token in a store no server holds; print it or write it to a file."""
    from flowmatrix.errors import StoreError
    from flowmatrix.matrix.store import Store
    from flowmatrix.mg.auth import write_token

    if (frp is None) == (operator is None):
        err.print("error: give exactly one of --frp NAME or --operator NAME")
        raise typer.Exit(2)
    name = frp if frp is not None else operator
    assert name is not None
    try:
        with Store(db) as store:
            token = store.add_token(name, "frp" if frp is not None else "operator")
    except StoreError as exc:
        err.print(
            f"error: {exc} (is an MG serving this file? stop it, or use mg serve --issue-tokens)",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None
    if output is None:
        out.print(token, markup=False, highlight=False)
    else:
        write_token(output, token)
        err.print(f"token for {name} written to {output}", markup=False, highlight=False)


# --- tm -----------------------------------------------------------------------------------------


def parse_period(text: str) -> int:
    """Unix milliseconds from ``text``: an integer, or an ISO 8601 time (UTC when no zone).

    >>> parse_period("300000"), parse_period("1970-01-01T00:05:00Z")
    (300000, 300000)
    """
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        msg = f"not unix milliseconds nor an ISO 8601 time: {text!r}"
        raise typer.BadParameter(msg) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


MgUrl = Annotated[str, typer.Option("--mg", help="Base URL of the MG, e.g. http://127.0.0.1:8080.")]
TokenFile = Annotated[
    Path, typer.Option("--token-file", help="File holding an operator bearer token.")
]
IntervalOpt = Annotated[str, typer.Option("--interval", help="Measurement interval id.")]
PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--period", help="Read-out period start (unix ms or ISO 8601); all periods if omitted."
    ),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="With no --period: periods starting at or after.")
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="With no --period: periods starting before.")
]
GranularityOpt = Annotated[str, typer.Option("--granularity", help="pe_pe, pop_pop, if_pe or vrf.")]
ClassOpt = Annotated[
    str | None,
    typer.Option("--class", help="One class to keep, or 'all' to sum classes; default: per class."),
]


def _fetch(
    mg: str,
    token_file: Path,
    params: dict[str, Any],
    path: str = "matrix",
) -> tuple[bytes, dict[str, str]]:
    import httpx

    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        err.print(f"error: cannot read token file {token_file}: {exc.strerror}", markup=False)
        raise typer.Exit(2) from None
    url = mg.rstrip("/") + f"/api/v1/{path}"
    query = {k: v for k, v in params.items() if v is not None}
    try:
        response = httpx.get(
            url, params=query, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
    except httpx.HTTPError as exc:
        err.print(f"error: cannot reach the MG at {mg}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    if response.status_code != 200:
        try:
            message = str(response.json().get("error", response.text))
        except (ValueError, AttributeError):
            message = response.text[:200]
        err.print(
            f"error: MG answered {response.status_code}: {message}", markup=False, highlight=False
        )
        raise typer.Exit(1)
    return response.content, dict(response.headers)


def _params(
    interval: str,
    period: str | None,
    since: str | None,
    until: str | None,
    granularity: str,
    class_: str | None,
    fmt: str,
) -> dict[str, Any]:
    return {
        "interval": interval,
        "period_start_ms": parse_period(period) if period else None,
        "since_ms": parse_period(since) if since else None,
        "until_ms": parse_period(until) if until else None,
        "granularity": granularity,
        "class": class_,
        "format": fmt,
    }


def print_whole(console: Console, table: Table) -> None:
    """Print ``table`` without cutting a cell: wider than the console when it must be.

    Rich shrinks columns to the console's width and ends cut figures with "…";
    a traffic figure cut short is worse than a line that wraps.
    """
    need = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = console.width
    console.width = max(width, need)
    try:
        console.print(table)
    finally:
        console.width = width


def _si(value: float | None) -> str:
    """A number in 4 significant digits with an SI prefix: 1234567 → 1.235M."""
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{prefix}"
    return f"{value:.4g}"


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@tm_app.command("show")
def tm_show(
    mg: MgUrl,
    token_file: TokenFile,
    interval: IntervalOpt = "always",
    period: PeriodOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    granularity: GranularityOpt = "pe_pe",
    class_: ClassOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the MG's JSON answer.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows shown, largest first.")] = 20,
) -> None:
    """Show a total matrix: the largest elements and whether the periods are complete."""
    params = _params(interval, period, since, until, granularity, class_, "json")
    content, _ = _fetch(mg, token_file, params)
    body = json.loads(content)
    if as_json:
        sys.stdout.write(json.dumps(body, indent=1) + "\n")
        return
    columns: list[str] = body["columns"]
    rows: list[list[Any]] = body["rows"]
    by_bytes = sorted(rows, key=lambda r: -float(r[columns.index("bytes")]))
    table = Table(title=f"{granularity} total, interval {interval}")
    keys = columns[: columns.index("bytes")]
    for c in keys:
        table.add_column(c)
    for c in ("bytes", "± 95 %", "packets", "± 95 %", "flows"):
        table.add_column(c, justify="right")
    for row in by_bytes[:limit]:
        cells = dict(zip(columns, row, strict=True))
        values = ("bytes", "bytes_err95", "packets", "packets_err95", "flows")
        table.add_row(*(str(cells[c]) for c in keys), *(_si(cells[c]) for c in values))
    print_whole(out, table)
    periods = body["periods"]
    span = (
        f"{_iso(periods[0]['period_start_ms'])}…{_iso(periods[-1]['period_end_ms'])}"
        if periods
        else "-"
    )
    gaps = sum(len(p["gaps"]) for p in periods)
    missing = f" missing: {', '.join(body['missing'])}" if body["missing"] else ""
    out.print(
        f"status {body['status']}{missing}; {len(periods)} period(s) {span}, "
        f"{body['seconds']:.0f} s; {len(rows)} rows ({min(limit, len(rows))} shown); "
        f"{gaps} exporter gap report(s)",
        markup=False,
        highlight=False,
    )


@tm_app.command("export")
def tm_export(
    mg: MgUrl,
    token_file: TokenFile,
    output: Annotated[
        Path, typer.Option("--output", help="File to write; .csv, .parquet or .json.")
    ],
    interval: IntervalOpt = "always",
    period: PeriodOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    granularity: GranularityOpt = "pe_pe",
    class_: ClassOpt = None,
) -> None:
    """Write a total matrix to a file, the format chosen by the file's extension."""
    fmt = _EXTENSIONS.get(output.suffix.lower())
    if fmt is None:
        err.print(f"error: {output}: extension must be one of {', '.join(_EXTENSIONS)}")
        raise typer.Exit(2)
    params = _params(interval, period, since, until, granularity, class_, fmt)
    content, headers = _fetch(mg, token_file, params)
    output.write_bytes(content)
    status = headers.get("x-flowmatrix-status", "unknown")
    err.print(f"wrote {output} ({len(content):,} octets), status {status}", markup=False)


@tm_app.command("stats")
def tm_stats(
    mg: MgUrl,
    token_file: TokenFile,
    interval: IntervalOpt = "always",
    class_: Annotated[
        str | None,
        typer.Option("--class", help="One class to keep, 'all' to sum them; default: each apart."),
    ] = None,
    granularity: Annotated[
        str,
        typer.Option(
            "--granularity",
            help="pe_pe, pop_pop (PEs summed into service nodes), if_pe (per ingress interface) "
            "or vrf (per VPN); if_pe and vrf need mg serve --stats-detail.",
        ),
    ] = "pe_pe",
    timescale: Annotated[
        str,
        typer.Option(
            "--timescale",
            help="period, or hour, day, week: periods summed per local bucket first.",
        ),
    ] = "period",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the MG's JSON answers (stats, busy hour).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Rows shown, largest mean first.")
    ] = 20,
) -> None:
    """Show per-element statistics over an interval's periods, and the network busy hour."""
    params = {
        "interval": interval,
        "class": class_,
        "granularity": granularity,
        "timescale": timescale,
    }
    content, _ = _fetch(mg, token_file, params, "stats")
    body = json.loads(content)
    busy, _ = _fetch(mg, token_file, {"interval": interval}, "busy-hour")
    hour = json.loads(busy)
    if as_json:
        sys.stdout.write(json.dumps({"stats": body, "busy_hour": hour}, indent=1) + "\n")
        return
    render_stats(body, hour, limit=limit)


def render_stats(body: dict[str, Any], hour: dict[str, Any], *, limit: int = 20) -> None:
    """The /stats answer → a table, largest mean first; the /busy-hour answer under it."""
    columns: list[str] = body["columns"]
    rows = [dict(zip(columns, r, strict=True)) for r in body["rows"]]
    rows.sort(key=lambda r: -(r["mean_bytes"] or 0.0))
    scale = body.get("timescale", "period")
    buckets = (
        f"{body['periods']} period(s)" if scale == "period" else f"{body['periods']} {scale}(s)"
    )
    granularity = body.get("granularity", "pe_pe")
    table = Table(
        title=f"{granularity} statistics, interval {body['interval']}, {buckets}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    # the answer's key columns (if_index, vrf at their granularities) come before the period count
    keys = columns[: columns.index("periods")] if "periods" in columns else columns[:3]
    for c in keys:
        # the keys are never cut: the figures' columns give way
        width = max([len(c), *(len(str(r[c])) for r in rows[:limit])])
        table.add_column(c, no_wrap=True, min_width=width)
    # the answer's own figure columns, after the keys and the period count
    values = [c for c in columns if c not in (*keys, "periods")]
    for c in values:
        header = c.replace("_bytes", "\nbytes").replace("_packets", "\npkts")
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows[:limit]:
        table.add_row(*(str(row[c]) for c in keys), *(_si(row[c]) for c in values))
    print_whole(out, table)
    out.print(f"{len(rows)} rows ({min(limit, len(rows))} shown)", markup=False, highlight=False)
    out.print(_hour_line("busy hour", hour.get("busy_hour"), hour), markup=False, highlight=False)
    for node, busiest in sorted((hour.get("nodes") or {}).items()):
        out.print(_hour_line(f"  node {node}", busiest, hour), markup=False, highlight=False)


def _hour_line(label: str, busiest: dict[str, Any] | None, hour: dict[str, Any]) -> str:
    """One busy hour of the /busy-hour answer → one line."""
    if busiest is None:
        return f"{label}: -"
    state = "complete" if busiest["complete"] else "incomplete"
    return (
        f"{label}: {busiest['local_start']} ({_iso(busiest['start_ms'])}, {hour['timezone']}), "
        f"{_si(busiest['volume_bytes'])} bytes, {busiest['periods']}/"
        f"{busiest['expected_periods']} periods, {state}"
    )


@tm_app.command("forecast")
def tm_forecast(
    mg: MgUrl,
    token_file: TokenFile,
    ingress: Annotated[
        str | None, typer.Option("--ingress", help="Ingress PE of the element.")
    ] = None,
    egress: Annotated[
        str | None, typer.Option("--egress", help="Egress PE of the element.")
    ] = None,
    if_index: Annotated[
        int | None,
        typer.Option(
            "--if-index", min=0, help="Only the traffic entering through this input interface."
        ),
    ] = None,
    vrf: Annotated[
        str | None, typer.Option("--vrf", help="Only the traffic of this VPN (VRF name).")
    ] = None,
    link: Annotated[
        str | None,
        typer.Option("--link", help="A topology link instead of an element (mg serve --topology)."),
    ] = None,
    src: Annotated[
        str | None,
        typer.Option("--src", help="The link's direction: the router it leaves; default: busier."),
    ] = None,
    interval: IntervalOpt = "always",
    class_: Annotated[
        str | None, typer.Option("--class", help="One class; default: the classes summed.")
    ] = None,
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, help="Read-out periods to forecast.")
    ] = 12,
    season: Annotated[
        int | None,
        typer.Option("--season", min=2, help="Season in periods; default: a day if 2 days known."),
    ] = None,
    capacity_bps: Annotated[
        float | None,
        typer.Option("--capacity-bps", help="Capacity to check, bit/s; a link's by default."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Share of --capacity-bps that counts as crossed.")
    ] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="Print the MG's JSON answer.")] = False,
) -> None:
    """Forecast one element's or link's traffic (Holt–Winters) and when it crosses a share of
    a capacity ("when does this link cross 80 %?")."""
    if (link is None) == (ingress is None or egress is None):
        err.print("error: give --ingress and --egress, or --link", markup=False)
        raise typer.Exit(2)
    params: dict[str, Any] = {
        "interval": interval,
        "ingress": ingress,
        "egress": egress,
        "class": class_,
        "if_index": if_index,
        "vrf": vrf,
        "link": link,
        "src": src,
        "horizon": horizon,
        "season": season,
        "capacity_bps": capacity_bps,
        "threshold": threshold if capacity_bps is not None or link is not None else None,
    }
    content, _ = _fetch(mg, token_file, params, "forecast")
    body = json.loads(content)
    if as_json:
        sys.stdout.write(json.dumps(body, indent=1) + "\n")
        return
    render_forecast(
        body, capacity=capacity_bps is not None or link is not None, threshold=threshold
    )


def render_forecast(body: dict[str, Any], *, capacity: bool, threshold: float = 0.8) -> None:
    """The /forecast answer → a table of the forecast periods, the backtest and the crossing."""
    if "link" in body:
        link = body["link"]
        what = (
            f"link {link['name']} {link['src']} > {link['dst']} ({_si(link['capacity_bps'])}bit/s)"
        )
    else:
        element = body["element"]
        cls = element["class"] if element["class"] is not None else "all classes"
        via = "".join(
            (
                f" if_index {element['if_index']}" if element.get("if_index") is not None else "",
                f" vrf {element['vrf']!r}" if element.get("vrf") is not None else "",
            )
        )
        what = f"{element['ingress']} > {element['egress']}{via} ({cls})"
    season = f"season {body['season']} periods" if body["season"] else "no season"
    table = Table(
        title=(
            f"forecast {what}, interval "
            f"{body['interval']}: {body['history_periods']} period(s) of history, {season}"
        ),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("period start", no_wrap=True)
    table.add_column("bytes", justify="right", no_wrap=True)
    table.add_column("bit/s", justify="right", no_wrap=True)
    for row in body["forecast"]:
        table.add_row(_iso(row["period_start_ms"]), _si(row["bytes"]), _si(row["bps"]))
    print_whole(out, table)
    check = body["backtest"]
    if check is None:
        out.print("backtest: - (history too short)", markup=False, highlight=False)
    else:
        out.print(
            f"backtest MAPE: model {_si(check['model_mape'])} %, "
            f"seasonal naive {_si(check['naive_mape'])} %",
            markup=False,
            highlight=False,
        )
    if not capacity:
        return
    crossing = body["crossing_ms"]
    share = f"{threshold * 100:g} % of capacity"
    if crossing is None:
        out.print(f"{share}: does not cross within the horizon", markup=False, highlight=False)
    else:
        out.print(f"{share}: crosses at {_iso(crossing)}", markup=False, highlight=False)


@tm_app.command("alarms")
def tm_alarms(
    mg: MgUrl,
    token_file: TokenFile,
    as_json: Annotated[bool, typer.Option("--json", help="Print the MG's JSON answer.")] = False,
) -> None:
    """Show the threshold alarms raised now, oldest first."""
    content, _ = _fetch(mg, token_file, {}, "alarms")
    active: list[dict[str, Any]] = json.loads(content)
    if as_json:
        sys.stdout.write(json.dumps(active, indent=1) + "\n")
        return
    table = Table(title="active alarms", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for c in ("rule", "interval", "key", "since"):
        table.add_column(c, no_wrap=True)
    for c in ("value", "threshold"):
        table.add_column(c, justify="right", no_wrap=True)
    for a in active:
        table.add_row(
            a["rule"],
            a["interval"],
            a["key"],
            _iso(a["since_ms"]),
            _si(a["value"]),
            _si(a["threshold"]),
        )
    print_whole(out, table)
    out.print(f"{len(active)} alarm(s) raised", markup=False, highlight=False)


@tm_app.command("plot")
def tm_plot(
    mg: MgUrl,
    token_file: TokenFile,
    output: Annotated[
        Path, typer.Option("--output", help="File to write: .png, or .html (standalone, offline).")
    ],
    interval: IntervalOpt = "always",
    period: PeriodOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    granularity: Annotated[str, typer.Option("--granularity", help="pe_pe or pop_pop.")] = "pe_pe",
    class_: Annotated[
        str, typer.Option("--class", help="One class, or 'all' to sum the classes.")
    ] = "all",
    value: Annotated[
        str, typer.Option("--value", help="Heatmap value: bytes, packets or bps.")
    ] = "bytes",
    ingress: Annotated[
        str | None, typer.Option("--ingress", help="With --egress: plot this OD pair over time.")
    ] = None,
    egress: Annotated[str | None, typer.Option("--egress", help="Egress of the OD pair.")] = None,
) -> None:
    """Plot a total matrix as a heatmap, or one OD pair's bytes per period (PNG or HTML).

    The time series carries its mean and 95th percentile.
    """
    import numpy as np

    from flowmatrix.matrix import plot

    suffix = output.suffix.lower()
    if suffix not in (".png", ".html"):
        err.print(f"error: {output}: extension must be .png or .html", markup=False)
        raise typer.Exit(2)
    if granularity not in ("pe_pe", "pop_pop") or value not in ("bytes", "packets", "bps"):
        err.print("error: --granularity pe_pe|pop_pop, --value bytes|packets|bps", markup=False)
        raise typer.Exit(2)
    if (ingress is None) != (egress is None):
        err.print("error: give both --ingress and --egress for a time series", markup=False)
        raise typer.Exit(2)
    if ingress is not None and egress is not None:
        params: dict[str, Any] = {
            "interval": interval,
            "ingress": ingress,
            "egress": egress,
            "granularity": granularity,
            "class": None if class_ == "all" else class_,
        }
        content, _ = _fetch(mg, token_file, params, "series")
        periods = json.loads(content)["periods"]
        starts = np.array([p["period_start_ms"] for p in periods], dtype=np.int64)
        series = np.array([p["bytes"] for p in periods], dtype=np.float64)
        title = f"{ingress} → {egress}, class {class_}, interval {interval}"
        draw = plot.series_html if suffix == ".html" else plot.series
        draw(starts, series, output, title=title, unit="bytes per period")
        err.print(f"wrote {output}: {len(periods)} periods", markup=False)
        return
    params = _params(interval, period, since, until, granularity, class_, "json")
    content, _ = _fetch(mg, token_file, params)
    body = json.loads(content)
    columns: list[str] = body["columns"]
    rows: list[list[Any]] = body["rows"]
    if not rows:
        err.print("error: the MG holds no traffic for that selection", markup=False)
        raise typer.Exit(1)
    ingress_col, egress_col = columns.index("ingress"), columns.index("egress")
    figure_col = columns.index("packets" if value == "packets" else "bytes")
    figures = np.array([r[figure_col] for r in rows], dtype=np.float64)
    if value == "bps":
        figures = figures * 8 / max(float(body["seconds"]), 1.0)
    draw_map = plot.heatmap_html if suffix == ".html" else plot.heatmap
    draw_map(
        np.array([r[ingress_col] for r in rows]),
        np.array([r[egress_col] for r in rows]),
        figures,
        output,
        title=f"{granularity} {value}, class {class_}, interval {interval} ({body['status']})",
        unit=value,
    )
    err.print(f"wrote {output}: {len(rows)} elements, status {body['status']}", markup=False)
