"""Write classic libpcap files of 802.1Q-tagged IPv4/IPv6 TCP/UDP packets, built with numpy.

Every header is a numpy structured dtype (network byte order); a batch of
packets fills one structured array per (IP version, protocol), computes the
IPv4 header and TCP/UDP checksums column-wise, and scatters the header bytes
into one zeroed buffer at computed offsets. Payloads are zero bytes, so they
add nothing to a checksum. No Python loop runs per packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ETHERNET_VLAN_HEADER",
    "LINKTYPE_ETHERNET",
    "PCAP_MAGIC",
    "PacketColumns",
    "write_pcap",
]

Arr = npt.NDArray[Any]

#: classic libpcap magic (microsecond timestamps), written little-endian
PCAP_MAGIC = 0xA1B2C3D4
#: DLT/LINKTYPE of Ethernet frames
LINKTYPE_ETHERNET = 1
#: bytes before the IP header: destination, source, 802.1Q tag, EtherType
ETHERNET_VLAN_HEADER = 18
#: snapshot length written in the file header
SNAPLEN = 65535
#: packets written per chunk (bounds the buffer and index arrays: ~100 MB at most)
_CHUNK = 65536

_GLOBAL_HEADER = np.dtype(
    [("magic", "<u4"), ("major", "<u2"), ("minor", "<u2"), ("zone", "<i4"),
     ("sigfigs", "<u4"), ("snaplen", "<u4"), ("linktype", "<u4")]
)  # fmt: skip
_RECORD = [("ts_sec", "<u4"), ("ts_usec", "<u4"), ("incl_len", "<u4"), ("orig_len", "<u4")]
_ETHER = [("eth_dst", "u1", 6), ("eth_src", "u1", 6), ("tpid", ">u2"), ("tci", ">u2"),
          ("ethertype", ">u2")]  # fmt: skip
_IPV4 = [("vihl", "u1"), ("tos", "u1"), ("total_length", ">u2"), ("ident", ">u2"),
         ("frag", ">u2"), ("ttl", "u1"), ("proto", "u1"), ("ip_csum", ">u2"),
         ("src", ">u4"), ("dst", ">u4")]  # fmt: skip
_IPV6 = [("vtcfl", ">u4"), ("payload_length", ">u2"), ("next_header", "u1"), ("hop_limit", "u1"),
         ("src_hi", ">u8"), ("src_lo", ">u8"), ("dst_hi", ">u8"), ("dst_lo", ">u8")]  # fmt: skip
_TCP = [("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("off_flags", ">u2"),
        ("window", ">u2"), ("l4_csum", ">u2"), ("urgent", ">u2")]  # fmt: skip
_UDP = [("sport", ">u2"), ("dport", ">u2"), ("udp_length", ">u2"), ("l4_csum", ">u2")]

#: header layout of each (IP version, IP protocol)
HEADERS = {
    (4, 6): np.dtype(_RECORD + _ETHER + _IPV4 + _TCP),
    (4, 17): np.dtype(_RECORD + _ETHER + _IPV4 + _UDP),
    (6, 6): np.dtype(_RECORD + _ETHER + _IPV6 + _TCP),
    (6, 17): np.dtype(_RECORD + _ETHER + _IPV6 + _UDP),
}


@dataclass(frozen=True, eq=False)
class PacketColumns:
    """One column per packet field; IPv4 addresses are held in ``src_lo``/``dst_lo``."""

    time_us: Arr  # int64, microseconds since the epoch
    family: Arr  # 4 or 6
    proto: Arr  # 6 (TCP) or 17 (UDP)
    ip_length: Arr  # IP total length (IPv4) or 40 + payload length (IPv6)
    vlan: Arr
    tos: Arr
    src_hi: Arr
    src_lo: Arr
    dst_hi: Arr
    dst_lo: Arr
    sport: Arr
    dport: Arr
    ident: Arr  # IPv4 identification / IPv6 flow label
    seq: Arr
    ack: Arr
    mac_src: Arr  # uint64, low 48 bits
    mac_dst: Arr

    def slice(self, start: int, stop: int) -> PacketColumns:
        """The packets from ``start`` to ``stop`` (views, no copy)."""
        return PacketColumns(**{k: getattr(self, k)[start:stop] for k in self.__dataclass_fields__})

    def take(self, index: Arr) -> PacketColumns:
        """The packets at ``index``, in that order."""
        return PacketColumns(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def _fold(total: Arr) -> Arr:
    """One's-complement checksum of 16-bit word sums (uint64)."""
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).astype(np.uint16)


def _words(value: Arr, n: int) -> Arr:
    """Sum of the ``n`` 16-bit words of unsigned integers ``value`` (uint64)."""
    value = value.astype(np.uint64)
    total = np.zeros(len(value), np.uint64)
    for i in range(n):
        total += (value >> np.uint64(16 * i)) & np.uint64(0xFFFF)
    return total


def _mac(value: Arr) -> Arr:
    value = value.astype(np.uint64)
    shifts = np.arange(40, -1, -8, dtype=np.uint64)
    return ((value[:, None] >> shifts) & np.uint64(255)).astype(np.uint8)


