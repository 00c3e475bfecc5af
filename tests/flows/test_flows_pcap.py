from __future__ import annotations

import struct
from pathlib import Path

import pytest

from flowmatrix.errors import DecodeError
from flowmatrix.flows import udp_datagrams

PAYLOAD = bytes(range(256)) * 8  # 2048 octets: needs fragments at MTU 1500


def udp(payload: bytes, dport: int = 2055) -> bytes:
    return struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload


def ipv4(body: bytes, *, ident: int = 1, offset: int = 0, more: bool = False) -> bytes:
    flags = (0x2000 if more else 0) | (offset // 8)
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        ident,
        flags,
        64,
        17,
        0,
        bytes([192, 0, 2, 1]),
        bytes([192, 0, 2, 9]),
    )
    return head + body


def ipv6(body: bytes, next_header: int = 17) -> bytes:
    src = bytes.fromhex("20010db8000000000000000000000001")
    return (
        struct.pack("!IHBB", 0x60000000, len(body), next_header, 64)
        + src
        + src[:-1]
        + b"\x09"
        + body
    )


def ethernet(packet: bytes, ethertype: int = 0x0800, vlan: int | None = None) -> bytes:
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return b"\x02" * 6 + b"\x04" * 6 + tag + struct.pack("!H", ethertype) + packet


def pcap(frames: list[bytes], linktype: int, *, big: bool = False) -> bytes:
    o = ">" if big else "<"
    out = struct.pack(o + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, f in enumerate(frames):
        out += struct.pack(o + "IIII", 1_767_600_000 + i, 500_000, len(f), len(f)) + f
    return out


def pcapng(frames: list[bytes], linktype: int) -> bytes:
    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for f in frames:
        ts = 1_767_600_000_000_000
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
    return out


def fragments_v4(payload: bytes) -> list[bytes]:
    body = udp(payload)
    return [ipv4(body[:1480], ident=7, more=True), ipv4(body[1480:], ident=7, offset=1480)]


def read(tmp_path: Path, data: bytes, **kw: int) -> list[tuple[bytes, str, float]]:
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    return list(udp_datagrams(path, **kw))


def test_ethernet_with_vlan_tag_and_reassembled_ipv4_fragments(tmp_path: Path) -> None:
    frames = [ethernet(p, vlan=101) for p in fragments_v4(PAYLOAD)]
    got = read(tmp_path, pcap(frames, 1))
    assert [(d, src) for d, src, _ in got] == [(PAYLOAD, "192.0.2.1")]
    assert got[0][2] == pytest.approx(1_767_600_001.5)


def test_fragments_out_of_order_are_reassembled(tmp_path: Path) -> None:
    frames = [ethernet(p) for p in reversed(fragments_v4(PAYLOAD))]
    assert [d for d, _, _ in read(tmp_path, pcap(frames, 1, big=True))] == [PAYLOAD]


@pytest.mark.parametrize("linktype", [113, 276, 101, 12])
def test_cooked_and_raw_link_types(tmp_path: Path, linktype: int) -> None:
    packet = ipv4(udp(b"hello"))
    frame = {
        113: struct.pack("!HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800) + packet,
        276: struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, b"\0" * 8) + packet,
        101: packet,
        12: packet,
    }[linktype]
    assert [d for d, _, _ in read(tmp_path, pcap([frame], linktype))] == [b"hello"]


def test_ipv6_with_fragment_header_in_pcapng(tmp_path: Path) -> None:
    body = udp(PAYLOAD)
    first = struct.pack("!BBHI", 17, 0, 1, 99) + body[:1448]
    second = struct.pack("!BBHI", 17, 0, 1448, 99) + body[1448:]
    frames = [ethernet(ipv6(first, 44), 0x86DD), ethernet(ipv6(second, 44), 0x86DD)]
    got = read(tmp_path, pcapng(frames, 1))
    assert [(d, s) for d, s, _ in got] == [(PAYLOAD, "2001:db8::1")]
    assert got[0][2] == pytest.approx(1_767_600_000.0)


def test_port_filter_keeps_only_datagrams_to_that_port(tmp_path: Path) -> None:
    frames = [ethernet(ipv4(udp(b"a", 2055))), ethernet(ipv4(udp(b"b", 4739)))]
    assert [d for d, _, _ in read(tmp_path, pcap(frames, 1), port=4739)] == [b"b"]


def test_a_file_that_is_no_capture_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="not a pcap"):
        read(tmp_path, b"x" * 64)
