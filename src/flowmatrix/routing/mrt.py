"""Read MRT TABLE_DUMP_V2 RIB dumps (RFC 6396, ADD-PATH RFC 8050) into BGP tables, VPN included.

gobgpd's ``[[mrt-dump]]`` table dumps carry VPNv4/VPNv6 routes as RIB_GENERIC
(subtype 6) or RIB_GENERIC_ADDPATH (12) records, which common MRT parsers do
not decode; plain IPv4/IPv6 unicast come as subtypes 2/4 (8/10 with
ADD-PATH). This decoder walks the records with :mod:`struct`: a dump is read
once when loaded, never per flow. Unknown record types are skipped.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

from flowmatrix.errors import RoutingError
from flowmatrix.routing.tables import BgpTable, bgp_from_rows

__all__ = ["read_mrt"]

#: MRT record type of TABLE_DUMP_V2 (RFC 6396 §4.3)
TABLE_DUMP_V2 = 13
#: TABLE_DUMP_V2 subtypes (RFC 6396 §4.3, RFC 8050 §4)
PEER_INDEX_TABLE = 1
RIB_IPV4_UNICAST, RIB_IPV6_UNICAST, RIB_GENERIC = 2, 4, 6
RIB_IPV4_UNICAST_ADDPATH, RIB_IPV6_UNICAST_ADDPATH, RIB_GENERIC_ADDPATH = 8, 10, 12
#: AFI / SAFI numbers (IANA)
AFI_IPV4, AFI_IPV6 = 1, 2
SAFI_UNICAST, SAFI_MPLS_VPN = 1, 128
#: path attribute type codes (RFC 4271, 4760, 4360)
ATTR_AS_PATH, ATTR_NEXT_HOP, ATTR_MED, ATTR_LOCAL_PREF = 2, 3, 4, 5
ATTR_MP_REACH, ATTR_EXT_COMMUNITIES = 14, 16
#: extended community subtype of a route target
EXT_ROUTE_TARGET = 2

_HEADER = struct.Struct(">IHHI")


class _Bad(Exception):
    pass


def _rd_text(raw: bytes) -> str:
    kind = int.from_bytes(raw[:2], "big")
    if kind == 0:
        return f"{int.from_bytes(raw[2:4], 'big')}:{int.from_bytes(raw[4:8], 'big')}"
    if kind == 1:
        return f"{ipaddress.IPv4Address(raw[2:6])}:{int.from_bytes(raw[6:8], 'big')}"
    if kind == 2:
        return f"{int.from_bytes(raw[2:6], 'big')}:{int.from_bytes(raw[6:8], 'big')}"
    msg = f"unknown RD type {kind}"
    raise _Bad(msg)


def _rt_text(raw: bytes) -> str | None:
    kind, sub = raw[0] & 0x3F, raw[1]
    if sub != EXT_ROUTE_TARGET:
        return None
    if kind == 0:
        return f"{int.from_bytes(raw[2:4], 'big')}:{int.from_bytes(raw[4:8], 'big')}"
    if kind == 1:
        return f"{ipaddress.IPv4Address(raw[2:6])}:{int.from_bytes(raw[6:8], 'big')}"
    if kind == 2:
        return f"{int.from_bytes(raw[2:6], 'big')}:{int.from_bytes(raw[6:8], 'big')}"
    return None


def _prefix(afi: int, raw: bytes, bits: int) -> str:
    size = 4 if afi == AFI_IPV4 else 16
    value = raw + bytes(size - len(raw))
    addr = ipaddress.IPv4Address(value) if afi == AFI_IPV4 else ipaddress.IPv6Address(value)
    return f"{addr}/{bits}"


def _nlri(afi: int, safi: int, body: bytes, at: int) -> tuple[str, str, int]:
    """(RD or "", prefix text, next offset) of one NLRI in UPDATE encoding."""
    bits = body[at]
    at += 1
    rd = ""
    if safi == SAFI_MPLS_VPN:
        # labels (3 bytes each, until bottom of stack) then the 8-byte RD (RFC 4364, 8277)
        while True:
            label = body[at : at + 3]
            at += 3
            bits -= 24
            if label[2] & 1 or label == b"\x80\x00\x00" or bits < 64:
                break
        rd = _rd_text(body[at : at + 8])
        at += 8
        bits -= 64
    size = (bits + 7) // 8
    return rd, _prefix(afi, body[at : at + size], bits), at + size


def _next_hop(raw: bytes) -> str:
    # VPN next hops start with an all-zero RD (RFC 4364 §4.3.2): keep the address
    if len(raw) in (12, 24, 48):
        raw = raw[8:]
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) in (16, 32):
        return str(ipaddress.IPv6Address(raw[:16]))
    msg = f"next hop of {len(raw)} bytes"
    raise _Bad(msg)


def _attributes(raw: bytes) -> dict[str, object]:
    row: dict[str, object] = {"as_path_len": 0}
    rts: list[str] = []
    at = 0
    while at < len(raw):
        flags, kind = raw[at], raw[at + 1]
        if flags & 0x10:
            (length,) = struct.unpack_from(">H", raw, at + 2)
            at += 4
        else:
            length = raw[at + 2]
            at += 3
        value = raw[at : at + length]
        at += length
        if kind == ATTR_AS_PATH:
            n, i = 0, 0
            while i < len(value):
                seg_type, count = value[i], value[i + 1]
                n += 1 if seg_type == 1 else count  # an AS_SET counts as one
                i += 2 + 4 * count  # TABLE_DUMP_V2 always uses 4-byte ASNs
            row["as_path_len"] = n
        elif kind == ATTR_NEXT_HOP:
            row["next_hop"] = str(ipaddress.IPv4Address(value[:4]))
        elif kind == ATTR_MED:
            row["med"] = int.from_bytes(value, "big")
        elif kind == ATTR_LOCAL_PREF:
            row["local_pref"] = int.from_bytes(value, "big")
        elif kind == ATTR_EXT_COMMUNITIES:
            rts += [t for j in range(0, len(value), 8) if (t := _rt_text(value[j : j + 8]))]
        elif kind == ATTR_MP_REACH:
            # RFC 6396 §4.3.4 abbreviates MP_REACH to next-hop length + next hop; some
            # writers keep the full attribute (AFI, SAFI, length, next hop, reserved, NLRI)
            if value and value[0] == len(value) - 1:
                row["next_hop"] = _next_hop(value[1:])
            else:
                nh_len = value[3]
                row["next_hop"] = _next_hop(value[4 : 4 + nh_len])
    row["rts"] = " ".join(rts)
    return row


def _rib(subtype: int, body: bytes) -> tuple[bool, list[dict[str, object]]]:
    """(is VPN, path rows) of one RIB record."""
    addpath = subtype in (RIB_IPV4_UNICAST_ADDPATH, RIB_IPV6_UNICAST_ADDPATH, RIB_GENERIC_ADDPATH)
    at = 4  # sequence number
    if subtype in (RIB_GENERIC, RIB_GENERIC_ADDPATH):
        afi, safi = struct.unpack_from(">HB", body, at)
        at += 3
    else:
        afi = AFI_IPV4 if subtype in (RIB_IPV4_UNICAST, RIB_IPV4_UNICAST_ADDPATH) else AFI_IPV6
        safi = SAFI_UNICAST
    if afi not in (AFI_IPV4, AFI_IPV6) or safi not in (SAFI_UNICAST, SAFI_MPLS_VPN):
        return False, []
    rd, prefix, at = _nlri(afi, safi, body, at)
    (count,) = struct.unpack_from(">H", body, at)
    at += 2
    rows = []
    for _ in range(count):
        at += 2 + 4  # peer index, originated time
        if addpath:
            at += 4  # path identifier
        (length,) = struct.unpack_from(">H", body, at)
        at += 2
        row = _attributes(body[at : at + length])
        at += length
        row["prefix"] = prefix
        if rd:
            row["rd"] = rd
        if "next_hop" not in row:
            msg = f"{prefix}: path without a next hop"
            raise _Bad(msg)
        rows.append(row)
    return safi == SAFI_MPLS_VPN, rows


def read_mrt(path: Path) -> tuple[BgpTable, BgpTable]:
    """The VPN (VPNv4 + VPNv6) and global (IPv4 + IPv6 unicast) paths of a TABLE_DUMP_V2 file.

    MRT carries no best-path marks: the resolver runs the path decision. Errors
    name the file and the byte offset of the record.
    """
    data = path.read_bytes()
    vpn: list[dict[str, object]] = []
    glob: list[dict[str, object]] = []
    at = 0
    while at < len(data):
        if at + _HEADER.size > len(data):
            msg = f"{path}: offset {at}: truncated MRT header"
            raise RoutingError(msg)
        _, kind, subtype, length = _HEADER.unpack_from(data, at)
        body = data[at + _HEADER.size : at + _HEADER.size + length]
        if len(body) < length:
            msg = f"{path}: offset {at}: truncated MRT record ({len(body)} of {length} bytes)"
            raise RoutingError(msg)
        if kind == TABLE_DUMP_V2 and subtype not in (PEER_INDEX_TABLE,):
            try:
                is_vpn, rows = _rib(subtype, body)
            except (_Bad, IndexError, struct.error, ValueError) as exc:
                msg = f"{path}: offset {at}: bad TABLE_DUMP_V2 subtype {subtype} record: {exc}"
                raise RoutingError(msg) from None
            (vpn if is_vpn else glob).extend(rows)
        at += _HEADER.size + length
    return bgp_from_rows(vpn, file=str(path)), bgp_from_rows(glob, file=str(path))
