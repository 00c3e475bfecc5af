"""BGP UPDATE decoding: attributes interned, NLRI decoded in columns, RFC 7606 errors."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.routing.bgp import (
    AttributeTable,
    UpdateError,
    decode_nlri,
    parse_update,
    rd_text,
    rd_value,
)
from flowmatrix.routing.testing import bgp_update, nlri


def _decode(update: bytes, *, as4: bool = True, addpath: frozenset[tuple[int, int]] = frozenset()):
    attrs = AttributeTable()
    regions, withdraw = parse_update(update, 19, len(update), as4=as4, addpath=addpath, attrs=attrs)
    cols, bad = decode_nlri(update, regions)
    return attrs, cols, bad, withdraw


@pytest.mark.parametrize("rd", ["65000:100", "192.0.2.1:7", "4200000000:12", "0:0"])
def test_rd_text_and_value_round_trip(rd: str) -> None:
    assert rd_text(rd_value(rd)) == rd


def test_vpnv4_update_gives_rd_label_prefix_and_shared_attributes() -> None:
    update = bgp_update(
        announce=[
            nlri("10.1.0.0/16", rd="65000:1", label=100),
            nlri("10.1.128.0/17", rd="192.0.2.1:7", label=1048575),
            nlri("0.0.0.0/0", rd="65000:1", label=3),
            nlri("10.9.9.9/32", rd="65000:1", label=16),
        ],
        next_hop="192.0.2.2",
        rts=["65000:1", "65000:2"],
        local_pref=200,
        med=7,
        as_path=[65001, 65002],
        originator="192.0.2.9",
        communities=[0xFFFF0001],
    )
    attrs, cols, bad, withdraw = _decode(update)
    assert bad == []
    assert not withdraw
    assert [rd_text(int(x)) for x in cols.rd] == ["65000:1", "192.0.2.1:7", "65000:1", "65000:1"]
    assert cols.label.tolist() == [100, 1048575, 3, 16]
    assert cols.length.tolist() == [16, 17, 0, 32]
    assert [str(ipaddress.IPv4Address(int(x))) for x in cols.lo] == [
        "10.1.0.0",
        "10.1.128.0",
        "0.0.0.0",
        "10.9.9.9",
    ]
    assert (cols.family == 4).all()
    assert (cols.safi == 128).all()
    assert (cols.attr == 0).all()
    assert len(attrs) == 1
    a = attrs.rows[0]
    assert (a.nh_family, a.nh_lo) == (4, int(ipaddress.IPv4Address("192.0.2.2")))
    assert (a.local_pref, a.med, a.as_path, a.as_path_len) == (200, 7, (65001, 65002), 2)
    assert a.route_targets == frozenset({"65000:1", "65000:2"})
    assert a.originator_id == int(ipaddress.IPv4Address("192.0.2.9"))
    assert a.communities == (0xFFFF0001,)


def test_same_attributes_in_two_updates_are_interned_once() -> None:
    attrs = AttributeTable()
    for prefix in ("10.1.0.0/16", "10.2.0.0/16"):
        u = bgp_update(announce=[nlri(prefix, rd="65000:1")], rts=["65000:1"])
        parse_update(u, 19, len(u), as4=True, addpath=frozenset(), attrs=attrs)
    u = bgp_update(announce=[nlri("10.3.0.0/16", rd="65000:1")], rts=["65000:2"])
    parse_update(u, 19, len(u), as4=True, addpath=frozenset(), attrs=attrs)
    assert len(attrs) == 2


def test_vpnv6_update_with_6vpe_next_hop_and_host_bits_cleared() -> None:
    update = bgp_update(
        afi=2,
        announce=[nlri("fd0a:2::/48", rd="65000:12"), nlri("2001:db8::1/128", rd="65000:12")],
        next_hop="::ffff:192.0.2.2",
    )
    attrs, cols, bad, _ = _decode(update)
    assert bad == []
    assert (cols.family == 6).all()
    assert cols.hi.tolist() == [0xFD0A_0002_0000_0000, 0x2001_0DB8_0000_0000]
    assert cols.lo.tolist() == [0, 1]
    assert cols.length.tolist() == [48, 128]
    a = attrs.rows[0]
    assert (a.nh_family, a.nh_hi, a.nh_lo) == (6, 0, 0xFFFF_C000_0202)


def test_ipv4_unicast_plain_fields_withdrawn_and_announced() -> None:
    update = bgp_update(
        afi=1,
        safi=1,
        announce=[nlri("198.51.100.0/24"), nlri("203.0.113.128/25")],
        withdraw=[nlri("192.0.2.0/24")],
        next_hop="192.0.2.7",
        as_path=[1, 2, 3],
        as4=False,
    )
    attrs, cols, bad, _ = _decode(update, as4=False)
    assert bad == []
    assert cols.attr.tolist() == [-1, 0, 0]
    assert cols.length.tolist() == [24, 24, 25]
    assert (cols.safi == 1).all()
    assert (cols.rd == 0).all()
    assert attrs.rows[0].as_path == (1, 2, 3)


def test_ipv6_unicast_in_mp_reach_and_mp_unreach() -> None:
    update = bgp_update(afi=2, safi=1, announce=[nlri("2001:db8:1::/48")], next_hop="2001:db8::1")
    _attrs, cols, _, _ = _decode(update)
    assert cols.hi.tolist() == [0x2001_0DB8_0001_0000]
    assert cols.safi.tolist() == [1]
    gone = bgp_update(afi=2, safi=1, withdraw=[nlri("2001:db8:1::/48")])
    _, cols, _, _ = _decode(gone)
    assert cols.attr.tolist() == [-1]


def test_vpn_withdrawal_with_the_withdraw_label() -> None:
    update = bgp_update(withdraw=[nlri("10.1.0.0/16", rd="65000:1", label=None)])
    _, cols, bad, _ = _decode(update)
    assert bad == []
    assert cols.attr.tolist() == [-1]
    assert cols.length.tolist() == [16]
    assert rd_text(int(cols.rd[0])) == "65000:1"


def test_label_stack_of_two_labels_is_walked_to_the_bottom() -> None:
    raw = (
        bytes([24 * 2 + 64 + 16])
        + (100 << 4).to_bytes(3, "big")
        + ((200 << 4) | 1).to_bytes(3, "big")
    )
    raw += rd_value("65000:5").to_bytes(8, "big") + bytes([10, 5])
    update = bgp_update(announce=[raw])
    _, cols, bad, _ = _decode(update)
    assert bad == []
    assert cols.label.tolist() == [100]
    assert cols.length.tolist() == [16]
    assert rd_text(int(cols.rd[0])) == "65000:5"
    assert int(cols.lo[0]) == 0x0A050000


def test_add_path_identifiers_are_read_when_negotiated() -> None:
    update = bgp_update(
        announce=[
            nlri("10.1.0.0/16", rd="65000:1", path_id=1),
            nlri("10.1.0.0/16", rd="65000:1", path_id=2),
        ]
    )
    _, cols, bad, _ = _decode(update, addpath=frozenset({(1, 128)}))
    assert bad == []
    assert cols.path_id.tolist() == [1, 2]
    # without the capability the same bytes do not delimit: the region is reported bad
    _, cols, bad, _ = _decode(update)
    assert bad == [0]
    assert len(cols) == 0


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (bytes([0xC0, 8, 3, 1, 2, 3]), "communities not a multiple of 4"),
        (bytes([0x80, 9, 3, 1, 2, 3]), "originator id of 3 bytes"),
        (bytes([0xC0, 16, 5, 0, 2, 0, 0, 0]), "extended communities not a multiple of 8"),
    ],
)
def test_malformed_optional_attribute_makes_the_update_treat_as_withdraw(
    extra: bytes, why: str
) -> None:
    update = bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")], extra=extra)
    attrs, cols, _, withdraw = _decode(update)
    assert withdraw, why
    assert cols.attr.tolist() == [-1]
    assert len(attrs) == 0


def test_unknown_attribute_is_ignored() -> None:
    update = bgp_update(
        announce=[nlri("10.1.0.0/16", rd="65000:1")], extra=bytes([0xC0, 99, 2, 1, 2])
    )
    _, cols, _, withdraw = _decode(update)
    assert not withdraw
    assert cols.attr.tolist() == [0]


_GOOD = bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")], rts=["65000:1"])


@pytest.mark.parametrize(
    "update",
    [
        _GOOD[:21],  # cut inside the withdrawn-routes length
        _GOOD[:-1],  # the last attribute overruns the attribute block
        _GOOD[:19] + b"\x00\x09" + _GOOD[21:],  # withdrawn length pointing past the end
        bgp_update(announce=[bytes([120, 1, 2, 3])]),  # NLRI claims more bits than it has
        bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")[:-1] + bytes([1, 2, 3])]),
        bgp_update(announce=[bytes([88 + 40]) + bytes(16)]),  # 40-bit IPv4 prefix
    ],
)
def test_lying_lengths_raise_update_error_or_report_the_region(update: bytes) -> None:
    attrs = AttributeTable()
    try:
        regions, _ = parse_update(
            update, 19, len(update), as4=True, addpath=frozenset(), attrs=attrs
        )
    except UpdateError:
        return
    cols, bad = decode_nlri(update, regions)
    assert bad
    assert len(cols) == 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.booleans(), st.booleans())
def test_random_bytes_never_raise_anything_but_update_error(
    body: bytes, as4: bool, addpath: bool
) -> None:
    data = bytes(19) + body
    ap = frozenset({(1, 128), (1, 1), (2, 128), (2, 1)}) if addpath else frozenset()
    try:
        regions, _ = parse_update(data, 19, len(data), as4=as4, addpath=ap, attrs=AttributeTable())
    except UpdateError:
        return
    cols, _ = decode_nlri(data, regions)
    assert (cols.length[cols.family == 4] <= 32).all()
    assert (cols.length <= 128).all()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_updates_never_raise_anything_but_update_error(data: st.DataObject) -> None:
    update = bytearray(
        bgp_update(
            announce=[nlri("10.1.0.0/16", rd="65000:1"), nlri("10.2.0.0/24", rd="65000:2")],
            rts=["65000:1"],
            as_path=[1, 2],
            originator="192.0.2.1",
        )
    )
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(19, len(update) - 1))
        update[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(19, len(update)))
    raw = bytes(update[:cut])
    try:
        regions, _ = parse_update(
            raw, 19, len(raw), as4=True, addpath=frozenset(), attrs=AttributeTable()
        )
    except UpdateError:
        return
    cols, _ = decode_nlri(raw, regions)
    assert np.all(cols.length <= 128)
