"""Update interval statistics with a 1,000 × 1,000 matrix per read-out period, on one core.

Target: ``stats.RunningStats.update`` with a period's total of 1 M elements
(1,000 ingress × 1,000 egress, float64, a third of them zero) in < 200 ms per
period, over 50 periods (the statistics of a 4 h 10 min interval of 5-minute
periods). Printed: the mean and worst update time, the same update without
history (moments and peak only), the on-demand exact p95 (checked against
``np.percentile``) over all periods
at the end, and, in the same run, the naive reference — recomputing mean,
variance and peak from every stored period each time a period arrives — with
its ratio to the mean incremental update (the reference grows
linearly with the periods seen; the update does not). Also: peak RSS.

Then the same periods go through the MG's update path,
``MgStats.put_total`` — what ``MgStats.observe`` does once the period's
total is summed: name and element codes of a 1 M-row ``pe_pe`` total (Arrow
string columns), the dense vectors, the bytes and packets ``RunningStats``,
the per-node volumes — first with new element sets (no reuse of the previous
period's codes), then the steady state, then with the snapshot taken and queued after each
period (and, apart, the time its background write to an in-memory store
takes). Its same-run reference is the per-element
Python key look-up MgStats used before (``zip`` of ``to_pylist`` columns
into a dict), on the same total. These runs keep no finer detail
(``MgStats(detail=False)``).

Last, the extra cost of the finer values (``mg serve --stats-detail``, the
default) in the same run: the steady state again with each period's finest
total (one input interface and VRF per element, so as many finest elements
as PE-to-PE ones) put in too, against the steady PE-to-PE figure above; and
the extra ``Total`` pass ``observe`` makes to sum the finest total, against
its PE-to-PE pass, over one 1 M-row partial.

Run: ``.venv/bin/python bench/bench_stats.py [--periods P] [--side S]``
"""

from __future__ import annotations

import argparse
import os

# one core: BLAS and OpenMP pools must be sized before numpy loads
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import ipaddress  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from flowmatrix.config.model import Interval, NetworkConfig, PeRouter  # noqa: E402
from flowmatrix.matrix.partial import PARTIAL_KEYS, PARTIAL_SCHEMA  # noqa: E402
from flowmatrix.matrix.store import Store  # noqa: E402
from flowmatrix.matrix.total import FINEST, total_matrix  # noqa: E402
from flowmatrix.mg.stats import MgStats  # noqa: E402
from flowmatrix.stats.running import RunningStats  # noqa: E402

TARGET_S = 0.200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=50)
    parser.add_argument("--side", type=int, default=1000, help="PEs per side of the matrix")
    args = parser.parse_args()
    elements = args.side * args.side
    rng = np.random.default_rng(1)
    base = rng.lognormal(10, 2, elements) * (rng.random(elements) > 1 / 3)
    pool = [base * rng.uniform(0.5, 1.5, elements) for _ in range(8)]
    starts = [i * 300_000 for i in range(args.periods)]

    def run(stats: RunningStats) -> list[float]:
        times = []
        for i, start in enumerate(starts):
            t = time.perf_counter()
            stats.update(pool[i % len(pool)], start)
            times.append(time.perf_counter() - t)
        return times

    light_times = run(RunningStats(keep_history=False))
    full = RunningStats()
    times = run(full)

    t = time.perf_counter()
    p95 = full.p95
    p95_s = time.perf_counter() - t

    # the naive reference at the last period: everything recomputed from the stored periods
    history = full.history()
    t = time.perf_counter()
    reference = (history.mean(axis=0), history.var(axis=0), history.max(axis=0))
    reference_s = time.perf_counter() - t
    assert np.allclose(reference[0], full.mean)
    assert np.allclose(reference[1], full.variance(), rtol=1e-6)
    assert np.array_equal(reference[2], full.peak)
    assert np.array_equal(p95, np.percentile(history, 95, axis=0, method="inverted_cdf"))

    mean_s = float(np.mean(times))
    worst_s = float(np.max(times))
    print(
        f"{args.side:,} × {args.side:,} = {elements / 1e6:,.1f} M elements, {args.periods} periods"
    )
    verdict = "ok" if mean_s < TARGET_S else "MISSED"
    print(
        f"update (with history): mean {mean_s * 1e3:.1f} ms, median "
        f"{np.median(times) * 1e3:.1f} ms, worst {worst_s * 1e3:.1f} ms per period "
        f"(target < {TARGET_S * 1e3:.0f} ms: {verdict})"
    )
    print(
        f"update (no history):   mean {np.mean(light_times) * 1e3:.1f} ms, median "
        f"{np.median(light_times) * 1e3:.1f} ms per period"
    )
    print(f"exact p95 over {args.periods} periods, on demand: {p95_s * 1e3:.0f} ms")
    print(
        f"naive recomputation of mean, variance, peak from the {args.periods} stored periods "
        f"(in memory): {reference_s * 1e3:.0f} ms = {reference_s / mean_s:.1f}× the mean update"
    )
    mg_figures(args.side, args.periods, pool)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mib:,.0f} MiB")


