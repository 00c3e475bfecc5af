"""Export datagrams from a capture: classic pcap and pcapng, offline, with IP reassembly.

Link types: Ethernet (with 802.1Q / 802.1ad tags), Linux cooked SLL and
SLL2, raw IP (DLT_RAW 12/14 and LINKTYPE_RAW 101, IPv4 228, IPv6 229) and
BSD loopback (DLT_NULL 0). IPv4 and IPv6 (fragment header) fragments are
reassembled; UDP payloads are returned with their source address and time.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from pathlib import Path

from flowmatrix.errors import DecodeError

__all__ = ["read_pcap", "udp_datagrams"]

_ETHERNET, _NULL, _RAW_A, _RAW_B, _RAW, _SLL, _SLL2, _IPV4, _IPV6 = (
    1,
    0,
    12,
    14,
    101,
    113,
    276,
    228,
    229,
)
_VLAN = (0x8100, 0x88A8, 0x9100)

#: (time, link type, frame)
Frame = tuple[float, int, bytes]


def read_pcap(path: Path) -> Iterator[Frame]:
    """Frames of a classic pcap or pcapng file: (unix time, link type, bytes)."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        msg = f"{path}: not a capture file (too short)"
        raise DecodeError(msg)
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng(data)
        return
    for order, nano in (("<", False), (">", False), ("<", True), (">", True)):
        want = 0xA1B23C4D if nano else 0xA1B2C3D4
        if struct.unpack(order + "I", magic)[0] == want:
            break
    else:
        msg = f"{path}: not a pcap or pcapng file (magic {magic.hex()})"
        raise DecodeError(msg)
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFF_FFFF
    head = struct.Struct(order + "IIII")
    scale = 1e-9 if nano else 1e-6
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = head.unpack_from(data, off)
        off += 16
        if off + caplen > len(data):
            return  # the file ends inside this packet (capture cut short)
        yield sec + frac * scale, linktype, data[off : off + caplen]
        off += caplen


def _pcapng(data: bytes) -> Iterator[Frame]:
    order = "<"
    interfaces: list[tuple[int, float]] = []
    off = 0
    while off + 12 <= len(data):
        btype = struct.unpack_from(order + "I", data, off)[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8 : off + 12]
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        blen = struct.unpack_from(order + "I", data, off + 4)[0]
        if blen < 12 or off + blen > len(data):
            return
        body = data[off + 8 : off + blen - 4]
        if btype == 1:
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            interfaces.append((linktype, _tsresol(body[8:], order)))
        elif btype == 6 and len(body) >= 20:
            iface, hi, lo, caplen, _ = struct.unpack_from(order + "IIIII", body, 0)
            if iface < len(interfaces):
                linktype, scale = interfaces[iface]
                yield ((hi << 32) | lo) * scale, linktype, body[20 : 20 + caplen]
        elif btype == 3 and interfaces and len(body) >= 4:
            yield 0.0, interfaces[0][0], body[4:]
        off += blen


