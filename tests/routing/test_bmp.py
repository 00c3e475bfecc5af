"""BMP stream decoding: framing, message types, peer types, ADD-PATH from Peer Up, errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.routing.bgp import rd_text
from flowmatrix.routing.bmp import BmpSession, BmpSessionError, RibKey
from flowmatrix.routing.testing import (
    bgp_open,
    bgp_update,
    bmp_initiation,
    bmp_message,
    bmp_peer_down,
    bmp_peer_up,
    bmp_route_monitoring,
    bmp_statistics,
    bmp_termination,
    nlri,
)

PEER = {"peer": "192.0.2.2", "bgp_id": "192.0.2.2", "post_policy": True}


def _stream() -> bytes:
    return b"".join(
        [
            bmp_initiation(sys_name="rr1", sys_descr="test RR"),
            bmp_peer_up(**PEER),
            bmp_route_monitoring(
                bgp_update(
                    announce=[nlri("10.1.0.0/16", rd="65000:1"), nlri("10.2.0.0/16", rd="65000:1")],
                    rts=["65000:1"],
                    next_hop="192.0.2.2",
                ),
                time_s=1_700_000_000.5,
                **PEER,
            ),
            bmp_statistics([(7, 12), (8, 3)], **PEER),
            bmp_route_monitoring(
                bgp_update(withdraw=[nlri("10.2.0.0/16", rd="65000:1", label=None)]), **PEER
            ),
            bmp_message(6, b"mirrored, skipped"),
            bmp_peer_down(**PEER),
            bmp_termination(reason=1),
        ]
    )


def test_every_message_type_in_stream_order() -> None:
    s = BmpSession()
    batch = s.feed(_stream())
    assert (s.sys_name, s.sys_descr, s.initiated, s.terminated) == ("rr1", "test RR", True, True)
    assert batch.messages == {
        "initiation": 1,
        "peer_up": 1,
        "route_monitoring": 2,
        "statistics": 1,
        "route_mirroring": 1,
        "peer_down": 1,
        "termination": 1,
    }
    assert [e.kind for e in batch.events] == [
        "initiation",
        "peer_up",
        "statistics",
        "peer_down",
        "termination",
    ]
    # events sit between the routes they followed and preceded
    assert [e.before for e in batch.events] == [0, 0, 2, 3, 3]
    assert batch.events[2].info == ((7, 12), (8, 3))
    assert batch.events[3].peer == (0, 0, "192.0.2.2")
    assert batch.events[4].info == ((1, 1),)
    assert batch.routes.attr.tolist() == [0, 0, -1]
    assert batch.time_ms.tolist()[:2] == [1_700_000_000_500] * 2
    assert s.ribs == [RibKey((0, 0, "192.0.2.2"), "post")]
    assert s.malformed == {}


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_messages_split_across_reads_decode_the_same(chunk: int) -> None:
    data = _stream()
    s = BmpSession()
    kinds: list[str] = []
    routes = 0
    for i in range(0, len(data), chunk):
        b = s.feed(data[i : i + chunk])
        kinds += [e.kind for e in b.events]
        routes += len(b)
    assert routes == 3
    assert kinds == ["initiation", "peer_up", "statistics", "peer_down", "termination"]


def test_peer_types_and_rib_kinds_are_kept_apart() -> None:
    u = bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")], rts=["65000:1"])
    s = BmpSession()
    s.feed(
        bmp_route_monitoring(u, peer="192.0.2.2")
        + bmp_route_monitoring(u, peer="192.0.2.2", post_policy=True)
        + bmp_route_monitoring(u, peer="192.0.2.2", adj_rib_out=True)
        + bmp_route_monitoring(u, peer="192.0.2.2", peer_type=1, distinguisher="65000:7")
        + bmp_route_monitoring(u, peer="0.0.0.0", peer_type=3)
        + bmp_route_monitoring(u, peer="2001:db8::2", peer_type=2)
    )
    assert [(k.peer[0], rd_text(k.peer[1]), k.peer[2], k.kind) for k in s.ribs] == [
        (0, "0:0", "192.0.2.2", "pre"),
        (0, "0:0", "192.0.2.2", "post"),
        (0, "0:0", "192.0.2.2", "out-pre"),
        (1, "65000:7", "192.0.2.2", "pre"),
        (3, "0:0", "0.0.0.0", "loc"),
        (2, "0:0", "2001:db8::2", "pre"),
    ]


def test_add_path_from_peer_up_opens_decides_path_identifiers() -> None:
    both = [(1, 128, 3)]
    up = bmp_peer_up(sent=bgp_open(addpath=both), received=bgp_open(addpath=both), **PEER)
    u = bgp_update(
        announce=[
            nlri("10.1.0.0/16", rd="65000:1", path_id=1),
            nlri("10.1.0.0/16", rd="65000:1", path_id=2),
        ]
    )
    s = BmpSession()
    b = s.feed(up + bmp_route_monitoring(u, **PEER))
    assert b.routes.path_id.tolist() == [1, 2]
    # only one side offering ADD-PATH: not in use, the same bytes do not decode
    s = BmpSession()
    up = bmp_peer_up(sent=bgp_open(addpath=both), received=bgp_open(), **PEER)
    b = s.feed(up + bmp_route_monitoring(u, **PEER))
    assert len(b) == 0
    assert s.malformed == {"nlri": 1}


def test_legacy_two_byte_as_path_flag() -> None:
    u = bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")], as_path=[1, 2, 3], as4=False)
    s = BmpSession()
    b = s.feed(bmp_route_monitoring(u, legacy_as_path=True, **PEER))
    assert s.attrs.rows[int(b.routes.attr[0])].as_path == (1, 2, 3)


@pytest.mark.parametrize(
    "raw",
    [
        bytes([2]) + (6).to_bytes(4, "big") + b"\x00",  # version 2
        bytes([3]) + (5).to_bytes(4, "big") + b"\x00",  # length under the header
        bytes([3]) + (1 << 30).to_bytes(4, "big") + b"\x00",  # absurd length
    ],
)
def test_untrustworthy_common_header_drops_the_session(raw: bytes) -> None:
    with pytest.raises(BmpSessionError):
        BmpSession().feed(raw)


def test_malformed_bodies_are_skipped_and_counted_and_the_stream_goes_on() -> None:
    good = bmp_route_monitoring(
        bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")], rts=["65000:1"]), **PEER
    )
    cut_update = bmp_message(0, good[6:-4])  # UPDATE length says more than the message holds
    short = bmp_message(0, b"\x00" * 10)  # no room for a per-peer header
    bad_up = bmp_message(3, good[6 : 6 + 50])  # Peer Up without OPENs
    unknown = bmp_message(42, b"future")
    s = BmpSession()
    b = s.feed(cut_update + short + bad_up + unknown + good)
    assert len(b) == 1
    assert s.malformed == {"route_monitoring": 2, "peer_up": 1}
    assert s.unknown == 1


def test_treat_as_withdraw_is_counted() -> None:
    u = bgp_update(announce=[nlri("10.1.0.0/16", rd="65000:1")], extra=bytes([0xC0, 8, 3, 1, 2, 3]))
    s = BmpSession()
    b = s.feed(bmp_route_monitoring(u, **PEER))
    assert b.routes.attr.tolist() == [-1]
    assert s.treated_as_withdraw == 1


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_streams_raise_nothing_but_bmp_session_error(data: st.DataObject) -> None:
    stream = bytearray(_stream())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    s = BmpSession()
    step = data.draw(st.integers(1, 400))
    try:
        for i in range(0, len(stream), step):
            s.feed(bytes(stream[i : i + step]))
    except BmpSessionError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_after_a_valid_header_raise_nothing_but_bmp_session_error(
    body: bytes,
) -> None:
    for kind in range(8):
        with contextlib.suppress(BmpSessionError):
            BmpSession().feed(bmp_message(kind, body))
