"""Templates: compiled record layouts (numpy structured dtypes) and their per-exporter store.

A template — a tuple of ``(element id, length, enterprise)`` — compiles once
into a :class:`Layout`: a structured dtype over the record that names only
the elements flowmatrix reads (others and enterprise elements are skipped by
offset), and the plan that turns an array of records into flow columns.
Templates are kept per ``(exporter, version, source id / observation domain,
template id)``, so exporters never see each other's templates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from flowmatrix.flows.fields import IE

__all__ = [
    "VARIABLE",
    "Field",
    "HeldSet",
    "Layout",
    "TemplateKey",
    "TemplateStore",
    "columns",
    "compile_layout",
    "pack_variable",
    "record_sampling",
    "uint_field",
]

#: length of an IPFIX variable-length field in a template
VARIABLE = 65535
#: unix epoch − NTP epoch (1900-01-01), seconds
NTP_OFFSET = 2_208_988_800

#: (element id, length, enterprise number; 0 = IANA, nonzero = skipped)
Field = tuple[int, int, int]
#: (exporter index, export version, source id / observation domain, template id)
TemplateKey = tuple[int, int, int, int]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True, eq=False)
class Layout:
    """A compiled template: the record dtype and where each role's element sits."""

    fields: tuple[Field, ...]
    #: octets per record; 0 when the template has variable-length fields
    record_length: int
    #: structured dtype over one record (fixed) or over the packed known fields (variable)
    dtype: np.dtype[Any]
    #: role → (dtype field name, element length, element id)
    roles: dict[str, tuple[str, int, int]]
    #: smallest record, in octets (variable fields counted as one octet)
    min_length: int
    options: bool = False
    scope_count: int = 0

    @property
    def variable(self) -> bool:
        """True when the template has variable-length fields (per-record offset walk)."""
        return self.record_length == 0


def compile_layout(
    fields: tuple[Field, ...], *, options: bool = False, scope_count: int = 0
) -> Layout:
    """The layout of a template: a structured dtype naming the elements flowmatrix reads."""
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    roles: dict[str, tuple[str, int, int]] = {}
    offset = 0
    variable = any(length == VARIABLE for _, length, _ in fields)
    min_length = 0
    for i, (ie, length, enterprise) in enumerate(fields):
        min_length += 1 if length == VARIABLE else length
        element = IE.get(ie) if enterprise == 0 else None
        if length == VARIABLE or element is None or element.role in roles or length == 0:
            if not variable:
                offset += length
            continue
        role = element.role
        name = f"f{i}"
        if element.type == "ipv6Address":
            if length != 16:
                offset += 0 if variable else length
                continue
            names += [name + "h", name + "l"]
            formats += [">u8", ">u8"]
            offsets += [offset, offset + 8]
        elif length in (1, 2, 4, 8):
            names.append(name)
            formats.append(f">u{length}")
            offsets.append(offset)
        elif length < 8:
            names.append(name)
            formats.append(("u1", (length,)))
            offsets.append(offset)
        else:
            offset += 0 if variable else length
            continue
        roles[role] = (name, length, ie)
        offset += length
    itemsize = offset if variable else sum(length for _, length, _ in fields)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})
    return Layout(
        fields=fields,
        record_length=0 if variable else itemsize,
        dtype=dtype,
        roles=roles,
        min_length=min_length,
        options=options,
        scope_count=scope_count,
    )


def pack_variable(layout: Layout, data: bytes | memoryview) -> tuple[bytes, int, bool]:
    """Walk variable-length records; return the known fixed fields packed, count, and overrun."""
    view = memoryview(data)
    end = len(view)
    keep = {int(n[1:].rstrip("hl")) for n in layout.dtype.names or ()}
    pieces: list[bytes | memoryview] = []
    count = 0
    off = 0
    while end - off >= layout.min_length and layout.min_length > 0:
        start = off
        record: list[bytes | memoryview] = []
        for i, (_, length, _) in enumerate(layout.fields):
            if length == VARIABLE:
                if off >= end:
                    return b"".join(pieces), count, True
                length = view[off]
                off += 1
                if length == 255:
                    if off + 2 > end:
                        return b"".join(pieces), count, True
                    length = (view[off] << 8) | view[off + 1]
                    off += 2
            elif i in keep:
                record.append(view[off : off + length])
            off += length
            if off > end:
                return b"".join(pieces), count, True
        if off == start:
            break
        pieces.extend(record)
        count += 1
    return b"".join(pieces), count, False


