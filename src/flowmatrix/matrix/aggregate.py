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
      bytes_var       = N(N−1) × exported_bytes² / max(exported_packets, 1) × share

No Python code runs per record: PEs are found with ``searchsorted`` over the
configured exporters, groups with a radix sort of small integer codes, and
sums with one Arrow ``group_by``.

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
    "ingress_records",
    "no_resolution",
    "partial_matrix",
    "resolve_ingress",
    "slice_resolution",
]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: reason code of flows resolved without routing tables (see routing.resolve.REASONS)
_NO_TABLES = REASONS.index("no_tables")


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


def _strings(names: Sequence[str], codes: npt.NDArray[Any]) -> pa.Array:
    return pa.array(list(names), pa.string()).take(pa.array(codes))


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
    picks: list[I64] = []
    interval_code: list[I64] = []
    periods: list[I64] = []
    for i, m in enumerate(members):
        inside = m.inside
        inside_any |= inside
        rows = np.flatnonzero(inside & known)
        if len(rows):
            picks.append(rows)
            interval_code.append(np.full(len(rows), i, dtype=np.int64))
            periods.append(m.period_start_ms[rows])
    outside = int((known & ~inside_any).sum())
    if not picks:
        return IngressRecords(
            INGRESS_SCHEMA.empty_table(),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            (),
            outside,
            unmatched,
            by_exporter,
        )
    rows = np.concatenate(picks) if len(picks) > 1 else picks[0]
    icode = np.concatenate(interval_code) if len(picks) > 1 else interval_code[0]
    period = np.concatenate(periods) if len(picks) > 1 else periods[0]
    row_pe = pe[rows]
    # group code = (interval, period, pe) as a small integer; a radix sort when it fits 16 bits
    n_periods, pcode = _period_codes(period, plan.readout_ms)
    n_pe = max(len(plan.pe_names), 1)
    code = (icode * n_periods + pcode) * n_pe + row_pe
    lo, hi = int(code.min()), int(code.max())
    if lo != hi:
        small = code - lo
        order = np.argsort(small.astype(np.uint16) if hi - lo < 1 << 16 else small, kind="stable")
        rows, code, row_pe, icode, period = (
            rows[order],
            code[order],
            row_pe[order],
            icode[order],
            period[order],
        )
    bounds = np.flatnonzero(np.diff(code)) + 1
    edges = [0, *bounds.tolist(), len(code)]
    segments = tuple(
        Segment(
            plan.interval_ids[int(icode[a])],
            int(period[a]),
            plan.pe_names[int(row_pe[a])],
            a,
            b,
        )
        for a, b in itertools.pairwise(edges)  # one per group, not per record
    )
    whole = len(rows) == n and bool((np.diff(rows) == 1).all())
    flows = (batch if whole else batch.take(rows)).to_arrow()
    # the extra columns are constant within a segment: one chunk per segment, no gather
    pieces = []
    for seg in segments:  # per segment, not per record
        count = seg.stop - seg.start
        loopback = plan.loopbacks[plan.pe_names.index(seg.pe)]
        extra = [
            pa.repeat(pa.scalar(seg.interval, pa.string()), count),
            pa.repeat(pa.scalar(seg.period_start_ms, pa.int64()), count),
            pa.repeat(pa.scalar(seg.pe, pa.string()), count),
            pa.repeat(pa.scalar(loopback, pa.string()), count),
            pa.nulls(count, pa.string()),
        ]
        part = flows.slice(seg.start, count)
        pieces.append(pa.Table.from_arrays([*part.columns, *extra], schema=INGRESS_SCHEMA))
    table = pa.concat_tables(pieces)
    return IngressRecords(table, row_pe, rows, segments, outside, unmatched, by_exporter)


def slice_resolution(resolution: Resolution, start: int, stop: int) -> Resolution:
    """The rows of a resolution whose flows are ``[start, stop)``, renumbered from 0."""
    a, b = np.searchsorted(resolution.flow, [start, stop])
    return Resolution(
        flow=resolution.flow[a:b] - start,
        egress_pe=resolution.egress_pe[a:b],
        egress_node=resolution.egress_node[a:b],
        vrf=resolution.vrf[a:b],
        rd=resolution.rd[a:b],
        reason=resolution.reason[a:b],
        share=resolution.share[a:b],
        prefix_len=resolution.prefix_len[a:b],
        pe_names=resolution.pe_names,
        node_names=resolution.node_names,
        vrf_names=resolution.vrf_names,
        rd_names=resolution.rd_names,
    )


