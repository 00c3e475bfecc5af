import io
from pathlib import Path

from rich.console import Console

from flowmatrix.config.render import config_tables, describe_rule
from flowmatrix.config.xml import load_config

DATA = Path(__file__).parent / "data"


def printed(tables: list) -> str:
    console = Console(width=200, file=io.StringIO())
    for table in tables:
        console.print(table)
    return console.file.getvalue()


def test_config_show_lists_alarm_rules_when_there_are_some():
    config = load_config([DATA / "alarms.xml"])
    text = printed(config_tables(config))
    assert "threshold alarms" in text
    assert "utilization above 0.8 for PT10M (src par-p1, dst lon-p1)" in text
    assert "packets below 1000" in text


def test_config_show_has_no_alarm_table_without_rules():
    text = printed(config_tables(load_config([DATA / "valid.xml"])))
    assert "threshold alarms" not in text


def test_describe_rule_names_hold_down_and_selectors():
    hot = load_config([DATA / "alarms.xml"]).alarms[0]
    assert describe_rule(hot) == "bps above 8e+09 for PT15M (ingress par-pe1, egress LON, class EF)"
