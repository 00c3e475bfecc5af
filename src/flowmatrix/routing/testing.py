"""Small hand-built routing tables for tests and examples (other components' fakes)."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from flowmatrix.config.model import ExternalNextHop, NetworkConfig, PeRouter, ServiceNode
from flowmatrix.routing.bgp import rt_bytes
from flowmatrix.routing.tables import (
    BgpTable,
    ConnectedTable,
    PeTables,
    RdTable,
    RoutingState,
    RrTables,
    bgp_from_rows,
    parse_prefixes,
)

__all__ = [
    "Gobgpd",
    "bgp_open",
    "bgp_table",
    "bgp_update",
    "blue_red_state",
    "bmp_initiation",
    "bmp_message",
    "bmp_peer_down",
    "bmp_peer_header",
    "bmp_peer_up",
    "bmp_route_monitoring",
    "bmp_statistics",
    "bmp_termination",
    "connected_table",
    "free_tcp_port",
    "network",
    "nlri",
    "rd_table",
    "two_pe_state",
]


def bgp_table(rows: Sequence[Mapping[str, object]], *, file: str = "<test>") -> BgpTable:
    """A BGP table from dicts (see :func:`flowmatrix.routing.tables.bgp_from_rows`)."""
    return bgp_from_rows(rows, file=file)


def rd_table(rows: Sequence[tuple[int, str, str, str, str]]) -> RdTable:
    """An RD table from ``(if_index, vrf, rd, import_rts, export_rts)`` tuples."""
    vrfs = [r[1] for r in rows]
    numbers = {v: k + 1 for k, v in enumerate(dict.fromkeys(v for v in vrfs if v))}
    return RdTable(
        if_index=np.array([r[0] for r in rows], dtype=np.int64),
        interface=[f"Gi0/0/0/0.{r[0]}" for r in rows],
        vrf=vrfs,
        rd=[r[2] for r in rows],
        import_rts=[frozenset(r[3].split()) for r in rows],
        export_rts=[frozenset(r[4].split()) for r in rows],
        vrf_id=np.array([numbers.get(v, 0) for v in vrfs], dtype=np.int64),
    )


def connected_table(rows: Sequence[tuple[str, str, bool]] = ()) -> ConnectedTable:
    """Connected/static prefixes from ``(vrf, prefix, in_bgp)`` tuples."""
    p = parse_prefixes([r[1] for r in rows])
    return ConnectedTable(
        vrf=[r[0] for r in rows],
        family=p.family,
        hi=p.hi,
        lo=p.lo,
        length=p.length,
        in_bgp=np.array([r[2] for r in rows], dtype=bool),
    )


def network(
    pes: Sequence[tuple[str, str, str]], external: Sequence[tuple[str, str]] = ()
) -> NetworkConfig:
    """A configuration from ``(name, loopback, loopback6)`` PEs (each its own service node)
    and ``(prefix, pe)`` external next hops."""
    return NetworkConfig(
        name="test",
        asn=65000,
        service_nodes=tuple(ServiceNode(name=p[0].upper()) for p in pes),
        pes=tuple(
            PeRouter(
                name=p[0],
                loopback=ipaddress.ip_address(p[1]),
                service_node=p[0].upper(),
                loopback6=ipaddress.IPv6Address(p[2]) if p[2] else None,
            )
            for p in pes
        ),
        external_next_hops=tuple(
            ExternalNextHop(prefix=ipaddress.ip_network(e[0]), pe=e[1]) for e in external
        ),
    )


def blue_red_state(pes: Sequence[tuple[str, str, str]]) -> RoutingState:
    """A network of ``pes`` where pe1 has VRFs blue (ifIndex 101, RD 65000:11, RT 65000:1) and
    red (102, RD 65000:91, RT 65000:9) and no VPN table of its own: routes come from elsewhere
    (a route reflector's view, or live BMP)."""
    state = RoutingState(network(pes))
    rd = rd_table(
        [
            (101, "blue", "65000:11", "65000:1", "65000:1"),
            (102, "red", "65000:91", "65000:9", "65000:9"),
        ]
    )
    state.add_pe(PeTables("pe1", 0, rd, connected_table()))
    return state


def two_pe_state() -> RoutingState:
    """Two PEs in one mesh VPN (RT 65000:1) seen through a route reflector; pe1 ifIndex 101.

    pe1 holds 10.1.0.0/16, pe2 10.2.0.0/16; tables taken at t = 0. A third PE,
    pe3 (192.0.2.3), is configured but has no tables.
    """
    state = RoutingState(
        network(
            [
                ("pe1", "192.0.2.1", "2001:db8::1"),
                ("pe2", "192.0.2.2", "2001:db8::2"),
                ("pe3", "192.0.2.3", "2001:db8::3"),
            ]
        )
    )
    vpn = bgp_table(
        [
            {"rd": "65000:1", "prefix": "10.1.0.0/16", "next_hop": "192.0.2.1", "rts": "65000:1"},
            {"rd": "65000:1", "prefix": "10.2.0.0/16", "next_hop": "192.0.2.2", "rts": "65000:1"},
        ]
    )
    state.add_rr(RrTables(0, vpn, bgp_table([])))
    for name, if_index in (("pe1", 101), ("pe2", 201)):
        rd = rd_table([(if_index, "blue", "65000:1", "65000:1", "65000:1")])
        state.add_pe(PeTables(name, 0, rd, connected_table()))
    return state


# --- BGP / BMP message encoder (tests, bench) ---------------------------------------------------

BMP_PEER_GLOBAL, BMP_PEER_RD, BMP_PEER_LOCAL, BMP_PEER_LOC_RIB = 0, 1, 2, 3


def _attr(kind: int, value: bytes, flags: int = 0x40) -> bytes:
    if len(value) > 255:
        return bytes([flags | 0x10, kind]) + len(value).to_bytes(2, "big") + value
    return bytes([flags, kind, len(value)]) + value


def _rd_bytes(rd: str) -> bytes:
    from flowmatrix.routing.bgp import rd_value

    return rd_value(rd).to_bytes(8, "big")


def nlri(
    prefix: str, *, rd: str | None = None, label: int | None = 100, path_id: int | None = None
) -> bytes:
    """One NLRI in UPDATE encoding: [path id] length, [label, RD], prefix bytes.

    ``rd`` makes it a VPN NLRI (RFC 4364) with one label (bottom of stack);
    ``label=None`` on a VPN NLRI writes the withdrawal label 0x800000.
    """
    net = ipaddress.ip_network(prefix)
    raw = net.network_address.packed[: (net.prefixlen + 7) // 8]
    bits = net.prefixlen
    head = b""
    if rd is not None:
        lab = (0x800000 if label is None else (label << 4) | 1).to_bytes(3, "big")
        head = lab + _rd_bytes(rd)
        bits += 8 * len(head)
    out = bytes([bits]) + head + raw
    return (path_id.to_bytes(4, "big") + out) if path_id is not None else out


def bgp_update(
    *,
    announce: Sequence[bytes] = (),
    withdraw: Sequence[bytes] = (),
    afi: int = 1,
    safi: int = 128,
    next_hop: str = "192.0.2.1",
    rts: Sequence[str] = (),
    local_pref: int | None = 100,
    med: int | None = None,
    as_path: Sequence[int] = (),
    as4: bool = True,
    origin: int = 0,
    originator: str | None = None,
    communities: Sequence[int] = (),
    extra: bytes = b"",
) -> bytes:
    """A whole BGP UPDATE message (19-byte header included) from NLRI made by :func:`nlri`.

    SAFI 1 with AFI 1 puts the NLRI in the plain fields (with NEXT_HOP);
    anything else goes in MP_REACH / MP_UNREACH (VPN next hops get their
    zero RD). ``extra`` is appended raw to the path attributes.
    """
    plain = afi == 1 and safi == 1
    attrs = b""
    withdrawn = b""
    body_nlri = b""
    if announce:
        attrs += _attr(1, bytes([origin]), 0x40)
        width = 4 if as4 else 2
        seg = (
            bytes([2, len(as_path)]) + b"".join(a.to_bytes(width, "big") for a in as_path)
            if as_path
            else b""
        )
        attrs += _attr(2, seg, 0x40)
        nh = ipaddress.ip_address(next_hop).packed
        if plain:
            attrs += _attr(3, nh, 0x40)
        if med is not None:
            attrs += _attr(4, med.to_bytes(4, "big"), 0x80)
        if local_pref is not None:
            attrs += _attr(5, local_pref.to_bytes(4, "big"), 0x40)
        if communities:
            attrs += _attr(8, b"".join(c.to_bytes(4, "big") for c in communities), 0xC0)
        if originator is not None:
            attrs += _attr(9, ipaddress.IPv4Address(originator).packed, 0x80)
        if rts:
            attrs += _attr(16, b"".join(rt_bytes(r) for r in rts), 0xC0)
        if plain:
            body_nlri = b"".join(announce)
        else:
            mp_nh = (bytes(8) + nh) if safi == 128 else nh
            value = (
                afi.to_bytes(2, "big")
                + bytes([safi, len(mp_nh)])
                + mp_nh
                + b"\x00"
                + b"".join(announce)
            )
            attrs += _attr(14, value, 0x80)
    if withdraw:
        if plain:
            withdrawn = b"".join(withdraw)
        else:
            value = afi.to_bytes(2, "big") + bytes([safi]) + b"".join(withdraw)
            attrs += _attr(15, value, 0x80)
    attrs += extra
    body = (
        len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big") + attrs
    ) + body_nlri
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


def bgp_open(
    *,
    asn: int = 65000,
    bgp_id: str = "192.0.2.1",
    addpath: Sequence[tuple[int, int, int]] = (),
    as4: bool = True,
) -> bytes:
    """A BGP OPEN with multiprotocol VPNv4/VPNv6, 4-byte AS and ADD-PATH ``(afi, safi, mode)``."""
    caps = b""
    for afi, safi in ((1, 128), (2, 128), (1, 1)):
        caps += bytes([1, 4]) + afi.to_bytes(2, "big") + bytes([0, safi])
    if as4:
        caps += bytes([65, 4]) + asn.to_bytes(4, "big")
    if addpath:
        value = b"".join(a.to_bytes(2, "big") + bytes([s, m]) for a, s, m in addpath)
        caps += bytes([69, len(value)]) + value
    params = bytes([2, len(caps)]) + caps
    body = (
        bytes([4])
        + min(asn, 23456 if asn > 0xFFFF else asn).to_bytes(2, "big")
        + (90).to_bytes(2, "big")
        + ipaddress.IPv4Address(bgp_id).packed
        + bytes([len(params)])
        + params
    )
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x01" + body


def bmp_message(kind: int, body: bytes) -> bytes:
    """A BMP message: common header (version 3, length, type) and ``body``."""
    return bytes([3]) + (6 + len(body)).to_bytes(4, "big") + bytes([kind]) + body


def bmp_peer_header(
    *,
    peer: str = "192.0.2.1",
    peer_type: int = BMP_PEER_GLOBAL,
    post_policy: bool = False,
    adj_rib_out: bool = False,
    legacy_as_path: bool = False,
    distinguisher: str | None = None,
    peer_as: int = 65000,
    bgp_id: str | None = None,
    time_s: float = 1_700_000_000.0,
) -> bytes:
    """A 42-byte BMP per-peer header."""
    addr = ipaddress.ip_address(peer)
    flags = 0x80 if addr.version == 6 else 0
    flags |= (0x40 if post_policy else 0) | (0x20 if legacy_as_path else 0)
    flags |= 0x10 if adj_rib_out else 0
    raw = addr.packed if addr.version == 6 else bytes(12) + addr.packed
    dist = _rd_bytes(distinguisher) if distinguisher else bytes(8)
    sec = int(time_s)
    usec = round((time_s - sec) * 1e6)
    return (
        bytes([peer_type, flags])
        + dist
        + raw
        + peer_as.to_bytes(4, "big")
        + ipaddress.IPv4Address(bgp_id or (peer if addr.version == 4 else "0.0.0.0")).packed
        + sec.to_bytes(4, "big")
        + usec.to_bytes(4, "big")
    )


def bmp_route_monitoring(update: bytes, **peer: object) -> bytes:
    """A Route Monitoring message carrying ``update`` (arguments of :func:`bmp_peer_header`)."""
    return bmp_message(0, bmp_peer_header(**peer) + update)  # type: ignore[arg-type]


def bmp_peer_up(
    *,
    local: str = "192.0.2.254",
    sent: bytes | None = None,
    received: bytes | None = None,
    **peer: object,
) -> bytes:
    """A Peer Up message with the OPENs sent and received (defaults: plain 4-byte AS OPENs)."""
    addr = ipaddress.ip_address(local)
    raw = addr.packed if addr.version == 6 else bytes(12) + addr.packed
    body = (
        bmp_peer_header(**peer)  # type: ignore[arg-type]
        + raw
        + (179).to_bytes(2, "big")
        + (40000).to_bytes(2, "big")
        + (sent if sent is not None else bgp_open(bgp_id=local if addr.version == 4 else "0.0.0.1"))
        + (received if received is not None else bgp_open())
    )
    return bmp_message(3, body)


def bmp_peer_down(*, reason: int = 4, data: bytes = b"", **peer: object) -> bytes:
    """A Peer Down message (reason 4: remote closed, no data)."""
    return bmp_message(2, bmp_peer_header(**peer) + bytes([reason]) + data)  # type: ignore[arg-type]


def bmp_initiation(*, sys_name: str = "pe1", sys_descr: str = "test router") -> bytes:
    """An Initiation message with sysDescr and sysName TLVs."""
    tlvs = b""
    for kind, text in ((1, sys_descr), (2, sys_name)):
        raw = text.encode()
        tlvs += kind.to_bytes(2, "big") + len(raw).to_bytes(2, "big") + raw
    return bmp_message(4, tlvs)


def bmp_termination(*, reason: int = 0) -> bytes:
    """A Termination message with a reason TLV."""
    return bmp_message(
        5, (1).to_bytes(2, "big") + (2).to_bytes(2, "big") + reason.to_bytes(2, "big")
    )


def bmp_statistics(stats: Sequence[tuple[int, int]], **peer: object) -> bytes:
    """A Statistics Report of ``(type, value)`` counters (4-byte values)."""
    body = len(stats).to_bytes(4, "big") + b"".join(
        t.to_bytes(2, "big") + (4).to_bytes(2, "big") + v.to_bytes(4, "big") for t, v in stats
    )
    return bmp_message(1, bmp_peer_header(**peer) + body)  # type: ignore[arg-type]


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Gobgpd:
    """A real gobgpd (Debian ``gobgpd``) with its API on a free loopback port, for tests.

    ``config`` is the TOML configuration; the constructor starts the daemon and
    returns once ``gobgp global`` answers (RuntimeError with its log otherwise).
    ``run(*args)`` runs one ``gobgp`` command against it; ``stop()`` ends it.
    """

    def __init__(self, workdir: Path, config: str, *, timeout: float = 10.0) -> None:
        self.api = free_tcp_port()
        path = workdir / "gobgpd.toml"
        path.write_text(config)
        self.log_path = workdir / "gobgpd.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            ["gobgpd", "-f", str(path), "-p", "--api-hosts", f"127.0.0.1:{self.api}",
             "--pprof-disable"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(self.cli("global"), capture_output=True, text=True, check=False)
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                msg = f"gobgpd did not start: {probe.stderr.strip()}; {self.log_path.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.1)

    def cli(self, *args: str) -> list[str]:
        """The ``gobgp`` command line for ``args`` against this daemon."""
        return ["gobgp", "-u", "127.0.0.1", "-p", str(self.api), *args]

    def run(self, *args: str) -> str:
        """Run one ``gobgp`` command; its standard output (CalledProcessError on failure)."""
        done = subprocess.run(self.cli(*args), capture_output=True, text=True, check=True)
        return done.stdout

    def stop(self) -> None:
        """Terminate the daemon (kill after 5 s) and close its log; safe to call twice."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
