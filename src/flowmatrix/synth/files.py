"""Write a generated network to a directory, and read back what traffic generation needs.

Layout of the directory (formats in ``docs/synth.md``)::

    network.xml                 the configuration (flowmatrix.config.xml)
    topology.json               service nodes, routers, links (flowmatrix-topology/1)
    routing/manifest.json       format version, taken_at and path of every table set
    routing/vpn.csv|.parquet    VPNv4/VPNv6 table as the route reflector sees it
    routing/global.csv|.parquet global IPv4/IPv6 table
    routing/pe/<pe>/rd.csv          the PE's RD table (interface → VRF → RD, RTs)
    routing/pe/<pe>/connected.csv   the PE's connected/static VRF and global prefixes
    routing/pe/<pe>/bgp.csv         the PE's own VPN BGP table (tiny and medium only)
    synth/manifest.json         size, seed, counts, generator version
    synth/*.parquet             the generator's knowledge (read by read_network)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowmatrix.errors import SynthError
from flowmatrix.synth.network import (
    GENERATOR_VERSION,
    SIZES,
    TAKEN_AT,
    SynthNetwork,
    build_config,
)
from flowmatrix.synth.tables import (
    CONNECTED_COLUMNS,
    GLOBAL_COLUMNS,
    PE_BGP_COLUMNS,
    RD_COLUMNS,
    VPN_COLUMNS,
    RoutingTables,
    build_routing,
)

__all__ = [
    "ROUTING_FORMAT",
    "SYNTH_FORMAT",
    "TOPOLOGY_FORMAT",
    "read_network",
    "read_table",
    "write_network",
]

#: ``format`` of topology.json
TOPOLOGY_FORMAT = "flowmatrix-topology/1"
#: ``format`` of routing/manifest.json
ROUTING_FORMAT = "flowmatrix-routing/1"
#: ``format`` of synth/manifest.json
SYNTH_FORMAT = "flowmatrix-synth/1"
#: the knowledge tables stored under synth/, in order
_KNOWLEDGE = (
    "service_nodes",
    "routers",
    "links",
    "pes",
    "vrfs",
    "attachments",
    "sites",
    "prefixes",
    "external_paths",
)
_CSV_OPTIONS = pacsv.WriteOptions(quoting_style="none")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` as CSV or Parquet, as the suffix of ``path`` says."""
    if path.suffix == ".parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        pacsv.write_csv(table, path, _CSV_OPTIONS)


