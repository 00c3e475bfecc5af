"""Capacity benchmarks on one core: ECMP routing, failure sweep, LP plan, against a naive baseline.

Targets: routing 500 routers / 250,000 demands < 2 s; all single-link
failures on 100 routers < 10 s; explicit-path LP plan on 200 routers /
40,000 demands < 10 s. The baseline enumerates every shortest path of a
demand with networkx ``all_shortest_paths`` and splits equally per path;
it is timed on a sample of demands and extrapolated linearly (said so in
the output), because running it in full would take minutes to hours.
"""

from __future__ import annotations

import os
import random
import time
from itertools import pairwise

import networkx as nx
import numpy as np

from flowmatrix.capacity.demands import Demands
from flowmatrix.capacity.plan import plan_paths
from flowmatrix.capacity.routing import route
from flowmatrix.capacity.testing import gravity_matrix, random_topology
from flowmatrix.capacity.topology import Topology
from flowmatrix.capacity.whatif import failures, sweep

SAMPLE = 400


def naive_seconds_per_demand(topology: Topology, demands: Demands, sample: int = SAMPLE) -> float:
    """Seconds per demand of path enumeration with networkx all_shortest_paths (sampled)."""
    graph = nx.DiGraph()
    arcs = topology.arcs
    for a in range(len(arcs)):
        u, v, w = int(arcs.src[a]), int(arcs.dst[a]), float(arcs.metric[a])
        if not graph.has_edge(u, v) or graph[u][v]["weight"] > w:
            graph.add_edge(u, v, weight=w)
    index = topology.node_index
    rows = random.Random(1).sample(range(len(demands)), min(sample, len(demands)))
    load: dict[tuple[int, int], float] = {}
    started = time.perf_counter()
    for k in rows:
        s, t = index[str(demands.ingress[k])], index[str(demands.egress[k])]
        paths = list(nx.all_shortest_paths(graph, s, t, weight="weight"))
        share = float(demands.bps[k]) / len(paths)
        for path in paths:
            for hop in pairwise(path):
                load[hop] = load.get(hop, 0.0) + share
    return (time.perf_counter() - started) / len(rows)


def best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_routing() -> None:
    topo = random_topology(501, seed=1)
    demands = gravity_matrix(topo, 5e12, seed=1, pairs=250_000)
    seconds = best_of(lambda: route(topo, demands))
    naive = naive_seconds_per_demand(topo, demands) * len(demands)
    print(
        f"routing: {topo.n_nodes} routers, {len(topo.links)} links, {len(demands):,} demands: "
        f"{seconds:.2f} s (target < 2 s); naive all_shortest_paths "
        f"{naive:.0f} s extrapolated from {SAMPLE} demands; ratio {naive / seconds:.0f}x"
    )


def bench_sweep() -> None:
    topo = random_topology(100, seed=2, srlg_share=0.15)
    demands = gravity_matrix(topo, 1e12, seed=2)
    routing = route(topo, demands)
    links = failures(topo, ["link"])
    seconds = best_of(lambda: sweep(routing, links))
    full = sweep(routing)
    per_demand = naive_seconds_per_demand(topo, demands)
    naive = per_demand * len(demands) * len(links)
    recomputed = np.mean([o.recomputed for o in full.outcomes[: len(links)]])
    print(
        f"what-if: {topo.n_nodes} routers, {len(links)} single-link failures, {len(demands):,} "
        f"demands: {seconds:.2f} s (target < 10 s), {recomputed:.0f} of {len(routing.state.dests)} "
        f"destinations recomputed per failure on average; all {len(full.outcomes)} link, router "
        f"and SRLG failures: {full.seconds:.2f} s; naive re-enumeration per failure "
        f"{naive:.0f} s extrapolated from {SAMPLE} demands; ratio {naive / seconds:.0f}x"
    )


def bench_plan() -> None:
    topo = random_topology(201, seed=3)
    demands = gravity_matrix(topo, 1e12, seed=3, pairs=40_000)
    demands = demands.scaled(1.1 / route(topo, demands).max_utilization)  # 10 % over capacity
    routing = route(topo, demands)
    started = time.perf_counter()
    plan = plan_paths(routing, threshold=0.8)
    seconds = time.perf_counter() - started
    naive = naive_seconds_per_demand(topo, demands) * len(demands)
    print(
        f"plan: {topo.n_nodes} routers, {len(demands):,} demands, max utilization "
        f"{plan.before_max_utilization:.2f} -> {plan.after_max_utilization:.2f} "
        f"(LP optimum {plan.lp_optimum:.3f}, {len(plan.tunnels)} tunnels): {seconds:.2f} s "
        f"(target < 10 s); naive all_shortest_paths routing of the same matrix alone "
        f"{naive:.0f} s extrapolated from {SAMPLE} demands; ratio {naive / seconds:.1f}x"
    )
    for note in plan.notes:
        print(f"  note: {note}")


def bench_abilene_quality() -> None:
    from pathlib import Path

    from flowmatrix.capacity.plan import plan_metrics
    from flowmatrix.capacity.topology import load_topology

    data = Path(__file__).resolve().parent.parent / "tests" / "capacity" / "data"
    for name in ("abilene.txt", "abilene.json"):
        topo = load_topology(data / name)
        for seed in (0, 1, 2):
            demands = gravity_matrix(topo, 1e9, seed=seed)
            demands = demands.scaled(1.0 / route(topo, demands).max_utilization)
            routing = route(topo, demands)
            lp = plan_paths(routing, margin=None)
            ws = plan_metrics(routing, time_limit=5.0, seed=seed)
            print(
                f"abilene quality ({name}, gravity seed {seed}): IGP 1.000, LP optimum "
                f"{lp.lp_optimum:.3f} ({len(lp.tunnels)} tunnels), weight search "
                f"{ws.after_max_utilization:.3f} ({len(ws.metric_changes)} metric changes, "
                f"{ws.evaluations} routings in {ws.seconds:.1f} s)"
            )


def main() -> None:
    """Run the three capacity benchmarks on CPU 0 and print one line each."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    bench_routing()
    bench_sweep()
    bench_plan()
    bench_abilene_quality()


if __name__ == "__main__":
    main()
