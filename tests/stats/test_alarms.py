import datetime as dt
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from flowmatrix.config.model import AlarmRule
from flowmatrix.config.xml import load_config
from flowmatrix.stats.alarms import (
    ActiveAlarm,
    AlarmEngine,
    AlarmEvent,
    element_mask,
    link_mask,
)

CONFIG_DATA = Path(__file__).parents[1] / "config" / "data"
MINUTE = 60_000
_ids = itertools.count()


def rule(hold_minutes: int = 0, *, op: str = "above", threshold: float = 100.0) -> AlarmRule:
    # a fresh id per test keeps the process-wide Prometheus series apart
    return AlarmRule(
        f"r{next(_ids)}",
        "element",
        "bps",
        threshold,
        op=op,
        hold_down=dt.timedelta(minutes=hold_minutes),
    )


def run(engine: AlarmEngine, spec: AlarmRule, series: list[float], key: str = "a>b") -> list:
    """Feed one value per 5-minute period; the transitions as (state, minute, value)."""
    return [
        (e.state, e.at_ms // MINUTE, e.value)
        for i, value in enumerate(series, start=1)
        for e in engine.observe(spec.id, "always", i * 5 * MINUTE, [key], np.array([value]))
    ]


def test_hold_down_zero_raises_and_clears_at_once():
    spec = rule(0)
    assert run(AlarmEngine([spec]), spec, [50, 150, 150, 90, 120]) == [
        ("raised", 10, 150),
        ("cleared", 20, 90),
        ("raised", 25, 120),
    ]


def test_raise_waits_until_the_condition_held_for_the_hold_down():
    spec = rule(10)
    # true from minute 10: pending at 10, 15 is 5 min, 20 is 10 min → raised at 20
    assert run(AlarmEngine([spec]), spec, [50, 150, 150, 150, 150]) == [("raised", 20, 150)]


def test_a_breach_shorter_than_the_hold_down_raises_nothing():
    spec = rule(10)
    assert run(AlarmEngine([spec]), spec, [150, 150, 50, 150, 150, 50]) == []


def test_a_dip_shorter_than_the_hold_down_does_not_clear():
    spec = rule(10)
    series = [150, 150, 150, 50, 50, 150, 150]
    assert run(AlarmEngine([spec]), spec, series) == [("raised", 15, 150)]


def test_clear_comes_after_the_hold_down_of_false():
    spec = rule(10)
    series = [150, 150, 150, 50, 50, 50, 50]
    assert run(AlarmEngine([spec]), spec, series) == [("raised", 15, 150), ("cleared", 30, 50)]


def test_below_rules_alarm_under_the_threshold():
    spec = rule(5, op="below", threshold=10)
    assert run(AlarmEngine([spec]), spec, [20, 5, 5, 20, 20]) == [
        ("raised", 15, 5),
        ("cleared", 25, 20),
    ]


def test_value_equal_to_the_threshold_is_not_a_breach():
    spec = rule(0)
    assert run(AlarmEngine([spec]), spec, [100, 100]) == []


def test_only_breaching_keys_of_a_large_observation_raise():
    spec = rule(0)
    engine = AlarmEngine([spec])
    keys = np.array([f"pe{i}>pe{i + 1}" for i in range(100_000)])
    values = np.zeros(len(keys))
    values[[7, 99_999]] = 1e6
    events = engine.observe(spec.id, "always", 5 * MINUTE, keys, values)
    assert [(e.key, e.state, e.value, e.threshold) for e in events] == [
        ("pe7>pe8", "raised", 1e6, 100.0),
        ("pe99999>pe100000", "raised", 1e6, 100.0),
    ]
    values[7] = 0
    started = time.perf_counter()
    events = engine.observe(spec.id, "always", 10 * MINUTE, keys, values)
    assert time.perf_counter() - started < 0.5
    assert [(e.key, e.state) for e in events] == [("pe7>pe8", "cleared")]


def test_a_raised_key_missing_from_a_period_counts_as_zero():
    spec = rule(0)
    engine = AlarmEngine([spec])
    engine.observe(spec.id, "always", 5 * MINUTE, ["a>b", "a>c"], [500.0, 500.0])
    events = engine.observe(spec.id, "always", 10 * MINUTE, ["a>c"], [500.0])
    assert events == [AlarmEvent(spec.id, "always", "a>b", "cleared", 10 * MINUTE, 0.0, 100.0)]


def test_intervals_of_one_rule_are_kept_apart():
    spec = rule(0)
    engine = AlarmEngine([spec])
    engine.observe(spec.id, "always", 5 * MINUTE, ["a>b"], [500.0])
    # the same period in another interval neither clears nor is ignored
    assert engine.observe(spec.id, "busy", 5 * MINUTE, ["x>y"], [500.0])[0].key == "x>y"
    assert {(a.interval, a.key) for a in engine.active()} == {("always", "a>b"), ("busy", "x>y")}


def test_a_period_observed_twice_is_ignored():
    spec = rule(0)
    engine = AlarmEngine([spec])
    assert engine.observe(spec.id, "always", 5 * MINUTE, ["a>b"], [500.0])
    assert engine.observe(spec.id, "always", 5 * MINUTE, ["a>b"], [500.0]) == []
    assert engine.observe(spec.id, "always", 0, ["a>b"], [0.0]) == []


def test_active_lists_raised_alarms_with_their_start():
    spec, other = rule(5), rule(0)
    engine = AlarmEngine([spec, other])
    run(engine, spec, [150, 150, 150, 20])
    engine.observe(other.id, "always", 5 * MINUTE, ["n"], [1e9])
    assert engine.active() == [
        ActiveAlarm(other.id, "always", "n", 5 * MINUTE, 1e9, 100.0),
        ActiveAlarm(spec.id, "always", "a>b", 10 * MINUTE, 20.0, 100.0),
    ]
    assert [a.rule for a in engine.active(spec.id)] == [spec.id]


def test_restored_state_does_not_raise_again_and_keeps_pending_hold_downs():
    spec, pending = rule(0), rule(10)
    engine = AlarmEngine([spec, pending])
    engine.observe(spec.id, "always", 5 * MINUTE, ["a>b"], [500.0])
    engine.observe(pending.id, "always", 5 * MINUTE, ["a>b"], [500.0])
    saved = json.loads(json.dumps(engine.state()))

    restarted = AlarmEngine([spec, pending])
    restarted.restore(saved)
    assert restarted.active() == engine.active()
    assert restarted.observe(spec.id, "always", 10 * MINUTE, ["a>b"], [600.0]) == []
    # the pending rule raises 10 minutes after its first breach, as without the restart
    assert [
        e.at_ms for e in restarted.observe(pending.id, "always", 10 * MINUTE, ["a>b"], [1e3])
    ] == []
    assert [
        e.at_ms for e in restarted.observe(pending.id, "always", 15 * MINUTE, ["a>b"], [1e3])
    ] == [15 * MINUTE]


def test_restore_drops_rules_no_longer_configured_and_refuses_other_versions():
    spec, gone = rule(0), rule(0)
    engine = AlarmEngine([spec, gone])
    engine.observe(gone.id, "always", 5 * MINUTE, ["a>b"], [500.0])
    restarted = AlarmEngine([spec])
    restarted.restore(engine.state())
    assert restarted.active() == []
    with pytest.raises(ValueError, match="version"):
        restarted.restore({"version": 99, "streams": []})


def test_prometheus_counts_active_alarms_and_transitions():
    spec = rule(0)
    engine = AlarmEngine([spec])

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"rule": spec.id, **labels})

    assert sample("alarms_active") == 0
    engine.observe(spec.id, "always", 5 * MINUTE, ["a", "b", "c"], [500.0, 500.0, 1.0])
    assert sample("alarms_active") == 2
    engine.observe(spec.id, "always", 10 * MINUTE, ["a", "b", "c"], [500.0, 1.0, 1.0])
    assert sample("alarms_active") == 1
    assert sample("alarm_transitions_total", state="raised") == 2
    assert sample("alarm_transitions_total", state="cleared") == 1


