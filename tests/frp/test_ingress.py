from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from flowmatrix.frp.ingress import IngressFiles, period_name
from flowmatrix.frp.testing import T0, flows, small_config
from flowmatrix.matrix.aggregate import ingress_records
from flowmatrix.matrix.partial import INGRESS_SCHEMA
from flowmatrix.schema import FlowBatch


def test_part_files_round_trip_every_ingress_column(tmp_path: Path) -> None:
    got = ingress_records(flows(5, T0 + 1000), small_config())
    files = IngressFiles(tmp_path / "ingress")
    path = files.write("always", T0, "pe1", got.table)
    assert path == tmp_path / "ingress" / "always" / "20260105T000000Z" / "pe1" / "part-0.parquet"
    assert pq.read_metadata(path).row_group(0).column(0).compression == "LZ4"
    files.write("always", T0, "pe1", got.table)
    back = files.read("always", T0)
    assert back.schema.equals(INGRESS_SCHEMA)
    assert back.num_rows == 10
    assert FlowBatch.from_arrow(back.slice(0, 5)) == FlowBatch.from_arrow(got.table)
    assert files.periods() == [("always", T0)]
    assert period_name(T0) == "20260105T000000Z"


def test_a_leftover_temp_file_is_never_read(tmp_path: Path) -> None:
    files = IngressFiles(tmp_path)
    files.write("always", T0, "pe1", ingress_records(flows(2, T0), small_config()).table)
    before = files.fingerprint("always", T0)
    junk = files.period_dir("always", T0) / "pe1" / ".part-1.parquet.tmp"
    junk.write_bytes(b"PAR1 half a file")
    assert files.read("always", T0).num_rows == 2
    assert files.fingerprint("always", T0) == before
    # a new writer numbers after the readable parts and replaces nothing readable
    again = IngressFiles(tmp_path)
    assert again.write("always", T0, "pe1", INGRESS_SCHEMA.empty_table()).name == "part-1.parquet"


def test_a_kill_between_write_and_rename_leaves_nothing_readable(tmp_path: Path) -> None:
    code = f"""
import os, signal
from pathlib import Path
from flowmatrix.frp import ingress
from flowmatrix.frp.testing import T0, flows, small_config
from flowmatrix.matrix.aggregate import ingress_records

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

ingress.os.replace = die
files = ingress.IngressFiles(Path({str(tmp_path)!r}))
files.write("always", T0, "pe1", ingress_records(flows(3, T0), small_config()).table)
"""
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert proc.returncode == -9
    files = IngressFiles(tmp_path)
    left = list((tmp_path / "always").rglob("*"))
    assert any(p.name.startswith(".part-0") for p in left)
    assert files.parts("always", T0) == []
    assert files.read("always", T0).num_rows == 0
