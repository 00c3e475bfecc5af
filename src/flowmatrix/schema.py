"""Flow columns declared once: name, numpy dtype, Arrow type, DuckDB type and meaning.

Every consumer of flow records (decoders, Parquet/CSV writers, the store's
DDL, the docs) derives its layout from :data:`FLOW_COLUMNS`. In memory a
:class:`FlowBatch` holds one numpy array per column, all of one length.

Addresses follow :mod:`flowmatrix.addr`: two ``uint64`` halves (``*_hi``,
``*_lo``), IPv4 in the low 32 bits of ``*_lo`` with ``*_hi`` = 0, and a family
(4, 6, or 0 = absent). In the Arrow/Parquet form each address becomes one
``fixed_size_binary(16)`` column (``hi`` then ``lo``, big-endian: an IPv4
address is 12 zero bytes and its 4 octets) that is null when absent; the
family column is kept, so the form is lossless and sorts like the integers.

>>> batch = FlowBatch.empty(2)
>>> len(batch), batch["bytes"].dtype.name
(2, 'uint64')
>>> FlowBatch.from_arrow(batch.to_arrow()) == batch
True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "ADDRESS_COLUMNS",
    "FLOW_COLUMNS",
    "Column",
    "FlowBatch",
    "markdown_table",
]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a batch: its name, types in numpy, Arrow and DuckDB, and meaning."""

    name: str
    dtype: np.dtype[Any]
    arrow: pa.DataType
    duckdb: str
    doc: str


_TYPES: dict[str, tuple[pa.DataType, str]] = {
    "uint8": (pa.uint8(), "UTINYINT"),
    "uint16": (pa.uint16(), "USMALLINT"),
    "uint32": (pa.uint32(), "UINTEGER"),
    "uint64": (pa.uint64(), "UBIGINT"),
    "int64": (pa.int64(), "BIGINT"),
}


def _col(name: str, dtype: str, doc: str) -> Column:
    arrow, duck = _TYPES[dtype]
    return Column(name, np.dtype(dtype), arrow, duck, doc)


def _address(name: str, what: str, family: bool = True) -> list[Column]:
    cols = []
    if family:
        cols.append(_col(f"{name}_version", "uint8", f"address family of {what}: 4, 6, 0 = absent"))
    cols += [
        _col(f"{name}_hi", "uint64", f"{what}, high 64 bits (0 for IPv4)"),
        _col(f"{name}_lo", "uint64", f"{what}, low 64 bits (IPv4 in the low 32)"),
    ]
    return cols


#: every flow column, in batch and file order
FLOW_COLUMNS: tuple[Column, ...] = (
    _col("export_version", "uint8", "export protocol: 5, 9 or 10 (IPFIX)"),
    *_address("exporter", "the exporter's source address"),
    _col("source_id", "uint32", "v9 source id, IPFIX observation domain, v5 engine type<<8|id"),
    _col("start_ms", "int64", "first packet, ms since the epoch (UTC)"),
    _col("end_ms", "int64", "last packet, ms since the epoch (UTC)"),
    _col("ip_version", "uint8", "4 or 6: family of src and dst"),
    *_address("src", "source address", family=False),
    *_address("dst", "destination address", family=False),
    _col("src_mask", "uint8", "source prefix length (IE 9/29)"),
    _col("dst_mask", "uint8", "destination prefix length (IE 13/30)"),
    _col("in_if", "uint32", "input ifIndex (IE 10)"),
    _col("out_if", "uint32", "output ifIndex (IE 14)"),
    _col("tos", "uint8", "IP ToS / traffic class (IE 5)"),
    _col("protocol", "uint8", "IP protocol (IE 4)"),
    _col("src_port", "uint16", "source transport port (IE 7)"),
    _col("dst_port", "uint16", "destination transport port (IE 11)"),
    _col("bytes", "uint64", "octets as exported, not renormalized (IE 1, else 85, else 23)"),
    _col("packets", "uint64", "packets as exported, not renormalized (IE 2, else 86, else 24)"),
    *_address("bgp_next_hop", "BGP next hop (IE 18/63)"),
    *_address("ip_next_hop", "IP next hop (IE 15/62)"),
    _col("direction", "uint8", "flowDirection (IE 61): 0 ingress, 1 egress"),
    _col("ingress_vrf_id", "uint32", "ingressVRFID (IE 234)"),
    _col("egress_vrf_id", "uint32", "egressVRFID (IE 235)"),
    _col("mpls_label_1", "uint32", "top MPLS label value, 20 bits (IE 70 >> 4)"),
    _col("sampling_interval", "uint32", "1-in-N packet sampling; 0 or 1 = unsampled"),
    _col("sampler_id", "uint32", "sampler id (IE 48) the interval was learned from"),
)

_BY_NAME = {c.name: c for c in FLOW_COLUMNS}

#: address columns of the Arrow form: name → (family column, hi column, lo column)
ADDRESS_COLUMNS: dict[str, tuple[str, str, str]] = {
    "exporter": ("exporter_version", "exporter_hi", "exporter_lo"),
    "src": ("ip_version", "src_hi", "src_lo"),
    "dst": ("ip_version", "dst_hi", "dst_lo"),
    "bgp_next_hop": ("bgp_next_hop_version", "bgp_next_hop_hi", "bgp_next_hop_lo"),
    "ip_next_hop": ("ip_next_hop_version", "ip_next_hop_hi", "ip_next_hop_lo"),
}
_HALVES = {half for _, hi, lo in ADDRESS_COLUMNS.values() for half in (hi, lo)}
_FIRST_HALF = {hi: name for name, (_, hi, _) in ADDRESS_COLUMNS.items()}


