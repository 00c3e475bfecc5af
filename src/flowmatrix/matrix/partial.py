"""Partial matrices and ingress records on the wire: columns, envelope, digest.

An FRP sends the MG one *partial matrix* per interval and read-out period: an
Arrow table with the columns of :data:`PARTIAL_SCHEMA` (one row per ingress
PE, input interface, VRF, egress PE, ToS and class) and a
:class:`PartialMeta` describing who sent it, for which period, and what the
FRP saw on the way (exporters, sequence gaps, unresolved volumes). Both travel
as one Arrow IPC stream, the metadata as JSON under the schema metadata key
``flowmatrix``. In centralized mode the FRP sends *ingress records* instead
(:data:`INGRESS_SCHEMA`, the same envelope), and the MG resolves and
aggregates them itself.

Volumes are renormalized for sampling (``bytes`` = exported bytes × N) and
carry their variance, so errors add up when partials are summed: the 95 %
interval of an element is ``bytes ± 1.96·sqrt(bytes_var)``.

>>> meta = PartialMeta(frp="frp-a", interval="always", period_start_ms=0, period_end_ms=300_000)
>>> table, back = decode_partial(encode_partial(empty_partial(), meta))
>>> table.num_rows, back == meta
(0, True)
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flowmatrix.errors import UploadError
from flowmatrix.schema import FlowBatch

__all__ = [
    "INGRESS_EXTRA",
    "INGRESS_SCHEMA",
    "MEDIA_TYPE",
    "PARTIAL_KEYS",
    "PARTIAL_SCHEMA",
    "PARTIAL_VALUES",
    "ExporterReport",
    "PartialMeta",
    "UnresolvedReport",
    "decode_ingress",
    "decode_partial",
    "digest",
    "empty_partial",
    "encode_ingress",
    "encode_partial",
]

#: content type of every upload body
MEDIA_TYPE = "application/vnd.apache.arrow.stream"
#: the schema metadata key holding the envelope's JSON
_META_KEY = b"flowmatrix"
#: largest upload body accepted, octets
MAX_BODY = 512 * 1024 * 1024

#: key columns of a partial matrix, in sort order
PARTIAL_KEYS = ("ingress_pe", "in_if", "vrf", "egress_pe", "tos", "class")
#: value columns of a partial matrix (float64: multipath shares split volumes)
PARTIAL_VALUES = ("bytes", "packets", "flows", "sampled_packets", "bytes_var", "packets_var")

#: one row per ingress PE, input interface, VRF ("" = global), egress PE, ToS and class
PARTIAL_SCHEMA = pa.schema(
    [
        pa.field("ingress_pe", pa.string(), nullable=False),
        pa.field("in_if", pa.uint32(), nullable=False),
        pa.field("vrf", pa.string(), nullable=False),
        pa.field("egress_pe", pa.string(), nullable=False),  # "unresolved" when unknown
        pa.field("tos", pa.uint8(), nullable=False),
        pa.field("class", pa.string(), nullable=False),
        pa.field("bytes", pa.float64(), nullable=False),  # renormalized: exported × N
        pa.field("packets", pa.float64(), nullable=False),  # renormalized
        pa.field("flows", pa.float64(), nullable=False),  # flow records (× multipath share)
        pa.field("sampled_packets", pa.float64(), nullable=False),  # as exported, not × N
        pa.field("bytes_var", pa.float64(), nullable=False),  # variance of bytes; 0 unsampled
        pa.field("packets_var", pa.float64(), nullable=False),
    ]
)

#: the columns an ingress record has beyond its flow record (claims 12–21)
INGRESS_EXTRA = (
    pa.field("interval", pa.string(), nullable=False),
    pa.field("period_start_ms", pa.int64(), nullable=False),
    pa.field("ingress_pe", pa.string(), nullable=False),
    pa.field("ingress_loopback", pa.string(), nullable=False),
    pa.field("egress_pe", pa.string(), nullable=True),  # empty until resolved
)
#: an ingress record: every flow column (Arrow form of FlowBatch) plus INGRESS_EXTRA
INGRESS_SCHEMA = pa.schema([*FlowBatch.empty().to_arrow().schema, *INGRESS_EXTRA])


class ExporterReport(BaseModel):
    """What the FRP received from one exporter (address and source id) in the period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    source_id: int = 0
    pe: str = ""
    datagrams: int = Field(0, ge=0)
    records: int = Field(0, ge=0)
    dropped: int = Field(0, ge=0)
    #: units missing according to export sequence numbers
    gap: int = Field(0, ge=0)
    #: what ``gap`` counts: v5 flows, v9 export packets, IPFIX data records
    gap_unit: Literal["flows", "packets", "records", ""] = ""


