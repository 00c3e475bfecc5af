"""The matrix store: tokens, uploads and partial rows in one DuckDB file (the only SQL).

Every upload of a partial matrix becomes a new *version* of its (FRP,
interval, period); older versions are kept, the newest is *current*. An
upload is written in one transaction, so a crash never leaves half of one.
Rows are kept in key order (PARTIAL_KEYS), the order the total's dense
accumulator sums fastest.
The store is the MG's only writer of the file (DuckDB locks it); its methods
may be called from several threads and are serialized by a lock.

>>> from flowmatrix.matrix.partial import PartialMeta, empty_partial
>>> with Store(":memory:") as store:
...     meta = PartialMeta(frp="f", interval="always", period_start_ms=0, period_end_ms=300_000)
...     first = store.put_partial(empty_partial(), meta)
...     again = store.put_partial(empty_partial(), meta)
>>> (first.status, first.version), (again.status, again.version)
(('stored', 1), ('unchanged', 1))
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa

from flowmatrix.errors import StoreError
from flowmatrix.matrix.partial import PARTIAL_KEYS, PARTIAL_SCHEMA, PartialMeta, digest

__all__ = [
    "SCHEMA_VERSION",
    "Blob",
    "Principal",
    "PutResult",
    "Role",
    "StatsPeriod",
    "StatsState",
    "Store",
    "Upload",
    "hash_token",
    "new_token",
]

log = logging.getLogger("flowmatrix.matrix.store")

Role = Literal["frp", "operator"]
#: version of the tables below, kept in the ``meta`` table
SCHEMA_VERSION = 1

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tokens (
        sha256 VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, role VARCHAR NOT NULL,
        created_ms BIGINT NOT NULL)""",
    "CREATE SEQUENCE IF NOT EXISTS upload_ids START 1",
    """CREATE TABLE IF NOT EXISTS uploads (
        id BIGINT PRIMARY KEY, frp VARCHAR NOT NULL, "interval" VARCHAR NOT NULL,
        period_start_ms BIGINT NOT NULL, period_end_ms BIGINT NOT NULL, version INTEGER NOT NULL,
        digest VARCHAR NOT NULL, received_ms BIGINT NOT NULL, mode VARCHAR NOT NULL,
        meta_json VARCHAR NOT NULL, "rows" BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS partial_rows (
        upload_id BIGINT NOT NULL, ingress_pe VARCHAR NOT NULL, in_if UINTEGER NOT NULL,
        vrf VARCHAR NOT NULL, egress_pe VARCHAR NOT NULL, tos UTINYINT NOT NULL,
        class VARCHAR NOT NULL, bytes DOUBLE NOT NULL, packets DOUBLE NOT NULL,
        flows DOUBLE NOT NULL, sampled_packets DOUBLE NOT NULL, bytes_var DOUBLE NOT NULL,
        packets_var DOUBLE NOT NULL)""",
    # statistics snapshots (mg/stats.py): one row per interval, one per counted period
    """CREATE TABLE IF NOT EXISTS stats_state (
        "interval" VARCHAR PRIMARY KEY, meta_json VARCHAR NOT NULL, keys BLOB NOT NULL,
        bytes_mean BLOB NOT NULL, bytes_m2 BLOB NOT NULL, packets_mean BLOB NOT NULL,
        packets_m2 BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stats_periods (
        "interval" VARCHAR NOT NULL, period_start_ms BIGINT NOT NULL,
        period_end_ms BIGINT NOT NULL, uploads VARCHAR NOT NULL, volume DOUBLE NOT NULL,
        node_volume BLOB NOT NULL, link_bps BLOB NOT NULL, element_bytes BLOB NOT NULL,
        element_packets BLOB NOT NULL, PRIMARY KEY ("interval", period_start_ms))""",
    # the finer statistics (if_pe, vrf), added after the tables above: a file written before
    # gets the columns empty (its snapshot is then rebuilt, see mg/stats.py)
    "ALTER TABLE stats_state ADD COLUMN IF NOT EXISTS detail_keys BLOB DEFAULT ''::BLOB",
    "ALTER TABLE stats_periods ADD COLUMN IF NOT EXISTS detail_bytes BLOB DEFAULT ''::BLOB",
    "ALTER TABLE stats_periods ADD COLUMN IF NOT EXISTS detail_packets BLOB DEFAULT ''::BLOB",
)
#: columns of ``stats_state``, in :class:`StatsState` field order
_STATE_COLUMNS = (
    '"interval", meta_json, keys, bytes_mean, bytes_m2, packets_mean, packets_m2, detail_keys'
)
#: columns of ``stats_periods``, in :class:`StatsPeriod` field order
_PERIOD_COLUMNS = (
    '"interval", period_start_ms, period_end_ms, uploads, volume, node_volume, link_bps, '
    "element_bytes, element_packets, detail_bytes, detail_packets"
)
_UPLOAD_COLUMNS = (
    'id, frp, "interval", period_start_ms, period_end_ms, version, digest, received_ms, '
    'meta_json, "rows"'
)
#: current version of each (frp, interval, period)
_CURRENT = f"""SELECT {_UPLOAD_COLUMNS} FROM uploads
    QUALIFY version = max(version) OVER (PARTITION BY frp, "interval", period_start_ms)"""