def _pack16(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> npt.NDArray[np.void]:
    both = np.empty((len(hi), 2), dtype=">u8")
    both[:, 0] = hi
    both[:, 1] = lo
    return both.view("V16").reshape(-1)


@dataclass(frozen=True, eq=False)
class FlowBatch(Mapping[str, npt.NDArray[Any]]):
    """Equal-length numpy columns, one per entry of :data:`FLOW_COLUMNS`."""

    columns: dict[str, npt.NDArray[Any]]

    def __post_init__(self) -> None:
        lengths = {len(a) for a in self.columns.values()}
        if len(lengths) > 1 or set(self.columns) != set(_BY_NAME):
            msg = f"a FlowBatch needs the flow columns with one length, got {sorted(lengths)}"
            raise ValueError(msg)

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_BY_NAME)

    def __len__(self) -> int:
        return len(self.columns["bytes"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlowBatch):
            return NotImplemented
        return all(np.array_equal(self[c], other[c]) for c in _BY_NAME)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def empty(cls, n: int = 0) -> FlowBatch:
        """A batch of ``n`` rows, every column zero."""
        return cls({c.name: np.zeros(n, dtype=c.dtype) for c in FLOW_COLUMNS})

    @classmethod
    def from_columns(cls, columns: Mapping[str, npt.ArrayLike], n: int) -> FlowBatch:
        """A batch of ``n`` rows from some columns (cast to their dtype), the rest zero."""
        out = {}
        for c in FLOW_COLUMNS:
            value = columns.get(c.name)
            out[c.name] = (
                np.zeros(n, dtype=c.dtype)
                if value is None
                else np.ascontiguousarray(np.broadcast_to(np.asarray(value), (n,)), c.dtype)
            )
        return cls(out)

    @classmethod
    def concat(cls, batches: Iterable[FlowBatch]) -> FlowBatch:
        """One batch holding the rows of ``batches`` in order."""
        parts = [b for b in batches if len(b)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls({c: np.concatenate([b[c] for b in parts]) for c in _BY_NAME})

    def take(self, index: npt.NDArray[np.integer[Any] | np.bool_] | slice) -> FlowBatch:
        """The rows at ``index`` (integer positions or a boolean mask)."""
        return FlowBatch({c: self.columns[c][index] for c in _BY_NAME})

    def to_arrow(self) -> pa.Table:
        """Arrow table: addresses as nullable ``fixed_size_binary(16)``, the rest as typed."""
        arrays: dict[str, pa.Array] = {}
        for c in FLOW_COLUMNS:
            if c.name in _FIRST_HALF:
                name = _FIRST_HALF[c.name]
                fam, hi, lo = ADDRESS_COLUMNS[name]
                present = self[fam] != 0
                if not present.any():  # absent everywhere (e.g. no next hop exported)
                    arrays[name] = _null_addresses(len(present))
                    continue
                packed = _pack16(self[hi], self[lo])
                arrays[name] = pa.FixedSizeBinaryArray.from_buffers(
                    pa.binary(16),
                    len(packed),
                    [None if present.all() else _validity(present), pa.py_buffer(packed)],
                )
            elif c.name not in _HALVES:
                arrays[c.name] = pa.array(self[c.name], c.arrow)
        return pa.table(arrays)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> FlowBatch:
        """The batch of an Arrow table written by :meth:`to_arrow`."""
        n = table.num_rows
        cols: dict[str, npt.NDArray[Any]] = {}
        for name, (_, hi, lo) in ADDRESS_COLUMNS.items():
            arr = table.column(name).combine_chunks().fill_null(b"\0" * 16)
            raw = np.frombuffer(arr.buffers()[1], dtype=">u8", count=2 * n + 2 * arr.offset)
            raw = raw[2 * arr.offset :].reshape(n, 2)
            cols[hi] = raw[:, 0].astype(np.uint64)
            cols[lo] = raw[:, 1].astype(np.uint64)
        for c in FLOW_COLUMNS:
            if c.name not in _HALVES:
                cols[c.name] = table.column(c.name).to_numpy().astype(c.dtype, copy=False)
        return cls.from_columns(cols, n)


def markdown_table(columns: tuple[Column, ...] = FLOW_COLUMNS) -> str:
    """The columns as a Markdown table (name, numpy, Arrow, DuckDB, meaning) for the docs."""
    lines = ["| column | numpy | Arrow | DuckDB | meaning |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| `{c.name}` | {c.dtype.name} | {c.arrow} | {c.duckdb} | {c.doc} |" for c in columns
    ]
    return "\n".join(lines) + "\n"


#: address columns of at most this many rows that are null everywhere share one array
_SHARED_NULLS = 1 << 18
_null_cache: list[pa.Array] = [pa.nulls(0, pa.binary(16))]


def _null_addresses(n: int) -> pa.Array:
    """``n`` null addresses: a slice of one shared array (Arrow arrays are immutable)."""
    if n > _SHARED_NULLS:
        return pa.nulls(n, pa.binary(16))
    if len(_null_cache[0]) < n:
        _null_cache[0] = pa.nulls(max(n, 1 << 16), pa.binary(16))
    return _null_cache[0].slice(0, n)


def _validity(mask: npt.NDArray[np.bool_]) -> pa.Buffer:
    return pa.py_buffer(np.packbits(mask, bitorder="little").tobytes())
