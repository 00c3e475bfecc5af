"""A routing → PNG pictures: the topology coloured by link utilization, and a utilization CDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize

from flowmatrix.capacity.adequacy import DEFAULT_THRESHOLD
from flowmatrix.capacity.demands import Demands
from flowmatrix.capacity.routing import Routing, route
from flowmatrix.capacity.topology import Topology

__all__ = ["plot_capacity", "plot_topology", "plot_utilization_cdf"]


def _positions(topology: Topology) -> np.ndarray:
    if all(n.position is not None for n in topology.nodes):
        return np.array([n.position for n in topology.nodes], dtype=np.float64)
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(topology.n_nodes))
    arcs = topology.arcs
    graph.add_edges_from(zip(arcs.src[::2].tolist(), arcs.dst[::2].tolist(), strict=True))
    layout = nx.spring_layout(graph, seed=7)
    return np.array([layout[i] for i in range(topology.n_nodes)], dtype=np.float64)


def plot_topology(
    routing: Routing, path: str | Path, *, threshold: float = DEFAULT_THRESHOLD
) -> Path:
    """Draw routers and links, each direction half a link coloured by its utilization."""
    topo = routing.topology
    pos = _positions(topo)
    arcs = topo.arcs
    util = routing.utilization
    # each arc is drawn from its tail to the middle of the link, offset to its side
    a, b = pos[arcs.src], pos[arcs.dst]
    mid = (a + b) / 2
    direction = b - a
    length = np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1) / length
    span = float(np.ptp(pos, axis=0).max()) or 1.0
    offset = normal * span * 0.004
    segments = np.stack([a + offset, mid + offset], axis=1)
    fig, ax = plt.subplots(figsize=(10, 7), dpi=100)
    # the scale stops at 100 %: an overloaded link is red however far over it is
    lines = LineCollection(
        list(segments),
        array=np.minimum(util, 1.0),
        cmap="RdYlGn_r",
        norm=Normalize(0.0, 1.0),
        linewidths=np.where(util > threshold, 3.5, 2.0),
    )
    ax.add_collection(lines)
    over = util > threshold
    ax.scatter(pos[:, 0], pos[:, 1], s=25, c="black", zorder=3)
    if topo.n_nodes <= 60:
        for node, (x, y) in zip(topo.nodes, pos, strict=True):
            ax.annotate(node.name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    label = f"utilization per direction (black line: threshold {100 * threshold:.0f} %)"
    bar = fig.colorbar(lines, ax=ax, label=label)
    bar.ax.axhline(threshold, color="black", linewidth=2)
    ax.set_title(
        f"{topo.name or 'topology'}: max utilization {100 * routing.max_utilization:.1f}%, "
        f"{int(over.sum())} directed links over {100 * threshold:.0f}%"
    )
    ax.autoscale()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    out = Path(path)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out


def plot_utilization_cdf(
    routing: Routing, path: str | Path, *, threshold: float = DEFAULT_THRESHOLD
) -> Path:
    """Plot the cumulative distribution of directed-link utilization with the threshold."""
    util = np.sort(routing.utilization)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    if util.size:
        ax.step(util, np.arange(1, util.size + 1) / util.size, where="post")
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {100 * threshold:.0f}%")
    ax.set_xlabel("utilization")
    ax.set_ylabel("share of directed links ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Link utilization CDF")
    out = Path(path)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out


def plot_capacity(
    topology: Topology,
    demands: Demands,
    out_dir: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Path]:
    """Route ``demands`` and write ``topology.png`` and ``utilization-cdf.png`` into ``out_dir``."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    routing = route(topology, demands)
    return [
        plot_topology(routing, directory / "topology.png", threshold=threshold),
        plot_utilization_cdf(routing, directory / "utilization-cdf.png", threshold=threshold),
    ]
