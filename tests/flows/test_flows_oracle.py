"""Differential test: our decoder against the PyPI netflow package on softflowd's datagrams."""

from __future__ import annotations

from types import ModuleType

import pytest

from flowmatrix.flows import Decoder
from flowmatrix.schema import FlowBatch


def our_rows(batch: FlowBatch, keys: list[tuple[str, ...]]) -> list[tuple[int, ...]]:
    cols = []
    for name, *_ in keys:
        if name in ("src", "dst"):
            hi = batch[f"{name}_hi"].astype(object)
            lo = batch[f"{name}_lo"].astype(object)
            cols.append([(int(h) << 64) | int(low) for h, low in zip(hi, lo, strict=True)])
        else:
            cols.append(batch[name].tolist())
    return list(zip(*cols, strict=True))


@pytest.mark.parametrize("version", [5, 9, 10])
def test_decoder_agrees_with_the_netflow_package_record_by_record(
    version: int, softflowd: dict[int, list[bytes]], oracle: ModuleType
) -> None:
    dgrams = softflowd[version]
    batch = Decoder().decode([(d, "127.0.0.1", 0.0) for d in dgrams])
    expected = oracle.reference_rows(version, dgrams)
    assert len(expected) == len(batch) > 100
    assert sorted(our_rows(batch, oracle.KEYS)) == sorted(expected)
