import dataclasses
import ipaddress
from pathlib import Path

import pytest

from flowmatrix.config.model import (
    DEFAULT_CLASS,
    ExternalNextHop,
    NetworkConfig,
    PeRouter,
    ServiceClass,
    check,
    problems,
)
from flowmatrix.config.xml import config_from_bytes, config_to_bytes, load_config, write_config
from flowmatrix.errors import ConfigError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def lab() -> NetworkConfig:
    return load_config([DATA / "valid.xml"])


def messages(config: NetworkConfig) -> list[str]:
    return [f"{p.element}: {p.message}" for p in problems(config)]


def test_frp_view_keeps_its_own_pes_whole(lab):
    view = lab.view_for_frp("frp-par")
    assert view.for_frp == "frp-par"
    assert view.frps == (lab.frp("frp-par"),)
    assert view.pe("par-pe1") == lab.pe("par-pe1")
    assert view.pe("par-pe2") == lab.pe("par-pe2")


def test_frp_view_reduces_other_pes_to_what_egress_resolution_needs(lab):
    remote = lab.view_for_frp("frp-par").pe("lon-pe1")
    assert remote.remote
    assert (remote.name, remote.loopback, remote.service_node) == (
        "lon-pe1",
        lab.pe("lon-pe1").loopback,
        "LON",
    )
    assert remote.management is None
    assert remote.exporters == ()
    assert remote.interfaces == ()


def test_frp_view_is_itself_a_valid_configuration_that_round_trips(lab):
    view = lab.view_for_frp("frp-lon")
    assert check(view) is view
    assert config_from_bytes(config_to_bytes(view)) == view


def test_frp_view_of_an_unknown_frp_is_a_key_error(lab):
    with pytest.raises(KeyError):
        lab.view_for_frp("frp-nowhere")


def test_remote_pes_are_refused_outside_a_view(lab):
    config = dataclasses.replace(
        lab, pes=(*lab.pes, PeRouter("x", ipaddress.ip_address("10.9.9.9"), "PAR"))
    )
    assert "pe[x]: no frp given (only an FRP's view lists remote PEs)" in messages(config)


def test_dscp_maps_to_named_classes_and_the_default(lab):
    classes = lab.dscp_classes()
    assert classes[46] == "EF"
    assert classes[34] == classes[36] == classes[38] == "AF4"
    assert classes[0] == classes[63] == "BE"


def test_without_classes_every_dscp_is_in_the_default_class(lab):
    assert set(dataclasses.replace(lab, classes=()).dscp_classes()) == {DEFAULT_CLASS}


def test_a_dscp_in_two_classes_is_a_problem(lab):
    config = dataclasses.replace(lab, classes=(*lab.classes, ServiceClass("VOICE", (46,))))
    assert "class[VOICE]: DSCP 46 already belongs to class 'EF'" in messages(config)


def test_two_default_classes_are_a_problem(lab):
    config = dataclasses.replace(lab, classes=(*lab.classes, ServiceClass("OTHER", default=True)))
    assert "class[OTHER]: more than one default class" in messages(config)


def test_external_next_hop_to_an_unknown_pe_is_a_problem(lab):
    hop = ExternalNextHop(ipaddress.ip_network("192.0.2.0/24"), "nowhere-pe")
    config = dataclasses.replace(lab, external_next_hops=(hop,))
    assert "nextHop[192.0.2.0/24]: unknown pe 'nowhere-pe'" in messages(config)


def test_two_pes_with_one_loopback_are_a_problem(lab):
    twin = dataclasses.replace(lab.pe("par-pe2"), name="par-pe3")
    config = dataclasses.replace(lab, pes=(*lab.pes, twin))
    assert any(m.startswith("pe loopback[10.255.0.2]: duplicate") for m in messages(config))


def test_interface_ifindex_must_be_unique_on_a_pe(lab):
    pe = lab.pe("par-pe1")
    pe = dataclasses.replace(
        pe, interfaces=(*pe.interfaces, dataclasses.replace(pe.interfaces[0], name="other"))
    )
    config = dataclasses.replace(lab, pes=(pe, *lab.pes[1:]))
    assert any(
        m.startswith("pe[par-pe1] interface ifIndex[3]: duplicate") for m in messages(config)
    )


