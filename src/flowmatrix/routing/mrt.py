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

import numpy as np

from flowmatrix.errors import RoutingError
from flowmatrix.routing.bgp import (
    AFI_IPV4,
    AFI_IPV6,
    ATTR_AS_PATH,
    ATTR_EXT_COMMUNITIES,
    ATTR_LOCAL_PREF,
    ATTR_MED,
    ATTR_MP_REACH,
    ATTR_NEXT_HOP,
    SAFI_MPLS_VPN,
    SAFI_UNICAST,
    rd_text,
    rt_bytes,
    rt_text,
)
from flowmatrix.routing.tables import BgpTable, bgp_from_rows

__all__ = ["read_mrt", "write_mrt"]

#: MRT record type of TABLE_DUMP_V2 (RFC 6396 §4.3)
TABLE_DUMP_V2 = 13
#: TABLE_DUMP_V2 subtypes (RFC 6396 §4.3, RFC 8050 §4)
PEER_INDEX_TABLE = 1
RIB_IPV4_UNICAST, RIB_IPV6_UNICAST, RIB_GENERIC = 2, 4, 6
RIB_IPV4_UNICAST_ADDPATH, RIB_IPV6_UNICAST_ADDPATH, RIB_GENERIC_ADDPATH = 8, 10, 12
_HEADER = struct.Struct(">IHHI")


class _Bad(Exception):
    pass


def _rd_text(raw: bytes) -> str:
    """An RD's text; an RD type other than 0, 1 or 2 makes the record unreadable."""
    kind = int.from_bytes(raw[:2], "big")
    if kind > 2:
        msg = f"unknown RD type {kind}"
        raise _Bad(msg)
    return rd_text(int.from_bytes(raw[:8], "big"))


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
            rts += [t for j in range(0, len(value), 8) if (t := rt_text(value[j : j + 8]))]
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


# --- writing ------------------------------------------------------------------------------------

#: path attribute codes written besides those read above (RFC 4271)
ATTR_ORIGIN = 1
#: placeholder ASN for each hop of a path known only by its length (AS_TRANS, RFC 6793)
AS_TRANS = 23456


def _attr_bytes(kind: int, value: bytes, flags: int) -> bytes:
    if len(value) > 255:
        return bytes([flags | 0x10, kind]) + len(value).to_bytes(2, "big") + value
    return bytes([flags, kind, len(value)]) + value


