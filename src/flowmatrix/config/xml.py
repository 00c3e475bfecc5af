"""Read and write configuration XML safely: size-limited, no DTDs, no entities, XSD-checked.

Every problem is reported as a :class:`~flowmatrix.errors.ConfigProblem` naming
file, line and element, so ``flowmatrix config validate`` prints one line each.
Documents that declare a DOCTYPE or entities are refused before parsing:
a configuration never needs them, and they are how XXE and entity-expansion
("billion laughs") attacks arrive.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import TypeVar

from lxml import etree

from flowmatrix.config.model import (
    DEFAULT_READOUT_SECONDS,
    WEEKDAYS,
    AlarmOp,
    AlarmRule,
    AlarmStatistic,
    AlarmTarget,
    Exporter,
    ExternalNextHop,
    Frp,
    Interface,
    Interval,
    IntervalKind,
    NetworkConfig,
    PeRouter,
    ServiceClass,
    ServiceNode,
    Slot,
    Source,
    check,
    merge,
)
from flowmatrix.errors import ConfigError, ConfigProblem

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "config_from_bytes",
    "config_to_bytes",
    "load_config",
    "read_config",
    "write_config",
]

#: largest configuration document accepted (a 1,000-PE network is a few MiB)
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_T = TypeVar("_T")

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY\s+(%\s*)?([^\s>]+)\s*([^>]*)>", re.IGNORECASE | re.DOTALL)
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def _schema() -> etree.XMLSchema:
    xsd = resources.files("flowmatrix.config").joinpath("flowmatrix-config.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd, _parser()))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _refuse_dtd(data: bytes, file: str) -> list[ConfigProblem]:
    """Problems for a document that declares entities or a DOCTYPE (checked on the raw bytes)."""
    text = data
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 BOM: scan the decoded text as UTF-8
        text = data.decode("utf-16", errors="replace").encode()
    found: list[ConfigProblem] = []
    internal: list[tuple[str, int]] = []
    for match in _ENTITY.finditer(text):
        name = match.group(2).decode(errors="replace")
        rest = match.group(3)
        line = _line_of(text, match.start())
        if re.match(rb"\s*(SYSTEM|PUBLIC)\b", rest, re.IGNORECASE):
            target = rest.split(maxsplit=1)[1].decode(errors="replace") if b" " in rest else ""
            found.append(
                ConfigProblem(
                    file,
                    line,
                    f"!ENTITY {name}",
                    f"external entity {target} refused: configurations may not reference "
                    "external resources (XXE)",
                )
            )
        else:
            internal.append((name, line))
    if internal:
        name, line = internal[0]
        more = f" and {len(internal) - 1} more" if len(internal) > 1 else ""
        found.append(
            ConfigProblem(
                file,
                line,
                f"!ENTITY {name}",
                f"entity declaration{more} refused: configurations may not declare entities "
                "(entity-expansion protection)",
            )
        )
    if not found and (doctype := _DOCTYPE.search(text)):
        found.append(
            ConfigProblem(
                file,
                _line_of(text, doctype.start()),
                "!DOCTYPE",
                "DOCTYPE declarations are not allowed in configurations",
            )
        )
    return found


def _parse(data: bytes, file: str) -> etree._Element:
    """The root element of a safe, schema-valid document; ConfigError otherwise."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    0,
                    "",
                    f"document is {len(data)} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit",
                )
            ]
        )
    if refused := _refuse_dtd(data, file):
        raise ConfigError(refused)
    try:
        tree = etree.fromstring(data, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        message = exc.msg.split(", line ")[0] if exc.msg else str(exc)
        raise ConfigError([ConfigProblem(file, line, "", f"malformed XML: {message}")]) from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ConfigError(
            [ConfigProblem(file, 1, "!DOCTYPE", "DOCTYPE declarations are not allowed")]
        )
    schema = _schema()
    if not schema.validate(tree):
        raise ConfigError(
            [ConfigProblem(file, e.line, _label(tree, e.path), e.message) for e in schema.error_log]
        )
    return tree.getroot()


def _label(tree: etree._ElementTree, path: str | None) -> str:
    """``pe[par-pe1]`` for the element at ``path``, or its tag when it has no name."""
    if not path:
        return ""
    found = tree.xpath(path)
    el = found[0] if isinstance(found, list) and found else None
    if not isinstance(el, etree._Element):
        return path.rsplit("/", 1)[-1]
    name = el.get("name") or el.get("id") or el.get("prefix")
    return f"{el.tag}[{name}]" if name else str(el.tag)


class _Reader:
    """Turns a schema-valid tree into models, collecting value problems with their lines."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []

    def source(self, el: etree._Element) -> Source:
        return Source(self.file, el.sourceline or 0)

    def value(self, el: etree._Element, attr: str, parse: Callable[[str], _T]) -> _T | None:
        raw = el.get(attr)
        if raw is None:
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            name = el.get("name") or el.get("id") or el.get("prefix") or ""
            element = f"{el.tag}[{name}]" if name else str(el.tag)
            self.problems.append(
                ConfigProblem(self.file, el.sourceline or 0, element, f"{attr}={raw!r}: {exc}")
            )
            return None

    def network(self, root: etree._Element) -> NetworkConfig:
        config = NetworkConfig(
            name=root.get("name", ""),
            asn=int(root.get("asn", "0")),
            service_nodes=tuple(
                self.service_node(e) for e in root.iterfind("serviceNodes/serviceNode")
            ),
            frps=tuple(self.frp(e) for e in root.iterfind("frps/frp")),
            pes=tuple(self.pe(e) for e in root.iterfind("peRouters/pe")),
            external_next_hops=tuple(
                self.next_hop(e) for e in root.iterfind("externalNextHops/nextHop")
            ),
            classes=tuple(self.service_class(e) for e in root.iterfind("serviceClasses/class")),
            intervals=tuple(self.interval(e) for e in root.iterfind("intervals/interval")),
            alarms=tuple(self.alarm(e) for e in root.iterfind("alarms/rule")),
            for_frp=root.get("forFrp"),
            source=self.source(root),
        )
        if self.problems:
            raise ConfigError(self.problems)
        return config

    def service_node(self, el: etree._Element) -> ServiceNode:
        return ServiceNode(
            name=el.get("name", ""),
            capacity_bps=self.value(el, "capacityBps", float),
            description=el.get("description", ""),
            source=self.source(el),
        )

    def frp(self, el: etree._Element) -> Frp:
        return Frp(
            name=el.get("name", ""),
            address=self.value(el, "address", ipaddress.ip_address) or _NO_ADDRESS,
            service_node=el.get("serviceNode"),
            source=self.source(el),
        )

    def pe(self, el: etree._Element) -> PeRouter:
        return PeRouter(
            name=el.get("name", ""),
            loopback=self.value(el, "loopback", ipaddress.ip_address) or _NO_ADDRESS,
            service_node=el.get("serviceNode", ""),
            frp=el.get("frp"),
            management=self.value(el, "management", ipaddress.ip_address),
            loopback6=self.value(el, "loopback6", ipaddress.IPv6Address),
            sampling_rate=self.value(el, "samplingRate", int) or 1,
            exporters=tuple(
                Exporter(
                    address=self.value(x, "address", ipaddress.ip_address) or _NO_ADDRESS,
                    source_id=self.value(x, "sourceId", int),
                    source=self.source(x),
                )
                for x in el.iterfind("exporter")
            ),
            interfaces=tuple(
                Interface(
                    if_index=int(x.get("ifIndex", "0")),
                    name=x.get("name", ""),
                    description=x.get("description", ""),
                    source=self.source(x),
                )
                for x in el.iterfind("interface")
            ),
            source=self.source(el),
        )

    def next_hop(self, el: etree._Element) -> ExternalNextHop:
        prefix = self.value(el, "prefix", lambda s: ipaddress.ip_network(s, strict=True))
        return ExternalNextHop(
            prefix=prefix or ipaddress.ip_network("0.0.0.0/32"),
            pe=el.get("pe", ""),
            source=self.source(el),
        )

    def service_class(self, el: etree._Element) -> ServiceClass:
        return ServiceClass(
            name=el.get("name", ""),
            dscp=tuple(int(d) for d in el.get("dscp", "").split()),
            default=el.get("default", "false") in ("true", "1"),
            source=self.source(el),
        )

    def interval(self, el: etree._Element) -> Interval:
        kind: IntervalKind = el.get("kind", "continuous")  # the XSD allows only the three kinds
        return Interval(
            id=el.get("id", ""),
            kind=kind,
            timezone=el.get("timezone", "UTC"),
            readout_seconds=self.value(el, "readoutSeconds", int) or DEFAULT_READOUT_SECONDS,
            start=self.value(el, "start", dt.datetime.fromisoformat),
            duration=self.value(el, "duration", parse_duration),
            slots=tuple(
                Slot(
                    day=WEEKDAYS.index(s.get("day", "mon")),
                    start=self.value(s, "start", dt.time.fromisoformat) or dt.time(),
                    duration=self.value(s, "duration", parse_duration) or dt.timedelta(),
                    source=self.source(s),
                )
                for s in el.iterfind("slot")
            ),
            description=el.get("description", ""),
            source=self.source(el),
        )

    def alarm(self, el: etree._Element) -> AlarmRule:
        # the XSD allows only the listed targets, statistics and operators
        target: AlarmTarget = el.get("target", "element")
        statistic: AlarmStatistic = el.get("statistic", "bytes")
        op: AlarmOp = el.get("op", "above")
        return AlarmRule(
            id=el.get("id", ""),
            target=target,
            statistic=statistic,
            threshold=self.value(el, "threshold", float) or 0.0,
            op=op,
            hold_down=self.value(el, "holdDown", parse_duration) or dt.timedelta(0),
            interval=el.get("interval"),
            ingress=el.get("ingress"),
            egress=el.get("egress"),
            src=el.get("src"),
            dst=el.get("dst"),
            service_class=el.get("class"),
            webhook=el.get("webhook"),
            description=el.get("description", ""),
            source=self.source(el),
        )


_NO_ADDRESS = ipaddress.IPv4Address(0)


def parse_duration(text: str) -> dt.timedelta:
    """An elapsed xs:duration (days, hours, minutes, seconds) as a timedelta."""
    match = _DURATION.fullmatch(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        msg = "not a duration of days/hours/minutes/seconds such as PT8H or P1DT30M"
        raise ValueError(msg)
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: dt.timedelta) -> str:
    """A timedelta as an xs:duration such as ``PT8H`` or ``P1DT30M``."""
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if v)
    out = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return out if out != "P" else "PT0S"


def config_from_bytes(data: bytes, file: str = "<string>") -> NetworkConfig:
    """One document's configuration, structurally checked but not cross-checked."""
    return _Reader(file).network(_parse(data, file))


def read_config(path: Path) -> NetworkConfig:
    """One file's configuration, structurally checked but not cross-checked."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise ConfigError(
                [
                    ConfigProblem(
                        file,
                        0,
                        "",
                        f"document is {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit",
                    )
                ]
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, 0, "", f"cannot read: {exc.strerror}")]) from None
    return config_from_bytes(data, file)


def load_config(paths: Sequence[Path] | Path) -> NetworkConfig:
    """The checked configuration of one network from one or more files.

    Every file is read and every problem collected before raising, so one run
    reports all of them. Raises ConfigError.
    """
    paths = [paths] if isinstance(paths, Path) else list(paths)
    configs: list[NetworkConfig] = []
    problems: list[ConfigProblem] = []
    for path in paths:
        try:
            configs.append(read_config(path))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return check(merge(configs))


def _set(el: etree._Element, attr: str, value: object) -> None:
    if value is None or value == "":
        return
    el.set(
        attr,
        value
        if isinstance(value, str)
        else repr(value)
        if isinstance(value, float)
        else str(value),
    )


def _section(root: etree._Element, name: str, items: Iterable[object]) -> etree._Element | None:
    items = list(items)
    return etree.SubElement(root, name) if items else None


def config_to_bytes(config: NetworkConfig) -> bytes:
    """The configuration as an indented UTF-8 XML document that reads back equal."""
    root = etree.Element("network")
    _set(root, "name", config.name)
    _set(root, "asn", config.asn)
    _set(root, "version", 1)
    _set(root, "forFrp", config.for_frp)
    if (sec := _section(root, "serviceNodes", config.service_nodes)) is not None:
        for node in config.service_nodes:
            el = etree.SubElement(sec, "serviceNode")
            _set(el, "name", node.name)
            _set(el, "capacityBps", node.capacity_bps)
            _set(el, "description", node.description)
    if (sec := _section(root, "frps", config.frps)) is not None:
        for frp in config.frps:
            el = etree.SubElement(sec, "frp")
            _set(el, "name", frp.name)
            _set(el, "address", frp.address)
            _set(el, "serviceNode", frp.service_node)
    if (sec := _section(root, "peRouters", config.pes)) is not None:
        for pe in config.pes:
            el = etree.SubElement(sec, "pe")
            for attr, value in (
                ("name", pe.name),
                ("loopback", pe.loopback),
                ("loopback6", pe.loopback6),
                ("management", pe.management),
                ("serviceNode", pe.service_node),
                ("frp", pe.frp),
                ("samplingRate", pe.sampling_rate if pe.sampling_rate != 1 else None),
            ):
                _set(el, attr, value)
            for exp in pe.exporters:
                x = etree.SubElement(el, "exporter")
                _set(x, "address", exp.address)
                _set(x, "sourceId", exp.source_id)
            for iface in pe.interfaces:
                x = etree.SubElement(el, "interface")
                _set(x, "ifIndex", iface.if_index)
                _set(x, "name", iface.name)
                _set(x, "description", iface.description)
    if (sec := _section(root, "externalNextHops", config.external_next_hops)) is not None:
        for hop in config.external_next_hops:
            el = etree.SubElement(sec, "nextHop")
            _set(el, "prefix", hop.prefix)
            _set(el, "pe", hop.pe)
    if (sec := _section(root, "serviceClasses", config.classes)) is not None:
        for cls in config.classes:
            el = etree.SubElement(sec, "class")
            _set(el, "name", cls.name)
            _set(el, "dscp", " ".join(str(d) for d in cls.dscp))
            _set(el, "default", "true" if cls.default else None)
    if (sec := _section(root, "intervals", config.intervals)) is not None:
        for interval in config.intervals:
            el = etree.SubElement(sec, "interval")
            _set(el, "id", interval.id)
            _set(el, "kind", interval.kind)
            _set(el, "timezone", interval.timezone)
            _set(el, "readoutSeconds", interval.readout_seconds)
            _set(el, "start", interval.start.isoformat() if interval.start else None)
            _set(el, "duration", format_duration(interval.duration) if interval.duration else None)
            _set(el, "description", interval.description)
            for slot in interval.slots:
                s = etree.SubElement(el, "slot")
                _set(s, "day", WEEKDAYS[slot.day])
                _set(
                    s,
                    "start",
                    slot.start.isoformat(
                        timespec="minutes" if not slot.start.second else "seconds"
                    ),
                )
                _set(s, "duration", format_duration(slot.duration))
    if (sec := _section(root, "alarms", config.alarms)) is not None:
        for rule in config.alarms:
            el = etree.SubElement(sec, "rule")
            attrs: tuple[tuple[str, object], ...] = (
                ("id", rule.id),
                ("target", rule.target),
                ("statistic", rule.statistic),
                ("op", rule.op if rule.op != "above" else None),
                ("threshold", float(rule.threshold)),
                ("holdDown", format_duration(rule.hold_down) if rule.hold_down else None),
                ("interval", rule.interval),
                ("ingress", rule.ingress),
                ("egress", rule.egress),
                ("src", rule.src),
                ("dst", rule.dst),
                ("class", rule.service_class),
                ("webhook", rule.webhook),
                ("description", rule.description),
            )
            for key, setting in attrs:
                _set(el, key, setting)
    etree.indent(root, space="  ")
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data


def write_config(config: NetworkConfig, path: Path) -> None:
    """Write the configuration as XML atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(config_to_bytes(config))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a configuration is meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
