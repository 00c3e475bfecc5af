"""Shared generated networks and traffic for the synth tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowmatrix.synth import (
    SynthNetwork,
    TrafficSummary,
    generate_network,
    generate_traffic,
    write_network,
)


@pytest.fixture(scope="session")
def tiny() -> SynthNetwork:
    return generate_network("tiny", seed=7)


@pytest.fixture(scope="session")
def tiny_dir(tiny: SynthNetwork, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    write_network(tiny, out)
    return out


@pytest.fixture(scope="session")
def tiny_traffic(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrafficSummary:
    return generate_traffic(tiny_dir, tmp_path_factory.mktemp("traffic"), seed=3, flows=3000)
