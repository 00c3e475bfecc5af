"""The ``flowmatrix`` command: parse options, load inputs, call one package function, render.

No logic lives here beyond rendering; every command calls into a package.
Exit codes: 0 success, 1 a check failed (invalid configuration, threshold
exceeded), 2 usage error (typer's own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flowmatrix import __version__

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
    from flowmatrix.config.xml import load_config
    from flowmatrix.errors import ConfigError

    try:
        config = load_config(files)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(
        f"valid: network {config.name} (AS{config.asn}): {len(config.service_nodes)} service nodes, "
        f"{len(config.frps)} FRPs, {len(config.pes)} PEs, {len(config.intervals)} intervals",
        markup=False,
        highlight=False,
    )


def main() -> None:
    """Entry point of the ``flowmatrix`` console script."""
    app()
