import numpy as np
import pytest

from flowmatrix.capacity.demands import make_demands
from flowmatrix.capacity.routing import route
from flowmatrix.capacity.testing import gravity_matrix, random_topology
from flowmatrix.capacity.topology import Link, Node, build_topology
from flowmatrix.capacity.whatif import Failure, fail, failures, sweep


def triangle():
    return build_topology(
        [Node("a", "A"), Node("b", "B"), Node("c", "C")],
        [
            Link("ab", "a", "b", 10, 1, 1),
            Link("bc", "b", "c", 10, 1, 1),
            Link("ac", "a", "c", 10, 5, 5, ("duct",)),
            Link("ab2", "a", "b", 10, 1, 1, ("duct",)),
        ],
    )


def test_link_failure_moves_traffic_to_the_surviving_path():
    t = triangle()
    w = sweep(route(t, make_demands(["a"], ["c"], [4.0])))
    ac = 4  # arc a→c of link "ac"
    assert w.worst_failure(ac) in {"link:bc", "node:b"}
    one = next(o for o in w.outcomes if o.failure.label == "link:ab")
    assert (one.load_bps[6], one.load_bps[ac]) == (4.0, 0.0)  # the parallel link takes it all
    srlg = next(o for o in w.outcomes if o.failure.label == "srlg:duct")
    assert srlg.load_bps[2] == 4.0  # b→c still carries it via ab
    both = fail(w.routing, Failure("link", "ab+ab2", (0, 1, 6, 7)))
    assert both.load_bps[ac] == 4.0
    assert both.max_utilization == pytest.approx(0.4)


def test_worst_utilization_names_the_failure_causing_it():
    t = build_topology(
        [Node("a", "A"), Node("b", "B"), Node("c", "C")],
        [
            Link("ab", "a", "b", 10, 1, 1),
            Link("bc", "b", "c", 10, 1, 1),
            Link("ac", "a", "c", 5, 5, 5),
        ],
    )
    w = sweep(route(t, make_demands(["a"], ["c"], [4.0])))
    assert w.worst_failure(4) in {"link:ab", "link:bc", "node:b"}
    assert w.worst_utilization[4] == pytest.approx(0.8)
    assert w.worst_utilization[0] == pytest.approx(0.4)  # a→b: normal state is its worst
    assert w.worst_failure(0) is None


def test_failure_that_cuts_a_router_off_reports_disconnected_traffic():
    t = build_topology(
        [Node("a", "A"), Node("b", "B"), Node("c", "C")],
        [Link("ab", "a", "b", 10, 1, 1), Link("bc", "b", "c", 10, 1, 1)],
    )
    r = route(t, make_demands(["a", "c"], ["c", "b"], [4.0, 1.0]))
    cut = fail(r, Failure("link", "bc", (2, 3)))
    assert {(u.ingress, u.egress, u.bps, u.reason) for u in cut.disconnected} == {
        ("a", "c", 4.0, "unreachable"),
        ("c", "b", 1.0, "unreachable"),
    }
    assert cut.load_bps.sum() == 0.0


def test_router_failure_loses_its_own_traffic_and_reroutes_transit():
    t = build_topology(
        [Node("a", "A"), Node("b", "B"), Node("c", "C"), Node("d", "D")],
        [
            Link("ab", "a", "b", 10, 1, 1),
            Link("bc", "b", "c", 10, 1, 1),
            Link("ad", "a", "d", 10, 2, 2),
            Link("dc", "d", "c", 10, 2, 2),
        ],
    )
    r = route(t, make_demands(["a", "b", "a"], ["c", "c", "b"], [4.0, 1.0, 2.0]))
    out = fail(r, next(f for f in failures(t, ["node"]) if f.name == "b"))
    lost = {(u.ingress, u.egress, u.bps, u.reason) for u in out.disconnected}
    assert lost == {("b", "c", 1.0, "endpoint failed"), ("a", "b", 2.0, "endpoint failed")}
    np.testing.assert_allclose(out.load_bps, [0, 0, 0, 0, 4, 0, 4, 0])


def test_incremental_sweep_equals_routing_again_from_scratch():
    t = random_topology(40, seed=5, srlg_share=0.2)
    d = gravity_matrix(t, 1e11, seed=5)
    r = route(t, d)
    w = sweep(r)
    assert len(w.outcomes) == len(t.links) + len(t.nodes) + len(t.srlgs)
    for outcome in w.outcomes:
        f = outcome.failure
        alive = np.ones(len(t.arcs), dtype=bool)
        alive[list(f.arcs)] = False
        kept = d
        if f.node is not None:
            name = t.nodes[f.node].name
            keep = (d.ingress != name) & (d.egress != name)
            kept = make_demands(d.ingress[keep], d.egress[keep], d.bps[keep])
        again = route(t, kept, alive=alive)
        np.testing.assert_allclose(outcome.load_bps, again.load_bps, rtol=1e-9, atol=1e-3)
        assert outcome.recomputed <= len(r.state.dests)
    assert any(o.recomputed < len(r.state.dests) for o in w.outcomes)


def test_sweep_reports_progress_once_per_failure() -> None:
    from flowmatrix.capacity.demands import make_demands
    from flowmatrix.capacity.routing import route
    from flowmatrix.capacity.topology import Link, Node, build_topology
    from flowmatrix.capacity.whatif import failures, sweep

    t = build_topology(
        [Node("a", "A"), Node("b", "B"), Node("c", "C")],
        [Link("ab", "a", "b", 10, 1, 1), Link("bc", "b", "c", 10, 1, 1),
         Link("ac", "a", "c", 10, 5, 5)],
    )  # fmt: skip
    seen: list[tuple[int, int]] = []
    sweep(route(t, make_demands(["a"], ["c"], [4.0])), progress=lambda d, n: seen.append((d, n)))
    n = len(failures(t))
    assert seen == [(k, n) for k in range(1, n + 1)]
