"""The generated network: determinism, consistency of config, RD tables and routes."""

from __future__ import annotations

import filecmp
import ipaddress
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest

from flowmatrix.config.xml import load_config
from flowmatrix.errors import SynthError
from flowmatrix.synth import SIZES, SynthNetwork, generate_network, read_network, write_network
from flowmatrix.synth.files import read_table


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_writes_byte_identical_files(tiny_dir: Path, tmp_path: Path) -> None:
    write_network(generate_network("tiny", seed=7), tmp_path)
    assert _tree(tmp_path) == _tree(tiny_dir)


def test_different_seeds_give_different_networks(tiny_dir: Path, tmp_path: Path) -> None:
    write_network(generate_network("tiny", seed=8), tmp_path)
    assert not filecmp.cmp(tmp_path / "routing" / "vpn.csv", tiny_dir / "routing" / "vpn.csv")


def test_unknown_size_and_negative_seed_are_refused() -> None:
    with pytest.raises(SynthError, match="unknown network size"):
        generate_network("huge", seed=1)
    with pytest.raises(SynthError, match="seed"):
        generate_network("tiny", seed=-1)


def test_capacity_scale_changes_only_capacities(tiny: SynthNetwork, tmp_path: Path) -> None:
    write_network(tiny.with_capacity_scale(0.5), tmp_path / "half")
    write_network(tiny, tmp_path / "whole")
    half, whole = _tree(tmp_path / "half"), _tree(tmp_path / "whole")
    changed = {name for name in whole if half[name] != whole[name]}
    assert changed == {
        "network.xml",
        "topology.json",
        "synth/service_nodes.parquet",
        "synth/links.parquet",
    }
    topo_half = json.loads(half["topology.json"])
    topo_whole = json.loads(whole["topology.json"])
    assert [x["capacity_bps"] * 2 for x in topo_half["links"]] == [
        x["capacity_bps"] for x in topo_whole["links"]
    ]
    assert [x["capacity_bps"] * 2 for x in topo_half["service_nodes"]] == [
        x["capacity_bps"] for x in topo_whole["service_nodes"]
    ]
    assert load_config(tmp_path / "half" / "network.xml").service_nodes[0].capacity_bps == (
        tiny.config.service_nodes[0].capacity_bps / 2
    )
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(SynthError, match="capacity scale"):
            tiny.with_capacity_scale(bad)


def test_config_xml_round_trips_to_the_generated_config(tiny: SynthNetwork, tiny_dir: Path) -> None:
    assert load_config([tiny_dir / "network.xml"]) == tiny.config


def test_read_network_gives_back_the_same_knowledge(tiny: SynthNetwork, tiny_dir: Path) -> None:
    back = read_network(tiny_dir)
    assert back.config == tiny.config
    assert back.prefixes.equals(tiny.prefixes)
    assert back.attachments.equals(tiny.attachments)


def test_read_network_refuses_a_directory_without_a_network(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="no generated network"):
        read_network(tmp_path)


def test_manifests_name_size_seed_counts_and_taken_at(tiny_dir: Path) -> None:
    synth = json.loads((tiny_dir / "synth" / "manifest.json").read_text())
    assert (synth["size"], synth["seed"], synth["counts"]["pes"]) == ("tiny", 7, 6)
    routing = json.loads((tiny_dir / "routing" / "manifest.json").read_text())
    assert routing["format"] == "flowmatrix-routing/1"
    assert routing["taken_at"].endswith("Z")
    assert set(routing["pes"]) == {pe.name for pe in load_config([tiny_dir / "network.xml"]).pes}
    for tables in routing["pes"].values():
        for kind in ("rd", "connected", "bgp"):
            assert (tiny_dir / "routing" / tables[kind]).is_file()


def test_topology_has_the_fixed_format_and_dual_homed_pes(tiny_dir: Path) -> None:
    topo = json.loads((tiny_dir / "topology.json").read_text())
    assert topo["format"] == "flowmatrix-topology/1"
    names = {n["name"] for n in topo["nodes"]}
    assert {n["service_node"] for n in topo["nodes"]} == {s["name"] for s in topo["service_nodes"]}
    for link in topo["links"]:
        assert {link["a"], link["b"]} <= names
        assert link["capacity_bps"] > 0
        assert link["metric_ab"] > 0
        assert link["metric_ba"] > 0
        assert link["name"] == f"{link['a']}--{link['b']}"
    for pe in (n["name"] for n in topo["nodes"] if n["role"] == "pe"):
        assert sum(pe in (link["a"], link["b"]) for link in topo["links"]) == 2


