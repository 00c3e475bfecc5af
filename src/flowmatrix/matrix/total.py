"""Sum partial matrices into the total matrix of read-out periods, at one granularity.

The total of a period is the sum of the current partial of every FRP (claim
1); the total over several periods is the sum of all of them. Summation
happens on integer codes: key values (PE names, interfaces, VRFs, classes)
are dictionary-encoded against the configuration's order, so the hot loop is
numpy arithmetic on codes into a dense accumulator. Keys the configuration
does not know (``unresolved`` egress, unknown PEs, interfaces and VRFs) get
codes past the dense region and go to a sparse side accumulator, compacted
with ``np.unique``.

Granularities (columns named like the synth truth files, so they compare):

============  ==========================================
``pe_pe``     ingress, egress, class
``pop_pop``   ingress, egress, class (service nodes)
``if_pe``     ingress, if_index, egress, class
``vrf``       vrf, ingress, egress, class
``if_vrf``    ingress, if_index, vrf, egress, class
============  ==========================================

``if_vrf`` (:data:`FINEST`) is every key of a partial but the ToS: the MG's
statistics keep it per period to derive ``if_pe`` and ``vrf`` figures from
(``/matrix`` does not serve it).

followed by ``bytes, packets, flows, bytes_err95, packets_err95, seconds``;
``err95`` is ``1.96·sqrt(var)``, the half-width of the 95 % interval.

>>> import pyarrow as pa
>>> from flowmatrix.config.model import NetworkConfig, PeRouter
>>> import ipaddress
>>> cfg = NetworkConfig(name="n", asn=1, pes=tuple(
...     PeRouter(name=p, loopback=ipaddress.ip_address(f"10.0.0.{i}"), service_node="S")
...     for i, p in enumerate(["a", "b"], 1)))
>>> rows = {"ingress_pe": ["a", "a"], "in_if": [1, 2], "vrf": ["", ""], "egress_pe": ["b", "b"],
...         "tos": [0, 0], "class": ["default"] * 2, "bytes": [100.0, 50.0],
...         "packets": [2.0, 1.0], "flows": [1.0, 1.0], "sampled_packets": [2.0, 1.0],
...         "bytes_var": [0.0, 0.0], "packets_var": [0.0, 0.0]}
>>> part = pa.table(rows).cast(PARTIAL_SCHEMA)
>>> total_matrix(cfg, [part, part], seconds=300).select(["ingress", "egress", "bytes"]).to_pylist()
[{'ingress': 'a', 'egress': 'b', 'bytes': 300.0}]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flowmatrix.config.model import NetworkConfig
from flowmatrix.matrix.partial import PARTIAL_SCHEMA

if TYPE_CHECKING:
    from flowmatrix.matrix.store import Upload

__all__ = [
    "ALL_CLASSES",
    "FINEST",
    "GRANULARITIES",
    "OUTPUT_VALUES",
    "SUMMED",
    "Gap",
    "Granularity",
    "KeySet",
    "PeriodStatus",
    "Total",
    "expected_frps",
    "output_columns",
    "period_statuses",
    "total_matrix",
]

Granularity = Literal["pe_pe", "pop_pop", "if_pe", "vrf"]
#: the granularities a total can be read at
GRANULARITIES: Final = tuple(get_args(Granularity))
#: every key set a :class:`Total` sums at: the granularities and the finest one
KeySet = Granularity | Literal["if_vrf"]
#: the finest key set (every partial key but the ToS), from which if_pe and vrf are sums
FINEST: Final = "if_vrf"
#: the ``class`` filter value that sums every class into one row labelled "all"
ALL_CLASSES: Final = "all"
#: partial value columns the total sums (sampled_packets feeds no output)
SUMMED: Final = ("bytes", "packets", "flows", "bytes_var", "packets_var")
#: value columns of a total, after its key columns
OUTPUT_VALUES: Final = ("bytes", "packets", "flows", "bytes_err95", "packets_err95", "seconds")
#: half-width factor of a 95 % normal interval
Z95: Final = 1.96
#: largest dense accumulator, cells (× 5 float64 values = 160 MB)
DENSE_CELLS: Final = 4_000_000
#: pending sparse rows that trigger a compaction
_COMPACT_ROWS: Final = 1_000_000
#: contiguous dense partials added together, block by block, while the block stays in cache
_BATCH: Final = 16
#: cells per block of a batched add (256 KiB of float64)
_BLOCK: Final = 32_768

#: per granularity: (output column, partial column) of each key, in sort order
_KEYS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "pe_pe": (("ingress", "ingress_pe"), ("egress", "egress_pe"), ("class", "class")),
    "pop_pop": (("ingress", "ingress_pe"), ("egress", "egress_pe"), ("class", "class")),
    "if_pe": (
        ("ingress", "ingress_pe"),
        ("if_index", "in_if"),
        ("egress", "egress_pe"),
        ("class", "class"),
    ),
    "vrf": (("vrf", "vrf"), ("ingress", "ingress_pe"), ("egress", "egress_pe"), ("class", "class")),
    FINEST: (
        ("ingress", "ingress_pe"),
        ("if_index", "in_if"),
        ("vrf", "vrf"),
        ("egress", "egress_pe"),
        ("class", "class"),
    ),
}

Codes = npt.NDArray[np.int32]
Values = npt.NDArray[np.float64]


def output_columns(granularity: KeySet) -> tuple[str, ...]:
    """The column names of a total at ``granularity``.

    >>> output_columns("vrf")[:4]
    ('vrf', 'ingress', 'egress', 'class')
    """
    return (*(out for out, _ in _KEYS[granularity]), *OUTPUT_VALUES)


class _Vocabulary:
    """Values of one key column and their codes: the configuration's, sorted, then any new ones."""

    def __init__(self, seed: Sequence[object], type_: pa.DataType) -> None:
        self.type = type_
        self.values: list[object] = list(dict.fromkeys(seed))
        self.dense = len(self.values)
        self._array = pa.array(self.values, type_)

    def encode(self, column: pa.ChunkedArray | pa.Array) -> Codes:
        """The code of every value of ``column``, adding values seen for the first time."""
        column = column.cast(self.type)
        idx = pc.index_in(column, value_set=self._array)
        if idx.null_count:
            missing = pc.unique(pc.filter(column, pc.is_null(idx)))
            self.values.extend(missing.to_pylist())
            self._array = pa.array(self.values, self.type)
            idx = pc.index_in(column, value_set=self._array)
        return np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int32)


