"""A routing → pictures: the topology coloured by link utilization and a utilization CDF.

PNG through matplotlib, and one standalone HTML page (plotly, its JavaScript
inline: it opens offline) where hovering a link names it with its load.
"""

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

__all__ = ["plot_capacity", "plot_capacity_html", "plot_topology", "plot_utilization_cdf"]

#: utilization bins drawn as one plotly trace each (a trace per link is slow on big topologies)
_BINS = 10


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


def _half_arcs(topology: Topology, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tail, head and link middle of every arc: each direction is drawn tail → middle."""
    arcs = topology.arcs
    a, b = pos[arcs.src], pos[arcs.dst]
    return a, b, (a + b) / 2


def plot_topology(
    routing: Routing,
    path: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    positions: np.ndarray | None = None,
) -> Path:
    """Draw routers and links, each direction half a link coloured by its utilization.

    ``positions`` (router → x, y) default to the topology's own or a spring layout.
    """
    topo = routing.topology
    pos = _positions(topo) if positions is None else positions
    util = routing.utilization
    # each arc is drawn from its tail to the middle of the link, offset to its side
    a, b, mid = _half_arcs(topo, pos)
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
    """Route ``demands``; write ``topology.png``, ``utilization-cdf.png`` and ``capacity.html``."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    routing = route(topology, demands)
    pos = _positions(topology)  # one layout for both pictures
    return [
        plot_topology(routing, directory / "topology.png", threshold=threshold, positions=pos),
        plot_utilization_cdf(routing, directory / "utilization-cdf.png", threshold=threshold),
        plot_capacity_html(
            routing, directory / "capacity.html", threshold=threshold, positions=pos
        ),
    ]


def plot_capacity_html(
    routing: Routing,
    path: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    positions: np.ndarray | None = None,
) -> Path:
    """One standalone HTML page: the topology by link utilization, then the utilization CDF."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale

    topo = routing.topology
    pos = _positions(topo) if positions is None else positions
    arcs = topo.arcs
    util = routing.utilization
    names = [n.name for n in topo.nodes]
    a, b, mid = _half_arcs(topo, pos)  # as in the PNG
    shown = np.minimum(util, 1.0)
    bins = np.minimum((shown * _BINS).astype(np.int64), _BINS - 1)
    colours = sample_colorscale("RdYlGn_r", [(k + 0.5) / _BINS for k in range(_BINS)])
    figure = go.Figure()
    for k in range(_BINS):
        arc = np.flatnonzero(bins == k)
        if not arc.size:
            continue
        xs = np.stack([a[arc, 0], mid[arc, 0], np.full(arc.size, np.nan)], axis=1).ravel()
        ys = np.stack([a[arc, 1], mid[arc, 1], np.full(arc.size, np.nan)], axis=1).ravel()
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": colours[k], "width": 4},
                name=f"{100 * k // _BINS}–{100 * (k + 1) // _BINS} %",
                hoverinfo="skip",
            )
        )
    # one invisible marker per direction, a third of the way along, carries its hover text
    third = a + (b - a) / 3
    hover = [
        f"{names[s]} → {names[d]}<br>{100 * u:.1f} % of {c / 1e9:.3g} Gbit/s ({load / 1e9:.3g})"
        for s, d, u, c, load in zip(
            arcs.src.tolist(),
            arcs.dst.tolist(),
            util.tolist(),
            arcs.capacity_bps.tolist(),
            routing.load_bps.tolist(),
            strict=True,
        )
    ]
    figure.add_trace(
        go.Scatter(
            x=third[:, 0],
            y=third[:, 1],
            mode="markers",
            marker={"size": 10, "opacity": 0},
            text=hover,
            hoverinfo="text",
            showlegend=False,
        )
    )
    figure.add_trace(
        go.Scatter(
            x=pos[:, 0],
            y=pos[:, 1],
            mode="markers+text" if topo.n_nodes <= 60 else "markers",
            marker={"color": "black", "size": 7},
            text=names,
            textposition="top right",
            hoverinfo="text",
            name="routers",
        )
    )
    over = int((util > threshold).sum())
    figure.update_layout(
        title=f"{topo.name or 'topology'}: max utilization {100 * routing.max_utilization:.1f} %, "
        f"{over} directed links over {100 * threshold:.0f} %",
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
        height=700,
        legend={"title": "utilization"},
    )
    ordered = np.sort(util)
    cdf = go.Figure(
        go.Scatter(
            x=ordered,
            y=np.arange(1, ordered.size + 1) / max(ordered.size, 1),
            mode="lines",
            line_shape="hv",
            name="directed links",
        )
    )
    cdf.add_vline(x=threshold, line_dash="dash", line_color="red", annotation_text="threshold")
    cdf.update_layout(
        title="Link utilization CDF",
        xaxis={"title": "utilization", "tickformat": ".0%"},
        yaxis={"title": "share of directed links ≤ x", "range": [0, 1.02]},
        height=450,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    body = figure.to_html(full_html=False, include_plotlyjs=True)
    body += cdf.to_html(full_html=False, include_plotlyjs=False)
    title = f"flowmatrix capacity: {topo.name or 'topology'}"
    out.write_text(
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body>{body}</body></html>\n",
        encoding="utf-8",
    )
    return out
