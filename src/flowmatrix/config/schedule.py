"""Measurement intervals (claims 2–5) → occurrences, read-out periods and per-timestamp membership.

An :class:`~flowmatrix.config.model.Interval` is one of three kinds:

* ``once``: a local date and time ``start`` in ``timezone`` plus a ``duration``;
* ``weekly``: one or more :class:`~flowmatrix.config.model.Slot` (weekday, local
  start time, duration) repeated every week; a slot may cross midnight and the
  Sunday → Monday boundary;
* ``continuous``: always.

An *occurrence* is one stretch of real time an interval covers, ``[start, end)``
in milliseconds since the Unix epoch (UTC). Each occurrence is cut into read-out
periods of ``readout_seconds``: period ``k`` covers
``[start + k·R, min(start + (k+1)·R, end))``, so the last one is shorter when the
duration is not a multiple of ``R``. A ``continuous`` interval has one occurrence
per UTC day, so its periods are multiples of ``R`` since the epoch and
``period_index`` counts periods since UTC midnight.

Time rules, chosen to be deterministic everywhere:

* Durations are elapsed time: an 8 h slot crossing a DST change lasts 8 h.
* A local start time that does not exist (spring-forward gap) is shifted
  forward by the length of the gap, like cron: 02:30 on the night Paris goes
  from 02:00 to 03:00 starts at 03:30 CEST (01:30 UTC).
* A local start time that exists twice (fall-back) is the first of the two,
  i.e. still in summer time (``fold=0``): 02:30 on the night Paris goes from
  03:00 back to 02:00 starts at 02:30 CEST (00:30 UTC).
  Both rules are what :pep:`495` gives for ``fold=0``.
* Occurrences that overlap in real time (nominally disjoint slots can, around a
  DST change) are merged into one, whose periods are aligned to its start.
  Occurrences that only touch stay separate.
* Timestamps outside ``[SUPPORTED_START_MS, SUPPORTED_END_MS)`` (1970–2099) are
  outside every interval, ``continuous`` included; this bounds the work a
  batch with garbage timestamps can cause.

:func:`interval_problems` lists what makes an interval unusable; the read-out
period must be 1–86400 s and divide 86400 s, so periods line up with whole
days (for ``continuous`` intervals: with UTC midnight). Evaluating an interval
that has problems raises :class:`~flowmatrix.errors.ScheduleError`.

Classification never loops over timestamps in Python: the few occurrences
overlapping a batch's ``[min, max]`` are enumerated (weekly ones cached in
13-week chunks), the boundaries of the read-out periods inside that range are
evaluated, and each timestamp is mapped to its segment with a uniform grid (or
``searchsorted``) followed by table look-ups.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from flowmatrix.config.model import WEEKDAYS, Interval, Slot, problem_at
from flowmatrix.errors import ConfigProblem, ScheduleError

__all__ = [
    "OUTSIDE",
    "SUPPORTED_END_MS",
    "SUPPORTED_START_MS",
    "Membership",
    "Occurrences",
    "Schedule",
    "classify",
    "interval_problems",
    "occurrences",
    "period_bounds",
]

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
Int16Array = npt.NDArray[np.int16]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]

#: period_start_ms and occurrence_start_ms of a timestamp outside the interval
OUTSIDE: Final[int] = int(np.iinfo(np.int64).min)
#: first instant evaluated, 1970-01-01T00:00Z; earlier timestamps are outside every interval
SUPPORTED_START_MS: Final[int] = 0
#: end (exclusive) of the instants evaluated, 2100-01-01T00:00Z
SUPPORTED_END_MS: Final[int] = 4_102_444_800_000

_MS: Final = dt.timedelta(milliseconds=1)
_DAY_MS: Final = 86_400_000
_WEEK_MS: Final = 7 * _DAY_MS
#: a Monday 00:00 UTC (1969-12-29): weekly chunks start on Mondays
_MONDAY_MS: Final = -3 * _DAY_MS
#: weekly occurrences are enumerated and cached in chunks of this many weeks
_CHUNK_MS: Final = 13 * _WEEK_MS
_CHUNKS_CACHED: Final = 1024
_EPOCH: Final = dt.datetime(1970, 1, 1)
_EPOCH_DATE: Final = dt.date(1970, 1, 1)
_MAX_READOUT_SECONDS: Final = 86_400
_MAX_PERIOD_INDEX: Final = int(np.iinfo(np.int32).max)
_MAX_INTERVALS: Final = int(np.iinfo(np.int16).max)
#: above this many period boundaries in a batch's range, periods are computed arithmetically
_MAX_TABLE: Final = 1 << 16
#: a grid is used for batches of at least this many timestamps ...
_GRID_MIN_TIMESTAMPS: Final = 1024
#: ... and of at most this many cells
_MAX_GRID: Final = 1 << 20


@dataclass(frozen=True, slots=True, eq=False)
class Occurrences:
    """Occurrences of an interval: sorted, non-overlapping ``[start_ms, end_ms)`` pairs."""

    start_ms: Int64Array
    end_ms: Int64Array

    def __len__(self) -> int:
        return int(self.start_ms.size)


@dataclass(frozen=True, slots=True, eq=False)
class Membership:
    """Where each timestamp of a batch falls in one interval (same shape as the batch)."""

    #: start of the read-out period holding the timestamp, in ms; OUTSIDE outside the interval
    period_start_ms: Int64Array
    #: index of that period within its occurrence; -1 outside the interval
    period_index: Int32Array
    #: start of the occurrence holding the timestamp, in ms; OUTSIDE outside the interval
    occurrence_start_ms: Int64Array

    @property
    def inside(self) -> BoolArray:
        """True where the timestamp falls in the interval."""
        return self.period_index >= 0

    def __len__(self) -> int:
        return int(self.period_index.size)


# --- problems -----------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _describe(slot: Slot) -> str:
    day = WEEKDAYS[slot.day] if 0 <= slot.day < len(WEEKDAYS) else f"day {slot.day}"
    return f"{day} {slot.start:%H:%M} for {slot.duration}"


def _slot_problems(interval: Interval, where: str) -> list[ConfigProblem]:
    found: list[ConfigProblem] = []
    usable: list[tuple[int, int, int]] = []  # (offset in the week, duration, 1-based slot number)
    for number, slot in enumerate(interval.slots, start=1):
        element = f"{where} slot[{number}]"
        ok = True
        if not 0 <= slot.day < len(WEEKDAYS):
            found.append(problem_at(slot, element, f"weekday {slot.day} is outside 0-6 (mon-sun)"))
            ok = False
        if slot.start.tzinfo is not None:
            found.append(problem_at(slot, element, "start time must be local (no UTC offset)"))
            ok = False
        duration_ms = slot.duration // _MS
        if duration_ms <= 0:
            found.append(problem_at(slot, element, f"duration {slot.duration} is not positive"))
            ok = False
        if ok:
            usable.append((slot.day * _DAY_MS + _time_ms(slot.start), duration_ms, number))
    usable.sort()
    for i, (offset, duration_ms, number) in enumerate(usable):
        next_offset, _, next_number = usable[(i + 1) % len(usable)]
        if i + 1 == len(usable):
            next_offset += _WEEK_MS
        if offset + duration_ms > next_offset:
            slot = interval.slots[number - 1]
            other = (
                "its own occurrence the next week"
                if next_number == number
                else f"slot[{next_number}] ({_describe(interval.slots[next_number - 1])})"
            )
            found.append(
                problem_at(slot, f"{where} slot[{number}]", f"{_describe(slot)} overlaps {other}")
            )
    return found


def interval_problems(interval: Interval) -> list[ConfigProblem]:
    """Every semantic problem of one measurement interval; empty when it can be evaluated.

    Checked: the kind, the time zone (an IANA name ``zoneinfo`` knows), the
    read-out period (1–86400 s and a divisor of 86400 s), the fields each kind
    needs and only those (``once``: ``start`` and ``duration``; ``weekly``:
    ``slots``; ``continuous``: none), positive durations, local (naive) start
    times, weekdays 0–6, slots of one interval that overlap each other (a slot
    longer than a week overlaps itself), and ``once`` intervals too long to
    number their periods in an int32.
    """
    where = f"interval[{interval.id}]"
    found: list[ConfigProblem] = []

    def problem(message: str) -> None:
        found.append(problem_at(interval, where, message))

    if interval.kind not in ("once", "weekly", "continuous"):
        problem(f"unknown kind {interval.kind!r} (once, weekly or continuous)")
    if _zone(interval.timezone) is None:
        problem(f"unknown time zone {interval.timezone!r}")
    readout = interval.readout_seconds
    if not 1 <= readout <= _MAX_READOUT_SECONDS:
        problem(f"read-out period {readout} s is outside 1-{_MAX_READOUT_SECONDS} s")
    elif _MAX_READOUT_SECONDS % readout:
        problem(f"read-out period {readout} s does not divide a day ({_MAX_READOUT_SECONDS} s)")

    if interval.kind == "once":
        if interval.start is None:
            problem("once interval without start")
        elif interval.start.tzinfo is not None:
            problem("start must be a local date and time (no UTC offset)")
        if interval.duration is None:
            problem("once interval without duration")
        elif interval.duration // _MS <= 0:
            problem(f"duration {interval.duration} is not positive")
        elif (
            readout >= 1 and (interval.duration // _MS - 1) // (readout * 1000) > _MAX_PERIOD_INDEX
        ):
            problem(f"duration {interval.duration} holds more than 2**31 read-out periods")
    elif interval.start is not None or interval.duration is not None:
        problem(f"start and duration belong to once intervals, not {interval.kind}")

    if interval.kind == "weekly":
        if not interval.slots:
            problem("weekly interval without slots")
        found += _slot_problems(interval, where)
    elif interval.slots:
        problem(f"slots belong to weekly intervals, not {interval.kind}")
    return found


# --- time -------------------------------------------------------------------------------------


def _time_ms(time: dt.time) -> int:
    return ((time.hour * 60 + time.minute) * 60 + time.second) * 1000 + time.microsecond // 1000


def _local_ms(naive: dt.datetime, zone: ZoneInfo) -> int:
    # fold=0 resolves both a gap (shifted forward) and a repeated hour (first one), see PEP 495
    offset = naive.replace(tzinfo=zone, fold=0).utcoffset()
    if offset is None:  # pragma: no cover - a ZoneInfo always has an offset
        offset = dt.timedelta(0)
    return (naive.replace(tzinfo=None) - _EPOCH - offset) // _MS


def _utc_date(ms: int) -> dt.date:
    return _EPOCH_DATE + dt.timedelta(days=ms // _DAY_MS)


def _merge(start: Int64Array, end: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Sorted occurrences → the same with real-time overlaps merged (touching ones kept apart)."""
    if start.size < 2:
        return start, end
    reach = np.maximum.accumulate(end)
    new = np.ones(start.size, dtype=np.bool_)
    np.greater_equal(start[1:], reach[:-1], out=new[1:])
    if new.all():
        return start, end
    heads = np.flatnonzero(new)
    return start[heads], np.maximum.reduceat(end, heads)


