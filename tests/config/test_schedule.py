"""Measurement intervals → occurrences and membership, checked by hand and against a reference."""

from __future__ import annotations

import dataclasses
import datetime as dt
import doctest
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.config import schedule
from flowmatrix.config.model import Interval, NetworkConfig, Slot, Source, problems
from flowmatrix.config.schedule import (
    OUTSIDE,
    SUPPORTED_END_MS,
    Membership,
    Schedule,
    classify,
    interval_problems,
    occurrences,
    period_bounds,
)
from flowmatrix.errors import ScheduleError

MS = dt.timedelta(milliseconds=1)
DAY_MS = 86_400_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def ms(text: str) -> int:
    """An ISO date and time read as UTC → ms since the epoch."""
    return (dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC) - EPOCH) // MS


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


def weekly(
    *slots: Slot, id: str = "w", timezone: str = "UTC", readout_seconds: int = 3600
) -> Interval:
    return Interval(id, "weekly", timezone=timezone, readout_seconds=readout_seconds, slots=slots)


def rows(m: Membership) -> list[tuple[int, int, int]]:
    """A membership → (period start, period index, occurrence start) per timestamp."""
    return list(
        zip(
            m.period_start_ms.tolist(),
            m.period_index.tolist(),
            m.occurrence_start_ms.tolist(),
            strict=True,
        )
    )


OUT = (OUTSIDE, -1, OUTSIDE)


# --- the reference: one timestamp at a time, straight from the definitions ----------------------