class UnresolvedReport(BaseModel):
    """Volume whose egress PE stayed unknown, for one reason (see routing.REASONS)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    bytes: float = Field(0.0, ge=0)
    packets: float = Field(0.0, ge=0)
    flows: float = Field(0.0, ge=0)


class PartialMeta(BaseModel):
    """The envelope of an upload: sender, interval and period, and what was seen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    frp: str = Field(min_length=1, max_length=200)
    interval: str = Field(min_length=1, max_length=200)
    period_start_ms: int
    period_end_ms: int
    mode: Literal["distributed", "centralized"] = "distributed"
    #: PEs whose records this upload covers (the FRP's PEs)
    pes: tuple[str, ...] = ()
    #: the FRP's own counter of uploads for this period (informational)
    revision: int = Field(1, ge=1)
    #: flow records that went into the rows
    records: int = Field(0, ge=0)
    exporters: tuple[ExporterReport, ...] = ()
    unresolved: tuple[UnresolvedReport, ...] = ()
    #: unix ms the FRP built the upload (informational)
    created_ms: int = 0


def empty_partial() -> pa.Table:
    """A partial matrix with no rows."""
    return PARTIAL_SCHEMA.empty_table()


def _encode(table: pa.Table, meta: PartialMeta) -> bytes:
    schema = table.schema.with_metadata({_META_KEY: meta.model_dump_json().encode()})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, schema, options=options) as writer:
        writer.write_table(table.replace_schema_metadata(schema.metadata))
    return bytes(sink.getvalue().to_pybytes())


def _decode(data: bytes, expected: pa.Schema, what: str) -> tuple[pa.Table, PartialMeta]:
    if len(data) > MAX_BODY:
        msg = f"{what}: body of {len(data):,} octets exceeds {MAX_BODY:,}"
        raise UploadError(msg)
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        # a mangled stream can make Arrow raise any of these
        msg = f"{what}: not an Arrow IPC stream ({type(exc).__name__}: {exc})"
        raise UploadError(msg) from exc
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        msg = f"{what}: schema metadata has no 'flowmatrix' envelope"
        raise UploadError(msg)
    try:
        meta = PartialMeta.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0:3]
        msg = f"{what}: bad envelope: {' '.join(first)}"
        raise UploadError(msg) from exc
    table = table.replace_schema_metadata(None)
    if not table.schema.equals(expected):
        want = {f.name: str(f.type) for f in expected}
        got = {f.name: str(f.type) for f in table.schema}
        diff = sorted(
            f"{k}: {got.get(k, 'missing')} (expected {v})"
            for k, v in want.items()
            if got.get(k) != v
        ) + sorted(f"{k}: unexpected column" for k in got.keys() - want.keys())
        msg = f"{what}: columns differ from the schema: {'; '.join(diff) or 'nullability'}"
        raise UploadError(msg)
    if meta.period_end_ms <= meta.period_start_ms:
        msg = f"{what}: period_end_ms must be after period_start_ms"
        raise UploadError(msg)
    return table, meta


def encode_partial(table: pa.Table, meta: PartialMeta) -> bytes:
    """The upload body of a partial matrix (Arrow IPC stream, zstd, envelope in metadata)."""
    return _encode(table.select(PARTIAL_SCHEMA.names).cast(PARTIAL_SCHEMA), meta)


def decode_partial(data: bytes) -> tuple[pa.Table, PartialMeta]:
    """The table and envelope of an upload body; UploadError says what is wrong."""
    table, meta = _decode(data, PARTIAL_SCHEMA, "partial matrix")
    for name in PARTIAL_VALUES:
        col = table[name]
        bad = pc.sum(pc.or_(pc.less(col, 0), pc.is_nan(col))).as_py() if len(col) else 0
        if bad:
            msg = f"partial matrix: {bad} negative or NaN values in column {name!r}"
            raise UploadError(msg)
    return table, meta


def encode_ingress(table: pa.Table, meta: PartialMeta) -> bytes:
    """The upload body of a batch of ingress records (centralized mode)."""
    return _encode(table.select(INGRESS_SCHEMA.names).cast(INGRESS_SCHEMA), meta)


def decode_ingress(data: bytes) -> tuple[pa.Table, PartialMeta]:
    """The ingress records and envelope of an upload body; UploadError says what is wrong."""
    return _decode(data, INGRESS_SCHEMA, "ingress records")


def digest(table: pa.Table, meta: PartialMeta) -> str:
    """SHA-256 of what a partial says: its rows (sorted by key) and its period and sender.

    Informational fields (``revision``, ``created_ms``) are left out, so an FRP
    that sends the same content twice produces the same digest.
    """
    rows = table.select(PARTIAL_SCHEMA.names).cast(PARTIAL_SCHEMA)
    rows = rows.sort_by([(k, "ascending") for k in PARTIAL_KEYS])
    h = hashlib.sha256()
    head = meta.model_dump(exclude={"revision", "created_ms"})
    h.update(json.dumps(head, sort_keys=True).encode())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows.combine_chunks())
    h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()
