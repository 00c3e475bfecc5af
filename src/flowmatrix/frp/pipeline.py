"""Flow batches → ingress part files and per-period partial matrices → uploads when due.

For each decoded batch (on the collector's thread) the pipeline maps records
to PEs, intervals and read-out periods (:func:`~flowmatrix.matrix.aggregate.ingress_records`),
buffers them per (interval, period, PE) for the Parquet part files, resolves
their egress PE once per batch and adds the batch's partial matrix to the
period's in-memory accumulator. Export sequence gaps the decoder found are
attributed to the period holding the export time of the datagram that
revealed them.

Upload rule: a period is *due* when the wall clock is past its end plus
``grace`` and no record of it arrived in the last ``settle`` seconds. Periods
of every interval that ended after the pipeline started are uploaded even
when empty. A record arriving for a period already uploaded makes it due
again (revision + 1, the full partial). Periods restored from the part files
at start (or whose partials were evicted from memory) are rebuilt from their
files when they are due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from prometheus_client import Counter, Gauge

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.schedule import occurrences
from flowmatrix.flows.decoder import Decoder
from flowmatrix.frp.ingress import IngressFiles
from flowmatrix.frp.state import Delivered, FrpState
from flowmatrix.matrix.aggregate import (
    IngressPlan,
    IngressRecords,
    add_partials,
    address_halves,
    aggregate,
    aggregate_batch,
    ingress_records,
    no_resolution,
    resolve_ingress,
)
from flowmatrix.matrix.partial import (
    ExporterReport,
    PartialMeta,
    UnresolvedReport,
    digest,
    empty_partial,
)
from flowmatrix.routing.resolve import Compiled, Resolution, resolve_egress
from flowmatrix.schema import FlowBatch

__all__ = [
    "Pipeline",
    "PipelineConfig",
    "Upload",
    "frp_partials_pending",
    "frp_records_outside_intervals_total",
    "frp_records_total",
    "frp_sequence_gaps_total",
]

log = logging.getLogger("flowmatrix.frp.pipeline")

I64 = npt.NDArray[np.int64]

frp_records_total = Counter("frp_records_total", "Flow records the FRP received.")
frp_records_outside_intervals_total = Counter(
    "frp_records_outside_intervals_total", "Flow records outside every measurement interval."
)
frp_sequence_gaps_total = Counter(
    "frp_sequence_gaps_total", "Units missing according to export sequence numbers."
)
frp_partials_pending = Gauge(
    "frp_partials_pending", "Periods with content not yet built into an upload."
)

#: at most this many empty periods are enumerated per call of :meth:`Pipeline.due`
_MAX_EMPTY = 10_000
#: partials of a delivered period are dropped from memory this long after its end (ms)
_RETAIN_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """How the pipeline of one FRP behaves."""

    frp: str
    #: seconds after a period's end before it is uploaded
    grace: float = 60.0
    #: seconds without a record of a period before it is uploaded
    settle: float = 2.0
    #: part files are written when a buffer holds this many rows
    flush_rows: int = 262_144
    mode: Literal["distributed", "centralized"] = "distributed"


@dataclass(frozen=True, slots=True)
class Upload:
    """A built partial matrix of one period, ready for the uploader."""

    interval: str
    period_start_ms: int
    table: pa.Table
    meta: PartialMeta
    digest: str
    #: fingerprint of the period's part files it was built from
    files: str
    #: centralized mode: the period's ingress records, sent instead of the partial
    ingress: pa.Table | None = None


@dataclass
class _Exporter:
    pe: str = ""
    datagrams: int = 0
    records: int = 0
    dropped: int = 0
    gap: int = 0
    gap_unit: str = ""


@dataclass
class _Period:
    interval: str
    start_ms: int
    end_ms: int
    parts: list[pa.Table] = field(default_factory=list)
    unresolved: dict[str, list[float]] = field(default_factory=dict)
    records: int = 0
    exporters: dict[tuple[str, int], _Exporter] = field(default_factory=dict)
    last_arrival: float = float("-inf")
    revision: int = 0
    dirty: bool = True
    #: build from the part files at upload (restored at start, or memory evicted)
    from_files: bool = False
    delivered: bool = False


class Pipeline:
    """Ingress records, part files and period accumulators of one FRP.

    ``start()`` reads ``state.json``, restores the decoder's sequence numbers
    and the periods found in the part files; :meth:`sink` takes decoded
    batches; :meth:`due` builds the uploads whose time has come;
    :meth:`delivered` records what the MG accepted; ``stop()`` flushes.
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        view: NetworkConfig,
        files: IngressFiles,
        state_path: Path,
        routing: Compiled | None = None,
        decoder: Decoder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.view = view
        self.plan = IngressPlan(view)
        self.files = files
        self.state_path = state_path
        self.routing = routing
        self.decoder = decoder
        self.clock = clock
        self.state = FrpState()
        self.periods: dict[tuple[str, int], _Period] = {}
        self.started_ms = 0
        self._cursor_ms = 0
        self._buffers: dict[tuple[str, int, str], list[pa.Table]] = {}
        self._buffered: dict[tuple[str, int, str], int] = {}
        self._sequences: dict[str, int] = {}
        self._datagrams: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._pes = tuple(p.name for p in view.pes_of(config.frp))
        self._texts_cache = self.plan.exporter_texts

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Load the state, restore sequence numbers and the periods the part files hold."""
        self.state = FrpState.load(self.state_path)
        self.started_ms = int(self.clock() * 1000)
        self._cursor_ms = self.started_ms
        self._sequences = dict(self.state.sequences)
        if self.decoder is not None:
            self.decoder.restore_sequences(self.state.sequences)
            self._datagrams = dict(self.decoder.stats.datagrams)
            self._dropped = _drops(self.decoder)
        restored = rebuilt = 0
        for interval, start in self.files.periods():
            try:
                _, end = self.plan.schedule.period_bounds(interval, start)
            except (KeyError, ValueError):
                log.warning(
                    "component=frp.pipeline interval=%s period=%d skipped=not-in-config",
                    interval,
                    start,
                )
                continue
            period = _Period(interval, start, end, from_files=True)
            done = self.state.delivered.get((interval, start))
            if done is not None:
                period.revision = done.revision
                if done.files == self.files.fingerprint(interval, start):
                    period.dirty = False
                    period.delivered = True
            rebuilt += period.dirty
            restored += 1
            self.periods[interval, start] = period
        log.info(
            "component=frp.pipeline frp=%s restored_periods=%d to_rebuild=%d",
            self.config.frp,
            restored,
            rebuilt,
        )

    def stop(self) -> None:
        """Write every buffered record to part files and save the state."""
        self.flush()

    def update_view(self, view: NetworkConfig, routing: Compiled | None = None) -> None:
        """Use a new configuration view (and routing compiled for it) from the next batch on."""
        plan = IngressPlan(view)
        with self._lock:
            self.view = view
            self.plan = plan
            self.routing = routing
            self._pes = tuple(p.name for p in view.pes_of(self.config.frp))
            self._texts_cache = plan.exporter_texts

    # --- records in ----------------------------------------------------------------------------

    def sink(self, batch: FlowBatch) -> None:
        """Take one decoded batch: buffer its ingress records, add its partials, note its gaps."""
        now = self.clock()
        frp_records_total.inc(len(batch))
        ingress = ingress_records(batch, self.plan)
        if ingress.outside:
            frp_records_outside_intervals_total.inc(ingress.outside)
        resolution, records = self._resolve(batch, ingress)
        groups = _period_groups(ingress)
        aggs = aggregate_batch(
            ingress,
            resolution,
            self.plan,
            [b for _, _, _, b in groups],
            flows=batch,
            records=records,
        )
        key_exporter = self._exporter_keys(batch, ingress)
        with self._lock:
            full: list[tuple[str, int, str]] = []
            for s in ingress.segments:
                key = (s.interval, s.period_start_ms, s.pe)
                self._buffers.setdefault(key, []).append(
                    ingress.table.slice(s.start, s.stop - s.start)
                )
                self._buffered[key] = self._buffered.get(key, 0) + s.stop - s.start
                if self._buffered[key] >= self.config.flush_rows:
                    full.append(key)
            touched: dict[str, tuple[str, int]] = {}
            for agg, (interval, start, a, b) in zip(aggs, groups, strict=True):
                period = self._period(interval, start)
                if period is None:
                    continue
                period.parts.append(agg.table)
                if len(period.parts) > 32:
                    period.parts = [add_partials(*period.parts)]
                for u in agg.unresolved:
                    sums = period.unresolved.setdefault(u.reason, [0.0, 0.0, 0.0])
                    sums[0] += u.bytes
                    sums[1] += u.packets
                    sums[2] += u.flows
                period.records += b - a
                keys, counts = np.unique(key_exporter[a:b], return_counts=True)
                for k, c in zip(keys.tolist(), counts.tolist(), strict=True):  # per exporter
                    address, source_id = self._exporter_name(k)
                    entry = self._entry(period, address, source_id)
                    entry.records += c
                    touched.setdefault(address, (interval, start))
                period.last_arrival = now
                period.dirty = True
            self._count_datagrams(touched)
            self._take_gaps(now)
            if self.decoder is not None:
                self._sequences = self.decoder.sequences()
            frp_partials_pending.set(sum(p.dirty for p in self.periods.values()))
        for key in full:
            self._flush_one(key)

    def _resolve(self, batch: FlowBatch, ingress: IngressRecords) -> tuple[Resolution, I64]:
        """Egress of each distinct record of the ingress rows (a record in several intervals
        is resolved once): the resolution and the batch rows its ``flow`` indexes."""
        n = len(batch)
        used = np.zeros(n, dtype=np.bool_)
        used[ingress.rows] = True
        records = np.flatnonzero(used)
        if self.routing is None or not len(records):
            return no_resolution(len(records)), records
        pe = np.full(n, -1, dtype=np.int64)
        pe[ingress.rows] = ingress.pe
        columns = (
            "in_if",
            "ip_version",
            "dst_hi",
            "dst_lo",
            "start_ms",
            "ingress_vrf_id",
            "bgp_next_hop_hi",
            "bgp_next_hop_lo",
            "bgp_next_hop_version",
        )
        if len(records) == n:  # every record kept: no gather
            col = {c: batch[c] for c in columns}
        else:
            col = {c: batch[c][records] for c in columns}
            pe = pe[records]
        resolution = resolve_egress(
            self.routing,
            pe=pe,
            in_if=col["in_if"],
            ip_version=col["ip_version"],
            dst_hi=col["dst_hi"],
            dst_lo=col["dst_lo"],
            start_ms=col["start_ms"],
            ingress_vrf_id=col["ingress_vrf_id"],
            bgp_next_hop=(col["bgp_next_hop_hi"], col["bgp_next_hop_lo"]),
            bgp_next_hop_version=col["bgp_next_hop_version"],
        )
        return resolution, records

    def _exporter_keys(self, batch: FlowBatch, ingress: IngressRecords) -> np.ndarray:
        rows = ingress.rows
        a = self.plan.address_index(
            batch["exporter_version"][rows], batch["exporter_hi"][rows], batch["exporter_lo"][rows]
        )
        return (a << 32) | batch["source_id"][rows].astype(np.int64)

    def _exporter_name(self, key: int) -> tuple[str, int]:
        texts = self._texts()
        return texts[key >> 32], key & 0xFFFF_FFFF

    def _texts(self) -> list[str]:
        return self._texts_cache

    def _entry(self, period: _Period, address: str, source_id: int) -> _Exporter:
        entry = period.exporters.get((address, source_id))
        if entry is None:
            entry = _Exporter(pe=self.plan.pe_name_of(address, source_id))
            period.exporters[address, source_id] = entry
        return entry

    def _period(self, interval: str, start: int) -> _Period | None:
        period = self.periods.get((interval, start))
        if period is None:
            try:
                _, end = self.plan.schedule.period_bounds(interval, start)
            except (KeyError, ValueError):
                return None
            period = _Period(interval, start, end)
            if (interval, start) in self.state.delivered:
                # delivered before a restart and its files changed since: rebuild from them
                period.from_files = True
                period.revision = self.state.delivered[interval, start].revision
            self.periods[interval, start] = period
        return period

    def _count_datagrams(self, touched: dict[str, tuple[str, int]]) -> None:
        """Datagrams and drops since the last batch, per exporter, to a period it has records in."""
        if self.decoder is None:
            return
        stats = self.decoder.stats
        drops = _drops(self.decoder)
        for address, (interval, start) in touched.items():
            got = stats.datagrams.get(address, 0) - self._datagrams.get(address, 0)
            lost = drops.get(address, 0) - self._dropped.get(address, 0)
            period = self.periods[interval, start]
            entry = next(e for (a, _), e in period.exporters.items() if a == address)
            entry.datagrams += max(got, 0)
            entry.dropped += max(lost, 0)
        self._datagrams = dict(stats.datagrams)
        self._dropped = drops

    def _take_gaps(self, now: float) -> None:
        if self.decoder is None:
            return
        for gap in self.decoder.take_gaps():  # per gap, not per record
            frp_sequence_gaps_total.inc(gap.missing)
            members = self.plan.schedule.classify([gap.export_s * 1000])
            placed = False
            for interval, m in zip(self.plan.interval_ids, members, strict=True):
                if not m.inside[0]:
                    continue
                period = self._period(interval, int(m.period_start_ms[0]))
                if period is None:
                    continue
                entry = self._entry(period, gap.exporter, gap.source_id)
                entry.gap += gap.missing
                entry.gap_unit = gap.unit
                period.dirty = True
                period.last_arrival = max(period.last_arrival, now)
                placed = True
            log.warning(
                "component=frp.pipeline exporter=%s version=%d source_id=%d missing=%d unit=%s "
                "attributed=%s",
                gap.exporter,
                gap.version,
                gap.source_id,
                gap.missing,
                gap.unit,
                placed,
            )

    # --- files ---------------------------------------------------------------------------------

    def _flush_one(self, key: tuple[str, int, str]) -> None:
        with self._flush_lock:
            with self._lock:
                tables = self._buffers.pop(key, [])
                self._buffered.pop(key, None)
                sequences = dict(self._sequences)
            if tables:
                self.files.write(key[0], key[1], key[2], pa.concat_tables(tables))
            self._save(sequences)

    def flush(self) -> None:
        """Write every buffer to a part file, then ``state.json`` with matching sequences."""
        with self._flush_lock:
            with self._lock:
                buffers, self._buffers = self._buffers, {}
                self._buffered = {}
                sequences = dict(self._sequences)
            for (interval, start, pe), tables in sorted(buffers.items()):
                self.files.write(interval, start, pe, pa.concat_tables(tables))
            self._save(sequences)

    def _save(self, sequences: dict[str, int]) -> None:
        with self._lock:
            self.state.sequences = sequences
            self.state.save(self.state_path)

    # --- uploads out ---------------------------------------------------------------------------

    def _add_empty_periods(self, now_ms: int) -> None:
        """Periods that ended after the start and before ``now - grace``: known, even if empty."""
        limit = now_ms - int(self.config.grace * 1000)
        if limit <= self._cursor_ms:
            return
        lo = self._cursor_ms
        made = 0
        for interval in self.view.intervals:
            readout = interval.readout_seconds * 1000
            occ = occurrences(interval, lo - readout, limit)
            for s, e in zip(occ.start_ms.tolist(), occ.end_ms.tolist(), strict=True):
                first = s + max(0, (lo - s) // readout - 1) * readout
                for start in range(first, min(e, limit), readout):  # bounded by _MAX_EMPTY
                    end = min(start + readout, e)
                    if lo < end <= limit and (interval.id, start) not in self.periods:
                        if (interval.id, start) not in self.state.delivered:
                            self.periods[interval.id, start] = _Period(interval.id, start, end)
                        made += 1
                    if made >= _MAX_EMPTY:
                        break
        self._cursor_ms = limit

    def due(self, now: float | None = None) -> list[Upload]:
        """Build the uploads of every period whose time has come (flushing part files first)."""
        wall = self.clock() if now is None else now
        now_ms = int(wall * 1000)
        grace_ms = int(self.config.grace * 1000)
        with self._lock:
            self._add_empty_periods(now_ms)
            ready = sorted(
                key
                for key, p in self.periods.items()
                if p.dirty
                and now_ms >= p.end_ms + grace_ms
                and wall - p.last_arrival >= self.config.settle
            )
        if not ready:
            self._evict(now_ms)
            return []
        # the part files then hold every record of the periods built (their fingerprint too)
        self.flush()
        uploads = []
        for key in ready:
            upload = self.build(*key)
            if upload is not None:
                uploads.append(upload)
        self._evict(now_ms)
        return uploads

    def build(self, interval: str, period_start_ms: int) -> Upload | None:
        """The upload of one period now; None when it says what was delivered last."""
        with self._lock:
            period = self.periods[interval, period_start_ms]
            period.dirty = False
            exporters = {k: _Exporter(**vars(e)) for k, e in period.exporters.items()}
            if not period.from_files:
                table = add_partials(*period.parts) if period.parts else empty_partial()
                period.parts = [table] if table.num_rows else []
                unresolved = {k: list(v) for k, v in period.unresolved.items()}
                records = period.records
        files = self.files.fingerprint(interval, period_start_ms)
        if period.from_files:
            table, unresolved, records, counts = self._rebuild(interval, period_start_ms)
            for k in exporters:
                exporters[k].records = 0
            for (address, source_id), c in counts.items():
                e = exporters.setdefault((address, source_id), _Exporter())
                e.records = c
                e.pe = e.pe or self.plan.pe_name_of(address, source_id)
        done = self.state.delivered.get((interval, period_start_ms))
        revision = max(period.revision, done.revision if done else 0) + 1
        meta = PartialMeta(
            frp=self.config.frp,
            interval=interval,
            period_start_ms=period_start_ms,
            period_end_ms=period.end_ms,
            mode=self.config.mode,
            pes=self._pes,
            revision=revision,
            records=records,
            exporters=tuple(
                ExporterReport(
                    address=a,
                    source_id=s,
                    pe=e.pe,
                    datagrams=e.datagrams,
                    records=e.records,
                    dropped=e.dropped,
                    gap=e.gap,
                    gap_unit=e.gap_unit,  # type: ignore[arg-type]
                )
                for (a, s), e in sorted(exporters.items())
            ),
            unresolved=tuple(
                UnresolvedReport(reason=r, bytes=v[0], packets=v[1], flows=v[2])
                for r, v in sorted(unresolved.items())
            ),
            created_ms=int(self.clock() * 1000),
        )
        key = digest(table, meta)
        if done is not None and done.digest == key:
            return None
        with self._lock:
            period.revision = revision
            frp_partials_pending.set(sum(p.dirty for p in self.periods.values()))
        ingress = (
            self.files.read(interval, period_start_ms)
            if self.config.mode == "centralized"
            else None
        )
        return Upload(interval, period_start_ms, table, meta, key, files, ingress)

    def _rebuild(
        self, interval: str, start: int
    ) -> tuple[pa.Table, dict[str, list[float]], int, dict[tuple[str, int], int]]:
        """A period's partial, unresolved volumes and exporter counts from its part files."""
        table = self.files.read(interval, start)
        n = table.num_rows
        resolution = resolve_ingress(table, self.routing)
        agg = aggregate(table, resolution, self.plan)
        unresolved = {u.reason: [u.bytes, u.packets, u.flows] for u in agg.unresolved}
        counts: dict[tuple[str, int], int] = {}
        if n:
            ex_hi, ex_lo = address_halves(table.column("exporter"))
            fam = table.column("exporter_version").to_numpy()
            a = self.plan.address_index(fam, ex_hi, ex_lo.astype(np.int64))
            keys = (a << 32) | table.column("source_id").to_numpy().astype(np.int64)
            uniq, c = np.unique(keys, return_counts=True)
            for k, count in zip(uniq.tolist(), c.tolist(), strict=True):  # per exporter
                if k >> 32 >= 0:
                    counts[self._exporter_name(k)] = count
        return agg.table, unresolved, n, counts

    def delivered(self, upload: Upload) -> None:
        """Record that the MG accepted ``upload``: its digest goes to ``state.json``."""
        with self._lock:
            key = (upload.interval, upload.period_start_ms)
            self.state.delivered[key] = Delivered(upload.digest, upload.files, upload.meta.revision)
            period = self.periods.get(key)
            if period is not None:
                period.delivered = True
            self.state.save(self.state_path)

    def _evict(self, now_ms: int) -> None:
        """Forget the partials of periods delivered long ago (their files stay)."""
        with self._lock:
            for key, p in list(self.periods.items()):
                if p.delivered and not p.dirty and now_ms > p.end_ms + _RETAIN_MS:
                    del self.periods[key]


def _drops(decoder: Decoder) -> dict[str, int]:
    out: dict[str, int] = {}
    for (exporter, _), v in decoder.stats.dropped.items():
        out[exporter] = out.get(exporter, 0) + v
    return out


def _period_groups(ingress: IngressRecords) -> list[tuple[str, int, int, int]]:
    """(interval, period start, first row, end row) of the rows of each period."""
    out: list[tuple[str, int, int, int]] = []
    for s in ingress.segments:  # per segment, not per record
        if out and out[-1][0] == s.interval and out[-1][1] == s.period_start_ms:
            out[-1] = (s.interval, s.period_start_ms, out[-1][2], s.stop)
        else:
            out.append((s.interval, s.period_start_ms, s.start, s.stop))
    return out
