"""Running per-element statistics and roll-ups, against full recomputation and by hand."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.errors import ScheduleError
from flowmatrix.stats.running import (
    ElementIndex,
    RunningStats,
    bucket_starts,
    dense,
    rollup,
)

PARIS = "Europe/Paris"
FIVE_MIN = 300_000
HOUR = 3_600_000


def utc_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def paris_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=ZoneInfo(PARIS)).timestamp() * 1000)


#: one period: a vector of 0–6 elements, many of them zero
period_values = st.lists(
    st.one_of(st.just(0.0), st.floats(0, 1e12), st.integers(0, 1000).map(float)),
    max_size=6,
)


def zero_filled(series: list[list[float]]) -> np.ndarray:
    width = max((len(p) for p in series), default=0)
    out = np.zeros((len(series), width))
    for i, p in enumerate(series):
        out[i, : len(p)] = p
    return out


def fed(series: list[list[float]], first_period: int = 0) -> RunningStats:
    stats = RunningStats()
    for i, p in enumerate(series):
        stats.update(np.array(p), period_start_ms=(first_period + i) * FIVE_MIN)
    return stats


def assert_matches_recomputation(
    stats: RunningStats, full: np.ndarray, *, scale: float | None = None
) -> None:
    """Compare with numpy on the zero-filled series; ``scale`` sizes the rounding allowed."""
    assert stats.count == full.shape[0]
    assert len(stats) == full.shape[1]
    scale = scale or max(float(full.max(initial=0.0)), 1.0)
    np.testing.assert_allclose(stats.mean, full.mean(axis=0), rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(
        stats.variance(), full.var(axis=0), rtol=1e-7, atol=1e-9 * scale * scale
    )
    np.testing.assert_array_equal(stats.peak, full.max(axis=0))
    np.testing.assert_array_equal(stats.p95, np.percentile(full, 95, axis=0, method="inverted_cdf"))
    np.testing.assert_array_equal(stats.active, (full != 0).sum(axis=0))


@settings(max_examples=150, deadline=None)
@given(st.lists(period_values, min_size=1, max_size=25))
def test_incremental_statistics_equal_a_full_recomputation(series: list[list[float]]) -> None:
    assert_matches_recomputation(fed(series), zero_filled(series))


@settings(max_examples=100, deadline=None)
@given(st.lists(period_values, min_size=2, max_size=25), st.integers(1, 24))
def test_merged_statistics_equal_one_run_over_all_periods(
    series: list[list[float]], cut: int
) -> None:
    cut = min(cut, len(series) - 1)
    merged = fed(series[:cut]).merge(fed(series[cut:], first_period=cut))
    assert_matches_recomputation(merged, zero_filled(series))


def test_an_element_appearing_late_had_zero_traffic_before() -> None:
    stats = RunningStats()
    stats.update(np.array([4.0]), period_start_ms=0)
    stats.update(np.array([4.0, 6.0]), period_start_ms=FIVE_MIN)
    assert stats.mean.tolist() == [4.0, 3.0]
    assert stats.variance().tolist() == [0.0, 9.0]
    assert stats.active.tolist() == [2, 1]


def test_a_shorter_vector_leaves_the_missing_elements_at_zero() -> None:
    stats = RunningStats()
    stats.update(np.array([2.0, 8.0]), period_start_ms=0)
    stats.update(np.array([2.0]), period_start_ms=FIVE_MIN)
    assert stats.mean.tolist() == [2.0, 4.0]
    assert stats.history().tolist() == [[2.0, 8.0], [2.0, 0.0]]


@pytest.mark.parametrize(
    ("periods", "expected"),
    [(1, 1.0), (20, 19.0), (288, 274.0), (2016, 1916.0)],
)
def test_p95_drops_the_top_five_percent_and_takes_the_largest_left(
    periods: int, expected: float
) -> None:
    stats = RunningStats()
    for i in np.random.default_rng(1).permutation(periods):
        stats.update(np.array([float(i + 1)]), period_start_ms=int(i) * FIVE_MIN)
    assert stats.p95.tolist() == [expected]


def test_without_history_there_is_no_percentile_but_the_moments_remain() -> None:
    stats = RunningStats(keep_history=False)
    stats.update(np.array([1.0, 3.0]), period_start_ms=0)
    assert stats.snapshot().p95 is None
    assert stats.snapshot().mean.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="no history"):
        stats.history()


def test_empty_statistics_have_no_moments() -> None:
    stats = RunningStats()
    assert stats.count == 0
    assert len(stats.p95) == 0
    assert np.isnan(stats.merge(RunningStats()).variance()).all()


def test_a_period_is_added_only_once_and_merges_refuse_shared_periods() -> None:
    stats = fed([[1.0], [2.0]])
    with pytest.raises(ValueError, match="already added"):
        stats.update(np.array([1.0]), period_start_ms=FIVE_MIN)
    with pytest.raises(ValueError, match="sharing periods"):
        stats.merge(fed([[5.0]], first_period=1))


@pytest.mark.parametrize("bad", [np.array([[1.0]]), np.array([np.nan]), np.array([np.inf])])
def test_update_refuses_matrices_and_non_finite_values(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"vector|finite"):
        RunningStats().update(bad, period_start_ms=0)


def test_element_codes_are_stable_and_numbered_by_first_appearance() -> None:
    index = ElementIndex()
    assert index.codes(np.array([42, 7, 42, 99])).tolist() == [0, 1, 0, 2]
    assert index.codes(np.array([99, 3, 7, 3])).tolist() == [2, 3, 1, 3]
    assert index.keys.tolist() == [42, 7, 99, 3]
    assert len(index) == 4
    assert index.codes(np.zeros(0, np.int64)).tolist() == []


def test_dense_sums_rows_of_one_element_and_refuses_codes_out_of_range() -> None:
    assert dense([1, 1], [2.0, 3.0], 3).tolist() == [0.0, 5.0, 0.0]
    with pytest.raises(ValueError, match="element codes"):
        dense([3], [1.0], 3)


def test_a_spring_forward_day_in_paris_has_23_hours_of_12_periods() -> None:
    start, end = paris_ms(2026, 3, 29), paris_ms(2026, 3, 30)
    starts = np.arange(start, end, FIVE_MIN)
    hours = rollup(np.ones(starts.size), starts, scale="hour", timezone=PARIS)
    assert (end - start) // HOUR == 23
    assert hours.values.tolist() == [12.0] * 23
    # 01:00 CET is followed by 03:00 CEST, one real hour later
    assert np.diff(hours.start_ms).tolist() == [HOUR] * 22
    day = rollup(np.ones(starts.size), starts, scale="day", timezone=PARIS)
    assert day.start_ms.tolist() == [start]
    assert day.periods.tolist() == [276]


def test_a_fall_back_day_in_paris_has_the_two_2_oclock_hours_apart() -> None:
    start, end = paris_ms(2026, 10, 25), paris_ms(2026, 10, 26)
    starts = np.arange(start, end, FIVE_MIN)
    hours = rollup(np.arange(starts.size, dtype=float), starts, scale="hour", timezone=PARIS)
    assert hours.start_ms.size == 25
    # 02:00 CEST is 00:00 UTC, 02:00 CET is 01:00 UTC
    assert utc_ms(2026, 10, 25, 0) in hours.start_ms
    assert utc_ms(2026, 10, 25, 1) in hours.start_ms
    assert hours.periods.tolist() == [12] * 25
    assert hours.values.sum() == np.arange(starts.size).sum()


def test_weeks_start_on_local_monday_midnight() -> None:
    starts = np.array(
        [paris_ms(2026, 10, 18, 23, 55), paris_ms(2026, 10, 19), paris_ms(2026, 10, 25, 23)]
    )
    weeks = bucket_starts(starts, "week", PARIS)
    assert weeks.tolist() == [
        paris_ms(2026, 10, 12),
        paris_ms(2026, 10, 19),
        paris_ms(2026, 10, 19),
    ]


def test_a_rollup_keeps_which_period_went_where_so_buckets_can_be_recomputed() -> None:
    rng = np.random.default_rng(3)
    starts = np.arange(0, 3 * 86_400_000, FIVE_MIN)[rng.permutation(864)]
    values = rng.random((864, 4))
    days = rollup(values, starts, scale="day", timezone="America/New_York")
    recomputed = np.zeros_like(days.values)
    for period, bucket in enumerate(days.bucket):
        recomputed[bucket] += values[period]
    np.testing.assert_allclose(days.values, recomputed)
    assert days.values.shape == (days.start_ms.size, 4)
    assert (np.diff(days.start_ms) > 0).all()


def test_a_rollup_of_no_periods_is_empty() -> None:
    empty = rollup(np.zeros((0, 3)), np.zeros(0, np.int64), scale="hour")
    assert empty.values.shape == (0, 3)


def test_an_unknown_time_zone_or_scale_is_refused() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        bucket_starts([0], "hour", "Mars/Olympus")
    with pytest.raises(ValueError, match="scale"):
        bucket_starts([0], "month", "UTC")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one row per period"):
        rollup(np.zeros(3), np.zeros(2, np.int64), scale="day")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(period_values, min_size=1, max_size=40),
    st.sampled_from([0.0, 1.0, 33.3, 50.0, 95.0, 99.5, 100.0]),
)
def test_every_percentile_is_the_inverted_cdf_of_numpy(series: list[list[float]], q: float) -> None:
    expected = np.percentile(zero_filled(series), q, axis=0, method="inverted_cdf")
    np.testing.assert_array_equal(fed(series).percentile(q), expected)


def test_percentiles_need_history_and_a_q_between_0_and_100() -> None:
    with pytest.raises(ValueError, match="q must"):
        fed([[1.0]]).percentile(101)
    with pytest.raises(ValueError, match="no history"):
        RunningStats(keep_history=False).percentile(95)


@pytest.mark.parametrize("keep_history", [True, False])
def test_update_neither_changes_nor_aliases_the_callers_vector(keep_history: bool) -> None:
    values = np.array([3.0, 0.0, 5.0])
    stats = RunningStats(keep_history=keep_history)
    stats.update(values, period_start_ms=0)
    stats.update(values * 2, period_start_ms=FIVE_MIN)
    assert values.tolist() == [3.0, 0.0, 5.0]
    values[:] = 100.0
    assert stats.peak.tolist() == [6.0, 0.0, 10.0]
    if keep_history:
        assert stats.history().tolist() == [[3.0, 0.0, 5.0], [6.0, 0.0, 10.0]]


@settings(max_examples=100, deadline=None)
@given(st.lists(period_values, min_size=1, max_size=20), period_values, st.integers(0, 19))
def test_a_revised_period_gives_the_statistics_of_the_revised_series(
    series: list[list[float]], revised: list[float], which: int
) -> None:
    which %= len(series)
    stats = fed(series)
    stats.replace(np.array(revised), period_start_ms=which * FIVE_MIN)
    # the element count never shrinks: a revision cannot un-know an element
    expected = zero_filled([*series[:which], revised, *series[which + 1 :]])
    width = max(len(stats), expected.shape[1])
    padded = np.zeros((expected.shape[0], width))
    padded[:, : expected.shape[1]] = expected
    # un-Welfording rounds relative to the values taken out, not to the ones left
    removed = max([1.0, *series[which]])
    assert_matches_recomputation(stats, padded, scale=max(float(padded.max(initial=0)), removed))


def test_removing_every_period_leaves_empty_statistics_of_the_known_elements() -> None:
    stats = fed([[1.0, 2.0]])
    stats.remove(0)
    assert (stats.count, len(stats), stats.peak.tolist()) == (0, 2, [0.0, 0.0])
    with pytest.raises(ValueError, match="never added"):
        stats.remove(0)
    with pytest.raises(ValueError, match="needs the history"):
        RunningStats(keep_history=False).remove(0)
