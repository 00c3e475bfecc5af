import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.capacity.demands import make_demands
from flowmatrix.capacity.routing import route, service_node_matrix
from flowmatrix.capacity.topology import Link, Node, build_topology


def topo(links, nodes=None, roles=None):
    names = nodes or sorted({x for lk in links for x in lk[1:3]})
    roles = roles or {}
    return build_topology(
        [Node(n, n.upper(), roles.get(n, "pe")) for n in names],
        [Link(*lk) for lk in links],
    )


def load_of(routing, name, src, dst):
    t = routing.topology
    for a in range(len(t.arcs)):
        if t.links[a // 2].name == name and t.arc_ends(a) == (src, dst):
            return float(routing.load_bps[a])
    raise AssertionError(name)


def test_diamond_splits_equally_over_two_equal_cost_paths():
    t = topo(
        [
            ("sa", "s", "a", 10, 1, 1),
            ("sb", "s", "b", 10, 1, 1),
            ("at", "a", "t", 10, 1, 1),
            ("bt", "b", "t", 10, 1, 1),
        ]
    )
    r = route(t, make_demands(["s"], ["t"], [8.0]))
    hops = [("sa", "s", "a"), ("sb", "s", "b"), ("at", "a", "t"), ("bt", "b", "t")]
    assert [load_of(r, n, x, y) for n, x, y in hops] == [4, 4, 4, 4]
    assert load_of(r, "sa", "a", "s") == 0
    assert r.max_utilization == pytest.approx(0.4)


def test_split_is_per_hop_not_per_path():
    # three equal-cost paths s-a-t (2+1), s-b-c1-t and s-b-c2-t (1+1+1):
    # per path each would get 1/3; routers split per hop: s gives 1/2 to a and 1/2 to b
    t = topo(
        [
            ("sa", "s", "a", 10, 2, 2),
            ("at", "a", "t", 10, 1, 1),
            ("sb", "s", "b", 10, 1, 1),
            ("bc1", "b", "c1", 10, 1, 1),
            ("bc2", "b", "c2", 10, 1, 1),
            ("c1t", "c1", "t", 10, 1, 1),
            ("c2t", "c2", "t", 10, 1, 1),
        ]
    )
    r = route(t, make_demands(["s"], ["t"], [12.0]))
    assert load_of(r, "sa", "s", "a") == pytest.approx(6.0)
    assert load_of(r, "sb", "s", "b") == pytest.approx(6.0)
    assert load_of(r, "bc1", "b", "c1") == pytest.approx(3.0)
    assert load_of(r, "c2t", "c2", "t") == pytest.approx(3.0)
    assert load_of(r, "at", "a", "t") == pytest.approx(6.0)


def test_asymmetric_metrics_route_each_direction_on_its_own_shortest_path():
    t = topo([("ab", "a", "b", 10, 1, 5), ("ac", "a", "c", 10, 2, 2), ("cb", "c", "b", 10, 2, 2)])
    r = route(t, make_demands(["a", "b"], ["b", "a"], [1.0, 2.0]))
    assert load_of(r, "ab", "a", "b") == 1.0
    assert load_of(r, "ab", "b", "a") == 0.0
    assert load_of(r, "cb", "b", "c") == 2.0
    assert load_of(r, "ac", "c", "a") == 2.0


def test_equal_parallel_links_share_and_a_costlier_one_stays_idle():
    t = topo(
        [("ab1", "a", "b", 10, 1, 1), ("ab2", "a", "b", 10, 1, 1), ("ab3", "a", "b", 10, 2, 2)]
    )
    r = route(t, make_demands(["a"], ["b"], [10.0]))
    assert [load_of(r, n, "a", "b") for n in ("ab1", "ab2", "ab3")] == [5.0, 5.0, 0.0]


def test_unreachable_destination_is_reported_not_dropped():
    t = topo([("ab", "a", "b", 10, 1, 1), ("cd", "c", "d", 10, 1, 1)])
    r = route(t, make_demands(["a", "a", "a"], ["b", "c", "nowhere"], [1.0, 2.0, 3.0]))
    reasons = {(u.ingress, u.egress): (u.bps, u.reason) for u in r.unrouted}
    assert reasons == {("a", "c"): (2.0, "unreachable"), ("a", "nowhere"): (3.0, "unknown egress")}
    assert r.load_bps.sum() == 1.0


def test_service_node_endpoints_split_over_their_pe_routers():
    t = build_topology(
        [Node("x1", "X", "pe"), Node("x2", "X", "pe"), Node("xp", "X", "p"), Node("y1", "Y", "pe")],
        [
            Link("x1-xp", "x1", "xp", 10, 1, 1),
            Link("x2-xp", "x2", "xp", 10, 1, 1),
            Link("xp-y1", "xp", "y1", 10, 1, 1),
        ],
    )
    r = route(t, make_demands(["X"], ["Y"], [8.0]))
    assert load_of(r, "x1-xp", "x1", "xp") == 4.0
    assert load_of(r, "x2-xp", "x2", "xp") == 4.0
    assert load_of(r, "xp-y1", "xp", "y1") == 8.0
    pops = service_node_matrix(t, make_demands(["x1", "x2"], ["y1", "y1"], [1.0, 2.0]))
    assert list(zip(pops.ingress, pops.egress, pops.bps, strict=True)) == [("X", "Y", 3.0)]


def test_service_node_load_counts_what_enters_it_once():
    t = build_topology(
        [Node("a", "A"), Node("b1", "B"), Node("b2", "B"), Node("c", "C")],
        [
            Link("a-b1", "a", "b1", 10, 1, 1),
            Link("b1-b2", "b1", "b2", 10, 1, 1),
            Link("b2-c", "b2", "c", 10, 1, 1),
        ],
    )
    r = route(t, make_demands(["a", "b1", "b1"], ["c", "b2", "b1"], [3.0, 1.0, 0.5]))
    loads = dict(zip([s.name for s in t.service_nodes], r.service_load_bps, strict=True))
    # A: 3 originated; B: 3 transit in + 1 originated + 0.5 local; C: 3 arriving
    assert loads == {"A": 3.0, "B": 4.5, "C": 3.0}


def reference_loads(topology, demands):
    """Slow per-hop ECMP by recursion over networkx shortest-path lengths, demand by demand."""
    arcs = topology.arcs
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(range(topology.n_nodes))
    for a in range(len(arcs)):
        graph.add_edge(int(arcs.src[a]), int(arcs.dst[a]), key=a, weight=float(arcs.metric[a]))
    load = np.zeros(len(arcs))
    index = topology.node_index
    for s_name, t_name, volume in zip(demands.ingress, demands.egress, demands.bps, strict=True):
        s, t = index[str(s_name)], index[str(t_name)]
        dist = nx.single_source_dijkstra_path_length(graph.reverse(copy=False), t)
        if s not in dist or s == t:
            continue

        def push(v, amount, t=t, dist=dist):
            if v == t:
                return
            hops = [
                (key, w)
                for _, w, key, d in graph.out_edges(v, keys=True, data=True)
                if w in dist and abs(dist[v] - d["weight"] - dist[w]) < 1e-9
            ]
            for key, w in hops:
                load[key] += amount / len(hops)
                push(w, amount / len(hops))

        push(s, float(volume))
    return load


@st.composite
def networks(draw):
    n = draw(st.integers(3, 8))
    edges = [(i, draw(st.integers(0, i - 1))) for i in range(1, n)]  # a spanning tree
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=10))
    edges += [(a, b) for a, b in extra if a != b]
    links = [
        Link(f"l{k}", f"n{a}", f"n{b}", 10.0, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        for k, (a, b) in enumerate(edges)
    ]
    topology = build_topology([Node(f"n{i}", f"N{i}") for i in range(n)], links)
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0.1, 100.0)),
            min_size=1,
            max_size=20,
        )
    )
    demands = make_demands(
        [f"n{a}" for a, _, _ in pairs], [f"n{b}" for _, b, _ in pairs], [v for *_, v in pairs]
    )
    return topology, demands


