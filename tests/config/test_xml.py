import dataclasses
import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.config import xml as config_xml
from flowmatrix.config.model import (
    AlarmRule,
    Exporter,
    ExternalNextHop,
    Frp,
    Interface,
    Interval,
    NetworkConfig,
    PeRouter,
    ServiceClass,
    ServiceNode,
    Slot,
    problems,
)
from flowmatrix.config.xml import (
    config_from_bytes,
    config_to_bytes,
    format_duration,
    load_config,
    parse_duration,
    read_config,
    write_config,
)
from flowmatrix.errors import ConfigError

DATA = Path(__file__).parent / "data"


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(list(paths))
    return [str(p) for p in info.value.problems]


def test_valid_document_reads_every_section():
    config = load_config([DATA / "valid.xml"])
    assert (config.name, config.asn) == ("lab", 65000)
    assert [n.name for n in config.service_nodes] == ["PAR", "LON"]
    assert config.service_nodes[0].capacity_bps == 400e9
    assert config.frp("frp-lon").address == ipaddress.ip_address("::1")
    pe = config.pe("par-pe1")
    assert pe.loopback == ipaddress.ip_address("10.255.0.1")
    assert pe.loopback6 == ipaddress.ip_address("2001:db8::1")
    assert pe.exporters == (Exporter(ipaddress.ip_address("127.0.1.1"), 1),)
    assert [i.if_index for i in pe.interfaces] == [3, 4]
    assert config.pe("par-pe2").sampling_rate == 100
    assert config.external_next_hops[1].prefix == ipaddress.ip_network("203.0.113.0/24")
    busy = config.intervals[1]
    assert busy.kind == "weekly"
    assert busy.timezone == "Europe/Paris"
    assert busy.slots[1] == Slot(day=6, start=dt.time(22), duration=dt.timedelta(hours=4))
    once = config.intervals[2]
    assert once.start == dt.datetime(2026, 12, 1, 2)
    assert once.readout_seconds == 60


def test_elements_remember_their_file_and_line():
    config = read_config(DATA / "valid.xml")
    assert config.pe("lon-pe1").source is not None
    assert config.pe("lon-pe1").source.line == 19
    assert config.pe("lon-pe1").source.file.endswith("valid.xml")


def test_document_written_and_read_back_is_equal(tmp_path):
    config = load_config([DATA / "valid.xml"])
    write_config(config, tmp_path / "out.xml")
    assert load_config([tmp_path / "out.xml"]) == config
    assert not list(tmp_path.glob(".*.tmp"))


def test_malformed_xml_is_one_line_with_its_line_number():
    assert problems_of(DATA / "malformed.xml") == [
        f"{DATA / 'malformed.xml'}:5: malformed XML: "
        "Opening and ending tag mismatch: serviceNode line 4 and serviceNodes"
    ]


def test_schema_violation_names_the_element_and_attribute():
    found = problems_of(DATA / "schema-violation.xml")
    assert found[0].startswith(f"{DATA / 'schema-violation.xml'}:7: pe[par-pe1]: ")
    assert "loopbak" in found[0]
    assert any("'loopback' is required" in line for line in found)


def test_external_entity_is_refused_and_never_read():
    found = problems_of(DATA / "xxe.xml")
    assert len(found) == 1
    assert "external entity" in found[0]
    assert "XXE" in found[0]
    assert "root:" not in found[0]


def test_entity_expansion_bomb_is_refused_in_one_line():
    found = problems_of(DATA / "entity-bomb.xml")
    assert len(found) == 1
    assert ":3: !ENTITY lol: " in found[0]
    assert "entity-expansion" in found[0]


def test_utf16_document_with_entities_is_refused():
    text = (DATA / "xxe.xml").read_text().replace('encoding="UTF-8"', "")
    data = text.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(ConfigError, match="XXE"):
        config_from_bytes(data.encode("utf-16"))


def test_doctype_without_entities_is_refused():
    data = b'<?xml version="1.0"?>\n<!DOCTYPE network>\n<network name="x" asn="1"/>'
    with pytest.raises(ConfigError, match="DOCTYPE declarations are not allowed"):
        config_from_bytes(data)


def test_oversized_document_is_refused_before_parsing(monkeypatch, tmp_path):
    monkeypatch.setattr(config_xml, "MAX_DOCUMENT_BYTES", 100)
    path = tmp_path / "big.xml"
    path.write_bytes(b'<network name="x" asn="1">' + b" " * 200 + b"</network>")
    with pytest.raises(ConfigError, match="over the 100-byte limit"):
        read_config(path)


def test_missing_file_is_a_config_problem(tmp_path):
    assert problems_of(tmp_path / "nope.xml") == [
        f"{tmp_path / 'nope.xml'}: cannot read: No such file or directory"
    ]


def test_unknown_frp_and_service_node_are_named_with_their_lines():
    file = DATA / "unknown-refs.xml"
    assert problems_of(file) == [
        f"{file}:10: pe[par-pe1]: unknown frp 'frp-nowhere'",
        f"{file}:11: pe[ams-pe1]: unknown service node 'AMS'",
    ]