def test_rules_for_an_interval_include_rules_of_every_interval():
    every = rule(0)
    busy = AlarmRule("busy-only", "network", "bytes", 1.0, interval="busy")
    engine = AlarmEngine([every, busy])
    assert engine.rules_for("busy") == (every, busy)
    assert engine.rules_for("always") == (every,)


def test_keys_and_values_of_different_lengths_are_refused():
    spec = rule(0)
    with pytest.raises(ValueError, match="2 keys"):
        AlarmEngine([spec]).observe(spec.id, "always", MINUTE, ["a", "b"], [1.0])


def test_events_are_json_documents():
    event = AlarmEvent("r", "always", "a>b", "raised", 300_000, 2.5, 1.0)
    assert json.loads(json.dumps(event.to_json())) == {
        "rule": "r",
        "interval": "always",
        "key": "a>b",
        "state": "raised",
        "at_ms": 300_000,
        "value": 2.5,
        "threshold": 1.0,
    }


def test_the_hold_down_table_of_the_docs():
    spec = rule(10)
    series = [50, 150, 150, 150, 50, 150, 50, 50, 50]
    assert run(AlarmEngine([spec]), spec, series) == [("raised", 20, 150), ("cleared", 45, 50)]


def test_element_rules_select_by_pe_or_service_node_and_class():
    config = load_config([CONFIG_DATA / "alarms.xml"])
    hot = config.alarms[0]  # ingress par-pe1, egress LON, class EF
    ingress = np.array(["par-pe1", "par-pe1", "par-pe2", "par-pe1", "par-pe1"])
    egress = np.array(["lon-pe1", "lon-pe1", "lon-pe1", "par-pe2", "unresolved"])
    classes = np.array(["EF", "BE", "EF", "EF", "EF"])
    assert element_mask(hot, config, ingress, egress, classes).tolist() == [
        True,
        False,
        False,
        False,
        False,
    ]
    everything = AlarmRule("all", "element", "bytes", 1.0)
    assert element_mask(everything, config, ingress, egress, classes).all()


def test_link_rules_select_by_source_and_destination():
    link = AlarmRule("l", "link", "utilization", 0.8, src="a", dst="b")
    assert link_mask(link, ["a", "a", "b"], ["b", "c", "a"]).tolist() == [True, False, False]
