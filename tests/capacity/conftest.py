"""Fixtures for the capacity tests: Abilene and a gravity matrix that overloads it."""

import csv
from pathlib import Path

import pytest

from flowmatrix.capacity.demands import Demands
from flowmatrix.capacity.routing import route
from flowmatrix.capacity.testing import gravity_matrix
from flowmatrix.capacity.topology import Topology, load_topology

DATA = Path(__file__).parent / "data"


def write_csv(demands: Demands, path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ingress", "egress", "bps"])
        for a, b, v in zip(demands.ingress, demands.egress, demands.bps, strict=True):
            writer.writerow([a, b, repr(float(v))])
    return path


@pytest.fixture(scope="session")
def abilene() -> Topology:
    return load_topology(DATA / "abilene.txt")


@pytest.fixture(scope="session")
def abilene_gravity(abilene: Topology) -> Demands:
    """A gravity matrix scaled so that the busiest Abilene link runs at exactly 100 %."""
    demands = gravity_matrix(abilene, 1e9, seed=0)
    return demands.scaled(1.0 / route(abilene, demands).max_utilization)


@pytest.fixture
def abilene_csv(abilene_gravity: Demands, tmp_path: Path) -> Path:
    return write_csv(abilene_gravity, tmp_path / "abilene-gravity.csv")
