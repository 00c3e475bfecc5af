"""Stored read-out periods → per-interval element statistics, busy hours and link loads.

:class:`MgStats` keeps, per measurement interval, one
:class:`~flowmatrix.stats.running.RunningStats` for bytes and one for packets
over the PE-to-PE elements (ingress, egress, class), the network volume
(bytes) and the bytes per service node of every period (busy hours), and,
with a topology, the load of every link direction of every period (the
period's PE-to-PE matrix routed by :func:`~flowmatrix.capacity.routing.route`).
:func:`element_forecast` turns one element's or link's history into a
Holt–Winters forecast, its backtest and the threshold crossing served by
``/forecast``.

* ``observe(interval, period_start_ms)`` is called by the upload route, in
  the request's worker thread, after a partial was *stored* (a first version
  or a revision). It sums the current partials of that one period
  (``total_matrix(..., granularity="pe_pe")``), not the history, and puts the
  period's values in (:meth:`MgStats.put_total`): ``update`` for a period not
  yet counted, ``replace`` for one already counted, so a late FRP or a
  revision replaces the period's values instead of adding a period. The
  update is columnar: key columns dictionary-encoded into name codes, element
  codes from a look-up table of name-code triples (or the previous period's
  codes when its key columns are the same), one scatter per quantity.
* After each update the running state (element keys and names, mean and M2)
  and the period's values (bytes and packets per element, network, node and
  link volumes, the ids of the uploads summed) are saved in the store's
  ``stats_state`` and ``stats_periods`` tables, in one transaction.
* ``start()`` loads that snapshot and sums again only the periods whose
  current uploads differ from the saved ones (stored or revised since); a
  missing, corrupt or foreign snapshot (other service nodes or topology) is
  dropped with a warning and everything is rebuilt from the stored periods.
* :meth:`MgStats.rows` serves the running PE-to-PE figures, and on demand,
  from the kept per-period values, the class sum, service-node granularity
  and roll-ups to local hours, days and ISO weeks.

**if_pe and vrf statistics** (``detail=True``, ``mg serve --stats-detail``,
the default). The running PE-to-PE set stays as it is (it is what alarms,
busy hours and link loads read, and its update is benchmarked); beside it,
each interval keeps, per counted period, the bytes and packets of its
*finest* elements — (ingress, in_if, vrf, egress, class), every partial key
but the ToS, ``total_matrix(..., granularity=FINEST)``: ``observe`` reads the
period's partials once and sums them twice (PE-to-PE, finest). Both if_pe and
vrf are sums of the finest elements, so one history serves both (and every
class filter, class sum and time scale) by the same on-demand grouping as
pop_pop: a sparse element → group matrix times the kept period vectors, then
:func:`_series_stats`, exact (population std, p95 ``inverted_cdf``). Keeping
the two granularities' totals instead would cost two extra sums per update
and about as much memory, and would serve nothing finer. A finest element's
code comes from three :class:`ElementIndex` (PE triple, (VRF, in_if) port,
their pair) and a period's values are one scatter each, as for PE-to-PE; a
revision replaces the period's vectors. Cost: 16 octets per finest element
per counted period (two float64), in memory and in ``stats_periods``
(``detail_bytes``, ``detail_packets``; the keys in ``stats_state.detail_keys``):
a week of 5-minute periods (2,016) over 10,000 finest elements is 323 MB,
about the PE-to-PE history again times the interfaces and VRFs per PE pair.
With ``detail=False`` nothing of it is kept and if_pe / vrf answer
:data:`DETAIL_OFF`. A snapshot saved without the detail (or by version 1)
is rebuilt from the stored partials when the detail is on.

Each period total also goes to an :class:`~flowmatrix.stats.alarms.AlarmEngine`
of the configuration's rules: element rules get one key per
``"ingress>egress"`` (ASCII: the key goes into the webhook's
Idempotency-Key header), network rules the key ``"network"``, link rules
(with a topology; skipped without) one key per selected link direction,
``"link:src>dst"``, valued in bit/s or utilization. The engine's state is
saved in the store's ``meta`` table after each evaluation and restored at
start; a :class:`~flowmatrix.stats.webhook.WebhookSender` runs with the
component when a rule has a webhook.

Reads and updates are serialized by one lock.

>>> from flowmatrix.config.model import NetworkConfig
>>> from flowmatrix.matrix.store import Store
>>> with Store(":memory:") as store:
...     stats = MgStats(NetworkConfig(name="n", asn=1), store)
...     stats.start()
...     rows = stats.rows("always")
>>> rows
[]
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from flowmatrix.config.model import AlarmRule, Interval, NetworkConfig
from flowmatrix.errors import FlowmatrixError
from flowmatrix.matrix.store import Blob, StatsPeriod, StatsState, Store, Upload
from flowmatrix.matrix.total import (
    ALL_CLASSES,
    FINEST,
    OUTPUT_VALUES,
    output_columns,
    total_matrix,
)
from flowmatrix.stats.alarms import (
    ActiveAlarm,
    AlarmEngine,
    AlarmEvent,
    element_mask,
    link_mask,
)
from flowmatrix.stats.busy import BusyHour, busy_hour, busy_hours
from flowmatrix.stats.forecast import backtest, crossing_time, forecast
from flowmatrix.stats.running import ElementIndex, RunningStats, rollup
from flowmatrix.stats.webhook import WebhookSender

if TYPE_CHECKING:
    from flowmatrix.capacity.topology import Topology

__all__ = [
    "ALARM_STATE_KEY",
    "DETAIL_GRANULARITIES",
    "DETAIL_OFF",
    "MIN_FORECAST_PERIODS",
    "STATS_COLUMNS",
    "STATS_GRANULARITIES",
    "TIMESCALES",
    "ForecastError",
    "LinkHistory",
    "MgStats",
    "StatsGranularity",
    "Timescale",
    "element_forecast",
    "stats_columns",
]

log = logging.getLogger("flowmatrix.mg.stats")

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_HOUR_S: Final = 3600
#: key of the alarm engine's JSON state in the store's ``meta`` table
ALARM_STATE_KEY: Final = "alarm_state"

#: shortest history an element forecast accepts, periods
MIN_FORECAST_PERIODS: Final = 4
_DAY_S: Final = 86_400

#: columns of :meth:`MgStats.rows`, in order
STATS_COLUMNS: Final = (
    "ingress",
    "egress",
    "class",
    "periods",
    "mean_bytes",
    "std_bytes",
    "peak_bytes",
    "p95_bytes",
    "mean_packets",
    "peak_packets",
    "p95_packets",
)

StatsGranularity = Literal["pe_pe", "pop_pop", "if_pe", "vrf"]
#: granularities :meth:`MgStats.rows` serves (named as ``/matrix`` names them)
STATS_GRANULARITIES: Final = tuple(get_args(StatsGranularity))
#: granularities computed from the finest elements' periods (``MgStats(detail=True)``)
DETAIL_GRANULARITIES: Final = ("if_pe", "vrf")
#: why if_pe and vrf statistics are refused by an MG that keeps no finer periods (HTTP 422)
DETAIL_OFF: Final = (
    "if_pe and vrf statistics are off on this MG: restart it with "
    "`flowmatrix mg serve --stats-detail` (the default)"
)
#: the statistics columns after the key columns of every granularity
_VALUE_COLUMNS: Final = STATS_COLUMNS[3:]


def stats_columns(granularity: StatsGranularity) -> tuple[str, ...]:
    """The columns of :meth:`MgStats.rows` at ``granularity``: its ``/matrix`` keys, statistics.

    >>> stats_columns("if_pe")[:5]
    ('ingress', 'if_index', 'egress', 'class', 'periods')
    """
    keys = output_columns(granularity)[: -len(OUTPUT_VALUES)]
    return (*keys, *_VALUE_COLUMNS)


Timescale = Literal["period", "hour", "day", "week"]
#: time scales of :meth:`MgStats.rows`: read-out periods, or their sums per local hour, day, week
TIMESCALES: Final = tuple(get_args(Timescale))

#: bits of one name code in a packed element key: (ingress, egress, class) in 3 × 21 bits
_BITS: Final = 21
_MASK: Final = (1 << _BITS) - 1
#: largest ends × ends × classes look-up table of element codes (int32 cells: 32 MB), e.g.
#: 1,000 PEs × 1,000 × 8 classes
_LUT_CELLS: Final = 1 << 23
#: version of the saved statistics (``meta_json["version"]``); 2 added the finest elements
SNAPSHOT_VERSION: Final = 2
#: bits of the (VRF, input interface) port code in a finest element's key (in_if is 32 bits)
_PORT_BITS: Final = 32
_PORT_MASK: Final = (1 << _PORT_BITS) - 1
#: key columns of a FINEST total, in order
_FINEST_KEYS: Final = ("ingress", "if_index", "vrf", "egress", "class")


class _Names:
    """PE and class names ↔ codes, in order of first appearance (codes of packed element keys)."""

    def __init__(self, values: Sequence[str] = ()) -> None:
        self.values: list[str] = []
        self.code: dict[str, int] = {}
        self.extend(values)

    def __len__(self) -> int:
        return len(self.values)

    def extend(self, values: Sequence[str]) -> None:
        for value in values:  # per new distinct name
            if value not in self.code:
                if len(self.values) > _MASK:
                    msg = f"more than {_MASK + 1} distinct names in one interval"
                    raise ValueError(msg)
                self.code[value] = len(self.values)
                self.values.append(value)

    def encode(self, column: pa.ChunkedArray | pa.Array) -> I64:
        """A string column → one code per row (dictionary-encoded: names looked up once each)."""
        array = column
        if isinstance(column, pa.ChunkedArray):
            # combining copies even one chunk (a sliced one): only when there are several
            array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        encoded = pc.dictionary_encode(array)
        words = [str(w) for w in encoded.dictionary.to_pylist()]  # the distinct names only
        self.extend(words)
        lookup = np.array([self.code[w] for w in words], dtype=np.int64)
        return np.asarray(np.take(lookup, encoded.indices.to_numpy(zero_copy_only=False)), np.int64)

    def array(self) -> npt.NDArray[np.object_]:
        out = np.empty(len(self.values), dtype=object)
        out[:] = self.values
        return out


def _pack(ingress: I64, egress: I64, cls: I64) -> I64:
    return np.asarray((ingress << (2 * _BITS)) | (egress << _BITS) | cls, dtype=np.int64)


def _unpack(keys: I64) -> tuple[I64, I64, I64]:
    return keys >> (2 * _BITS), (keys >> _BITS) & _MASK, keys & _MASK


@dataclass
class _Detail:
    """One interval's finest elements (ingress, in_if, vrf, egress, class) and their periods.

    A finest element's key packs the code of its (ingress, egress, class)
    name-code triple (``pairs``, names of the interval's ``ends`` and
    ``classes``) above the code of its (VRF, in_if) port (``ports``: VRF name
    code above the 32-bit interface index).
    """

    vrfs: _Names = field(default_factory=_Names)
    pairs: ElementIndex = field(default_factory=ElementIndex)
    ports: ElementIndex = field(default_factory=ElementIndex)
    index: ElementIndex = field(default_factory=ElementIndex)
    #: period start (UTC ms) → bytes and packets per finest element code (zeros past the end)
    bytes: dict[int, F64] = field(default_factory=dict)
    packets: dict[int, F64] = field(default_factory=dict)
    #: the last finest total's key columns and element codes
    last: tuple[tuple[pa.ChunkedArray, ...], npt.NDArray[np.intp]] | None = None

    def keys(self) -> tuple[I64, I64, I64, I64, I64]:
        """Per finest element code: ingress, egress and class name codes, VRF code, in_if."""
        pair = self.pairs.keys[self.index.keys >> _PORT_BITS]
        port = self.ports.keys[self.index.keys & _PORT_MASK]
        ingress, egress, classes = _unpack(pair)
        return ingress, egress, classes, port >> _PORT_BITS, port & _PORT_MASK


@dataclass
class _IntervalStats:
    """One interval's element statistics, per-period volumes, link loads and what they came from."""

    #: PE (or other end) names and class names; packed keys hold their codes
    ends: _Names = field(default_factory=_Names)
    classes: _Names = field(default_factory=_Names)
    #: packed (ingress, egress, class) name codes → element code
    index: ElementIndex = field(default_factory=ElementIndex)
    bytes: RunningStats = field(default_factory=RunningStats)
    packets: RunningStats = field(default_factory=RunningStats)
    #: period start (UTC ms) → network volume of the period, bytes; its keys are the counted periods
    volume: dict[int, float] = field(default_factory=dict)
    #: period start (UTC ms) → bytes per service node (``MgStats.nodes`` order)
    node_volume: dict[int, F64] = field(default_factory=dict)
    #: period start (UTC ms) → load of every topology arc, bit/s (empty without a topology)
    link_bps: dict[int, F64] = field(default_factory=dict)
    #: period start (UTC ms) → its end
    end_ms: dict[int, int] = field(default_factory=dict)
    #: period start (UTC ms) → ids of the current uploads summed into it
    uploads: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: element code of every (ingress, egress, class) name-code triple, -1 unknown; None when
    #: the vocabularies outgrow _LUT_CELLS (the index's search then)
    lut: npt.NDArray[np.int32] | None = field(
        default_factory=lambda: np.full((0, 0, 0), -1, np.int32)
    )
    #: per element: the service-node bin of its ingress and of its egress (see _node_volume)
    node_bins: tuple[I64, I64] | None = None
    #: the last total's key columns and their name and element codes
    last: tuple[tuple[pa.ChunkedArray, ...], tuple[I64, I64, I64, npt.NDArray[np.intp]]] | None = (
        None
    )
    #: the finest elements' periods (``MgStats(detail=True)``; empty otherwise)
    detail: _Detail = field(default_factory=_Detail)

    def codes(self, ingress: I64, egress: I64, classes: I64) -> npt.NDArray[np.intp]:
        """Element codes of name-code triples (new elements get new codes)."""
        if self.lut is not None:
            shape = (len(self.ends), len(self.ends), len(self.classes))
            if self.lut.shape != shape:
                if int(np.prod(shape)) > _LUT_CELLS:
                    self.lut = None
                else:
                    grown = np.full(shape, -1, np.int32)
                    grown[tuple(slice(0, n) for n in self.lut.shape)] = self.lut
                    self.lut = grown
        if self.lut is None:
            return self.index.codes(_pack(ingress, egress, classes))
        codes = self.lut[ingress, egress, classes]
        new = codes < 0
        if new.any():
            fresh = self.index.codes(_pack(ingress[new], egress[new], classes[new]))
            self.lut[ingress[new], egress[new], classes[new]] = fresh
            codes[new] = fresh
        return codes.astype(np.intp, copy=False)


