"""The vectorized LPM gives the same answers as pytricia, per view, IPv4 and IPv6."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
import pytricia
from hypothesis import given, settings
from hypothesis import strategies as st

from flowmatrix.routing.lpm import Lpm

MASK64 = (1 << 64) - 1


def _prefix(bits: int) -> st.SearchStrategy[tuple[int, int]]:
    """(address, length) with host bits cleared; lengths favour /0, host routes and nesting."""
    lengths = st.one_of(st.sampled_from([0, 1, 8, 16, bits - 1, bits]), st.integers(0, bits))
    # few distinct high bits so that prefixes overlap and nest often
    addresses = st.one_of(
        st.integers(0, (1 << bits) - 1),
        st.integers(0, 15).map(lambda x: x << (bits - 4)),
    )

    def clear(pair: tuple[int, int]) -> tuple[int, int]:
        addr, length = pair
        return addr & ~((1 << (bits - length)) - 1), length

    return st.tuples(addresses, lengths).map(clear)


def _check(bits: int, views: list[list[tuple[int, int]]], queries: list[tuple[int, int]]) -> None:
    family = 4 if bits == 32 else 6
    net = ipaddress.IPv4Network if family == 4 else ipaddress.IPv6Network
    addr_cls = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    rows = [(v, a, ln) for v, prefixes in enumerate(views) for a, ln in prefixes]
    lpm = Lpm.build(
        view=np.array([r[0] for r in rows], dtype=np.int64),
        family=np.full(len(rows), family),
        hi=np.array([r[1] >> 64 for r in rows], dtype=np.uint64),
        lo=np.array([r[1] & MASK64 for r in rows], dtype=np.uint64),
        length=np.array([r[2] for r in rows], dtype=np.int16),
    )
    tries = [pytricia.PyTricia(bits) for _ in views]
    for i, (v, a, ln) in enumerate(rows):
        key = str(net((a, ln)))
        if not tries[v].has_key(key):  # the first of duplicate prefixes wins, as in Lpm
            tries[v][key] = i
    label, length = lpm.lookup(
        view=np.array([q[0] for q in queries], dtype=np.int64),
        family=np.full(len(queries), family),
        hi=np.array([q[1] >> 64 for q in queries], dtype=np.uint64),
        lo=np.array([q[1] & MASK64 for q in queries], dtype=np.uint64),
    )
    for (v, q), got, got_len in zip(queries, label.tolist(), length.tolist(), strict=True):
        want = tries[v].get(str(addr_cls(q))) if v < len(tries) else None
        assert got == (-1 if want is None else want), (v, str(addr_cls(q)))
        assert got_len == (-1 if want is None else rows[want][2])


def _case(
    bits: int,
) -> st.SearchStrategy[tuple[list[list[tuple[int, int]]], list[tuple[int, int]]]]:
    views = st.lists(st.lists(_prefix(bits), max_size=40), min_size=1, max_size=4)

    def with_queries(vs: list[list[tuple[int, int]]]) -> st.SearchStrategy[object]:
        inside = [
            st.tuples(st.just(v), st.integers(0, (1 << (bits - ln)) - 1).map(lambda x, a=a: a | x))
            for v, prefixes in enumerate(vs)
            for a, ln in prefixes
        ]
        anywhere = st.tuples(st.integers(0, len(vs)), st.integers(0, (1 << bits) - 1))
        query = st.one_of(anywhere, *inside) if inside else anywhere
        return st.tuples(st.just(vs), st.lists(query, min_size=1, max_size=60))

    return views.flatmap(with_queries)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(_case(32))
def test_ipv4_lookups_equal_pytricia_on_random_overlapping_tables(
    case: tuple[list[list[tuple[int, int]]], list[tuple[int, int]]],
) -> None:
    _check(32, *case)


@settings(max_examples=150, deadline=None)
@given(_case(128))
def test_ipv6_lookups_equal_pytricia_on_random_overlapping_tables(
    case: tuple[list[list[tuple[int, int]]], list[tuple[int, int]]],
) -> None:
    _check(128, *case)


V4_EDGES = [
    # (prefixes in view 0, query, expected prefix index or -1)
    ([("0.0.0.0", 0)], "255.255.255.255", 0),
    ([("0.0.0.0", 0), ("10.0.0.0", 8)], "10.255.255.255", 1),
    ([("0.0.0.0", 0), ("10.0.0.0", 8)], "11.0.0.0", 0),
    ([("10.1.2.3", 32)], "10.1.2.3", 0),
    ([("10.1.2.3", 32)], "10.1.2.4", -1),
    ([("255.255.255.255", 32)], "255.255.255.255", 0),
    ([("10.0.0.0", 8), ("10.0.0.0", 8)], "10.9.9.9", 0),
    ([("10.0.0.0", 8), ("10.0.0.0", 16), ("10.0.0.0", 24)], "10.0.0.9", 2),
    ([("10.0.0.0", 8), ("10.0.0.0", 16), ("10.0.0.0", 24)], "10.0.1.9", 1),
    ([("10.0.0.0", 8), ("10.0.0.0", 16), ("10.0.0.0", 24)], "10.1.0.0", 0),
]


@pytest.mark.parametrize(("prefixes", "query", "expected"), V4_EDGES)
def test_ipv4_edge_cases_match_the_most_specific_prefix(
    prefixes: list[tuple[str, int]], query: str, expected: int
) -> None:
    lpm = Lpm.build(
        view=np.zeros(len(prefixes), dtype=np.int64),
        family=np.full(len(prefixes), 4),
        hi=np.zeros(len(prefixes), dtype=np.uint64),
        lo=np.array([int(ipaddress.IPv4Address(a)) for a, _ in prefixes], dtype=np.uint64),
        length=np.array([ln for _, ln in prefixes]),
    )
    label, _ = lpm.lookup(
        view=np.zeros(1, dtype=np.int64),
        family=np.full(1, 4),
        hi=np.zeros(1, dtype=np.uint64),
        lo=np.array([int(ipaddress.IPv4Address(query))], dtype=np.uint64),
    )
    assert label.tolist() == [expected]


V6_EDGES = [
    ([("::", 0)], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0),
    ([("2001:db8::1", 128)], "2001:db8::1", 0),
    ([("2001:db8::1", 128)], "2001:db8::2", -1),
    (
        [("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128)],
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        0,
    ),
    ([("2001:db8::", 32), ("2001:db8:0:1::", 64)], "2001:db8:0:1::5", 1),
    ([("2001:db8::", 32), ("2001:db8:0:1::", 64)], "2001:db8:0:2::5", 0),
    ([("2001:db8::", 32), ("2001:db8::8000:0:0:0", 65)], "2001:db8::8000:0:0:1", 1),
    ([("::ffff:0:0", 96)], "::ffff:198.19.0.1", 0),
]


@pytest.mark.parametrize(("prefixes", "query", "expected"), V6_EDGES)
def test_ipv6_edge_cases_match_the_most_specific_prefix(
    prefixes: list[tuple[str, int]], query: str, expected: int
) -> None:
    values = [int(ipaddress.IPv6Address(a)) for a, _ in prefixes]
    q = int(ipaddress.IPv6Address(query))
    lpm = Lpm.build(
        view=np.zeros(len(prefixes), dtype=np.int64),
        family=np.full(len(prefixes), 6),
        hi=np.array([v >> 64 for v in values], dtype=np.uint64),
        lo=np.array([v & MASK64 for v in values], dtype=np.uint64),
        length=np.array([ln for _, ln in prefixes]),
    )
    label, _ = lpm.lookup(
        view=np.zeros(1, dtype=np.int64),
        family=np.full(1, 6),
        hi=np.array([q >> 64], dtype=np.uint64),
        lo=np.array([q & MASK64], dtype=np.uint64),
    )
    assert label.tolist() == [expected]


def test_the_same_addresses_in_different_views_resolve_independently() -> None:
    # 10.0.0.0/8 in view 0, 10.0.0.0/16 in view 1, nothing in view 2, a /0 in view 3
    lpm = Lpm.build(
        view=np.array([0, 1, 3]),
        family=np.array([4, 4, 4]),
        hi=np.zeros(3, dtype=np.uint64),
        lo=np.array([0x0A000000, 0x0A000000, 0], dtype=np.uint64),
        length=np.array([8, 16, 0]),
    )
    label, length = lpm.lookup(
        view=np.array([0, 1, 1, 2, 3, -1]),
        family=np.full(6, 4),
        hi=np.zeros(6, dtype=np.uint64),
        lo=np.array(
            [0x0A010101, 0x0A000101, 0x0A010101, 0x0A000101, 0x0A000101, 0x0A000101],
            dtype=np.uint64,
        ),
    )
    assert label.tolist() == [0, 1, -1, -1, 2, -1]
    assert length.tolist() == [8, 16, -1, -1, 0, -1]
