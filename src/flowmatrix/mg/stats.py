"""Stored read-out periods → per-interval element statistics and the network busy hour.

:class:`MgStats` keeps, per measurement interval, one
:class:`~flowmatrix.stats.running.RunningStats` for bytes and one for packets
over the PE-to-PE elements (ingress, egress, class), coded through an
:class:`~flowmatrix.stats.running.ElementIndex`, the network volume
(bytes) of every period for the busy hour, and the bytes per service node of
every period (:func:`~flowmatrix.stats.busy.node_volumes`) for the per-node
busy hours (:meth:`MgStats.node_busy`). :func:`element_forecast` turns one
element's history (:meth:`MgStats.element_history`) into a Holt–Winters
forecast, its backtest and the threshold crossing served by ``/forecast``.

* ``observe(interval, period_start_ms)`` is called by the upload route, in
  the request's worker thread, after a partial was *stored* (a first version
  or a revision). It sums the current partials of that one period
  (``total_matrix(..., granularity="pe_pe")``), not the history, and puts the
  period's values in: ``update`` for a period not yet counted, ``replace``
  for one already counted, so a late FRP or a revision replaces the period's
  values instead of adding a period.
* ``start()`` rebuilds everything from the store's stored periods, one
  period at a time. That read at start is the only re-read; afterwards every
  update is incremental.

Each period total also goes to an :class:`~flowmatrix.stats.alarms.AlarmEngine`
of the configuration's rules: element rules get one key per
``"ingress>egress"`` (ASCII: the key goes into the webhook's
Idempotency-Key header), network rules the key ``"network"``; link rules
are skipped (no topology at the MG). The engine's state is saved in the
store's ``meta`` table after each evaluation and restored at start; a
:class:`~flowmatrix.stats.webhook.WebhookSender` runs with the component when a
rule has a webhook.

Reads (:meth:`MgStats.rows`, :meth:`MgStats.busy`,
:meth:`MgStats.active_alarms`) and updates are serialized by one lock.

>>> from flowmatrix.config.model import NetworkConfig
>>> from flowmatrix.matrix.store import Store
>>> with Store(":memory:") as store:
...     stats = MgStats(NetworkConfig(name="n", asn=1), store)
...     stats.start()
...     rows = stats.rows("always")
>>> rows
[]
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from flowmatrix.config.model import Interval, NetworkConfig
from flowmatrix.errors import FlowmatrixError
from flowmatrix.matrix.store import Store, Upload
from flowmatrix.matrix.total import total_matrix
from flowmatrix.stats.alarms import ActiveAlarm, AlarmEngine, AlarmEvent, element_mask
from flowmatrix.stats.busy import BusyHour, busy_hour, busy_hours, node_volumes
from flowmatrix.stats.forecast import backtest, crossing_time, forecast
from flowmatrix.stats.running import ElementIndex, RunningStats, dense
from flowmatrix.stats.webhook import WebhookSender

__all__ = [
    "ALARM_STATE_KEY",
    "MIN_FORECAST_PERIODS",
    "STATS_COLUMNS",
    "ForecastError",
    "MgStats",
    "element_forecast",
]

log = logging.getLogger("flowmatrix.mg.stats")

F64 = npt.NDArray[np.float64]
_HOUR_S: Final = 3600
#: key of the alarm engine's JSON state in the store's ``meta`` table
ALARM_STATE_KEY: Final = "alarm_state"

#: shortest history an element forecast accepts, periods
MIN_FORECAST_PERIODS: Final = 4
_DAY_S: Final = 86_400

#: columns of :meth:`MgStats.rows`, in order
STATS_COLUMNS: Final = (
    "ingress",
    "egress",
    "class",
    "periods",
    "mean_bytes",
    "std_bytes",
    "peak_bytes",
    "p95_bytes",
    "mean_packets",
    "peak_packets",
    "p95_packets",
)


@dataclass
class _IntervalStats:
    """One interval's element statistics and per-period network volume."""

    index: ElementIndex = field(default_factory=ElementIndex)
    #: (ingress, egress, class) by key id; the id is what the index codes
    keys: list[tuple[str, str, str]] = field(default_factory=list)
    ids: dict[tuple[str, str, str], int] = field(default_factory=dict)
    bytes: RunningStats = field(default_factory=RunningStats)
    packets: RunningStats = field(default_factory=RunningStats)
    #: period start (UTC ms) → network volume of the period, bytes; its keys are the counted periods
    volume: dict[int, float] = field(default_factory=dict)
    #: period start (UTC ms) → bytes per service node (``MgStats.nodes`` order)
    node_volume: dict[int, F64] = field(default_factory=dict)
    #: service-node code of each key id's ingress and egress PE (-1: none)
    ingress_node: list[int] = field(default_factory=list)
    egress_node: list[int] = field(default_factory=list)

    def key_ids(
        self, keys: list[tuple[str, str, str]], node_of: dict[str, int] | None = None
    ) -> list[int]:
        nodes = node_of or {}
        out = []
        for key in keys:  # per element of one period's total
            if key not in self.ids:
                self.ids[key] = len(self.keys)
                self.keys.append(key)
                self.ingress_node.append(nodes.get(key[0], -1))
                self.egress_node.append(nodes.get(key[1], -1))
            out.append(self.ids[key])
        return out