@dataclass(frozen=True, slots=True)
class LinkHistory:
    """One direction of one topology link: its load per counted period, oldest first."""

    link: str
    src: str
    dst: str
    capacity_bps: float
    period_start_ms: list[int]
    bps: list[float]


class _SnapshotError(ValueError):
    """A saved statistics snapshot that cannot be used (corrupt, or of another configuration)."""


def _blob(values: npt.NDArray[Any]) -> memoryview:
    """A vector as little-endian float64 or int64 bytes, over its own memory when it can.

    Only vectors nobody changes afterwards are passed: kept periods, element
    keys (replaced, never changed in place) and copies of the running moments.
    """
    kind = "<f8" if values.dtype.kind == "f" else "<i8"
    return np.ascontiguousarray(values, dtype=kind).data


def _floats(blob: Blob, size: int | None = None) -> F64:
    octets = memoryview(blob).nbytes
    if octets % 8:
        msg = f"a saved vector of {octets} octets is not float64"
        raise _SnapshotError(msg)
    out = np.frombuffer(blob, dtype="<f8").astype(np.float64)
    if size is not None and out.size != size:
        msg = f"a saved vector has {out.size} values, not {size}"
        raise _SnapshotError(msg)
    return out


class _SnapshotWriter:
    """Writes statistics snapshots to the store in a background thread, newest state first.

    Writes queued while one runs are merged: the interval's latest state and
    the union of the periods, the latest row of each. The thread runs while
    there is something to write and exits when the queue is empty. A write
    that fails is logged; the store then lags behind, which the next start
    notices and catches up from the stored partials.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: dict[str, tuple[StatsState, dict[int, StatsPeriod]]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, state: StatsState, periods: Sequence[StatsPeriod]) -> None:
        """Queue a state and some of its periods; return at once."""
        with self._cond:
            queued = self._pending.get(state.interval, (state, {}))[1]
            queued.update({p.period_start_ms: p for p in periods})
            self._pending[state.interval] = (state, queued)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stats-save", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Wait until everything queued is written."""
        with self._cond:
            while self._thread is not None:
                self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._thread = None
                    self._cond.notify_all()
                    return
                batch, self._pending = self._pending, {}
            for state, periods in batch.values():  # per interval
                try:
                    self.store.put_stats(state, list(periods.values()))
                except Exception:
                    log.exception("component=stats event=save_failed interval=%s", state.interval)


