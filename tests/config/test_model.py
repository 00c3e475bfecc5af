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
from flowmatrix.config.xml import config_from_bytes, config_to_bytes, load_config
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