def reference(interval: Interval, t: int) -> tuple[int, int, int]:
    """One timestamp → (period start, period index, occurrence start), the slow obvious way."""
    if not 0 <= t < SUPPORTED_END_MS:
        return OUT
    readout = interval.readout_seconds * 1000
    if interval.kind == "continuous":
        midnight, start = t - t % DAY_MS, t - t % readout
        return start, (start - midnight) // readout, midnight
    zone = ZoneInfo(interval.timezone)
    spans: list[tuple[int, int]] = []
    if interval.kind == "once":
        assert interval.start is not None
        assert interval.duration is not None
        begin = (interval.start.replace(tzinfo=zone) - EPOCH) // MS
        spans.append((begin, begin + interval.duration // MS))
    else:
        today = dt.datetime.fromtimestamp(t / 1000, zone).date()
        for back in range(-2, 17):
            day = today - dt.timedelta(days=back)
            for slot in interval.slots:
                if slot.day == day.weekday():
                    begin = (dt.datetime.combine(day, slot.start, tzinfo=zone) - EPOCH) // MS
                    spans.append((begin, begin + slot.duration // MS))
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if merged and begin < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    for begin, end in merged:
        if begin <= t < end:
            k = (t - begin) // readout
            return begin + k * readout, k, begin
    return OUT


# --- weekly slots --------------------------------------------------------------------------------


def test_weekly_slot_crossing_midnight_covers_both_days() -> None:
    interval = weekly(Slot(MON, dt.time(22), hours(4)))  # 2026-06-01 is a Monday
    ts = [
        ms("2026-06-01T21:59:59.999"),
        ms("2026-06-01T22:00"),
        ms("2026-06-02T01:30"),
        ms("2026-06-02T02:00"),
    ]
    assert rows(classify(interval, ts)) == [
        OUT,
        (ms("2026-06-01T22:00"), 0, ms("2026-06-01T22:00")),
        (ms("2026-06-02T01:00"), 3, ms("2026-06-01T22:00")),
        OUT,
    ]


def test_sunday_slot_ends_on_monday_across_the_week_boundary() -> None:
    interval = weekly(Slot(SUN, dt.time(22), hours(4)))  # 2026-06-07 is a Sunday
    sunday_night = ms("2026-06-07T22:00")
    # a batch holding only Monday timestamps still sees the occurrence that began on Sunday
    monday = [ms("2026-06-08T00:30"), ms("2026-06-08T01:59:59.999"), ms("2026-06-08T02:00")]
    assert rows(classify(interval, monday)) == [
        (ms("2026-06-08T00:00"), 2, sunday_night),
        (ms("2026-06-08T01:00"), 3, sunday_night),
        OUT,
    ]
    assert classify(interval, [ms("2026-06-07T21:59")]).period_index.tolist() == [-1]


@pytest.mark.parametrize(
    ("timezone", "sunday", "start", "end"),
    [
        # 00:00 CET + 8 h of real time ends at 09:00 CEST, not 08:00
        ("Europe/Paris", "2026-03-29", "2026-03-28T23:00", "2026-03-29T07:00"),
        # 00:00 CEST + 8 h of real time ends at 07:00 CET
        ("Europe/Paris", "2026-10-25", "2026-10-24T22:00", "2026-10-25T06:00"),
        # 00:00 EST + 8 h ends at 09:00 EDT
        ("America/New_York", "2026-03-08", "2026-03-08T05:00", "2026-03-08T13:00"),
        # 00:00 EDT + 8 h ends at 07:00 EST
        ("America/New_York", "2026-11-01", "2026-11-01T04:00", "2026-11-01T12:00"),
    ],
)
def test_slot_crossing_a_dst_change_lasts_its_elapsed_duration(
    timezone: str, sunday: str, start: str, end: str
) -> None:
    interval = weekly(Slot(SUN, dt.time(0), hours(8)), timezone=timezone)
    found = occurrences(interval, ms(f"{sunday}T00:00") - DAY_MS, ms(f"{sunday}T00:00") + DAY_MS)
    assert found.start_ms.tolist() == [ms(start)]
    assert found.end_ms.tolist() == [ms(end)]
    last = ms(end) - 1
    assert rows(classify(interval, [last, ms(end)])) == [(ms(end) - 3_600_000, 7, ms(start)), OUT]


@pytest.mark.parametrize(
    ("timezone", "sunday", "local_start", "expected"),
    [
        # Paris jumps 02:00 CET → 03:00 CEST: 02:30 does not exist, it becomes 03:30 CEST
        ("Europe/Paris", "2026-03-29", dt.time(2, 30), "2026-03-29T01:30"),
        # New York jumps 02:00 EST → 03:00 EDT: 02:30 becomes 03:30 EDT
        ("America/New_York", "2026-03-08", dt.time(2, 30), "2026-03-08T07:30"),
    ],
)
def test_slot_starting_in_the_spring_forward_gap_is_shifted_forward_by_the_gap(
    timezone: str, sunday: str, local_start: dt.time, expected: str
) -> None:
    interval = weekly(Slot(SUN, local_start, hours(1)), timezone=timezone)
    found = occurrences(interval, ms(f"{sunday}T00:00") - DAY_MS, ms(f"{sunday}T00:00") + DAY_MS)
    assert found.start_ms.tolist() == [ms(expected)]
    assert found.end_ms.tolist() == [ms(expected) + 3_600_000]


@pytest.mark.parametrize(
    ("timezone", "sunday", "local_start", "expected"),
    [
        # Paris goes 03:00 CEST → 02:00 CET: 02:30 happens twice, the first one (CEST) counts
        ("Europe/Paris", "2026-10-25", dt.time(2, 30), "2026-10-25T00:30"),
        # New York goes 02:00 EDT → 01:00 EST: 01:30 EDT counts
        ("America/New_York", "2026-11-01", dt.time(1, 30), "2026-11-01T05:30"),
    ],
)
def test_slot_starting_in_the_repeated_hour_starts_at_its_first_occurrence(
    timezone: str, sunday: str, local_start: dt.time, expected: str
) -> None:
    interval = weekly(Slot(SUN, local_start, hours(1)), timezone=timezone)
    found = occurrences(interval, ms(f"{sunday}T00:00") - DAY_MS, ms(f"{sunday}T00:00") + DAY_MS)
    assert found.start_ms.tolist() == [ms(expected)]


def test_occurrences_keep_their_local_start_time_on_both_sides_of_a_dst_change() -> None:
    interval = weekly(Slot(MON, dt.time(9), hours(8)), timezone="Europe/Paris")
    found = occurrences(interval, ms("2026-03-22T00:00"), ms("2026-04-07T00:00"))
    assert found.start_ms.tolist() == [
        ms("2026-03-23T08:00"),
        ms("2026-03-30T07:00"),
        ms("2026-04-06T07:00"),
    ]
    assert (found.end_ms - found.start_ms).tolist() == [8 * 3_600_000] * 3


def test_slots_that_overlap_only_after_a_dst_change_merge_into_one_occurrence() -> None:
    # nominally adjacent (00:00-04:00, 04:00-06:00); on 2026-03-29 the first lasts to 05:00 CEST
    interval = weekly(
        Slot(SUN, dt.time(0), hours(4)), Slot(SUN, dt.time(4), hours(2)), timezone="Europe/Paris"
    )
    assert interval_problems(interval) == []
    found = occurrences(interval, ms("2026-03-28T00:00"), ms("2026-03-30T00:00"))
    assert found.start_ms.tolist() == [ms("2026-03-28T23:00")]
    assert found.end_ms.tolist() == [ms("2026-03-29T04:00")]
    assert rows(classify(interval, [ms("2026-03-29T02:30")])) == [
        (ms("2026-03-29T02:00"), 3, ms("2026-03-28T23:00"))
    ]
    # a week later they only touch and stay two occurrences
    later = occurrences(interval, ms("2026-04-04T00:00"), ms("2026-04-06T00:00"))
    assert later.start_ms.tolist() == [ms("2026-04-04T22:00"), ms("2026-04-05T02:00")]


# --- once and continuous -------------------------------------------------------------------------


def test_once_interval_includes_its_start_and_excludes_its_end() -> None:
    interval = Interval("cutover", "once", start=dt.datetime(2026, 12, 1, 2), duration=hours(4))
    start = ms("2026-12-01T02:00")
    ts = [start - 1, start, ms("2026-12-01T05:59:59.999"), ms("2026-12-01T06:00")]
    assert rows(classify(interval, ts)) == [
        OUT,
        (start, 0, start),
        (ms("2026-12-01T05:55"), 47, start),
        OUT,
    ]


def test_once_interval_starting_in_a_gap_is_shifted_forward() -> None:
    interval = Interval(
        "x",
        "once",
        timezone="America/New_York",
        start=dt.datetime(2026, 3, 8, 2, 30),
        duration=hours(1),
    )
    found = occurrences(interval, 0, SUPPORTED_END_MS)
    assert found.start_ms.tolist() == [ms("2026-03-08T07:30")]
    assert found.end_ms.tolist() == [ms("2026-03-08T08:30")]


def test_continuous_periods_are_aligned_to_the_unix_epoch_whatever_the_time_zone() -> None:
    t = ms("2026-07-14T10:07:31.250")
    for timezone in ("UTC", "Asia/Kolkata", "America/St_Johns"):
        interval = Interval("all", "continuous", timezone=timezone, readout_seconds=300)
        assert rows(classify(interval, [0, 299_999, 300_000, t, -1])) == [
            (0, 0, 0),
            (0, 0, 0),
            (300_000, 1, 0),
            (ms("2026-07-14T10:05"), 121, ms("2026-07-14T00:00")),
            OUT,
        ]


def test_last_period_is_partial_when_the_duration_is_not_a_multiple_of_the_readout() -> None:
    interval = Interval(
        "x", "once", readout_seconds=240, start=dt.datetime(2026, 1, 1), duration=hours(1 / 6)
    )
    start = ms("2026-01-01T00:00")
    minute = 60_000
    assert classify(interval, [start + 9 * minute]).period_index.tolist() == [2]
    assert period_bounds(interval, start + 8 * minute) == (start + 8 * minute, start + 10 * minute)
    assert period_bounds(interval, start + 4 * minute) == (start + 4 * minute, start + 8 * minute)


def test_period_bounds_rejects_what_is_not_a_period_start() -> None:
    interval = weekly(Slot(MON, dt.time(9), hours(8)))
    schedule_ = Schedule((interval,))
    assert schedule_.period_bounds("w", ms("2026-06-01T10:00")) == (
        ms("2026-06-01T10:00"),
        ms("2026-06-01T11:00"),
    )
    with pytest.raises(ValueError, match="not the start of a read-out period"):
        schedule_.period_bounds("w", ms("2026-06-01T10:30"))
    with pytest.raises(ValueError, match="not the start of a read-out period"):
        schedule_.period_bounds("w", ms("2026-06-01T18:00"))
    with pytest.raises(KeyError):
        schedule_.period_bounds("nope", ms("2026-06-01T10:00"))


# --- inputs ------------------------------------------------------------------------------------


def test_datetime64_input_of_any_unit_matches_integer_milliseconds() -> None:
    interval = weekly(Slot(MON, dt.time(9), hours(8)), readout_seconds=300)
    text = ["2026-06-01T08:59:59", "2026-06-01T09:00:00", "2026-06-01T12:34:56", "NaT"]
    expected = rows(classify(interval, [ms(x) for x in text[:3]] + [OUTSIDE]))
    for unit in ("s", "ms", "us", "ns"):
        assert rows(classify(interval, np.array(text, dtype=f"datetime64[{unit}]"))) == expected
    assert expected[3] == OUT


def test_empty_input_gives_empty_arrays_of_the_documented_dtypes() -> None:
    interval = weekly(Slot(MON, dt.time(9), hours(8)))
    empties: list[npt.ArrayLike] = [
        [],
        np.array([], dtype=np.int64),
        np.array([], "datetime64[ns]"),
    ]
    for empty in empties:
        m = classify(interval, empty)
        assert m.period_start_ms.dtype == np.int64
        assert m.period_index.dtype == np.int32
        assert m.occurrence_start_ms.dtype == np.int64
        assert len(m) == 0
    both = Schedule((interval, Interval("all", "continuous")))
    assert [len(m) for m in both.classify([])] == [0, 0]
    assert both.first_interval([]).dtype == np.int16


def test_unsorted_input_gives_the_same_answer_as_sorted_input() -> None:
    interval = weekly(
        *(Slot(day, dt.time(8, 30), hours(9.5)) for day in range(5)),
        Slot(SUN, dt.time(22), hours(4)),
        timezone="Europe/Paris",
        readout_seconds=300,
    )
    rng = np.random.default_rng(7)
    ts = np.sort(ms("2026-10-19T00:00") + rng.integers(0, 7 * DAY_MS, 20_000))
    shuffled = rng.permutation(ts)
    sorted_result = classify(interval, ts)
    order = np.argsort(shuffled, kind="stable")
    shuffled_result = classify(interval, shuffled)
    for name in ("period_start_ms", "period_index", "occurrence_start_ms"):
        np.testing.assert_array_equal(
            getattr(shuffled_result, name)[order], getattr(sorted_result, name)
        )


def test_two_dimensional_input_keeps_its_shape() -> None:
    interval = weekly(Slot(MON, dt.time(9), hours(8)))
    ts = np.array([[ms("2026-06-01T09:00"), 0], [ms("2026-06-01T10:00"), 1]])
    m = classify(interval, ts)
    assert m.period_index.shape == (2, 2)
    assert m.period_index.tolist() == [[0, -1], [1, -1]]
    assert Schedule((interval,)).first_interval(ts).tolist() == [[0, -1], [0, -1]]


def test_float_timestamps_are_rejected() -> None:
    with pytest.raises(TypeError, match="integer ms"):
        classify(weekly(Slot(MON, dt.time(9), hours(8))), [1.5])


def test_timestamps_outside_the_supported_range_are_outside_every_interval() -> None:
    always = Interval("all", "continuous")
    ts = np.array([OUTSIDE, -1, 0, SUPPORTED_END_MS - 1, SUPPORTED_END_MS, 2**63 - 1])
    assert classify(always, ts).period_index.tolist() == [-1, -1, 0, 287, -1, -1]
    assert Schedule((always,)).first_interval(ts).tolist() == [-1, -1, 0, 0, -1, -1]


# --- several intervals -------------------------------------------------------------------------


def test_timestamp_in_two_intervals_belongs_to_both_and_first_interval_follows_config_order() -> (
    None
):
    office = weekly(Slot(MON, dt.time(9), hours(8)))
    cutover = Interval("cutover", "once", start=dt.datetime(2026, 6, 1, 16), duration=hours(4))
    schedule_ = Schedule((office, cutover))
    ts = [ms("2026-06-01T10:00"), ms("2026-06-01T16:30"), ms("2026-06-01T18:00"), 0]
    office_m, cutover_m = schedule_.classify(ts)
    assert office_m.inside.tolist() == [True, True, False, False]
    assert cutover_m.inside.tolist() == [False, True, True, False]
    assert schedule_.first_interval(ts).tolist() == [0, 0, 1, -1]
    assert Schedule((cutover, office)).first_interval(ts).tolist() == [1, 0, 0, -1]


def test_first_interval_on_a_large_batch_matches_the_memberships() -> None:
    office = weekly(
        *(Slot(day, dt.time(8), hours(10)) for day in range(5)), timezone="America/New_York"
    )
    nights = weekly(
        *(Slot(day, dt.time(22), hours(4)) for day in range(7)), id="n", timezone="Europe/Paris"
    )
    schedule_ = Schedule((office, nights, Interval("all", "continuous", readout_seconds=60)))
    rng = np.random.default_rng(3)
    ts = ms("2026-10-26T00:00") + rng.integers(-3 * DAY_MS, 10 * DAY_MS, 50_000)
    expected = np.full(ts.size, -1, dtype=np.int16)
    for number, m in reversed(list(enumerate(schedule_.classify(ts)))):
        expected[m.inside] = number
    np.testing.assert_array_equal(schedule_.first_interval(ts), expected)
    two = Schedule(schedule_.intervals[:2])
    expected_two = np.where(expected == 2, -1, expected)
    np.testing.assert_array_equal(two.first_interval(ts), expected_two)


def test_a_large_batch_agrees_with_the_per_timestamp_reference() -> None:
    interval = weekly(
        Slot(SAT, dt.time(23, 15), hours(3)),
        Slot(SUN, dt.time(2, 30), dt.timedelta(minutes=47)),
        Slot(SUN, dt.time(4), hours(2)),
        timezone="Europe/Paris",
        readout_seconds=900,
    )
    rng = np.random.default_rng(11)
    ts = ms("2026-10-24T12:00") + rng.integers(0, 2 * DAY_MS, 4000)
    assert rows(classify(interval, ts)) == [reference(interval, t) for t in ts.tolist()]


# --- property: classify agrees with the reference ------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # DST changes at midnight
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "Asia/Kolkata",
]
ANCHORS = [
    ms(text)
    for text in (
        "2026-03-29T01:00",
        "2026-10-25T01:00",
        "2026-03-08T07:00",
        "2026-11-01T06:00",
        "2026-04-04T15:00",
        "2026-10-03T15:30",
        "2026-04-05T03:00",
        "2026-09-06T04:00",
        "2011-12-30T10:00",
        "2026-06-15T12:00",
    )
]
WEEK_MINUTES = 7 * 24 * 60


@st.composite
def weekly_intervals(draw: st.DrawFn) -> Interval:
    """Random weekly intervals whose slots do not overlap nominally (they may touch)."""
    offsets = sorted(
        draw(st.lists(st.integers(0, WEEK_MINUTES - 1), min_size=1, max_size=4, unique=True))
    )
    slots = []
    for i, offset in enumerate(offsets):
        following = offsets[i + 1] if i + 1 < len(offsets) else offsets[0] + WEEK_MINUTES
        longest = min(following - offset, 3 * 24 * 60)
        duration = draw(st.one_of(st.just(longest), st.integers(1, longest)))
        day, minute = divmod(offset, 24 * 60)
        slots.append(Slot(day, dt.time(minute // 60, minute % 60), dt.timedelta(minutes=duration)))
    return weekly(
        *draw(st.permutations(slots)),
        timezone=draw(st.sampled_from(ZONES)),
        readout_seconds=draw(st.sampled_from([60, 240, 300, 900, 3600, 10_800, 86_400])),
    )


@st.composite
def batches(draw: st.DrawFn) -> list[int]:
    """Random timestamps around a DST change (or an ordinary week), spread over a random span."""
    anchor = draw(st.sampled_from(ANCHORS))
    span = draw(st.sampled_from([60_000, 600_000, 6 * 3_600_000, 3 * DAY_MS, 20 * DAY_MS]))
    return draw(st.lists(st.integers(anchor - span, anchor + span), min_size=0, max_size=120))


@settings(max_examples=250, deadline=None)
@given(weekly_intervals(), batches())
def test_classify_agrees_with_a_per_timestamp_reference_on_random_weekly_intervals(
    interval: Interval, ts: list[int]
) -> None:
    assert interval_problems(interval) == []
    assert rows(classify(interval, np.array(ts, dtype=np.int64))) == [
        reference(interval, t) for t in ts
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(weekly_intervals(), min_size=1, max_size=3), batches())
def test_first_interval_is_the_first_interval_each_timestamp_is_inside(
    intervals: list[Interval], ts: list[int]
) -> None:
    intervals = [dataclasses.replace(x, id=f"i{n}") for n, x in enumerate(intervals)]
    expected = [
        next((n for n, x in enumerate(intervals) if reference(x, t) != OUT), -1) for t in ts
    ]
    assert Schedule(intervals).first_interval(ts).tolist() == expected


# --- problems ----------------------------------------------------------------------------------

OFFICE = Slot(MON, dt.time(9), hours(8))


@pytest.mark.parametrize(
    ("interval", "element", "message"),
    [
        (
            weekly(OFFICE, timezone="Mars/Olympus"),
            "interval[w]",
            "unknown time zone 'Mars/Olympus'",
        ),
        (weekly(OFFICE, timezone="../etc/passwd"), "interval[w]", "unknown time zone"),
        (weekly(OFFICE, readout_seconds=0), "interval[w]", "outside 1-86400 s"),
        (weekly(OFFICE, readout_seconds=86_401), "interval[w]", "outside 1-86400 s"),
        (weekly(OFFICE, readout_seconds=7), "interval[w]", "does not divide a day"),
        (Interval("w", "hourly"), "interval[w]", "unknown kind 'hourly'"),  # type: ignore[arg-type]
        (Interval("w", "once", duration=hours(1)), "interval[w]", "once interval without start"),
        (
            Interval("w", "once", start=dt.datetime(2026, 1, 1)),
            "interval[w]",
            "once interval without duration",
        ),
        (
            Interval("w", "once", start=dt.datetime(2026, 1, 1), duration=-hours(1)),
            "interval[w]",
            "is not positive",
        ),
        (
            Interval("w", "once", start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), duration=hours(1)),
            "interval[w]",
            "no UTC offset",
        ),
        (
            Interval(
                "w",
                "once",
                readout_seconds=1,
                start=dt.datetime(2026, 1, 1),
                duration=dt.timedelta(days=30_000),
            ),
            "interval[w]",
            "more than 2**31 read-out periods",
        ),
        (Interval("w", "weekly"), "interval[w]", "weekly interval without slots"),
        (
            weekly(OFFICE, Slot(TUE, dt.time(9), dt.timedelta(0))),
            "interval[w] slot[2]",
            "is not positive",
        ),
        (weekly(Slot(7, dt.time(9), hours(1))), "interval[w] slot[1]", "weekday 7 is outside"),
        (
            weekly(Slot(MON, dt.time(9, tzinfo=dt.UTC), hours(1))),
            "interval[w] slot[1]",
            "no UTC offset",
        ),
        (
            weekly(OFFICE, Slot(MON, dt.time(16), hours(2))),
            "interval[w] slot[1]",
            "mon 09:00 for 8:00:00 overlaps slot[2] (mon 16:00 for 2:00:00)",
        ),
        (
            # Sunday 22:00 + 4 h reaches into Monday 01:00
            weekly(Slot(MON, dt.time(1), hours(1)), Slot(SUN, dt.time(22), hours(4))),
            "interval[w] slot[2]",
            "overlaps slot[1]",
        ),
        (
            weekly(Slot(MON, dt.time(0), dt.timedelta(days=7, minutes=1))),
            "interval[w] slot[1]",
            "overlaps its own occurrence the next week",
        ),
        (
            dataclasses.replace(weekly(OFFICE), start=dt.datetime(2026, 1, 1)),
            "interval[w]",
            "start and duration belong to once intervals, not weekly",
        ),
        (
            Interval("w", "continuous", start=dt.datetime(2026, 1, 1)),
            "interval[w]",
            "start and duration belong to once intervals, not continuous",
        ),
        (
            Interval("w", "continuous", slots=(OFFICE,)),
            "interval[w]",
            "slots belong to weekly intervals, not continuous",
        ),
        (
            Interval(
                "w", "once", start=dt.datetime(2026, 1, 1), duration=hours(1), slots=(OFFICE,)
            ),
            "interval[w]",
            "slots belong to weekly intervals, not once",
        ),
    ],
)
def test_interval_problems_reports(interval: Interval, element: str, message: str) -> None:
    found = interval_problems(interval)
    assert len(found) == 1, found
    assert found[0].element == element
    assert message in found[0].message
    with pytest.raises(ScheduleError, match="cannot be evaluated"):
        classify(interval, [0])


def test_valid_intervals_have_no_problems() -> None:
    touching = weekly(Slot(SUN, dt.time(22), hours(4)), Slot(MON, dt.time(2), hours(22)))
    assert interval_problems(touching) == []
    assert interval_problems(weekly(Slot(MON, dt.time(0), dt.timedelta(days=7)))) == []
    assert interval_problems(Interval("all", "continuous", readout_seconds=86_400)) == []
    assert interval_problems(Interval("all", "continuous", readout_seconds=1)) == []


def test_problems_point_at_the_source_of_the_interval_or_slot() -> None:
    slot = Slot(MON, dt.time(9), dt.timedelta(0), source=Source("net.xml", 12))
    interval = dataclasses.replace(
        weekly(slot, timezone="Nowhere"), id="busy", source=Source("net.xml", 11)
    )
    assert [str(p) for p in interval_problems(interval)] == [
        "net.xml:11: interval[busy]: unknown time zone 'Nowhere'",
        "net.xml:12: interval[busy] slot[1]: duration 0:00:00 is not positive",
    ]
    config = NetworkConfig("net", 65000, intervals=(interval,))
    assert [p.element for p in problems(config)] == ["interval[busy]", "interval[busy] slot[1]"]


def test_schedule_refuses_unusable_intervals_and_duplicate_ids() -> None:
    with pytest.raises(ScheduleError, match="weekly interval without slots"):
        Schedule((Interval("w", "weekly"),))
    with pytest.raises(ScheduleError, match="two intervals have the id 'all'"):
        Schedule((Interval("all", "continuous"), Interval("all", "continuous")))


def test_docstring_examples_run() -> None:
    result = doctest.testmod(schedule, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
