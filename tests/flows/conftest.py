"""Shared fixtures of the flows tests: real softflowd datagrams recorded as hex."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

DATA = Path(__file__).parent / "data"


def load_hex(name: str) -> list[bytes]:
    """The datagrams of a hex fixture, one per line; lines starting with # are comments."""
    lines = (DATA / name).read_text().splitlines()
    return [bytes.fromhex(line) for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="session")
def softflowd() -> dict[int, list[bytes]]:
    """softflowd 1.1.0's datagrams replaying synth tiny seed 1 fra-pe1, per export version."""
    return {v: load_hex(f"softflowd_v{v}.hex") for v in (5, 9, 10)}


@pytest.fixture(scope="session")
def golden() -> dict[str, bytes]:
    """Hand-built golden datagrams (data/golden_*.hex), by version name: v5, v9, ipfix."""
    return {v: load_hex(f"golden_{v}.hex")[0] for v in ("v5", "v9", "ipfix")}


def load_oracle() -> ModuleType:
    """tests/flows/oracle.py (the netflow package as a reference), loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("flows_oracle", DATA.parent / "oracle.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def oracle() -> ModuleType:
    """The reference decoder module (``reference_rows``, ``KEYS``)."""
    return load_oracle()
