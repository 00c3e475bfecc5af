"""Stored read-out periods → per-interval element statistics and the network busy hour.

:class:`MgStats` keeps, per measurement interval, one
:class:`~flowmatrix.stats.running.RunningStats` for bytes and one for packets
over the PE-to-PE elements (ingress, egress, class), coded through an
:class:`~flowmatrix.stats.running.ElementIndex`, and the network volume
(bytes) of every period for the busy hour.

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
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa

from flowmatrix.config.model import Interval, NetworkConfig
from flowmatrix.matrix.store import Store, Upload
from flowmatrix.matrix.total import total_matrix
from flowmatrix.stats.alarms import ActiveAlarm, AlarmEngine, AlarmEvent, element_mask
from flowmatrix.stats.busy import BusyHour, busy_hour
from flowmatrix.stats.running import ElementIndex, RunningStats, dense
from flowmatrix.stats.webhook import WebhookSender

__all__ = ["ALARM_STATE_KEY", "STATS_COLUMNS", "MgStats"]

log = logging.getLogger("flowmatrix.mg.stats")

_HOUR_S: Final = 3600
#: key of the alarm engine's JSON state in the store's ``meta`` table
ALARM_STATE_KEY: Final = "alarm_state"

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

    def key_ids(self, keys: list[tuple[str, str, str]]) -> list[int]:
        out = []
        for key in keys:  # per element of one period's total
            if key not in self.ids:
                self.ids[key] = len(self.keys)
                self.keys.append(key)
            out.append(self.ids[key])
        return out


class MgStats:
    """Per-interval element statistics and busy hour, updated as periods are stored."""

    def __init__(self, config: NetworkConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self._intervals: dict[str, Interval] = {i.id: i for i in config.intervals}
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
        codes = state.index.codes(np.array(state.key_ids(keys), dtype=np.int64))
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
