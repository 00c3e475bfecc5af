import json
from pathlib import Path

import pytest

from flowmatrix.capacity.demands import load_matrix
from flowmatrix.capacity.topology import (
    Link,
    Node,
    ServiceNode,
    build_topology,
    dump_topology,
    load_topology,
    read_native,
)
from flowmatrix.errors import CapacityError

DATA = Path(__file__).parent / "data"
ABILENE_NODES = {
    "ATLAM5",
    "ATLAng",
    "CHINng",
    "DNVRng",
    "HSTNng",
    "IPLSng",
    "KSCYng",
    "LOSAng",
    "NYCMng",
    "SNVAng",
    "STTLng",
    "WASHng",
}


@pytest.mark.parametrize("name", ["abilene.txt", "abilene.xml", "abilene.graph", "abilene.json"])
def test_abilene_reads_as_12_routers_and_15_links_in_every_format(name):
    topo = load_topology(DATA / name)
    assert {n.name for n in topo.nodes} == ABILENE_NODES
    assert len(topo.links) == 15
    caps = sorted(link.capacity_bps for link in topo.links)
    assert caps[0] == pytest.approx(2.48e9)
    assert caps[-1] == pytest.approx(9.92e9)


def test_zoo_graphml_reads_cities_speeds_and_positions():
    topo = load_topology(DATA / "abilene.graphml")
    assert len(topo.nodes) == 11
    assert len(topo.links) == 14
    assert topo.name == "Abilene"
    assert all(link.capacity_bps == 1e10 for link in topo.links)
    ny = topo.nodes[topo.node_index["New York"]]
    assert ny.position == pytest.approx((-74.00597, 40.71427))


def test_zoo_graphml_can_use_distances_as_metrics():
    from flowmatrix.capacity.formats import read_zoo_graphml

    topo = read_zoo_graphml(DATA / "abilene.graphml", metric="distance")
    link = next(lk for lk in topo.links if {lk.a, lk.b} == {"New York", "Chicago"})
    assert 1100 < link.metric_ab < 1200  # great circle New York–Chicago ≈ 1145 km


def test_sndlib_and_repetita_demands_agree_in_bits_per_second():
    topo = load_topology(DATA / "abilene.graph")
    native = load_matrix(DATA / "abilene.txt")
    xml = load_matrix(DATA / "abilene.xml")
    repetita = load_matrix(DATA / "abilene.demands", node_names=[n.name for n in topo.nodes])
    assert len(native) == len(xml) == len(repetita) == 132
    assert native.total_bps == pytest.approx(xml.total_bps)
    assert repetita.total_bps == pytest.approx(native.total_bps, rel=1e-5)


def test_native_json_round_trips_through_dump():
    topo = load_topology(DATA / "abilene.json")
    again = read_native(dump_topology(topo))
    assert again.nodes == topo.nodes
    assert again.links == topo.links
    assert topo.srlgs["duct-atl"]


def test_native_yaml_is_read(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "format: flowmatrix-topology/1\n"
        "service_nodes: [{name: PAR, capacity_bps: 4.0e+11}]\n"
        "nodes:\n"
        "  - {name: par-pe1, service_node: PAR, role: pe}\n"
        "  - {name: par-p1, service_node: PAR, role: p}\n"
        "links:\n"
        "  - {name: l1, a: par-pe1, b: par-p1, capacity_bps: 1.0e+10, metric_ab: 10, metric_ba: 20,"
        " srlgs: [duct-3]}\n"
    )
    topo = load_topology(path)
    assert topo.arcs.metric.tolist() == [10.0, 20.0]
    assert topo.service_nodes[0].capacity_bps == 4e11


def _native(nodes, links):
    return {"format": "flowmatrix-topology/1", "nodes": nodes, "links": links}


NODES = [{"name": "a", "service_node": "A"}, {"name": "b", "service_node": "B"}]
LINK = {"name": "ab", "a": "a", "b": "b", "capacity_bps": 1e10, "metric_ab": 1, "metric_ba": 1}


