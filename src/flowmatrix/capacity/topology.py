"""Backbone topologies: routers, full-duplex links with per-direction IGP metrics, service nodes.

The native format (JSON or YAML, written by the network generator)::

    {"format": "flowmatrix-topology/1",
     "service_nodes": [{"name": "PAR", "capacity_bps": 4e11}],
     "nodes": [{"name": "par-pe1", "service_node": "PAR", "role": "pe"}],
     "links": [{"name": "par-pe1--par-p1", "a": "par-pe1", "b": "par-p1",
                "capacity_bps": 1e10, "metric_ab": 10, "metric_ba": 10,
                "srlgs": ["duct-3"]}]}

A link is full duplex: ``capacity_bps`` is available in each direction. Link
``i`` becomes two directed *arcs*: ``2*i`` from ``a`` to ``b`` and ``2*i+1``
from ``b`` to ``a``; every array in :class:`Arcs` is indexed that way.
Foreign formats (Topology Zoo, SNDlib, REPETITA) are read by
:mod:`flowmatrix.capacity.formats`; :func:`load_topology` picks the reader.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import yaml

from flowmatrix.errors import CapacityError

__all__ = [
    "NATIVE_FORMAT",
    "Arcs",
    "Link",
    "Node",
    "ServiceNode",
    "Topology",
    "build_topology",
    "dump_topology",
    "load_topology",
    "read_native",
]

#: value of the ``format`` key of a native topology document
NATIVE_FORMAT = "flowmatrix-topology/1"

Role = Literal["pe", "p"]


@dataclass(frozen=True, slots=True)
class ServiceNode:
    """A service node (PoP); ``capacity_bps`` None means derived from its links."""

    name: str
    capacity_bps: float | None = None


@dataclass(frozen=True, slots=True)
class Node:
    """A router of the backbone, in one service node."""

    name: str
    service_node: str
    role: Role = "p"
    #: loopback address used in generated router configuration, when known
    loopback: str = ""
    #: (longitude, latitude) or drawing position, when known
    position: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A full-duplex link; ``capacity_bps`` is available in each direction."""

    name: str
    a: str
    b: str
    capacity_bps: float
    metric_ab: float
    metric_ba: float
    srlgs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Arcs:
    """The directed arcs of a topology as columns; arc ``2*i`` is link ``i`` from a to b."""

    src: npt.NDArray[np.int64]
    dst: npt.NDArray[np.int64]
    capacity_bps: npt.NDArray[np.float64]
    metric: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.src.shape[0])