def test_every_rd_table_matches_the_pe_interfaces_in_the_config(tiny_dir: Path) -> None:
    config = load_config([tiny_dir / "network.xml"])
    for pe in config.pes:
        rows = read_table(tiny_dir / "routing" / "pe" / pe.name / "rd.csv").to_pylist()
        interfaces = {i.if_index: i.name for i in pe.interfaces}
        assert rows
        for row in rows:
            assert interfaces[row["if_index"]] == row["interface"]
            assert row["interface"].endswith(f".{row['vlan']}")
            assert bool(row["vrf"]) == bool(row["rd"]) == bool(row["import_rts"])
        assert len({r["vlan"] for r in rows}) == len(rows)


def test_per_pe_rds_are_distinct_per_pe_and_per_vpn_rds_shared(tiny_dir: Path) -> None:
    seen: dict[str, set[str]] = {}
    for path in (tiny_dir / "routing" / "pe").glob("*/rd.csv"):
        for row in read_table(path).to_pylist():
            if row["vrf"]:
                seen.setdefault(row["vrf"], set()).add(f"{path.parent.name} {row['rd']}")
    styles = {"per-pe": 0, "per-vpn": 0}
    for entries in seen.values():
        pes = {e.split()[0] for e in entries}
        rds = {e.split()[1] for e in entries}
        if len(rds) == 1 and len(pes) > 1:
            styles["per-vpn"] += 1
        elif len(rds) == len(pes):
            styles["per-pe"] += 1
    assert styles["per-pe"] >= 1
    assert styles["per-vpn"] >= 1
    assert sum(styles.values()) == len(seen)


def _next_hop_pe(config_path: Path) -> tuple[dict[str, str], list[tuple[object, str]]]:
    config = load_config([config_path])
    own: dict[str, str] = {}
    for pe in config.pes:
        own[str(pe.loopback)] = pe.name
        own[f"::ffff:{pe.loopback}"] = pe.name
        if pe.loopback6 is not None:
            own[str(pe.loopback6)] = pe.name
    external = [(hop.prefix, hop.pe) for hop in config.external_next_hops]
    return own, external


def _pe_of(hop: str, own: dict[str, str], external: list[tuple[object, str]]) -> str | None:
    if hop in own:
        return own[hop]
    address = ipaddress.ip_address(hop)
    for prefix, pe in external:
        if address in prefix:  # type: ignore[operator]
            return pe
    return None


def test_every_next_hop_is_a_pe_loopback_or_a_mapped_external_hop(tiny_dir: Path) -> None:
    own, external = _next_hop_pe(tiny_dir / "network.xml")
    kinds = {"internal": 0, "external": 0, "mapped6": 0}
    for name in ("vpn.csv", "global.csv"):
        for row in read_table(tiny_dir / "routing" / name).to_pylist():
            assert _pe_of(row["next_hop"], own, external) is not None, row
            kinds["internal" if row["next_hop"] in own else "external"] += 1
            if ":" in row["prefix"] and "rd" in row:
                assert row["next_hop"].startswith("::ffff:"), row
                kinds["mapped6"] += 1
            if row["next_hop"] in own and row["next_hop"] not in ("",):
                assert row["originator"] == own[row["next_hop"]]
    assert all(kinds.values()), kinds


def test_multihomed_sites_have_two_paths_with_the_primary_preferred(tiny_dir: Path) -> None:
    rows = read_table(tiny_dir / "routing" / "vpn.csv").to_pylist()
    by_prefix: dict[tuple[str, str], list[dict[str, object]]] = {}
    rts = {r["rd"]: r["route_targets"] for r in rows}
    for row in rows:
        by_prefix.setdefault((str(rts[row["rd"]]), row["prefix"]), []).append(row)
    multi = [paths for paths in by_prefix.values() if len({p["originator"] for p in paths}) == 2]
    assert multi
    same_rd = different_rd = 0
    for paths in multi:
        assert sorted(p["local_pref"] for p in paths) == [100, 200]
        if paths[0]["rd"] == paths[1]["rd"]:
            same_rd += 1
            assert [p["best"] for p in paths if p["local_pref"] == 200] == [True]
            assert [p["best"] for p in paths if p["local_pref"] == 100] == [False]
        else:
            different_rd += 1
    assert same_rd
    assert different_rd