class MgStats:
    """Per-interval element statistics, busy hours and link loads, updated as periods are stored.

    ``detail`` keeps every period's finest elements too, for the ``if_pe``
    and ``vrf`` statistics (``mg serve --stats-detail``, the default).
    """

    def __init__(
        self,
        config: NetworkConfig,
        store: Store,
        *,
        topology: Topology | None = None,
        detail: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.topology = topology
        self.detail = detail
        self._intervals: dict[str, Interval] = {i.id: i for i in config.intervals}
        #: service node names, sorted; a node's code is its position
        self.nodes: tuple[str, ...] = tuple(
            sorted({n.name for n in config.service_nodes} | {p.service_node for p in config.pes})
        )
        code = {name: i for i, name in enumerate(self.nodes)}
        self._node_of: dict[str, int] = {p.name: code[p.service_node] for p in config.pes}
        self._stats: dict[str, _IntervalStats] = {}
        self._lock = threading.Lock()
        self.alarms = AlarmEngine(config.alarms)
        self._webhooks: WebhookSender | None = None
        self._writer = _SnapshotWriter(store)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Restore the alarm state, start webhooks, load the saved statistics and catch up.

        The statistics saved in the store (``stats_state``, ``stats_periods``)
        are loaded as they were; then only the periods whose current uploads
        differ from the ones saved (stored or revised since) are summed again
        from their partials. A snapshot that is missing, corrupt or of another
        configuration or topology is dropped with a warning and everything is
        rebuilt from the stored periods. Periods the restored alarm state
        already saw are not evaluated again (the engine ignores them).
        """
        if self.topology is None:
            for rule in self.config.alarms:
                if rule.target == "link":
                    log.info(
                        "component=stats rule=%s link rules need a topology (mg serve "
                        "--topology): skipped",
                        rule.id,
                    )
        saved = self.store.get_meta(ALARM_STATE_KEY)
        if saved is not None:
            try:
                self.alarms.restore(json.loads(saved))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("component=stats alarm state not restored: %s", exc)
        if any(r.webhook for r in self.config.alarms):
            self._webhooks = WebhookSender(self.config.alarms)
            self._webhooks.start()
        periods: dict[tuple[str, int], list[Upload]] = {}
        for upload in self.store.current():  # one query of upload metadata, no rows
            if upload.interval in self._intervals:
                periods.setdefault((upload.interval, upload.period_start_ms), []).append(upload)
        with self._lock:
            self._stats.clear()
            try:
                loaded = self._load()
            except _SnapshotError as exc:
                self._stats.clear()
                loaded, reason = set(), f"statistics snapshot not used ({exc})"
            else:
                reason = "no statistics snapshot"
            if not loaded:
                self.store.clear_stats()
                if periods:
                    log.warning(
                        "component=stats %s: rebuilding from %d stored period(s)",
                        reason,
                        len(periods),
                    )
            summed: dict[str, list[int]] = {}
            for (interval, start), uploads in periods.items():  # per stored period
                state = self._stats.get(interval)
                ids = tuple(sorted(u.id for u in uploads))
                if state is not None and state.uploads.get(start) == ids:
                    continue  # saved as it is now
                try:
                    self._put(interval, start, uploads, persist=False)
                except Exception:
                    # as in observe(): a period the statistics cannot take must not keep
                    # the MG from serving its matrices
                    log.exception(
                        "component=stats event=error interval=%s period_start_ms=%d",
                        interval,
                        start,
                    )
                    continue
                summed.setdefault(interval, []).append(start)
            for interval, starts in summed.items():  # save once per interval
                self._save(interval, starts if interval in loaded else None, wait=True)
        log.info(
            "component=stats event=started periods=%d loaded_intervals=%d summed=%d",
            len(periods),
            len(loaded),
            sum(len(s) for s in summed.values()),
        )

    def stop(self) -> None:
        """Finish saving the statistics, deliver queued webhooks and stop."""
        self._writer.flush()
        if self._webhooks is not None:
            self._webhooks.stop()
            self._webhooks = None
        log.info("component=stats event=stopped")

    # --- updates ---------------------------------------------------------------------------------

    def observe(self, interval: str, period_start_ms: int) -> None:
        """Recompute one period's total and put it in (``replace`` when already counted)."""
        with self._lock:  # read under the lock too: two uploads of a period put in store order
            uploads = self.store.current(interval, period_start_ms=period_start_ms)
            self._put(interval, period_start_ms, uploads)

    def _put(
        self, interval: str, period_start_ms: int, uploads: list[Upload], *, persist: bool = True
    ) -> None:
        """Sum the period's current ``uploads`` and put the total in as the period's values."""
        fine = None
        if self.detail:
            partials = list(self.store.iter_rows(uploads))  # read once, summed twice
            total = total_matrix(self.config, partials, granularity="pe_pe")
            fine = total_matrix(self.config, partials, granularity=FINEST)
        else:
            total = total_matrix(self.config, self.store.iter_rows(uploads), granularity="pe_pe")
        end_ms = max((u.period_end_ms for u in uploads), default=period_start_ms)
        ids = tuple(sorted(u.id for u in uploads))
        self._put_total(interval, period_start_ms, end_ms, total, ids, fine, persist=persist)

    def put_total(
        self,
        interval: str,
        period_start_ms: int,
        period_end_ms: int,
        total: pa.Table,
        uploads: Sequence[int] = (),
        *,
        fine: pa.Table | None = None,
        persist: bool = True,
    ) -> None:
        """Put one period's PE-to-PE total in (``observe`` without the store read and sum).

        ``total`` has the ``ingress, egress, class, bytes, packets`` columns of
        ``total_matrix(..., granularity="pe_pe")``; ``uploads`` the ids it was
        summed from (what a restart compares). ``fine``, the same period's
        ``total_matrix(..., granularity=FINEST)``, is needed when the
        statistics keep the detail (ValueError without it) and ignored
        otherwise. ``persist`` saves the snapshot.
        """
        if self.detail and fine is None:
            msg = "these statistics keep the if_pe and vrf detail: give the period's fine total"
            raise ValueError(msg)
        with self._lock:
            self._put_total(
                interval,
                period_start_ms,
                period_end_ms,
                total,
                tuple(sorted(uploads)),
                fine,
                persist=persist,
            )

    def _put_total(
        self,
        interval: str,
        period_start_ms: int,
        end_ms: int,
        total: pa.Table,
        ids: tuple[int, ...],
        fine: pa.Table | None,
        *,
        persist: bool,
    ) -> None:
        state = self._stats.setdefault(interval, _IntervalStats())
        columns = tuple(total[c] for c in ("ingress", "egress", "class"))
        if state.last is not None and all(
            a.equals(b) for a, b in zip(columns, state.last[0], strict=True)
        ):
            # the previous period's elements, in the same order: its codes (a buffer compare)
            ingress, egress, classes, codes = state.last[1]
        else:
            ingress = state.ends.encode(columns[0])
            egress = state.ends.encode(columns[1])
            classes = state.classes.encode(columns[2])
            codes = state.codes(ingress, egress, classes)
            state.last = (columns, (ingress, egress, classes, codes))
        size = len(state.index)
        # a total has one row per element: a scatter, not a sum
        bytes_, packets = np.zeros(size), np.zeros(size)
        bytes_[codes] = total["bytes"].to_numpy()
        packets[codes] = total["packets"].to_numpy()
        finer = self._detail_values(state, fine) if self.detail and fine is not None else None
        if not (
            np.isfinite(bytes_).all()
            and np.isfinite(packets).all()
            and (finer is None or all(np.isfinite(v).all() for v in finer))
        ):
            # sums past 1.8e308: the period stays as it was
            log.error(
                "component=stats event=skipped interval=%s period_start_ms=%d non-finite total",
                interval,
                period_start_ms,
            )
            return
        if period_start_ms in state.volume:
            state.bytes.replace(bytes_, period_start_ms)
            state.packets.replace(packets, period_start_ms)
        else:
            state.bytes.update(bytes_, period_start_ms)
            state.packets.update(packets, period_start_ms)
        if finer is not None:
            # a revision replaces the period's finest values as it replaces the running ones
            state.detail.bytes[period_start_ms], state.detail.packets[period_start_ms] = finer
        state.volume[period_start_ms] = float(bytes_.sum())
        state.end_ms[period_start_ms] = end_ms
        state.uploads[period_start_ms] = ids
        state.node_volume[period_start_ms] = self._node_volume(state, bytes_)
        if self.topology is not None:
            spec = self._intervals.get(interval)
            seconds = spec.readout_seconds if spec is not None else 300
            state.link_bps[period_start_ms] = self._link_loads(state, bytes_ * 8 / seconds)
        if persist:
            self._save(interval, [period_start_ms])
        if interval in self._intervals:
            self._evaluate(
                interval, end_ms, state, ingress, egress, classes, total, period_start_ms
            )

    def _detail_values(self, state: _IntervalStats, fine: pa.Table) -> tuple[F64, F64]:
        """A FINEST total → bytes and packets per finest element code (new elements coded)."""
        detail = state.detail
        columns = tuple(fine[c] for c in _FINEST_KEYS)
        if detail.last is not None and all(
            a.equals(b) for a, b in zip(columns, detail.last[0], strict=True)
        ):
            codes = detail.last[1]  # the previous period's finest elements, in the same order
        else:
            ingress = state.ends.encode(columns[0])
            egress = state.ends.encode(columns[3])
            classes = state.classes.encode(columns[4])
            vrf = detail.vrfs.encode(columns[2])
            in_if = np.asarray(columns[1].to_numpy(), dtype=np.int64)
            if in_if.size and (int(in_if.min()) < 0 or int(in_if.max()) > _PORT_MASK):
                msg = "an input interface index outside 0 … 2**32 - 1"
                raise ValueError(msg)
            pair = detail.pairs.codes(_pack(ingress, egress, classes)).astype(np.int64)
            port = detail.ports.codes((vrf << _PORT_BITS) | in_if).astype(np.int64)
            codes = detail.index.codes((pair << _PORT_BITS) | port)
            detail.last = (columns, codes)
        size = len(detail.index)
        bytes_, packets = np.zeros(size), np.zeros(size)
        bytes_[codes] = fine["bytes"].to_numpy()
        packets[codes] = fine["packets"].to_numpy()
        return bytes_, packets

    def _node_volume(self, state: _IntervalStats, values: F64) -> F64:
        """Element values → volume per service node (bins of the element set cached)."""
        n = len(self.nodes)
        if state.node_bins is None or state.node_bins[0].size != values.size:
            ing, egr, _ = _unpack(state.index.keys)
            node_code = self._node_codes(state.ends)
            i_node, e_node = node_code[ing], node_code[egr]
            # bin n collects what counts for no node: unknown ends, the egress of a one-node element
            state.node_bins = (
                np.where(i_node >= 0, i_node, n),
                np.where((e_node >= 0) & (e_node != i_node), e_node, n),
            )
        ingress_bin, egress_bin = state.node_bins
        out = np.bincount(ingress_bin, weights=values, minlength=n + 1)
        out += np.bincount(egress_bin, weights=values, minlength=n + 1)
        return np.asarray(out[:n], dtype=np.float64)

    def _node_codes(self, names: _Names) -> I64:
        """Service-node code of every name (-1: not a configured PE)."""
        return np.array([self._node_of.get(n, -1) for n in names.values], np.int64)

    def _link_loads(self, state: _IntervalStats, element_bps: F64) -> F64:
        """Element rates (bit/s) → the load of every topology arc (classes summed per PE pair)."""
        from flowmatrix.capacity.demands import make_demands
        from flowmatrix.capacity.routing import route

        assert self.topology is not None
        pair = state.index.keys >> _BITS  # (ingress, egress) name codes, classes dropped
        distinct, back = np.unique(pair, return_inverse=True)
        bps = np.bincount(back, weights=element_bps, minlength=distinct.size)
        names = state.ends.array()
        ingress, egress = names[distinct >> _BITS], names[distinct & _MASK]
        # only routers of the topology: "unresolved" and unknown PEs carry no link load
        known = np.isin(ingress, list(self.topology.node_index)) & np.isin(
            egress, list(self.topology.node_index)
        )
        keep = known & (bps > 0)
        demands = make_demands(ingress[keep].astype(str), egress[keep].astype(str), bps[keep])
        return np.asarray(route(self.topology, demands).load_bps, dtype=np.float64)

    def _evaluate(
        self,
        interval: str,
        end_ms: int,
        state: _IntervalStats,
        ingress_codes: I64,
        egress_codes: I64,
        class_codes: I64,
        total: pa.Table,
        period_start_ms: int,
    ) -> None:
        """Feed a period's total to the alarm rules of ``interval``; persist the engine state."""
        rules = [
            r
            for r in self.alarms.rules_for(interval)
            if r.target != "link" or self.topology is not None
        ]
        if not rules:
            return
        spec = self._intervals[interval]
        names = state.ends.array()
        ingress, egress = names[ingress_codes], names[egress_codes]
        classes = state.classes.array()[class_codes]
        events: list[AlarmEvent] = []
        for rule in rules:  # per configured rule
            if rule.target == "link":
                keys, sums = self._link_values(rule, state.link_bps[period_start_ms])
                events += self.alarms.observe(rule.id, interval, end_ms, keys, sums)
                continue
            column = "packets" if rule.statistic == "packets" else "bytes"
            values = total[column].to_numpy()
            if rule.statistic == "bps":
                values = values * 8 / spec.readout_seconds
            mask = element_mask(rule, self.config, ingress, egress, classes)
            if rule.target == "network":
                keys, sums = ["network"], np.array([values[mask].sum()])
            else:
                pairs = np.char.add(
                    np.char.add(ingress[mask].astype(str), ">"), egress[mask].astype(str)
                )
                distinct, back = np.unique(pairs, return_inverse=True)
                keys = [str(k) for k in distinct]
                sums = np.asarray(
                    np.bincount(back, weights=values[mask], minlength=len(keys)), np.float64
                )
            events += self.alarms.observe(rule.id, interval, end_ms, keys, sums)
        self.store.put_meta(ALARM_STATE_KEY, json.dumps(self.alarms.state()))
        if events and self._webhooks is not None:
            self._webhooks.send(events)

    def _link_values(self, rule: AlarmRule, load_bps: F64) -> tuple[list[str], F64]:
        """The arcs a link rule selects → their keys and the rule's statistic (bps or utilization).

        Every selected arc is passed, loaded or not, so ``below`` rules see idle links.
        """
        assert self.topology is not None
        arcs = self.topology.arcs
        ends = [self.topology.arc_ends(a) for a in range(len(arcs))]  # per arc: a topology's size
        src = np.array([e[0] for e in ends], dtype=object)
        dst = np.array([e[1] for e in ends], dtype=object)
        mask = link_mask(rule, src, dst) if len(arcs) else np.zeros(0, bool)
        values = load_bps / arcs.capacity_bps if rule.statistic == "utilization" else load_bps
        picked = np.flatnonzero(mask)
        keys = [self._arc_key(int(a)) for a in picked]
        return keys, np.asarray(values[picked], dtype=np.float64)

    def _arc_key(self, arc: int) -> str:
        """``link:src>dst`` (ASCII: alarm keys go into the webhook's Idempotency-Key header)."""
        assert self.topology is not None
        src, dst = self.topology.arc_ends(arc)
        return f"{self.topology.links[arc // 2].name}:{src}>{dst}"

    # --- snapshots -------------------------------------------------------------------------------

    def _fingerprint(self) -> dict[str, Any]:
        """What the saved figures depend on besides the uploads: PE → node, read-out periods
        (link loads are bit/s), the topology's arcs."""
        topo = None
        if self.topology is not None:
            arcs = self.topology.arcs
            topo = {
                "links": [link.name for link in self.topology.links],
                "arcs": [[int(s), int(d)] for s, d in zip(arcs.src, arcs.dst, strict=True)],
                "metric": arcs.metric.tolist(),
                "nodes": [n.name for n in self.topology.nodes],
            }
        readout = {i: spec.readout_seconds for i, spec in sorted(self._intervals.items())}
        return {
            "nodes": list(self.nodes),
            "node_of": self._node_of,
            "readout_seconds": readout,
            "topology": topo,
        }

    def flush(self) -> None:
        """Wait until the statistics saved in the store are the current ones."""
        self._writer.flush()

    def _save(self, interval: str, starts: Sequence[int] | None, *, wait: bool = False) -> None:
        """Save the interval's running state and the periods ``starts`` (None: every period).

        The blobs are taken now; the write runs in the background (``wait``:
        here), one transaction per write so the state and its periods never
        disagree in the store.
        """
        state = self._stats.get(interval)
        if state is None:
            return
        order = state.bytes.period_start_ms.tolist()
        detail = state.detail if self.detail else None
        meta = {
            "version": SNAPSHOT_VERSION,
            "count": state.bytes.count,
            "order": order,
            "ends": state.ends.values,
            "classes": state.classes.values,
            "fingerprint": self._fingerprint(),
            # the finest elements: VRF names and the sizes of the three key vectors saved
            # one after the other in detail_keys (pairs, ports, elements); None without
            "detail": None
            if detail is None
            else {
                "vrfs": detail.vrfs.values,
                "sizes": [len(detail.pairs), len(detail.ports), len(detail.index)],
            },
        }
        detail_keys = (
            _blob(np.concatenate([detail.pairs.keys, detail.ports.keys, detail.index.keys]))
            if detail is not None
            else b""
        )
        snapshot = StatsState(
            interval=interval,
            meta_json=json.dumps(meta),
            keys=_blob(state.index.keys),
            bytes_mean=_blob(state.bytes.mean),
            bytes_m2=_blob(state.bytes.m2),
            packets_mean=_blob(state.packets.mean),
            packets_m2=_blob(state.packets.m2),
            detail_keys=detail_keys,
        )
        at = {start: i for i, start in enumerate(order)}
        history_b, history_p = state.bytes.period_values(), state.packets.period_values()
        periods = [
            StatsPeriod(
                interval=interval,
                period_start_ms=start,
                period_end_ms=state.end_ms[start],
                uploads=",".join(str(i) for i in state.uploads[start]),
                volume=state.volume[start],
                node_volume=_blob(state.node_volume[start]),
                link_bps=_blob(state.link_bps.get(start, np.zeros(0))),
                element_bytes=_blob(history_b[at[start]]),
                element_packets=_blob(history_p[at[start]]),
                detail_bytes=_blob(detail.bytes[start]) if detail is not None else b"",
                detail_packets=_blob(detail.packets[start]) if detail is not None else b"",
            )
            for start in (order if starts is None else starts)  # per period saved
        ]
        if wait:
            self._writer.flush()
            self.store.put_stats(snapshot, periods)
        else:
            self._writer.submit(snapshot, periods)

    def _load(self) -> set[str]:
        """Load every saved interval into ``self._stats``; the intervals loaded.

        Raises _SnapshotError when a snapshot is unusable (the caller rebuilds).
        """
        fingerprint = json.loads(json.dumps(self._fingerprint()))
        loaded: set[str] = set()
        for saved in self.store.stats_states():  # per interval
            if saved.interval not in self._intervals:
                continue
            try:
                meta = json.loads(saved.meta_json)
                if meta.get("version") != SNAPSHOT_VERSION:
                    msg = f"snapshot version {meta.get('version')!r}"
                    raise _SnapshotError(msg)
                if meta["fingerprint"] != fingerprint:
                    msg = "the service nodes, read-out periods or topology changed"
                    raise _SnapshotError(msg)
                if self.detail and meta["detail"] is None:
                    msg = "saved without the if_pe and vrf detail (mg serve --no-stats-detail)"
                    raise _SnapshotError(msg)
                self._stats[saved.interval] = self._decode(
                    saved, meta, self.store.stats_periods(saved.interval)
                )
            except (ValueError, KeyError, TypeError) as exc:
                msg = f"interval {saved.interval}: {exc}"
                raise _SnapshotError(msg) from None
            loaded.add(saved.interval)
        return loaded

    def _decode(
        self, saved: StatsState, meta: dict[str, Any], periods: list[StatsPeriod]
    ) -> _IntervalStats:
        keys_blob = saved.keys
        if memoryview(keys_blob).nbytes % 8:
            msg = "element keys are not int64"
            raise _SnapshotError(msg)
        keys = np.frombuffer(keys_blob, dtype="<i8").astype(np.int64)
        size = keys.size
        ends = _Names([str(n) for n in meta["ends"]])
        classes = _Names([str(n) for n in meta["classes"]])
        ing, egr, cls = _unpack(keys)
        if keys.size and (
            int(keys.min()) < 0
            or max(int(ing.max()), int(egr.max())) >= len(ends)
            or int(cls.max()) >= len(classes)
        ):
            msg = "element keys name unknown names"
            raise _SnapshotError(msg)
        order = [int(s) for s in meta["order"]]
        by_start = {p.period_start_ms: p for p in periods}
        if sorted(order) != sorted(by_start) or len(order) != int(meta["count"]):
            msg = f"{len(order)} period(s) counted but {len(by_start)} saved"
            raise _SnapshotError(msg)
        state = _IntervalStats(ends=ends, classes=classes, index=ElementIndex.from_keys(keys))
        history_b, history_p = [], []
        n_arcs = 2 * len(self.topology.links) if self.topology is not None else 0
        for start in order:  # per counted period, in update order
            period = by_start[start]
            history_b.append(_floats(period.element_bytes))
            history_p.append(_floats(period.element_packets))
            if history_b[-1].size > size or history_p[-1].size > size:
                msg = f"period {start} has more values than elements"
                raise _SnapshotError(msg)
            state.volume[start] = period.volume
            state.node_volume[start] = _floats(period.node_volume, len(self.nodes))
            if self.topology is not None:
                state.link_bps[start] = _floats(period.link_bps, n_arcs)
            state.end_ms[start] = period.period_end_ms
            state.uploads[start] = tuple(int(i) for i in period.uploads.split(",") if i)
        if self.detail:
            state.detail = self._decode_detail(saved, meta["detail"], state, order, by_start)
        state.bytes = RunningStats.restore(
            mean=_floats(saved.bytes_mean, size),
            m2=_floats(saved.bytes_m2, size),
            history=history_b,
            period_start_ms=order,
        )
        state.packets = RunningStats.restore(
            mean=_floats(saved.packets_mean, size),
            m2=_floats(saved.packets_m2, size),
            history=history_p,
            period_start_ms=order,
        )
        return state

    def _decode_detail(
        self,
        saved: StatsState,
        meta: dict[str, Any],
        state: _IntervalStats,
        order: list[int],
        by_start: dict[int, StatsPeriod],
    ) -> _Detail:
        """The finest elements and periods of a snapshot (``meta`` is its ``detail`` entry)."""
        sizes = [int(n) for n in meta["sizes"]]
        if len(sizes) != 3 or memoryview(saved.detail_keys).nbytes != 8 * sum(sizes):
            msg = "the finest element keys do not match their sizes"
            raise _SnapshotError(msg)
        keys = np.frombuffer(saved.detail_keys, dtype="<i8").astype(np.int64)
        pairs, ports, elements = np.split(keys, np.cumsum(sizes)[:2])
        detail = _Detail(
            vrfs=_Names([str(n) for n in meta["vrfs"]]),
            pairs=ElementIndex.from_keys(pairs),
            ports=ElementIndex.from_keys(ports),
            index=ElementIndex.from_keys(elements),
        )
        if elements.size:
            pair, port = elements >> _PORT_BITS, elements & _PORT_MASK
            # codes in range first: keys() indexes the pairs and ports with them
            unknown = (
                int(elements.min()) < 0
                or int(pair.max()) >= pairs.size
                or int(port.max()) >= ports.size
            )
            if not unknown:
                ing, egr, cls, vrf, _ = detail.keys()
                unknown = min(int(c.min()) for c in (ing, egr, cls, vrf)) < 0 or (
                    max(int(ing.max()), int(egr.max())) >= len(state.ends)
                    or int(cls.max()) >= len(state.classes)
                    or int(vrf.max()) >= len(detail.vrfs)
                )
            if unknown:
                msg = "the finest element keys name unknown names"
                raise _SnapshotError(msg)
        for start in order:  # per counted period
            period = by_start[start]
            detail.bytes[start] = _floats(period.detail_bytes)
            detail.packets[start] = _floats(period.detail_packets)
            if max(detail.bytes[start].size, detail.packets[start].size) > elements.size:
                msg = f"period {start} has more finest values than elements"
                raise _SnapshotError(msg)
        return detail

    # --- reads -----------------------------------------------------------------------------------

    def active_alarms(self) -> list[ActiveAlarm]:
        """The alarms raised now, oldest first."""
        with self._lock:
            return self.alarms.active()

    def rows(
        self,
        interval: str,
        class_: str | None = None,
        *,
        granularity: StatsGranularity = "pe_pe",
        timescale: Timescale = "period",
    ) -> list[dict[str, Any]]:
        """One dict per element (:func:`stats_columns`) of ``interval``, sorted by keys.

        ``class_`` keeps one class; ``"all"`` sums the classes into one row
        per ingress × egress labelled ``all``. ``granularity`` ``pop_pop``
        sums PEs into their service nodes (``unresolved`` and PEs the
        configuration does not know keep their name); ``if_pe`` keeps the
        ingress interface (``if_index``) and ``vrf`` the VRF apart, summed
        from the finest elements' periods (ValueError :data:`DETAIL_OFF`
        when they are not kept). ``timescale`` other than
        ``period`` sums the periods into local hours, days or ISO weeks of the
        interval's time zone first; ``periods`` is then the number of buckets
        and the statistics are over the buckets. PE-to-PE per-period figures
        are the running ones; the others are computed on demand from the
        kept periods (so they can always be recomputed). Elements with no
        traffic in any counted period (e.g. dropped by a revision) are left
        out, as a rebuild from the store would not know them.
        """
        if granularity not in STATS_GRANULARITIES:
            msg = f"unknown granularity {granularity!r}; one of {', '.join(STATS_GRANULARITIES)}"
            raise ValueError(msg)
        if timescale not in TIMESCALES:
            msg = f"unknown timescale {timescale!r}; one of {', '.join(TIMESCALES)}"
            raise ValueError(msg)
        if granularity in DETAIL_GRANULARITIES and not self.detail:
            raise ValueError(DETAIL_OFF)
        spec = self._intervals.get(interval)
        timezone = spec.timezone if spec is not None else "UTC"
        if granularity in DETAIL_GRANULARITIES:
            return self._detail_rows(interval, class_, granularity, timescale, timezone)
        with self._lock:
            state = self._stats.get(interval)
            if state is None or state.bytes.count == 0:
                return []
            names = state.ends.array()
            class_names = state.classes.array()
            ingress, egress, classes = _unpack(state.index.keys)
            running = granularity == "pe_pe" and timescale == "period" and class_ != ALL_CLASSES
            if running:
                b, p = state.bytes.snapshot(), state.packets.snapshot()
            else:
                # the kept vectors themselves (never changed in place), no dense copy
                history_b, history_p = state.bytes.period_values(), state.packets.period_values()
                starts = state.bytes.period_start_ms
            node_code = self._node_codes(state.ends)
        keep = np.ones(ingress.size, dtype=bool)
        if class_ is not None and class_ != ALL_CLASSES:
            keep = class_names[classes] == class_ if class_names.size else keep
        if running:
            # history is kept: p95 is there
            b_p95 = b.p95 if b.p95 is not None else b.peak
            p_p95 = p.p95 if p.p95 is not None else p.peak
            stats_b = (b.count, b.mean, np.sqrt(b.variance), b.peak, b_p95)
            stats_p = (p.count, p.mean, np.sqrt(p.variance), p.peak, p_p95)
            labels: tuple[npt.NDArray[Any], ...] = (
                names[ingress],
                names[egress],
                class_names[classes],
            )
        else:
            group, labels = self._groups(
                names,
                class_names,
                node_code,
                ingress,
                egress,
                classes,
                granularity,
                class_ == ALL_CLASSES,
            )
            matrix = _membership(group, keep, labels[0].size)
            stats_b = _series_stats(_grouped(history_b, matrix), starts, timescale, timezone)
            stats_p = _series_stats(_grouped(history_p, matrix), starts, timescale, timezone)
            keep = np.ones(labels[0].size, dtype=bool)
        return _stats_rows(stats_columns(granularity), labels, stats_b, stats_p, keep)

    def _detail_rows(
        self,
        interval: str,
        class_: str | None,
        granularity: StatsGranularity,
        timescale: Timescale,
        timezone: str,
    ) -> list[dict[str, Any]]:
        """if_pe or vrf rows: the finest elements' periods grouped and their statistics."""
        with self._lock:
            state = self._stats.get(interval)
            if state is None or state.bytes.count == 0 or not len(state.detail.index):
                return []
            detail = state.detail
            starts = state.bytes.period_start_ms
            # the kept vectors themselves (replaced, never changed in place), in update order
            history_b = [detail.bytes[s] for s in starts.tolist()]
            history_p = [detail.packets[s] for s in starts.tolist()]
            ingress, egress, classes, vrf, in_if = detail.keys()
            names, class_names = state.ends.array(), state.classes.array()
            vrf_names = detail.vrfs.array()
        keep = np.ones(ingress.size, dtype=bool)
        if class_ is not None and class_ != ALL_CLASSES:
            keep = class_names[classes] == class_
        sum_classes = class_ == ALL_CLASSES
        cls = np.zeros_like(classes) if sum_classes else classes
        if granularity == "if_pe":
            keys = np.stack([ingress, in_if, egress, cls], axis=1)
        else:
            keys = np.stack([vrf, ingress, egress, cls], axis=1)
        distinct, group = np.unique(keys, axis=0, return_inverse=True)
        class_label = (
            np.full(len(distinct), ALL_CLASSES, dtype=object)
            if sum_classes
            else class_names[distinct[:, 3]]
        )
        labels: tuple[npt.NDArray[Any], ...]
        if granularity == "if_pe":
            labels = (names[distinct[:, 0]], distinct[:, 1], names[distinct[:, 2]], class_label)
        else:
            labels = (vrf_names[distinct[:, 0]], names[distinct[:, 1]], names[distinct[:, 2]])
            labels = (*labels, class_label)
        matrix = _membership(group.reshape(-1).astype(np.intp), keep, len(distinct))
        stats_b = _series_stats(_grouped(history_b, matrix), starts, timescale, timezone)
        stats_p = _series_stats(_grouped(history_p, matrix), starts, timescale, timezone)
        everyone = np.ones(len(distinct), dtype=bool)
        return _stats_rows(stats_columns(granularity), labels, stats_b, stats_p, everyone)

    def _groups(
        self,
        names: npt.NDArray[np.object_],
        class_names: npt.NDArray[np.object_],
        node_code: I64,
        ingress: I64,
        egress: I64,
        classes: I64,
        granularity: StatsGranularity,
        sum_classes: bool,
    ) -> tuple[npt.NDArray[np.intp], tuple[npt.NDArray[np.object_], ...]]:
        """Elements → a group code each and the (ingress, egress, class) label of every group."""
        if granularity == "pop_pop":
            nodes = np.array(self.nodes, dtype=object)
            label = np.where(
                node_code >= 0, nodes[np.maximum(node_code, 0)] if nodes.size else names, names
            )
        else:
            label = names
        # ends as label codes (a node shared by many PEs is one code), classes as name codes
        words, end_code = (
            np.unique(label.astype(str), return_inverse=True)
            if label.size
            else (
                np.zeros(0, str),
                np.zeros(0, np.intp),
            )
        )
        cls = np.zeros_like(classes) if sum_classes else classes
        key = _pack(end_code[ingress].astype(np.int64), end_code[egress].astype(np.int64), cls)
        distinct, group = np.unique(key, return_inverse=True)
        gi, ge, gc = _unpack(distinct)
        class_label = (
            np.full(distinct.size, ALL_CLASSES, dtype=object) if sum_classes else class_names[gc]
        )
        words_o = np.asarray(words, dtype=object)
        return group.astype(np.intp), (words_o[gi], words_o[ge], class_label)

    def volumes(self, interval: str) -> dict[int, float]:
        """Period start (UTC ms) → network volume (bytes) of every counted period."""
        with self._lock:
            state = self._stats.get(interval)
            return dict(state.volume) if state is not None else {}

    def busy(self, interval: str) -> BusyHour | None:
        """The network busy hour of ``interval`` in its time zone, or None without periods.

        None too when the read-out period does not divide an hour (no clock hour is whole).
        """
        spec = self._intervals[interval]
        volumes = sorted(self.volumes(interval).items())
        if not volumes or _HOUR_S % spec.readout_seconds:
            return None
        starts, values = zip(*volumes, strict=True)
        return busy_hour(
            np.array(values),
            np.array(starts, dtype=np.int64),
            timezone=spec.timezone,
            readout_seconds=spec.readout_seconds,
        )

    def node_busy(self, interval: str) -> dict[str, BusyHour | None]:
        """Service node → its busy hour in ``interval``'s time zone (None: no periods or hour).

        A node's volume of a period is the bytes of the elements whose ingress
        or egress PE is in the node, once for an element inside one node; an
        ``unresolved`` egress counts for the ingress node only.
        """
        spec = self._intervals[interval]
        with self._lock:
            state = self._stats.get(interval)
            per_period = sorted(state.node_volume.items()) if state is not None else []
        if not per_period or _HOUR_S % spec.readout_seconds:
            return dict.fromkeys(self.nodes)
        starts = np.array([s for s, _ in per_period], dtype=np.int64)
        values = np.stack([v for _, v in per_period])
        hours = busy_hours(
            values,
            starts,
            timezone=spec.timezone,
            readout_seconds=spec.readout_seconds,
        )
        return dict(zip(self.nodes, hours, strict=True))

    def element_history(
        self,
        interval: str,
        ingress: str,
        egress: str,
        class_: str | None = None,
        *,
        if_index: int | None = None,
        vrf: str | None = None,
    ) -> tuple[list[int], list[float]]:
        """One element's bytes per counted period, oldest first (zero where it had none).

        ``class_`` None sums the element's classes. ``if_index`` keeps the
        traffic entering through one input interface, ``vrf`` one VPN (the
        if_pe and vrf elements; ValueError :data:`DETAIL_OFF` without the
        detail). LookupError when the interval has no periods or the element
        was never seen.
        """
        if if_index is not None or vrf is not None:
            if not self.detail:
                raise ValueError(DETAIL_OFF)
            return self._detail_history(interval, ingress, egress, class_, if_index, vrf)
        with self._lock:
            state = self._stats.get(interval)
            codes = np.zeros(0, np.intp)
            if state is not None:
                ing, egr, cls = _unpack(state.index.keys)
                want = [state.ends.code.get(n, -1) for n in (ingress, egress)]
                match = (ing == want[0]) & (egr == want[1])
                if class_ is not None:
                    match &= cls == state.classes.code.get(class_, -1)
                codes = np.flatnonzero(match)
            if state is None or not codes.size:
                what = "every class" if class_ is None else f"class {class_}"
                msg = f"no element {ingress}>{egress} ({what}) in interval {interval!r}"
                raise LookupError(msg)
            history = state.bytes.history()
            starts = state.bytes.period_start_ms
        column = history[:, codes].sum(axis=1)
        order = np.argsort(starts, kind="stable")
        return [int(s) for s in starts[order]], [float(v) for v in column[order]]

    def _detail_history(
        self,
        interval: str,
        ingress: str,
        egress: str,
        class_: str | None,
        if_index: int | None,
        vrf: str | None,
    ) -> tuple[list[int], list[float]]:
        """``element_history`` of an if_pe or vrf element, from the finest elements' periods."""
        with self._lock:
            state = self._stats.get(interval)
            codes = np.zeros(0, np.intp)
            if state is not None and len(state.detail.index):
                ing, egr, cls, vrf_code, in_if = state.detail.keys()
                want = [state.ends.code.get(n, -1) for n in (ingress, egress)]
                match = (ing == want[0]) & (egr == want[1])
                if class_ is not None:
                    match &= cls == state.classes.code.get(class_, -1)
                if if_index is not None:
                    match &= in_if == if_index
                if vrf is not None:
                    match &= vrf_code == state.detail.vrfs.code.get(vrf, -1)
                codes = np.flatnonzero(match)
            if state is None or not codes.size:
                what = "every class" if class_ is None else f"class {class_}"
                where = "".join(
                    (
                        f" if_index {if_index}" if if_index is not None else "",
                        f" vrf {vrf!r}" if vrf is not None else "",
                    )
                )
                msg = f"no element {ingress}>{egress}{where} ({what}) in interval {interval!r}"
                raise LookupError(msg)
            starts = state.bytes.period_start_ms
            history = [state.detail.bytes[s] for s in starts.tolist()]
        values = np.array([h[codes[codes < h.size]].sum() for h in history])  # per period
        order = np.argsort(starts, kind="stable")
        return [int(s) for s in starts[order]], [float(v) for v in values[order]]

    def link_history(self, interval: str, link: str, src: str | None = None) -> LinkHistory:
        """One direction of a topology link: its load (bit/s) per counted period, oldest first.

        ``src`` picks the direction (the router the traffic leaves); None
        picks the direction with the higher mean load. LookupError without a
        topology, for an unknown link or a ``src`` that is not one of its ends.
        """
        if self.topology is None:
            msg = "this MG has no topology (mg serve --topology)"
            raise LookupError(msg)
        arcs = [
            a
            for a in range(2 * len(self.topology.links))
            if self.topology.links[a // 2].name == link
        ]
        if src is not None:
            arcs = [a for a in arcs if self.topology.arc_ends(a)[0] == src]
        if not arcs:
            end = "" if src is None else f" leaving {src}"
            msg = f"no link {link!r}{end} in the topology"
            raise LookupError(msg)
        with self._lock:
            state = self._stats.get(interval)
            per_period = sorted(state.link_bps.items()) if state is not None else []
        if not per_period:
            msg = f"no period in interval {interval!r}"
            raise LookupError(msg)
        loads = np.stack([v for _, v in per_period])
        arc = max(arcs, key=lambda a: float(loads[:, a].mean()))  # first of equals: a→b
        tail, head = self.topology.arc_ends(arc)
        return LinkHistory(
            link=link,
            src=tail,
            dst=head,
            capacity_bps=float(self.topology.arcs.capacity_bps[arc]),
            period_start_ms=[s for s, _ in per_period],
            bps=[float(v) for v in loads[:, arc]],
        )


def _membership(
    group: npt.NDArray[np.intp], keep: npt.NDArray[np.bool_], groups: int
) -> sp.csr_array:
    """Element → group codes (elements not kept in none) → an elements × groups 0/1 matrix."""
    members = np.flatnonzero(keep)
    return sp.csr_array(
        (np.ones(members.size), (members, group[members])), shape=(group.size, groups)
    )


def _stats_rows(
    columns: tuple[str, ...],
    labels: tuple[npt.NDArray[Any], ...],
    stats_b: tuple[int, F64, F64, F64, F64],
    stats_p: tuple[int, F64, F64, F64, F64],
    keep: npt.NDArray[np.bool_],
) -> list[dict[str, Any]]:
    """Key labels and statistics per element or group → the rows with traffic, sorted by keys.

    ``labels`` holds one array per key column (``columns`` first), names or
    integers (``if_index``, sorted as numbers).
    """
    count, mean_b, std_b, peak_b, p95_b = stats_b
    _, mean_p, _, peak_p, p95_p = stats_p
    chosen = np.flatnonzero(keep & ((peak_b > 0) | (peak_p > 0)))
    numeric = [label.dtype.kind in "iu" for label in labels]
    sort_keys = [
        label[chosen] if is_int else label[chosen].astype(str)
        for label, is_int in zip(labels, numeric, strict=True)
    ]
    order = np.lexsort(sort_keys[::-1]) if chosen.size else chosen
    keys = columns[: len(labels)]
    out = []
    for i in chosen[order].tolist():  # per element or group, for the response
        row: dict[str, Any] = {
            key: int(label[i]) if is_int else str(label[i])
            for key, label, is_int in zip(keys, labels, numeric, strict=True)
        }
        row.update(
            periods=count,
            mean_bytes=float(mean_b[i]),
            std_bytes=float(std_b[i]),
            peak_bytes=float(peak_b[i]),
            p95_bytes=float(p95_b[i]),
            mean_packets=float(mean_p[i]),
            peak_packets=float(peak_p[i]),
            p95_packets=float(p95_p[i]),
        )
        out.append(row)
    return out


def _grouped(history: list[F64], matrix: sp.csr_array) -> F64:
    """Kept period vectors (zeros past their end) × an element → group matrix: periods × groups."""
    size, groups = matrix.shape
    out = np.zeros((len(history), groups))
    transposed = matrix.T.tocsr()
    for row, h in zip(out, history, strict=True):  # per period, not per element
        row[:] = (transposed if h.size == size else transposed[:, : h.size]) @ h
    return out


def _series_stats(
    values: F64, starts: I64, timescale: Timescale, timezone: str
) -> tuple[int, F64, F64, F64, F64]:
    """Per-period values (periods × columns) → count, mean, std, peak, p95 over periods or buckets.

    With a ``timescale`` other than ``period`` the periods are summed into
    local hours, days or ISO weeks first and the statistics run over the
    buckets (population std, p95 ``inverted_cdf`` as for periods).
    """
    rows = np.asarray(values, dtype=np.float64)
    if timescale != "period":
        rows = rollup(rows, starts, scale=timescale, timezone=timezone).values
    running = RunningStats()
    for i, row in enumerate(rows):  # per period or bucket, not per element
        running.update(row, i)
    snap = running.snapshot()
    p95 = snap.p95 if snap.p95 is not None else snap.peak
    return snap.count, snap.mean, np.sqrt(snap.variance), snap.peak, p95


class ForecastError(FlowmatrixError):
    """An element's history is too short for the forecast asked (HTTP 400)."""


def _holt(y: F64, horizon: int) -> F64:
    """Holt's linear trend (no season) → the next ``horizon`` values."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]

    if np.ptp(y) == 0:
        return np.full(horizon, y[0])
    with warnings.catch_warnings():
        # a fit that stops early still forecasts
        warnings.simplefilter("ignore")
        fitted = ExponentialSmoothing(y, trend="add", initialization_method="estimated").fit()
        return np.asarray(fitted.forecast(horizon), dtype=np.float64)


def element_forecast(
    starts: list[int],
    values: list[float],
    *,
    readout_seconds: int,
    horizon: int,
    season: int | None = None,
    capacity_bps: float | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """One element's bytes per period → forecast, backtest and threshold crossing (JSON-ready).

    ``season`` None: a day of periods when the history holds two days, else no
    season (Holt's linear trend). The backtest (model vs seasonal naive) needs
    a season and ``2 * season + horizon`` periods, else it is None.
    ``crossing_ms`` is the start of the first forecast period whose rate
    (bytes × 8 / read-out seconds) reaches ``threshold × capacity_bps``.
    """
    y = np.asarray(values, dtype=np.float64)
    if y.size < MIN_FORECAST_PERIODS:
        msg = (
            f"history of {y.size} period(s) is too short to forecast: "
            f"need at least {MIN_FORECAST_PERIODS}"
        )
        raise ForecastError(msg)
    if season is None:
        day = _DAY_S // readout_seconds
        season_used: int | None = day if day >= 2 and y.size >= 2 * day else None
    else:
        if y.size < 2 * season:
            msg = (
                f"history of {y.size} period(s) is too short for a season of {season}: "
                f"need two seasons ({2 * season} periods)"
            )
            raise ForecastError(msg)
        season_used = season
    if season_used is None:
        ahead = _holt(y, horizon)
    else:
        ahead = forecast(y, season=season_used, horizon=horizon)
    check = None
    if season_used is not None and y.size >= 2 * season_used + horizon:
        result = backtest(y, horizon, season_used)
        check = {"model_mape": result.model_mape, "naive_mape": result.naive_mape}
    step_ms = readout_seconds * 1000
    first_ms = starts[-1] + step_ms
    bps = ahead * 8 / readout_seconds
    crossing = None
    if capacity_bps is not None and threshold is not None:
        crossing = crossing_time(bps, capacity_bps, threshold, start_ms=first_ms, step_ms=step_ms)
    return {
        "readout_seconds": readout_seconds,
        "history_periods": int(y.size),
        "season": season_used,
        "horizon": horizon,
        "forecast": [
            {"period_start_ms": first_ms + k * step_ms, "bytes": float(b), "bps": float(r)}
            for k, (b, r) in enumerate(zip(ahead, bps, strict=True))
        ],
        "backtest": check,
        "crossing_ms": crossing,
    }
