"""Per-period statistics of matrix elements, links or the network → threshold alarm transitions.

An :class:`AlarmEngine` holds the configured :class:`~flowmatrix.config.model.AlarmRule`
s and, per rule and measurement interval, the state of every key (an element,
a link, ``"network"``). The MG feeds it one observation per rule, interval and
read-out period — the keys the rule selects and one value each, as numpy
arrays — and gets back the transitions:

* A condition (``value > threshold`` for ``above``, ``<`` for ``below``) is
  *pending* from the first period it is observed true; the alarm is raised at
  the first observation at least ``hold_down`` later with the condition true
  all along (Prometheus' ``for:`` semantics). A dip back shorter than that
  resets the pending raise.
* A raised alarm clears the same way: at the first observation at least
  ``hold_down`` after the condition was first seen false again, false all
  along. A hold-down of 0 raises and clears at the observation itself.
* An observation is the whole period for that rule and interval: a tracked
  key missing from it counts as 0 (no traffic), so a silent element's
  ``above`` alarm clears. An observation not later than the previous one of
  the same rule and interval is ignored, so replaying a period after a restart
  raises nothing twice.

Only breaching and tracked keys are visited one by one; the comparison runs
over the whole array at once. :meth:`AlarmEngine.state` is a JSON-able dict
and :meth:`AlarmEngine.restore` puts it back, so an MG restart neither
re-raises nor forgets raised alarms. ``alarms_active{rule}`` and
``alarm_transitions_total{rule,state}`` are exported to Prometheus.

>>> from flowmatrix.config.model import AlarmRule, NetworkConfig
>>> import datetime as dt
>>> rule = AlarmRule("hot", "element", "bps", 100.0, hold_down=dt.timedelta(minutes=5))
>>> engine = AlarmEngine([rule])
>>> engine.observe("hot", "always", 300_000, ["a>b", "a>c"], np.array([150.0, 20.0]))
[]
>>> [(e.key, e.state, e.at_ms) for e in engine.observe("hot", "always", 600_000, ["a>b"], [180.0])]
[('a>b', 'raised', 600000)]
>>> [(a.key, a.since_ms) for a in engine.active()]
[('a>b', 600000)]
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge

from flowmatrix.config.model import AlarmRule, NetworkConfig

__all__ = [
    "STATE_VERSION",
    "ActiveAlarm",
    "AlarmEngine",
    "AlarmEvent",
    "AlarmState",
    "alarm_transitions_total",
    "alarms_active",
    "element_mask",
    "link_mask",
]

log = logging.getLogger("flowmatrix.stats")

AlarmState = Literal["raised", "cleared"]

#: version of the dict :meth:`AlarmEngine.state` returns
STATE_VERSION = 1

alarms_active = Gauge("alarms_active", "Alarms currently raised, by rule.", ["rule"])
alarm_transitions_total = Counter(
    "alarm_transitions_total",
    "Alarms raised and cleared, by rule and new state.",
    ["rule", "state"],
)


def _endpoint(
    config: NetworkConfig, selector: str | None, names: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    column = np.asarray(names)
    if selector is None:
        return np.ones(column.shape, dtype=bool)
    pes = [p.name for p in config.pes if selector in (p.name, p.service_node)]
    return np.isin(column, np.asarray(pes or [selector]))


def element_mask(
    rule: AlarmRule,
    config: NetworkConfig,
    ingress: npt.ArrayLike,
    egress: npt.ArrayLike,
    classes: npt.ArrayLike,
) -> npt.NDArray[np.bool_]:
    """Which matrix elements (PE name columns and class column) an element rule selects.

    ``ingress``/``egress`` of the rule match a PE by name or every PE of a
    service node; ``class`` matches the class column.

    >>> from flowmatrix.config.model import PeRouter
    >>> import ipaddress
    >>> config = NetworkConfig("n", 1, pes=(
    ...     PeRouter("par-pe1", ipaddress.ip_address("10.0.0.1"), "PAR"),
    ...     PeRouter("lon-pe1", ipaddress.ip_address("10.0.0.2"), "LON")))
    >>> rule = AlarmRule("r", "element", "bps", 1.0, egress="LON", service_class="EF")
    >>> element_mask(rule, config, ["par-pe1"] * 3, ["lon-pe1", "lon-pe1", "par-pe1"],
    ...              ["EF", "BE", "EF"]).tolist()
    [True, False, False]
    """
    mask = _endpoint(config, rule.ingress, ingress) & _endpoint(config, rule.egress, egress)
    if rule.service_class is not None:
        mask &= np.asarray(classes) == rule.service_class
    return mask


def link_mask(rule: AlarmRule, src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which link directions (source and destination router columns) a link rule selects.

    >>> link_mask(AlarmRule("r", "link", "utilization", 0.8, src="a"), ["a", "b"], ["b", "a"])
    array([ True, False])
    """
    mask = np.ones(np.asarray(src).shape, dtype=bool)
    if rule.src is not None:
        mask &= np.asarray(src) == rule.src
    if rule.dst is not None:
        mask &= np.asarray(dst) == rule.dst
    return mask


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One transition of one key of one rule: raised or cleared, when, at which value."""

    rule: str
    interval: str
    key: str
    state: AlarmState
    #: end of the read-out period whose observation made the transition (Unix ms)
    at_ms: int
    #: the statistic in that period
    value: float
    threshold: float

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-able dict (field names as in the dataclass)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """An alarm currently raised: since when, and the latest value observed."""

    rule: str
    interval: str
    key: str
    since_ms: int
    value: float
    threshold: float


@dataclass(slots=True)
class _Track:
    """State of one key that is raised or pending (keys neither raised nor pending are not kept)."""

    raised: bool
    #: when the alarm was raised (0 while only pending a raise)
    since_ms: int
    #: first observation of the condition opposite to ``raised``; None when steady
    pending_ms: int | None
    value: float


@dataclass(slots=True)
class _Stream:
    """The keys of one rule in one interval, and the last observation applied."""

    last_ms: int | None = None
    tracks: dict[str, _Track] = dataclasses.field(default_factory=dict)


class AlarmEngine:
    """Threshold alarms of a set of rules, fed one observation per rule, interval and period."""

    def __init__(self, rules: Iterable[AlarmRule]) -> None:
        self.rules: dict[str, AlarmRule] = {r.id: r for r in rules}
        self._streams: dict[tuple[str, str], _Stream] = {}
        for rule in self.rules:
            alarms_active.labels(rule=rule).set(0)

    def rules_for(self, interval: str) -> tuple[AlarmRule, ...]:
        """The rules that apply to interval ``interval`` (theirs, or every interval)."""
        return tuple(r for r in self.rules.values() if r.interval in (None, interval))

    def observe(
        self,
        rule: str,
        interval: str,
        at_ms: int,
        keys: Sequence[str] | npt.NDArray[np.str_],
        values: npt.ArrayLike,
    ) -> list[AlarmEvent]:
        """Apply one period's values of rule ``rule`` in ``interval``; return its transitions.

        ``keys[i]`` names the element, link or network whose statistic in the
        period ending at ``at_ms`` is ``values[i]``. Raises KeyError for an
        unknown rule and ValueError when keys and values differ in length.
        """
        spec = self.rules[rule]
        vals = np.asarray(values, dtype=np.float64)
        if vals.ndim != 1 or len(vals) != len(keys):
            msg = f"rule {rule}: {len(keys)} keys but values of shape {vals.shape}"
            raise ValueError(msg)
        stream = self._streams.setdefault((rule, interval), _Stream())
        if stream.last_ms is not None and at_ms <= stream.last_ms:
            log.info(
                "component=alarms rule=%s interval=%s at_ms=%d last_ms=%d "
                "observation not after the last one, ignored",
                rule,
                interval,
                at_ms,
                stream.last_ms,
            )
            return []
        stream.last_ms = at_ms
        breach = vals > spec.threshold if spec.op == "above" else vals < spec.threshold
        visit = breach
        if stream.tracks:
            visit = breach | np.isin(np.asarray(keys), np.asarray(list(stream.tracks)))
        hold_ms = int(spec.hold_down.total_seconds() * 1000)
        events: list[AlarmEvent] = []
        seen: set[str] = set()
        for i in np.flatnonzero(visit).tolist():
            key = str(keys[i])
            seen.add(key)
            self._step(
                spec, interval, stream, key, bool(breach[i]), at_ms, float(vals[i]), hold_ms, events
            )
        for key in [k for k in stream.tracks if k not in seen]:
            self._step(spec, interval, stream, key, spec.breached(0.0), at_ms, 0.0, hold_ms, events)
        self._count(rule)
        for event in events:
            alarm_transitions_total.labels(rule=rule, state=event.state).inc()
            log.info(
                "component=alarms rule=%s interval=%s key=%s state=%s at_ms=%d "
                "value=%g threshold=%g",
                rule,
                interval,
                event.key,
                event.state,
                event.at_ms,
                event.value,
                event.threshold,
            )
        return events

    @staticmethod
    def _step(
        spec: AlarmRule,
        interval: str,
        stream: _Stream,
        key: str,
        breached: bool,
        at_ms: int,
        value: float,
        hold_ms: int,
        events: list[AlarmEvent],
    ) -> None:
        track = stream.tracks.get(key)
        if track is None:
            if not breached:
                return
            track = stream.tracks[key] = _Track(False, 0, None, value)
        track.value = value
        if breached == track.raised:
            track.pending_ms = None
            if not track.raised:
                del stream.tracks[key]
            return
        if track.pending_ms is None:
            track.pending_ms = at_ms
        if at_ms - track.pending_ms < hold_ms:
            return
        state: AlarmState = "raised" if breached else "cleared"
        events.append(AlarmEvent(spec.id, interval, key, state, at_ms, value, spec.threshold))
        if breached:
            track.raised, track.since_ms, track.pending_ms = True, at_ms, None
        else:
            del stream.tracks[key]

    def _count(self, rule: str) -> None:
        raised = sum(
            t.raised
            for (r, _), stream in self._streams.items()
            if r == rule
            for t in stream.tracks.values()
        )
        alarms_active.labels(rule=rule).set(raised)

    def active(self, rule: str | None = None) -> list[ActiveAlarm]:
        """The alarms currently raised (of one rule, or all), oldest first."""
        found = [
            ActiveAlarm(r, interval, key, t.since_ms, t.value, self.rules[r].threshold)
            for (r, interval), stream in self._streams.items()
            if rule in (None, r)
            for key, t in stream.tracks.items()
            if t.raised
        ]
        return sorted(found, key=lambda a: (a.since_ms, a.rule, a.interval, a.key))

    def state(self) -> dict[str, Any]:
        """Everything needed to resume after a restart, as a JSON-able dict."""
        return {
            "version": STATE_VERSION,
            "streams": [
                {
                    "rule": rule,
                    "interval": interval,
                    "last_ms": stream.last_ms,
                    "tracks": {key: dataclasses.asdict(t) for key, t in stream.tracks.items()},
                }
                for (rule, interval), stream in self._streams.items()
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state`'s output; rules no longer configured are dropped.

        Raises ValueError for a state of another version. No event is emitted:
        the alarms restored were raised (and posted) before the restart.
        """
        if state.get("version") != STATE_VERSION:
            msg = f"alarm state version {state.get('version')!r}, expected {STATE_VERSION}"
            raise ValueError(msg)
        self._streams = {}
        for item in state["streams"]:
            if item["rule"] not in self.rules:
                log.warning(
                    "component=alarms rule=%s not configured any more, state dropped", item["rule"]
                )
                continue
            self._streams[(item["rule"], item["interval"])] = _Stream(
                last_ms=item["last_ms"],
                tracks={
                    key: _Track(
                        raised=bool(t["raised"]),
                        since_ms=int(t["since_ms"]),
                        pending_ms=None if t["pending_ms"] is None else int(t["pending_ms"]),
                        value=float(t["value"]),
                    )
                    for key, t in item["tracks"].items()
                },
            )
        for rule in self.rules:
            self._count(rule)