class MgStats:
    """Per-interval element statistics and busy hour, updated as periods are stored."""

    def __init__(self, config: NetworkConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self._intervals: dict[str, Interval] = {i.id: i for i in config.intervals}
        #: service node names, sorted; a node's code is its position
        self.nodes: tuple[str, ...] = tuple(
            sorted({n.name for n in config.service_nodes} | {p.service_node for p in config.pes})
        )
        code = {name: i for i, name in enumerate(self.nodes)}
        self._node_of: dict[str, int] = {p.name: code[p.service_node] for p in config.pes}
        self._stats: dict[str, _IntervalStats] = {}
        self._lock = threading.Lock()
        self.alarms = AlarmEngine(config.alarms)
        self._webhooks: WebhookSender | None = None

    def start(self) -> None:
        """Restore the alarm state, start webhooks, rebuild the statistics from the store.

        The rebuild is the only re-read of history; periods the restored alarm
        state already saw are not evaluated again (the engine ignores them).
        """
        for rule in self.config.alarms:
            if rule.target == "link":
                log.info(
                    "component=stats rule=%s link rules need a topology, which the MG lacks: "
                    "skipped",
                    rule.id,
                )
        saved = self.store.get_meta(ALARM_STATE_KEY)
        if saved is not None:
            try:
                self.alarms.restore(json.loads(saved))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("component=stats alarm state not restored: %s", exc)
        if any(r.webhook for r in self.config.alarms):
            self._webhooks = WebhookSender(self.config.alarms)
            self._webhooks.start()
        periods: dict[tuple[str, int], list[Upload]] = {}
        for upload in self.store.current():  # one query, ordered by interval and period
            periods.setdefault((upload.interval, upload.period_start_ms), []).append(upload)
        with self._lock:
            self._stats.clear()
            for (interval, start), uploads in periods.items():  # per stored period
                if interval in self._intervals:
                    self._put(interval, start, uploads)
        log.info("component=stats event=started periods=%d", len(periods))

    def stop(self) -> None:
        """Deliver queued webhooks and stop; the statistics live in memory, rebuilt at start."""
        if self._webhooks is not None:
            self._webhooks.stop()
            self._webhooks = None
        log.info("component=stats event=stopped")

    def observe(self, interval: str, period_start_ms: int) -> None:
        """Recompute one period's total and put it in (``replace`` when already counted)."""
        with self._lock:  # read under the lock too: two uploads of a period put in store order
            uploads = self.store.current(interval, period_start_ms=period_start_ms)
            self._put(interval, period_start_ms, uploads)

    def _put(self, interval: str, period_start_ms: int, uploads: list[Upload]) -> None:
        """Sum the period's current ``uploads`` and put the total in as the period's values."""
        total = total_matrix(self.config, self.store.iter_rows(uploads), granularity="pe_pe")
        state = self._stats.setdefault(interval, _IntervalStats())
        keys = list(
            zip(
                total["ingress"].to_pylist(),
                total["egress"].to_pylist(),
                total["class"].to_pylist(),
                strict=True,
            )
        )
        codes = state.index.codes(np.array(state.key_ids(keys, self._node_of), dtype=np.int64))
        size = len(state.index)
        bytes_ = dense(codes, total["bytes"].to_numpy(), size)
        packets = dense(codes, total["packets"].to_numpy(), size)
        if not (np.isfinite(bytes_).all() and np.isfinite(packets).all()):
            # sums past 1.8e308: the period stays as it was
            log.error(
                "component=stats event=skipped interval=%s period_start_ms=%d non-finite total",
                interval,
                period_start_ms,
            )
            return
        if period_start_ms in state.volume:
            state.bytes.replace(bytes_, period_start_ms)
            state.packets.replace(packets, period_start_ms)
        else:
            state.bytes.update(bytes_, period_start_ms)
            state.packets.update(packets, period_start_ms)
        state.volume[period_start_ms] = float(bytes_.sum())
        key_ids = state.index.keys
        state.node_volume[period_start_ms] = node_volumes(
            bytes_,
            np.asarray(state.ingress_node, dtype=np.int64)[key_ids],
            np.asarray(state.egress_node, dtype=np.int64)[key_ids],
            len(self.nodes),
        )
        end_ms = max(u.period_end_ms for u in uploads)
        self._evaluate(interval, end_ms, total)

    def _evaluate(self, interval: str, end_ms: int, total: pa.Table) -> None:
        """Feed a period's total to the alarm rules of ``interval``; persist the engine state."""
        rules = [r for r in self.alarms.rules_for(interval) if r.target != "link"]
        if not rules:
            return
        spec = self._intervals[interval]
        ingress = np.asarray(total["ingress"].to_pylist(), dtype=object)
        egress = np.asarray(total["egress"].to_pylist(), dtype=object)
        classes = np.asarray(total["class"].to_pylist(), dtype=object)
        events: list[AlarmEvent] = []
        for rule in rules:  # per configured rule
            column = "packets" if rule.statistic == "packets" else "bytes"
            values = total[column].to_numpy()
            if rule.statistic == "bps":
                values = values * 8 / spec.readout_seconds
            mask = element_mask(rule, self.config, ingress, egress, classes)
            if rule.target == "network":
                keys, sums = ["network"], np.array([values[mask].sum()])
            else:
                pairs = np.char.add(
                    np.char.add(ingress[mask].astype(str), ">"), egress[mask].astype(str)
                )
                distinct, back = np.unique(pairs, return_inverse=True)
                keys = [str(k) for k in distinct]
                sums = np.bincount(back, weights=values[mask], minlength=len(keys))
            events += self.alarms.observe(rule.id, interval, end_ms, keys, sums)
        self.store.put_meta(ALARM_STATE_KEY, json.dumps(self.alarms.state()))
        if events and self._webhooks is not None:
            self._webhooks.send(events)

    def active_alarms(self) -> list[ActiveAlarm]:
        """The alarms raised now, oldest first."""
        with self._lock:
            return self.alarms.active()

    def rows(self, interval: str, class_: str | None = None) -> list[dict[str, Any]]:
        """One dict per element (STATS_COLUMNS) of ``interval``, optionally of one class.

        Elements with no traffic in any counted period (e.g. dropped by a
        revision) are left out, as a rebuild from the store would not know them.
        """
        with self._lock:
            state = self._stats.get(interval)
            if state is None or state.bytes.count == 0:
                return []
            b, p = state.bytes.snapshot(), state.packets.snapshot()
            keys = [state.keys[int(k)] for k in state.index.keys]
        # history is kept: p95 is there
        b_p95 = b.p95 if b.p95 is not None else b.peak
        p_p95 = p.p95 if p.p95 is not None else p.peak
        std = np.sqrt(b.variance)
        out = []
        seen = (b.peak > 0) | (p.peak > 0)
        for i, (ingress, egress, cls) in enumerate(keys):  # per element, for the response
            if (class_ is not None and cls != class_) or not seen[i]:
                continue
            out.append(
                {
                    "ingress": ingress,
                    "egress": egress,
                    "class": cls,
                    "periods": b.count,
                    "mean_bytes": float(b.mean[i]),
                    "std_bytes": float(std[i]),
                    "peak_bytes": float(b.peak[i]),
                    "p95_bytes": float(b_p95[i]),
                    "mean_packets": float(p.mean[i]),
                    "peak_packets": float(p.peak[i]),
                    "p95_packets": float(p_p95[i]),
                }
            )
        return out

    def volumes(self, interval: str) -> dict[int, float]:
        """Period start (UTC ms) → network volume (bytes) of every counted period."""
        with self._lock:
            state = self._stats.get(interval)
            return dict(state.volume) if state is not None else {}

    def busy(self, interval: str) -> BusyHour | None:
        """The network busy hour of ``interval`` in its time zone, or None without periods.

        None too when the read-out period does not divide an hour (no clock hour is whole).
        """
        spec = self._intervals[interval]
        volumes = sorted(self.volumes(interval).items())
        if not volumes or _HOUR_S % spec.readout_seconds:
            return None
        starts, values = zip(*volumes, strict=True)
        return busy_hour(
            np.array(values),
            np.array(starts, dtype=np.int64),
            timezone=spec.timezone,
            readout_seconds=spec.readout_seconds,
        )

    def node_busy(self, interval: str) -> dict[str, BusyHour | None]:
        """Service node → its busy hour in ``interval``'s time zone (None: no periods or hour).

        A node's volume of a period is the bytes of the elements whose ingress
        or egress PE is in the node, once for an element inside one node; an
        ``unresolved`` egress counts for the ingress node only.
        """
        spec = self._intervals[interval]
        with self._lock:
            state = self._stats.get(interval)
            per_period = sorted(state.node_volume.items()) if state is not None else []
        if not per_period or _HOUR_S % spec.readout_seconds:
            return dict.fromkeys(self.nodes)
        starts = np.array([s for s, _ in per_period], dtype=np.int64)
        values = np.stack([v for _, v in per_period])
        hours = busy_hours(
            values,
            starts,
            timezone=spec.timezone,
            readout_seconds=spec.readout_seconds,
        )
        return dict(zip(self.nodes, hours, strict=True))

    def element_history(
        self, interval: str, ingress: str, egress: str, class_: str | None = None
    ) -> tuple[list[int], list[float]]:
        """One element's bytes per counted period, oldest first (zero where it had none).

        ``class_`` None sums the element's classes. LookupError when the
        interval has no periods or the element was never seen.
        """
        with self._lock:
            state = self._stats.get(interval)
            ids = (
                []
                if state is None
                else [
                    i
                    for key, i in state.ids.items()
                    if key[:2] == (ingress, egress) and class_ in (None, key[2])
                ]
            )
            if state is None or not ids:
                what = "every class" if class_ is None else f"class {class_}"
                msg = f"no element {ingress}>{egress} ({what}) in interval {interval!r}"
                raise LookupError(msg)
            codes = state.index.codes(np.array(ids, dtype=np.int64))
            history = state.bytes.history()
            starts = state.bytes.period_start_ms
        codes = codes[codes < history.shape[1]]
        column = history[:, codes].sum(axis=1)
        order = np.argsort(starts, kind="stable")
        return [int(s) for s in starts[order]], [float(v) for v in column[order]]


class ForecastError(FlowmatrixError):
    """An element's history is too short for the forecast asked (HTTP 400)."""


def _holt(y: F64, horizon: int) -> F64:
    """Holt's linear trend (no season) → the next ``horizon`` values."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]

    if np.ptp(y) == 0:
        return np.full(horizon, y[0])
    with warnings.catch_warnings():
        # a fit that stops early still forecasts
        warnings.simplefilter("ignore")
        fitted = ExponentialSmoothing(y, trend="add", initialization_method="estimated").fit()
        return np.asarray(fitted.forecast(horizon), dtype=np.float64)


def element_forecast(
    starts: list[int],
    values: list[float],
    *,
    readout_seconds: int,
    horizon: int,
    season: int | None = None,
    capacity_bps: float | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """One element's bytes per period → forecast, backtest and threshold crossing (JSON-ready).

    ``season`` None: a day of periods when the history holds two days, else no
    season (Holt's linear trend). The backtest (model vs seasonal naive) needs
    a season and ``2 * season + horizon`` periods, else it is None.
    ``crossing_ms`` is the start of the first forecast period whose rate
    (bytes × 8 / read-out seconds) reaches ``threshold × capacity_bps``.
    """
    y = np.asarray(values, dtype=np.float64)
    if y.size < MIN_FORECAST_PERIODS:
        msg = (
            f"history of {y.size} period(s) is too short to forecast: "
            f"need at least {MIN_FORECAST_PERIODS}"
        )
        raise ForecastError(msg)
    if season is None:
        day = _DAY_S // readout_seconds
        season_used: int | None = day if day >= 2 and y.size >= 2 * day else None
    else:
        if y.size < 2 * season:
            msg = (
                f"history of {y.size} period(s) is too short for a season of {season}: "
                f"need two seasons ({2 * season} periods)"
            )
            raise ForecastError(msg)
        season_used = season
    if season_used is None:
        ahead = _holt(y, horizon)
    else:
        ahead = forecast(y, season=season_used, horizon=horizon)
    check = None
    if season_used is not None and y.size >= 2 * season_used + horizon:
        result = backtest(y, horizon, season_used)
        check = {"model_mape": result.model_mape, "naive_mape": result.naive_mape}
    step_ms = readout_seconds * 1000
    first_ms = starts[-1] + step_ms
    bps = ahead * 8 / readout_seconds
    crossing = None
    if capacity_bps is not None and threshold is not None:
        crossing = crossing_time(bps, capacity_bps, threshold, start_ms=first_ms, step_ms=step_ms)
    return {
        "readout_seconds": readout_seconds,
        "history_periods": int(y.size),
        "season": season_used,
        "horizon": horizon,
        "forecast": [
            {"period_start_ms": first_ms + k * step_ms, "bytes": float(b), "bps": float(r)}
            for k, (b, r) in enumerate(zip(ahead, bps, strict=True))
        ],
        "backtest": check,
        "crossing_ms": crossing,
    }
