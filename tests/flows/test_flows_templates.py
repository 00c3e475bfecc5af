from __future__ import annotations

import numpy as np

from flowmatrix.flows.templates import TemplateStore, compile_layout, uint_field


def test_layout_names_only_known_iana_elements_and_keeps_record_length() -> None:
    layout = compile_layout(((8, 4, 0), (999, 6, 0), (1, 8, 0), (2, 4, 9)))
    assert layout.record_length == 22
    assert set(layout.roles) == {"src", "bytes"}
    assert layout.dtype.itemsize == 22


def test_reduced_size_and_odd_length_counters_are_read_big_endian() -> None:
    layout = compile_layout(((1, 3, 0), (2, 5, 0)))
    rec = np.frombuffer(bytes.fromhex("0102030000000004"), dtype=layout.dtype)
    assert int(uint_field(rec, *layout.roles["bytes"][:2])[0]) == 0x010203
    assert int(uint_field(rec, *layout.roles["packets"][:2])[0]) == 4


def test_identical_templates_share_one_compiled_layout() -> None:
    store = TemplateStore()
    a = store.define((0, 9, 1, 256), ((8, 4, 0),))
    b = store.define((1, 9, 7, 300), ((8, 4, 0),))
    assert a is b


def test_withdraw_all_keeps_other_domains_and_exporters() -> None:
    store = TemplateStore()
    for key in [(0, 10, 1, 256), (0, 10, 1, 257), (0, 10, 2, 256), (1, 10, 1, 256)]:
        store.define(key, ((8, 4, 0),))
    store.withdraw_all(0, 10, 1, options=False)
    assert store.keys == {(0, 10, 2, 256), (1, 10, 1, 256)}
