"""Classify 10 M flow timestamps spread over a week against a weekly and a continuous interval.

Prints the vectorized rate, the rate of a per-timestamp Python loop on a 100 k
sample in the same run, and their ratio. Target: ≥ 20 M timestamps/s (weekly).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np

from flowmatrix.config.model import Interval, Slot
from flowmatrix.config.schedule import Schedule, classify

N = 10_000_000
SAMPLE = 100_000
REPEAT = 5
TARGET = 20e6
#: Monday 2026-10-19 00:00 Europe/Paris; the week holds the fall-back night
WEEK_START_MS = int(dt.datetime(2026, 10, 18, 22, tzinfo=dt.UTC).timestamp() * 1000)
WEEK_MS = 7 * 86_400_000

BUSY = Interval(
    id="busy",
    kind="weekly",
    timezone="Europe/Paris",
    readout_seconds=300,
    slots=(
        *(Slot(day, dt.time(8, 30), dt.timedelta(hours=9, minutes=30)) for day in range(5)),
        Slot(4, dt.time(20), dt.timedelta(hours=5)),  # Friday evening, crosses midnight
        Slot(6, dt.time(22), dt.timedelta(hours=4)),  # Sunday night, crosses the week boundary
    ),
)
ALWAYS = Interval(id="always", kind="continuous", readout_seconds=300)


def best_seconds(run: Callable[[], object], repeat: int = REPEAT) -> float:
    """A callable → the fastest of ``repeat`` wall-clock timings, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def loop_reference(interval: Interval, ts_ms: np.ndarray) -> list[int]:
    """Per-timestamp Python loop: the period start of each timestamp (weekly interval)."""
    zone = ZoneInfo(interval.timezone)
    readout_ms = interval.readout_seconds * 1000
    out = []
    for t in ts_ms.tolist():
        local = dt.datetime.fromtimestamp(t / 1000, zone).date()
        period = -(2**63)
        for back in range(8):
            day = local - dt.timedelta(days=back)
            for slot in interval.slots:
                if slot.day != day.weekday():
                    continue
                start = dt.datetime.combine(day, slot.start, tzinfo=zone)
                start_ms = round(start.timestamp() * 1000)
                end_ms = start_ms + slot.duration // dt.timedelta(milliseconds=1)
                if start_ms <= t < end_ms:
                    period = start_ms + (t - start_ms) // readout_ms * readout_ms
        out.append(period)
    return out


def main() -> None:
    """Run the benchmark and print one line per figure."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {next(iter(os.sched_getaffinity(0)))})
    rng = np.random.default_rng(2026)
    ts = WEEK_START_MS + rng.integers(0, WEEK_MS, N, dtype=np.int64)
    ts_sorted = np.sort(ts)
    schedule = Schedule((BUSY, ALWAYS))

    weekly = N / best_seconds(lambda: classify(BUSY, ts))
    weekly_sorted = N / best_seconds(lambda: classify(BUSY, ts_sorted))
    continuous = N / best_seconds(lambda: classify(ALWAYS, ts))
    both = N / best_seconds(lambda: schedule.classify(ts))
    first = N / best_seconds(lambda: schedule.first_interval(ts))
    sample = ts[:SAMPLE]
    loop = SAMPLE / best_seconds(lambda: loop_reference(BUSY, sample), repeat=1)
    expected = classify(BUSY, sample).period_start_ms
    if loop_reference(BUSY, sample[:2000]) != expected[:2000].tolist():
        raise SystemExit("the vectorized and the loop classification disagree")

    share = np.mean(classify(BUSY, ts).period_index >= 0)
    print(f"timestamps: {N:,} over one week (Europe/Paris, fall-back week), {share:.0%} in 'busy'")
    print(f"weekly interval, unsorted timestamps:    {weekly / 1e6:8.1f} M timestamps/s")
    print(f"weekly interval, sorted timestamps:      {weekly_sorted / 1e6:8.1f} M timestamps/s")
    print(f"continuous interval:                     {continuous / 1e6:8.1f} M timestamps/s")
    print(f"Schedule.classify, both intervals:       {both / 1e6:8.1f} M timestamps/s")
    print(f"Schedule.first_interval, both intervals: {first / 1e6:8.1f} M timestamps/s")
    print(f"per-timestamp Python loop (100k sample): {loop / 1e6:8.3f} M timestamps/s")
    print(f"ratio weekly vectorized / loop:          {weekly / loop:8.0f} x")
    verdict = "met" if weekly >= TARGET else "MISSED"
    print(f"target {TARGET / 1e6:.0f} M timestamps/s (weekly, unsorted): {verdict}")


if __name__ == "__main__":
    main()
