import json
import math

import pytest

from flowmatrix.capacity.adequacy import check_capacity
from flowmatrix.capacity.demands import make_demands
from flowmatrix.capacity.report import check_report, to_json
from flowmatrix.capacity.topology import Link, Node, ServiceNode, build_topology
from flowmatrix.errors import CapacityError


def network(node_capacity=None):
    return build_topology(
        [Node("a1", "A"), Node("a2", "A"), Node("b1", "B")],
        [Link("a1-a2", "a1", "a2", 100.0, 1, 1), Link("a2-b1", "a2", "b1", 10.0, 1, 1)],
        [ServiceNode("A", node_capacity)],
    )


def test_a_link_over_threshold_is_reported_one_direction_at_a_time():
    result = check_capacity(network(), make_demands(["a1"], ["b1"], [9.0]), threshold=0.8)
    over = result.links_over
    assert [(x.link, x.src, x.dst) for x in over] == [("a2-b1", "a2", "b1")]
    assert over[0].utilization == pytest.approx(0.9)
    assert result.exceeded
    assert result.max_utilization == pytest.approx(0.9)


def test_threshold_is_a_strict_upper_bound():
    result = check_capacity(network(), make_demands(["a1"], ["b1"], [8.0]), threshold=0.8)
    assert not result.exceeded


def test_a_configured_service_node_capacity_can_be_exceeded_while_links_are_fine():
    demands = make_demands(["a1", "a2"], ["a2", "a1"], [30.0, 30.0])
    result = check_capacity(network(node_capacity=50.0), demands)
    node = next(n for n in result.service_nodes if n.name == "A")
    assert node.load_bps == 60.0
    assert node.over
    assert not node.derived
    assert not result.links_over
    assert result.exceeded


def test_service_node_without_trunks_or_capacity_is_not_assessed():
    t = build_topology([Node("x", "X"), Node("y", "X")], [Link("xy", "x", "y", 10.0, 1, 1)])
    result = check_capacity(t, make_demands(["x"], ["y"], [1.0]))
    node = result.service_nodes[0]
    assert math.isnan(node.utilization)
    assert not node.over
    doc = json.loads(to_json(check_report(result)))
    assert doc["service_nodes"][0]["utilization"] is None


def test_non_positive_threshold_is_refused():
    with pytest.raises(CapacityError, match="threshold"):
        check_capacity(network(), make_demands(["a1"], ["b1"], [1.0]), threshold=0)
