from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from flowmatrix.flows.testing import assert_batch_equal
from flowmatrix.schema import ADDRESS_COLUMNS, FLOW_COLUMNS, FlowBatch


def sample(n: int = 4) -> FlowBatch:
    rng = np.random.default_rng(1)
    cols = {c.name: rng.integers(0, 200, n).astype(c.dtype) for c in FLOW_COLUMNS}
    for fam, _, _ in ADDRESS_COLUMNS.values():
        cols[fam] = np.array([4, 6, 4, 6][:n], dtype=np.uint8)
    cols["bgp_next_hop_version"][0] = 0
    cols["bgp_next_hop_hi"][0] = cols["bgp_next_hop_lo"][0] = 0
    cols["src_hi"][n - 1] = np.uint64(2**64 - 1)
    return FlowBatch(cols)


def test_flow_columns_have_unique_names_and_consistent_types() -> None:
    names = [c.name for c in FLOW_COLUMNS]
    assert len(names) == len(set(names))
    for c in FLOW_COLUMNS:
        assert pa.from_numpy_dtype(c.dtype) == c.arrow
        assert c.doc


def test_batch_round_trips_through_arrow_with_binary_addresses() -> None:
    batch = sample()
    table = batch.to_arrow()
    assert table.schema.field("src").type == pa.binary(16)
    assert table.column("bgp_next_hop").null_count == 1
    assert_batch_equal(FlowBatch.from_arrow(table), batch)


def test_arrow_addresses_are_big_endian_hi_then_lo() -> None:
    batch = sample(1)
    raw = batch.to_arrow().column("src")[0].as_py()
    assert int.from_bytes(raw, "big") == (int(batch["src_hi"][0]) << 64) | int(batch["src_lo"][0])


def test_concat_keeps_rows_in_order() -> None:
    a, b = sample(2), sample(3)
    both = FlowBatch.concat([a, FlowBatch.empty(), b])
    assert len(both) == 5
    assert both["bytes"].tolist() == a["bytes"].tolist() + b["bytes"].tolist()


def test_batch_refuses_columns_of_different_lengths() -> None:
    cols = dict(FlowBatch.empty(2).columns)
    cols["bytes"] = np.zeros(3, dtype=np.uint64)
    with pytest.raises(ValueError, match="one length"):
        FlowBatch(cols)
