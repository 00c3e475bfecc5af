from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from flowmatrix.errors import StoreError
from flowmatrix.matrix.partial import PARTIAL_SCHEMA, PartialMeta, digest, empty_partial
from flowmatrix.matrix.store import Store, hash_token


def partial(bytes_: float, egress: str = "lon-pe1") -> pa.Table:
    row = {
        "ingress_pe": ["par-pe1"],
        "in_if": [3],
        "vrf": [""],
        "egress_pe": [egress],
        "tos": [0],
        "class": ["BE"],
        "bytes": [bytes_],
        "packets": [1.0],
        "flows": [1.0],
        "sampled_packets": [1.0],
        "bytes_var": [0.0],
        "packets_var": [0.0],
    }
    return pa.table(row).cast(PARTIAL_SCHEMA)


def meta(frp: str = "frp-par", start: int = 0, **extra: object) -> PartialMeta:
    return PartialMeta(
        frp=frp,
        interval="always",
        period_start_ms=start,
        period_end_ms=start + 300_000,
        **extra,  # type: ignore[arg-type]
    )


def test_identical_upload_is_unchanged_and_different_content_makes_a_new_version() -> None:
    with Store(":memory:") as store:
        assert store.put_partial(partial(1.0), meta()).status == "stored"
        again = store.put_partial(partial(1.0), meta(revision=2, created_ms=99))
        assert (again.status, again.version) == ("unchanged", 1)
        newer = store.put_partial(partial(2.0), meta(revision=3))
        assert (newer.status, newer.version) == ("stored", 2)
        versions = store.versions("frp-par", "always", 0)
        assert [(v.version, v.current, v.rows) for v in versions] == [(1, False, 1), (2, True, 1)]
        assert versions[1].digest == digest(partial(2.0), meta())
        (current,) = store.current("always")
        assert current.version == 2
        assert store.rows(current.id)["bytes"].to_pylist() == [2.0]
        assert store.rows(versions[0].id)["bytes"].to_pylist() == [1.0]  # older kept


def test_current_filters_by_interval_and_period_range() -> None:
    with Store(":memory:") as store:
        for start in (0, 300_000, 600_000):
            store.put_partial(partial(1.0), meta(start=start))
        store.put_partial(empty_partial(), meta("frp-lon", start=300_000))
        assert len(store.current("always")) == 4
        assert len(store.current("always", period_start_ms=300_000)) == 2
        mid = store.current("always", since_ms=300_000, until_ms=600_000)
        assert [(u.frp, u.period_start_ms) for u in mid] == [
            ("frp-lon", 300_000),
            ("frp-par", 300_000),
        ]
        assert store.current("busy") == []
        assert store.count_incomplete(["frp-par", "frp-lon"]) == 2
        assert store.count_incomplete(["frp-par"]) == 0
        assert store.count_incomplete([]) == 0
        assert store.rows(mid[0].id).schema == PARTIAL_SCHEMA


def test_tokens_are_stored_hashed_and_resolve_to_their_principal(tmp_path: Path) -> None:
    path = tmp_path / "mg.duckdb"
    with Store(path) as store:
        token = store.add_token("frp-par", "frp")
        store.add_token("ops", "operator", token="fixed-token")
        assert store.token_names() == {("frp-par", "frp"), ("ops", "operator")}
    assert token.encode() not in path.read_bytes()
    with Store(path) as store:
        principal = store.principal(token)
        assert principal is not None
        assert (principal.name, principal.role) == ("frp-par", "frp")
        assert store.principal("fixed-token") is not None
        assert store.principal("nope") is None
    assert len(hash_token(token)) == 64


class FailingRows:
    """A DuckDB connection whose insert into partial_rows fails, as a full disk would."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def execute(self, query: str, *args: Any) -> Any:
        if query.startswith("INSERT INTO partial_rows"):
            raise duckdb.IOException("disk full")
        return self.con.execute(query, *args)


def test_a_failed_upload_leaves_nothing_behind() -> None:
    with Store(":memory:") as store:
        real = store._con
        assert real is not None
        store._con = FailingRows(real)  # type: ignore[assignment]
        with pytest.raises(StoreError, match="not stored: disk full"):
            store.put_partial(partial(1.0), meta())
        store._con = real
        assert store.counts() == {"tokens": 0, "uploads": 0, "partial_rows": 0}
        assert store.put_partial(partial(1.0), meta()).version == 1


def test_uploads_survive_closing_and_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mg.duckdb"
    with Store(path) as store:
        store.put_partial(partial(5.0), meta())
    with Store(path) as store:
        (current,) = store.current()
        assert store.rows(current.id)["bytes"].to_pylist() == [5.0]
        assert current.meta == meta()


def test_using_a_store_before_start_or_with_a_bad_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not started"):
        Store(":memory:").current()
    with pytest.raises(StoreError, match="cannot open"):
        Store(tmp_path / "missing" / "dir" / "mg.duckdb").start()
