"""Renormalized estimates and their variances → confidence intervals for 1:N packet sampling.

The FRP renormalizes sampled counters and carries their variance
(:mod:`flowmatrix.matrix.aggregate`), per flow record with k sampled packets
of b sampled bytes::

    packets = N·k                 packets_var = N(N−1)·k
    bytes   = N·b                 bytes_var   = N(N−1)·b·max(1500, b/k)

and the MG sums both over the records of an element. Two intervals follow:

* **normal**: ``estimate ± z·sqrt(variance)`` (z = 1.96 at 95 %), cut at 0
  (volumes are never negative, so the cut never drops the true value). Good
  once an element holds a few hundred sampled packets; at a handful it is too
  narrow (about 87 % coverage at 5 sampled packets).
* **gamma**: the Fay–Feuer interval for a weighted sum of Poisson counts
  (Fay & Feuer 1997, *Statistics in Medicine* 16:791), Garwood's exact
  Poisson interval when every weight is equal. With y the estimate, v its
  variance and w the largest weight of one sampled event (N for packets,
  N × the largest packet size for bytes)::

      low  = v/y · G⁻¹(y²/v, α/2)
      high = (v + w²)/(y + w) · G⁻¹((y + w)²/(v + w²), 1 − α/2)

  where G⁻¹(a, ·) is the inverse regularized lower incomplete gamma function
  (``chi2.ppf(q, 2a)/2``). It is asymmetric, never negative, and keeps at
  least its nominal coverage down to a few sampled packets (about 98 % at 5
  sampled packets in the tests, bytes of mixed packet sizes included); it
  tends to the normal interval as counts grow.

:func:`element_bounds` applies them to a matrix's columns: an element's
sampling rate is read back from its packets (``N = packets_var/packets + 1``,
exact when its records share one rate, their packet-weighted mean otherwise),
its sampled count is ``packets/N``, and ``method="auto"`` (the default) takes
the gamma interval where that count is below 100 and the normal one
elsewhere. Elements with variance 0 are exact: unsampled counts, or nothing.

>>> nbytes, packets = element_bounds([15_000.0], [2.2275e7], [1000.0], [99_000.0])  # N=100, k=10
>>> packets.low.round(1).tolist(), packets.high.round(1).tolist()
([481.6], [1835.3])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import scipy.special as sc

__all__ = [
    "MAX_PACKET_BYTES",
    "SMALL_COUNT",
    "Bounds",
    "Method",
    "element_bounds",
    "gamma_bounds",
    "normal_bounds",
    "sampling_rate",
    "z_value",
]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

Method = Literal["auto", "normal", "gamma"]
#: below this many sampled packets, ``auto`` uses the gamma interval
SMALL_COUNT: Final = 100.0
#: largest packet assumed by the gamma interval of bytes (Ethernet MTU), octets
MAX_PACKET_BYTES: Final = 1500.0


@dataclass(frozen=True, slots=True, eq=False)
class Bounds:
    """The two ends of a confidence interval per element, at ``level``."""

    low: F64
    high: F64
    level: float

    def contains(self, value: npt.ArrayLike) -> B:
        """True where ``value`` lies in [low, high]."""
        v = np.asarray(value, dtype=np.float64)
        return np.asarray((self.low <= v) & (v <= self.high), dtype=np.bool_)


def z_value(level: float = 0.95) -> float:
    """Confidence level → two-sided normal quantile (0.95 → 1.96)."""
    if not 0 < level < 1:
        msg = f"level must lie in (0, 1), not {level}"
        raise ValueError(msg)
    return float(sc.ndtri((1 + level) / 2))


def _inputs(estimate: npt.ArrayLike, variance: npt.ArrayLike) -> tuple[F64, F64]:
    est = np.asarray(estimate, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    if est.shape != var.shape:
        msg = f"estimate {est.shape} and variance {var.shape} differ in shape"
        raise ValueError(msg)
    if (est < 0).any() or (var < 0).any():
        msg = "estimates and variances must not be negative"
        raise ValueError(msg)
    return est, var


def sampling_rate(packets: npt.ArrayLike, packets_var: npt.ArrayLike) -> F64:
    """Renormalized packets and their variance → the sampling rate N behind them (1 if none).

    >>> sampling_rate([1000.0, 7.0, 0.0], [99_000.0, 0.0, 0.0]).tolist()
    [100.0, 1.0, 1.0]
    """
    est, var = _inputs(packets, packets_var)
    return np.asarray(var / np.where(est > 0, est, 1.0) + 1.0, dtype=np.float64)


def normal_bounds(
    estimate: npt.ArrayLike, variance: npt.ArrayLike, *, level: float = 0.95
) -> Bounds:
    """Estimate and variance → ``estimate ± z·sqrt(variance)``, cut at 0."""
    est, var = _inputs(estimate, variance)
    half = z_value(level) * np.sqrt(var)
    return Bounds(np.maximum(est - half, 0.0), est + half, level)


def gamma_bounds(
    estimate: npt.ArrayLike,
    variance: npt.ArrayLike,
    weight: npt.ArrayLike,
    *,
    level: float = 0.95,
) -> Bounds:
    """Estimate, variance and largest weight of one sampled event → the Fay–Feuer interval."""
    est, var = _inputs(estimate, variance)
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), est.shape)
    z_value(level)  # checks the level
    alpha = 1 - level
    sampled = (est > 0) & (var > 0)
    y = np.where(sampled, est, 1.0)
    v = np.where(sampled, var, 1.0)
    wm = np.where(sampled, np.maximum(w, v / y), 1.0)  # no event outweighs the mean weight
    low = v / y * sc.gammaincinv(y * y / v, alpha / 2)
    high = (v + wm * wm) / (y + wm) * sc.gammaincinv((y + wm) ** 2 / (v + wm * wm), 1 - alpha / 2)
    return Bounds(
        np.asarray(np.where(sampled, low, est), np.float64),
        np.asarray(np.where(sampled, high, est), np.float64),
        level,
    )


def element_bounds(
    nbytes: npt.ArrayLike,
    bytes_var: npt.ArrayLike,
    packets: npt.ArrayLike,
    packets_var: npt.ArrayLike,
    *,
    level: float = 0.95,
    method: Method = "auto",
    small_count: float = SMALL_COUNT,
    max_packet_bytes: float = MAX_PACKET_BYTES,
) -> tuple[Bounds, Bounds]:
    """A matrix's bytes, packets and their variances → (bytes, packets) intervals per element.

    Parameters
    ----------
    nbytes, bytes_var, packets, packets_var
        The columns of a partial or total matrix, one value per element.
    level
        Confidence level, 0.95 by default.
    method
        ``normal``, ``gamma``, or ``auto``: gamma where the element holds fewer
        than ``small_count`` sampled packets, normal elsewhere.
    max_packet_bytes
        The largest packet the gamma interval of bytes allows for.

    Examples
    --------
    >>> nbytes, _ = element_bounds([5e6], [2.5e9], [50_000.0], [4.95e6])  # 500 sampled packets
    >>> nbytes.low.round().tolist(), nbytes.high.round().tolist(), bool(nbytes.contains(5.05e6)[0])
    ([4902002.0], [5097998.0], True)
    """
    if method not in ("auto", "normal", "gamma"):
        msg = f"method must be auto, normal or gamma, not {method!r}"
        raise ValueError(msg)
    rate = sampling_rate(packets, packets_var)
    sampled = np.asarray(packets, dtype=np.float64) / rate
    out = []
    for est, var, weight in (
        (nbytes, bytes_var, rate * max_packet_bytes),
        (packets, packets_var, rate),
    ):
        normal = normal_bounds(est, var, level=level)
        if method == "normal":
            out.append(normal)
            continue
        gamma = gamma_bounds(est, var, weight, level=level)
        small = np.ones(sampled.shape, bool) if method == "gamma" else sampled < small_count
        out.append(
            Bounds(
                np.where(small, gamma.low, normal.low),
                np.where(small, gamma.high, normal.high),
                level,
            )
        )
    return out[0], out[1]
