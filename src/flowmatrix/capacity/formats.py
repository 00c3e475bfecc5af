"""Foreign topology and demand files → Topology and Demands.

* **Internet Topology Zoo** GraphML: nodes carry ``label``, ``Longitude``,
  ``Latitude``; edges may carry ``LinkSpeedRaw`` (bit/s). Missing speeds get
  ``default_capacity_bps``; metrics are hop counts, or great-circle
  kilometres with ``metric="distance"``.
* **SNDlib** native (``?SNDlib native format``) and XML
  (``http://sndlib.zib.de/network``): the pre-installed capacity of a link,
  else its first module; the routing cost as metric (1 when it is 0); the
  ``META unit`` (MBITPERSEC when absent) scales capacities and demands.
* **REPETITA** ``.graph`` (``NODES``/``EDGES`` sections, directed edges with
  ``weight`` and ``bw`` in kbit/s) and ``.demands`` (``DEMANDS`` section,
  ``bw`` in kbit/s). Opposite directed edges are paired into one full-duplex
  link whose capacity is the smaller of the two.

Every router of these files is its own service node, with role ``pe``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from lxml import etree

from flowmatrix.capacity.demands import Demands, make_demands
from flowmatrix.capacity.topology import Link, Node, Topology, build_topology
from flowmatrix.errors import CapacityError

__all__ = [
    "read_repetita_demands",
    "read_repetita_graph",
    "read_sndlib_demands",
    "read_sndlib_native",
    "read_sndlib_xml",
    "read_sndlib_xml_demands",
    "read_zoo_graphml",
]

#: SNDlib ``META unit`` values → bit/s per unit
SNDLIB_UNITS = {
    "BITPERSEC": 1.0,
    "KBITPERSEC": 1e3,
    "MBITPERSEC": 1e6,
    "GBITPERSEC": 1e9,
}
#: REPETITA capacities and demands are in kbit/s
REPETITA_UNIT_BPS = 1e3


def _at(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source


def _fail(source: str, element: str, message: str) -> CapacityError:
    msg = f"{source}: {element}: {message}"
    return CapacityError(msg)


def _float(token: str, source: str, element: str, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise _fail(source, element, f"{what} {token!r} is not a number") from None


# --- Topology Zoo -------------------------------------------------------------------------------


def _great_circle_km(p: tuple[float, float], q: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*p, *q))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def read_zoo_graphml(
    path: str | Path,
    *,
    default_capacity_bps: float = 1e10,
    metric: Literal["hops", "distance"] = "hops",
) -> Topology:
    """Read an Internet Topology Zoo GraphML file into a Topology (see module doc)."""
    import networkx as nx

    source = str(path)
    try:
        graph = nx.read_graphml(path)
    except (OSError, etree.XMLSyntaxError, nx.NetworkXError, ValueError, KeyError) as exc:
        msg = f"{source}: not a readable GraphML topology: {exc}"
        raise CapacityError(msg) from None
    names: dict[Any, str] = {}
    used: set[str] = set()
    nodes: list[Node] = []
    for key, data in graph.nodes(data=True):
        label = str(data.get("label", key)).strip() or str(key)
        name = label if label not in used else f"{label}#{key}"
        used.add(name)
        names[key] = name
        lon, lat = data.get("Longitude"), data.get("Latitude")
        position = None if lon is None or lat is None else (float(lon), float(lat))
        nodes.append(Node(name, name, "pe", position=position))
    position_of = {n.name: n.position for n in nodes}
    links: list[Link] = []
    seen: dict[tuple[str, str], int] = {}
    for u, v, data in graph.edges(data=True):
        a, b = names[u], names[v]
        if a == b:
            continue  # the Zoo draws a few self-loops; they carry no transit traffic
        pair = (min(a, b), max(a, b))
        k = seen.get(pair, 0)
        seen[pair] = k + 1
        name = f"{a}--{b}" if k == 0 else f"{a}--{b}#{k}"
        raw = data.get("LinkSpeedRaw")
        capacity = default_capacity_bps if raw in (None, "") else float(raw)
        if metric == "distance":
            pa_, pb_ = position_of[a], position_of[b]
            cost = (
                1.0 if pa_ is None or pb_ is None else max(1.0, round(_great_circle_km(pa_, pb_)))
            )
        else:
            cost = 1.0
        links.append(Link(name, a, b, capacity, cost, cost))
    label = str(graph.graph.get("label", graph.graph.get("Network", Path(path).stem)))
    return build_topology(nodes, links, source=source, name=label)


# --- SNDlib native ------------------------------------------------------------------------------

_SECTION = re.compile(r"^\s*([A-Z_]+)\s*\(\s*$")
_NODE = re.compile(r"^\s*(\S+)\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$")
_LINK = re.compile(r"^\s*(\S+)\s*\(\s*(\S+)\s+(\S+)\s*\)\s*(.*)$")


def _sndlib_sections(text: str, source: str) -> dict[str, list[tuple[int, str]]]:
    sections: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("?"):
            continue
        if current is None:
            m = _SECTION.match(line)
            if m:
                current = m.group(1)
                sections[current] = []
            continue
        if line.strip() == ")":
            current = None
            continue
        sections[current].append((lineno, line))
    if current is not None:
        msg = f"{source}: section {current} is not closed by ')'"
        raise CapacityError(msg)
    return sections


def _sndlib_unit(meta: list[tuple[int, str]], source: str) -> float:
    for lineno, line in meta:
        key, _, value = line.partition("=")
        if key.strip() == "unit":
            unit = value.strip().upper()
            if unit not in SNDLIB_UNITS:
                raise _fail(_at(source, lineno), "META unit", f"unknown unit {unit!r}")
            return SNDLIB_UNITS[unit]
    return SNDLIB_UNITS["MBITPERSEC"]


def read_sndlib_native(text: str, *, source: str = "<memory>") -> Topology:
    """Read an SNDlib native network file into a Topology (see module doc)."""
    sections = _sndlib_sections(text, source)
    unit = _sndlib_unit(sections.get("META", []), source)
    if "NODES" not in sections:
        msg = f"{source}: no NODES section; not an SNDlib network"
        raise CapacityError(msg)
    nodes = []
    for lineno, line in sections["NODES"]:
        m = _NODE.match(line)
        if not m:
            raise _fail(_at(source, lineno), "NODES", f"cannot read node line {line.strip()!r}")
        name = m.group(1)
        x = _float(m.group(2), f"{source}:{lineno}", f"node[name={name}]", "longitude")
        y = _float(m.group(3), f"{source}:{lineno}", f"node[name={name}]", "latitude")
        nodes.append(Node(name, name, "pe", position=(x, y)))
    links = []
    for lineno, line in sections.get("LINKS", []):
        m = _LINK.match(line)
        if not m:
            raise _fail(_at(source, lineno), "LINKS", f"cannot read link line {line.strip()!r}")
        name, a, b, rest = m.groups()
        where = f"{source}:{lineno}"
        element = f"link[name={name}]"
        head, _, modules = rest.partition("(")
        numbers = head.split()
        if len(numbers) < 3:
            raise _fail(where, element, "needs capacity, capacity cost and routing cost")
        capacity = _float(numbers[0], where, element, "capacity")
        routing_cost = _float(numbers[2], where, element, "routing cost")
        module_caps = modules.replace(")", " ").split()[0::2]
        if capacity == 0 and module_caps:
            capacity = _float(module_caps[0], where, element, "module capacity")
        metric = routing_cost if routing_cost != 0 else 1.0
        links.append(Link(name, a, b, capacity * unit, metric, metric))
    return build_topology(nodes, links, source=source, name=Path(source).stem)


def read_sndlib_demands(text: str, *, source: str = "<memory>") -> Demands:
    """Read the DEMANDS section of an SNDlib native file into Demands in bit/s."""
    sections = _sndlib_sections(text, source)
    unit = _sndlib_unit(sections.get("META", []), source)
    if "DEMANDS" not in sections:
        msg = f"{source}: no DEMANDS section"
        raise CapacityError(msg)
    ingress, egress, bps = [], [], []
    for lineno, line in sections["DEMANDS"]:
        m = _LINK.match(line)
        if not m:
            raise _fail(_at(source, lineno), "DEMANDS", f"cannot read {line.strip()!r}")
        name, a, b, rest = m.groups()
        numbers = rest.split()
        if len(numbers) < 2:
            raise _fail(_at(source, lineno), f"demand[name={name}]", "needs unit and value")
        value = _float(numbers[1], f"{source}:{lineno}", f"demand[name={name}]", "value")
        if value < 0:
            raise _fail(_at(source, lineno), f"demand[name={name}]", "negative demand")
        ingress.append(a)
        egress.append(b)
        bps.append(value * unit)
    return make_demands(ingress, egress, bps, source=source)


# --- SNDlib XML ---------------------------------------------------------------------------------


def _parse_xml(text: str, source: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    try:
        root = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        msg = f"{source}: not well-formed XML: {exc}"
        raise CapacityError(msg) from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _text(element: etree._Element, path: str, source: str, where: str) -> str:
    found: str | None = element.findtext(path)
    if found is None or not found.strip():
        raise _fail(_at(source, element.sourceline), where, f"missing <{path}>")
    return str(found).strip()


def _xml_unit(root: etree._Element) -> float:
    unit = (root.findtext("meta/unit") or "MBITPERSEC").strip().upper()
    return SNDLIB_UNITS.get(unit, 1e6)


def read_sndlib_xml(text: str, *, source: str = "<memory>") -> Topology:
    """Read an SNDlib XML network file into a Topology (see module doc)."""
    root = _parse_xml(text, source)
    if root.tag != "network":
        msg = f"{source}: root element <{root.tag}> is not an SNDlib <network>"
        raise CapacityError(msg)
    unit = _xml_unit(root)
    nodes = []
    for el in root.iterfind("networkStructure/nodes/node"):
        name = el.get("id", "")
        x, y = el.findtext("coordinates/x"), el.findtext("coordinates/y")
        position = None if x is None or y is None else (float(x), float(y))
        nodes.append(Node(name, name, "pe", position=position))
    links = []
    for el in root.iterfind("networkStructure/links/link"):
        name = el.get("id", "")
        where = f"link[name={name}]"
        loc = f"{source}:{el.sourceline}"
        a = _text(el, "source", source, where)
        b = _text(el, "target", source, where)
        cap_text = el.findtext("preInstalledModule/capacity")
        capacity = 0.0 if cap_text is None else _float(cap_text, loc, where, "capacity")
        if capacity == 0:
            module = el.findtext("additionalModules/addModule/capacity")
            if module is not None:
                capacity = _float(module, loc, where, "module capacity")
        cost_text = el.findtext("routingCost")
        cost = 0.0 if cost_text is None else _float(cost_text, loc, where, "routing cost")
        metric = cost if cost != 0 else 1.0
        links.append(Link(name, a, b, capacity * unit, metric, metric))
    return build_topology(nodes, links, source=source, name=Path(source).stem)


def read_sndlib_xml_demands(text: str, *, source: str = "<memory>") -> Demands:
    """Read the ``<demands>`` of an SNDlib XML file into Demands in bit/s."""
    root = _parse_xml(text, source)
    unit = _xml_unit(root)
    ingress, egress, bps = [], [], []
    for el in root.iterfind("demands/demand"):
        where = f"demand[name={el.get('id', '')}]"
        ingress.append(_text(el, "source", source, where))
        egress.append(_text(el, "target", source, where))
        value = _float(_text(el, "demandValue", source, where), source, where, "demandValue")
        if value < 0:
            raise _fail(_at(source, el.sourceline), where, "negative demand")
        bps.append(value * unit)
    return make_demands(ingress, egress, bps, source=source)


# --- REPETITA -----------------------------------------------------------------------------------


def _endpoints(parts: list[str], n: int, where: str, element: str) -> tuple[int, int]:
    """The src and dest node indexes of a REPETITA edge or demand line, each in 0..n-1."""
    try:
        u, v = int(parts[1]), int(parts[2])
    except ValueError:
        raise _fail(where, element, "src and dest must be node indexes") from None
    for end in (u, v):
        if not 0 <= end < n:
            raise _fail(where, element, f"dangling: node index {end} not in 0..{n - 1}")
    return u, v


def _repetita_section(
    lines: list[tuple[int, str]], header: str, source: str
) -> list[tuple[int, list[str]]]:
    for k, (lineno, line) in enumerate(lines):
        parts = line.split()
        if parts and parts[0] == header:
            if len(parts) < 2 or not parts[1].isdigit():
                raise _fail(_at(source, lineno), header, "needs a count")
            count = int(parts[1])
            rows = [(n, text.split()) for n, text in lines[k + 2 : k + 2 + count]]
            if len(rows) < count:
                raise _fail(_at(source, lineno), header, f"announces {count} rows, has {len(rows)}")
            return rows
    msg = f"{source}: no {header} section"
    raise CapacityError(msg)


def read_repetita_graph(text: str, *, source: str = "<memory>") -> Topology:
    """Read a REPETITA ``.graph`` file into a Topology (see module doc)."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    nodes = []
    for lineno, parts in _repetita_section(lines, "NODES", source):
        if len(parts) < 3:
            raise _fail(_at(source, lineno), "NODES", "needs label x y")
        nodes.append(Node(parts[0], parts[0], "pe", position=(float(parts[1]), float(parts[2]))))
    n = len(nodes)
    edges: list[tuple[int, str, int, int, float, float]] = []
    for lineno, parts in _repetita_section(lines, "EDGES", source):
        where = f"{source}:{lineno}"
        if len(parts) < 5:
            raise _fail(where, "EDGES", "needs label src dest weight bw")
        label = parts[0]
        element = f"edge[label={label}]"
        u, v = _endpoints(parts, n, where, element)
        weight = _float(parts[3], where, element, "weight")
        bw = _float(parts[4], where, element, "bw")
        edges.append((lineno, label, u, v, weight, bw))
    pending: dict[tuple[int, int], list[int]] = {}
    links = []
    used = [False] * len(edges)
    seen: dict[tuple[int, int], int] = {}
    for k, (_, _, u, v, weight, bw) in enumerate(edges):
        back = pending.get((v, u))
        if not back:
            pending.setdefault((u, v), []).append(k)
            continue
        j = back.pop(0)
        used[j] = used[k] = True
        _, _, a, b, weight_ab, bw_ab = edges[j]
        count = seen.get((a, b), 0)
        seen[(a, b)] = count + 1
        name = f"{nodes[a].name}--{nodes[b].name}" + (f"#{count}" if count else "")
        links.append(
            Link(
                name,
                nodes[a].name,
                nodes[b].name,
                min(bw_ab, bw) * REPETITA_UNIT_BPS,
                weight_ab,
                weight,
            )
        )
    for k, flag in enumerate(used):
        if not flag:
            lineno, label, u, v, _, _ = edges[k]
            raise _fail(
                _at(source, lineno),
                f"edge[label={label}]",
                f"no edge back from {nodes[v].name} to {nodes[u].name}; links must be full duplex",
            )
    return build_topology(nodes, links, source=source, name=Path(source).stem)


def read_repetita_demands(text: str, node_names: list[str], *, source: str = "<memory>") -> Demands:
    """Read a REPETITA ``.demands`` file (node indexes into ``node_names``) into Demands."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    ingress, egress, bps = [], [], []
    n = len(node_names)
    for lineno, parts in _repetita_section(lines, "DEMANDS", source):
        where = f"{source}:{lineno}"
        if len(parts) < 4:
            raise _fail(where, "DEMANDS", "needs label src dest bw")
        element = f"demand[label={parts[0]}]"
        u, v = _endpoints(parts, n, where, element)
        value = _float(parts[3], where, element, "bw")
        if value < 0:
            raise _fail(where, element, "negative demand")
        ingress.append(node_names[u])
        egress.append(node_names[v])
        bps.append(value * REPETITA_UNIT_BPS)
    return make_demands(
        np.array(ingress, dtype=np.str_), np.array(egress, dtype=np.str_), bps, source=source
    )