def mg_figures(side: int, periods: int, pool: list[np.ndarray]) -> None:
    """Time MgStats.put_total (the update path of MgStats.observe) on 1 M-element totals."""
    pes = tuple(
        PeRouter(f"pe{i:04d}", ipaddress.ip_address(0x0A000000 + i), f"pop{i % 40:02d}")
        for i in range(side)
    )
    config = NetworkConfig("bench", 65000, pes=pes, intervals=(Interval("always", "continuous"),))
    names = [p.name for p in pes]
    ingress = pa.array(np.repeat(names, side))
    egress = pa.array(np.tile(names, side))
    classes = pa.array(["BE"] * side * side)

    def total(i: int) -> pa.Table:
        values = pool[i % len(pool)]
        return pa.table(
            {
                "ingress": ingress,
                "egress": egress,
                "class": classes,
                "bytes": values,
                "packets": values / 700,
            }
        )

    # the finest keys: one input interface and VRF per PE-to-PE element
    in_if = pa.array(np.tile(np.arange(side, dtype=np.int64) % 8, side))
    vrf = pa.array(np.repeat([f"vrf{k % 20:02d}" for k in range(side)], side))

    def fine(i: int) -> pa.Table:
        values = pool[i % len(pool)]
        return pa.table(
            {
                "ingress": ingress,
                "if_index": in_if,
                "vrf": vrf,
                "egress": egress,
                "class": classes,
                "bytes": values,
                "packets": values / 700,
            }
        )

    writes: list[float] = []

    def run(stats: MgStats, *, persist: bool, fresh: bool) -> list[float]:
        times = []
        for i in range(periods):
            table = total(i)
            if fresh:
                # a new element set every period: no reuse of the previous period's codes
                table = table.slice(i % 2, table.num_rows - i % 2)
            finest = fine(i) if stats.detail else None
            start = i * 300_000
            t = time.perf_counter()
            stats.put_total(
                "always", start, start + 300_000, table, [i], fine=finest, persist=persist
            )
            times.append(time.perf_counter() - t)
            if persist:
                # the background write of this period's snapshot, waited for here
                t = time.perf_counter()
                stats.flush()
                writes.append(time.perf_counter() - t)
        return times

    figures = {}
    for label, persist, fresh, detail in (
        ("new element sets", False, True, False),
        ("steady element set", False, False, False),
        ("steady, + snapshot taken and queued", True, False, False),
        ("steady, + finest values (detail)", False, False, True),
    ):
        with Store(":memory:") as store:
            stats = MgStats(config, store, detail=detail)
            stats.start()
            figures[label] = run(stats, persist=persist, fresh=fresh)
            stats.stop()
    # the reference: the per-element Python key look-up of the previous MgStats, same total
    table = total(0)
    t = time.perf_counter()
    ids: dict[tuple[str, str, str], int] = {}
    keys = zip(
        table["ingress"].to_pylist(),
        table["egress"].to_pylist(),
        table["class"].to_pylist(),
        strict=True,
    )
    _ = [ids.setdefault(key, len(ids)) for key in keys]
    reference_s = time.perf_counter() - t
    elements = f"{side * side / 1e6:.1f} M elements"
    print(f"MgStats.put_total (the update path of MgStats.observe), {elements}:")
    for label, times in figures.items():
        mean_s = float(np.mean(times))
        verdict = "ok" if mean_s < TARGET_S else "MISSED"
        target = f" (target < {TARGET_S * 1e3:.0f} ms: {verdict})"
        print(
            f"  {label}: mean {mean_s * 1e3:.1f} ms, median {np.median(times) * 1e3:.1f} ms, "
            f"worst {np.max(times) * 1e3:.1f} ms per period{target}"
        )
    print(
        f"  snapshot write (background thread, after the update returned): mean "
        f"{np.mean(writes) * 1e3:.1f} ms, worst {np.max(writes) * 1e3:.1f} ms per period"
    )
    new_mean = float(np.mean(figures["new element sets"]))
    print(
        f"  reference: per-element Python key look-up of the previous MgStats, one period: "
        f"{reference_s * 1e3:.0f} ms = {reference_s / new_mean:.1f}× the mean update with new "
        "element sets"
    )
    steady = float(np.mean(figures["steady element set"]))
    detail = float(np.mean(figures["steady, + finest values (detail)"]))
    pe_pe_s, finest_s = total_passes(side)
    print(
        f"  finer values (if_pe, vrf; {side * side / 1e6:.1f} M finest elements): "
        f"+{(detail - steady) * 1e3:.1f} ms per period in put_total "
        f"(+{(detail - steady) / steady:.0%} of the steady PE-to-PE {steady * 1e3:.1f} ms), "
        f"+{finest_s * 1e3:.0f} ms for the extra Total pass over a {side * side / 1e6:.1f} M-row "
        f"partial (its PE-to-PE pass: {pe_pe_s * 1e3:.0f} ms); "
        f"memory {16 * side * side / 2**20:.0f} MiB per period kept"
    )


