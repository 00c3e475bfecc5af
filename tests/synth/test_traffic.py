"""Generated traffic: pcap structure, ground truth sums, egress cases, determinism."""

from __future__ import annotations

import datetime as dt
import ipaddress
import struct
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from flowmatrix.config.xml import load_config
from flowmatrix.errors import SynthError
from flowmatrix.synth import CASES, TrafficSummary, generate_traffic, read_table


def _packets(path: Path) -> list[tuple[int, int, bytes]]:
    """(seconds, microseconds, frame) of every record of a classic pcap file."""
    data = path.read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    out = []
    offset = 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, offset)
        assert incl == orig
        out.append((sec, usec, data[offset + 16 : offset + 16 + incl]))
        offset += 16 + incl
    assert offset == len(data)
    return out


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_pcaps_are_tagged_ethernet_with_valid_checksums_in_time_order(
    tiny_traffic: TrafficSummary,
) -> None:
    seen = {4: 0, 6: 0}
    for pe, path in tiny_traffic.pcaps.items():
        vlans = (
            {r["vlan"] for r in read_table(path.parent.parent / "truth" / "if_pe.csv").to_pylist()}
            if False
            else None
        )
        del vlans
        times = []
        for sec, usec, frame in _packets(path):
            times.append(sec * 1_000_000 + usec)
            assert len(frame) >= 60
            tpid, tci, ethertype = struct.unpack_from("!HHH", frame, 12)
            assert tpid == 0x8100
            assert 101 <= tci & 0xFFF <= 4094
            ip = frame[18:]
            if ethertype == 0x0800:
                assert ip[0] == 0x45
                total = struct.unpack_from("!H", ip, 2)[0]
                assert total == len(ip) >= 64
                assert _checksum(ip[:20]) == 0xFFFF
                pseudo = ip[12:20] + struct.pack("!BBH", 0, ip[9], total - 20)
                assert _checksum(pseudo + ip[20:]) == 0xFFFF
                seen[4] += 1
            else:
                assert ethertype == 0x86DD
                assert ip[0] >> 4 == 6
                plen = struct.unpack_from("!H", ip, 4)[0]
                assert plen + 40 == len(ip) >= 64
                pseudo = ip[8:40] + struct.pack("!IxxxB", plen, ip[6])
                assert _checksum(pseudo + ip[40:]) == 0xFFFF
                seen[6] += 1
        assert times == sorted(times), pe
    assert seen[4]
    assert seen[6]


def test_truth_totals_equal_each_pcap_packets_and_ip_bytes(tiny_traffic: TrafficSummary) -> None:
    flows = pq.read_table(tiny_traffic.truth / "flows.parquet")
    for pe, path in tiny_traffic.pcaps.items():
        packets = _packets(path)
        mine = flows.filter(pc.equal(flows.column("ingress_pe"), pe))
        assert pc.sum(mine.column("packets")).as_py() == len(packets)
        assert pc.sum(mine.column("bytes")).as_py() == sum(len(f) - 18 for _, _, f in packets)
    assert pc.sum(flows.column("packets")).as_py() == tiny_traffic.packets
    pe_pe = read_table(tiny_traffic.truth / "pe_pe.csv")
    assert pc.sum(pe_pe.column("bytes")).as_py() == tiny_traffic.bytes


def test_each_flow_has_a_unique_five_tuple_and_one_minute(tiny_traffic: TrafficSummary) -> None:
    flows = pq.read_table(tiny_traffic.truth / "flows.parquet").to_pylist()
    keys = {
        (f["ingress_pe"], f["src"], f["dst"], f["protocol"], f["src_port"], f["dst_port"])
        for f in flows
    }
    assert len(keys) == len(flows)
    for f in flows:
        assert f["first_us"] // 60_000_000 == f["last_us"] // 60_000_000
        assert f["src_port"] >= 32768 > f["dst_port"]


def test_every_egress_case_is_present_with_ipv6_in_vpns(tiny_traffic: TrafficSummary) -> None:
    assert set(tiny_traffic.cases) == set(CASES)
    assert all(tiny_traffic.cases.values()), tiny_traffic.cases
    flows = pq.read_table(tiny_traffic.truth / "flows.parquet")
    v6 = flows.filter(pc.equal(flows.column("ip_version"), 6))
    assert pc.sum(pc.not_equal(v6.column("vrf"), "")).as_py() > 0


