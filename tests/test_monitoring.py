"""The example alert rules and Grafana dashboard name only metrics flowmatrix exports."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

DOCS = Path(__file__).parents[1] / "docs" / "monitoring"
#: modules that declare the MG's and FRP's metrics
MODULES = (
    "flowmatrix.flows.stats",
    "flowmatrix.frp.pipeline",
    "flowmatrix.frp.uploader",
    "flowmatrix.frp.ingress",
    "flowmatrix.mg.app",
    "flowmatrix.mg.auth",
    "flowmatrix.routing.resolve",
    "flowmatrix.stats.alarms",
    "flowmatrix.stats.webhook",
)
_PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "scalar", "le", "instance", "job",
    "reason", "status", "rule", "kind", "up", "rate_interval", "max", "pe",
}  # fmt: skip


def exported() -> set[str]:
    for name in MODULES:
        importlib.import_module(name)
    return set(REGISTRY._names_to_collectors)  # sample names, labelled or not


def metric_names(expr: str) -> set[str]:
    """Identifiers of an expression but PromQL functions, keywords, labels and ranges."""
    without_strings = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^]]*\]', " ", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", without_strings))
    return {w for w in words if w not in _PROMQL_WORDS and not w.startswith("__")}


def rules() -> list[dict[str, object]]:
    document = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def panel_exprs() -> list[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: str(r["alert"]))
def test_alert_rules_are_complete_and_name_exported_metrics(rule: dict[str, object]) -> None:
    assert set(rule) >= {"alert", "expr", "labels", "annotations"}
    assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]
    assert rule["annotations"]["summary"]  # type: ignore[index]
    expr = str(rule["expr"])
    assert expr.count("(") == expr.count(")")
    unknown = metric_names(expr) - exported() - {"up"}
    assert not unknown, f"{rule['alert']}: not exported by flowmatrix: {sorted(unknown)}"


def test_grafana_panels_name_exported_metrics() -> None:
    exprs = panel_exprs()
    assert len(exprs) >= 10
    names = exported()
    for expr in exprs:
        assert expr.count("(") == expr.count(")"), expr
        assert metric_names(expr) <= names, expr


def test_the_checker_catches_a_misspelt_metric() -> None:
    assert metric_names("rate(frp_record_total[5m])") - exported() == {"frp_record_total"}
