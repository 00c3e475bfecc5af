"""Run flowmatrix end to end on one machine: a generated network, its traffic, its matrix.

Today the demo generates a network, validates the configuration it serves,
generates customer traffic entering every PE, and draws the ground-truth
PE-to-PE matrix that the FRP/MG pipeline must reproduce. The FRPs, the MG and
real exporters on loopback join it as they are built.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import load_config
from flowmatrix.matrix.plot import heatmap
from flowmatrix.synth import generate_network, generate_traffic, write_network

__all__ = ["DEMO_START", "DemoResult", "run_demo"]

#: the demo's traffic starts at this fixed time, so runs are reproducible
DEMO_START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)

Step = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run produced: its configuration, matrix and files."""

    config: NetworkConfig
    #: PE-to-PE matrix summed over classes: columns ingress, egress, bytes, packets
    matrix: pa.Table
    files: dict[str, Path]
    seconds: dict[str, float]


def run_demo(
    out: Path,
    *,
    size: str = "tiny",
    seed: int = 1,
    flows: int = 20_000,
    duration_s: int = 600,
    step: Step = lambda _: None,
) -> DemoResult:
    """Generate a network and its traffic into ``out`` and draw the PE-to-PE matrix."""
    seconds: dict[str, float] = {}
    files: dict[str, Path] = {}

    def timed(name: str, message: str) -> Callable[[], None]:
        step(message)
        began = time.perf_counter()
        return lambda: seconds.__setitem__(name, time.perf_counter() - began)

    done = timed("network", f"generating a {size} network (seed {seed})")
    network_dir = out / "network"
    write_network(generate_network(size, seed), network_dir)
    done()

    done = timed("config", "validating the configuration the MG serves")
    files["config"] = network_dir / "network.xml"
    config = load_config([files["config"]])
    done()

    done = timed("traffic", f"generating {flows:,} customer flows entering every PE")
    traffic_dir = out / "traffic"
    generate_traffic(
        network_dir, traffic_dir, seed=seed, flows=flows, start=DEMO_START, duration_s=duration_s
    )
    done()

    done = timed("matrix", "summing the PE-to-PE matrix and drawing it")
    truth = pacsv.read_csv(traffic_dir / "truth" / "pe_pe.csv")
    matrix = (
        truth.group_by(["ingress", "egress"])
        .aggregate([("bytes", "sum"), ("packets", "sum")])
        .rename_columns(["ingress", "egress", "bytes", "packets"])
        .sort_by([("bytes", "descending")])
    )
    files["matrix_csv"] = out / "matrix_pe_pe.csv"
    pacsv.write_csv(matrix, files["matrix_csv"])
    files["heatmap"] = heatmap(
        np.asarray(matrix["ingress"]),
        np.asarray(matrix["egress"]),
        np.asarray(matrix["bytes"]),
        out / "matrix_pe_pe.png",
        title=f"{config.name}: PE-to-PE bytes (ground truth)",
    )
    files["pcaps"] = traffic_dir / "pcap"
    done()
    return DemoResult(config=config, matrix=matrix, files=files, seconds=seconds)


def total(matrix: pa.Table, column: str) -> int:
    """The sum of one column of a matrix."""
    return int(pc.sum(matrix[column]).as_py() or 0)