def total_passes(side: int) -> tuple[float, float]:
    """Median seconds of three PE-to-PE and three FINEST ``total_matrix`` passes, one partial."""
    pes = tuple(
        PeRouter(f"pe{i:04d}", ipaddress.ip_address(0x0A000000 + i), f"pop{i % 40:02d}")
        for i in range(side)
    )
    config = NetworkConfig("bench", 65000, pes=pes)
    names = np.array([p.name for p in pes])
    rng = np.random.default_rng(2)
    n = side * side
    values = rng.lognormal(10, 2, n)
    partial = pa.table(
        {
            "ingress_pe": np.repeat(names, side),
            "in_if": np.tile(np.arange(side) % 8, side),
            "vrf": np.repeat([f"vrf{k % 20:02d}" for k in range(side)], side),
            "egress_pe": np.tile(names, side),
            "tos": np.zeros(n, np.int64),
            "class": np.full(n, "BE"),
            "bytes": values,
            "packets": values / 700,
            "flows": np.ones(n),
            "sampled_packets": values / 700,
            "bytes_var": np.zeros(n),
            "packets_var": np.zeros(n),
        }
    )
    partial = partial.cast(PARTIAL_SCHEMA).sort_by([(k, "ascending") for k in PARTIAL_KEYS])
    seconds = []
    for granularity in ("pe_pe", FINEST):
        runs = []
        for _ in range(3):  # the median of three: one pass is a few hundred ms, noisy
            t = time.perf_counter()
            total_matrix(config, [partial], granularity=granularity)
            runs.append(time.perf_counter() - t)
        seconds.append(float(np.median(runs)))
    return seconds[0], seconds[1]


if __name__ == "__main__":
    main()