def test_vrfs_reuse_address_space_but_no_pe_has_overlapping_sites(tiny_dir: Path) -> None:
    rows = read_table(tiny_dir / "routing" / "vpn.csv").to_pylist()
    nets = [
        (ipaddress.ip_network(r["prefix"]), r["route_targets"].split()[0])
        for r in rows
        if r["prefix"].startswith("10.")
    ]
    assert any(a.overlaps(b) and va != vb for a, va in nets for b, vb in nets)
    for path in (tiny_dir / "routing" / "pe").glob("*/bgp.csv"):
        pe = path.parent.name
        local = [
            ipaddress.ip_network(r["prefix"])
            for r in read_table(path).to_pylist()
            if r["originator"] == pe and r["prefix"] not in ("0.0.0.0/0", "::/0")
        ]
        local += [
            ipaddress.ip_network(r["prefix"])
            for r in read_table(path.parent / "connected.csv").to_pylist()
            if r["kind"] == "connected"
        ]
        unique = sorted(set(local), key=lambda n: (n.version, n.network_address, n.prefixlen))
        for a, b in itertools.pairwise(unique):
            if a.version == b.version:
                assert not a.overlaps(b), (pe, a, b)  # type: ignore[arg-type]


def test_pe_bgp_tables_hold_imported_routes_under_the_local_rd(tiny_dir: Path) -> None:
    for pe_dir in (tiny_dir / "routing" / "pe").iterdir():
        rd_of = {r["vrf"]: r["rd"] for r in read_table(pe_dir / "rd.csv").to_pylist() if r["vrf"]}
        imports = {
            r["vrf"]: set(r["import_rts"].split())
            for r in read_table(pe_dir / "rd.csv").to_pylist()
            if r["vrf"]
        }
        for row in read_table(pe_dir / "bgp.csv").to_pylist():
            assert row["rd"] == rd_of[row["vrf"]]
            own = row["originator"] == pe_dir.name
            assert own or set(row["route_targets"].split()) & imports[row["vrf"]]


def test_the_hub_advertises_a_default_route_that_spokes_import(tiny_dir: Path) -> None:
    defaults = [
        r
        for r in read_table(tiny_dir / "routing" / "vpn.csv").to_pylist()
        if r["prefix"] == "0.0.0.0/0"
    ]
    assert defaults
    hub_rt = defaults[0]["route_targets"]
    spokes = [
        r
        for path in (tiny_dir / "routing" / "pe").glob("*/rd.csv")
        for r in read_table(path).to_pylist()
        if r["import_rts"] == hub_rt and r["export_rts"] != hub_rt
    ]
    assert spokes


def test_each_size_names_its_scale() -> None:
    assert SIZES["tiny"].service_nodes * SIZES["tiny"].pes_per_node == 6
    assert SIZES["large"].service_nodes * SIZES["large"].pes_per_node == 1000
    assert SIZES["large"].vrfs == 1000


def test_medium_network_generates_and_writes_in_reasonable_time(tmp_path: Path) -> None:
    began = time.perf_counter()
    counts = write_network(generate_network("medium", seed=2), tmp_path)
    elapsed = time.perf_counter() - began
    assert counts["pes"] == 100
    assert counts["vrfs"] == 100
    assert 40_000 <= counts["vpn_routes"] <= 80_000
    assert elapsed < 20, elapsed


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 7))
def test_large_network_fits_its_address_plan_for_any_seed(seed: int) -> None:
    net = generate_network("large", seed)
    assert net.config.name == "synth-large"
    assert len(net.config.pes) == 1000


def test_internet_prefixes_neither_overlap_nor_fall_in_excluded_octets() -> None:
    prefixes = generate_network("medium", 1).prefixes
    origin = np.asarray(prefixes["origin"].to_numpy(zero_copy_only=False))
    family = prefixes["family"].to_numpy()
    v4 = (origin == "internet") & (family == 4)
    lo = prefixes["lo"].to_numpy()[v4].astype(np.int64)
    length = prefixes["length"].to_numpy()[v4].astype(np.int64)
    assert len(lo) == SIZES["medium"].internet_routes
    order = np.argsort(lo)
    lo, length = lo[order], length[order]
    end = lo + (1 << (32 - length))
    assert (end[:-1] <= lo[1:]).all()
    assert not np.isin(lo >> 24, [0, 10, 100, 127, 169, 172, 185, 192, 198, 203]).any()