def read_table(path: Path) -> pa.Table:
    """A routing table file (CSV or Parquet) as a pyarrow table, text columns as strings.

    CSV columns are typed as they are written (integers, ``true``/``false``
    booleans, everything else text), so a CSV and a Parquet file of one table
    read back equal.
    """
    if path.suffix == ".parquet":
        return pq.read_table(path)
    types = {
        "if_index": pa.int32(),
        "vlan": pa.int32(),
        "local_pref": pa.int32(),
        "med": pa.int32(),
        "as_path_len": pa.int32(),
        "best": pa.bool_(),
        "in_bgp": pa.bool_(),
    }
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    convert = pacsv.ConvertOptions(
        column_types={c: types.get(c, pa.string()) for c in header},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(path, convert_options=convert)


def write_network(net: SynthNetwork, out: Path) -> dict[str, int]:
    """Write ``net``'s configuration, topology, routing tables and knowledge under ``out``.

    Returns the manifest's counts (PEs, VRFs, routes, sites, …).
    """
    from flowmatrix.config.xml import write_config

    out.mkdir(parents=True, exist_ok=True)
    write_config(net.config, out / "network.xml")
    _write_json(out / "topology.json", _topology(net))
    routing = build_routing(net)
    counts = _write_routing(net, routing, out / "routing")
    knowledge = out / "synth"
    knowledge.mkdir(exist_ok=True)
    for name in _KNOWLEDGE:
        pq.write_table(getattr(net, name), knowledge / f"{name}.parquet", compression="zstd")
    counts = {**net.counts(), **counts}
    _write_json(
        knowledge / "manifest.json",
        {
            "format": SYNTH_FORMAT,
            "generator_version": GENERATOR_VERSION,
            "size": net.size,
            "seed": net.seed,
            "network": net.config.name,
            "asn": net.config.asn,
            "counts": counts,
            "tables": [f"{name}.parquet" for name in _KNOWLEDGE],
        },
    )
    return counts


def _topology(net: SynthNetwork) -> dict[str, Any]:
    links = net.links.to_pylist()
    return {
        "format": TOPOLOGY_FORMAT,
        "service_nodes": net.service_nodes.to_pylist(),
        "nodes": net.routers.to_pylist(),
        "links": links,
    }


def _write_routing(net: SynthNetwork, routing: RoutingTables, out: Path) -> dict[str, int]:
    big = net.size == "large"
    ext = ".parquet" if big else ".csv"
    out.mkdir(parents=True, exist_ok=True)
    taken_at = TAKEN_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
    _write_table(routing.vpn.select(list(VPN_COLUMNS)), out / f"vpn{ext}")
    _write_table(routing.global_.select(list(GLOBAL_COLUMNS)), out / f"global{ext}")
    pe_names = net.pes.column("name").to_pylist()
    per_pe: dict[str, dict[str, str]] = {}
    tables: list[tuple[str, pa.Table, tuple[str, ...]]] = [
        ("rd", routing.rd, RD_COLUMNS),
        ("connected", routing.connected, CONNECTED_COLUMNS),
    ]
    if routing.pe_bgp is not None:
        tables.append(("bgp", routing.pe_bgp, PE_BGP_COLUMNS))
    for name in pe_names:
        (out / "pe" / name).mkdir(parents=True, exist_ok=True)
        per_pe[name] = {"taken_at": taken_at}
    for kind, table, columns in tables:
        pe = table.column("pe").to_numpy()
        bounds = _bounds(pe, len(pe_names))
        body = table.select(list(columns))
        for i, name in enumerate(pe_names):
            path = out / "pe" / name / f"{kind}.csv"
            _write_table(body.slice(bounds[i], bounds[i + 1] - bounds[i]), path)
            per_pe[name][kind] = path.relative_to(out).as_posix()
    manifest = {
        "format": ROUTING_FORMAT,
        "asn": net.config.asn,
        "taken_at": taken_at,
        "route_reflector": {
            "taken_at": taken_at,
            "vpn": f"vpn{ext}",
            "global": f"global{ext}",
        },
        "pes": per_pe,
    }
    _write_json(out / "manifest.json", manifest)
    counts = {
        "vpn_routes": routing.vpn.num_rows,
        "vpnv6_routes": _count_v6(routing.vpn),
        "global_routes": routing.global_.num_rows,
        "rd_rows": routing.rd.num_rows,
        "connected_rows": routing.connected.num_rows,
    }
    if routing.pe_bgp is not None:
        counts["pe_bgp_rows"] = routing.pe_bgp.num_rows
    return counts


def _count_v6(table: pa.Table) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.match_substring(table.column("prefix"), ":")).as_py() or 0)


def _bounds(sorted_keys: Any, n: int) -> list[int]:
    import numpy as np

    keys = np.asarray(sorted_keys)
    if len(keys) and (np.diff(keys) < 0).any():
        msg = "per-PE rows are not grouped by PE"
        raise SynthError(msg)
    return [int(x) for x in np.searchsorted(keys, np.arange(n + 1))]


def read_network(directory: Path) -> SynthNetwork:
    """The generated network written under ``directory`` (knowledge tables and config)."""
    knowledge = directory / "synth"
    manifest_path = knowledge / "manifest.json"
    if not manifest_path.is_file():
        msg = f"{directory} holds no generated network (no synth/manifest.json)"
        raise SynthError(msg)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != SYNTH_FORMAT:
        msg = f"{manifest_path}: format {manifest.get('format')!r}, expected {SYNTH_FORMAT!r}"
        raise SynthError(msg)
    if manifest.get("size") not in SIZES:
        msg = f"{manifest_path}: unknown size {manifest.get('size')!r}"
        raise SynthError(msg)
    tables = {name: pq.read_table(knowledge / f"{name}.parquet") for name in _KNOWLEDGE}
    config = build_config(
        tables["service_nodes"], tables["pes"], tables["attachments"], name=manifest["network"]
    )
    return SynthNetwork(size=manifest["size"], seed=int(manifest["seed"]), config=config, **tables)
