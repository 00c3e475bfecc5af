"""Turn a configuration into rich tables for the terminal."""

from __future__ import annotations

from collections import Counter

from rich.table import Table

from flowmatrix.config.model import WEEKDAYS, AlarmRule, Interval, NetworkConfig
from flowmatrix.config.xml import format_duration

__all__ = ["config_tables", "describe_interval", "describe_rule"]


def describe_interval(interval: Interval) -> str:
    """One line saying when an interval measures, e.g. ``mon 09:00 +PT8H (Europe/Paris)``."""
    if interval.kind == "continuous":
        return "always"
    if interval.kind == "once":
        start = interval.start.isoformat() if interval.start else "?"
        length = format_duration(interval.duration) if interval.duration else "?"
        return f"{start} +{length} ({interval.timezone})"
    slots = ", ".join(
        f"{WEEKDAYS[s.day]} {s.start.strftime('%H:%M')} +{format_duration(s.duration)}"
        for s in interval.slots
    )
    return f"{slots} ({interval.timezone})"


def describe_rule(rule: AlarmRule) -> str:
    """One line saying what an alarm rule watches, e.g. ``utilization above 0.8 for PT10M``.

    >>> from flowmatrix.config.model import AlarmRule
    >>> describe_rule(AlarmRule("r", "element", "bps", 8e9, ingress="PAR", service_class="EF"))
    'bps above 8e+09 (ingress PAR, class EF)'
    """
    hold = f" for {format_duration(rule.hold_down)}" if rule.hold_down else ""
    selectors = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("ingress", rule.ingress),
            ("egress", rule.egress),
            ("src", rule.src),
            ("dst", rule.dst),
            ("class", rule.service_class),
        )
        if value is not None
    )
    where = f" ({selectors})" if selectors else ""
    return f"{rule.statistic} {rule.op} {rule.threshold:g}{hold}{where}"


def config_tables(config: NetworkConfig) -> list[Table]:
    """Tables of service nodes, FRPs, classes, intervals and alarm rules of a configuration."""
    view = f" — view of {config.for_frp}" if config.for_frp else ""
    pes_per_node = Counter(pe.service_node for pe in config.pes)
    nodes = Table(title=f"network {config.name} (AS{config.asn}){view}: service nodes")
    for column in ("service node", "PEs", "capacity"):
        nodes.add_column(column)
    for node in config.service_nodes:
        capacity = f"{node.capacity_bps / 1e9:,.0f} Gbit/s" if node.capacity_bps else "from links"
        nodes.add_row(node.name, str(pes_per_node[node.name]), capacity)

    frps = Table(title="flow record processors")
    for column in ("FRP", "address", "service node", "PEs", "interfaces", "sampled PEs"):
        frps.add_column(column)
    for frp in config.frps:
        own = config.pes_of(frp.name)
        frps.add_row(
            frp.name,
            str(frp.address),
            frp.service_node or "",
            str(len(own)),
            str(sum(len(pe.interfaces) for pe in own)),
            str(sum(pe.sampling_rate > 1 for pe in own)),
        )

    classes = Table(title="service classes")
    classes.add_column("class")
    classes.add_column("DSCP")
    for cls in config.classes:
        classes.add_row(cls.name, "default" if cls.default else " ".join(map(str, cls.dscp)))

    intervals = Table(title="measurement intervals")
    for column in ("interval", "kind", "read-out", "when"):
        intervals.add_column(column)
    for interval in config.intervals:
        intervals.add_row(
            interval.id, interval.kind, f"{interval.readout_seconds} s", describe_interval(interval)
        )
    tables = [nodes, frps, classes, intervals]
    if config.alarms:
        alarms = Table(title="threshold alarms")
        for column in ("rule", "target", "when", "interval", "webhook"):
            alarms.add_column(column)
        for rule in config.alarms:
            alarms.add_row(
                rule.id,
                rule.target,
                describe_rule(rule),
                rule.interval or "all",
                rule.webhook or "",
            )
        tables.append(alarms)
    remote = sum(pe.remote for pe in config.pes)
    summary = Table(title="totals", show_header=False)
    summary.add_column("what")
    summary.add_column("count")
    summary.add_row("PE routers", f"{len(config.pes)}" + (f" ({remote} remote)" if remote else ""))
    summary.add_row("external next hops", str(len(config.external_next_hops)))
    return [*tables, summary]