_EMPTY: Final[Int64Array] = np.empty(0, dtype=np.int64)


def _as_ms(ts: npt.ArrayLike) -> Int64Array:
    """Timestamps (int ms since the epoch, or datetime64 of any unit) → int64 ms, flattened."""
    array = np.asarray(ts)
    if array.dtype.kind == "M":
        array = array.astype("datetime64[ms]").view(np.int64)
    elif array.dtype.kind in "iu" or array.size == 0:
        array = array.astype(np.int64, copy=False)
    else:
        message = f"timestamps must be integer ms since the epoch or datetime64, not {array.dtype}"
        raise TypeError(message)
    return np.ascontiguousarray(array.reshape(-1))


def _segment_index(edges: Int64Array, ts: Int64Array, lo: int, hi: int) -> IndexArray:
    """Timestamps in [lo, hi] → index of the segment between sorted edges (0 = before edges[0])."""
    if ts.size >= _GRID_MIN_TIMESTAMPS:
        first = int(edges[0])
        step = int(np.gcd.reduce(np.diff(edges))) if edges.size > 1 else first - lo
        # every edge lies on the grid, so one cell never straddles an edge
        base = first - -(-(first - lo) // step) * step
        cells = (hi - base) // step + 1
        if cells <= min(ts.size, _MAX_GRID):
            grid = np.searchsorted(edges, base + step * np.arange(cells, dtype=np.int64), "right")
            cell = np.subtract(ts, base)
            np.floor_divide(cell, step, out=cell)
            return grid.take(cell)
    return np.searchsorted(edges, ts, "right")


# --- compiled intervals -------------------------------------------------------------------------


class _Compiled:
    """One interval, checked, with its time zone loaded and its occurrences cached."""

    def __init__(self, interval: Interval) -> None:
        found = interval_problems(interval)
        if found:
            message = f"interval {interval.id!r} cannot be evaluated: " + "; ".join(
                str(p) for p in found
            )
            raise ScheduleError(message)
        zone = _zone(interval.timezone)
        assert zone is not None  # checked by interval_problems
        self.interval = interval
        self.readout_ms = interval.readout_seconds * 1000
        self._zone = zone
        self._slots = tuple(
            (slot.day, slot.start.replace(fold=0), slot.duration // _MS) for slot in interval.slots
        )
        self._reach_ms = max((duration for _, _, duration in self._slots), default=0)
        self._once = _EMPTY, _EMPTY
        if interval.kind == "once":
            assert interval.start is not None
            assert interval.duration is not None
            start = _local_ms(interval.start, zone)
            self._once = (
                np.array([start], dtype=np.int64),
                np.array([start + interval.duration // _MS], dtype=np.int64),
            )
        self._chunk = functools.lru_cache(maxsize=_CHUNKS_CACHED)(self._weekly_chunk)

    def _weekly_chunk(self, chunk: int) -> tuple[Int64Array, Int64Array]:
        """Chunk number → weekly occurrences starting in it, sorted by start."""
        lo = _MONDAY_MS + chunk * _CHUNK_MS
        hi = lo + _CHUNK_MS
        # a local date's times land within a day before to two days after its UTC midnight
        first, last = _utc_date(lo) - dt.timedelta(days=2), _utc_date(hi) + dt.timedelta(days=1)
        starts: list[int] = []
        ends: list[int] = []
        week = dt.timedelta(days=7)
        for day, time, duration in self._slots:
            date = first + dt.timedelta(days=(day - first.weekday()) % 7)
            while date <= last:
                start = _local_ms(dt.datetime.combine(date, time), self._zone)
                if lo <= start < hi:
                    starts.append(start)
                    ends.append(start + duration)
                date += week
        start_ms = np.array(starts, dtype=np.int64)
        order = np.argsort(start_ms, kind="stable")
        return start_ms[order], np.array(ends, dtype=np.int64)[order]

    def occurrences(self, start_ms: int, end_ms: int) -> tuple[Int64Array, Int64Array]:
        """[start_ms, end_ms) → the merged occurrences overlapping it in the supported range."""
        start_ms = max(start_ms, SUPPORTED_START_MS)
        end_ms = min(end_ms, SUPPORTED_END_MS)
        if start_ms >= end_ms:
            return _EMPTY, _EMPTY
        kind = self.interval.kind
        if kind == "continuous":
            days = np.arange(start_ms // _DAY_MS, -(-end_ms // _DAY_MS), dtype=np.int64)
            days *= _DAY_MS
            return days, days + _DAY_MS
        if kind == "once":
            starts, ends = self._once
        else:
            # one chunk more than the longest slot needs, so merges at the edge are complete
            first = (start_ms - self._reach_ms - _MONDAY_MS) // _CHUNK_MS - 1
            last = (end_ms - 1 - _MONDAY_MS) // _CHUNK_MS
            chunks = [self._chunk(c) for c in range(first, last + 1)]
            starts, ends = _merge(
                np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
            )
        keep = (ends > start_ms) & (starts < end_ms)
        return starts[keep], ends[keep]

    def membership_edges(self, lo: int, hi: int) -> Int64Array:
        """[lo, hi] → the instants in (lo, hi] where being inside the interval may change."""
        edges = [e for e in (SUPPORTED_START_MS, SUPPORTED_END_MS) if lo < e <= hi]
        edge_array = np.array(edges, dtype=np.int64)
        if self.interval.kind == "continuous":
            return edge_array
        starts, ends = self.occurrences(lo, hi + 1)
        both = np.concatenate((starts, ends, edge_array))
        return both[(both > lo) & (both <= hi)]

    def _period_edges(
        self, starts: Int64Array, ends: Int64Array, lo: int, hi: int
    ) -> Int64Array | None:
        """Occurrences → sorted instants in (lo, hi] where the period may change; None: too many."""
        clo, chi = max(lo, SUPPORTED_START_MS), min(hi, SUPPORTED_END_MS - 1)
        extra = [e for e in (SUPPORTED_START_MS, SUPPORTED_END_MS) if lo < e <= hi]
        step = self.readout_ms
        if clo <= chi and starts.size:
            # periods k0..k1 of each occurrence start in (clo, chi] and before its end
            first = np.maximum((clo - starts) // step + 1, 0)
            last = np.minimum((chi - starts) // step, (ends - 1 - starts) // step)
            counts = np.maximum(last - first + 1, 0)
            total = int(counts.sum())
            if total + ends.size + len(extra) > _MAX_TABLE:
                return None
            owner = np.repeat(np.arange(starts.size), counts)
            k = np.arange(total, dtype=np.int64)
            k -= np.repeat(np.cumsum(counts) - counts, counts)
            k += first[owner]
            period_starts = starts[owner] + k * step
            inner_ends = ends[(ends > clo) & (ends <= chi)]
        else:
            period_starts = inner_ends = _EMPTY
        return np.unique(
            np.concatenate((period_starts, inner_ends, np.array(extra, dtype=np.int64)))
        )

    def _arithmetic(
        self, starts: Int64Array, ends: Int64Array, ts: Int64Array, lo: int, hi: int
    ) -> Membership:
        """Timestamps → membership by searching the occurrences and dividing by R."""
        at = np.searchsorted(starts, ts, "right")
        occurrence = np.concatenate(([OUTSIDE], starts)).take(at)
        inside = ts < np.concatenate(([OUTSIDE], ends)).take(at)
        if lo < SUPPORTED_START_MS or hi >= SUPPORTED_END_MS:
            inside &= (ts >= SUPPORTED_START_MS) & (ts < SUPPORTED_END_MS)
        outside = ~inside
        k = np.subtract(ts, occurrence)  # wraps for outside timestamps; masked below
        np.floor_divide(k, self.readout_ms, out=k)
        np.putmask(k, outside, -1)
        period_start = k * self.readout_ms
        period_start += occurrence
        np.putmask(period_start, outside, OUTSIDE)
        np.putmask(occurrence, outside, OUTSIDE)
        return Membership(period_start, k.astype(np.int32), occurrence)

    def classify(self, ts: Int64Array, lo: int, hi: int) -> Membership:
        """Flat int64 ms timestamps whose extremes are lo and hi → membership."""
        if ts.size == 0:
            return Membership(_EMPTY.copy(), np.empty(0, np.int32), _EMPTY.copy())
        starts, ends = self.occurrences(lo, hi + 1)
        edges = self._period_edges(starts, ends, lo, hi)
        if edges is None or edges.size >= ts.size:
            return self._arithmetic(starts, ends, ts, lo, hi)
        # membership is constant between edges: evaluate it once per segment, then look up
        table = self._arithmetic(starts, ends, np.concatenate(([lo], edges)), lo, hi)
        if edges.size == 0:
            return Membership(
                np.full(ts.size, table.period_start_ms[0], dtype=np.int64),
                np.full(ts.size, table.period_index[0], dtype=np.int32),
                np.full(ts.size, table.occurrence_start_ms[0], dtype=np.int64),
            )
        segment = _segment_index(edges, ts, lo, hi)
        return Membership(
            table.period_start_ms.take(segment),
            table.period_index.take(segment),
            table.occurrence_start_ms.take(segment),
        )

    def inside(self, ts: Int64Array, lo: int, hi: int) -> BoolArray:
        """Flat int64 ms timestamps whose extremes are lo and hi → True where inside."""
        if lo < SUPPORTED_START_MS or hi >= SUPPORTED_END_MS:
            inside = (ts >= SUPPORTED_START_MS) & (ts < SUPPORTED_END_MS)
        else:
            inside = np.ones(ts.size, dtype=np.bool_)
        if self.interval.kind != "continuous":
            starts, ends = self.occurrences(lo, hi + 1)
            at = np.searchsorted(starts, ts, "right")
            inside &= ts < np.concatenate(([OUTSIDE], ends)).take(at)
        return inside

    def period_bounds(self, period_start_ms: int) -> tuple[int, int]:
        """A period start → [start, end) of that read-out period in ms; ValueError if it is none."""
        starts, ends = self.occurrences(period_start_ms, period_start_ms + 1)
        if not starts.size or (period_start_ms - int(starts[0])) % self.readout_ms:
            message = (
                f"{period_start_ms} is not the start of a read-out period "
                f"of interval {self.interval.id!r}"
            )
            raise ValueError(message)
        return period_start_ms, min(period_start_ms + self.readout_ms, int(ends[0]))


@functools.lru_cache(maxsize=256)
def _compiled_cached(interval: Interval) -> _Compiled:
    return _Compiled(interval)


def _compiled(interval: Interval) -> _Compiled:
    try:
        return _compiled_cached(interval)
    except TypeError:  # unhashable fields (a list of slots): compile without caching
        return _Compiled(interval)


def _extremes(ts: Int64Array) -> tuple[int, int]:
    return (int(ts.min()), int(ts.max())) if ts.size else (0, 0)


def _reshaped(membership: Membership, shape: tuple[int, ...]) -> Membership:
    return Membership(
        membership.period_start_ms.reshape(shape),
        membership.period_index.reshape(shape),
        membership.occurrence_start_ms.reshape(shape),
    )


# --- public functions ---------------------------------------------------------------------------


def occurrences(interval: Interval, start_ms: int, end_ms: int) -> Occurrences:
    """An interval and [start_ms, end_ms) → every occurrence overlapping that range.

    Occurrences are not clipped: the first may start before ``start_ms`` and
    the last end after ``end_ms``. Only occurrences overlapping
    the supported range (1970–2099) are listed. Raises ScheduleError if the
    interval has problems.
    """
    starts, ends = _compiled(interval).occurrences(int(start_ms), int(end_ms))
    return Occurrences(starts.copy(), ends.copy())


def classify(interval: Interval, ts_ms: npt.ArrayLike) -> Membership:
    """Timestamps → the read-out period and occurrence of ``interval`` each falls in.

    Parameters
    ----------
    interval
        The measurement interval; ScheduleError if it has problems.
    ts_ms
        Timestamps: integers in ms since the Unix epoch (UTC), or a datetime64
        array of any unit (NaT is outside). Any order and shape.

    Returns
    -------
    Membership
        Arrays of the shape of ``ts_ms``: period start (OUTSIDE outside), period
        index within the occurrence (-1 outside) and occurrence start.

    Examples
    --------
    >>> import datetime as dt
    >>> import numpy as np
    >>> from flowmatrix.config.model import Interval, Slot
    >>> busy = Interval(
    ...     "busy", "weekly", timezone="Europe/Paris", readout_seconds=900,
    ...     slots=(Slot(0, dt.time(9), dt.timedelta(hours=8)),),
    ... )
    >>> ts = np.array(["2026-06-01T07:20", "2026-06-01T15:10"], dtype="datetime64[m]")
    >>> m = classify(busy, ts)  # Monday 09:20 and 17:10 in Paris (UTC+2)
    >>> m.period_index
    array([ 1, -1], dtype=int32)
    >>> m.period_start_ms[0].astype("datetime64[ms]")
    np.datetime64('2026-06-01T07:15:00.000')
    >>> bool(m.period_start_ms[1] == OUTSIDE)
    True
    """
    array = np.asarray(ts_ms)
    flat = _as_ms(array)
    lo, hi = _extremes(flat)
    return _reshaped(_compiled(interval).classify(flat, lo, hi), array.shape)


def period_bounds(interval: Interval, period_start_ms: int) -> tuple[int, int]:
    """An interval and one of its period starts → [start, end) of that read-out period in ms."""
    return _compiled(interval).period_bounds(int(period_start_ms))


class Schedule:
    """The measurement intervals of a configuration, compiled once for classifying batches.

    Intervals may overlap: a timestamp belongs to every interval it falls in.
    Raises ScheduleError if an interval has problems, two share an id, or
    there are more than 32767 of them.

    Examples
    --------
    >>> from flowmatrix.config.model import Interval
    >>> schedule = Schedule((Interval("all", "continuous", readout_seconds=60),))
    >>> [m.period_index.tolist() for m in schedule.classify([0, 61_000, -1])]
    [[0, 1, -1]]
    >>> schedule.first_interval([0, -1]).tolist()
    [0, -1]
    >>> schedule.period_bounds("all", 60_000)
    (60000, 120000)
    """

    def __init__(self, intervals: Iterable[Interval]) -> None:
        self.intervals: tuple[Interval, ...] = tuple(intervals)
        if len(self.intervals) > _MAX_INTERVALS:
            message = f"{len(self.intervals)} intervals, at most {_MAX_INTERVALS} are supported"
            raise ScheduleError(message)
        self._compiled = tuple(_Compiled(interval) for interval in self.intervals)
        self._by_id: dict[str, _Compiled] = {}
        for compiled in self._compiled:
            if compiled.interval.id in self._by_id:
                message = f"two intervals have the id {compiled.interval.id!r}"
                raise ScheduleError(message)
            self._by_id[compiled.interval.id] = compiled

    def __len__(self) -> int:
        return len(self.intervals)

    def classify(self, ts_ms: npt.ArrayLike) -> list[Membership]:
        """Timestamps → one Membership per interval, in configuration order (see classify())."""
        array = np.asarray(ts_ms)
        flat = _as_ms(array)
        lo, hi = _extremes(flat)
        return [_reshaped(c.classify(flat, lo, hi), array.shape) for c in self._compiled]

    def first_interval(self, ts_ms: npt.ArrayLike) -> Int16Array:
        """Timestamps → int16 index of the first interval (config order) holding each, else -1."""
        array = np.asarray(ts_ms)
        flat = _as_ms(array)
        if flat.size == 0:
            return np.empty(array.shape, dtype=np.int16)
        lo, hi = _extremes(flat)
        parts = [c.membership_edges(lo, hi) for c in self._compiled]
        edges = np.unique(np.concatenate(parts)) if parts else _EMPTY
        if edges.size >= min(flat.size, _MAX_TABLE):
            return self._first_at(flat, lo, hi).reshape(array.shape)
        # which interval comes first is constant between edges: evaluate once per segment
        table = self._first_at(np.concatenate(([lo], edges)), lo, hi)
        if edges.size == 0:
            return np.full(array.shape, table[0], dtype=np.int16)
        return table.take(_segment_index(edges, flat, lo, hi)).reshape(array.shape)

    def _first_at(self, ts: Int64Array, lo: int, hi: int) -> Int16Array:
        first = np.full(ts.size, -1, dtype=np.int16)
        for number in range(len(self._compiled) - 1, -1, -1):
            np.putmask(first, self._compiled[number].inside(ts, lo, hi), number)
        return first

    def period_bounds(self, interval_id: str, period_start_ms: int) -> tuple[int, int]:
        """An interval id and one of its period starts → [start, end) of that period in ms.

        KeyError for an unknown id, ValueError if ``period_start_ms`` does not
        start a read-out period of that interval.
        """
        return self._by_id[interval_id].period_bounds(int(period_start_ms))