@pytest.mark.parametrize(
    ("nodes", "links", "element", "words"),
    [
        (NODES, [{**LINK, "b": "zz"}], "link[name=ab]", "dangling"),
        (NODES, [{**LINK, "capacity_bps": 0}], "link[name=ab]", "capacity 0"),
        (NODES, [{**LINK, "metric_ba": -5}], "link[name=ab]", "metric_ba -5"),
        (NODES, [{**LINK, "metric_ab": 0}], "link[name=ab]", "metric_ab is 0"),
        ([*NODES, {"name": "a"}], [LINK], "node[name=a]", "duplicate node"),
        (NODES, [LINK, LINK], "link[name=ab]", "duplicate link"),
        (NODES, [{**LINK, "capacity_bps": "fast"}], "link[name=ab]", "not a number"),
    ],
)
def test_broken_native_topology_names_file_and_element(tmp_path, nodes, links, element, words):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(_native(nodes, links)))
    with pytest.raises(CapacityError) as info:
        load_topology(path)
    message = str(info.value)
    assert str(path) in message
    assert element in message
    assert words in message


def test_wrong_format_key_is_refused(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "other/2", "nodes": []}))
    with pytest.raises(CapacityError, match="flowmatrix-topology/1"):
        load_topology(path)


def test_sndlib_link_to_unknown_node_names_line_and_link(tmp_path):
    text = (DATA / "abilene.txt").read_text().replace("( ATLAM5 ATLAng )", "( ATLAM5 NOWHERE )", 1)
    path = tmp_path / "broken.txt"
    path.write_text(text)
    with pytest.raises(CapacityError, match=r"link\[name=ATLAM5_ATLAng\].*dangling"):
        load_topology(path)


def test_repetita_edge_without_its_reverse_is_refused(tmp_path):
    lines = (DATA / "abilene.graph").read_text().splitlines()
    lines = [ln for ln in lines if not ln.startswith("edge_1 ")]
    lines = [ln.replace("EDGES 30", "EDGES 29") for ln in lines]
    path = tmp_path / "x.graph"
    path.write_text("\n".join(lines))
    with pytest.raises(CapacityError, match=r"x\.graph:\d+: edge\[label=edge_0\]: no edge back"):
        load_topology(path)


def test_repetita_dangling_node_index_is_refused(tmp_path):
    text = (DATA / "abilene.graph").read_text().replace("edge_0 0 1", "edge_0 0 99")
    path = tmp_path / "y.graph"
    path.write_text(text)
    with pytest.raises(CapacityError, match=r"edge\[label=edge_0\]: dangling"):
        load_topology(path)


def test_sndlib_xml_zero_capacity_without_module_is_refused(tmp_path):
    text = (DATA / "abilene.xml").read_text()
    text = text.replace("<capacity>9920.0</capacity>", "<capacity>0.0</capacity>", 1)
    text = text.replace("<capacity>40000.0</capacity>", "", 1)
    path = tmp_path / "z.xml"
    path.write_text(text)
    with pytest.raises(CapacityError, match=r"z\.xml: link\[name=ATLAM5_ATLAng\]: capacity 0"):
        load_topology(path)


def test_unknown_extension_is_refused(tmp_path):
    path = tmp_path / "t.bin"
    path.write_text("hello")
    with pytest.raises(CapacityError, match="unknown topology format"):
        load_topology(path)


def test_service_node_capacity_is_derived_from_its_trunks_when_not_configured():
    topo = build_topology(
        [Node("a1", "A"), Node("a2", "A"), Node("b1", "B"), Node("c1", "C")],
        [
            Link("a1-a2", "a1", "a2", 100.0, 1, 1),
            Link("a1-b1", "a1", "b1", 10.0, 1, 1),
            Link("a2-c1", "a2", "c1", 40.0, 1, 1),
        ],
        [ServiceNode("C", 7.0)],
    )
    caps = dict(zip([s.name for s in topo.service_nodes], topo.service_capacity_bps, strict=True))
    assert caps == {"C": 7.0, "A": 50.0, "B": 10.0}