def test_bad_address_value_is_reported_at_its_line():
    data = (
        b'<network name="x" asn="1">\n<frps>\n'
        b'<frp name="f" address="10.0.0.999"/>\n</frps>\n</network>'
    )
    with pytest.raises(ConfigError) as info:
        config_from_bytes(data, "mem.xml")
    (problem,) = info.value.problems
    assert str(problem).startswith("mem.xml:3: frp[f]: address='10.0.0.999': ")


def test_every_file_is_read_before_reporting(tmp_path):
    found = problems_of(DATA / "malformed.xml", DATA / "xxe.xml")
    assert len(found) == 2


def test_sections_split_over_files_merge_into_one_network(tmp_path):
    whole = load_config([DATA / "valid.xml"])
    nodes = dataclasses.replace(whole, pes=(), intervals=(), external_next_hops=())
    rest = dataclasses.replace(whole, service_nodes=(), frps=(), classes=())
    write_config(nodes, tmp_path / "nodes.xml")
    write_config(rest, tmp_path / "rest.xml")
    merged = load_config([tmp_path / "nodes.xml", tmp_path / "rest.xml"])
    assert set(merged.pes) == set(whole.pes)
    assert set(merged.service_nodes) == set(whole.service_nodes)


def test_a_pe_defined_in_two_files_is_a_duplicate_naming_the_first(tmp_path):
    whole = load_config([DATA / "valid.xml"])
    write_config(whole, tmp_path / "a.xml")
    write_config(
        dataclasses.replace(
            whole, service_nodes=(), frps=(), classes=(), intervals=(), external_next_hops=()
        ),
        tmp_path / "b.xml",
    )
    found = problems_of(tmp_path / "a.xml", tmp_path / "b.xml")
    assert any(
        f"pe[par-pe1]: duplicate pe; first defined at {tmp_path / 'a.xml'}:" in p for p in found
    )


def test_documents_of_different_networks_do_not_merge(tmp_path):
    whole = load_config([DATA / "valid.xml"])
    write_config(whole, tmp_path / "a.xml")
    write_config(
        dataclasses.replace(
            whole,
            name="other",
            pes=(),
            frps=(),
            service_nodes=(),
            classes=(),
            intervals=(),
            external_next_hops=(),
        ),
        tmp_path / "b.xml",
    )
    assert any(
        "network name 'other' differs" in p
        for p in problems_of(tmp_path / "a.xml", tmp_path / "b.xml")
    )


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("PT8H", dt.timedelta(hours=8)),
        ("P1DT30M", dt.timedelta(days=1, minutes=30)),
        ("PT90S", dt.timedelta(seconds=90)),
        ("P7D", dt.timedelta(days=7)),
    ],
)
def test_durations_parse_and_format(text, delta):
    assert parse_duration(text) == delta
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize("text", ["P", "PT", "P1Y", "8H", "PT1.5H", "P1DT"])
def test_durations_other_than_elapsed_time_are_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# --- round trip of arbitrary configurations ------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
v6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@st.composite
def configs(draw: st.DrawFn) -> NetworkConfig:
    node_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    frp_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    pe_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    pes = tuple(
        PeRouter(
            name=n,
            loopback=draw(v4),
            service_node=draw(st.sampled_from(node_names)),
            frp=draw(st.sampled_from(frp_names)),
            management=draw(st.none() | v4 | v6),
            loopback6=draw(st.none() | v6),
            sampling_rate=draw(st.integers(1, 10000)),
            exporters=tuple(
                Exporter(a, s)
                for a, s in draw(
                    st.lists(st.tuples(v4 | v6, st.none() | st.integers(0, 2**32 - 1)), max_size=2)
                )
            ),
            interfaces=tuple(
                Interface(i, f"ge-0/0/{i}", draw(st.sampled_from(["", "cust"])))
                for i in draw(st.lists(st.integers(1, 2**31), max_size=3, unique=True))
            ),
        )
        for n in pe_names
    )
    intervals = (
        Interval(id="c", kind="continuous", readout_seconds=draw(st.sampled_from([60, 300, 900]))),
        Interval(
            id="w",
            kind="weekly",
            timezone="Europe/Paris",
            slots=(
                Slot(
                    day=draw(st.integers(0, 6)),
                    start=dt.time(draw(st.integers(0, 23)), draw(st.integers(0, 59))),
                    duration=dt.timedelta(minutes=draw(st.integers(1, 600))),
                ),
            ),
        ),
        Interval(
            id="o",
            kind="once",
            start=dt.datetime(2026, 1, 2, 3, 4, 5),
            duration=dt.timedelta(seconds=draw(st.integers(1, 10**6))),
        ),
    )
    endpoints = st.none() | st.sampled_from(pe_names + node_names)
    alarms = []
    for i, target in enumerate(
        draw(st.lists(st.sampled_from(["element", "link", "network"]), max_size=4))
    ):
        alarms.append(
            AlarmRule(
                id=f"rule-{i}",
                target=target,
                statistic=draw(
                    st.sampled_from(
                        ["bytes", "packets", "bps"] + (["utilization"] if target == "link" else [])
                    )
                ),
                threshold=draw(st.floats(1e-9, 1e15, allow_nan=False, allow_infinity=False)),
                op=draw(st.sampled_from(["above", "below"])),
                hold_down=dt.timedelta(seconds=draw(st.integers(0, 10**6))),
                interval=draw(st.none() | st.sampled_from(["c", "w", "o"])),
                ingress=draw(endpoints) if target == "element" else None,
                egress=draw(endpoints) if target == "element" else None,
                src=draw(st.none() | names) if target == "link" else None,
                dst=draw(st.none() | names) if target == "link" else None,
                service_class=draw(st.none() | st.sampled_from(["ef", "be"])),
                webhook=draw(
                    st.none()
                    | st.sampled_from(["http://127.0.0.1:8080/hook", "https://ops.example/a?b=c&d"])
                ),
                description=draw(st.sampled_from(["", "a&b<c>"])),
            )
        )
    return NetworkConfig(
        name=draw(names),
        asn=draw(st.integers(1, 2**32 - 1)),
        service_nodes=tuple(
            ServiceNode(
                n, draw(st.none() | st.floats(1, 1e15)), draw(st.sampled_from(["", "a&b<c>"]))
            )
            for n in node_names
        ),
        frps=tuple(
            Frp(n, draw(v4 | v6), draw(st.none() | st.sampled_from(node_names))) for n in frp_names
        ),
        pes=pes,
        external_next_hops=(ExternalNextHop(ipaddress.ip_network("198.51.100.0/24"), pe_names[0]),),
        classes=(ServiceClass("ef", (46,)), ServiceClass("be", (), default=True)),
        intervals=intervals,
        alarms=tuple(alarms),
    )