def _period_codes(period: I64, readout_ms: int) -> tuple[int, I64]:
    """Period starts → (number of codes, a small code per row, equal exactly for equal starts)."""
    first = int(period.min())
    code = (period - first) // readout_ms
    top = int(code.max())
    if top < 1 << 16:
        # two periods less than a read-out period apart (a short last period, then the next
        # occurrence) would share a code: check, and fall back to sorting distinct starts
        table = np.zeros(top + 1, dtype=np.int64)
        table[code] = period
        if np.array_equal(table[code], period):
            return top + 1, code
    starts, inverse = np.unique(period, return_inverse=True)
    return len(starts), inverse.astype(np.int64)


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
    plan = _plan(config)
    extra: list[str] = []
    if isinstance(ingress, IngressRecords):
        table, pe_code = ingress.table, ingress.pe
    else:
        table = ingress
        pe_code, extra = _pe_codes(table, plan)
    if not len(resolution):
        return Aggregate(PARTIAL_SCHEMA.empty_table(), ())
    f = resolution.flow
    share = resolution.share
    eb = _column(table, "bytes", np.float64)[f]
    ep = _column(table, "packets", np.float64)[f]
    interval = _column(table, "sampling_interval", np.float64)[f]
    pe = pe_code[f]
    rates = np.append(plan.sampling_rate, 1.0)
    configured = rates[np.where((pe >= 0) & (pe < len(plan.sampling_rate)), pe, -1)]
    n = np.where(interval > 1, interval, configured)
    nn1 = n * (n - 1)
    sampled = ep * share
    values = {
        "bytes": eb * n * share,
        "packets": sampled * n,
        "flows": share,
        "sampled_packets": sampled,
        "bytes_var": nn1 * eb * eb / np.maximum(ep, 1) * share,
        "packets_var": nn1 * sampled,
    }
    tos = _column(table, "tos", np.uint8)[f]
    keys = pa.table(
        {
            "pe": pa.array(pe, pa.int32()),
            "in_if": pa.array(_column(table, "in_if", np.uint32)[f], pa.uint32()),
            "vrf": pa.array(resolution.vrf, pa.int32()),
            "egress": pa.array(resolution.egress_pe, pa.int32()),
            "tos": pa.array(tos, pa.uint8()),
            **{k: pa.array(v, pa.float64()) for k, v in values.items()},
        }
    )
    grouped = keys.group_by(["pe", "in_if", "vrf", "egress", "tos"], use_threads=False).aggregate(
        [(v, "sum") for v in PARTIAL_VALUES]
    )
    g_pe = grouped["pe"].to_numpy()
    g_tos = grouped["tos"].to_numpy()
    out = pa.Table.from_arrays(
        [
            _strings([*plan.pe_names, *extra], g_pe),
            grouped["in_if"].combine_chunks(),
            _named(resolution.vrf_names, "", grouped["vrf"].to_numpy()),
            _named(resolution.pe_names, UNRESOLVED, grouped["egress"].to_numpy()),
            grouped["tos"].combine_chunks(),
            plan.classes.take(pa.array(g_tos >> 2)),
            *(grouped[f"{v}_sum"].combine_chunks() for v in PARTIAL_VALUES),
        ],
        schema=PARTIAL_SCHEMA,
    )
    out = out.sort_by([(k, "ascending") for k in PARTIAL_KEYS])
    return Aggregate(out, _unresolved(resolution, values))


def _named(names: list[str], none: str, codes: npt.NDArray[Any]) -> pa.Array:
    """Indices into ``names`` (-1 = ``none``) → a string array."""
    c = codes.astype(np.int64)
    return _strings([*names, none], np.where(c >= 0, c, len(names)))


def _unresolved(resolution: Resolution, values: dict[str, F64]) -> tuple[UnresolvedReport, ...]:
    bad = ~resolution.resolved
    if not bad.any():
        return ()
    reason = resolution.reason[bad]
    sums = {
        k: np.bincount(reason, weights=values[k][bad], minlength=len(REASONS))
        for k in ("bytes", "packets", "flows")
    }
    return tuple(
        UnresolvedReport(
            reason=REASONS[code],
            bytes=float(sums["bytes"][code]),
            packets=float(sums["packets"][code]),
            flows=float(sums["flows"][code]),
        )
        for code in np.flatnonzero(np.bincount(reason, minlength=len(REASONS))).tolist()
    )


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