def test_check_raises_with_every_problem(lab):
    config = dataclasses.replace(lab, service_nodes=())
    with pytest.raises(ConfigError) as info:
        check(config)
    assert len(info.value.problems) == len(lab.pes) + len(lab.frps)


def test_exporter_addresses_default_to_the_management_address(lab):
    assert lab.pe("par-pe1").exporter_addresses == (ipaddress.ip_address("127.0.1.1"),)
    assert lab.pe("par-pe2").exporter_addresses == (ipaddress.ip_address("192.0.2.2"),)


def test_pes_of_an_frp(lab):
    assert [pe.name for pe in lab.pes_of("frp-par")] == ["par-pe1", "par-pe2"]


# --- alarm rules ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alarmed() -> NetworkConfig:
    return load_config([DATA / "alarms.xml"])


def with_rule(config: NetworkConfig, **changes: object) -> NetworkConfig:
    return dataclasses.replace(
        config, alarms=(dataclasses.replace(config.alarms[0], **changes), *config.alarms[1:])
    )


def test_frp_view_drops_alarm_rules_and_stays_a_valid_document(alarmed):
    view = alarmed.view_for_frp("frp-par")
    assert alarmed.alarms
    assert view.alarms == ()
    assert check(view) is view
    assert b"<alarms>" not in config_to_bytes(view)
    assert config_from_bytes(config_to_bytes(view)) == view


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"interval": "nightly"}, "unknown interval 'nightly'"),
        ({"service_class": "GOLD"}, "unknown class 'GOLD'"),
        ({"ingress": "ams-pe9"}, "unknown PE or service node 'ams-pe9'"),
        ({"egress": "AMS"}, "unknown PE or service node 'AMS'"),
        ({"statistic": "utilization"}, "utilization applies to links, not to element"),
        ({"target": "network"}, "ingress selects elements, not network"),
        ({"src": "par-p1"}, "src selects links, not element"),
        ({"threshold": 0.0}, "threshold 0.0 is not above 0"),
        ({"webhook": "gopher://x"}, "webhook 'gopher://x' is not an http(s) URL"),
    ],
)
def test_alarm_rule_problems_name_the_rule_at_its_line(alarmed, changes, message):
    found = [str(p) for p in problems(with_rule(alarmed, **changes))]
    assert f"{DATA / 'alarms.xml'}:41: rule[pe-pair-hot]: {message}" in found


def test_a_rule_may_select_a_pe_or_a_service_node(alarmed):
    assert problems(with_rule(alarmed, ingress="PAR", egress="lon-pe1")) == []


def test_a_rule_id_used_twice_is_a_duplicate_naming_the_first(alarmed):
    twin = dataclasses.replace(alarmed.alarms[0], source=alarmed.alarms[2].source)
    found = [str(p) for p in problems(dataclasses.replace(alarmed, alarms=(*alarmed.alarms, twin)))]
    file = DATA / "alarms.xml"
    assert found == [f"{file}:44: rule[pe-pair-hot]: duplicate rule; first defined at {file}:41"]


def test_rule_ids_are_unique_across_files(tmp_path, alarmed):
    write_config(alarmed, tmp_path / "a.xml")
    write_config(
        dataclasses.replace(
            alarmed,
            service_nodes=(),
            frps=(),
            pes=(),
            classes=(),
            intervals=(),
            external_next_hops=(),
        ),
        tmp_path / "b.xml",
    )
    with pytest.raises(ConfigError) as info:
        load_config([tmp_path / "a.xml", tmp_path / "b.xml"])
    assert sum("duplicate rule" in str(p) for p in info.value.problems) == 3


def test_without_classes_a_rule_may_name_the_default_class(alarmed):
    config = with_rule(dataclasses.replace(alarmed, classes=()), service_class=DEFAULT_CLASS)
    assert problems(config) == []


def test_breached_compares_on_the_rules_side_of_the_threshold(alarmed):
    above, below = alarmed.alarms[0], alarmed.alarms[2]
    assert above.breached(8e9 + 1)
    assert not above.breached(8e9)
    assert below.breached(999.0)
    assert not below.breached(1000.0)