def new_token() -> str:
    """A fresh random bearer token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a token is stored as.

    >>> len(hash_token("x"))
    64
    """
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to: a name and a role."""

    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class PutResult:
    """What storing an upload did: ``stored`` a new version or found it ``unchanged``."""

    status: Literal["stored", "unchanged"]
    version: int
    digest: str


@dataclass(frozen=True, slots=True)
class Upload:
    """One stored version of a partial matrix, without its rows."""

    id: int
    frp: str
    interval: str
    period_start_ms: int
    period_end_ms: int
    version: int
    digest: str
    received_ms: int
    meta: PartialMeta
    rows: int
    current: bool = True


#: a saved vector: bytes as read back, any contiguous buffer (e.g. a numpy array) to write
Blob = bytes | memoryview


@dataclass(frozen=True, slots=True)
class StatsState:
    """One interval's saved running statistics; the blobs are the caller's (float64/int64 bytes)."""

    interval: str
    #: the caller's JSON: counts, period order, names, fingerprints
    meta_json: str
    keys: Blob
    bytes_mean: Blob
    bytes_m2: Blob
    packets_mean: Blob
    packets_m2: Blob
    #: the keys of the finest elements (if_pe and vrf statistics); empty without them
    detail_keys: Blob = b""


@dataclass(frozen=True, slots=True)
class StatsPeriod:
    """One counted period of an interval's saved statistics: its values and the uploads summed."""

    interval: str
    period_start_ms: int
    period_end_ms: int
    #: ids of the current uploads the period's values were summed from, comma-separated
    uploads: str
    volume: float
    node_volume: Blob
    link_bps: Blob
    #: the period's bytes and packets per element code
    element_bytes: Blob
    element_packets: Blob
    #: the period's bytes and packets per finest element; empty without them
    detail_bytes: Blob = b""
    detail_packets: Blob = b""


def _arrow_rows(rows: Sequence[Any], fields: Sequence[str]) -> pa.Table:
    """Dataclass rows → an Arrow table, one column per field.

    Blobs (bytes or any buffer) become large-binary chunks over their own
    memory, without a copy (``pa.array`` of 8 MB bytes objects copies them
    slowly).
    """
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in fields:  # per column
        values = [getattr(r, name) for r in rows]
        if values and isinstance(values[0], bytes | memoryview):
            chunks = [
                pa.LargeBinaryArray.from_buffers(
                    pa.large_binary(),
                    1,
                    [
                        None,
                        pa.py_buffer(np.array([0, memoryview(v).nbytes], np.int64)),
                        pa.py_buffer(v),
                    ],
                )
                for v in values  # per row: a few rows per write
            ]
            columns[name] = pa.chunked_array(chunks, pa.large_binary())
        else:
            columns[name] = pa.array(values)
    return pa.table(columns)


