"""Busy hours on hand-computed series, in UTC and across the Paris DST changes of 2026."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from flowmatrix.stats.busy import busy_hour, busy_hours, hourly, node_volumes

PARIS = "Europe/Paris"
FIVE_MIN = 300_000
HOUR = 3_600_000


def utc_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def paris_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=ZoneInfo(PARIS)).timestamp() * 1000)


def day_of_periods(start_ms: int, end_ms: int, step: int = FIVE_MIN) -> np.ndarray:
    return np.arange(start_ms, end_ms, step, dtype=np.int64)


def test_the_busy_hour_of_a_utc_day_is_the_hour_with_the_largest_sum() -> None:
    starts = day_of_periods(utc_ms(2026, 6, 1), utc_ms(2026, 6, 2))
    volumes = np.ones(starts.size)
    volumes[17 * 12 : 18 * 12] = 3.0  # 17:00–18:00: 36
    volumes[9 * 12] = 30.0  # 09:00–10:00: 30 + 11 = 41, one big period
    hour = busy_hour(volumes, starts)
    assert hour is not None
    assert hour.start_ms == utc_ms(2026, 6, 1, 9)
    assert hour.end_ms == utc_ms(2026, 6, 1, 10)
    assert hour.volume == 41.0
    assert (hour.periods, hour.expected_periods, hour.complete) == (12, 12, True)


def test_on_the_spring_forward_day_the_hour_after_the_gap_is_03_00_cest() -> None:
    starts = day_of_periods(paris_ms(2026, 3, 29), paris_ms(2026, 3, 30))
    volumes = np.ones(starts.size)
    # 01:00 UTC is the first instant of summer time: local 03:00 CEST
    volumes[(starts >= utc_ms(2026, 3, 29, 1)) & (starts < utc_ms(2026, 3, 29, 2))] = 4.0
    hour = busy_hour(volumes, starts, timezone=PARIS)
    assert hour is not None
    assert hour.local_start.isoformat() == "2026-03-29T03:00:00+02:00"
    assert hour.start_ms == utc_ms(2026, 3, 29, 1)
    assert hour.volume == 48.0
    local_hours = [
        h.hour
        for h in (
            dt.datetime.fromtimestamp(s / 1000, ZoneInfo(PARIS))
            for s in hourly(volumes, starts, timezone=PARIS).start_ms.tolist()
        )
    ]
    assert len(local_hours) == 23
    assert 2 not in local_hours


def test_on_the_fall_back_day_the_two_02_00_hours_are_kept_apart() -> None:
    starts = day_of_periods(paris_ms(2026, 10, 25), paris_ms(2026, 10, 26))
    volumes = np.ones(starts.size)
    first_two = (starts >= utc_ms(2026, 10, 25, 0)) & (starts < utc_ms(2026, 10, 25, 1))
    second_two = (starts >= utc_ms(2026, 10, 25, 1)) & (starts < utc_ms(2026, 10, 25, 2))
    three_cet = (starts >= utc_ms(2026, 10, 25, 2)) & (starts < utc_ms(2026, 10, 25, 3))
    volumes[first_two] = 5.0  # 02:00 CEST: 60
    volumes[second_two] = 6.0  # 02:00 CET: 72
    volumes[three_cet] = 5.5  # 03:00 CET: 66; merging both 02:00 would make 132
    hour = busy_hour(volumes, starts, timezone=PARIS)
    assert hour is not None
    assert hour.local_start.isoformat() == "2026-10-25T02:00:00+01:00"
    assert hour.start_ms == utc_ms(2026, 10, 25, 1)
    assert hour.volume == 72.0
    assert hourly(volumes, starts, timezone=PARIS).start_ms.size == 25


def test_the_first_02_00_of_the_fall_back_night_is_summer_time() -> None:
    starts = day_of_periods(utc_ms(2026, 10, 25, 0), utc_ms(2026, 10, 25, 2))
    volumes = np.where(starts < utc_ms(2026, 10, 25, 1), 2.0, 1.0)
    hour = busy_hour(volumes, starts, timezone=PARIS)
    assert hour is not None
    assert hour.local_start.isoformat() == "2026-10-25T02:00:00+02:00"
    assert hour.local_start.fold == 0


def test_ties_go_to_the_earliest_hour() -> None:
    starts = day_of_periods(0, 3 * HOUR)
    hour = busy_hour(np.ones(starts.size), starts)
    assert hour is not None
    assert hour.start_ms == 0


def test_an_incomplete_hour_can_win_unless_complete_hours_are_required() -> None:
    starts = day_of_periods(0, 2 * HOUR, 15 * 60_000)[:-1]  # 15-min periods, last one missing
    volumes = np.array([1.0, 1.0, 1.0, 1.0, 9.0, 1.0, 1.0])
    hour = busy_hour(volumes, starts, readout_seconds=900)
    assert hour is not None
    assert (hour.start_ms, hour.volume, hour.periods, hour.complete) == (HOUR, 11.0, 3, False)
    whole = busy_hour(volumes, starts, readout_seconds=900, complete_only=True)
    assert whole is not None
    assert (whole.start_ms, whole.volume, whole.expected_periods) == (0, 4.0, 4)
    assert busy_hour([5.0], [0], readout_seconds=900, complete_only=True) is None


def test_no_periods_means_no_busy_hour() -> None:
    assert busy_hour(np.zeros(0), np.zeros(0, np.int64)) is None
    assert busy_hours(np.zeros((0, 2)), np.zeros(0, np.int64)) == [None, None]


@pytest.mark.parametrize("readout_seconds", [0, 420, 7200])
def test_a_read_out_period_must_divide_an_hour(readout_seconds: int) -> None:
    with pytest.raises(ValueError, match="divide an hour"):
        busy_hour([1.0], [0], readout_seconds=readout_seconds)


def test_volumes_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="one value per period"):
        busy_hour(np.ones((2, 2)), [0, FIVE_MIN])
    with pytest.raises(ValueError, match="periods × series"):
        busy_hours(np.ones(2), [0, FIVE_MIN])
    with pytest.raises(ValueError, match="per element"):
        node_volumes(np.ones(3), [0, 1], [0, 1], 2)


def test_a_node_counts_elements_entering_or_leaving_it_once() -> None:
    # elements: A→A, A→B, B→C, C→A, unresolved A→?
    ingress = np.array([0, 0, 1, 2, 0])
    egress = np.array([0, 1, 2, 0, -1])
    values = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    assert node_volumes(values, ingress, egress, 3).tolist() == [11011.0, 110.0, 1100.0]


def test_each_service_node_has_its_own_busy_hour() -> None:
    starts = day_of_periods(utc_ms(2026, 6, 1), utc_ms(2026, 6, 1, 3))
    ingress, egress = np.array([0, 1]), np.array([1, 2])  # A→B, B→C
    values = np.ones((starts.size, 2))
    values[:12, 0] = 5.0  # A→B busy in hour 0
    values[24:, 1] = 9.0  # B→C busy in hour 2
    per_node = node_volumes(values, ingress, egress, 3)
    a, b, c = busy_hours(per_node, starts)
    network = busy_hour(values.sum(axis=1), starts)
    assert a is not None
    assert b is not None
    assert c is not None
    assert network is not None
    assert (a.start_ms, a.volume) == (utc_ms(2026, 6, 1, 0), 60.0)
    assert (b.start_ms, b.volume) == (utc_ms(2026, 6, 1, 2), 120.0)
    assert (c.start_ms, c.volume) == (utc_ms(2026, 6, 1, 2), 108.0)
    assert (network.start_ms, network.volume) == (utc_ms(2026, 6, 1, 2), 120.0)