def uint_field(rec: np.ndarray[Any, Any], name: str, length: int) -> U64:
    """A field of every record as native uint64 (any length of 1 to 8 octets, big-endian)."""
    value = rec[name]
    if value.ndim == 1:
        return value.astype(np.uint64)
    out = np.zeros(len(rec), dtype=np.uint64)
    for i in range(length):
        out = (out << np.uint64(8)) | value[:, i].astype(np.uint64)
    return out


def _raw(rec: np.ndarray[Any, Any], name: str, length: int) -> npt.NDArray[Any]:
    """The field as stored (a big-endian view) when numpy has its width, else as uint64."""
    value = rec[name]
    return value if value.ndim == 1 else uint_field(rec, name, length)


def per_record(values: I64, counts: I64) -> I64 | int:
    """Per-chunk ``values`` repeated per record, or one int when every chunk has the same."""
    first = int(values[0])
    if (values == first).all():
        return first
    return np.repeat(values, counts)


#: columns of a context row (one per data set, repeated per record): exporter index,
#: export version, source id, export time ms, uptime ms at export (-1 unknown),
#: header sampling interval (0 = learn from options)
CTX_EXPORTER, CTX_VERSION, CTX_SOURCE, CTX_EXPORT_MS, CTX_UPTIME, CTX_SAMPLING = range(6)


def _time(
    rec: np.ndarray[Any, Any], layout: Layout, chunks: I64, counts: I64, which: str
) -> I64 | int:
    roles = layout.roles
    export_ms = per_record(chunks[:, CTX_EXPORT_MS], counts)
    if (r := roles.get(f"{which}_ms")) is not None:
        return uint_field(rec, r[0], r[1]).astype(np.int64)
    if (r := roles.get(f"{which}_s")) is not None:
        return uint_field(rec, r[0], r[1]).astype(np.int64) * 1000
    if (r := roles.get(f"{which}_ntp")) is not None:
        ntp = uint_field(rec, r[0], r[1])
        seconds = (ntp >> np.uint64(32)).astype(np.int64) - NTP_OFFSET
        frac = ((ntp & np.uint64(0xFFFF_FFFF)) * np.uint64(1000)) >> np.uint64(32)
        return seconds * 1000 + frac.astype(np.int64)
    if (r := roles.get(f"{which}_uptime")) is not None:
        value = _raw(rec, r[0], r[1]).astype(np.int64)
        uptime = per_record(chunks[:, CTX_UPTIME], counts)
        if isinstance(uptime, int) and uptime < 0:  # uptime base unknown: the export time
            return export_ms
        # uptime counters are 32-bit milliseconds: the age of the event is their signed
        # 32-bit difference (wraps; an event up to 24 days after the header time is allowed,
        # as when the header time is truncated to seconds); in place, as
        # export − (((uptime − value + 2³¹) mod 2³²) − 2³¹)
        at = np.subtract(uptime + 2**31, value, out=value)
        at &= 0xFFFF_FFFF
        at = np.subtract(export_ms + 2**31, at, out=at)
        if isinstance(uptime, int):
            return at
        return np.where(uptime >= 0, at, export_ms)
    return export_ms


_DIRECT = (
    "protocol",
    "tos",
    "src_port",
    "dst_port",
    "src_mask",
    "dst_mask",
    "in_if",
    "out_if",
    "direction",
    "ingress_vrf_id",
    "egress_vrf_id",
    "sampler_id",
)


