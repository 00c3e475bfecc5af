"""IPFIX (RFC 7011): header, template / options template / data sets walked by length.

Template records with a field count of 0 withdraw a template (template id 2
or 3 withdraws every template or options template of the domain); element
ids with the enterprise bit carry a 4-octet enterprise number and are
skipped; length 65535 marks a variable-length field.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from flowmatrix.flows.templates import Field, Layout

if TYPE_CHECKING:
    from flowmatrix.flows.decoder import Decoder
    from flowmatrix.flows.sequence import Mark

__all__ = ["HEADER", "walk"]

#: version, length, export time (unix secs), sequence number, observation domain id
HEADER = struct.Struct("!HHIII")
_SET = struct.Struct("!HH")
_PAIR = struct.Struct("!HH")
_OPTIONS = struct.Struct("!HHH")
_ENTERPRISE = struct.Struct("!I")


def walk(dec: Decoder, data: bytes, exp: int, arrival: float) -> Mark | None:
    """Learn the templates of one IPFIX message and queue its data sets.

    Returns the message's sequence mark: its sequence number and data records
    with and without options data records (-1 when a set's template is unknown).
    """
    size = len(data)
    if size < HEADER.size:
        dec.drop(exp, "short", f"IPFIX message of {size} octets")
        return None
    _, length, export_s, sequence, domain = HEADER.unpack_from(data)
    if length != size:
        dec.drop(exp, "length", f"IPFIX length {length}, datagram {size}")
        if length > size or length < HEADER.size:
            return (10, domain, sequence, -1, -1, export_s)
        size = length
    view = memoryview(data)
    templates = dec.store.domain(exp, 10, domain)
    context: tuple[int, ...] | None = None
    ci = 0
    # data records of the message, with and without options data records (-1: unknown)
    records = data_records = 0
    off = HEADER.size
    while off + 4 <= size:
        set_id, set_len = _SET.unpack_from(data, off)
        if set_len < 4 or off + set_len > size:
            dec.drop(exp, "set_length", f"IPFIX set {set_id} length {set_len}")
            return (10, domain, sequence, -1, -1, export_s)
        if set_id >= 256:
            if context is None:
                # options records earlier in this message may have set the system init time
                state = dec.domains.get((exp, 10, domain))
                export_ms = export_s * 1000
                init = state.system_init_ms if state is not None else None
                uptime = -1 if init is None else (export_ms - init) & 0xFFFF_FFFF
                context = (exp, 10, domain, export_ms, uptime, 0)
                ci = len(dec.contexts)
                dec.contexts.append(context)
            layout = templates.get(set_id)
            if layout is not None and not layout.options and layout.record_length:
                # fast path of Decoder.add: a fixed-length data set of a known template
                n = dec.queue_fixed(layout, view[off + 4 : off + set_len], ci)
                if records >= 0:
                    records += n
                if data_records >= 0:
                    data_records += n
            else:
                n = dec.data_set(
                    (exp, 10, domain, set_id), view[off + 4 : off + set_len], context, arrival
                )
                records = -1 if n < 0 or records < 0 else records + n
                if layout is not None and layout.options:
                    context = None
                else:
                    data_records = -1 if n < 0 or data_records < 0 else data_records + n
        elif set_id in (2, 3):
            _templates(dec, data, off + 4, off + set_len, exp, domain, options=set_id == 3)
        off += set_len
    return (10, domain, sequence, records, data_records, export_s)


def _templates(
    dec: Decoder, data: bytes, off: int, end: int, exp: int, domain: int, *, options: bool
) -> None:
    # a refreshed template set (softflowd: every 16 messages) is one lookup of its raw octets
    raw = (b"O" if options else b"T") + data[off:end]
    known = dec.store.sets.get(raw)
    if known is not None:
        for tid, layout in known:
            dec.learn((exp, 10, domain, tid), layout)
        return
    learned = _parse_templates(dec, data, off, end, exp, domain, options=options)
    if learned is not None:
        dec.store.remember_set(raw, learned)


def _parse_templates(
    dec: Decoder, data: bytes, off: int, end: int, exp: int, domain: int, *, options: bool
) -> list[tuple[int, Layout]] | None:
    """Learn the (options) templates of one set; return them, or None when not cacheable."""
    learned: list[tuple[int, Layout]] = []
    withdrew = False
    head = _OPTIONS if options else _PAIR
    while off + head.size <= end:
        if options:
            tid, count, scope = _OPTIONS.unpack_from(data, off)
        else:
            (tid, count), scope = _PAIR.unpack_from(data, off), 0
        if tid == 0 and count == 0:
            break  # padding
        off += 4 if count == 0 else head.size
        if count == 0:
            if tid in (2, 3):
                dec.store.withdraw_all(exp, 10, domain, options=options)
            else:
                dec.store.withdraw((exp, 10, domain, tid))
            withdrew = True  # a set with withdrawals is never replayed from the cache
            continue
        if tid < 256 or (options and not 0 < scope <= count):
            dec.drop(exp, "template", f"IPFIX template {tid} with {count} fields")
            return None
        fields: list[Field] = []
        for _ in range(count):
            if off + 4 > end:
                dec.drop(exp, "template", f"IPFIX template {tid} runs past its set")
                return None
            ie, length = _PAIR.unpack_from(data, off)
            off += 4
            enterprise = 0
            if ie & 0x8000:
                if off + 4 > end:
                    dec.drop(exp, "template", f"IPFIX template {tid} runs past its set")
                    return None
                (enterprise,) = _ENTERPRISE.unpack_from(data, off)
                off += 4
                ie &= 0x7FFF
                enterprise = enterprise or 0xFFFF_FFFF
            fields.append((ie, length, enterprise))
        dec.define((exp, 10, domain, tid), tuple(fields), options=options, scope=scope)
        layout = dec.store.get((exp, 10, domain, tid))
        if layout is not None:
            learned.append((tid, layout))
    return None if withdrew else learned
