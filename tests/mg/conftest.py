"""Fixtures of the MG tests: the valid configuration, an MG over an in-memory store, a read spy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import load_config
from flowmatrix.matrix.store import Store
from flowmatrix.mg.testing import MgClient, open_mg

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"


@pytest.fixture(scope="session")
def config() -> NetworkConfig:
    """The configuration of tests/config/data/valid.xml (frp-par, frp-lon; classes EF, AF, BE)."""
    return load_config(VALID)


@pytest.fixture
def mg(config: NetworkConfig, tmp_path: Path) -> Iterator[MgClient]:
    """An MG app over an in-memory store, with every token issued."""
    with Store(":memory:") as store:
        yield open_mg(config, store, tmp_path)


@pytest.fixture
def read_spy(monkeypatch: pytest.MonkeyPatch) -> Callable[[Store], list[int]]:
    """``read_spy(store)``: the list the ids of partials the store hands out are appended to."""

    def spy_on(store: Store) -> list[int]:
        ids: list[int] = []
        rows = store.rows

        def spy(upload_id: int) -> pa.Table:
            ids.append(upload_id)
            return rows(upload_id)

        monkeypatch.setattr(store, "rows", spy)
        return ids

    return spy_on
