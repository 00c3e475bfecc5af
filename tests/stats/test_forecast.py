"""Holt–Winters forecasts against the seasonal naive baseline, and link threshold crossings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowmatrix.stats.forecast import (
    backtest,
    crossing_time,
    forecast,
    mape,
    seasonal_naive,
)


def daily_traffic(
    periods_per_day: int, days: int, *, growth_per_day: float, seed: int
) -> np.ndarray:
    """Synthetic link load: a level, linear growth, a daily cycle, and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(periods_per_day * days)
    phase = 2 * np.pi * t / periods_per_day
    cycle = 300 * np.sin(phase - np.pi / 2) + 80 * np.sin(2 * phase)
    return 1000 + growth_per_day * t / periods_per_day + cycle + rng.normal(0, 25, t.size)


@pytest.mark.parametrize(
    ("periods_per_day", "days"),
    [(24, 21), (288, 14)],
    ids=["hourly", "five-minute"],
)
def test_holt_winters_beats_the_seasonal_naive_baseline_on_a_growing_daily_cycle(
    periods_per_day: int, days: int
) -> None:
    series = daily_traffic(periods_per_day, days, growth_per_day=40.0, seed=periods_per_day)
    result = backtest(series, horizon=periods_per_day, season=periods_per_day)
    assert result.beats_naive
    assert result.model_mape < 0.8 * result.naive_mape, result
    assert result.model_mape < 4.0


def test_a_weekly_season_learns_the_quiet_weekend() -> None:
    hourly = daily_traffic(24, 28, growth_per_day=10.0, seed=7)
    weekend = (np.arange(hourly.size) // 24) % 7 >= 5
    hourly[weekend] *= 0.6
    weekly = backtest(hourly, horizon=168, season=168)
    daily = backtest(hourly, horizon=168, season=24)
    assert weekly.beats_naive
    assert weekly.model_mape < daily.model_mape


def test_every_column_gets_its_own_model_and_a_flat_one_stays_flat() -> None:
    busy = daily_traffic(24, 7, growth_per_day=0.0, seed=1)
    history = np.stack([busy, np.full(busy.size, 5.0), np.zeros(busy.size)], axis=1)
    ahead = forecast(history, season=24, horizon=12)
    assert ahead.shape == (12, 3)
    assert ahead[:, 1].tolist() == [5.0] * 12
    assert ahead[:, 2].tolist() == [0.0] * 12
    np.testing.assert_allclose(ahead[:, 0], forecast(busy, season=24, horizon=12))
    assert forecast(np.zeros((48, 0)), season=24, horizon=3).shape == (3, 0)


def test_the_seasonal_naive_forecast_repeats_the_last_season() -> None:
    history = np.arange(12.0).reshape(6, 2)
    assert seasonal_naive(history, season=3, horizon=4)[:, 0].tolist() == [6.0, 8.0, 10.0, 6.0]
    with pytest.raises(ValueError, match="one whole season"):
        seasonal_naive([1.0], season=2, horizon=1)


def test_mape_skips_zero_actuals_and_is_undefined_without_any() -> None:
    assert mape([100.0, 0.0, 50.0], [90.0, 3.0, 60.0]) == pytest.approx(15.0)
    assert math.isnan(mape([0.0], [1.0]))


def test_crossing_time_is_the_first_period_at_or_above_the_threshold() -> None:
    ahead = np.array([10.0, 79.9, 80.0, 95.0, 60.0])
    assert crossing_time(ahead, 100.0, start_ms=1_000, step_ms=300_000) == 601_000
    assert crossing_time(ahead, 100.0, 0.9, start_ms=0, step_ms=300_000) == 900_000
    assert crossing_time(ahead, 1000.0, start_ms=0, step_ms=300_000) is None
    with pytest.raises(ValueError, match="positive capacity"):
        crossing_time(ahead, 0.0, start_ms=0, step_ms=1)


@pytest.mark.parametrize(
    ("history", "season", "horizon", "match"),
    [
        (np.ones(47), 24, 1, "two whole seasons"),
        (np.ones(48), 1, 1, "season of at least 2"),
        (np.ones(48), 24, 0, "horizon of at least 1"),
        (np.full(48, np.nan), 24, 1, "finite"),
    ],
)
def test_forecasts_need_two_seasons_of_finite_history(
    history: np.ndarray, season: int, horizon: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        forecast(history, season=season, horizon=horizon)


def test_a_backtest_needs_two_seasons_plus_the_horizon() -> None:
    with pytest.raises(ValueError, match="to backtest"):
        backtest(np.ones(50), horizon=5, season=24)
