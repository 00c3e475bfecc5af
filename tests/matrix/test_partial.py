from __future__ import annotations

import pyarrow as pa
import pytest

from flowmatrix.errors import UploadError
from flowmatrix.matrix.partial import (
    INGRESS_SCHEMA,
    PARTIAL_SCHEMA,
    ExporterReport,
    PartialMeta,
    decode_ingress,
    decode_partial,
    digest,
    empty_partial,
    encode_ingress,
    encode_partial,
)
from flowmatrix.schema import FlowBatch

META = PartialMeta(frp="frp-a", interval="always", period_start_ms=0, period_end_ms=300_000)


def partial(bytes_: float = 1500.0) -> pa.Table:
    row = {"ingress_pe": "pe1", "in_if": 1101, "vrf": "cust1", "egress_pe": "pe2", "tos": 0,
           "class": "be", "bytes": bytes_, "packets": 3.0, "flows": 1.0, "sampled_packets": 3.0,
           "bytes_var": 0.0, "packets_var": 0.0}  # fmt: skip
    return pa.Table.from_pylist([row], schema=PARTIAL_SCHEMA)


def test_a_partial_and_its_envelope_survive_the_wire():
    meta = META.model_copy(update={"exporters": (ExporterReport(address="127.0.1.1", gap=3),)})
    table, back = decode_partial(encode_partial(partial(), meta))
    assert table.equals(partial())
    assert back == meta


def test_the_digest_ignores_revision_and_creation_time_but_not_content():
    again = META.model_copy(update={"revision": 7, "created_ms": 123})
    assert digest(partial(), META) == digest(partial(), again)
    assert digest(partial(), META) != digest(partial(1501.0), META)
    assert digest(partial(), META) != digest(partial(), META.model_copy(update={"records": 1}))


def test_garbage_is_refused_as_an_upload_error():
    with pytest.raises(UploadError, match="not an Arrow IPC stream"):
        decode_partial(b"\x00\x01garbage")


def test_a_table_with_a_missing_column_is_refused_naming_it():
    body = encode_partial(partial(), META)
    table = partial().drop_columns(["flows"])
    sink = pa.BufferOutputStream()
    meta_bytes = pa.ipc.open_stream(body).schema.metadata
    with pa.ipc.new_stream(sink, table.schema.with_metadata(meta_bytes)) as writer:
        writer.write_table(table.replace_schema_metadata(meta_bytes))
    with pytest.raises(UploadError, match="flows: missing"):
        decode_partial(sink.getvalue().to_pybytes())


def test_negative_volumes_are_refused():
    with pytest.raises(UploadError, match="negative or NaN"):
        decode_partial(encode_partial(partial(-1.0), META))


def test_an_envelope_whose_period_ends_before_it_starts_is_refused():
    bad = META.model_copy(update={"period_end_ms": 0})
    with pytest.raises(UploadError, match="period_end_ms"):
        decode_partial(encode_partial(empty_partial(), bad))


def test_ingress_records_round_trip_with_their_flow_columns():
    flows = FlowBatch.from_columns({"bytes": [10, 20], "ip_version": 4, "dst_lo": 0x0A000001}, 2)
    extra = {"interval": ["always"] * 2, "period_start_ms": [0, 0], "ingress_pe": ["pe1"] * 2,
             "ingress_loopback": ["198.19.0.1"] * 2, "egress_pe": [None, None]}  # fmt: skip
    table = flows.to_arrow()
    for name, values in extra.items():
        table = table.append_column(
            INGRESS_SCHEMA.field(name), pa.array(values, INGRESS_SCHEMA.field(name).type)
        )
    back, meta = decode_ingress(encode_ingress(table, META))
    assert FlowBatch.from_arrow(back) == flows
    assert back["egress_pe"].null_count == 2
    assert meta == META