def _tsresol(options: bytes, order: str) -> float:
    off = 0
    while off + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, off)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = options[off + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        off += 4 + (length + 3) // 4 * 4
    return 1e-6


def _network(linktype: int, frame: bytes) -> tuple[int, bytes] | None:
    """(IP version, packet) of a frame, or None when it holds no IP packet."""
    if linktype == _ETHERNET:
        off, ethertype = 14, struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
        while ethertype in _VLAN and len(frame) >= off + 4:
            ethertype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
    elif linktype == _SLL and len(frame) >= 16:
        off, ethertype = 16, struct.unpack_from("!H", frame, 14)[0]
    elif linktype == _SLL2 and len(frame) >= 20:
        off, ethertype = 20, struct.unpack_from("!H", frame, 0)[0]
    elif linktype == _NULL and len(frame) >= 4:
        family = struct.unpack_from("<I", frame, 0)[0]
        if family > 0xFFFF:
            family = struct.unpack_from(">I", frame, 0)[0]
        off, ethertype = 4, 0x0800 if family == 2 else 0x86DD
    elif linktype in (_RAW, _RAW_A, _RAW_B, _IPV4, _IPV6) and frame:
        off, ethertype = 0, 0x0800 if frame[0] >> 4 == 4 else 0x86DD
    else:
        return None
    packet = frame[off:]
    if ethertype == 0x0800 and packet and packet[0] >> 4 == 4:
        return 4, packet
    if ethertype == 0x86DD and packet and packet[0] >> 4 == 6:
        return 6, packet
    return None


def udp_datagrams(path: Path, *, port: int | None = None) -> Iterator[tuple[bytes, str, float]]:
    """UDP payloads of a capture as ``(payload, source address, time)``, fragments reassembled.

    ``port`` keeps only datagrams sent to that UDP port.
    """
    fragments: dict[tuple[object, ...], dict[int, bytes]] = {}
    lasts: dict[tuple[object, ...], int] = {}
    for when, linktype, frame in read_pcap(path):
        found = _network(linktype, frame)
        if found is None:
            continue
        version, packet = found
        got = _ip4(packet, fragments, lasts) if version == 4 else _ip6(packet, fragments, lasts)
        if got is None:
            continue
        src, proto, payload = got
        if proto != 17 or len(payload) < 8:
            continue
        dport, length = struct.unpack_from("!HH", payload, 2)
        if port is not None and dport != port:
            continue
        yield payload[8:length] if length >= 8 else payload[8:], src, when


def _ip4(
    packet: bytes,
    fragments: dict[tuple[object, ...], dict[int, bytes]],
    lasts: dict[tuple[object, ...], int],
) -> tuple[str, int, bytes] | None:
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total, ident, flags_frag, _, proto = struct.unpack_from("!HHHBB", packet, 2)
    src = str(ipaddress.IPv4Address(packet[12:16]))
    body = packet[ihl:total] if total >= ihl else packet[ihl:]
    more, offset = flags_frag & 0x2000, (flags_frag & 0x1FFF) * 8
    if not more and offset == 0:
        return src, proto, body
    key = (4, packet[12:20], ident, proto)
    return _reassemble(key, offset, body, bool(more), fragments, lasts, src, proto)


def _ip6(
    packet: bytes,
    fragments: dict[tuple[object, ...], dict[int, bytes]],
    lasts: dict[tuple[object, ...], int],
) -> tuple[str, int, bytes] | None:
    if len(packet) < 40:
        return None
    length, proto = struct.unpack_from("!HB", packet, 4)
    src = str(ipaddress.IPv6Address(packet[8:24]))
    body = packet[40 : 40 + length]
    # walk extension headers: hop-by-hop 0, routing 43, fragment 44, destination options 60
    while proto in (0, 43, 44, 60) and len(body) >= 8:
        if proto == 44:
            nxt, frag, ident = struct.unpack_from("!BxHI", body, 0)
            key = (6, packet[8:40], ident)
            return _reassemble(
                key, frag & 0xFFF8, body[8:], bool(frag & 1), fragments, lasts, src, nxt
            )
        proto, size = body[0], (body[1] + 1) * 8
        body = body[size:]
    return src, proto, body


def _reassemble(
    key: tuple[object, ...],
    offset: int,
    body: bytes,
    more: bool,
    fragments: dict[tuple[object, ...], dict[int, bytes]],
    lasts: dict[tuple[object, ...], int],
    src: str,
    proto: int,
) -> tuple[str, int, bytes] | None:
    parts = fragments.setdefault(key, {})
    parts[offset] = body
    if not more:
        lasts[key] = offset + len(body)
    end = lasts.get(key)
    if end is None:
        return None
    whole = bytearray()
    for off in sorted(parts):
        if off != len(whole):
            return None
        whole += parts[off]
    if len(whole) != end:
        return None
    del fragments[key]
    del lasts[key]
    return src, proto, bytes(whole)