def _address(
    rec: np.ndarray[Any, Any], layout: Layout, role: str, cols: dict[str, Any], family: str
) -> int:
    r = layout.roles.get(role)
    if r is None:
        return 0
    name, length, _ = r
    if length == 16:
        cols[f"{role}_hi"] = rec[name + "h"]
        cols[f"{role}_lo"] = rec[name + "l"]
        version = 6
    else:
        cols[f"{role}_lo"] = _raw(rec, name, length)
        version = 4
    if family:
        cols[family] = version
    return version


def columns(
    rec: np.ndarray[Any, Any], layout: Layout, chunks: I64, counts: I64, exporters: U64
) -> dict[str, Any]:
    """Flow columns of records ``rec``: arrays (big-endian views where possible) or scalars.

    ``chunks`` holds one context row per data set and ``counts`` its records;
    ``exporters`` is an (m, 3) table of exporter family, hi, lo by exporter index.
    """
    roles = layout.roles
    cols: dict[str, Any] = {}
    exp = per_record(chunks[:, CTX_EXPORTER], counts)
    cols["exporter_version"] = exporters[exp, 0]
    cols["exporter_hi"] = exporters[exp, 1]
    cols["exporter_lo"] = exporters[exp, 2]
    cols["export_version"] = per_record(chunks[:, CTX_VERSION], counts)
    cols["source_id"] = per_record(chunks[:, CTX_SOURCE], counts)
    cols["start_ms"] = _time(rec, layout, chunks, counts, "start")
    cols["end_ms"] = _time(rec, layout, chunks, counts, "end")
    v_src = _address(rec, layout, "src", cols, "")
    _address(rec, layout, "dst", cols, "")
    if (r := roles.get("ip_version")) is not None:
        cols["ip_version"] = _raw(rec, r[0], r[1])
    else:
        v_dst = 6 if "dst_hi" in cols else 4 if "dst_lo" in cols else 0
        cols["ip_version"] = v_src or v_dst
    _address(rec, layout, "bgp_next_hop", cols, "bgp_next_hop_version")
    _address(rec, layout, "ip_next_hop", cols, "ip_next_hop_version")
    for role in _DIRECT:
        if (r := roles.get(role)) is not None:
            cols[role] = _raw(rec, r[0], r[1])
    for out, choices in (
        ("bytes", ("bytes", "bytes_total", "bytes_post")),
        ("packets", ("packets", "packets_total", "packets_post")),
    ):
        for role in choices:
            if (r := roles.get(role)) is not None:
                cols[out] = _raw(rec, r[0], r[1])
                break
    if (r := roles.get("mpls_label_1")) is not None:
        # label stack entry: 20-bit label, 3-bit traffic class, bottom-of-stack bit
        cols["mpls_label_1"] = uint_field(rec, r[0], r[1]) >> np.uint64(4 + 8 * max(r[1] - 3, 0))
    interval = record_sampling(rec, layout)
    if interval is not None:
        cols["sampling_interval"] = interval
    return cols


def record_sampling(rec: np.ndarray[Any, Any], layout: Layout) -> U64 | None:
    """The sampling interval carried in the records themselves (IE 34, 50 or 305/306)."""
    roles = layout.roles
    for role in ("sampling_interval", "sampler_interval"):
        if (r := roles.get(role)) is not None:
            return uint_field(rec, r[0], r[1])
    if (r := roles.get("sampling_packet_interval")) is not None:
        taken = uint_field(rec, r[0], r[1])
        space = np.zeros_like(taken)
        if (s := roles.get("sampling_packet_space")) is not None:
            space = uint_field(rec, s[0], s[1])
        return (taken + space) // np.maximum(taken, np.uint64(1))
    return None


@dataclass
class HeldSet:
    """A data set that arrived before its template, waiting for it."""

    arrival: float
    data: bytes
    #: the context row its records will get
    context: tuple[int, ...]


