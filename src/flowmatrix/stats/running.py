"""Per-period matrices → per-element count, mean, variance, peak and 95th percentile, incrementally.

The MG calls :meth:`RunningStats.update` once per read-out period with the
period's total matrix as a dense vector (one value per element code, e.g. the
bytes of every ingress × egress × class cell) and reads the statistics at any
time without re-reading earlier periods:

* **Zero-filling.** An element absent from a period had no traffic in it, so
  it counts as 0 for that period. Every element therefore has the same count
  (the number of periods seen); an element that first appears in period *k*
  had zeros in periods 0 … k−1. ``active`` counts the periods where it was
  non-zero.
* **Mean and variance** follow Welford's update, and :meth:`RunningStats.merge`
  Chan's parallel combination, so both are numerically stable and exact up to
  rounding; :meth:`RunningStats.replace` swaps a revised period's values.
  The variance is the population variance over the interval's periods
  (``ddof=0``): the periods are the whole interval, not a sample of it.
* **Peak** is the largest period value.
* **95th percentile** is exact: every period's vector is kept (one float64 per
  element and period: 2,016 five-minute periods of a week × 10,000 elements =
  161 MB) and :meth:`RunningStats.percentile` uses ``np.percentile(...,
  method="inverted_cdf")``, the smallest observed value with at least 95 % of
  the periods at or below it: sort the periods, drop the top 5 % (rounded
  down), take the largest left — the burstable-billing convention. Pass
  ``keep_history=False`` to drop the history (and the percentile).

:func:`rollup` sums per-period values into coarser buckets (local hours, days
and ISO weeks of the interval's time zone, DST-aware) and says which bucket
each period went to, so the finer data stays the source of truth.

>>> stats = RunningStats()
>>> stats.update(np.array([10.0, 0.0]), period_start_ms=0)
>>> stats.update(np.array([30.0, 5.0, 7.0]), period_start_ms=300_000)
>>> stats.count, stats.mean.tolist(), stats.peak.tolist()
(2, [20.0, 2.5, 3.5], [30.0, 5.0, 7.0])
>>> stats.variance().tolist(), stats.active.tolist()
([100.0, 6.25, 12.25], [2, 1, 1])
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from flowmatrix.errors import ScheduleError

__all__ = [
    "P95_METHOD",
    "SCALES",
    "ElementIndex",
    "ElementStats",
    "Rollup",
    "RunningStats",
    "Scale",
    "bucket_starts",
    "dense",
    "rollup",
    "utc_offsets_ms",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]

Scale = Literal["hour", "day", "week"]
#: the coarser time scales a series of read-out periods rolls up to
SCALES: Final = tuple(get_args(Scale))
#: np.percentile method of :meth:`RunningStats.percentile`: an observed value, billing convention
P95_METHOD: Final = "inverted_cdf"
_MS: Final = dt.timedelta(milliseconds=1)
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
#: elements per block of the percentile's partition (with 2,016 periods: 66 MB)
_BLOCK: Final = 4096


def dense(codes: npt.ArrayLike, values: npt.ArrayLike, size: int) -> F64:
    """Sparse (element code, value) rows → a dense vector of ``size`` with zeros elsewhere.

    Rows with the same code are summed.

    >>> dense([2, 0, 2], [1.0, 2.0, 3.0], 4).tolist()
    [2.0, 0.0, 4.0, 0.0]
    """
    idx = np.asarray(codes, dtype=np.intp)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= size):
        msg = f"element codes must lie in [0, {size})"
        raise ValueError(msg)
    weights = np.asarray(values, dtype=np.float64)
    return np.bincount(idx, weights=weights, minlength=size).astype(np.float64)


class ElementIndex:
    """Stable element codes for int64 keys, in order of first appearance (vectorized).

    Keys are whatever identifies an element, packed into one int64 by the
    caller (e.g. ``(ingress * n_pe + egress) * n_class + class`` from the
    total's dictionary codes). A key keeps its code forever, so codes index
    :class:`RunningStats` rows across periods; new keys get the next codes.

    >>> index = ElementIndex()
    >>> index.codes(np.array([70, 5, 70])).tolist(), index.codes(np.array([9, 5])).tolist()
    ([0, 1, 0], [2, 1])
    >>> index.keys.tolist()
    [70, 5, 9]
    """

    def __init__(self) -> None:
        self._sorted = np.zeros(0, np.int64)
        self._sorted_codes = np.zeros(0, np.intp)
        self._keys = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return int(self._keys.size)

    @classmethod
    def from_keys(cls, keys: npt.ArrayLike) -> ElementIndex:
        """An index whose code ``i`` is ``keys[i]`` (e.g. :attr:`keys` saved earlier).

        >>> ElementIndex.from_keys([70, 5, 9]).codes([9, 70, 1]).tolist()
        [2, 0, 3]
        """
        k = np.asarray(keys, dtype=np.int64)
        if np.unique(k).size != k.size:
            msg = "element keys must be distinct"
            raise ValueError(msg)
        index = cls()
        index._keys = k.copy()
        order = np.argsort(k, kind="stable")
        index._sorted, index._sorted_codes = k[order], order.astype(np.intp)
        return index

    @property
    def keys(self) -> I64:
        """The keys in code order (``keys[code]``)."""
        return self._keys

    def codes(self, keys: npt.ArrayLike) -> IntP:
        """Keys → their codes, assigning new codes to keys never seen."""
        k = np.asarray(keys, dtype=np.int64)
        pos = np.searchsorted(self._sorted, k)
        found = pos < self._sorted.size
        found[found] = self._sorted[pos[found]] == k[found]
        if not found.all():
            # new keys, numbered in order of first appearance in this call
            fresh, first = np.unique(k[~found], return_index=True)
            fresh = fresh[np.argsort(first, kind="stable")]
            base = self._keys.size
            self._keys = np.concatenate([self._keys, fresh])
            merged = np.concatenate([self._sorted, fresh])
            merged_codes = np.concatenate(
                [self._sorted_codes, np.arange(base, base + fresh.size, dtype=np.intp)]
            )
            order = np.argsort(merged, kind="stable")
            self._sorted, self._sorted_codes = merged[order], merged_codes[order]
            pos = np.searchsorted(self._sorted, k)
        return self._sorted_codes[pos]


@dataclass(frozen=True, slots=True, eq=False)
class ElementStats:
    """A snapshot of :class:`RunningStats`: one value per element code."""

    #: periods seen (the same for every element: absent = 0)
    count: int
    mean: F64
    #: population variance over the periods (ddof=0)
    variance: F64
    peak: F64
    #: 95th percentile (inverted_cdf); None without history
    p95: F64 | None
    #: periods in which the element was non-zero
    active: I64


class RunningStats:
    """Count, mean, variance, peak and p95 per element over read-out periods, updated per period.

    Elements are dense integer codes (rows of the vectors passed to
    :meth:`update`); a vector shorter than the elements known so far leaves
    the missing tail at 0, a longer one adds elements that were 0 before.
    """

    def __init__(self, *, keep_history: bool = True) -> None:
        self.keep_history = keep_history
        self.count = 0
        self._mean = np.zeros(0, np.float64)
        self._m2 = np.zeros(0, np.float64)
        self._peak = np.zeros(0, np.float64)
        self._active = np.zeros(0, np.int64)
        self._starts: list[int] = []
        self._seen: set[int] = set()
        self._history: list[F64] = []
        self._delta = np.zeros(0, np.float64)
        self._scratch = np.zeros(0, np.float64)

    def __len__(self) -> int:
        """The number of elements known."""
        return int(self._mean.size)

    @property
    def period_start_ms(self) -> I64:
        """The start of every period seen, in update order."""
        return np.array(self._starts, dtype=np.int64)

    @property
    def mean(self) -> F64:
        """Mean over the periods seen (absent = 0)."""
        return self._mean.copy()

    @property
    def peak(self) -> F64:
        """Largest period value."""
        return self._peak.copy()

    @property
    def active(self) -> I64:
        """Periods in which each element was non-zero."""
        return self._active.copy()

    def variance(self, *, ddof: int = 0) -> F64:
        """Variance over the periods seen; ``ddof=0`` (default) is the population variance."""
        if self.count - ddof <= 0:
            return np.full(self._m2.size, np.nan)
        return self._m2 / (self.count - ddof)

    def _grow(self, size: int) -> None:
        extra = size - self._mean.size
        if extra > 0:
            # a new element had 0 in every earlier period: mean 0, M2 0, peak 0
            self._mean = np.concatenate([self._mean, np.zeros(extra)])
            self._m2 = np.concatenate([self._m2, np.zeros(extra)])
            self._peak = np.concatenate([self._peak, np.zeros(extra)])
            self._active = np.concatenate([self._active, np.zeros(extra, np.int64)])

    def update(self, values: npt.ArrayLike, period_start_ms: int) -> None:
        """Add one period's values (one per element code) to the statistics."""
        # our own copy when the history keeps it; Welford itself only reads x
        x = np.array(values, dtype=np.float64, copy=True if self.keep_history else None)
        if x.ndim != 1:
            msg = f"values must be one vector per period, got shape {x.shape}"
            raise ValueError(msg)
        if not np.isfinite(x).all():
            msg = "values must be finite"
            raise ValueError(msg)
        if period_start_ms in self._seen:
            msg = f"period {period_start_ms} was already added"
            raise ValueError(msg)
        self._grow(x.size)
        if x.size < self._mean.size:
            x = np.concatenate([x, np.zeros(self._mean.size - x.size)])
        np.maximum(self._peak, x, out=self._peak)
        self._active += x != 0
        if self.keep_history:
            self._history.append(x)
        self.count += 1
        # Welford, in two scratch vectors: no allocation per period
        if self._delta.size != x.size:
            self._delta, self._scratch = np.empty(x.size), np.empty(x.size)
        delta = np.subtract(x, self._mean, out=self._delta)
        self._mean += np.divide(delta, self.count, out=self._scratch)
        step = np.subtract(x, self._mean, out=self._scratch)
        step *= delta
        self._m2 += step
        self._starts.append(int(period_start_ms))
        self._seen.add(int(period_start_ms))

    def remove(self, period_start_ms: int) -> None:
        """Take one period back out of the statistics (needs the history).

        For a period whose total was revised (a late FRP): :meth:`replace`.
        Mean and variance are un-Welforded; the peak is recomputed from the
        periods left.
        """
        if not self.keep_history:
            msg = "removing a period needs the history"
            raise ValueError(msg)
        if period_start_ms not in self._seen:
            msg = f"period {period_start_ms} was never added"
            raise ValueError(msg)
        at = self._starts.index(period_start_ms)
        x = np.zeros(self._mean.size)
        old = self._history[at]
        x[: old.size] = old
        del self._starts[at], self._history[at]
        self._seen.discard(period_start_ms)
        self._active -= x != 0
        self.count -= 1
        if self.count == 0:
            self._mean[:] = 0.0
            self._m2[:] = 0.0
            self._peak[:] = 0.0
            return
        before = self._mean.copy()
        self._mean -= (x - before) / self.count
        self._m2 -= (x - self._mean) * (x - before)
        np.maximum(self._m2, 0.0, out=self._m2)  # rounding must not make a variance negative
        self._peak[:] = 0.0
        for h in self._history:  # per period left, not per element
            np.maximum(self._peak[: h.size], h, out=self._peak[: h.size])

    def replace(self, values: npt.ArrayLike, period_start_ms: int) -> None:
        """Swap a period's values for revised ones (needs the history)."""
        self.remove(period_start_ms)
        self.update(values, period_start_ms)

    @property
    def m2(self) -> F64:
        """Welford's running sum of squared deviations (``variance · count``)."""
        return self._m2.copy()

    def period_values(self) -> list[F64]:
        """Every period's values as kept, in update order (a vector may be shorter: zeros)."""
        if not self.keep_history:
            msg = "this RunningStats keeps no history"
            raise ValueError(msg)
        return list(self._history)

    @classmethod
    def restore(
        cls,
        *,
        mean: npt.ArrayLike,
        m2: npt.ArrayLike,
        history: list[F64],
        period_start_ms: list[int],
    ) -> RunningStats:
        """Statistics saved as ``mean``, ``m2`` and the periods' values, resumed (with history).

        Mean and M2 are taken as saved, so the figures equal the saved ones
        bit for bit; the peak and the active counts are recomputed from the
        history (a maximum and a count, exact). ``history[i]`` is the period
        starting at ``period_start_ms[i]``, in update order.

        >>> a = RunningStats()
        >>> a.update(np.array([1.0, 4.0]), 0)
        >>> a.update(np.array([3.0]), 300_000)
        >>> b = RunningStats.restore(mean=a.mean, m2=a.m2, history=a.period_values(),
        ...                          period_start_ms=a.period_start_ms.tolist())
        >>> b.variance().tolist() == a.variance().tolist(), b.peak.tolist(), b.active.tolist()
        (True, [3.0, 4.0], [2, 1])
        """
        out = cls()
        mean_ = np.array(mean, dtype=np.float64)
        m2_ = np.array(m2, dtype=np.float64)
        starts = [int(s) for s in period_start_ms]
        if mean_.ndim != 1 or m2_.shape != mean_.shape:
            msg = f"mean {mean_.shape} and m2 {m2_.shape} must be vectors of one shape"
            raise ValueError(msg)
        if len(history) != len(starts) or len(set(starts)) != len(starts):
            msg = "need one history vector per distinct period start"
            raise ValueError(msg)
        if any(h.ndim != 1 or h.size > mean_.size for h in history):
            msg = "a history vector is longer than the elements saved"
            raise ValueError(msg)
        out.count = len(starts)
        out._mean, out._m2 = mean_, m2_
        out._peak = np.zeros(mean_.size)
        out._active = np.zeros(mean_.size, np.int64)
        for h in history:  # per period, not per element
            np.maximum(out._peak[: h.size], h, out=out._peak[: h.size])
            out._active[: h.size] += h != 0
        out._history = [np.asarray(h, dtype=np.float64) for h in history]
        out._starts, out._seen = starts, set(starts)
        return out

    def history(self) -> F64:
        """Every period's values, zero-filled: shape (periods, elements), in update order."""
        if not self.keep_history:
            msg = "this RunningStats keeps no history"
            raise ValueError(msg)
        out = np.zeros((len(self._history), self._mean.size))
        for row, h in zip(out, self._history, strict=True):  # one row per period, not per element
            row[: h.size] = h
        return out

    def percentile(self, q: float = 95.0) -> F64:
        """The ``q``-th percentile of each element over the periods (inverted_cdf, exact).

        The value of rank ``ceil(q/100 · periods)`` among the sorted periods,
        what ``np.percentile(..., method="inverted_cdf")`` returns, found with
        ``np.partition`` over blocks of elements (five times faster than
        ``np.percentile``, and without a copy of the whole history).
        """
        if not 0 <= q <= 100:
            msg = f"q must lie in [0, 100], not {q}"
            raise ValueError(msg)
        if not self.keep_history:
            msg = "this RunningStats keeps no history"
            raise ValueError(msg)
        if self.count == 0:
            return np.full(self._mean.size, np.nan)
        rank = min(max(math.ceil(q * self.count / 100) - 1, 0), self.count - 1)
        out = np.empty(self._mean.size)
        block = np.empty((self.count, _BLOCK))
        # column blocks keep the periods × block working set small: no history-sized copy
        for lo in range(0, out.size, _BLOCK):  # per block of elements, not per element
            hi = min(lo + _BLOCK, out.size)
            part = block[:, : hi - lo]
            for row, h in zip(part, self._history, strict=True):
                row[: max(min(h.size, hi) - lo, 0)] = h[lo:hi]
                row[max(min(h.size, hi) - lo, 0) :] = 0.0
            part.partition(rank, axis=0)
            out[lo:hi] = part[rank]
        return out

    @property
    def p95(self) -> F64:
        """95th percentile of each element over the periods."""
        return self.percentile(95.0)

    def snapshot(self) -> ElementStats:
        """The statistics now, as arrays."""
        return ElementStats(
            count=self.count,
            mean=self.mean,
            variance=self.variance(),
            peak=self.peak,
            p95=self.p95 if self.keep_history else None,
            active=self.active,
        )

    def merge(self, other: RunningStats) -> RunningStats:
        """Statistics over the periods of both (Chan's parallel update); neither is changed."""
        overlap = self._seen & other._seen
        if overlap:
            msg = f"cannot merge statistics sharing periods {sorted(overlap)[:3]}"
            raise ValueError(msg)
        out = RunningStats(keep_history=self.keep_history and other.keep_history)
        size = max(len(self), len(other))
        a, b = self._padded(size), other._padded(size)
        na, nb = self.count, other.count
        out.count = na + nb
        if out.count:
            delta = b[0] - a[0]
            out._mean = a[0] + delta * (nb / out.count)
            out._m2 = a[1] + b[1] + delta * delta * (na * nb / out.count)
        else:
            out._mean, out._m2 = a[0], a[1]
        out._peak = np.maximum(a[2], b[2])
        out._active = (a[3] + b[3]).astype(np.int64)
        out._starts = [*self._starts, *other._starts]
        out._seen = self._seen | other._seen
        if out.keep_history:
            out._history = [*self._history, *other._history]
        return out

    def _padded(self, size: int) -> tuple[F64, F64, F64, F64]:
        pad = size - len(self)
        return (
            np.concatenate([self._mean, np.zeros(pad)]),
            np.concatenate([self._m2, np.zeros(pad)]),
            np.concatenate([self._peak, np.zeros(pad)]),
            np.concatenate([self._active.astype(np.float64), np.zeros(pad)]),
        )


# --- roll-ups to local hours, days and weeks -----------------------------------------------------


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        msg = f"unknown time zone {timezone!r}"
        raise ScheduleError(msg) from exc


def utc_offsets_ms(timestamps_ms: npt.ArrayLike, timezone: str) -> I64:
    """UTC instants (ms) → the zone's UTC offset in force at each, ms (one look-up per distinct)."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    zone = _zone(timezone)
    distinct, back = np.unique(ts, return_inverse=True)
    offsets = np.array(
        [
            (dt.datetime.fromtimestamp(t / 1000, zone).utcoffset() or dt.timedelta()) // _MS
            for t in distinct.tolist()  # per distinct period start, not per element
        ],
        dtype=np.int64,
    )
    return offsets[back.reshape(ts.shape)] if ts.size else np.zeros(ts.shape, np.int64)


def _local_midnight_ms(days: I64, zone: ZoneInfo) -> I64:
    """Local day numbers (days since 1970-01-01, local calendar) → UTC ms of their first instant."""
    epoch = dt.date(1970, 1, 1)
    out = []
    for d in days.tolist():  # per distinct day
        midnight = dt.datetime.combine(epoch + dt.timedelta(days=d), dt.time(0), zone)
        # a midnight that does not exist (fold=0) maps to the instant the gap ends
        out.append(int(midnight.timestamp() * 1000))
    return np.array(out, dtype=np.int64)


def bucket_starts(period_start_ms: npt.ArrayLike, scale: Scale, timezone: str) -> I64:
    """Period starts (UTC ms) → UTC ms of the start of their local hour, day or ISO week.

    Hours are the real local clock hours: a 23-hour day has 23 buckets, a
    25-hour day 25, and the repeated hour of a fall-back night appears twice,
    once per UTC offset. Days start at local midnight and weeks on Monday.

    >>> paris = "Europe/Paris"   # 2026-10-25 01:00 UTC: 03:00 CEST → 02:00 CET
    >>> starts = 1_792_886_400_000 + np.array([0, 1_800_000, 3_600_000, 5_400_000])
    >>> (bucket_starts(starts, "hour", paris) - starts[0]).tolist()  # 02:00 CEST, 02:00 CET
    [0, 0, 3600000, 3600000]
    >>> (bucket_starts(starts, "day", paris) - starts[0]).tolist()  # 00:00 CEST = 22:00 UTC
    [-7200000, -7200000, -7200000, -7200000]
    """
    ts = np.asarray(period_start_ms, dtype=np.int64)
    if scale not in SCALES:
        msg = f"scale must be one of {SCALES}, not {scale!r}"
        raise ValueError(msg)
    zone = _zone(timezone)
    local = ts + utc_offsets_ms(ts, timezone)
    if scale == "hour":
        # the local hour's start minus the offset in force at the period: the ambiguous hour of
        # a fall-back night gets two different UTC starts, one per offset
        return np.asarray(local - local % _HOUR_MS - (local - ts), dtype=np.int64)
    day = local // _DAY_MS
    if scale == "week":
        day = day - (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    distinct, back = np.unique(day, return_inverse=True)
    return np.asarray(_local_midnight_ms(distinct, zone)[back.reshape(ts.shape)], np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class Rollup:
    """Per-period values summed into coarser buckets; ``bucket[i]`` says where period ``i`` went."""

    scale: Scale
    timezone: str
    #: UTC ms of each bucket's start, ascending
    start_ms: I64
    #: the summed values, one row per bucket (same trailing shape as the input)
    values: F64
    #: periods that went into each bucket
    periods: I64
    #: per input period: the row of ``start_ms`` it was added to
    bucket: IntP


def rollup(
    values: npt.ArrayLike,
    period_start_ms: npt.ArrayLike,
    *,
    scale: Scale,
    timezone: str = "UTC",
) -> Rollup:
    """Per-period values (periods first, any shape after) → sums per local hour, day or week.

    The input stays the source of truth: ``Rollup.bucket`` maps every period
    to its bucket, so any bucket can be recomputed or re-cut at another scale.

    >>> r = rollup([1.0, 2.0, 4.0], [0, 1_800_000, 3_600_000], scale="hour")
    >>> r.start_ms.tolist(), r.values.tolist(), r.periods.tolist()
    ([0, 3600000], [3.0, 4.0], [2, 1])
    """
    v = np.asarray(values, dtype=np.float64)
    ts = np.asarray(period_start_ms, dtype=np.int64)
    if v.shape[:1] != ts.shape or ts.ndim != 1:
        msg = f"values {v.shape} need one row per period start {ts.shape}"
        raise ValueError(msg)
    starts = bucket_starts(ts, scale, timezone)
    distinct, bucket = np.unique(starts, return_inverse=True)
    order = np.argsort(bucket, kind="stable")
    first = np.searchsorted(bucket[order], np.arange(distinct.size))
    summed = np.add.reduceat(v[order], first, axis=0) if ts.size else np.zeros((0, *v.shape[1:]))
    return Rollup(
        scale=scale,
        timezone=timezone,
        start_ms=distinct,
        values=summed,
        periods=np.bincount(bucket, minlength=distinct.size).astype(np.int64),
        bucket=bucket.astype(np.intp),
    )
