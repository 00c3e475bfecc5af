"""The decoder: a batch of export datagrams → one FlowBatch, templates kept between batches.

The set headers of a whole batch are read with numpy (never the header's
record count); datagrams that carry templates, options data, data of an
unknown template or malformed lengths are walked one by one in Python, in
stream order. The record area of every data set goes, untouched, to the group
of its compiled template. At the end of the batch each group's bytes are
joined and read with one ``np.frombuffer`` through the template's structured
dtype, so no Python code runs per record, and none per data set of a known
template.
"""

from __future__ import annotations

import ipaddress
import itertools
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from flowmatrix.flows import ipfix, sets, v5, v9
from flowmatrix.flows.sequence import Mark, SequenceGap, SequenceTracker
from flowmatrix.flows.stats import DATAGRAMS_RECEIVED, FLOWS_DECODED, DecodeStats
from flowmatrix.flows.templates import (
    CTX_EXPORT_MS,
    CTX_EXPORTER,
    CTX_SAMPLING,
    CTX_SOURCE,
    CTX_UPTIME,
    CTX_VERSION,
    I64,
    HeldSet,
    Layout,
    TemplateKey,
    TemplateStore,
    columns,
    pack_variable,
    per_record,
    record_sampling,
    uint_field,
)
from flowmatrix.schema import FLOW_COLUMNS, FlowBatch

__all__ = ["Datagram", "Decoder", "DomainState"]

#: one received datagram: payload, exporter address text, arrival unix time
Datagram = tuple[bytes, str, float]

_VERSION = struct.Struct("!H")
#: template changes in one batch after which :meth:`Decoder.feed_batch` walks the rest of
#: the batch one datagram at a time (each change re-resolves the rest of the batch)
MAX_RESOLVES = 16


@dataclass
class DomainState:
    """What options records taught about one exporter's observation domain / source id."""

    #: sampling interval for records that name no sampler (0 = unknown)
    sampling_interval: int = 0
    #: sampler id → sampling interval
    samplers: dict[int, int] = field(default_factory=dict)
    #: systemInitTimeMilliseconds (IPFIX), base of sysUpTime-relative times
    system_init_ms: int | None = None
    #: the last options records applied (layout, octets): the same again changes nothing
    last_options: tuple[Layout, bytes] | None = None


#: the data sets queued for one compiled template: (record octets, record count, index of
#: their context row in ``Decoder.contexts``)
Queued = list[tuple[bytes | memoryview, int, int]]


