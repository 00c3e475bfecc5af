"""Per-period volumes → the busy hour, per network and per service node, in local clock hours.

The busy hour of an interval is the local clock hour (in the interval's IANA
time zone) whose read-out periods carry the highest total volume:

* Hours are real local hours, DST-aware: a spring-forward day has 23 of them,
  a fall-back day 25, and the repeated hour (02:00–03:00 twice in Paris) is
  two hours, told apart by their UTC offset (``local_start`` carries it).
* An hour's volume is the sum of the periods present in it; ``periods`` and
  ``expected_periods`` say whether it is complete (``complete_only=True``
  ignores incomplete hours). Ties go to the earliest hour.
* The *network* busy hour is that of the sum over all elements; a *service
  node*'s is that of the sum over the elements whose ingress or egress is in
  the node (once for an element inside one node): :func:`node_volumes` turns
  a per-period matrix and a node code per element end into those sums, so the
  MG keeps only one small vector per period.

>>> import datetime as dt
>>> start = int(dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC).timestamp() * 1000)
>>> starts = start + 1_800_000 * np.arange(6)         # half-hour periods from 08:00 UTC
>>> hour = busy_hour([1, 1, 5, 4, 2, 2], starts, timezone="Europe/Paris", readout_seconds=1800)
>>> hour.local_start.isoformat(), hour.volume, hour.complete
('2026-01-05T10:00:00+01:00', 9.0, True)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from flowmatrix.stats.running import Rollup, rollup

__all__ = ["BusyHour", "busy_hour", "busy_hours", "hourly", "node_volumes"]

F64 = npt.NDArray[np.float64]
_HOUR_S: Final = 3600


@dataclass(frozen=True, slots=True)
class BusyHour:
    """The local clock hour with the highest volume."""

    #: UTC ms of the hour's first instant
    start_ms: int
    #: the same instant, local and offset-aware (tells the two 02:00 of a fall-back night apart)
    local_start: dt.datetime
    #: total volume of the hour's periods
    volume: float
    #: periods of the hour that were present
    periods: int
    #: periods a whole hour holds (3600 / read-out seconds)
    expected_periods: int

    @property
    def end_ms(self) -> int:
        """UTC ms just after the hour."""
        return self.start_ms + _HOUR_S * 1000

    @property
    def complete(self) -> bool:
        """True when every period of the hour was present."""
        return self.periods >= self.expected_periods


def _expected(readout_seconds: int) -> int:
    if readout_seconds <= 0 or _HOUR_S % readout_seconds:
        msg = f"the read-out period ({readout_seconds} s) must divide an hour"
        raise ValueError(msg)
    return _HOUR_S // readout_seconds


def hourly(
    volumes: npt.ArrayLike,
    period_start_ms: npt.ArrayLike,
    *,
    timezone: str = "UTC",
    readout_seconds: int = 300,
) -> Rollup:
    """Per-period volumes (periods first) → sums per local clock hour (see :func:`rollup`)."""
    _expected(readout_seconds)
    return rollup(volumes, period_start_ms, scale="hour", timezone=timezone)


def busy_hours(
    volumes: npt.ArrayLike,
    period_start_ms: npt.ArrayLike,
    *,
    timezone: str = "UTC",
    readout_seconds: int = 300,
    complete_only: bool = False,
) -> list[BusyHour | None]:
    """Per-period volumes, one column per series (e.g. per node) → each column's busy hour.

    A column gets None when it has no hour to choose (no periods, or no
    complete hour with ``complete_only``).
    """
    expected = _expected(readout_seconds)
    v = np.asarray(volumes, dtype=np.float64)
    if v.ndim != 2:
        msg = f"volumes must be periods × series, got shape {v.shape}"
        raise ValueError(msg)
    hours = hourly(v, period_start_ms, timezone=timezone, readout_seconds=readout_seconds)
    if not hours.start_ms.size:
        return [None] * v.shape[1]
    eligible = hours.periods >= expected if complete_only else np.ones(hours.periods.size, bool)
    if not eligible.any():
        return [None] * v.shape[1]
    masked = np.where(eligible[:, None], hours.values, -np.inf)
    best = np.argmax(masked, axis=0)  # first maximum = earliest hour
    zone = ZoneInfo(timezone)  # known good: hourly() looked it up
    out: list[BusyHour | None] = []
    for column, row in enumerate(best.tolist()):  # one per series
        start_ms = int(hours.start_ms[row])
        out.append(
            BusyHour(
                start_ms=start_ms,
                local_start=dt.datetime.fromtimestamp(start_ms / 1000, zone),
                volume=float(hours.values[row, column]),
                periods=int(hours.periods[row]),
                expected_periods=expected,
            )
        )
    return out


def busy_hour(
    volumes: npt.ArrayLike,
    period_start_ms: npt.ArrayLike,
    *,
    timezone: str = "UTC",
    readout_seconds: int = 300,
    complete_only: bool = False,
) -> BusyHour | None:
    """Per-period volumes of one series (e.g. the network total) → its busy hour, or None."""
    v = np.asarray(volumes, dtype=np.float64)
    if v.ndim != 1:
        msg = f"volumes must be one value per period, got shape {v.shape}"
        raise ValueError(msg)
    return busy_hours(
        v[:, None],
        period_start_ms,
        timezone=timezone,
        readout_seconds=readout_seconds,
        complete_only=complete_only,
    )[0]


def node_volumes(
    values: npt.ArrayLike,
    ingress_node: npt.ArrayLike,
    egress_node: npt.ArrayLike,
    n_nodes: int,
) -> F64:
    """Element values (…, elements) → volume per service node (…, n_nodes).

    An element counts for its ingress node and its egress node, once when
    both are the same node; a node code of -1 (unknown, unresolved) counts
    for no node.

    >>> node_volumes([[5.0, 3.0, 1.0]], [0, 0, 1], [0, 1, -1], 2).tolist()
    [[8.0, 4.0]]
    >>> node_volumes(np.zeros(0), [], [], 2).tolist()
    [0.0, 0.0]
    """
    v = np.asarray(values, dtype=np.float64)
    ingress = np.asarray(ingress_node, dtype=np.int64)
    egress = np.asarray(egress_node, dtype=np.int64)
    if ingress.shape != (v.shape[-1],) or egress.shape != ingress.shape:
        msg = f"need one ingress and one egress node per element ({v.shape[-1]})"
        raise ValueError(msg)
    if v.ndim == 1:
        # one period: two weighted counts, no matrix to build
        own = (ingress >= 0) & (ingress < n_nodes)
        other = (egress != ingress) & (egress >= 0) & (egress < n_nodes)
        out = np.bincount(ingress[own], v[own], minlength=n_nodes)
        out += np.bincount(egress[other], v[other], minlength=n_nodes)
        return np.asarray(out, dtype=np.float64)
    elements = np.arange(ingress.size)
    rows = np.concatenate([elements, elements[egress != ingress]])
    cols = np.concatenate([ingress, egress[egress != ingress]])
    keep = (cols >= 0) & (cols < n_nodes)
    indicator = sp.csr_array(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(ingress.size, n_nodes)
    )
    if v.size == 0:  # no element (or no period): every node has volume 0
        return np.zeros((*v.shape[:-1], n_nodes), dtype=np.float64)
    flat = v.reshape(-1, v.shape[-1])
    return np.asarray(indicator.T @ flat.T, dtype=np.float64).T.reshape(*v.shape[:-1], n_nodes)