@settings(max_examples=60, deadline=None)
@given(networks())
def test_flow_is_conserved_at_every_router(network):
    topology, demands = network
    r = route(topology, demands)
    arcs = topology.arcs
    n = topology.n_nodes
    inflow = np.bincount(arcs.dst, weights=r.load_bps, minlength=n)
    outflow = np.bincount(arcs.src, weights=r.load_bps, minlength=n)
    index = topology.node_index
    sent = np.zeros(n)
    received = np.zeros(n)
    for a, b, v in zip(demands.ingress, demands.egress, demands.bps, strict=True):
        if a != b:
            sent[index[str(a)]] += v
            received[index[str(b)]] += v
    np.testing.assert_allclose(inflow + sent, outflow + received, rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(networks())
def test_loads_match_a_slow_per_demand_reference_and_the_routing_matrix(network):
    topology, demands = network
    r = route(topology, demands)
    np.testing.assert_allclose(r.load_bps, reference_loads(topology, demands), atol=1e-9)
    matrix = r.routing_matrix()
    np.testing.assert_allclose(matrix @ r.mapped.bps, r.load_bps, atol=1e-9)


def test_an_empty_matrix_loads_no_link():
    # a read-out period with no traffic: the MG still routes it for its link history
    t = topo([("ab", "a", "b", 10, 1, 1)])
    r = route(t, make_demands(np.array([], dtype=str), np.array([], dtype=str), []))
    assert r.load_bps.tolist() == [0.0, 0.0]
    assert r.unrouted == ()
