"""Sampling intervals: coverage against a simulation through the FRP's renormalization."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from flowmatrix.config.model import Exporter, Interval, NetworkConfig, PeRouter
from flowmatrix.matrix.aggregate import ingress_records, no_resolution, partial_matrix
from flowmatrix.schema import FlowBatch
from flowmatrix.stats.sampling import (
    Method,
    element_bounds,
    gamma_bounds,
    normal_bounds,
    sampling_rate,
    z_value,
)

TRIALS = 2000
#: 95 % ± 2 points is ± 4 binomial standard errors at 2,000 trials (sqrt(.95·.05/2000) = 0.49 %)
COVERAGE = (0.93, 0.97)

CONFIG = NetworkConfig(
    "n",
    65000,
    pes=(
        PeRouter(
            "pe1",
            ipaddress.ip_address("198.19.0.1"),
            "PAR",
            frp="frp-par",
            exporters=(Exporter(ipaddress.ip_address("127.0.0.1")),),
        ),
    ),
    intervals=(Interval("always", "continuous", readout_seconds=300),),
)


def sampled_through_the_frp(
    packets: np.ndarray, packet_bytes: np.ndarray, rate: int, seed: int
) -> dict[str, np.ndarray]:
    """Sample every flow's packets 1:rate in TRIALS independent trials → one partial row per trial.

    Each trial is exported as records of its own input interface, so the FRP's
    own aggregation (renormalization and variance) yields one element per trial.
    """
    rng = np.random.default_rng(seed)
    k = rng.binomial(packets[None, :], 1 / rate, size=(TRIALS, packets.size))
    trial, flow = np.nonzero(k)  # flows with no sampled packet are never exported
    batch = FlowBatch.from_columns(
        {
            "exporter_version": 4,
            "exporter_lo": 0x7F000001,
            "ip_version": 4,
            "start_ms": 1_000,
            "in_if": trial,
            "packets": k[trial, flow],
            "bytes": k[trial, flow] * packet_bytes[flow],
            "sampling_interval": rate,
        },
        trial.size,
    )
    ingress = ingress_records(batch, CONFIG)
    table = partial_matrix(ingress.table, no_resolution(ingress.table.num_rows), CONFIG)
    assert np.unique(table["in_if"].to_numpy()).size == table.num_rows
    return {name: table[name].to_numpy() for name in table.column_names if name != "in_if"}


def coverage(
    rows: dict[str, np.ndarray], packets: np.ndarray, packet_bytes: np.ndarray, method: Method
) -> tuple[float, float]:
    nbytes, npackets = element_bounds(
        rows["bytes"], rows["bytes_var"], rows["packets"], rows["packets_var"], method=method
    )
    return (
        float(nbytes.contains((packets * packet_bytes).sum()).mean()),
        float(npackets.contains(packets.sum()).mean()),
    )


def test_the_true_volume_falls_inside_the_95_percent_interval_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(8)
    packets = 1 + rng.geometric(1 / 50, size=300)  # 300 flows, about 15,000 packets
    packet_bytes = rng.choice([64, 576, 1500], size=300, p=[0.4, 0.2, 0.4])
    rows = sampled_through_the_frp(packets, packet_bytes, rate=10, seed=9)
    assert rows["bytes"].size == TRIALS
    assert np.allclose(sampling_rate(rows["packets"], rows["packets_var"]), 10.0)
    for method in ("auto", "normal", "gamma"):
        of_bytes, of_packets = coverage(rows, packets, packet_bytes, method)
        assert COVERAGE[0] <= of_packets <= COVERAGE[1], (method, of_packets)
        assert COVERAGE[0] <= of_bytes <= COVERAGE[1], (method, of_bytes)


def test_at_a_few_sampled_packets_the_gamma_interval_keeps_its_coverage() -> None:
    packets = np.full(5, 100)  # 500 packets sampled 1:100: about 5 sampled packets
    packet_bytes = np.array([64, 1500, 64, 576, 1500])
    rows = sampled_through_the_frp(packets, packet_bytes, rate=100, seed=4)
    assert rows["bytes"].size > 0.99 * TRIALS  # a trial with nothing sampled has no element
    of_bytes, of_packets = coverage(rows, packets, packet_bytes, "auto")
    assert 0.95 <= of_packets <= 0.995
    assert 0.95 <= of_bytes <= 0.995
    normal_bytes, normal_packets = coverage(rows, packets, packet_bytes, "normal")
    assert normal_packets < 0.92
    assert normal_bytes < 0.92


def test_garwood_is_what_the_gamma_interval_gives_for_packets_of_one_rate() -> None:
    # N=100, k=10 sampled packets; Garwood on k: 100·[G⁻¹(10, .025), G⁻¹(11, .975)] = [479.5, 1839]
    b = gamma_bounds([1000.0], [99_000.0], [100.0])
    assert b.low[0] == pytest.approx(481.6, abs=0.1)
    assert b.high[0] == pytest.approx(1835.3, abs=0.1)
    assert 479.5 < b.low[0] < 490
    assert 1800 < b.high[0] < 1839.4


def test_the_gamma_interval_tends_to_the_normal_one_for_large_counts() -> None:
    est, var = np.array([1e8]), np.array([99 * 1e8])
    gamma, normal = gamma_bounds(est, var, [100.0]), normal_bounds(est, var)
    assert gamma.low[0] == pytest.approx(normal.low[0], rel=1e-4)
    assert gamma.high[0] == pytest.approx(normal.high[0], rel=1e-4)


def test_unsampled_counts_are_exact_and_intervals_never_go_below_zero() -> None:
    nbytes, packets = element_bounds(
        [500.0, 0.0, 300.0], [0.0, 0.0, 1e6], [5.0, 0.0, 2.0], [0.0, 0.0, 198.0]
    )
    assert nbytes.low.tolist()[:2] == [500.0, 0.0]
    assert nbytes.high.tolist()[:2] == [500.0, 0.0]
    assert packets.low.tolist()[:2] == [5.0, 0.0]
    assert (nbytes.low >= 0).all()
    assert normal_bounds([1.0], [100.0]).low.tolist() == [0.0]


def test_z_is_196_at_95_percent_and_levels_outside_0_1_are_refused() -> None:
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="level"):
        normal_bounds([1.0], [1.0], level=1.0)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        normal_bounds([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="negative"):
        gamma_bounds([-1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="method"):
        element_bounds([1.0], [1.0], [1.0], [1.0], method="exact")  # type: ignore[arg-type]
