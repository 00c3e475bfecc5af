"""Flow batches to files and text: Parquet (the Arrow form), CSV and nfdump-like tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowmatrix.addr import format_addresses
from flowmatrix.schema import ADDRESS_COLUMNS, FLOW_COLUMNS, FlowBatch

__all__ = ["text_table", "write_batch"]

_HALVES = {c for fam_hi_lo in ADDRESS_COLUMNS.values() for c in fam_hi_lo[1:]}


def text_table(batch: FlowBatch) -> pa.Table:
    """The batch with each address as text (empty when absent) instead of integer halves."""
    first = {hi: name for name, (_, hi, _) in ADDRESS_COLUMNS.items()}
    arrays: dict[str, pa.Array] = {}
    for c in FLOW_COLUMNS:
        if c.name in first:
            name = first[c.name]
            fam, hi, lo = ADDRESS_COLUMNS[name]
            text = format_addresses(batch[fam], batch[hi], batch[lo])
            arrays[name] = pc.if_else(pa.array(batch[fam] == 0), "", text)
        elif c.name not in _HALVES:
            arrays[c.name] = pa.array(batch[c.name], c.arrow)
    return pa.table(arrays)


def write_batch(batch: FlowBatch, path: Path) -> None:
    """Write a batch as Parquet (``.parquet``, the Arrow form) or CSV (``.csv``, text addresses)."""
    path = Path(path)
    if path.suffix == ".parquet":
        pq.write_table(batch.to_arrow(), path)
    elif path.suffix == ".csv":
        pacsv.write_csv(text_table(batch), path)
    else:
        msg = f"{path}: output format comes from the extension, .csv or .parquet"
        raise ValueError(msg)
