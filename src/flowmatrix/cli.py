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
synth_app = typer.Typer(help="Generate networks and traffic with ground truth.", no_args_is_help=True)
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
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
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
        f"valid: network {config.name} (AS{config.asn}): {len(config.service_nodes)} service nodes, "
        f"{len(config.frps)} FRPs, {len(config.pes)} PEs, {len(config.intervals)} intervals",
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
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write; stdout if absent.")] = None,
) -> None:
    """Write the configuration one FRP downloads (its PEs in full, other PEs remote) as XML."""
    from flowmatrix.config.xml import config_to_bytes, write_config

    view = _view_or_exit(_load_or_exit(files), frp)
    if output is None:
        sys.stdout.buffer.write(config_to_bytes(view))
    else:
        write_config(view, output)


def _view_or_exit(config: NetworkConfig, frp: str) -> NetworkConfig:
    try:
        return config.view_for_frp(frp)
    except KeyError:
        known = ", ".join(f.name for f in config.frps)
        err.print(f"unknown FRP {frp!r}; the configuration has: {known}", markup=False)
        raise typer.Exit(1) from None


def main() -> None:
    """Entry point of the ``flowmatrix`` console script."""
    app()
