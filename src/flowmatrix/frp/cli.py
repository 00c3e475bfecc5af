"""``flowmatrix frp``: run a flow record processor (parse options, call :func:`service.run`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

__all__ = ["frp_app", "parse_listen"]

frp_app = typer.Typer(
    help="Flow record processor: exporters' datagrams in, partial matrices to the MG.",
    no_args_is_help=True,
)


@frp_app.callback()
def frp_main() -> None:
    """Flow record processor: exporters' datagrams in, partial matrices to the MG."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:2055``) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        msg = f"--listen {text!r}: expected HOST:PORT"
        raise typer.BadParameter(msg)
    return host.strip("[]"), int(port)


@frp_app.command("run")
def run_command(
    mg: Annotated[str, typer.Option(help="Base URL of the MG, e.g. http://127.0.0.1:8080.")],
    name: Annotated[str, typer.Option(help="This FRP's name in the configuration.")],
    token_file: Annotated[
        Path, typer.Option(help="File holding this FRP's bearer token (one line).")
    ],
    listen: Annotated[
        list[str] | None,
        typer.Option(help="UDP HOST:PORT to receive exports on; repeat for several."),
    ] = None,
    routing: Annotated[
        Path | None,
        typer.Option(help="Native routing directory (what 'synth network' writes) for egress."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Directory for ingress files, spool and state (./frp-data/NAME)."),
    ] = None,
    grace: Annotated[
        float, typer.Option(help="Seconds after a period's end before it is uploaded.")
    ] = 60.0,
    settle: Annotated[
        float, typer.Option(help="Seconds without records of a period before it is uploaded.")
    ] = 2.0,
    flush: Annotated[
        float, typer.Option(help="Seconds between writes of buffered ingress records.")
    ] = 5.0,
    mode: Annotated[
        str, typer.Option(help="distributed (partials) or centralized (ingress records).")
    ] = "distributed",
    config_refresh: Annotated[
        float, typer.Option(help="Seconds between configuration refreshes from the MG; 0 = never.")
    ] = 60.0,
    metrics: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT serving Prometheus /metrics (e.g. 127.0.0.1:9464); off by default."
        ),
    ] = None,
    bmp: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT accepting BMP sessions from routers (live routing, e.g. "
            "0.0.0.0:11019); off by default."
        ),
    ] = None,
    bmp_interval: Annotated[
        float, typer.Option(help="Seconds between live routing snapshots at most (with --bmp).")
    ] = 5.0,
    bmp_save: Annotated[
        float,
        typer.Option(
            help="Seconds between snapshot files in DATA/bmp-snapshot at most (with --bmp): "
            "what `routing show --bmp-snapshot` reads and a restart reloads."
        ),
    ] = 60.0,
    routing_upload: Annotated[
        float,
        typer.Option(
            help="Seconds between routing tables sent to the MG at most (with --routing or "
            "--bmp; the MG explains lookups and resolves centralized records with them); "
            "0 = never."
        ),
    ] = 300.0,
    routing_check: Annotated[
        float,
        typer.Option(
            help="Seconds between looks at --routing's manifest.json: new table versions put "
            "there are read and used from their own time on; 0 = never."
        ),
    ] = 5.0,
    log_level: Annotated[str, typer.Option(help="Logging level: debug, info, warning.")] = "info",
) -> None:
    """Receive flow exports, write ingress files and upload partial matrices until stopped."""
    from flowmatrix.errors import FlowmatrixError
    from flowmatrix.frp.service import FrpOptions, run

    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if mode not in ("distributed", "centralized"):
        msg = f"--mode {mode!r}: distributed or centralized"
        raise typer.BadParameter(msg)
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        typer.echo(f"error: --token-file: {exc}", err=True)
        raise typer.Exit(1) from None
    chosen: Literal["distributed", "centralized"] = (
        "centralized" if mode == "centralized" else "distributed"
    )
    options = FrpOptions(
        mg=mg,
        name=name,
        token=token,
        data=data if data is not None else Path("frp-data") / name,
        listen=tuple(parse_listen(x) for x in listen) if listen else (("0.0.0.0", 2055),),
        routing=routing,
        grace=grace,
        settle=settle,
        flush=flush,
        mode=chosen,
        config_refresh=config_refresh,
        metrics=parse_listen(metrics) if metrics else None,
        bmp=parse_listen(bmp) if bmp else None,
        bmp_interval=bmp_interval,
        bmp_save=bmp_save,
        routing_upload=routing_upload,
        routing_check=routing_check,
    )
    try:
        raise typer.Exit(run(options))
    except FlowmatrixError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
