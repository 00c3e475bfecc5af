"""Random but realistic backbones and gravity-model matrices, for tests and benchmarks."""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree, distance_matrix

from flowmatrix.capacity.demands import Demands, make_demands
from flowmatrix.capacity.topology import Link, Node, ServiceNode, Topology, build_topology

__all__ = ["gravity_matrix", "random_topology"]

#: link speeds drawn for generated backbones, bit/s, and how often each is drawn
SPEEDS_BPS = (1e10, 4e10, 1e11)
SPEED_WEIGHTS = (0.5, 0.3, 0.2)


def random_topology(
    n: int,
    *,
    seed: int = 0,
    degree: float = 3.5,
    routers_per_pop: int = 1,
    srlg_share: float = 0.1,
) -> Topology:
    """A connected geometric backbone of ``n`` routers with mean degree about ``degree``.

    Routers are placed uniformly in a 1000 km square; a Euclidean minimum
    spanning tree makes the graph connected, then links to nearby routers
    are added (closer ones more likely, as in a Waxman graph) until the
    mean degree is reached, and the shortest link across every bridge is
    added, so no single link failure partitions it. Speeds are 10/40/100G; metrics are distances
    in km (at least 1), the same both ways; about ``srlg_share`` of links
    share a duct with a neighbour.
    """
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 1000, size=(n, 2))
    edges: set[tuple[int, int]] = set()
    if n > 1:
        mst = minimum_spanning_tree(distance_matrix(pos, pos)).tocoo()
        edges.update(
            (min(int(a), int(b)), max(int(a), int(b)))
            for a, b in zip(mst.row, mst.col, strict=True)
        )
    target = round(degree * n / 2)
    tree = cKDTree(pos)
    k = min(n, 8)
    _, near = tree.query(pos, k=k)
    candidates = [(i, int(j)) for i in range(n) for j in np.atleast_1d(near[i])[1:]]
    rng.shuffle(candidates)
    for i, j in candidates:
        if len(edges) >= target:
            break
        e = (min(i, j), max(i, j))
        d = float(np.linalg.norm(pos[i] - pos[j]))
        if e not in edges and rng.random() < np.exp(-d / 250.0) + 0.3:
            edges.add(e)
    _close_bridges(edges, pos)
    pops = [f"P{i // routers_per_pop:04d}" for i in range(n)]
    nodes = [
        Node(
            f"r{i:04d}",
            pops[i],
            "pe" if i % routers_per_pop == 0 else "p",
            position=(float(pos[i, 0]), float(pos[i, 1])),
        )
        for i in range(n)
    ]
    links = []
    speeds = rng.choice(SPEEDS_BPS, size=len(edges), p=SPEED_WEIGHTS)
    ducts = 0
    for k_, (i, j) in enumerate(sorted(edges)):
        d = float(np.linalg.norm(pos[i] - pos[j]))
        srlgs: tuple[str, ...] = ()
        if rng.random() < srlg_share:
            srlgs = (f"duct-{ducts // 2}",)
            ducts += 1
        metric = max(1.0, round(d))
        links.append(
            Link(
                f"r{i:04d}--r{j:04d}",
                f"r{i:04d}",
                f"r{j:04d}",
                float(speeds[k_]),
                metric,
                metric,
                srlgs,
            )
        )
    service = [ServiceNode(p) for p in dict.fromkeys(pops)]
    return build_topology(nodes, links, service, name=f"random-{n}-{seed}")


def _close_bridges(edges: set[tuple[int, int]], pos: np.ndarray) -> None:
    """Add the shortest link across every bridge, so that no single link failure splits it."""
    import networkx as nx

    graph = nx.Graph(list(edges))
    while True:
        bridge = next(nx.bridges(graph), None)
        if bridge is None:
            return
        graph.remove_edge(*bridge)
        side = np.array(sorted(nx.node_connected_component(graph, bridge[0])))
        other = np.array(sorted(set(graph.nodes) - set(side.tolist())))
        graph.add_edge(*bridge)
        gap = np.linalg.norm(pos[side][:, None, :] - pos[other][None, :, :], axis=2)
        order = np.argsort(gap, axis=None)
        for flat in order:
            i, j = divmod(int(flat), len(other))
            e = (min(int(side[i]), int(other[j])), max(int(side[i]), int(other[j])))
            if e not in edges:
                edges.add(e)
                graph.add_edge(*e)
                break


def gravity_matrix(
    topology: Topology,
    total_bps: float,
    *,
    seed: int = 0,
    pairs: int | None = None,
) -> Demands:
    """A gravity-model matrix between the ``pe`` routers: demand(s, t) ∝ mass(s)·mass(t).

    Masses are log-normal; ``pairs`` keeps only that many OD pairs (the
    largest), when given. The matrix sums to ``total_bps``.
    """
    rng = np.random.default_rng(seed)
    pes = [node.name for node in topology.nodes if node.role == "pe"] or [
        node.name for node in topology.nodes
    ]
    mass = rng.lognormal(0.0, 1.0, size=len(pes))
    grid = np.outer(mass, mass)
    np.fill_diagonal(grid, 0.0)
    s, t = np.nonzero(grid)
    values = grid[s, t]
    if pairs is not None and pairs < len(values):
        keep = np.argsort(values)[::-1][:pairs]
        s, t, values = s[keep], t[keep], values[keep]
    values = values / values.sum() * total_bps
    names = np.array(pes, dtype=np.str_)
    return make_demands(names[s], names[t], values, source=f"gravity(seed={seed})")
