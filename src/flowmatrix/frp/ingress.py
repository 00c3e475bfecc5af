"""Ingress records ⇄ Parquet part files under ``DATA/ingress``, written atomically.

Layout::

    ingress/<interval>/<period start, %Y%m%dT%H%M%SZ>/<pe>/part-<n>.parquet

Each part is written to a dot-prefixed temporary name in its directory,
fsynced and renamed with ``os.replace``: a crash never leaves a half file
under a readable name, and readers only glob ``part-*.parquet``. Rows follow
:data:`~flowmatrix.matrix.partial.INGRESS_SCHEMA` (``egress_pe`` null),
compressed with LZ4; columns that are never null (all but the addresses and
``egress_pe``) are ``required`` in the file (:func:`file_schema`), which spares
the writer a definition level per value. Interval ids and PE names are
percent-quoted in paths.

>>> import tempfile
>>> from flowmatrix.matrix.partial import INGRESS_SCHEMA
>>> with tempfile.TemporaryDirectory() as tmp:
...     files = IngressFiles(Path(tmp))
...     _ = files.write("always", 0, "pe1", INGRESS_SCHEMA.empty_table())
...     files.periods(), files.read("always", 0).num_rows
([('always', 0)], 0)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import Counter

from flowmatrix.files import fsync_dir, fsync_file
from flowmatrix.matrix.partial import INGRESS_SCHEMA
from flowmatrix.schema import ADDRESS_COLUMNS

__all__ = [
    "COMPRESSION",
    "IngressFiles",
    "file_schema",
    "frp_ingress_rows_written_total",
    "period_name",
]

log = logging.getLogger("flowmatrix.frp.ingress")

#: Parquet codec of the part files: LZ4 (raw) costs about 2/3 of zstd level 1 to write,
#: for files about 1.5 times as large; the files are written on the hot path
COMPRESSION = "lz4"
#: columns of INGRESS_SCHEMA that may hold nulls: absent addresses, the unresolved egress PE
_OPTIONAL = frozenset({*ADDRESS_COLUMNS, "egress_pe"})
_PART = re.compile(r"^part-(\d+)\.parquet$")
_PERIOD = "%Y%m%dT%H%M%SZ"

frp_ingress_rows_written_total = Counter(
    "frp_ingress_rows_written_total", "Ingress records written to Parquet part files."
)


def period_name(period_start_ms: int) -> str:
    """A period start (unix ms) → its directory name, e.g. ``20260105T000000Z``."""
    when = dt.datetime.fromtimestamp(period_start_ms / 1000, tz=dt.UTC)
    name = when.strftime(_PERIOD)
    if period_start_ms % 1000:  # periods start on whole seconds; keep odd ones distinct
        name += f".{period_start_ms % 1000:03d}"
    return name


def _period_ms(name: str) -> int:
    base, _, ms = name.partition(".")
    when = dt.datetime.strptime(base, _PERIOD).replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1000 + (int(ms) if ms else 0)


def file_schema(table: pa.Table) -> pa.Schema:
    """The Parquet schema of a part file of ``table`` (INGRESS_SCHEMA): ``required`` columns
    where no null can be, so the writer encodes no definition levels for them.

    A column holding nulls anyway stays optional; readers get INGRESS_SCHEMA back either way.

    >>> file_schema(INGRESS_SCHEMA.empty_table()).field("bytes").nullable
    False
    >>> file_schema(INGRESS_SCHEMA.empty_table()).field("dst").nullable
    True
    """
    return pa.schema(
        f.with_nullable(f.name in _OPTIONAL or table.column(f.name).null_count > 0)
        for f in INGRESS_SCHEMA
    )


class IngressFiles:
    """The ingress part files of one FRP: write parts, list periods, read a period back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._next: dict[Path, int] = {}
        self._lock = threading.Lock()

    def period_dir(self, interval: str, period_start_ms: int) -> Path:
        """Directory of one (interval, period)."""
        return self.root / quote(interval, safe="") / period_name(period_start_ms)

    def _number(self, directory: Path) -> int:
        with self._lock:
            n = self._next.get(directory)
            if n is None:
                found = [
                    int(m.group(1))
                    for p in (directory.iterdir() if directory.is_dir() else ())
                    if (m := _PART.match(p.name))
                ]
                n = max(found, default=-1) + 1
            self._next[directory] = n + 1
            return n

    def write(self, interval: str, period_start_ms: int, pe: str, table: pa.Table) -> Path:
        """Write one part file of ingress records atomically; returns its path."""
        directory = self.period_dir(interval, period_start_ms) / quote(pe, safe="")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"part-{self._number(directory)}.parquet"
        tmp = directory / f".{path.name}.tmp"
        table = table.cast(INGRESS_SCHEMA)
        # Arrow's own file (no Python file object between the writer and the OS), then fsync;
        # plain encoding everywhere: dictionaries cost more to build than they save here
        with pa.OSFile(str(tmp), "wb") as out:
            pq.write_table(
                table.cast(file_schema(table)),
                out,
                compression=COMPRESSION,
                use_dictionary=False,
                write_statistics=False,
            )
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(directory)
        frp_ingress_rows_written_total.inc(table.num_rows)
        return path

    def parts(self, interval: str, period_start_ms: int) -> list[Path]:
        """The readable part files of one (interval, period), sorted by PE then number."""
        directory = self.period_dir(interval, period_start_ms)
        if not directory.is_dir():
            return []
        found = [
            (pe.name, int(m.group(1)), p)
            for pe in sorted(directory.iterdir())
            if pe.is_dir()
            for p in pe.iterdir()
            if (m := _PART.match(p.name))
        ]
        return [p for _, _, p in sorted(found)]

    def fingerprint(self, interval: str, period_start_ms: int) -> str:
        """What the period's files are (names and sizes): changes when a part is added."""
        h = hashlib.sha256()
        for p in self.parts(interval, period_start_ms):
            h.update(f"{p.parent.name}/{p.name}:{p.stat().st_size}\n".encode())
        return h.hexdigest()

    def read(self, interval: str, period_start_ms: int) -> pa.Table:
        """Every ingress record of one (interval, period) (INGRESS_SCHEMA)."""
        tables = [
            pq.read_table(p, schema=INGRESS_SCHEMA) for p in self.parts(interval, period_start_ms)
        ]
        if not tables:
            return INGRESS_SCHEMA.empty_table()
        return pa.concat_tables(tables)

    def periods(self) -> list[tuple[str, int]]:
        """Every (interval, period start) with a directory under the root, sorted."""
        out: list[tuple[str, int]] = []
        if not self.root.is_dir():
            return out
        for idir in self.root.iterdir():
            if not idir.is_dir() or idir.name.startswith("."):
                continue
            for pdir in idir.iterdir():
                try:
                    start = _period_ms(pdir.name)
                except ValueError:
                    log.warning("component=frp.ingress skipped=%s reason=not-a-period", pdir)
                    continue
                out.append((unquote(idir.name), start))
        return sorted(out)