@settings(max_examples=60, deadline=None)
@given(configs())
def test_any_configuration_round_trips_through_xml(config):
    assert config_from_bytes(config_to_bytes(config)) == config


@settings(max_examples=30, deadline=None)
@given(configs())
def test_generated_alarm_rules_have_no_problem(config):
    assert [p for p in problems(config) if p.element.startswith("rule[")] == []


# --- alarm rules ---------------------------------------------------------------------------------


def test_alarm_rules_read_with_their_defaults():
    config = load_config([DATA / "alarms.xml"])
    hot, link, quiet = config.alarms
    assert hot == AlarmRule(
        id="pe-pair-hot",
        target="element",
        statistic="bps",
        threshold=8e9,
        hold_down=dt.timedelta(minutes=15),
        interval="always",
        ingress="par-pe1",
        egress="LON",
        service_class="EF",
        webhook="http://127.0.0.1:9000/alarms",
        description="EF from par-pe1 to London",
    )
    assert (link.src, link.dst, link.statistic, link.op) == (
        "par-p1",
        "lon-p1",
        "utilization",
        "above",
    )
    assert (quiet.op, quiet.hold_down, quiet.interval, quiet.webhook) == (
        "below",
        dt.timedelta(0),
        None,
        None,
    )
    assert hot.source is not None
    assert hot.source.line == 41


def test_alarm_rules_write_and_read_back_equal(tmp_path):
    config = load_config([DATA / "alarms.xml"])
    write_config(config, tmp_path / "out.xml")
    assert load_config([tmp_path / "out.xml"]) == config


def rule_document(attributes: str) -> bytes:
    return (
        f'<network name="x" asn="1">\n<alarms>\n<rule {attributes}/>\n</alarms>\n</network>'
    ).encode()


@pytest.mark.parametrize(
    ("attributes", "complaint"),
    [
        ('id="r" target="matrix" statistic="bps" threshold="1"', "'matrix' is not an element"),
        ('id="r" target="link" statistic="flows" threshold="1"', "'flows' is not an element"),
        ('id="r" target="link" statistic="bps" threshold="0"', "minExclusive"),
        ('id="r" target="link" statistic="bps" threshold="-3"', "minExclusive"),
        ('id="r" target="link" statistic="bps" threshold="INF"', "maxExclusive"),
        ('id="r" target="link" statistic="bps" threshold="1" op="over"', "'over' is not an"),
        ('id="r" target="link" statistic="bps" threshold="1" holdDown="5m"', "holdDown"),
        ('id="r" target="link" statistic="bps" threshold="1" webhook="ftp://h/x"', "webhook"),
        ('id="r" target="link" statistic="bps"', "'threshold' is required"),
    ],
)
def test_malformed_alarm_rules_are_refused_at_their_line(attributes, complaint):
    with pytest.raises(ConfigError) as info:
        config_from_bytes(rule_document(attributes), "mem.xml")
    first = str(info.value.problems[0])
    assert first.startswith("mem.xml:3: rule[r]: ")
    assert complaint in first
