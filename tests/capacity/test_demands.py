import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowmatrix.capacity.demands import load_matrix, make_demands
from flowmatrix.errors import CapacityError


def _pairs(demands):
    return {
        (str(i), str(e)): float(v)
        for i, e, v in zip(demands.ingress, demands.egress, demands.bps, strict=True)
    }


def test_csv_with_bps_sums_classes_of_a_pair(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ingress,egress,class,bps\na,b,gold,10\na,b,best-effort,5\nb,a,gold,7\n")
    assert _pairs(load_matrix(path)) == {("a", "b"): 15.0, ("b", "a"): 7.0}


def test_class_option_keeps_one_service_class(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ingress,egress,class,bps\na,b,gold,10\na,b,best-effort,5\n")
    assert _pairs(load_matrix(path, traffic_class="gold")) == {("a", "b"): 10.0}


def test_bytes_and_seconds_become_bits_per_second(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ingress,egress,bytes,seconds\na,b,3750000,300\n")
    assert _pairs(load_matrix(path)) == {("a", "b"): 100000.0}


def test_parquet_is_read_like_csv(tmp_path):
    path = tmp_path / "m.parquet"
    table = pa.table({"ingress": ["a", "b"], "egress": ["b", "a"], "bps": [1.5, 2.5]})
    pq.write_table(table, path)
    assert _pairs(load_matrix(path)) == {("a", "b"): 1.5, ("b", "a"): 2.5}


PERIODS = "period,ingress,egress,bps\np1,a,b,10\np1,b,a,1\np2,a,b,2\np2,b,a,30\np3,a,b,4\n"


@pytest.mark.parametrize(
    ("statistic", "expected", "period"),
    [
        ("busy-hour", {("a", "b"): 2.0, ("b", "a"): 30.0}, "p2"),
        ("peak", {("a", "b"): 10.0, ("b", "a"): 30.0}, ""),
        ("mean", {("a", "b"): 16 / 3, ("b", "a"): 31 / 3}, ""),
        # p95 over [2, 4, 10] and [0, 1, 30]: linear interpolation at rank 1.9
        ("p95", {("a", "b"): 4 + 0.9 * 6, ("b", "a"): 1 + 0.9 * 29}, ""),
    ],
)
def test_statistic_reduces_several_periods(tmp_path, statistic, expected, period):
    path = tmp_path / "m.csv"
    path.write_text(PERIODS)
    demands = load_matrix(path, statistic=statistic)
    assert _pairs(demands) == pytest.approx(expected)
    assert demands.period == period
    assert demands.statistic == statistic


def test_p95_matches_numpy_percentile_with_absent_periods_as_zero(tmp_path):
    rng = np.random.default_rng(3)
    rows = ["period,ingress,egress,bps"]
    values: dict[str, list[float]] = {"x": [], "y": []}
    for p in range(40):
        for pair in ("x", "y"):
            if rng.random() < 0.8:
                v = float(rng.uniform(0, 100))
                rows.append(f"{p},{pair},z,{v!r}")
                values[pair].append(v)
            else:
                values[pair].append(0.0)
    path = tmp_path / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    got = _pairs(load_matrix(path, statistic="p95"))
    for pair in ("x", "y"):
        assert got[(pair, "z")] == pytest.approx(np.percentile(values[pair], 95))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ingress,bps\na,1\n", "'ingress' and 'egress'"),
        ("ingress,egress\na,b\n", "'bps' column or 'bytes' with 'seconds'"),
        ("ingress,egress,bps\na,b,1\na,b,-4\n", "row 2: traffic -4.0 is negative"),
        ("ingress,egress,bytes,seconds\na,b,10,0\n", "row 1: seconds 0.0 is not > 0"),
    ],
)
def test_broken_matrix_names_file_and_row(tmp_path, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CapacityError) as info:
        load_matrix(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)


def test_unknown_statistic_is_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(PERIODS)
    with pytest.raises(CapacityError, match="unknown statistic"):
        load_matrix(path, statistic="median")  # type: ignore[arg-type]


def test_make_demands_of_nothing_is_empty():
    assert len(make_demands([], [], [])) == 0
