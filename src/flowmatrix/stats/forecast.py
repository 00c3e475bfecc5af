"""Per-element history → Holt–Winters forecasts, their backtest error, and when a link crosses 80 %.

The model is additive Holt–Winters (statsmodels ``ExponentialSmoothing``:
additive trend, additive season of ``season`` periods — 288 for a day of
5-minute periods, 2,016 for a week, 24 for a day of hourly roll-ups), its
initial level, trend and season set by the heuristic of Hyndman et al. (so
only the three smoothing weights are fitted, which keeps a 288-period season
under a second) and needing two whole seasons of history. One model per
series: :func:`forecast` loops over the columns in Python (statsmodels fits
one series at a time), so forecast the elements that matter — the top
elements, per-node sums or link loads — rather than all million of a matrix.

:func:`backtest` holds the last ``horizon`` periods out, fits on the rest and
reports the MAPE of the model and of the *seasonal naive* baseline (the last
observed season repeated), the yardstick a forecast has to beat.
:func:`crossing_time` answers "when does this link cross 80 % of its
capacity?" from a forecast of its load.

statsmodels (and pandas under it) is imported on first use, so importing
:mod:`flowmatrix.stats` stays light.

>>> t = np.arange(24 * 14)
>>> load = 100 + 0.5 * t + 30 * np.sin(2 * np.pi * t / 24)   # hourly, growing, daily cycle
>>> ahead = forecast(load, season=24, horizon=48)
>>> crossing_time(ahead, capacity=380.0, start_ms=0, step_ms=3_600_000) // 3_600_000  # 80 % = 304
28
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Backtest",
    "backtest",
    "crossing_time",
    "forecast",
    "mape",
    "seasonal_naive",
]

F64 = npt.NDArray[np.float64]


def _series(history: npt.ArrayLike, season: int, horizon: int) -> F64:
    y = np.asarray(history, dtype=np.float64)
    if season < 2 or horizon < 1:
        msg = (
            f"need a season of at least 2 periods and a horizon of at least 1 ({season}, {horizon})"
        )
        raise ValueError(msg)
    if y.ndim not in (1, 2) or y.shape[0] < 2 * season:
        msg = f"need two whole seasons of history ({2 * season} periods), got shape {y.shape}"
        raise ValueError(msg)
    if not np.isfinite(y).all():
        msg = "history must be finite"
        raise ValueError(msg)
    return y


def _holt_winters(y: F64, season: int, horizon: int) -> F64:
    from statsmodels.tools.sm_exceptions import (  # type: ignore[import-untyped]
        ConvergenceWarning,
    )
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]

    if np.ptp(y) == 0:
        return np.full(horizon, y[0])  # a flat series (an idle element) stays flat
    model = ExponentialSmoothing(
        y,
        trend="add",
        seasonal="add",
        seasonal_periods=season,
        initialization_method="heuristic",
    )
    with warnings.catch_warnings():
        # a fit that stops early still forecasts; the backtest says how well
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = model.fit()
    return np.asarray(fitted.forecast(horizon), dtype=np.float64)


def forecast(history: npt.ArrayLike, *, season: int, horizon: int) -> F64:
    """History (periods, or periods × series) → Holt–Winters forecast of the next ``horizon``."""
    y = _series(history, season, horizon)
    if y.ndim == 1:
        return _holt_winters(y, season, horizon)
    columns = [_holt_winters(y[:, j], season, horizon) for j in range(y.shape[1])]  # per series
    return np.stack(columns, axis=1) if columns else np.zeros((horizon, 0))


def seasonal_naive(history: npt.ArrayLike, *, season: int, horizon: int) -> F64:
    """History → its last season repeated over ``horizon`` periods (the baseline).

    >>> seasonal_naive([1.0, 2.0, 3.0, 4.0], season=2, horizon=3).tolist()
    [3.0, 4.0, 3.0]
    """
    y = np.asarray(history, dtype=np.float64)
    if y.shape[0] < season:
        msg = f"need one whole season of history ({season} periods)"
        raise ValueError(msg)
    last = y[-season:]
    return np.asarray(
        np.resize(last, (horizon, *y.shape[1:])) if y.ndim > 1 else np.resize(last, horizon)
    )


def mape(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Actual and predicted values → mean absolute percentage error, %, over non-zero actuals.

    >>> mape([100.0, 200.0, 0.0], [110.0, 180.0, 5.0])
    10.0
    """
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    keep = a != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(a[keep] - p[keep]) / np.abs(a[keep])) * 100)


@dataclass(frozen=True, slots=True)
class Backtest:
    """Errors of the model and of the seasonal naive baseline on the held-out periods."""

    horizon: int
    season: int
    #: MAPE of Holt–Winters on the held-out periods, %
    model_mape: float
    #: MAPE of the seasonal naive baseline on the same periods, %
    naive_mape: float

    @property
    def beats_naive(self) -> bool:
        """True when the model's error is below the baseline's."""
        return self.model_mape < self.naive_mape


def backtest(series: npt.ArrayLike, horizon: int, season: int) -> Backtest:
    """A series → fit on all but its last ``horizon`` periods, score both forecasts on those."""
    y = np.asarray(series, dtype=np.float64)
    if y.ndim != 1 or y.size < 2 * season + horizon:
        msg = f"need {2 * season + horizon} periods of one series to backtest, got shape {y.shape}"
        raise ValueError(msg)
    train, held_out = y[:-horizon], y[-horizon:]
    return Backtest(
        horizon=horizon,
        season=season,
        model_mape=mape(held_out, forecast(train, season=season, horizon=horizon)),
        naive_mape=mape(held_out, seasonal_naive(train, season=season, horizon=horizon)),
    )


def crossing_time(
    forecast: npt.ArrayLike,
    capacity: float,
    threshold: float = 0.8,
    *,
    start_ms: int,
    step_ms: int,
) -> int | None:
    """A load forecast → start (epoch ms) of the first period at or above threshold × capacity.

    ``start_ms`` is the start of the forecast's first period and ``step_ms``
    the period length; None when the forecast never crosses.

    >>> crossing_time([50.0, 79.0, 81.0, 70.0], 100.0, start_ms=0, step_ms=300_000)
    600000
    """
    f = np.asarray(forecast, dtype=np.float64)
    if f.ndim != 1 or capacity <= 0 or threshold <= 0:
        msg = "need a 1-D forecast, a positive capacity and a positive threshold"
        raise ValueError(msg)
    above = np.flatnonzero(f >= threshold * capacity)
    return int(start_ms + int(above[0]) * step_ms) if above.size else None