@dataclass
class TemplateStore:
    """Templates per (exporter, version, domain, template id) and data held for missing ones."""

    #: at most this many data sets held per template key
    hold_sets: int = 64
    #: held sets older than this many seconds are dropped
    hold_seconds: float = 60.0
    #: (exporter, version, domain) → template id → layout
    domains: dict[tuple[int, int, int], dict[int, Layout]] = field(default_factory=dict)
    held: dict[TemplateKey, deque[HeldSet]] = field(default_factory=dict)
    _compiled: dict[tuple[tuple[Field, ...], bool, int], Layout] = field(default_factory=dict)
    #: raw octets of a v9 (non-options) template's field list → its layout
    by_raw: dict[bytes, Layout] = field(default_factory=dict)

    #: raw octets of an IPFIX (options) template set → the (template id, layout) it defines
    sets: dict[bytes, tuple[tuple[int, Layout], ...]] = field(default_factory=dict)
    #: bumped whenever a template key gets another layout or none (see :meth:`set`)
    changes: int = 0

    def remember_set(self, raw: bytes, learned: list[tuple[int, Layout]]) -> None:
        """Remember what an IPFIX template set defined, keyed by its raw octets."""
        if len(self.sets) > 4096:
            self.sets.clear()
        self.sets[raw] = tuple(learned)

    def remember(self, raw: bytes, key: TemplateKey) -> None:
        """Remember the layout just defined for ``key`` under its template's raw octets."""
        layout = self.get(key)
        if layout is not None:
            if len(self.by_raw) > 4096:
                self.by_raw.clear()
            self.by_raw[raw] = layout

    def domain(self, exporter: int, version: int, domain: int) -> dict[int, Layout]:
        """The templates of one exporter's source id / observation domain, by template id."""
        key = (exporter, version, domain)
        found = self.domains.get(key)
        if found is None:
            found = self.domains[key] = {}
        return found

    def get(self, key: TemplateKey) -> Layout | None:
        """The layout of one template, or None."""
        found = self.domains.get((key[0], key[1], key[2]))
        return None if found is None else found.get(key[3])

    @property
    def keys(self) -> set[TemplateKey]:
        """Every template key known."""
        return {(*d, tid) for d, found in self.domains.items() for tid in found}

    def define(
        self, key: TemplateKey, fields: tuple[Field, ...], *, options: bool = False, scope: int = 0
    ) -> Layout:
        """Add or refresh a template; compiled layouts are shared between identical templates."""
        cache_key = (fields, options, scope)
        layout = self._compiled.get(cache_key)
        if layout is None:
            if len(self._compiled) > 4096:
                self._compiled.clear()
            layout = compile_layout(fields, options=options, scope_count=scope)
            self._compiled[cache_key] = layout
        self.set(key, layout)
        return layout

    def set(self, key: TemplateKey, layout: Layout) -> None:
        """Use ``layout`` for ``key``; a real change bumps :attr:`changes`."""
        found = self.domain(key[0], key[1], key[2])
        if found.get(key[3]) is not layout:
            found[key[3]] = layout
            self.changes += 1

    def withdraw(self, key: TemplateKey) -> None:
        """Forget one template."""
        if self.domain(*key[:3]).pop(key[3], None) is not None:
            self.changes += 1

    def withdraw_all(self, exporter: int, version: int, domain: int, *, options: bool) -> None:
        """Forget every (options) template of one exporter and domain."""
        found = self.domain(exporter, version, domain)
        for tid in [t for t, layout in found.items() if layout.options == options]:
            del found[tid]
            self.changes += 1

    def hold(self, key: TemplateKey, held: HeldSet) -> int:
        """Hold a data set for ``key``; return how many older sets were pushed out."""
        queue = self.held.setdefault(key, deque())
        queue.append(held)
        over = 0
        while len(queue) > self.hold_sets:
            queue.popleft()
            over += 1
        return over

    def release(self, key: TemplateKey) -> list[HeldSet]:
        """The sets held for ``key``, now that its template is known."""
        queue = self.held.pop(key, None)
        return list(queue) if queue else []

    def expire(self, now: float) -> dict[int, int]:
        """Drop held sets older than ``hold_seconds``; return counts per exporter index."""
        dropped: dict[int, int] = {}
        for key in list(self.held):
            queue = self.held[key]
            while queue and now - queue[0].arrival > self.hold_seconds:
                queue.popleft()
                dropped[key[0]] = dropped.get(key[0], 0) + 1
            if not queue:
                del self.held[key]
        return dropped