def _lpm(rows: list[dict[str, object]], address: str) -> dict[str, object] | None:
    ip = ipaddress.ip_address(address)
    best: tuple[int, dict[str, object]] | None = None
    for row in rows:
        net = ipaddress.ip_network(str(row["prefix"]))
        if net.version == ip.version and ip in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, row)
    return best[1] if best else None


def test_truth_egress_agrees_with_a_lookup_in_the_written_tables(
    tiny_dir: Path, tiny_traffic: TrafficSummary
) -> None:
    config = load_config([tiny_dir / "network.xml"])
    owner = {str(pe.loopback): pe.name for pe in config.pes}
    owner |= {f"::ffff:{pe.loopback}": pe.name for pe in config.pes}
    owner |= {str(pe.loopback6): pe.name for pe in config.pes}
    routing = tiny_dir / "routing"
    global_rows = [r for r in read_table(routing / "global.csv").to_pylist() if r["best"]]

    def pe_of(hop: str) -> str:
        if hop in owner:
            return owner[hop]
        ip = ipaddress.ip_address(hop)
        return next(h.pe for h in config.external_next_hops if ip in h.prefix)

    tables = {}
    for pe in config.pes:
        d = routing / "pe" / pe.name
        tables[pe.name] = (
            {r["if_index"]: r["vrf"] for r in read_table(d / "rd.csv").to_pylist()},
            [r for r in read_table(d / "bgp.csv").to_pylist() if r["best"]],
            read_table(d / "connected.csv").to_pylist(),
        )
    flows = pq.read_table(tiny_traffic.truth / "flows.parquet").to_pylist()
    for flow in flows[:600]:
        vrf_of, bgp, connected = tables[flow["ingress_pe"]]
        vrf = vrf_of[flow["ingress_if_index"]]
        assert vrf == flow["vrf"]
        rows = [r for r in bgp if r["vrf"] == vrf] if vrf else global_rows
        local = [r for r in connected if r["vrf"] == vrf and not r["in_bgp"]]
        route = _lpm([*rows, *local], flow["dst"])
        assert route is not None, flow
        egress = flow["ingress_pe"] if "kind" in route else pe_of(str(route["next_hop"]))
        assert egress == flow["egress_pe"], (flow, route)


def test_same_seed_gives_identical_pcaps_and_truth(
    tiny_dir: Path, tiny_traffic: TrafficSummary, tmp_path: Path
) -> None:
    again = generate_traffic(tiny_dir, tmp_path, seed=3, flows=3000)
    for pe, path in tiny_traffic.pcaps.items():
        assert again.pcaps[pe].read_bytes() == path.read_bytes()
    assert (tmp_path / "truth" / "pe_pe.csv").read_bytes() == (
        tiny_traffic.truth / "pe_pe.csv"
    ).read_bytes()


def test_a_start_off_the_minute_still_keeps_flows_inside_minutes(
    tiny_dir: Path, tmp_path: Path
) -> None:
    start = dt.datetime(2026, 1, 6, 10, 0, 30, tzinfo=dt.UTC)
    generate_traffic(tiny_dir, tmp_path, seed=1, flows=300, start=start, duration_s=90)
    flows = pq.read_table(tmp_path / "truth" / "flows.parquet")
    first = np.asarray(flows.column("first_us"))
    last = np.asarray(flows.column("last_us"))
    t0 = int(start.timestamp() * 1e6)
    assert (first >= t0).all()
    assert (last < t0 + 90_000_000).all()
    assert (first // 60_000_000 == last // 60_000_000).all()


def test_pretag_maps_give_the_ifindex_of_each_vlan(
    tiny_dir: Path, tiny_traffic: TrafficSummary
) -> None:
    pmacct = tiny_traffic.truth.parent / "pmacct"
    for rd_path in (tiny_dir / "routing" / "pe").glob("*/rd.csv"):
        lines = (pmacct / f"{rd_path.parent.name}.pretag.map").read_text().splitlines()
        expected = [
            f"set_tag={r['if_index']} filter='vlan {r['vlan']}'"
            for r in read_table(rd_path).to_pylist()
        ]
        assert [line for line in lines if not line.startswith("!")] == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flows": 0}, "flows"),
        ({"duration_s": 0}, "duration"),
        ({"start": dt.datetime(2026, 2, 1)}, "time zone"),
        ({"start": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "routing tables"),
    ],
)
def test_impossible_traffic_requests_are_refused(
    tiny_dir: Path, tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(SynthError, match=message):
        generate_traffic(tiny_dir, tmp_path, **options)  # type: ignore[arg-type]