def _headers(p: PacketColumns, family: int, proto: int) -> Arr:
    """The header bytes (one row per packet) of packets that are all ``family``/``proto``."""
    dtype = HEADERS[(family, proto)]
    n = len(p.time_us)
    h = np.zeros(n, dtype)
    ip_len = p.ip_length.astype(np.uint64)
    frame = ip_len + ETHERNET_VLAN_HEADER
    h["ts_sec"] = p.time_us // 1_000_000
    h["ts_usec"] = p.time_us % 1_000_000
    h["incl_len"] = frame
    h["orig_len"] = frame
    h["eth_dst"] = _mac(p.mac_dst)
    h["eth_src"] = _mac(p.mac_src)
    h["tpid"] = 0x8100
    h["tci"] = p.vlan
    tos = p.tos.astype(np.uint64)
    l4_len = ip_len - (20 if family == 4 else 40)
    # pseudo header sum for the TCP/UDP checksum
    if family == 4:
        h["ethertype"] = 0x0800
        h["vihl"] = 0x45
        h["tos"] = tos
        h["total_length"] = ip_len
        h["ident"] = p.ident & 0xFFFF
        h["frag"] = 0x4000  # don't fragment
        h["ttl"] = 64
        h["proto"] = proto
        h["src"] = p.src_lo
        h["dst"] = p.dst_lo
        addr_sum = _words(p.src_lo, 2) + _words(p.dst_lo, 2)
        ip_sum = (
            np.uint64(0x4500) + tos + ip_len + (p.ident & 0xFFFF).astype(np.uint64)
            + np.uint64(0x4000) + np.uint64((64 << 8) | proto) + addr_sum
        )  # fmt: skip
        h["ip_csum"] = _fold(ip_sum)
    else:
        h["ethertype"] = 0x86DD
        h["vtcfl"] = (
            (np.uint64(6) << np.uint64(28))
            | (tos << np.uint64(20))
            | (p.ident.astype(np.uint64) & np.uint64(0xFFFFF))
        )
        h["payload_length"] = l4_len
        h["next_header"] = proto
        h["hop_limit"] = 64
        h["src_hi"], h["src_lo"] = p.src_hi, p.src_lo
        h["dst_hi"], h["dst_lo"] = p.dst_hi, p.dst_lo
        addr_sum = (
            _words(p.src_hi, 4) + _words(p.src_lo, 4) + _words(p.dst_hi, 4) + _words(p.dst_lo, 4)
        )
    sport = p.sport.astype(np.uint64)
    dport = p.dport.astype(np.uint64)
    l4_sum = addr_sum + np.uint64(proto) + l4_len + sport + dport
    h["sport"], h["dport"] = sport, dport
    if proto == 6:
        seq = p.seq.astype(np.uint64) & np.uint64(0xFFFFFFFF)
        ack = p.ack.astype(np.uint64) & np.uint64(0xFFFFFFFF)
        h["seq"], h["ack"] = seq, ack
        h["off_flags"] = 0x5018  # 5 words, PSH+ACK
        h["window"] = 65535
        l4_sum += _words(seq, 2) + _words(ack, 2) + np.uint64(0x5018 + 65535)
        h["l4_csum"] = _fold(l4_sum)
    else:
        h["udp_length"] = l4_len
        csum = _fold(l4_sum + l4_len)
        h["l4_csum"] = np.where(csum == 0, 0xFFFF, csum)  # 0 means "no checksum"
    return h.view(np.uint8).reshape(n, dtype.itemsize)


def write_pcap(path: Path, packets: PacketColumns) -> int:
    """Write ``packets`` (already in time order) to a classic pcap file; return its size.

    Packets go out in chunks through one reused buffer, so memory stays bounded
    and the payload's zero bytes cost a memset rather than fresh pages.
    """
    n = len(packets.time_us)
    record = packets.ip_length.astype(np.int64) + ETHERNET_VLAN_HEADER + 16
    header = np.zeros(1, _GLOBAL_HEADER)
    header[0] = (PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
    total = _GLOBAL_HEADER.itemsize
    buf = np.zeros(0, np.uint8)
    with path.open("wb") as fh:
        fh.write(header.tobytes())
        for lo in range(0, n, _CHUNK):
            chunk = packets.slice(lo, lo + _CHUNK)
            sizes = record[lo : lo + _CHUNK]
            offsets = np.cumsum(sizes) - sizes
            size = int(sizes.sum())
            if len(buf) < size:
                buf = np.zeros(size, np.uint8)
            else:
                buf[:size] = 0
            for (family, proto), dtype in HEADERS.items():
                sel = np.flatnonzero((chunk.family == family) & (chunk.proto == proto))
                if len(sel) == 0:
                    continue
                rows = _headers(chunk.take(sel), family, proto)
                width = np.arange(dtype.itemsize, dtype=np.int64)
                buf[offsets[sel][:, None] + width] = rows
            buf[:size].tofile(fh)
            total += size
    return total
