"""Turn the total matrices of read-out periods into interval statistics, busy hours and error bars.

:mod:`~flowmatrix.stats.running` keeps per-element count, mean, variance, peak
and 95th percentile as periods arrive (zero-filled, exact p95) and rolls
periods up into local hours, days and weeks; :mod:`~flowmatrix.stats.busy`
finds the busy hour per network and per service node in the interval's time
zone, DST included; :mod:`~flowmatrix.stats.sampling` turns renormalized
estimates and their variances into 95 % intervals;
:mod:`~flowmatrix.stats.forecast` fits Holt–Winters per series, backtests it
against the seasonal naive baseline and says when a load crosses a threshold;
:mod:`~flowmatrix.stats.alarms` turns per-period values into threshold alarms
raised and cleared with hold-down, and :mod:`~flowmatrix.stats.webhook` posts
each transition to the rule's webhook.
"""

from flowmatrix.stats.alarms import ActiveAlarm, AlarmEngine, AlarmEvent
from flowmatrix.stats.busy import BusyHour, busy_hour, busy_hours, hourly, node_volumes
from flowmatrix.stats.forecast import Backtest, backtest, crossing_time, forecast
from flowmatrix.stats.running import (
    ElementIndex,
    ElementStats,
    Rollup,
    RunningStats,
    bucket_starts,
    dense,
    rollup,
)
from flowmatrix.stats.sampling import Bounds, element_bounds, gamma_bounds, normal_bounds
from flowmatrix.stats.webhook import WebhookSender, webhook_body

__all__ = [
    "ActiveAlarm",
    "AlarmEngine",
    "AlarmEvent",
    "Backtest",
    "Bounds",
    "BusyHour",
    "ElementIndex",
    "ElementStats",
    "Rollup",
    "RunningStats",
    "WebhookSender",
    "backtest",
    "bucket_starts",
    "busy_hour",
    "busy_hours",
    "crossing_time",
    "dense",
    "element_bounds",
    "forecast",
    "gamma_bounds",
    "hourly",
    "node_volumes",
    "normal_bounds",
    "rollup",
    "webhook_body",
]