def _first(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, read to the end (DuckDB refuses new work on a pending one)."""
    rows = result.fetchall()
    return tuple(rows[0]) if rows else None


def _upload(row: tuple[Any, ...], current: bool = True) -> Upload:
    return Upload(
        id=int(row[0]),
        frp=str(row[1]),
        interval=str(row[2]),
        period_start_ms=int(row[3]),
        period_end_ms=int(row[4]),
        version=int(row[5]),
        digest=str(row[6]),
        received_ms=int(row[7]),
        meta=PartialMeta.model_validate_json(row[8]),
        rows=int(row[9]),
        current=current,
    )


class Store:
    """Tokens, uploads and partial rows in a DuckDB file (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open (or create) the file and bring its tables to SCHEMA_VERSION."""
        try:
            con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            msg = f"store {self.path}: cannot open: {exc}"
            raise StoreError(msg) from None
        try:
            for ddl in _DDL:
                con.execute(ddl)
            row = _first(con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            elif int(row[0]) > SCHEMA_VERSION:
                msg = f"store {self.path}: schema version {row[0]} is newer than {SCHEMA_VERSION}"
                raise StoreError(msg)
        except BaseException:
            con.close()
            raise
        self._con = con
        log.info("component=store event=started path=%s", self.path)

    def stop(self) -> None:
        """Checkpoint and close the file."""
        with self._lock:
            if self._con is not None:
                try:
                    self._con.execute("CHECKPOINT")
                finally:
                    self._con.close()
                    self._con = None
                log.info("component=store event=stopped path=%s", self.path)

    def __enter__(self) -> Store:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @contextmanager
    def _transaction(self, con: duckdb.DuckDBPyConnection, failed: str) -> Iterator[None]:
        """BEGIN … COMMIT; ROLLBACK on any error, a DuckDB one raised as StoreError(``failed``)."""
        con.execute("BEGIN TRANSACTION")
        try:
            yield
            con.execute("COMMIT")
        except BaseException as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                msg = f"store {self.path}: {failed}: {exc}"
                raise StoreError(msg) from None
            raise

    def _db(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            msg = f"store {self.path}: not started"
            raise StoreError(msg)
        return self._con

    # --- tokens ------------------------------------------------------------------------------

    def add_token(self, name: str, role: Role, token: str | None = None) -> str:
        """Record a token for ``name`` with ``role`` (a new random one unless given); return it."""
        if role not in ("frp", "operator"):
            msg = f"unknown role {role!r}"
            raise StoreError(msg)
        token = token or new_token()
        with self._lock:
            self._db().execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)",
                [hash_token(token), name, role, int(time.time() * 1000)],
            )
        log.info("component=store event=token_added name=%s role=%s", name, role)
        return token

    def principal(self, token: str) -> Principal | None:
        """Whose ``token`` this is, or None when the store does not know it."""
        with self._lock:
            row = _first(
                self._db().execute(
                    "SELECT name, role FROM tokens WHERE sha256 = ?", [hash_token(token)]
                )
            )
        if row is None:
            return None
        role: Role = "operator" if row[1] == "operator" else "frp"
        return Principal(str(row[0]), role)

    def token_names(self) -> set[tuple[str, str]]:
        """The (name, role) pairs that have at least one token."""
        with self._lock:
            rows = self._db().execute("SELECT DISTINCT name, role FROM tokens").fetchall()
        return {(str(n), str(r)) for n, r in rows}

    # --- uploads -----------------------------------------------------------------------------

    def put_partial(
        self,
        table: pa.Table,
        meta: PartialMeta,
        *,
        content_digest: str | None = None,
        received_ms: int | None = None,
    ) -> PutResult:
        """Store a partial matrix as the new current version, unless it equals the current one."""
        table = table.select(PARTIAL_SCHEMA.names).cast(PARTIAL_SCHEMA)
        content_digest = content_digest or digest(table, meta)
        received_ms = int(time.time() * 1000) if received_ms is None else received_ms
        key = [meta.frp, meta.interval, meta.period_start_ms]
        with self._lock:
            con = self._db()
            row = _first(
                con.execute(
                    'SELECT version, digest FROM uploads WHERE frp = ? AND "interval" = ? '
                    "AND period_start_ms = ? ORDER BY version DESC LIMIT 1",
                    key,
                )
            )
            if row is not None and row[1] == content_digest:
                return PutResult("unchanged", int(row[0]), content_digest)
            version = 1 if row is None else int(row[0]) + 1
            with self._transaction(con, "upload not stored"):
                (upload_id,) = _first(con.execute("SELECT nextval('upload_ids')")) or (0,)
                con.execute(
                    f"INSERT INTO uploads ({_UPLOAD_COLUMNS}, mode) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        upload_id,
                        *key,
                        meta.period_end_ms,
                        version,
                        content_digest,
                        received_ms,
                        meta.model_dump_json(),
                        table.num_rows,
                        meta.mode,
                    ],
                )
                with _registered(con, "incoming_partial", table):
                    con.execute(
                        "INSERT INTO partial_rows SELECT ?, * FROM incoming_partial "
                        f"ORDER BY {', '.join(PARTIAL_KEYS)}",
                        [upload_id],
                    )
        log.info(
            "component=store event=stored frp=%s interval=%s period_start_ms=%d version=%d rows=%d",
            meta.frp,
            meta.interval,
            meta.period_start_ms,
            version,
            table.num_rows,
        )
        return PutResult("stored", version, content_digest)

    def versions(self, frp: str, interval: str, period_start_ms: int) -> list[Upload]:
        """Every stored version of one (FRP, interval, period), oldest first."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    f'SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE frp = ? AND "interval" = ? '
                    "AND period_start_ms = ? ORDER BY version",
                    [frp, interval, period_start_ms],
                )
                .fetchall()
            )
        return [_upload(r, current=i == len(rows) - 1) for i, r in enumerate(rows)]

    def current(
        self,
        interval: str | None = None,
        *,
        period_start_ms: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[Upload]:
        """Current versions, by interval and period (``since_ms <= start < until_ms``)."""
        where, params = ["TRUE"], []
        for clause, value in (
            ('"interval" = ?', interval),
            ("period_start_ms = ?", period_start_ms),
            ("period_start_ms >= ?", since_ms),
            ("period_start_ms < ?", until_ms),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        query = (
            f"SELECT * FROM ({_CURRENT}) WHERE {' AND '.join(where)} "
            'ORDER BY "interval", period_start_ms, frp'
        )
        with self._lock:
            rows = self._db().execute(query, params).fetchall()
        return [_upload(r) for r in rows]

    def count_incomplete(self, expected: Sequence[str]) -> int:
        """Stored (interval, period) pairs lacking an upload of some ``expected`` FRP."""
        if not expected:
            return 0
        marks = ", ".join("?" for _ in expected)
        query = (
            "SELECT count(*) FROM (SELECT count(DISTINCT frp) FILTER "
            f'(WHERE frp IN ({marks})) AS n FROM uploads GROUP BY "interval", period_start_ms) '
            "WHERE n < ?"
        )
        with self._lock:
            row = _first(self._db().execute(query, [*expected, len(set(expected))]))
        return int(row[0]) if row else 0

    def rows(self, upload_id: int) -> pa.Table:
        """The partial matrix rows of one upload (PARTIAL_SCHEMA)."""
        cols = ", ".join(PARTIAL_SCHEMA.names)
        with self._lock:
            table = (
                self._db()
                .sql(f"SELECT {cols} FROM partial_rows WHERE upload_id = ?", params=[upload_id])
                .to_arrow_table()
            )
        return table.cast(PARTIAL_SCHEMA)

    def iter_rows(self, uploads: Sequence[Upload]) -> Iterator[pa.Table]:
        """The rows of each upload in turn."""
        for upload in uploads:
            yield self.rows(upload.id)

    # --- key/value ---------------------------------------------------------------------------

    def put_meta(self, key: str, value: str) -> None:
        """Set ``key`` of the ``meta`` table to ``value`` (e.g. a component's JSON state)."""
        if key == "schema_version":
            msg = "the schema version is the store's own"
            raise StoreError(msg)
        with self._lock:
            self._db().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def get_meta(self, key: str) -> str | None:
        """The value of ``key`` in the ``meta`` table, or None when it was never set."""
        with self._lock:
            row = _first(self._db().execute("SELECT value FROM meta WHERE key = ?", [key]))
        return None if row is None else str(row[0])

    # --- statistics snapshots ----------------------------------------------------------------

    def put_stats(self, state: StatsState, periods: Sequence[StatsPeriod] = ()) -> None:
        """Save an interval's statistics and (re)write some of its periods, in one transaction.

        The rows go in as registered Arrow tables: large blobs bound as query
        parameters are copied several times (ten times slower for 8 MB).
        """
        state_rows = _arrow_rows([state], StatsState.__slots__)
        period_rows = _arrow_rows(periods, StatsPeriod.__slots__)
        with self._lock:
            con = self._db()
            with self._transaction(con, "statistics not saved"):
                for table, name, columns in (
                    (state_rows, "stats_state", _STATE_COLUMNS),
                    (period_rows, "stats_periods", _PERIOD_COLUMNS),
                ):
                    if table.num_rows == 0:
                        continue
                    with _registered(con, "incoming_stats", table):
                        con.execute(
                            f"INSERT OR REPLACE INTO {name} ({columns}) "
                            "SELECT * FROM incoming_stats"
                        )

    def stats_states(self) -> list[StatsState]:
        """Every interval's saved statistics, by interval."""
        with self._lock:
            rows = (
                self._db()
                .execute(f'SELECT {_STATE_COLUMNS} FROM stats_state ORDER BY "interval"')
                .fetchall()
            )
        return [StatsState(str(r[0]), str(r[1]), *(bytes(b or b"") for b in r[2:])) for r in rows]

    def stats_periods(self, interval: str) -> list[StatsPeriod]:
        """The saved periods of one interval, by period start."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    f'SELECT {_PERIOD_COLUMNS} FROM stats_periods WHERE "interval" = ? '
                    "ORDER BY period_start_ms",
                    [interval],
                )
                .fetchall()
            )
        return [
            StatsPeriod(
                str(r[0]),
                int(r[1]),
                int(r[2]),
                str(r[3]),
                float(r[4]),
                *(bytes(b or b"") for b in r[5:]),
            )
            for r in rows
        ]

    def clear_stats(self) -> None:
        """Forget every saved statistic (before a full rebuild)."""
        with self._lock:
            con = self._db()
            con.execute("DELETE FROM stats_periods")
            con.execute("DELETE FROM stats_state")

    def counts(self) -> dict[str, int]:
        """Rows in each table (for logs and health)."""
        with self._lock:
            con = self._db()
            return {
                t: int((_first(con.execute(f"SELECT count(*) FROM {t}")) or (0,))[0])
                for t in ("tokens", "uploads", "partial_rows")
            }


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to SQL as ``name`` for the duration of the block."""
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)