@dataclass(frozen=True)
class Topology:
    """A validated backbone topology; build it with :func:`build_topology` or a reader."""

    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    service_nodes: tuple[ServiceNode, ...]
    #: where the topology was read from ("<memory>" when built in code)
    source: str = "<memory>"
    name: str = ""

    @cached_property
    def node_index(self) -> dict[str, int]:
        """Router name → index in :attr:`nodes`."""
        return {node.name: i for i, node in enumerate(self.nodes)}

    @cached_property
    def service_node_index(self) -> dict[str, int]:
        """Service node name → index in :attr:`service_nodes`."""
        return {sn.name: i for i, sn in enumerate(self.service_nodes)}

    @cached_property
    def node_service(self) -> npt.NDArray[np.int64]:
        """Index of each router's service node."""
        index = self.service_node_index
        return np.array([index[n.service_node] for n in self.nodes], dtype=np.int64)

    @cached_property
    def arcs(self) -> Arcs:
        """The directed arcs as columns, two per link (a→b then b→a)."""
        index = self.node_index
        a = np.array([index[link.a] for link in self.links], dtype=np.int64)
        b = np.array([index[link.b] for link in self.links], dtype=np.int64)
        cap = np.array([link.capacity_bps for link in self.links], dtype=np.float64)
        m_ab = np.array([link.metric_ab for link in self.links], dtype=np.float64)
        m_ba = np.array([link.metric_ba for link in self.links], dtype=np.float64)
        return Arcs(
            src=np.stack([a, b], axis=1).reshape(-1),
            dst=np.stack([b, a], axis=1).reshape(-1),
            capacity_bps=np.repeat(cap, 2),
            metric=np.stack([m_ab, m_ba], axis=1).reshape(-1),
        )

    @property
    def n_nodes(self) -> int:
        """Number of routers."""
        return len(self.nodes)

    def arc_name(self, arc: int) -> str:
        """Readable name of a directed arc: ``link (a→b)``."""
        link = self.links[arc // 2]
        src, dst = (link.a, link.b) if arc % 2 == 0 else (link.b, link.a)
        return f"{link.name} ({src}→{dst})"

    def arc_ends(self, arc: int) -> tuple[str, str]:
        """Router names at the tail and head of a directed arc."""
        link = self.links[arc // 2]
        return (link.a, link.b) if arc % 2 == 0 else (link.b, link.a)

    def with_metrics(self, metric: npt.NDArray[np.float64]) -> Topology:
        """This topology with per-arc metrics replaced (arc order as in :attr:`arcs`)."""
        links = tuple(
            Link(
                name=link.name,
                a=link.a,
                b=link.b,
                capacity_bps=link.capacity_bps,
                metric_ab=float(metric[2 * i]),
                metric_ba=float(metric[2 * i + 1]),
                srlgs=link.srlgs,
            )
            for i, link in enumerate(self.links)
        )
        return Topology(self.nodes, links, self.service_nodes, self.source, self.name)

    @cached_property
    def srlgs(self) -> dict[str, tuple[int, ...]]:
        """Shared risk link group name → indexes of its links."""
        groups: dict[str, list[int]] = {}
        for i, link in enumerate(self.links):
            for group in link.srlgs:
                groups.setdefault(group, []).append(i)
        return {name: tuple(idx) for name, idx in sorted(groups.items())}

    @cached_property
    def service_capacity_bps(self) -> npt.NDArray[np.float64]:
        """Capacity of each service node: configured, else its trunks to other nodes (one way).

        NaN when neither is known (a service node without trunks and no
        configured capacity is not assessed).
        """
        arcs = self.arcs
        sn = self.node_service
        trunk = sn[arcs.src] != sn[arcs.dst]
        derived = np.bincount(
            sn[arcs.dst[trunk]], weights=arcs.capacity_bps[trunk], minlength=len(self.service_nodes)
        )
        out = np.empty(len(self.service_nodes), dtype=np.float64)
        for i, node in enumerate(self.service_nodes):
            if node.capacity_bps is not None:
                out[i] = node.capacity_bps
            else:
                out[i] = derived[i] if derived[i] > 0 else math.nan
        return out


def _problem(source: str, element: str, message: str) -> CapacityError:
    text = f"{source}: {element}: {message}"
    return CapacityError(text)


def build_topology(
    nodes: Iterable[Node],
    links: Iterable[Link],
    service_nodes: Iterable[ServiceNode] = (),
    *,
    source: str = "<memory>",
    name: str = "",
) -> Topology:
    """Check routers, links and service nodes and turn them into a :class:`Topology`.

    Service nodes that routers name but the list omits are added without a
    configured capacity. Raises :class:`CapacityError` naming the source and
    the element for duplicates, dangling links, non-positive capacities and
    non-positive or non-finite metrics.

    Examples
    --------
    >>> t = build_topology(
    ...     [Node("a", "A"), Node("b", "B")],
    ...     [Link("a--b", "a", "b", 1e10, 10, 10)],
    ... )
    >>> t.arc_name(1)
    'a--b (b→a)'
    """
    node_list = list(nodes)
    link_list = list(links)
    sn_list = list(service_nodes)
    seen: set[str] = set()
    for node in node_list:
        if not node.name:
            raise _problem(source, "node", "has no name")
        if node.name in seen:
            raise _problem(source, f"node[name={node.name}]", "duplicate node")
        if node.role not in ("pe", "p"):
            raise _problem(source, f"node[name={node.name}]", f"role {node.role!r} is not pe or p")
        seen.add(node.name)
    sn_names: set[str] = set()
    for sn in sn_list:
        if sn.name in sn_names:
            raise _problem(source, f"service_node[name={sn.name}]", "duplicate service node")
        if sn.capacity_bps is not None and not (
            math.isfinite(sn.capacity_bps) and sn.capacity_bps > 0
        ):
            raise _problem(
                source, f"service_node[name={sn.name}]", f"capacity {sn.capacity_bps} not > 0"
            )
        sn_names.add(sn.name)
    for node in node_list:
        if node.service_node not in sn_names:
            sn_names.add(node.service_node)
            sn_list.append(ServiceNode(node.service_node))
    link_names: set[str] = set()
    for link in link_list:
        where = f"link[name={link.name}]"
        if link.name in link_names:
            raise _problem(source, where, "duplicate link")
        link_names.add(link.name)
        for end in (link.a, link.b):
            if end not in seen:
                raise _problem(source, where, f"dangling: router {end!r} is not a node")
        if link.a == link.b:
            raise _problem(source, where, "loops back to its own router")
        if not (math.isfinite(link.capacity_bps) and link.capacity_bps > 0):
            raise _problem(source, where, f"capacity {link.capacity_bps} is not > 0")
        for label, metric in (("metric_ab", link.metric_ab), ("metric_ba", link.metric_ba)):
            if not math.isfinite(metric) or metric < 0:
                raise _problem(source, where, f"{label} {metric} is negative or not finite")
            if metric == 0:
                raise _problem(source, where, f"{label} is 0; IGP metrics start at 1")
    return Topology(
        nodes=tuple(node_list),
        links=tuple(link_list),
        service_nodes=tuple(sn_list),
        source=source,
        name=name,
    )


def _require(obj: Mapping[str, Any], key: str, source: str, element: str) -> Any:
    if key not in obj:
        raise _problem(source, element, f"missing {key!r}")
    return obj[key]


def _number(value: Any, source: str, element: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _problem(source, element, f"{key} {value!r} is not a number")
    return float(value)


def read_native(document: Mapping[str, Any], *, source: str = "<memory>") -> Topology:
    """Turn a parsed native topology document (``flowmatrix-topology/1``) into a Topology."""
    if not isinstance(document, Mapping):
        raise _problem(source, "document", "is not a mapping")
    fmt = document.get("format")
    if fmt != NATIVE_FORMAT:
        raise _problem(source, "format", f"{fmt!r} is not {NATIVE_FORMAT!r}")
    service_nodes = []
    for i, raw in enumerate(document.get("service_nodes") or []):
        element = f"service_nodes[{i}]"
        name = str(_require(raw, "name", source, element))
        cap = raw.get("capacity_bps")
        service_nodes.append(
            ServiceNode(
                name,
                None if cap is None else _number(cap, source, f"service_node[name={name}]", "cap"),
            )
        )
    nodes = []
    for i, raw in enumerate(_require(document, "nodes", source, "document")):
        element = f"nodes[{i}]"
        name = str(_require(raw, "name", source, element))
        position = raw.get("position")
        nodes.append(
            Node(
                name=name,
                service_node=str(raw.get("service_node", name)),
                role=raw.get("role", "p"),
                loopback=str(raw.get("loopback", "")),
                position=None if position is None else (float(position[0]), float(position[1])),
            )
        )
    links = []
    for i, raw in enumerate(document.get("links") or []):
        element = f"links[{i}]"
        name = str(raw.get("name", ""))
        where = f"link[name={name}]" if name else element
        a = str(_require(raw, "a", source, where))
        b = str(_require(raw, "b", source, where))
        metric_ab = _number(raw.get("metric_ab", raw.get("metric", 1)), source, where, "metric_ab")
        metric_ba = _number(raw.get("metric_ba", raw.get("metric", 1)), source, where, "metric_ba")
        links.append(
            Link(
                name=name or f"{a}--{b}",
                a=a,
                b=b,
                capacity_bps=_number(
                    _require(raw, "capacity_bps", source, where), source, where, "capacity_bps"
                ),
                metric_ab=metric_ab,
                metric_ba=metric_ba,
                srlgs=tuple(str(s) for s in raw.get("srlgs") or ()),
            )
        )
    return build_topology(
        nodes, links, service_nodes, source=source, name=str(document.get("name", ""))
    )


def load_topology(path: str | Path) -> Topology:
    """Read a topology file, choosing the reader from its extension and first bytes.

    ``.json``/``.yaml``/``.yml``: native; ``.graphml``: Topology Zoo;
    ``.graph``: REPETITA; ``.xml``: SNDlib XML; ``.txt``/``.sndlib``: SNDlib native.
    """
    from flowmatrix.capacity import formats

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        msg = f"{p}: cannot read topology: {exc.strerror}"
        raise CapacityError(msg) from None
    suffix = p.suffix.lower()
    if suffix in (".json", ".yaml", ".yml"):
        try:
            document = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            msg = f"{p}: not valid {suffix[1:].upper()}: {exc}"
            raise CapacityError(msg) from None
        return read_native(document, source=str(p))
    if suffix == ".graphml":
        return formats.read_zoo_graphml(p)
    if suffix == ".graph":
        return formats.read_repetita_graph(text, source=str(p))
    if suffix == ".xml" or text.lstrip().startswith("<"):
        return formats.read_sndlib_xml(text, source=str(p))
    if "NODES (" in text or text.startswith("?SNDlib"):
        return formats.read_sndlib_native(text, source=str(p))
    msg = f"{p}: unknown topology format (expected .json, .yaml, .graphml, .graph, SNDlib)"
    raise CapacityError(msg)


def dump_topology(topology: Topology) -> dict[str, Any]:
    """Turn a Topology into a native ``flowmatrix-topology/1`` document."""
    nodes: list[dict[str, Any]] = []
    for n in topology.nodes:
        entry: dict[str, Any] = {"name": n.name, "service_node": n.service_node, "role": n.role}
        if n.loopback:
            entry["loopback"] = n.loopback
        if n.position is not None:
            entry["position"] = list(n.position)
        nodes.append(entry)
    return {
        "format": NATIVE_FORMAT,
        "service_nodes": [
            {"name": s.name, **({} if s.capacity_bps is None else {"capacity_bps": s.capacity_bps})}
            for s in topology.service_nodes
        ],
        "nodes": nodes,
        "links": [
            {
                "name": link.name,
                "a": link.a,
                "b": link.b,
                "capacity_bps": link.capacity_bps,
                "metric_ab": link.metric_ab,
                "metric_ba": link.metric_ba,
                "srlgs": list(link.srlgs),
            }
            for link in topology.links
        ],
    }
