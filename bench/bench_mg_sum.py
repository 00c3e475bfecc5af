"""Sum 1,000 partial matrices of a 500-PE network into a total, on one core.

Target: the worst case — 1,000 dense partials of 500 × 500 ingress × egress
cells in one class (250 M rows in all) — summed in < 1 s by
``matrix.total.Total.add_codes`` (integer codes, five float64 value
columns). Also printed: the bound set by memory bandwidth (adding the value
columns alone, no keys). The same run times DuckDB (one thread) grouping the very same
250 M rows (an Arrow table whose 1,000 chunks share the pool's buffers, so no
copy) for the ratio. Also printed: the same partials with their rows shuffled
(no longer in key order), the realistic case (1,000 partials each holding one
ingress PE's row: 500 egress PEs × 4 classes) through codes and through the
full string path ``Total.add``, and peak memory.

Memory stays in check by cycling a pool of distinct partials (each 250,000
rows × (3 int16 codes + 5 float64) = 10.8 MB); 1,000 of them would be 11 GB.

The dense case is timed ``--repeat`` times (default 3) and the best run is
the figure: the host's other load moves single runs by ±30 %.

Run: ``.venv/bin/python bench/bench_mg_sum.py [--partials N] [--pool K] [--repeat R]
[--no-reference]``
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import resource
import time

import duckdb
import numpy as np
import pyarrow as pa

from flowmatrix.config.model import NetworkConfig, PeRouter, ServiceClass, ServiceNode
from flowmatrix.matrix.partial import PARTIAL_SCHEMA
from flowmatrix.matrix.total import SUMMED, Total

TARGET_S = 1.0
PES = 500
CLASSES = ("EF", "AF4", "AF2", "BE")


def network() -> NetworkConfig:
    """500 PEs on 50 service nodes, four classes."""
    nodes = tuple(ServiceNode(name=f"N{i:02d}") for i in range(PES // 10))
    pes = tuple(
        PeRouter(
            name=f"pe{i:03d}",
            loopback=ipaddress.IPv4Address(0x0AFF0000 + i),
            service_node=nodes[i // 10].name,
        )
        for i in range(PES)
    )
    classes = tuple(
        ServiceClass(name=n, dscp=(d,), default=n == "BE")
        for n, d in zip(CLASSES, (46, 34, 18, 0), strict=True)
    )
    return NetworkConfig(name="bench", asn=65000, service_nodes=nodes, pes=pes, classes=classes)


def dense_pool(k: int, cls: int, seed: int = 1) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """K dense partials: every (ingress, egress) cell once, in key order, class ``cls``."""
    rng = np.random.default_rng(seed)
    ing = np.repeat(np.arange(PES, dtype=np.int16), PES)
    eg = np.tile(np.arange(PES, dtype=np.int16), PES)
    cl = np.full(PES * PES, cls, np.int16)
    return [([ing, eg, cl], [rng.random(PES * PES) * 1e6 for _ in SUMMED]) for _ in range(k)]


def time_codes(
    config: NetworkConfig, pool: list[tuple[list[np.ndarray], list[np.ndarray]]], n: int
) -> tuple[float, Total]:
    total = Total(config, "pe_pe")
    t0 = time.perf_counter()
    for codes, values in itertools.islice(itertools.cycle(pool), n):
        total.add_codes(codes, values)
    return time.perf_counter() - t0, total


def floor(pool: list[tuple[list[np.ndarray], list[np.ndarray]]], n: int) -> float:
    """Only reading the value columns: np.add of each into one block, no keys (a bound)."""
    acc = np.zeros((len(SUMMED), PES * PES))
    t0 = time.perf_counter()
    for _, values in itertools.islice(itertools.cycle(pool), n):
        for k, v in enumerate(values):
            np.add(acc[k], v, out=acc[k])
    return time.perf_counter() - t0


def duckdb_reference(pool: list[tuple[list[np.ndarray], list[np.ndarray]]], n: int) -> float:
    """DuckDB, one thread, GROUP BY the same rows (zero-copy Arrow chunks)."""
    batches = [
        pa.record_batch(
            [*(pa.array(c) for c in codes), *(pa.array(v) for v in values)],
            names=["i", "e", "c", *SUMMED],
        )
        for codes, values in pool
    ]
    rows = pa.Table.from_batches(list(itertools.islice(itertools.cycle(batches), n)))
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("rows_", rows)
    sums = ", ".join(f"sum({v})" for v in SUMMED)
    t0 = time.perf_counter()
    con.execute(f"SELECT i, e, c, {sums} FROM rows_ GROUP BY i, e, c").fetchall()
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def realistic(config: NetworkConfig, n: int) -> tuple[float, float, int]:
    """N partials, each one ingress PE × 500 egress × 4 classes: codes, then string tables."""
    rng = np.random.default_rng(2)
    m = PES * len(CLASSES)
    eg = np.repeat(np.arange(PES, dtype=np.int16), len(CLASSES))
    cl = np.tile(np.arange(len(CLASSES), dtype=np.int16), PES)
    class_names = np.array(Total(config).vocabularies()[2])
    items = []
    tables = []
    names = np.array(Total(config).vocabularies()[0])
    for p in range(n):
        ing = np.full(m, p % PES, np.int16)
        values = [rng.random(m) * 1e6 for _ in SUMMED]
        items.append(([ing, eg, cl], values))
        tables.append(
            pa.table(
                {
                    "ingress_pe": names[ing],
                    "in_if": pa.array(np.ones(m, np.uint32)),
                    "vrf": pa.array([""] * m),
                    "egress_pe": names[eg],
                    "tos": pa.array(np.zeros(m, np.uint8)),
                    "class": class_names[cl],
                    "bytes": values[0],
                    "packets": values[1],
                    "flows": values[2],
                    "sampled_packets": values[1],
                    "bytes_var": values[3],
                    "packets_var": values[4],
                }
            ).cast(PARTIAL_SCHEMA)
        )
    codes_s, total = time_codes(config, items, n)
    strings = Total(config, "pe_pe")
    t0 = time.perf_counter()
    for table in tables:
        strings.add(table)
    strings_s = time.perf_counter() - t0
    assert strings.table().equals(total.table())
    return codes_s, strings_s, total.table().num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partials", type=int, default=1000, help="partials summed")
    parser.add_argument("--pool", type=int, default=8, help="distinct dense partials cycled")
    parser.add_argument("--repeat", type=int, default=3, help="dense runs; the best is shown")
    parser.add_argument("--no-reference", action="store_true", help="skip the DuckDB run")
    args = parser.parse_args()
    config = network()
    n = args.partials
    rows = n * PES * PES

    pool = dense_pool(args.pool, cls=Total(config).vocabularies()[2].index("BE"))
    runs = [time_codes(config, pool, n) for _ in range(args.repeat)]
    dense_s, total = min(runs, key=lambda r: r[0])
    table = total.table()
    expect = sum(float(v[0].sum()) for _, v in pool) * (n // len(pool))
    expect += sum(float(v[0].sum()) for _, v in pool[: n % len(pool)])
    assert abs(float(np.sum(table["bytes"].to_numpy())) - expect) <= 1e-9 * expect
    print(
        f"dense worst case: {n:,} partials × {PES}×{PES} cells = {rows / 1e6:,.0f} M rows "
        f"summed in {dense_s:.3f} s (best of {len(runs)}: "
        f"{', '.join(f'{r[0]:.3f}' for r in runs)}; {rows / dense_s / 1e6:,.0f} M rows/s, "
        f"target < {TARGET_S:.0f} s: {'ok' if dense_s < TARGET_S else 'MISSED'}); "
        f"{table.num_rows:,} cells"
    )
    bound_s = min(floor(pool, n) for _ in range(args.repeat))
    print(
        f"bound: adding the value columns alone (no keys, no checks): {bound_s:.3f} s "
        f"({len(SUMMED) * 8 * rows / bound_s / 1e9:.1f} GB/s of values read)"
    )
    if not args.no_reference:
        ref_s = duckdb_reference(pool, n)
        print(
            f"reference: DuckDB GROUP BY (1 thread) over the same {rows / 1e6:,.0f} M rows: "
            f"{ref_s:.3f} s; ratio {ref_s / dense_s:.1f}× faster"
        )

    rng = np.random.default_rng(3)
    shuffled = []
    for codes, values in pool:
        order = rng.permutation(PES * PES)
        shuffled.append(([c[order] for c in codes], [v[order] for v in values]))
    shuffled_s, _ = time_codes(config, shuffled, n)
    print(f"dense, rows shuffled (bincount path): {shuffled_s:.3f} s for {rows / 1e6:,.0f} M rows")

    codes_s, strings_s, cells = realistic(config, n)
    m = n * PES * len(CLASSES)
    print(
        f"realistic: {n:,} partials × (1 ingress × {PES} egress × {len(CLASSES)} classes) = "
        f"{m / 1e6:.1f} M rows: codes {codes_s * 1000:.1f} ms, "
        f"from Arrow string tables (encode + sum) {strings_s * 1000:.0f} ms; {cells:,} cells"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
