"""Flow records → ingress records (PE, interval, period) → renormalized partial matrices.

Two pure, vectorized steps of the FRP (claims 12–21):

* :func:`ingress_records` maps every flow of a batch to the PE that exported it
  (exporter address and source id, :attr:`PeRouter.exporters`; an exporter
  whose ``source_id`` is None matches any id) and to the read-out period of
  every measurement interval its ``start_ms`` falls in. A record inside several
  intervals becomes one ingress record per interval; records outside every
  interval, and records of no known PE, are counted and dropped. Rows come out
  grouped by (interval, period, PE), each group a :class:`Segment`.
* :func:`aggregate` (and :func:`partial_matrix`) sums ingress records resolved
  by :func:`flowmatrix.routing.resolve.resolve_egress` into a
  :data:`~flowmatrix.matrix.partial.PARTIAL_SCHEMA` table, renormalizing
  sampled counters: N = the record's ``sampling_interval`` when > 1, else the
  PE's configured ``sampling_rate``, else 1, and per row of the resolution
  (share = multipath share)::

      bytes           = exported_bytes × N × share
      packets         = exported_packets × N × share
      flows           = share
      sampled_packets = exported_packets × share
      packets_var     = N(N−1) × exported_packets × share
      bytes_var       = N(N−1) × exported_bytes × max(MAX_PACKET, exported_bytes /
                        max(exported_packets, 1)) × share

  The bytes variance is an upper bound: N(N−1)·Σs² over the sampled packets'
  sizes s is unbiased, but a record only says Σs and how many; Σs² ≤ Σs ×
  the largest size, and packets within one flow do differ in size (a bound
  from Σs²/k alone, exact only for equal sizes, left 95 % intervals covering
  less than 90 % of real traffic's elements).

No Python code runs per record: PEs are found with ``searchsorted`` over the
configured exporters; the records kept are sorted once by (PE, read-out
period) so every (interval, period, PE) group is a run of them, and their
flow columns are converted to Arrow once however many intervals hold them;
a batch is summed with one hashed composite integer key per (PE, input
interface, VRF, egress PE, ToS) cell and one ``bincount`` per value
(:func:`aggregate_batch`).

>>> import ipaddress
>>> from flowmatrix.config.model import Exporter, Interval, NetworkConfig, PeRouter
>>> pe = PeRouter("pe1", ipaddress.ip_address("198.19.0.1"), "PAR", frp="frp-par",
...     exporters=(Exporter(ipaddress.ip_address("127.0.0.1")),))
>>> config = NetworkConfig("n", 65000, pes=(pe,),
...     intervals=(Interval("always", "continuous", readout_seconds=300),))
>>> batch = FlowBatch.from_columns({"exporter_version": 4, "exporter_lo": 0x7F000001,
...     "start_ms": [1_000, 400_000], "bytes": 100, "packets": 2, "ip_version": 4}, 2)
>>> ingress = ingress_records(batch, config)
>>> [(s.interval, s.period_start_ms, s.pe, s.stop - s.start) for s in ingress.segments]
[('always', 0, 'pe1', 1), ('always', 300000, 'pe1', 1)]
>>> partial_matrix(ingress.table, no_resolution(ingress.table.num_rows), config)["bytes"]
<pyarrow.lib.ChunkedArray object at ...>
[
  [
    200
  ]
]
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flowmatrix.config.model import IPAddress, NetworkConfig
from flowmatrix.config.schedule import Schedule
from flowmatrix.matrix.partial import (
    INGRESS_SCHEMA,
    PARTIAL_KEYS,
    PARTIAL_SCHEMA,
    PARTIAL_VALUES,
    UnresolvedReport,
)
from flowmatrix.routing.resolve import REASONS, UNRESOLVED, Compiled, Resolution, resolve_egress
from flowmatrix.schema import FlowBatch

__all__ = [
    "Aggregate",
    "IngressPlan",
    "IngressRecords",
    "Segment",
    "add_partials",
    "address_halves",
    "aggregate",
    "aggregate_batch",
    "aggregate_groups",
    "ingress_records",
    "no_resolution",
    "partial_matrix",
    "resolve_ingress",
]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: reason code of flows resolved without routing tables (see routing.resolve.REASONS)
_NO_TABLES = REASONS.index("no_tables")
#: (group, cell) pairs summed with a dense ``bincount`` up to this many, else hashed first
_DENSE_CELLS = 1 << 20
#: constant columns kept by an :class:`IngressPlan` (see :meth:`IngressPlan.repeat`)
_CONSTANTS = 1024


class IngressPlan:
    """A configuration compiled for :func:`ingress_records` and :func:`aggregate`: built once.

    Holds the PE names in configuration order (the indices ``resolve_egress``
    uses), the exporter → PE look-up tables, the schedule, each PE's sampling
    rate and loopback, and each DSCP's class.
    """

    def __init__(self, config: NetworkConfig) -> None:
        self.config = config
        self.pe_names: list[str] = [p.name for p in config.pes]
        self.schedule = Schedule(config.intervals)
        self.interval_ids: list[str] = [i.id for i in config.intervals]
        #: the smallest read-out period, ms (period codes are multiples of it)
        self.readout_ms = min((i.readout_seconds for i in config.intervals), default=1) * 1000
        self.sampling_rate = np.array([max(p.sampling_rate, 1) for p in config.pes], np.float64)
        self.loopbacks: list[str] = [str(p.loopback) for p in config.pes]
        self.classes = pa.array(list(config.dscp_classes()), pa.string())
        self._constants: dict[tuple[str | int | None, str], pa.Array] = {}
        # distinct exporter addresses, sorted by their low word (then high, then family)
        addresses: dict[tuple[int, int, int], int] = {}
        exact: dict[tuple[int, int], int] = {}
        wildcard: dict[int, int] = {}
        for p, pe in enumerate(config.pes):
            if pe.remote:
                continue
            exporters: list[tuple[IPAddress, int | None]] = (
                [] if pe.exporters else [(a, None) for a in pe.exporter_addresses]
            )
            exporters += [(e.address, e.source_id) for e in pe.exporters]
            for address, source_id in exporters:
                value = int(address)
                key = (value & 0xFFFF_FFFF_FFFF_FFFF, value >> 64, address.version)
                a = addresses.setdefault(key, len(addresses))
                if source_id is None:
                    wildcard.setdefault(a, p)
                else:
                    exact.setdefault((a, source_id), p)
        order = sorted(addresses, key=lambda k: k)
        renumber = {addresses[k]: i for i, k in enumerate(order)}
        self.addr_lo = np.array([k[0] for k in order], dtype=np.uint64)
        self.addr_hi = np.array([k[1] for k in order], dtype=np.uint64)
        self.addr_family = np.array([k[2] for k in order], dtype=np.uint8)
        self.lo_unique = len(np.unique(self.addr_lo)) == len(self.addr_lo)
        self.wildcard_pe = np.full(len(order) + 1, -1, dtype=np.int32)
        for a, p in wildcard.items():
            self.wildcard_pe[renumber[a]] = p
        keys = sorted(((renumber[a] << 32) | sid, p) for (a, sid), p in exact.items())
        self.exact_key = np.array([k for k, _ in keys], dtype=np.int64)
        self.exact_pe = np.array([p for _, p in keys], dtype=np.int32)

    def repeat(self, value: str | int | None, kind: pa.DataType, count: int) -> pa.Array:
        """``count`` times ``value``: a slice of an array built once per value (names, periods)."""
        key = (value, str(kind))
        got = self._constants.get(key)
        if got is None or len(got) < count:
            if len(self._constants) >= _CONSTANTS:  # bounded: periods come and go
                self._constants.clear()
            got = pa.repeat(pa.scalar(value, kind), max(count, 1 << 16))
            self._constants[key] = got
        return got.slice(0, count)

    def address_index(self, family: npt.NDArray[Any], hi: npt.NDArray[Any], lo: I64) -> I64:
        """Index into the configured exporter addresses of each address; -1 for none."""
        n = len(lo)
        if not len(self.addr_lo):
            return np.full(n, -1, dtype=np.int64)
        if self.lo_unique:
            at = np.searchsorted(self.addr_lo, lo)
            at = np.minimum(at, len(self.addr_lo) - 1)
            ok = (
                (self.addr_lo[at] == lo)
                & (self.addr_hi[at] == hi)
                & (self.addr_family[at] == family)
            )
            return np.where(ok, at, -1).astype(np.int64)
        out = np.full(n, -1, dtype=np.int64)
        for a in range(len(self.addr_lo)):  # bounded by the configured exporters
            hit = (
                (lo == self.addr_lo[a]) & (hi == self.addr_hi[a]) & (family == self.addr_family[a])
            )
            out[hit] = a
        return out

    @property
    def exporter_texts(self) -> list[str]:
        """The configured exporter addresses as text, in :meth:`address_index` order."""
        return [
            str(ipaddress.ip_address((int(h) << 64) | int(lo_)))
            if f == 6
            else str(ipaddress.IPv4Address(int(lo_)))
            for f, h, lo_ in zip(
                self.addr_family.tolist(), self.addr_hi.tolist(), self.addr_lo.tolist(), strict=True
            )
        ]

    def pe_name_of(self, address: str, source_id: int) -> str:
        """The PE exporting from ``address`` with ``source_id``; empty when none."""
        value = int(ipaddress.ip_address(address))
        family = ipaddress.ip_address(address).version
        batch = FlowBatch.from_columns(
            {
                "exporter_version": family,
                "exporter_hi": value >> 64,
                "exporter_lo": value & 0xFFFF_FFFF_FFFF_FFFF,
                "source_id": source_id,
            },
            1,
        )
        p = int(self.pe_of(batch)[0])
        return self.pe_names[p] if p >= 0 else ""

    def pe_of(self, batch: FlowBatch) -> I32:
        """Index into :attr:`pe_names` of the PE that exported each record; -1 for none."""
        a = self.address_index(
            batch["exporter_version"], batch["exporter_hi"], batch["exporter_lo"]
        )
        pe = self.wildcard_pe[a]  # a = -1 picks the sentinel -1 at the end
        if len(self.exact_key):
            key = (np.maximum(a, 0) << 32) | batch["source_id"].astype(np.int64)
            at = np.minimum(np.searchsorted(self.exact_key, key), len(self.exact_key) - 1)
            hit = (self.exact_key[at] == key) & (a >= 0)
            pe = np.where(hit, self.exact_pe[at], pe)
        return pe.astype(np.int32)


@dataclass(frozen=True, slots=True)
class Segment:
    """Rows ``[start, stop)`` of an :class:`IngressRecords` table: one interval, period, PE."""

    interval: str
    period_start_ms: int
    pe: str
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class IngressRecords:
    """Ingress records of one batch, grouped by (interval, period, PE), and what was dropped."""

    #: rows per INGRESS_SCHEMA (egress_pe null), grouped as :attr:`segments` say
    table: pa.Table
    #: index into the plan's PE names of each row
    pe: I32
    #: the batch row each row comes from
    rows: I64
    segments: tuple[Segment, ...]
    #: flow records outside every measurement interval (dropped)
    outside: int
    #: flow records whose exporter and source id belong to no PE of the configuration (dropped)
    unmatched: int
    #: per (exporter address, source id) of the unmatched records, their count
    unmatched_by_exporter: dict[tuple[str, int], int]

    def slice(self, start: int, stop: int) -> IngressRecords:
        """Rows ``[start, stop)`` (segments and dropped counts left out)."""
        return IngressRecords(
            self.table.slice(start, stop - start),
            self.pe[start:stop],
            self.rows[start:stop],
            (),
            0,
            0,
            {},
        )


def _plan(config: NetworkConfig | IngressPlan) -> IngressPlan:
    return config if isinstance(config, IngressPlan) else IngressPlan(config)


def ingress_records(batch: FlowBatch, config: NetworkConfig | IngressPlan) -> IngressRecords:
    """A batch of flow records → its ingress records: PE, interval and period of each.

    Parameters
    ----------
    batch
        Decoded flow records.
    config
        The (FRP's view of the) configuration, or an :class:`IngressPlan` of it
        compiled once (what a long-running FRP passes).

    Returns
    -------
    IngressRecords
        The rows (one per record and interval it falls in), grouped by
        (interval, period start, PE) in that order, plus the dropped counts.

    Examples
    --------
    >>> from flowmatrix.config.model import Interval, NetworkConfig
    >>> empty = NetworkConfig("n", 65000, intervals=(Interval("all", "continuous"),))
    >>> got = ingress_records(FlowBatch.empty(3), empty)
    >>> got.table.num_rows, got.unmatched
    (0, 3)
    """
    plan = _plan(config)
    n = len(batch)
    pe = plan.pe_of(batch) if n else np.zeros(0, dtype=np.int32)
    known = pe >= 0
    unmatched = int(n - known.sum())
    by_exporter: dict[tuple[str, int], int] = {}
    if unmatched:
        by_exporter = _count_unmatched(batch, ~known)
    members = plan.schedule.classify(batch["start_ms"]) if n else []
    inside_any = np.zeros(n, dtype=np.bool_)
    for m in members:
        inside_any |= m.inside
    outside = int((known & ~inside_any).sum())
    # the distinct records kept, ordered by (PE, smallest read-out period, batch row): every
    # (interval, period, PE) group is then a run of them (periods are whole read-out periods)
    distinct = np.flatnonzero(known & inside_any)
    if not len(distinct):
        return IngressRecords(
            INGRESS_SCHEMA.empty_table(),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            (),
            outside,
            unmatched,
            by_exporter,
        )
    bucket = batch["start_ms"][distinct] // plan.readout_ms
    bucket -= int(bucket.min())
    first = _stable_order(pe[distinct].astype(np.int64) * (int(bucket.max()) + 1) + bucket)
    if first is not None:
        distinct = distinct[first]
    distinct_pe = pe[distinct]
    # per interval, its records in that order: each (period, PE) group is one run of them when
    # the interval's periods are made of whole read-out periods (else sorted again, stably)
    runs: list[tuple[int, int, int, I64]] = []
    for i, m in enumerate(members):  # per interval
        at = np.flatnonzero(m.inside[distinct])  # positions among the distinct records
        if not len(at):
            continue
        period = m.period_start_ms[distinct[at]]
        row_pe = distinct_pe[at]
        found = _runs(period, row_pe)
        if len({(p, q) for p, q, _, _ in found}) < len(found):
            order = np.lexsort((row_pe, period))
            at, period, row_pe = at[order], period[order], row_pe[order]
            found = _runs(period, row_pe)
        runs += [(i, p, q, at[a:b]) for p, q, a, b in sorted(found)]
    at = np.concatenate([r[3] for r in runs]) if len(runs) > 1 else runs[0][3]
    rows = distinct[at]
    row_pe = distinct_pe[at]
    segments: list[Segment] = []
    stop = 0
    for i, p, q, part in runs:  # one per group, not per record
        segments.append(Segment(plan.interval_ids[i], p, plan.pe_names[q], stop, stop + len(part)))
        stop += len(part)
    # the flow columns of the distinct records, converted once: a record in several intervals
    # shares them; a group is a slice of them (or, when it is not one run, a take)
    whole = len(distinct) == n and bool((np.diff(distinct) == 1).all())
    flows = (batch if whole else _gather(batch, distinct)).to_arrow()
    # the extra columns are constant within a segment: one chunk per segment
    pieces = []
    for seg, (_, _, q, part) in zip(segments, runs, strict=True):  # per segment
        count = len(part)
        first_at, last_at = int(part[0]), int(part[-1])
        piece = (
            flows.slice(first_at, count) if last_at - first_at == count - 1 else flows.take(part)
        )
        extra = [
            plan.repeat(seg.interval, pa.string(), count),
            plan.repeat(seg.period_start_ms, pa.int64(), count),
            plan.repeat(seg.pe, pa.string(), count),
            plan.repeat(plan.loopbacks[q], pa.string(), count),
            plan.repeat(None, pa.string(), count),
        ]
        pieces.append(pa.Table.from_arrays([*piece.columns, *extra], schema=INGRESS_SCHEMA))
    table = pa.concat_tables(pieces)
    return IngressRecords(table, row_pe, rows, tuple(segments), outside, unmatched, by_exporter)


def _runs(period: I64, pe: I32) -> list[tuple[int, int, int, int]]:
    """(period start, PE, first, end) of each run of equal (period, PE) values."""
    change = np.flatnonzero((period[1:] != period[:-1]) | (pe[1:] != pe[:-1])) + 1
    edges = [0, *change.tolist(), len(period)]
    return [(int(period[a]), int(pe[a]), a, b) for a, b in itertools.pairwise(edges)]


def _stable_order(code: I64) -> I64 | None:
    """Stable sort order of integer codes (radix below a span of 2**16); None when sorted."""
    if len(code) < 2 or bool((code[1:] >= code[:-1]).all()):
        return None
    lo, hi = int(code.min()), int(code.max())
    small = code - lo
    return np.argsort(small.astype(np.uint16) if hi - lo < 1 << 16 else small, kind="stable")


def _gather(batch: FlowBatch, index: I64) -> FlowBatch:
    """``batch.take(index)``, reusing columns constant over the batch (zero columns) as they are."""
    m = len(index)
    out = {}
    for name, a in batch.columns.items():  # per column
        if a[0] == a[-1] and a.min() == a.max():
            out[name] = a[:m]
        else:
            out[name] = a[index]
    return FlowBatch(out)


def _count_unmatched(batch: FlowBatch, mask: npt.NDArray[np.bool_]) -> dict[tuple[str, int], int]:
    """Per (exporter address text, source id), records of no known PE."""
    fam = batch["exporter_version"][mask].astype(np.uint64)
    keys = np.stack(
        [fam, batch["exporter_hi"][mask], batch["exporter_lo"][mask], batch["source_id"][mask]],
        axis=1,
    ).astype(np.uint64)
    uniq, counts = np.unique(keys, axis=0, return_counts=True)
    out: dict[tuple[str, int], int] = {}
    for (f, h, low, sid), c in zip(uniq.tolist(), counts.tolist(), strict=True):  # per exporter
        value = (int(h) << 64) | int(low)
        text = str(ipaddress.IPv4Address(value)) if f == 4 else str(ipaddress.IPv6Address(value))
        out[text, int(sid)] = int(c)
    return out


def address_halves(column: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.uint64], ...]:
    """An address column of the Arrow form (``fixed_size_binary(16)``) → (hi, lo) uint64."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    arr = arr.fill_null(b"\0" * 16)
    n = len(arr)
    raw = np.frombuffer(arr.buffers()[1], dtype=">u8", count=2 * (n + arr.offset))
    raw = raw[2 * arr.offset :].reshape(n, 2)
    return raw[:, 0].astype(np.uint64), raw[:, 1].astype(np.uint64)


def resolve_ingress(table: pa.Table, routing: Compiled | None) -> Resolution:
    """The egress resolution of ingress records (INGRESS_SCHEMA); all unresolved without tables."""
    n = table.num_rows
    if routing is None or not n:
        return no_resolution(n)
    dst_hi, dst_lo = address_halves(table.column("dst"))
    nh_hi, nh_lo = address_halves(table.column("bgp_next_hop"))
    col = table.column
    return resolve_egress(
        routing,
        pe=col("ingress_pe"),
        in_if=col("in_if").to_numpy(),
        ip_version=col("ip_version").to_numpy(),
        dst_hi=dst_hi,
        dst_lo=dst_lo,
        start_ms=col("start_ms").to_numpy(),
        ingress_vrf_id=col("ingress_vrf_id").to_numpy(),
        bgp_next_hop=(nh_hi, nh_lo),
        bgp_next_hop_version=col("bgp_next_hop_version").to_numpy(),
    )


def no_resolution(n: int) -> Resolution:
    """A resolution of ``n`` flows without routing tables: every one ``unresolved``/no_tables."""
    minus = np.full(n, -1, dtype=np.int32)
    return Resolution(
        flow=np.arange(n, dtype=np.int64),
        egress_pe=minus,
        egress_node=minus,
        vrf=minus,
        rd=minus,
        reason=np.full(n, _NO_TABLES, dtype=np.uint8),
        share=np.ones(n, dtype=np.float64),
        prefix_len=np.full(n, -1, dtype=np.int16),
        pe_names=[],
        node_names=[],
        vrf_names=[],
        rd_names=[],
    )


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A partial matrix and the volume whose egress stayed unknown, per reason."""

    table: pa.Table
    unresolved: tuple[UnresolvedReport, ...]


def _column(table: pa.Table, name: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    col = table.column(name)
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def _pe_codes(table: pa.Table, plan: IngressPlan) -> tuple[I32, list[str]]:
    """Index of each row's ingress PE into the plan's PE names, then names the plan lacks."""
    if not table.num_rows:
        return np.zeros(0, np.int32), []
    col = table.column("ingress_pe")
    enc = pc.dictionary_encode(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    index = {n: i for i, n in enumerate(plan.pe_names)}
    names = enc.dictionary.to_pylist()
    extra = [n for n in names if n not in index]
    for k, name in enumerate(extra):  # a PE the plan does not know keeps its name
        index[name] = len(plan.pe_names) + k
    mapped = np.array([index[n] for n in names], dtype=np.int32)
    return mapped[enc.indices.to_numpy(zero_copy_only=False)], extra


def aggregate(
    ingress: pa.Table | IngressRecords,
    resolution: Resolution,
    config: NetworkConfig | IngressPlan,
) -> Aggregate:
    """Resolved ingress records → a renormalized partial matrix and unresolved volumes.

    ``resolution.flow`` indexes the rows of ``ingress``; a flow split over k
    paths contributes ``share`` = 1/k of its volume to each egress PE.

    Examples
    --------
    >>> from flowmatrix.config.model import IPAddress, NetworkConfig
    >>> got = aggregate(INGRESS_SCHEMA.empty_table(), no_resolution(0), NetworkConfig("n", 1))
    >>> got.table.num_rows, got.unresolved
    (0, ())
    """
    n = ingress.table.num_rows if isinstance(ingress, IngressRecords) else ingress.num_rows
    return aggregate_groups(ingress, resolution, config, [n])[0]


def aggregate_groups(
    ingress: pa.Table | IngressRecords,
    resolution: Resolution,
    config: NetworkConfig | IngressPlan,
    bounds: Sequence[int],
) -> list[Aggregate]:
    """:func:`aggregate` of consecutive row ranges of ``ingress`` at once: one per range.

    ``bounds`` are the ranges' end rows (increasing; the first starts at 0),
    e.g. the ends of the (interval, period) groups of an
    :class:`IngressRecords`. One pass over a composite integer key sums every
    range.

    >>> from flowmatrix.config.model import NetworkConfig
    >>> [a.table.num_rows for a in aggregate_groups(
    ...     INGRESS_SCHEMA.empty_table(), no_resolution(0), NetworkConfig("n", 1), [0, 0])]
    [0, 0]
    """
    plan = _plan(config)
    extra: list[str] = []
    if isinstance(ingress, IngressRecords):
        table, pe_code = ingress.table, ingress.pe
    else:
        table = ingress
        pe_code, extra = _pe_codes(table, plan)
    if not len(resolution):
        return [Aggregate(PARTIAL_SCHEMA.empty_table(), ()) for _ in bounds]
    f = resolution.flow
    pe = pe_code[f].astype(np.int64)
    values = _values(
        plan,
        pe,
        _column(table, "bytes", np.float64)[f],
        _column(table, "packets", np.float64)[f],
        _column(table, "sampling_interval", np.float64)[f],
        resolution.share,
    )
    group = np.searchsorted(np.asarray(bounds, dtype=np.int64), f, side="right").astype(np.int64)
    keys = [
        group,
        pe,
        _column(table, "in_if", np.int64)[f],
        resolution.vrf.astype(np.int64),
        resolution.egress_pe.astype(np.int64),
        _column(table, "tos", np.int64)[f],
    ]
    cells, inverse = _cells(keys)
    summed: dict[int, F64] = {}  # equal value columns are one array: summed once
    for v in values.values():
        if id(v) not in summed:
            summed[id(v)] = _sum(inverse, v, len(cells[0]))
    sums = {k: summed[id(v)] for k, v in values.items()}
    unresolved = _unresolved(resolution.reason, resolution.resolved, values, group, len(bounds))
    return _partials(plan, extra, resolution, cells, sums, unresolved)


def aggregate_batch(
    ingress: IngressRecords,
    resolution: Resolution,
    config: NetworkConfig | IngressPlan,
    bounds: Sequence[int],
    *,
    flows: FlowBatch,
    records: I64,
) -> list[Aggregate]:
    """:func:`aggregate_groups` of a batch's ingress records, each record resolved once.

    ``resolution.flow`` indexes ``records`` (distinct, increasing rows of
    ``flows``, the batch ``ingress`` was made from); an ingress row takes the
    resolution rows of its record. Keys and values are computed once per
    record and its cell found once, so a record in several intervals costs
    one more ``bincount`` term per interval, not one more sort.

    >>> from flowmatrix.config.model import NetworkConfig
    >>> config = NetworkConfig("n", 1)
    >>> got = ingress_records(FlowBatch.empty(0), config)
    >>> aggregate_batch(got, no_resolution(0), config, [0], flows=FlowBatch.empty(0),
    ...     records=got.rows)[0].table.num_rows
    0
    """
    plan = _plan(config)
    n_rows = len(ingress.rows)
    if not len(resolution) or not n_rows:
        return [Aggregate(PARTIAL_SCHEMA.empty_table(), ()) for _ in bounds]
    pe = np.full(len(flows), -1, dtype=np.int64)
    pe[ingress.rows] = ingress.pe
    # every record of the batch with one resolution row each: the batch's columns as they are
    src: I64 | None = None
    if len(records) != len(flows) or len(resolution) != len(records):
        src = records[resolution.flow]  # batch row of each resolution row
        pe = pe[src]

    def column(name: str) -> npt.NDArray[Any]:
        return flows[name] if src is None else flows[name][src]

    values = _values(
        plan,
        pe,
        column("bytes").astype(np.float64),
        column("packets").astype(np.float64),
        column("sampling_interval").astype(np.float64),
        resolution.share,
    )
    keys = [
        pe,
        column("in_if").astype(np.int64),
        resolution.vrf.astype(np.int64),
        resolution.egress_pe.astype(np.int64),
        column("tos").astype(np.int64),
    ]
    cells, cell = _cells(keys)
    # each ingress row → its record → that record's resolution rows (several when multipath)
    position = np.full(len(flows), -1, dtype=np.int64)
    position[records] = np.arange(len(records), dtype=np.int64)
    record = position[ingress.rows]
    per = np.bincount(resolution.flow, minlength=len(records))
    first = np.cumsum(per) - per
    group_of_row = np.repeat(
        np.arange(len(bounds), dtype=np.int64),
        np.diff(np.array([0, *bounds], dtype=np.int64)).astype(np.int64),
    )
    # a group holding the same records as an earlier one (a period of another interval
    # covering the same time) has its partial: summed once, shared
    same = _same_groups(record, bounds)
    if same:
        keep = ~np.isin(group_of_row, list(same))
        record, group_of_row = record[keep], group_of_row[keep]
    take: I64 | None
    if len(resolution) == len(records) == len(record):
        # one resolution row and one ingress row per record: sum in record order, no gathers
        take = None
        group = np.empty(len(records), dtype=np.int64)
        group[record] = group_of_row
    elif len(resolution) == len(records):  # one resolution row per record
        take = first[record]
        group = group_of_row
    else:
        count = per[record]
        within = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(count) - count, count
        )
        take = np.repeat(first[record], count) + within
        group = np.repeat(group_of_row, count)
    n_cells = len(cells[0])
    code = group * n_cells + (cell if take is None else cell[take])
    if len(bounds) * n_cells <= _DENSE_CELLS:  # bincount over every (group, cell)
        size = len(bounds) * n_cells
        present = np.flatnonzero(np.bincount(code, minlength=size))
        slot, order = code, present
    else:  # hashed: only the (group, cell) pairs present
        enc = pc.dictionary_encode(pa.array(code))
        seen = enc.dictionary.to_numpy()
        size = len(seen)
        slot = enc.indices.to_numpy().astype(np.int64)
        order = np.argsort(seen)
        present = seen[order]
    summed: dict[int, F64] = {}  # equal value columns are one array: summed once
    for v in values.values():
        if id(v) not in summed:
            summed[id(v)] = _sum(slot, v if take is None else v[take], size)[order]
    sums = {k: summed[id(v)] for k, v in values.items()}
    out_cells = [present // n_cells, *(k[present % n_cells] for k in cells)]
    if resolution.resolved.all():
        unresolved: list[tuple[UnresolvedReport, ...]] = [()] * len(bounds)
    else:
        every = slice(None) if take is None else take
        unresolved = _unresolved(
            resolution.reason[every],
            resolution.resolved[every],
            {k: values[k][every] for k in ("bytes", "packets", "flows")},
            group,
            len(bounds),
        )
    out = _partials(plan, [], resolution, out_cells, sums, unresolved)
    for k, j in same.items():
        out[k] = out[j]
    return out


def _same_groups(record: I64, bounds: Sequence[int]) -> dict[int, int]:
    """Groups (row ranges of ``record``) equal to an earlier group: group → that group."""
    seen: dict[tuple[int, int, int], list[int]] = {}
    same: dict[int, int] = {}
    start = 0
    starts = []
    for k, stop in enumerate(bounds):  # per group, not per record
        starts.append(start)
        if stop > start:
            key = (stop - start, int(record[start]), int(record[stop - 1]))
            for j in seen.get(key, []):
                a = starts[j]
                if np.array_equal(record[start:stop], record[a : a + stop - start]):
                    same[k] = j
                    break
            else:
                seen.setdefault(key, []).append(k)
        start = stop
    return same


def _sum(slot: I64, weights: F64, size: int) -> F64:
    """Sum of ``weights`` per ``slot`` value (0 to ``size`` - 1)."""
    return np.asarray(np.bincount(slot, weights=weights, minlength=size), dtype=np.float64)


#: largest packet assumed in the bytes variance bound (octets; an Ethernet MTU)
MAX_PACKET = 1500.0


def _values(
    plan: IngressPlan, pe: I64, eb: F64, ep: F64, interval: F64, share: F64
) -> dict[str, F64]:
    """The renormalized value columns of resolved rows (see the module's formulas).

    When no row is sampled (N = 1 everywhere) the formulas reduce exactly to
    ``bytes = b·share``, ``packets = sampled_packets = p·share`` and zero
    variances; equal columns then come back as one array, summed once by the
    callers.
    """
    if bool((plan.sampling_rate == 1).all()) and float(interval.max(initial=0)) <= 1:
        sampled = ep * share
        zero = np.zeros(len(share))
        return {
            "bytes": eb * share,
            "packets": sampled,
            "flows": share,
            "sampled_packets": sampled,
            "bytes_var": zero,
            "packets_var": zero,
        }
    rates = np.append(plan.sampling_rate, 1.0)
    configured = rates[np.where((pe >= 0) & (pe < len(plan.sampling_rate)), pe, -1)]
    n = np.where(interval > 1, interval, configured)
    nn1 = n * (n - 1)
    sampled = ep * share
    return {
        "bytes": eb * n * share,
        "packets": sampled * n,
        "flows": share,
        "sampled_packets": sampled,
        "bytes_var": nn1 * eb * np.maximum(MAX_PACKET, eb / np.maximum(ep, 1)) * share,
        "packets_var": nn1 * sampled,
    }


def _partials(
    plan: IngressPlan,
    extra: list[str],
    resolution: Resolution,
    cells: list[I64],
    sums: dict[str, F64],
    unresolved: list[tuple[UnresolvedReport, ...]],
) -> list[Aggregate]:
    """Cells (group, pe, in_if, vrf, egress, tos; sorted by group) and sums → one partial each."""
    g_group, g_pe, g_in_if, g_vrf, g_egress, g_tos = cells
    pe_names = [*plan.pe_names, *extra]
    vrf_names = [*resolution.vrf_names, ""]
    egress_names = [*resolution.pe_names, UNRESOLVED]
    g_vrf = np.where(g_vrf >= 0, g_vrf, len(resolution.vrf_names))
    g_egress = np.where(g_egress >= 0, g_egress, len(resolution.pe_names))
    # each group's rows in PARTIAL_KEYS order: names compared through their ranks (a stable
    # sort of a few integer columns, where Arrow would sort the strings); class follows tos
    order = np.lexsort(
        (
            g_tos,
            _ranks(egress_names)[g_egress],
            _ranks(vrf_names)[g_vrf],
            g_in_if,
            _ranks(pe_names)[g_pe],
            g_group,
        )
    )
    g_group, g_pe, g_in_if, g_vrf, g_egress, g_tos = (
        k[order] for k in (g_group, g_pe, g_in_if, g_vrf, g_egress, g_tos)
    )
    firsts = np.searchsorted(g_group, np.arange(len(unresolved) + 1))
    columns = [
        pa.array(pe_names, pa.string()).take(g_pe),
        pa.array(g_in_if, pa.uint32()),
        pa.array(vrf_names, pa.string()).take(g_vrf),
        pa.array(egress_names, pa.string()).take(g_egress),
        pa.array(g_tos, pa.uint8()),
        plan.classes.take(g_tos >> 2),
        *(pa.array(sums[v][order], pa.float64()) for v in PARTIAL_VALUES),
    ]
    whole = pa.Table.from_arrays(columns, schema=PARTIAL_SCHEMA)
    out = []
    for k, reports in enumerate(unresolved):  # per group, not per record
        a, b = int(firsts[k]), int(firsts[k + 1])
        out.append(Aggregate(whole.slice(a, b - a), reports))
    return out


def _ranks(names: list[str]) -> I64:
    """Each name's position in sorted (code point, i.e. UTF-8 byte) order; equal names tie."""
    _, rank = np.unique(np.array(names, dtype=object), return_inverse=True)
    return np.asarray(rank, dtype=np.int64).reshape(-1)


def _cells(keys: list[I64]) -> tuple[list[I64], I64]:
    """Distinct key tuples (sorted by the keys' values, first key first) and each row's tuple."""
    spans: list[tuple[int, int]] = []
    total = 1
    for k in keys:
        lo, hi = int(k.min()), int(k.max())
        spans.append((lo, hi - lo + 1))
        total *= hi - lo + 1
    if total < 1 << 62:
        # mixed-radix code of the key tuple, hashed (Arrow's dictionary encoding: cheaper than
        # np.unique's sort); the cells, few compared with the rows, are then sorted
        code = np.zeros(len(keys[0]), dtype=np.int64)
        for k, (lo, size) in zip(keys, spans, strict=True):
            code *= size
            code += k - lo
        enc = pc.dictionary_encode(pa.array(code))
        seen = enc.dictionary.to_numpy()
        rank = np.argsort(seen)
        where = np.empty(len(rank), dtype=np.int64)
        where[rank] = np.arange(len(rank), dtype=np.int64)
        inverse = where[enc.indices.to_numpy()]
        rest = seen[rank]
        cells: list[I64] = []
        for lo, size in reversed(spans):
            cells.append(rest % size + lo)
            rest = rest // size
        cells.reverse()
        return cells, inverse
    order = np.lexsort(keys[::-1])
    ordered = [k[order] for k in keys]
    change = np.zeros(len(order), dtype=np.bool_)
    change[0] = True
    for k in ordered:
        change[1:] |= k[1:] != k[:-1]
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(change) - 1
    starts = np.flatnonzero(change)
    return [k[starts] for k in ordered], inverse


def _unresolved(
    reason: npt.NDArray[np.uint8],
    resolved: npt.NDArray[np.bool_],
    values: dict[str, F64],
    group: I64,
    groups: int,
) -> list[tuple[UnresolvedReport, ...]]:
    """Per group, the unresolved volume per reason."""
    bad = ~resolved
    if not bad.any():
        return [()] * groups
    cell = group[bad] * len(REASONS) + reason[bad]
    size = groups * len(REASONS)
    sums = {
        k: np.bincount(cell, weights=values[k][bad], minlength=size)
        for k in ("bytes", "packets", "flows")
    }
    seen = np.bincount(cell, minlength=size)
    out: list[tuple[UnresolvedReport, ...]] = []
    for g in range(groups):  # per group and reason, not per record
        base = g * len(REASONS)
        out.append(
            tuple(
                UnresolvedReport(
                    reason=REASONS[code],
                    bytes=float(sums["bytes"][base + code]),
                    packets=float(sums["packets"][base + code]),
                    flows=float(sums["flows"][base + code]),
                )
                for code in np.flatnonzero(seen[base : base + len(REASONS)]).tolist()
            )
        )
    return out


def partial_matrix(
    ingress: pa.Table | IngressRecords,
    resolution: Resolution,
    config: NetworkConfig | IngressPlan,
) -> pa.Table:
    """Resolved ingress records → the renormalized partial matrix (PARTIAL_SCHEMA)."""
    return aggregate(ingress, resolution, config).table


def add_partials(*partials: pa.Table) -> pa.Table:
    """The sum of partial matrices: rows with equal keys added, sorted by key.

    >>> from flowmatrix.matrix.partial import empty_partial
    >>> add_partials(empty_partial(), empty_partial()).num_rows
    0
    """
    parts = [p.select(PARTIAL_SCHEMA.names).cast(PARTIAL_SCHEMA) for p in partials if p.num_rows]
    if not parts:
        return PARTIAL_SCHEMA.empty_table()
    if len(parts) == 1:
        return parts[0]
    both = pa.concat_tables(parts)
    grouped = both.group_by(list(PARTIAL_KEYS), use_threads=False).aggregate(
        [(v, "sum") for v in PARTIAL_VALUES]
    )
    out = pa.Table.from_arrays(
        [grouped[k] for k in PARTIAL_KEYS] + [grouped[f"{v}_sum"] for v in PARTIAL_VALUES],
        schema=PARTIAL_SCHEMA,
    )
    return out.sort_by([(k, "ascending") for k in PARTIAL_KEYS])
