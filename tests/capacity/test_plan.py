from itertools import pairwise

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from flowmatrix.capacity.demands import make_demands
from flowmatrix.capacity.plan import (
    best_plan,
    plan_metrics,
    plan_paths,
    render_iosxr,
    render_junos,
    rerouting_plans,
)
from flowmatrix.capacity.routing import route
from flowmatrix.capacity.testing import gravity_matrix, random_topology
from flowmatrix.capacity.topology import Link, Node, build_topology


def arc_lp_optimum(topology, demands):
    """Min-max utilization by an arc-based multicommodity LP: a second, independent formulation."""
    arcs = topology.arcs
    n, m = topology.n_nodes, len(arcs)
    index = topology.node_index
    pairs = [
        (index[str(a)], index[str(b)], float(v))
        for a, b, v in zip(demands.ingress, demands.egress, demands.bps, strict=True)
        if a != b and v > 0
    ]
    k = len(pairs)
    scale = float(np.median(arcs.capacity_bps))
    n_var = k * m + 1
    eq_rows, eq_cols, eq_vals, b_eq = [], [], [], []
    for d, (s, t, v) in enumerate(pairs):
        for node in range(n):
            row = len(b_eq)
            for a in range(m):
                if arcs.src[a] == node:
                    eq_rows.append(row), eq_cols.append(d * m + a), eq_vals.append(1.0)
                if arcs.dst[a] == node:
                    eq_rows.append(row), eq_cols.append(d * m + a), eq_vals.append(-1.0)
            b_eq.append(v / scale if node == s else -v / scale if node == t else 0.0)
    ub_rows, ub_cols, ub_vals = [], [], []
    for a in range(m):
        for d in range(k):
            ub_rows.append(a), ub_cols.append(d * m + a), ub_vals.append(1.0)
        ub_rows.append(a), ub_cols.append(k * m), ub_vals.append(-arcs.capacity_bps[a] / scale)
    c = np.zeros(n_var)
    c[-1] = 1.0
    result = linprog(
        c,
        A_ub=sp.csr_matrix((ub_vals, (ub_rows, ub_cols)), shape=(m, n_var)),
        b_ub=np.zeros(m),
        A_eq=sp.csr_matrix((eq_vals, (eq_rows, eq_cols)), shape=(len(b_eq), n_var)),
        b_eq=np.array(b_eq),
        bounds=[(0, None)] * n_var,
        method="highs-ipm",
    )
    assert result.status == 0
    return float(result.x[-1])


def independent_loads(routing, plan):
    """Arc loads of a plan summed here by hand: IGP for what is left, tunnels hop by hop."""
    t = routing.topology
    arcs = t.arcs
    names = [node.name for node in t.nodes]
    volume: dict[tuple[str, str], float] = {}
    for s, d, v in zip(routing.mapped.src, routing.mapped.dst, routing.mapped.bps, strict=True):
        volume[(names[s], names[d])] = volume.get((names[s], names[d]), 0.0) + float(v)
    load = np.zeros(len(arcs))
    for tunnel in plan.tunnels:
        volume[(tunnel.ingress, tunnel.egress)] -= tunnel.bps
        for u, v in pairwise(tunnel.path):
            members = [
                a for a in range(len(arcs)) if names[arcs.src[a]] == u and names[arcs.dst[a]] == v
            ]
            total = sum(arcs.capacity_bps[a] for a in members)
            for a in members:
                load[a] += tunnel.bps * arcs.capacity_bps[a] / total
    left = [(a, b, max(0.0, v)) for (a, b), v in volume.items()]
    rest = make_demands([a for a, _, _ in left], [b for _, b, _ in left], [v for *_, v in left])
    metric = plan.metric if plan.metric is not None else None
    return load + route(t, rest, metric=metric).load_bps


def test_abilene_explicit_path_plan_meets_the_threshold_and_is_recomputed(abilene, abilene_gravity):
    r = route(abilene, abilene_gravity)
    plan = plan_paths(r, threshold=0.8)
    assert plan.before_max_utilization == pytest.approx(1.0)
    assert plan.lp_optimum is not None
    assert plan.lp_optimum <= plan.before_max_utilization + 1e-9
    assert plan.feasible
    assert plan.tunnels
    load = independent_loads(r, plan)
    np.testing.assert_allclose(plan.load_bps, load, rtol=1e-9, atol=1e-3)
    util = load / abilene.arcs.capacity_bps
    assert plan.after_max_utilization == pytest.approx(util.max())
    # phase two may use the margin below the threshold to move less traffic, never more than it
    assert plan.lp_optimum - 1e-6 <= plan.after_max_utilization <= 0.95 * 0.8 + 1e-6


def test_path_lp_optimum_is_the_same_with_dual_simplex_and_interior_point(abilene, abilene_gravity):
    r = route(abilene, abilene_gravity)
    ds = plan_paths(r, method="highs-ds", margin=None)
    ipm = plan_paths(r, method="highs-ipm", margin=None)
    assert ds.lp_optimum == pytest.approx(ipm.lp_optimum, rel=1e-6)
    assert ds.after_max_utilization == pytest.approx(ds.lp_optimum, rel=1e-6)


def test_unscaled_kbps_capacities_give_the_same_optimum(abilene, abilene_gravity):
    # the LP scales volumes and capacities itself; raw units must not change the answer
    small = plan_paths(route(abilene, abilene_gravity), margin=None)
    links = [
        Link(lk.name, lk.a, lk.b, lk.capacity_bps * 1e3, lk.metric_ab, lk.metric_ba)
        for lk in abilene.links
    ]
    big_topology = build_topology(abilene.nodes, links)
    big = plan_paths(route(big_topology, abilene_gravity.scaled(1e3)), margin=None)
    assert big.lp_optimum == pytest.approx(small.lp_optimum, rel=1e-6)


