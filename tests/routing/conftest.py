"""Generated networks with traffic ground truth for the routing tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowmatrix.synth import generate_network, generate_traffic, write_network


def _network(size: str, flows: int, factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    net = factory.mktemp(size)
    write_network(generate_network(size, seed=1), net)
    traffic = factory.mktemp(f"{size}-traffic")
    generate_traffic(net, traffic, seed=1, flows=flows)
    return net, traffic


@pytest.fixture(scope="session")
def tiny_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny network (seed 1) and 3,000 flows of traffic with truth."""
    return _network("tiny", 3000, tmp_path_factory)


@pytest.fixture(scope="session")
def medium_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The medium network (seed 1) and 20,000 flows of traffic with truth."""
    return _network("medium", 20000, tmp_path_factory)
