"""NetFlow v9 (RFC 3954): header, template / options template / data flowsets walked by length."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from flowmatrix.flows.templates import Field, Layout

if TYPE_CHECKING:
    from flowmatrix.flows.decoder import Decoder
    from flowmatrix.flows.sequence import Mark

__all__ = ["HEADER", "SCOPE", "walk"]

#: version, count, sysUptime ms, unix secs, package sequence, source id
HEADER = struct.Struct("!HHIIII")
_SET = struct.Struct("!HH")
_PAIR = struct.Struct("!HH")
_OPTIONS = struct.Struct("!HHH")
#: enterprise marker of v9 scope fields: their types (1 System, 2 Interface, …) are not elements
SCOPE = 0xFFFF_FFFF


def walk(dec: Decoder, data: bytes, exp: int, arrival: float) -> Mark | None:
    """Learn the templates of one v9 datagram and queue its data flowsets.

    Returns the datagram's sequence mark (its package sequence; one packet).
    """
    size = len(data)
    if size < HEADER.size:
        dec.drop(exp, "short", f"v9 datagram of {size} octets")
        return None
    _, _, uptime, secs, sequence, source = HEADER.unpack_from(data)
    mark = (9, source, sequence, 1, 1, secs)
    context = (exp, 9, source, secs * 1000, uptime, 0)
    # one context row per datagram; queued data sets refer to it by index
    ci = len(dec.contexts)
    dec.contexts.append(context)
    view = memoryview(data)
    templates = dec.store.domain(exp, 9, source)
    off = HEADER.size
    # the header's count is not trusted: flowsets are walked by their own lengths
    while off + 4 <= size:
        set_id, length = _SET.unpack_from(data, off)
        if length < 4 or off + length > size:
            dec.drop(exp, "set_length", f"v9 flowset {set_id} length {length}")
            return mark
        if set_id >= 256:
            layout = templates.get(set_id)
            if layout is not None and not layout.options and layout.record_length:
                # fast path of Decoder.add: a fixed-length data set of a known template
                dec.queue_fixed(layout, view[off + 4 : off + length], ci)
            else:
                dec.data_set(
                    (exp, 9, source, set_id), view[off + 4 : off + length], context, arrival
                )
        elif set_id == 0:
            _templates(dec, data, off + 4, off + length, exp, source)
        elif set_id == 1:
            _options(dec, data, off + 4, off + length, exp, source)
        off += length
    return mark


def _templates(dec: Decoder, data: bytes, off: int, end: int, exp: int, source: int) -> None:
    while off + 4 <= end:
        tid, count = _PAIR.unpack_from(data, off)
        off += 4
        if tid < 256 or count == 0 or off + 4 * count > end:
            dec.drop(exp, "template", f"v9 template {tid} with {count} fields")
            return
        raw = data[off : off + 4 * count]
        off += 4 * count
        # a template refresh (softflowd: every 16 datagrams) is one lookup of its raw octets
        layout = dec.store.by_raw.get(raw)
        if layout is not None:
            dec.learn((exp, 9, source, tid), layout)
            continue
        words = struct.unpack_from(f"!{2 * count}H", raw)
        fields: tuple[Field, ...] = tuple(zip(words[::2], words[1::2], [0] * count, strict=True))
        dec.define((exp, 9, source, tid), fields, options=False, scope=0)
        dec.store.remember(raw, (exp, 9, source, tid))


def _options(dec: Decoder, data: bytes, off: int, end: int, exp: int, source: int) -> None:
    # a refreshed options template set is one lookup of its raw octets, as in IPFIX
    raw = b"9" + data[off:end]
    known = dec.store.sets.get(raw)
    if known is not None:
        for tid, layout in known:
            dec.learn((exp, 9, source, tid), layout)
        return
    learned: list[tuple[int, Layout]] = []
    # options template records are followed by padding to a 4-octet boundary
    while off + 6 <= end:
        tid, scope_len, option_len = _OPTIONS.unpack_from(data, off)
        off += 6
        if (
            tid < 256
            or scope_len % 4
            or option_len % 4
            or off + scope_len + option_len > end
            or scope_len + option_len == 0
        ):
            if tid or scope_len or option_len:
                dec.drop(exp, "template", f"v9 options template {tid}")
                return  # a set with a malformed record is never replayed from the cache
            break
        fields: list[Field] = []
        for i in range((scope_len + option_len) // 4):
            ie, length = _PAIR.unpack_from(data, off)
            fields.append((ie, length, SCOPE if i < scope_len // 4 else 0))
            off += 4
        dec.define((exp, 9, source, tid), tuple(fields), options=True, scope=scope_len // 4)
        defined = dec.store.get((exp, 9, source, tid))
        if defined is not None:
            learned.append((tid, defined))
    dec.store.remember_set(raw, learned)