class Decoder:
    """Decode NetFlow v5, v9 and IPFIX datagrams into flow batches.

    >>> from flowmatrix.flows.v5 import build_v5
    >>> dgram = build_v5([{"src": "10.0.0.1", "dst": "10.0.0.2", "bytes": 1500, "packets": 3}])
    >>> batch = Decoder().decode([(dgram, "127.0.0.1", 0.0)])
    >>> len(batch), int(batch["bytes"][0]), int(batch["src_lo"][0]) == 0x0A000001
    (1, 1500, True)
    """

    def __init__(
        self,
        *,
        stats: DecodeStats | None = None,
        hold_sets: int = 64,
        hold_seconds: float = 60.0,
    ) -> None:
        self.stats = stats if stats is not None else DecodeStats()
        self.store = TemplateStore(hold_sets=hold_sets, hold_seconds=hold_seconds)
        self.domains: dict[tuple[int, int, int], DomainState] = {}
        self._exporter_index: dict[str, int] = {}
        self._exporter_names: list[str] = []
        self._exporter_rows: list[tuple[int, int, int]] = []
        self._exporters = np.zeros((0, 3), dtype=np.uint64)
        #: datagrams seen per exporter index since the last flush
        self._datagrams: list[int] = []
        #: data sets waiting for flush(), per compiled layout (the walkers append here directly)
        self.queued: dict[Layout, Queued] = {}
        #: context rows of the queued data sets (see templates.CTX_*), usually one per datagram
        self.contexts: list[tuple[int, ...]] = []
        #: data sets queued by :meth:`feed_batch`'s vectorized walk, per compiled layout:
        #: (records, context row per set, records per set)
        self.gathered: dict[Layout, list[tuple[npt.NDArray[Any], I64, I64]]] = {}
        self._init_changes = 0
        #: export sequence numbers per domain → gaps
        self.sequence = SequenceTracker(self._exporter_names, self.stats)

    # --- per datagram -----------------------------------------------------------------------

    def exporter(self, address: str) -> int:
        """The index of an exporter address (text), registering it on first sight."""
        idx = self._exporter_index.get(address)
        if idx is None:
            ip = ipaddress.ip_address(address)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            value = int(ip)
            idx = len(self._exporter_names)
            self._exporter_index[address] = idx
            self._exporter_names.append(str(ip))
            self._exporter_rows.append((ip.version, value >> 64, value & (2**64 - 1)))
            self._exporters = np.array(self._exporter_rows, dtype=np.uint64)
            self._datagrams.append(0)
        return idx

    def name(self, exporter: int) -> str:
        """The address text of an exporter index."""
        return self._exporter_names[exporter]

    def feed(self, data: bytes, address: str, arrival: float) -> None:
        """Walk one datagram: learn its templates, queue its data sets for :meth:`flush`."""
        exp = self._exporter_index.get(address)
        if exp is None:
            exp = self.exporter(address)
        self._datagrams[exp] += 1
        mark = self._walk(data, exp, arrival)
        if mark is not None:
            self.sequence.check(exp, *mark)

    def _walk(self, data: bytes, exp: int, arrival: float) -> Mark | None:
        if len(data) < 4:
            self.drop(exp, "short", f"{len(data)} octets")
            return None
        (version,) = _VERSION.unpack_from(data)
        if version == 9:
            return v9.walk(self, data, exp, arrival)
        if version == 10:
            return ipfix.walk(self, data, exp, arrival)
        if version == 5:
            return v5.walk(self, data, exp)
        self.drop(exp, "version", f"version {version}")
        return None

    def take_gaps(self) -> list[SequenceGap]:
        """The export sequence gaps found since the last call, in stream order; then cleared.

        Examples
        --------
        >>> from flowmatrix.flows.v5 import build_v5
        >>> flows = [{"src": "10.0.0.1", "bytes": 100, "packets": 1}] * 10
        >>> decoder = Decoder()
        >>> _ = decoder.decode([(build_v5(flows, sequence=0), "192.0.2.1", 0.0)])
        >>> _ = decoder.decode([(build_v5(flows, sequence=30), "192.0.2.1", 0.0)])
        >>> [(g.exporter, g.missing, g.unit) for g in decoder.take_gaps()]
        [('192.0.2.1', 20, 'flows')]
        >>> decoder.take_gaps()
        []
        """
        return self.sequence.take()

    def sequences(self) -> dict[str, int]:
        """Next expected sequence number per domain, keyed ``"exporter|version|source_id"``.

        JSON-friendly, for a state file; give it back to :meth:`restore_sequences`
        after a restart. Domains restored but not seen since are included.

        Examples
        --------
        >>> from flowmatrix.flows.v5 import build_v5
        >>> dgram = build_v5([{"src": "10.0.0.1"}] * 3, sequence=7, engine=(1, 2))
        >>> decoder = Decoder()
        >>> _ = decoder.decode([(dgram, "192.0.2.1", 0.0)])
        >>> decoder.sequences()
        {'192.0.2.1|5|258': 10}
        """
        return self.sequence.sequences()

    def restore_sequences(self, state: Mapping[str, int]) -> None:
        """Compare the first datagram of each domain in ``state`` with its saved expectation.

        Examples
        --------
        >>> from flowmatrix.flows.v5 import build_v5
        >>> decoder = Decoder()
        >>> decoder.restore_sequences({"192.0.2.1|5|0": 10})
        >>> _ = decoder.decode([(build_v5([{"src": "10.0.0.1"}], sequence=15), "192.0.2.1", 0.0)])
        >>> [g.missing for g in decoder.take_gaps()]
        [5]
        """
        self.sequence.restore(state)

    def feed_batch(self, datagrams: list[Datagram]) -> None:
        """Walk many datagrams as :meth:`feed` would, v5 records and v9 / IPFIX sets vectorized.

        The set headers of every datagram are read with numpy (:mod:`flowmatrix.flows.sets`);
        datagrams whose data sets all have a known fixed-length template are queued
        without Python per set. The others (templates, options data, data before its
        template, malformed) go through :meth:`feed`'s walker in stream order; when one
        of them changes a template or an uptime base, the rest of the batch is resolved
        again, so every data set is decoded with the template of its moment.
        """
        n = len(datagrams)
        if n == 0:
            return
        payloads, addresses, _ = zip(*datagrams, strict=True)
        try:
            exps = list(map(self._exporter_index.__getitem__, addresses))
        except KeyError:  # an exporter seen for the first time
            exps = [self.exporter(a) for a in addresses]
        exporters = np.array(exps, dtype=np.int64)
        for exp, count in enumerate(np.bincount(exporters).tolist()):
            self._datagrams[exp] += count
        sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
        buf = b"".join(payloads)
        starts = np.cumsum(sizes) - sizes
        head, found = sets.walk_datagrams(buf, starts, sizes)
        structural = head.slow
        # (exporter, version, domain) per datagram → a dense domain number
        packed = (exporters << 36) | (head.version << 32) | head.source
        domains, dom = np.unique(packed, return_inverse=True)
        set_keys, set_key = np.unique(
            (dom[found.datagram] << 16) | found.set_id, return_inverse=True
        )
        context = np.zeros((n, 6), dtype=np.int64)
        context[:, CTX_EXPORTER] = exporters
        context[:, CTX_VERSION] = head.version
        context[:, CTX_SOURCE] = head.source
        context[:, CTX_EXPORT_MS] = head.export_ms
        context[:, CTX_SAMPLING] = head.sampling
        layouts: list[Layout] = []
        set_layout = np.full(len(found.datagram), -1, dtype=np.int64)
        slow = structural.copy()

        def resolve(first: int) -> None:
            """Layouts of the sets and uptimes of datagrams ``first:`` from the current state."""
            keys = np.full(len(set_keys), -1, dtype=np.int64)
            for k, key in enumerate(set_keys.tolist()):
                d = int(domains[key >> 16])
                version = (d >> 32) & 0xF
                layout = (
                    v5.LAYOUT
                    if version == 5
                    else self.store.get((d >> 36, version, d & 0xFFFF_FFFF, key & 0xFFFF))
                )
                if layout is not None and layout.record_length and not layout.options:
                    if layout not in layouts:
                        layouts.append(layout)
                    keys[k] = layouts.index(layout)
            later = slice(int(np.searchsorted(found.datagram, first)), None)
            set_layout[later] = keys[set_key[later]]
            slow[first:] = structural[first:]
            slow[found.datagram[later][set_layout[later] < 0]] = True
            # IPFIX sysUpTime base: systemInitTimeMilliseconds of the domain, if known
            # (only its low 32 bits matter: the uptime is the difference modulo 2**32)
            inits = np.full(len(domains), -1, dtype=np.int64)
            for i, d in enumerate(domains.tolist()):
                state = self.domains.get((d >> 36, 10, d & 0xFFFF_FFFF))
                if (d >> 32) & 0xF == 10 and state is not None and state.system_init_ms is not None:
                    inits[i] = state.system_init_ms & 0xFFFF_FFFF
            init = inits[dom[first:]]
            export_ms = head.export_ms[first:]
            context[first:, CTX_UPTIME] = np.where(
                head.version[first:] != 10,
                head.uptime[first:],
                np.where(init >= 0, (export_ms - init) & 0xFFFF_FFFF, -1),
            )

        resolve(0)
        generation = self.store.changes + self._init_changes
        pending = np.flatnonzero(slow).tolist()
        resolves = 0
        # sequence marks of the datagrams walked one by one: indices, marks, no mark
        walked: list[int] = []
        marks: list[Mark] = []
        unmarked: list[int] = []
        k = 0
        while k < len(pending):
            i = pending[k]
            data, _, arrival = datagrams[i]
            mark = self._walk(data, exps[i], arrival)
            if mark is None:
                unmarked.append(i)
            else:
                walked.append(i)
                marks.append(mark)
            k += 1
            if resolves > MAX_RESOLVES:
                continue
            now = self.store.changes + self._init_changes
            if now != generation:
                generation = now
                resolves += 1
                if resolves > MAX_RESOLVES:
                    # templates keep changing (many exporters starting): walk the rest one by one
                    slow[i + 1 :] = True
                    pending, k = list(range(i + 1, n)), 0
                    continue
                resolve(i + 1)
                pending = (np.flatnonzero(slow[i + 1 :]) + i + 1).tolist()
                k = 0
        keep = ~slow[found.datagram]
        # records per IPFIX datagram not walked, for the sequence numbers
        records = np.zeros(n, dtype=np.int64) if (head.version == 10).any() else None
        for lid, layout in enumerate(layouts):
            size = layout.record_length
            pick = np.flatnonzero(keep & (set_layout == lid))
            counts = found.length[pick] // size
            pick, counts = pick[counts > 0], counts[counts > 0]
            if not len(pick):
                continue
            if records is not None:
                records += np.bincount(found.datagram[pick], weights=counts, minlength=n).astype(
                    np.int64
                )
            gathered = sets.gather_records(buf, size, found.start[pick], counts)
            self.gathered.setdefault(layout, []).append(
                (gathered, context[found.datagram[pick]], counts)
            )
        # v5 datagrams not walked hold exactly the records their length fits; v9 counts packets
        units = np.where(head.version == 5, (sizes - v5.HEADER.size) // v5.RECORD, 1)
        if records is not None:
            units = np.where(head.version == 10, records, units)
        self._sequences(exporters, head, units, walked, marks, unmarked)

    def _sequences(
        self,
        exporters: I64,
        head: sets.DatagramTable,
        units: I64,
        walked: list[int],
        marks: list[Mark],
        unmarked: list[int],
    ) -> None:
        """Check a batch's sequence numbers: walked datagrams by their marks, others by head."""
        # (a datagram not walked has no options data: its IPFIX data records are its units)
        version, source, sequence, export_s, data = (
            head.version,
            head.source,
            head.sequence,
            head.export_s,
            units,
        )
        if walked or unmarked:
            version, source, sequence, export_s, data = (
                version.copy(),
                source.copy(),
                sequence.copy(),
                export_s.copy(),
                units.copy(),
            )
            if walked:
                read = np.fromiter(
                    itertools.chain.from_iterable(marks), dtype=np.int64, count=6 * len(marks)
                ).reshape(-1, 6)
                for column, values in zip(
                    (version, source, sequence, units, data, export_s), read.T, strict=True
                ):
                    column[walked] = values
            version[unmarked] = 0
        self.sequence.check_batch(exporters, version, source, sequence, units, data, export_s)

    def drop(self, exporter: int, reason: str, detail: str = "", count: int = 1) -> None:
        """Count a dropped datagram or set of ``exporter`` for ``reason``."""
        self.stats.drop(self._exporter_names[exporter], reason, detail, count)

    def domain(self, exporter: int, version: int, source_id: int) -> DomainState:
        """The options state of one exporter's source id / observation domain."""
        key = (exporter, version, source_id)
        state = self.domains.get(key)
        if state is None:
            state = self.domains[key] = DomainState()
        return state

    def add(self, layout: Layout, data: bytes | memoryview, context: tuple[int, ...]) -> int:
        """Queue the records of one data set (fixed or variable length) for the next flush.

        Returns the number of records (options records included), -1 when unknown.
        """
        if layout.variable:
            if layout.min_length == 0:
                self.drop(context[CTX_EXPORTER], "record", "template of zero octets")
                return -1
            packed, count, overrun = pack_variable(layout, data)
            if overrun:
                self.drop(context[CTX_EXPORTER], "record", "variable-length record overruns set")
            data = packed
        else:
            count = len(data) // layout.record_length
            data = data[: count * layout.record_length]
        if count == 0:
            return 0
        if layout.options:
            self._options(layout, data, count, context)
            return count
        self.contexts.append(context)
        self._enqueue(layout, data, count, len(self.contexts) - 1)
        return count

    def queue_fixed(self, layout: Layout, data: memoryview, context_index: int) -> int:
        """Queue the whole records of a fixed-length data set (context row exists); count them."""
        count = len(data) // layout.record_length
        if count:
            self._enqueue(layout, data[: count * layout.record_length], count, context_index)
        return count

    def _enqueue(
        self, layout: Layout, data: bytes | memoryview, count: int, context_index: int
    ) -> None:
        queue = self.queued.get(layout)
        if queue is None:
            queue = self.queued[layout] = []
        queue.append((data, count, context_index))

    def data_set(
        self, key: TemplateKey, data: memoryview, context: tuple[int, ...], arrival: float
    ) -> int:
        """A data set of template ``key``: queue it, or hold it until its template arrives.

        Returns the number of its records, -1 when unknown (held).
        """
        layout = self.store.get(key)
        if layout is not None:
            return self.add(layout, data, context)
        self.stats.miss(self._exporter_names[key[0]])
        over = self.store.hold(key, HeldSet(arrival, bytes(data), context))
        if over:
            self.drop(key[0], "template_expired", f"hold full for template {key[3]}", over)
        return -1

    def define(
        self,
        key: TemplateKey,
        fields: tuple[tuple[int, int, int], ...],
        *,
        options: bool,
        scope: int,
    ) -> None:
        """Learn a template; decode the data held for it."""
        self.learn(key, self.store.define(key, fields, options=options, scope=scope))

    def learn(self, key: TemplateKey, layout: Layout) -> None:
        """Use an already compiled layout for ``key``; decode the data held for it."""
        self.store.set(key, layout)
        if self.store.held:
            for held in self.store.release(key):
                self.add(layout, memoryview(held.data), held.context)

    def _options(
        self, layout: Layout, data: bytes | memoryview, n: int, ctx: tuple[int, ...]
    ) -> None:
        state = self.domain(ctx[CTX_EXPORTER], ctx[CTX_VERSION], ctx[CTX_SOURCE])
        # exporters resend the same options records (softflowd: every 16 datagrams)
        last = (layout, bytes(data))
        if state.last_options == last:
            return
        state.last_options = last
        rec = np.frombuffer(data, dtype=layout.dtype, count=n)
        roles = layout.roles
        interval = record_sampling(rec, layout)
        if (r := roles.get("system_init_ms")) is not None:
            init = int(uint_field(rec, r[0], r[1])[-1])
            if init != state.system_init_ms:
                # IPFIX data after this record gets another uptime base
                state.system_init_ms = init
                self._init_changes += 1
        if interval is None:
            return
        if (r := roles.get("sampler_id")) is not None:
            ids = uint_field(rec, r[0], r[1])
            for sid, iv in zip(ids.tolist(), interval.tolist(), strict=True):
                state.samplers[int(sid)] = int(iv)
        else:
            state.sampling_interval = int(interval[-1])

    # --- per batch ----------------------------------------------------------------------------

    def flush(self, now: float | None = None) -> FlowBatch:
        """Decode every queued data set into one batch; expire held sets."""
        for exp, count in self.store.expire(time.time() if now is None else now).items():
            self.drop(exp, "template_expired", "template never arrived", count)
        arrived = 0
        for exp, count in enumerate(self._datagrams):
            if count:
                self.stats.datagrams[self._exporter_names[exp]] += count
                self._datagrams[exp] = 0
                arrived += count
        if arrived:
            DATAGRAMS_RECEIVED.inc(arrived)
        queued, self.queued = self.queued, {}
        gathered, self.gathered = self.gathered, {}
        contexts, self.contexts = self.contexts, []
        table = np.array(contexts, dtype=np.int64).reshape(-1, 6)
        total = sum(n for queue in queued.values() for _, n, _ in queue) + sum(
            len(records) for parts in gathered.values() for records, _, _ in parts
        )
        # columns no template of the batch sets are zeroed per group (see _decode_group)
        batch = FlowBatch({c.name: np.empty(total, dtype=c.dtype) for c in FLOW_COLUMNS})
        per_exporter = np.zeros(len(self._exporter_names), dtype=np.int64)
        start = 0
        for layout in {**queued, **gathered}:
            start = self._decode_group(
                layout,
                queued.get(layout, []),
                gathered.get(layout, []),
                table,
                batch,
                start,
                per_exporter,
            )
        if total:
            FLOWS_DECODED.inc(total)
            for exp in np.flatnonzero(per_exporter).tolist():
                self.stats.decoded(self._exporter_names[exp], int(per_exporter[exp]))
        return batch

    def decode(self, datagrams: Iterable[Datagram]) -> FlowBatch:
        """Feed datagrams ``(payload, exporter address, arrival)`` and flush them as one batch."""
        batch = datagrams if isinstance(datagrams, list) else list(datagrams)
        self.feed_batch(batch)
        return self.flush(max(d[2] for d in batch) if batch else None)

    def _decode_group(
        self,
        layout: Layout,
        queued: Queued,
        gathered: list[tuple[npt.NDArray[Any], I64, I64]],
        table: npt.NDArray[np.int64],
        out: FlowBatch,
        start: int,
        per_exporter: npt.NDArray[np.int64],
    ) -> int:
        """Decode one template's queued sets into rows ``start:`` of ``out``; return the end."""
        parts: list[Any] = []
        chunk_parts: list[I64] = []
        count_parts: list[I64] = []
        if queued:
            data, sizes, rows = zip(*queued, strict=True)
            parts += data
            chunk_parts.append(table[np.fromiter(rows, dtype=np.intp, count=len(rows))])
            count_parts.append(np.array(sizes, dtype=np.int64))
        for records, context, counts_ in gathered:
            parts.append(records)
            chunk_parts.append(context)
            count_parts.append(counts_)
        chunks = chunk_parts[0] if len(chunk_parts) == 1 else np.concatenate(chunk_parts)
        counts = count_parts[0] if len(count_parts) == 1 else np.concatenate(count_parts)
        n = int(counts.sum())
        buf = parts[0] if len(parts) == 1 else b"".join(parts)
        rec = np.frombuffer(buf, dtype=layout.dtype, count=n)
        per_exporter += np.bincount(
            chunks[:, CTX_EXPORTER], weights=counts, minlength=len(per_exporter)
        ).astype(np.int64)
        cols = columns(rec, layout, chunks, counts, self._exporters)
        if "sampling_interval" not in cols:
            cols["sampling_interval"] = self._sampling(cols, layout, chunks, counts)
        end = start + n
        for name, column in out.columns.items():
            # assignment converts big-endian field views to the column's native dtype
            column[start:end] = cols.get(name, 0)
        return end

    def _sampling(
        self, cols: dict[str, Any], layout: Layout, chunks: npt.NDArray[np.int64], counts: Any
    ) -> Any:
        """Sampling interval per record: v5 header, else the options of the record's domain."""
        header = per_record(chunks[:, CTX_SAMPLING], counts)
        # distinct (exporter, version, source id) of the chunks, packed in one int64 each
        packed = np.unique(
            (chunks[:, CTX_EXPORTER] << 36)
            | (chunks[:, CTX_VERSION] << 32)
            | (chunks[:, CTX_SOURCE] & 0xFFFF_FFFF)
        ).tolist()
        keys = [(k >> 36, (k >> 32) & 0xF, k & 0xFFFF_FFFF) for k in packed]
        states = [(k, st) for k in keys if (st := self.domains.get(k)) is not None]
        if not states:
            return header
        out = np.broadcast_to(np.asarray(header, dtype=np.int64), (int(counts.sum()),)).copy()
        single = len(keys) == 1
        sampler = cols.get("sampler_id") if "sampler_id" in layout.roles else None
        for (exp, version, source), state in states:
            mine: Any = True
            if not single:
                mine = np.repeat(
                    (chunks[:, CTX_EXPORTER] == exp)
                    & (chunks[:, CTX_VERSION] == version)
                    & (chunks[:, CTX_SOURCE] == source),
                    counts,
                )
            if state.sampling_interval:
                out[mine & (out == 0)] = state.sampling_interval
            if sampler is not None:
                for sid, interval in state.samplers.items():
                    out[mine & (sampler == sid)] = interval
        return out