def _rib_bodies(table: BgpTable, *, vpn: bool, stamp: bytes) -> list[tuple[int, bytes]]:
    """(subtype, body) of one RIB record per (RD, prefix) of ``table``."""
    from flowmatrix.routing.bgp import rd_value

    rt_raw = [b"".join(rt_bytes(r) for r in sorted(s)) for s in table.rt_sets]
    rd_raw = [rd_value(r).to_bytes(8, "big") for r in table.rds]
    key_rd = table.rd if vpn else np.zeros(len(table), np.int32)
    order = np.lexsort((table.length, table.lo, table.hi, table.family, key_rd)).tolist()
    fam, hi, lo, ln = (a.tolist() for a in (table.family, table.hi, table.lo, table.length))
    rdc, rts = table.rd.tolist(), table.rts.tolist()
    nf, nhh, nhl = table.nh_family.tolist(), table.nh_hi.tolist(), table.nh_lo.tolist()
    lp, med, apl = table.local_pref.tolist(), table.med.tolist(), table.as_path_len.tolist()
    groups: list[list[int]] = []
    prev: tuple[int, int, int, int, int] | None = None
    for i in order:
        key = (rdc[i] if vpn else 0, fam[i], hi[i], lo[i], ln[i])
        if key != prev:
            groups.append([])
            prev = key
        groups[-1].append(i)
    out: list[tuple[int, bytes]] = []
    for seq, rows in enumerate(groups):
        i = rows[0]
        v6 = fam[i] == 6
        addr = ((hi[i] << 64) | lo[i]).to_bytes(16, "big") if v6 else lo[i].to_bytes(4, "big")
        bits = ln[i]
        entries = b""
        for j in rows:
            nh = (
                ((nhh[j] << 64) | nhl[j]).to_bytes(16, "big")
                if nf[j] == 6
                else nhl[j].to_bytes(4, "big")
            )
            hops = min(apl[j], 255)
            seg = (bytes([2, hops]) + AS_TRANS.to_bytes(4, "big") * hops) if hops else b""
            attrs = _attr_bytes(ATTR_ORIGIN, b"\x02", 0x40) + _attr_bytes(ATTR_AS_PATH, seg, 0x40)
            if vpn:
                mp = bytes(8) + nh  # a VPN next hop behind a zero RD
                attrs += _attr_bytes(ATTR_MP_REACH, bytes([len(mp)]) + mp, 0x80)
            elif nf[j] == 6:
                attrs += _attr_bytes(ATTR_MP_REACH, bytes([len(nh)]) + nh, 0x80)
            else:
                attrs += _attr_bytes(ATTR_NEXT_HOP, nh, 0x40)
            attrs += _attr_bytes(ATTR_MED, med[j].to_bytes(4, "big"), 0x80)
            attrs += _attr_bytes(ATTR_LOCAL_PREF, lp[j].to_bytes(4, "big"), 0x40)
            if rts[j] >= 0 and rt_raw[rts[j]]:
                attrs += _attr_bytes(ATTR_EXT_COMMUNITIES, rt_raw[rts[j]], 0xC0)
            entries += (0).to_bytes(2, "big") + stamp + len(attrs).to_bytes(2, "big") + attrs
        head = seq.to_bytes(4, "big")
        count = len(rows).to_bytes(2, "big")
        if vpn:
            # one label, bottom of stack, then the RD (RFC 4364 NLRI encoding)
            nlri = bytes([bits + 88]) + b"\x00\x00\x01" + rd_raw[rdc[i]] + addr[: (bits + 7) // 8]
            afi = AFI_IPV6 if v6 else AFI_IPV4
            body = head + afi.to_bytes(2, "big") + bytes([SAFI_MPLS_VPN]) + nlri + count + entries
            out.append((RIB_GENERIC, body))
        else:
            body = head + bytes([bits]) + addr[: (bits + 7) // 8] + count + entries
            out.append((RIB_IPV6_UNICAST if v6 else RIB_IPV4_UNICAST, body))
    return out


def write_mrt(
    path: Path,
    vpn: BgpTable,
    global_bgp: BgpTable,
    *,
    taken_at_ms: int = 0,
    collector_id: str = "0.0.0.0",
) -> int:
    """Write BGP tables as an MRT TABLE_DUMP_V2 file :func:`read_mrt` reads back; records written.

    VPN paths become RIB_GENERIC (6) records with AFI 1/2, SAFI 128 (one label,
    bottom of stack, then the RD); global paths RIB_IPV4_UNICAST (2) /
    RIB_IPV6_UNICAST (4). Every path is an entry of one peer (index 0) with
    ORIGIN incomplete, an AS_SEQUENCE of ``as_path_len`` AS_TRANS hops (only
    the length is kept), the next hop in an abbreviated MP_REACH (RFC 6396
    §4.3.4; VPN next hops behind a zero RD) or NEXT_HOP, MED, LOCAL_PREF and
    the route targets. Originators and best-path marks are not written.
    """
    seconds = taken_at_ms // 1000
    stamp = seconds.to_bytes(4, "big")
    peer = bytes([0x02]) + bytes(4) + bytes(4) + bytes(4)  # AS4, IPv4, BGP id, address, AS 0
    index = ipaddress.IPv4Address(collector_id).packed + bytes(2) + (1).to_bytes(2, "big") + peer
    records = [(PEER_INDEX_TABLE, index)]
    records += _rib_bodies(vpn, vpn=True, stamp=stamp)
    records += _rib_bodies(global_bgp, vpn=False, stamp=stamp)
    with path.open("wb") as fh:
        for subtype, body in records:
            fh.write(_HEADER.pack(seconds, TABLE_DUMP_V2, subtype, len(body)))
            fh.write(body)
    return len(records) - 1
