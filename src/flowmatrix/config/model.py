"""Typed, immutable models of the network configuration the MG serves to FRPs.

The models are plain frozen dataclasses: they are built once from XML (or by the
generator), checked by :func:`check`, and then only read. ``source`` fields say
where an element was read from and take no part in equality, so a model read
back from its own XML compares equal to the original.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from flowmatrix.errors import ConfigError, ConfigProblem

__all__ = [
    "ALARM_STATISTICS",
    "ALARM_TARGETS",
    "DEFAULT_CLASS",
    "DEFAULT_READOUT_SECONDS",
    "WEEKDAYS",
    "AlarmOp",
    "AlarmRule",
    "AlarmStatistic",
    "AlarmTarget",
    "Exporter",
    "ExternalNextHop",
    "Frp",
    "IPAddress",
    "IPNetwork",
    "Interface",
    "Interval",
    "IntervalKind",
    "NetworkConfig",
    "PeRouter",
    "ServiceClass",
    "ServiceNode",
    "Slot",
    "Source",
    "check",
    "merge",
    "problem_at",
    "problems",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IntervalKind = Literal["once", "weekly", "continuous"]
AlarmTarget = Literal["element", "link", "network"]
AlarmStatistic = Literal["bytes", "packets", "bps", "utilization"]
AlarmOp = Literal["above", "below"]

#: what an alarm rule watches: a matrix element, a backbone link, the whole network
ALARM_TARGETS: tuple[AlarmTarget, ...] = ("element", "link", "network")
#: per read-out period: volume, packets, mean bit/s, link load / capacity
ALARM_STATISTICS: tuple[AlarmStatistic, ...] = ("bytes", "packets", "bps", "utilization")

#: read-out period length when an interval does not give one (IETF draft §7, paper §2)
DEFAULT_READOUT_SECONDS = 300
#: the class that holds every DSCP when the configuration names no classes
DEFAULT_CLASS = "default"
#: weekday names as written in XML, index = ``datetime.weekday()``
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Source:
    """Where an element was read from: file and 1-based line."""

    file: str
    line: int


def _source() -> Source | None:
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ServiceNode:
    """A service node (PoP): a site holding PE routers and their FRPs."""

    name: str
    #: switching capacity of the node in bit/s; None = derive from its links
    capacity_bps: float | None = None
    description: str = ""
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class Frp:
    """A flow record processor: where PEs export to and who uploads partial matrices."""

    name: str
    address: IPAddress
    service_node: str | None = None
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class Interface:
    """A PE interface as the PE's flow exports number it (ifIndex) and names it."""

    if_index: int
    name: str
    description: str = ""
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class Exporter:
    """A flow exporter identity of a PE: source address, optionally source id / domain."""

    address: IPAddress
    #: NetFlow v9 source id or IPFIX observation domain id; None = any
    source_id: int | None = None
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class PeRouter:
    """A provider edge router, its exporters and its interfaces.

    In an FRP's view, PEs of other FRPs are *remote*: only name, loopbacks and
    service node are kept (what egress resolution needs), ``frp`` is None.
    """

    name: str
    loopback: IPAddress
    service_node: str
    frp: str | None = None
    management: IPAddress | None = None
    #: IPv6 loopback, next hop of global IPv6 routes (6VPE uses the IPv4-mapped loopback)
    loopback6: ipaddress.IPv6Address | None = None
    #: 1-in-N packet sampling configured on the PE (1 = unsampled)
    sampling_rate: int = 1
    exporters: tuple[Exporter, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    source: Source | None = _source()

    @property
    def remote(self) -> bool:
        """True for a PE listed only so that egress next hops resolve to it."""
        return self.frp is None

    @property
    def exporter_addresses(self) -> tuple[IPAddress, ...]:
        """Source addresses the PE exports from: its exporters, else its management address."""
        if self.exporters:
            return tuple(dict.fromkeys(e.address for e in self.exporters))
        return (self.management,) if self.management is not None else ()


@dataclass(frozen=True, slots=True)
class ExternalNextHop:
    """A BGP next hop outside the AS (or a prefix of them) and the PE it leaves through."""

    prefix: IPNetwork
    pe: str
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class ServiceClass:
    """A service class and the DSCP values (ToS >> 2) that belong to it."""

    name: str
    dscp: tuple[int, ...] = ()
    #: the class of every DSCP no class names
    default: bool = False
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class Slot:
    """A weekly slot: a weekday, a local start time and a duration (elapsed time)."""

    #: 0 = Monday … 6 = Sunday
    day: int
    start: dt.time
    duration: dt.timedelta
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class Interval:
    """A measurement interval (claims 2–5): once, weekly slots, or continuous.

    ``start`` of a ``once`` interval and ``slots`` of a ``weekly`` one are wall
    clock times in ``timezone``; durations are elapsed time, so a slot that
    crosses a DST change lasts exactly its duration.
    """

    id: str
    kind: IntervalKind
    timezone: str = "UTC"
    readout_seconds: int = DEFAULT_READOUT_SECONDS
    #: ``once``: local date and time the interval starts (naive, read in ``timezone``)
    start: dt.datetime | None = None
    #: ``once``: how long it lasts
    duration: dt.timedelta | None = None
    #: ``weekly``: the slots
    slots: tuple[Slot, ...] = ()
    description: str = ""
    source: Source | None = _source()


@dataclass(frozen=True, slots=True)
class AlarmRule:
    """A threshold alarm (IETF draft §8): a statistic per read-out period against a threshold.

    The condition (``value > threshold`` for ``above``, ``<`` for ``below``)
    must hold for ``hold_down`` before the alarm is raised and be false for
    ``hold_down`` before it clears. Selectors left None match everything:
    ``ingress``/``egress`` (PE or service node names) for element rules,
    ``src``/``dst`` (topology node names) for link rules.
    """

    id: str
    target: AlarmTarget
    statistic: AlarmStatistic
    threshold: float
    op: AlarmOp = "above"
    hold_down: dt.timedelta = dt.timedelta(0)
    #: the interval the rule applies to; None = every interval
    interval: str | None = None
    ingress: str | None = None
    egress: str | None = None
    src: str | None = None
    dst: str | None = None
    #: service class name; None = all classes together
    service_class: str | None = None
    #: http(s) URL every raise and clear is posted to
    webhook: str | None = None
    description: str = ""
    source: Source | None = _source()

    def breached(self, value: float) -> bool:
        """True when ``value`` is on the alarming side of the threshold.

        >>> AlarmRule("r", "element", "bps", 1e9).breached(2e9)
        True
        """
        return value > self.threshold if self.op == "above" else value < self.threshold


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """A whole network configuration, or one FRP's view of it (``for_frp`` set)."""

    name: str
    asn: int
    service_nodes: tuple[ServiceNode, ...] = ()
    frps: tuple[Frp, ...] = ()
    pes: tuple[PeRouter, ...] = ()
    external_next_hops: tuple[ExternalNextHop, ...] = ()
    classes: tuple[ServiceClass, ...] = ()
    intervals: tuple[Interval, ...] = ()
    #: threshold alarms, evaluated by the MG only (an FRP's view has none)
    alarms: tuple[AlarmRule, ...] = ()
    #: name of the FRP whose view this is; None for the full configuration
    for_frp: str | None = None
    source: Source | None = _source()

    def pe(self, name: str) -> PeRouter:
        """The PE called ``name``; KeyError if there is none."""
        for pe in self.pes:
            if pe.name == name:
                return pe
        raise KeyError(name)

    def frp(self, name: str) -> Frp:
        """The FRP called ``name``; KeyError if there is none."""
        for frp in self.frps:
            if frp.name == name:
                return frp
        raise KeyError(name)

    def pes_of(self, frp: str) -> tuple[PeRouter, ...]:
        """The PEs that export to FRP ``frp``."""
        return tuple(pe for pe in self.pes if pe.frp == frp)

    def dscp_classes(self) -> tuple[str, ...]:
        """The class name of each DSCP value 0–63 (index = DSCP)."""
        default = next((c.name for c in self.classes if c.default), DEFAULT_CLASS)
        names = [default] * 64
        for cls in self.classes:
            for d in cls.dscp:
                names[d] = cls.name
        return tuple(names)

    def view_for_frp(self, frp: str) -> NetworkConfig:
        """The subset FRP ``frp`` may see: itself, its PEs in full, other PEs remote.

        Other PEs keep only what egress resolution needs (name, loopbacks,
        service node); their management and exporter addresses, interfaces and
        FRP are left out, and so are alarm rules (the MG evaluates them).
        Raises KeyError for an unknown FRP.
        """
        own = self.frp(frp)
        pes = tuple(
            pe
            if pe.frp == frp
            else PeRouter(
                name=pe.name,
                loopback=pe.loopback,
                service_node=pe.service_node,
                loopback6=pe.loopback6,
            )
            for pe in self.pes
        )
        return dataclasses.replace(self, frps=(own,), pes=pes, alarms=(), for_frp=frp)


def merge(configs: Iterable[NetworkConfig]) -> NetworkConfig:
    """One configuration from several documents of the same network (sections concatenated)."""
    configs = list(configs)
    if not configs:
        raise ConfigError([ConfigProblem("<none>", 0, "", "no configuration documents given")])
    first = configs[0]
    problems = [
        ConfigProblem(
            _file(c.source),
            _line(c.source),
            "network",
            f"network name {c.name!r} differs from {first.name!r} in {_file(first.source)}",
        )
        for c in configs[1:]
        if c.name != first.name
    ]
    problems += [
        ConfigProblem(
            _file(c.source),
            _line(c.source),
            "network",
            f"asn {c.asn} differs from {first.asn} in {_file(first.source)}",
        )
        for c in configs[1:]
        if c.asn != first.asn
    ]
    if problems:
        raise ConfigError(problems)
    return NetworkConfig(
        name=first.name,
        asn=first.asn,
        service_nodes=tuple(x for c in configs for x in c.service_nodes),
        frps=tuple(x for c in configs for x in c.frps),
        pes=tuple(x for c in configs for x in c.pes),
        external_next_hops=tuple(x for c in configs for x in c.external_next_hops),
        classes=tuple(x for c in configs for x in c.classes),
        intervals=tuple(x for c in configs for x in c.intervals),
        alarms=tuple(x for c in configs for x in c.alarms),
        for_frp=first.for_frp,
        source=first.source,
    )


def _file(source: Source | None) -> str:
    return source.file if source else "<config>"


def _line(source: Source | None) -> int:
    return source.line if source else 0


def problem_at(obj: object, element: str, message: str) -> ConfigProblem:
    """A ConfigProblem placed at the file and line ``obj`` was read from."""
    source = getattr(obj, "source", None)
    return ConfigProblem(_file(source), _line(source), element, message)


def _duplicates(kind: str, items: Iterable[tuple[str, object]]) -> Iterator[ConfigProblem]:
    seen: dict[str, object] = {}
    for key, obj in items:
        if key in seen:
            first = getattr(seen[key], "source", None)
            yield problem_at(
                obj,
                f"{kind}[{key}]",
                f"duplicate {kind}; first defined at {_file(first)}:{_line(first)}",
            )
        else:
            seen[key] = obj


def problems(config: NetworkConfig) -> list[ConfigProblem]:
    """Every semantic problem of a configuration (references, duplicates, ranges)."""
    from flowmatrix.config.schedule import interval_problems

    found: list[ConfigProblem] = []
    found += _duplicates("serviceNode", ((n.name, n) for n in config.service_nodes))
    found += _duplicates("frp", ((f.name, f) for f in config.frps))
    found += _duplicates("pe", ((p.name, p) for p in config.pes))
    found += _duplicates("pe loopback", ((str(p.loopback), p) for p in config.pes))
    found += _duplicates("class", ((c.name, c) for c in config.classes))
    found += _duplicates("interval", ((i.id, i) for i in config.intervals))
    found += _duplicates("externalNextHop", ((str(n.prefix), n) for n in config.external_next_hops))
    found += _duplicates(
        "exporter",
        (
            (f"{e.address}/{e.source_id if e.source_id is not None else '*'}", e)
            for p in config.pes
            for e in p.exporters
        ),
    )

    nodes = {n.name for n in config.service_nodes}
    frps = {f.name for f in config.frps}
    pes = {p.name for p in config.pes}
    for frp in config.frps:
        if frp.service_node is not None and frp.service_node not in nodes:
            found.append(
                problem_at(frp, f"frp[{frp.name}]", f"unknown service node {frp.service_node!r}")
            )
    for pe in config.pes:
        where = f"pe[{pe.name}]"
        if pe.service_node not in nodes:
            found.append(problem_at(pe, where, f"unknown service node {pe.service_node!r}"))
        if pe.frp is None:
            if config.for_frp is None:
                found.append(
                    problem_at(pe, where, "no frp given (only an FRP's view lists remote PEs)")
                )
        elif pe.frp not in frps:
            found.append(problem_at(pe, where, f"unknown frp {pe.frp!r}"))
        if pe.sampling_rate < 1:
            found.append(problem_at(pe, where, f"sampling rate {pe.sampling_rate} is below 1"))
        found += _duplicates(
            f"{where} interface ifIndex", ((str(i.if_index), i) for i in pe.interfaces)
        )
        found += _duplicates(f"{where} interface name", ((i.name, i) for i in pe.interfaces))
    for hop in config.external_next_hops:
        if hop.pe not in pes:
            found.append(problem_at(hop, f"nextHop[{hop.prefix}]", f"unknown pe {hop.pe!r}"))

    defaults = [c for c in config.classes if c.default]
    if len(defaults) > 1:
        found += [
            problem_at(c, f"class[{c.name}]", "more than one default class") for c in defaults[1:]
        ]
    owner: dict[int, str] = {}
    for cls in config.classes:
        for d in cls.dscp:
            if not 0 <= d <= 63:
                found.append(problem_at(cls, f"class[{cls.name}]", f"DSCP {d} is outside 0-63"))
            elif d in owner:
                found.append(
                    problem_at(
                        cls, f"class[{cls.name}]", f"DSCP {d} already belongs to class {owner[d]!r}"
                    )
                )
            else:
                owner[d] = cls.name
    for interval in config.intervals:
        found += interval_problems(interval)
    found += _alarm_problems(config)
    return found


def _alarm_problems(config: NetworkConfig) -> list[ConfigProblem]:
    """References, selectors and values of the alarm rules."""
    found = list(_duplicates("rule", ((r.id, r) for r in config.alarms)))
    intervals = {i.id for i in config.intervals}
    classes = {c.name for c in config.classes} or {DEFAULT_CLASS}
    endpoints = {p.name for p in config.pes} | {n.name for n in config.service_nodes}
    for rule in config.alarms:
        where = f"rule[{rule.id}]"
        if not (rule.threshold > 0 and math.isfinite(rule.threshold)):
            found.append(problem_at(rule, where, f"threshold {rule.threshold!r} is not above 0"))
        if rule.hold_down < dt.timedelta(0):
            found.append(problem_at(rule, where, "hold-down is negative"))
        if rule.statistic == "utilization" and rule.target != "link":
            found.append(
                problem_at(rule, where, f"utilization applies to links, not to {rule.target}")
            )
        if rule.interval is not None and rule.interval not in intervals:
            found.append(problem_at(rule, where, f"unknown interval {rule.interval!r}"))
        if rule.service_class is not None and rule.service_class not in classes:
            found.append(problem_at(rule, where, f"unknown class {rule.service_class!r}"))
        for attr, value in (("ingress", rule.ingress), ("egress", rule.egress)):
            if value is None:
                continue
            if rule.target != "element":
                found.append(problem_at(rule, where, f"{attr} selects elements, not {rule.target}"))
            elif value not in endpoints:
                found.append(problem_at(rule, where, f"unknown PE or service node {value!r}"))
        for attr, value in (("src", rule.src), ("dst", rule.dst)):
            if value is not None and rule.target != "link":
                found.append(problem_at(rule, where, f"{attr} selects links, not {rule.target}"))
        if rule.webhook is not None and not _URL.fullmatch(rule.webhook):
            found.append(problem_at(rule, where, f"webhook {rule.webhook!r} is not an http(s) URL"))
    return found


_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")


def check(config: NetworkConfig) -> NetworkConfig:
    """Return ``config`` unchanged if it has no semantic problem, else raise ConfigError."""
    found = problems(config)
    if found:
        raise ConfigError(found)
    return config
