"""The decoder: a batch of export datagrams → one FlowBatch, templates kept between batches.

Each datagram is walked once in Python (header, then flowsets by their own
lengths — never by the header's record count); the record area of every data
set is appended, untouched, to the group of its compiled template. At the end
of the batch each group's bytes are joined and read with one ``np.frombuffer``
through the template's structured dtype, so no Python code runs per record.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from flowmatrix.flows import ipfix, v5, v9
from flowmatrix.flows.stats import FLOWS_DECODED, DecodeStats
from flowmatrix.flows.templates import (
    CTX_EXPORTER,
    CTX_SAMPLING,
    CTX_SOURCE,
    CTX_VERSION,
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
from flowmatrix.schema import FlowBatch

__all__ = ["Datagram", "Decoder", "DomainState"]

#: one received datagram: payload, exporter address text, arrival unix time
Datagram = tuple[bytes, str, float]

_VERSION = struct.Struct("!H")


@dataclass
class DomainState:
    """What options records taught about one exporter's observation domain / source id."""

    #: sampling interval for records that name no sampler (0 = unknown)
    sampling_interval: int = 0
    #: sampler id → sampling interval
    samplers: dict[int, int] = field(default_factory=dict)
    #: systemInitTimeMilliseconds (IPFIX), base of sysUpTime-relative times
    system_init_ms: int | None = None


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
        if len(data) < 4:
            self.drop(exp, "short", f"{len(data)} octets")
            return
        (version,) = _VERSION.unpack_from(data)
        if version == 9:
            v9.walk(self, data, exp, arrival)
        elif version == 10:
            ipfix.walk(self, data, exp, arrival)
        elif version == 5:
            v5.walk(self, data, exp)
        else:
            self.drop(exp, "version", f"version {version}")

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

    def add(self, layout: Layout, data: bytes | memoryview, context: tuple[int, ...]) -> None:
        """Queue the records of one data set (fixed or variable length) for the next flush."""
        if layout.variable:
            if layout.min_length == 0:
                self.drop(context[CTX_EXPORTER], "record", "template of zero octets")
                return
            packed, count, overrun = pack_variable(layout, data)
            if overrun:
                self.drop(context[CTX_EXPORTER], "record", "variable-length record overruns set")
            data = packed
        else:
            count = len(data) // layout.record_length
            data = data[: count * layout.record_length]
        if count == 0:
            return
        if layout.options:
            self._options(layout, data, count, context)
            return
        queue = self.queued.get(layout)
        if queue is None:
            queue = self.queued[layout] = []
        queue.append((data, count, len(self.contexts)))
        self.contexts.append(context)

    def data_set(
        self, key: TemplateKey, data: memoryview, context: tuple[int, ...], arrival: float
    ) -> None:
        """A data set of template ``key``: queue it, or hold it until its template arrives."""
        layout = self.store.get(key)
        if layout is not None:
            self.add(layout, data, context)
            return
        self.stats.miss(self._exporter_names[key[0]])
        over = self.store.hold(key, HeldSet(arrival, bytes(data), context))
        if over:
            self.drop(key[0], "template_expired", f"hold full for template {key[3]}", over)

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
        self.store.domain(key[0], key[1], key[2])[key[3]] = layout
        if self.store.held:
            for held in self.store.release(key):
                self.add(layout, memoryview(held.data), held.context)

    def _options(
        self, layout: Layout, data: bytes | memoryview, n: int, ctx: tuple[int, ...]
    ) -> None:
        rec = np.frombuffer(data, dtype=layout.dtype, count=n)
        state = self.domain(ctx[CTX_EXPORTER], ctx[CTX_VERSION], ctx[CTX_SOURCE])
        roles = layout.roles
        interval = record_sampling(rec, layout)
        if (r := roles.get("system_init_ms")) is not None:
            state.system_init_ms = int(uint_field(rec, r[0], r[1])[-1])
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
        for exp, count in enumerate(self._datagrams):
            if count:
                self.stats.datagrams[self._exporter_names[exp]] += count
                self._datagrams[exp] = 0
        queued, self.queued = self.queued, {}
        contexts, self.contexts = self.contexts, []
        table = np.array(contexts, dtype=np.int64).reshape(-1, 6)
        total = sum(sum(n for _, n, _ in queue) for queue in queued.values())
        batch = FlowBatch.empty(total)
        per_exporter = np.zeros(len(self._exporter_names), dtype=np.int64)
        start = 0
        for layout, queue in queued.items():
            start = self._decode_group(layout, queue, table, batch, start, per_exporter)
        if total:
            FLOWS_DECODED.inc(total)
            for exp in np.flatnonzero(per_exporter).tolist():
                self.stats.decoded(self._exporter_names[exp], int(per_exporter[exp]))
        return batch

    def decode(self, datagrams: Iterable[Datagram]) -> FlowBatch:
        """Feed datagrams ``(payload, exporter address, arrival)`` and flush them as one batch."""
        now: float | None = None
        for data, address, arrival in datagrams:
            self.feed(data, address, arrival)
            now = arrival if now is None else max(now, arrival)
        return self.flush(now)

    def _decode_group(
        self,
        layout: Layout,
        queued: Queued,
        table: npt.NDArray[np.int64],
        out: FlowBatch,
        start: int,
        per_exporter: npt.NDArray[np.int64],
    ) -> int:
        """Decode one template's queued sets into rows ``start:`` of ``out``; return the end."""
        parts, sizes, rows = zip(*queued, strict=True)
        n: int = sum(sizes)
        buf = parts[0] if len(parts) == 1 else b"".join(parts)
        rec = np.frombuffer(buf, dtype=layout.dtype, count=n)
        chunks = table[np.fromiter(rows, dtype=np.intp, count=len(rows))]
        counts = np.array(sizes, dtype=np.int64)
        per_exporter += np.bincount(
            chunks[:, CTX_EXPORTER], weights=counts, minlength=len(per_exporter)
        ).astype(np.int64)
        cols = columns(rec, layout, chunks, counts, self._exporters)
        if "sampling_interval" not in cols:
            cols["sampling_interval"] = self._sampling(cols, layout, chunks, counts)
        end = start + n
        for name, value in cols.items():
            # assignment converts big-endian field views to the column's native dtype
            out.columns[name][start:end] = value
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