@st.composite
def small_networks(draw):
    n = draw(st.integers(3, 6))
    edges = [(i, draw(st.integers(0, i - 1))) for i in range(1, n)]
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=5))
    edges += [(a, b) for a, b in extra if a != b]
    links = [
        Link(
            f"l{k}",
            f"n{a}",
            f"n{b}",
            draw(st.sampled_from([10.0, 40.0])),
            draw(st.integers(1, 3)),
            draw(st.integers(1, 3)),
        )
        for k, (a, b) in enumerate(edges)
    ]
    topology = build_topology([Node(f"n{i}", f"N{i}") for i in range(n)], links)
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(1.0, 30.0)),
            min_size=1,
            max_size=6,
        )
    )
    pairs = [(a, b, v) for a, b, v in pairs if a != b] or [(0, 1, 5.0)]
    demands = make_demands(
        [f"n{a}" for a, _, _ in pairs], [f"n{b}" for _, b, _ in pairs], [v for *_, v in pairs]
    )
    return topology, demands


@settings(max_examples=25, deadline=None)
@given(small_networks())
def test_lp_optimum_is_never_above_shortest_paths_and_equals_the_arc_lp(network):
    topology, demands = network
    r = route(topology, demands)
    plan = plan_paths(r, k=1000, margin=None)  # every simple path: the exact multicommodity flow
    assert plan.lp_optimum <= r.max_utilization + 1e-9
    assert plan.lp_optimum == pytest.approx(arc_lp_optimum(topology, demands), rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(plan.load_bps, independent_loads(r, plan), atol=1e-6)


def test_weight_search_reaches_the_lp_optimum_neighbourhood_on_abilene(abilene, abilene_gravity):
    r = route(abilene, abilene_gravity)
    lp = plan_paths(r, margin=None)
    plan = plan_metrics(r, threshold=0.8, max_evaluations=1500, time_limit=60, seed=1)
    assert plan.feasible
    assert plan.after_max_utilization <= 1.1 * lp.lp_optimum
    assert plan.metric_changes
    load = independent_loads(r, plan)
    np.testing.assert_allclose(plan.load_bps, load, rtol=1e-9, atol=1e-3)
    again = plan_metrics(r, threshold=0.8, max_evaluations=1500, time_limit=60, seed=1)
    assert again.metric_changes == plan.metric_changes


def test_weight_search_never_recommends_something_worse():
    t = random_topology(20, seed=2)
    r = route(t, gravity_matrix(t, 5e11, seed=2))
    plan = plan_metrics(r, max_evaluations=200, time_limit=30)
    assert plan.after_max_utilization <= r.max_utilization + 1e-9
    assert all(c.new_metric >= 1 for c in plan.metric_changes)


def test_when_nothing_can_meet_the_threshold_the_plan_says_so():
    # b is reachable over one link only: no rerouting can relieve it
    t = build_topology(
        [Node("a", "A"), Node("b", "B"), Node("c", "C")],
        [Link("ab", "a", "b", 10, 1, 1), Link("ac", "a", "c", 10, 1, 1)],
    )
    r = route(t, make_demands(["a", "c"], ["b", "b"], [6.0, 3.0]))
    plans = [plan_paths(r), plan_metrics(r, max_evaluations=50)]
    assert all(not p.feasible for p in plans)
    assert all(p.after_max_utilization == pytest.approx(0.9) for p in plans)
    assert "no explicit-path plan meets the threshold" in plans[0].notes[-1]
    assert "no metric plan found" in plans[1].notes[-1]
    assert not best_plan(plans).feasible


def test_router_configuration_names_tunnels_paths_and_metrics(abilene, abilene_gravity):
    r = route(abilene, abilene_gravity)
    paths = plan_paths(r)
    xr = render_iosxr(paths, abilene)
    junos = render_junos(paths, abilene)
    first = paths.tunnels[0]
    assert f"explicit-path name {first.name}" in xr
    assert "interface tunnel-te1001" in xr
    assert f"path-option 10 explicit name {first.name}" in xr
    assert f"label-switched-path {first.name} {{" in junos
    assert f"primary {first.name};" in junos
    metrics = plan_metrics(r, max_evaluations=300)
    change = metrics.metric_changes[0]
    xr_m = render_iosxr(metrics, abilene)
    assert "router isis CORE" in xr_m
    assert f" interface {change.link}" in xr_m
    assert f"   metric {change.new_metric:g}" in xr_m
    assert f"level 2 metric {change.new_metric:g};" in render_junos(metrics, abilene)


def test_large_matrices_restrict_candidates_and_say_so():
    t = random_topology(30, seed=4)
    d = gravity_matrix(t, 4e12, seed=4)
    r = route(t, d)
    plan = plan_paths(r, max_candidates=50)
    assert plan.notes
    assert "only 50 of" in plan.notes[0]
    assert plan.lp_optimum <= r.max_utilization + 1e-9
    np.testing.assert_allclose(plan.load_bps, independent_loads(r, plan), rtol=1e-9, atol=1e-3)


def test_plans_report_their_progress_while_they_search(abilene, abilene_gravity):
    said: list[str] = []
    plans = rerouting_plans(
        abilene, abilene_gravity, method="both", time_limit=0.8, seed=1, progress=said.append
    )
    assert [p.method for p in plans] == ["explicit-paths", "igp-metrics"]
    assert said[0] == "routing the matrix"
    assert any(s.startswith("explicit paths: the multicommodity LP") for s in said)
    searching = [s for s in said if s.startswith("IGP metric search: ")]
    assert len(searching) >= 2  # about four a second
    assert "routings, best maximum utilization" in searching[-1]
    assert searching[-1].endswith("of 0.8 s")