class Total:
    """An accumulator of partial matrices at one granularity; ``table()`` reads the total.

    ``class_`` keeps one class (rows of others are dropped); ``"all"`` sums
    the classes into one row labelled ``all``; None keeps every class apart.

    Examples
    --------
    >>> import ipaddress, numpy as np
    >>> from flowmatrix.config.model import NetworkConfig, PeRouter
    >>> pes = tuple(PeRouter(name=n, loopback=ipaddress.ip_address(f"10.0.0.{i}"),
    ...             service_node="S") for i, n in enumerate("ab", 1))
    >>> t = Total(NetworkConfig(name="n", asn=1, pes=pes), "pe_pe")
    >>> t.vocabularies()
    [['a', 'b'], ['a', 'b'], ['default']]
    >>> ones = np.ones(3)
    >>> t.add_codes([np.array([0, 1, 0]), np.array([1, 0, 1]), np.zeros(3, np.int32)],
    ...             [np.array([1.0, 2.0, 3.0]), ones, ones, ones, ones])
    >>> t.table(seconds=60).column("bytes").to_pylist()
    [4.0, 2.0]
    """

    def __init__(
        self,
        config: NetworkConfig,
        granularity: KeySet = "pe_pe",
        *,
        class_: str | None = None,
    ) -> None:
        if granularity not in _KEYS:
            msg = f"unknown granularity {granularity!r}; one of {', '.join(GRANULARITIES)}"
            raise ValueError(msg)
        self.granularity = granularity
        self.class_ = class_
        keys = _KEYS[granularity]
        if class_ == ALL_CLASSES:
            keys = keys[:-1]
        self._keys = keys
        self._node_of = {pe.name: pe.service_node for pe in config.pes}
        pop = granularity == "pop_pop"
        # codes follow the names' sort order: a partial stored in key order (as the store
        # keeps it) then lands on ascending cells, the fast path of the dense accumulator
        nodes = sorted(
            {n.name for n in config.service_nodes} | {pe.service_node for pe in config.pes}
        )
        pes = sorted(pe.name for pe in config.pes)
        classes = sorted({c.name for c in config.classes} | set(config.dscp_classes()))
        seeds: dict[str, tuple[list[object], pa.DataType]] = {
            "ingress_pe": (list(nodes if pop else pes), pa.string()),
            "egress_pe": (list(nodes if pop else pes), pa.string()),
            "in_if": ([], pa.int64()),
            "vrf": ([""], pa.string()),
            "class": ([class_] if class_ is not None else list(classes), pa.string()),
        }
        self._vocab = [_Vocabulary(*seeds[col]) for _, col in keys]
        caps = [v.dense for v in self._vocab]
        cells = int(np.prod(caps, dtype=np.int64)) if caps else 0
        self._caps = tuple(caps) if 0 < cells <= DENSE_CELLS else tuple(0 for _ in caps)
        # the dense layout puts the class slowest: one class's cells are one block, so a
        # partial of one class in key order lands on evenly spaced (usually adjacent) cells
        ndim = len(keys)
        self._layout = [ndim - 1, *range(ndim - 1)] if keys[-1][1] == "class" else list(range(ndim))
        self._layout_caps = tuple(self._caps[d] for d in self._layout)
        self._dense = np.zeros((len(SUMMED), cells if 0 < cells <= DENSE_CELLS else 0))
        self._sparse_codes: list[npt.NDArray[np.int32]] = []
        self._sparse_values: list[Values] = []
        self._pending = 0
        self._compacted = 0
        #: contiguous partials not yet added: (first cell, end cell, value columns)
        self._batch: list[tuple[int, int, Sequence[Values]]] = []
        self.partials = 0

    def vocabularies(self) -> list[list[object]]:
        """The values of each key, index = code (the lists the codes of add_codes refer to)."""
        return [v.values for v in self._vocab]

    def encode(self, table: pa.Table) -> tuple[list[Codes], list[Values]]:
        """The key codes and summed value columns of a partial matrix's rows."""
        if self.class_ is not None and self.class_ != ALL_CLASSES:
            table = table.filter(pc.equal(table["class"], self.class_))
        codes = []
        for (_, col), vocab in zip(self._keys, self._vocab, strict=True):
            column = table[col]
            if self.granularity == "pop_pop" and col in ("ingress_pe", "egress_pe"):
                column = self._to_node(column)
            codes.append(vocab.encode(column))
        values = [np.asarray(table[v].to_numpy(), dtype=np.float64) for v in SUMMED]
        return codes, values

    def _to_node(self, column: pa.ChunkedArray) -> pa.Array:
        pes = pa.array(list(self._node_of), pa.string())
        nodes = pa.array(list(self._node_of.values()), pa.string())
        mapped = pc.take(nodes, pc.index_in(column, value_set=pes))
        # "unresolved" and PEs the configuration does not know keep their name
        return pc.if_else(pc.is_null(mapped), column, mapped)

    def add(self, table: pa.Table) -> None:
        """Add the rows of one partial matrix (PARTIAL_SCHEMA columns)."""
        codes, values = self.encode(table)
        self.add_codes(codes, values)

    def add_codes(self, codes: Sequence[npt.NDArray[np.integer]], values: Sequence[Values]) -> None:
        """Add rows given as key codes (see vocabularies) and the SUMMED value columns."""
        self.partials += 1
        n = len(values[0]) if values else 0
        if n == 0:
            return
        caps = self._caps
        if not (caps and caps[0]):
            self._add_sparse(codes, values)
            return
        # per key: (min, max) code; reductions are cheaper than a comparison pass
        bounds = [(int(c.min()), int(c.max())) for c in codes]
        if all(hi < cap for (_, hi), cap in zip(bounds, caps, strict=True)):
            self._add_dense(codes, values, bounds)
            return
        inside = np.ones(n, np.bool_)
        for c, cap in zip(codes, caps, strict=True):
            inside &= c < cap
        outside = ~inside
        codes_in = [c[inside] for c in codes]
        bounds_in = [(int(c.min()), int(c.max())) if len(c) else (0, 0) for c in codes_in]
        self._add_dense(codes_in, [v[inside] for v in values], bounds_in)
        self._add_sparse([c[outside] for c in codes], [v[outside] for v in values])

    def _add_dense(
        self,
        codes: Sequence[npt.NDArray[np.integer]],
        values: Sequence[Values],
        bounds: Sequence[tuple[int, int]],
    ) -> None:
        n = len(values[0])
        if n == 0:
            return
        acc = self._dense
        # cell = mixed-radix number of the codes in layout order; keys holding one value
        # (typically the class) only shift it, so they cost no pass over the rows
        offset = 0
        idx: npt.NDArray[np.int32] | None = None
        for d, cap in zip(self._layout, self._layout_caps, strict=True):
            offset *= cap
            if idx is not None:
                idx *= cap
            lo_d, hi_d = bounds[d]
            if lo_d == hi_d:
                offset += lo_d
            elif idx is None:
                # int32 cells halve the memory traffic of the hot loop (DENSE_CELLS < 2**31)
                idx = np.asarray(codes[d]).astype(np.int32)
            else:
                idx += codes[d]
        if idx is None:
            for k, v in enumerate(values):
                acc[k, offset] += v.sum()
            return
        first, last = int(idx[0]), int(idx[-1])
        lo, hi = offset + first, offset + last
        # rows of a partial in key order land on adjacent (or evenly spaced) cells
        if last - first == n - 1 and bool((idx[1:] > idx[:-1]).all()):
            self._batch.append((lo, hi + 1, values))
            if len(self._batch) >= _BATCH:
                self._flush()
            return
        step = (last - first) // (n - 1) if n > 1 else 0
        if step > 1 and last - first == step * (n - 1) and bool((np.diff(idx) == step).all()):
            for k, v in enumerate(values):
                acc[k, lo : hi + 1 : step] += v
            return
        lo_i, hi_i = int(idx.min()), int(idx.max())
        if hi_i - lo_i + 1 <= 4 * n:
            shifted = idx - lo_i
            block = slice(offset + lo_i, offset + hi_i + 1)
            for k, v in enumerate(values):
                acc[k, block] += np.bincount(shifted, v, minlength=hi_i - lo_i + 1)
            return
        idx += offset
        for k, v in enumerate(values):
            np.add.at(acc[k], idx, v)

    def _flush(self) -> None:
        """Add the batched contiguous partials, one cache-sized block of cells at a time."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        acc = self._dense
        blocks = sorted(
            {b for lo, end, _ in batch for b in range(lo // _BLOCK, (end - 1) // _BLOCK + 1)}
        )
        for k in range(len(SUMMED)):
            for b in blocks:
                start, stop = b * _BLOCK, (b + 1) * _BLOCK
                for lo, end, values in batch:
                    a, z = max(lo, start), min(end, stop)
                    if a < z:
                        np.add(acc[k, a:z], values[k][a - lo : z - lo], out=acc[k, a:z])

    def _add_sparse(
        self, codes: Sequence[npt.NDArray[np.integer]], values: Sequence[Values]
    ) -> None:
        if len(values[0]) == 0:
            return
        self._sparse_codes.append(np.stack([np.asarray(c, np.int32) for c in codes]))
        self._sparse_values.append(np.stack(values))
        self._pending += len(values[0])
        if self._pending > max(_COMPACT_ROWS, 2 * self._compacted):
            self._compact()

    def _compact(self) -> None:
        if len(self._sparse_codes) <= 1 and self._pending == self._compacted:
            return
        codes = np.concatenate(self._sparse_codes, axis=1)
        values = np.concatenate(self._sparse_values, axis=1)
        sizes = [max(len(v.values), 1) for v in self._vocab]
        linear = np.ravel_multi_index(tuple(codes.astype(np.int64)), sizes)
        uniq, inverse = np.unique(linear, return_inverse=True)
        summed = np.stack([np.bincount(inverse, v, minlength=len(uniq)) for v in values])
        self._sparse_codes = [np.stack(np.unravel_index(uniq, sizes)).astype(np.int32)]
        self._sparse_values = [summed.astype(np.float64)]
        self._pending = self._compacted = len(uniq)

    def table(self, *, seconds: float = 0) -> pa.Table:
        """The total so far: key columns, values and err95, sorted by keys."""
        self._flush()
        self._compact()
        parts_codes: list[npt.NDArray[np.int64]] = []
        parts_values: list[Values] = []
        if self._dense.shape[1]:
            acc = self._dense
            used = np.flatnonzero((acc[0] != 0) | (acc[1] != 0) | (acc[2] != 0))
            cells = np.stack(np.unravel_index(used, self._layout_caps)).astype(np.int64)
            parts_codes.append(cells[np.argsort(self._layout)])
            parts_values.append(acc[:, used])
        if self._sparse_codes:
            parts_codes.append(self._sparse_codes[0].astype(np.int64))
            parts_values.append(self._sparse_values[0])
        ndim = len(self._keys)
        codes = (
            np.concatenate(parts_codes, axis=1) if parts_codes else np.zeros((ndim, 0), np.int64)
        )
        values = (
            np.concatenate(parts_values, axis=1) if parts_values else np.zeros((len(SUMMED), 0))
        )
        columns: dict[str, pa.Array] = {}
        for (out, _), vocab, c in zip(self._keys, self._vocab, codes, strict=True):
            columns[out] = pc.take(pa.array(vocab.values, vocab.type), pa.array(c))
        if self.class_ == ALL_CLASSES:
            columns["class"] = pa.array([ALL_CLASSES] * values.shape[1], pa.string())
        columns["bytes"] = pa.array(values[0])
        columns["packets"] = pa.array(values[1])
        columns["flows"] = pa.array(values[2])
        columns["bytes_err95"] = pa.array(Z95 * np.sqrt(values[3]))
        columns["packets_err95"] = pa.array(Z95 * np.sqrt(values[4]))
        columns["seconds"] = pa.array(np.full(values.shape[1], round(seconds), np.int64))
        names = output_columns(self.granularity)
        result = pa.table({name: columns[name] for name in names})
        keys = names[: -len(OUTPUT_VALUES)]
        return result.sort_by([(k, "ascending") for k in keys])


def total_matrix(
    config: NetworkConfig,
    partials: Iterable[pa.Table],
    *,
    granularity: KeySet = "pe_pe",
    class_: str | None = None,
    seconds: float = 0,
) -> pa.Table:
    """The sum of partial matrices at one granularity (see :class:`Total`).

    Parameters
    ----------
    config
        The network; its PE, service node and class order seed the codes.
    partials
        Tables with the PARTIAL_SCHEMA columns, e.g. the current version of
        every FRP's partial for one period, or of every period summed.
    granularity
        One of GRANULARITIES, or FINEST.
    class_
        One class to keep, ``"all"`` to sum classes, None to keep them apart.
    seconds
        Total duration of the summed periods, repeated in the ``seconds`` column.

    Examples
    --------
    >>> from flowmatrix.config.model import NetworkConfig
    >>> total_matrix(NetworkConfig(name="n", asn=1), []).column_names[:3]
    ['ingress', 'egress', 'class']
    """
    total = Total(config, granularity, class_=class_)
    for table in partials:
        total.add(table.select(PARTIAL_SCHEMA.names))
    return total.table(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Gap:
    """Export units an FRP reported missing from one exporter in a period."""

    frp: str
    exporter: str
    pe: str
    gap: int
    gap_unit: str


@dataclass(frozen=True, slots=True)
class PeriodStatus:
    """Whether every expected FRP reported for one read-out period, and what they said."""

    interval: str
    period_start_ms: int
    period_end_ms: int
    status: Literal["complete", "incomplete"]
    expected: tuple[str, ...]
    reported: tuple[str, ...]
    missing: tuple[str, ...]
    gaps: tuple[Gap, ...]
    records: int
    versions: int
    updated_ms: int


def expected_frps(config: NetworkConfig) -> tuple[str, ...]:
    """The FRPs whose partial a period needs to be complete: those with at least one PE."""
    return tuple(f.name for f in config.frps if config.pes_of(f.name))


def period_statuses(config: NetworkConfig, uploads: Iterable[Upload]) -> list[PeriodStatus]:
    """The status of every period the current ``uploads`` cover, ordered by interval and start.

    A period is complete when each of :func:`expected_frps` has a current
    version; gaps reported in the envelopes are listed either way.
    """
    expected = expected_frps(config)
    by_period: dict[tuple[str, int], list[Upload]] = {}
    for upload in uploads:
        by_period.setdefault((upload.interval, upload.period_start_ms), []).append(upload)
    out = []
    for (interval, start), group in sorted(by_period.items()):
        reported = tuple(sorted({u.frp for u in group}))
        missing = tuple(f for f in expected if f not in reported)
        gaps = tuple(
            Gap(u.frp, e.address, e.pe, e.gap, e.gap_unit)
            for u in sorted(group, key=lambda u: u.frp)
            for e in u.meta.exporters
            if e.gap > 0
        )
        out.append(
            PeriodStatus(
                interval=interval,
                period_start_ms=start,
                period_end_ms=max(u.period_end_ms for u in group),
                status="incomplete" if missing else "complete",
                expected=expected,
                reported=reported,
                missing=missing,
                gaps=gaps,
                records=sum(u.meta.records for u in group),
                versions=sum(u.version for u in group),
                updated_ms=max(u.received_ms for u in group),
            )
        )
    return out
