import numpy as np

from flowmatrix.matrix.plot import heatmap, pivot


def test_pivot_sums_values_of_each_pair_on_a_shared_axis():
    matrix, rows, cols = pivot(
        np.array(["pe1", "pe1", "pe2", "pe3"]),
        np.array(["pe2", "pe2", "pe1", "pe1"]),
        np.array([10, 5, 7, 1]),
    )
    assert rows == cols == ["pe1", "pe2", "pe3"]
    assert matrix.tolist() == [[0, 15, 0], [7, 0, 0], [1, 0, 0]]


def test_heatmap_writes_a_png(tmp_path):
    path = heatmap(
        np.array(["a", "b"]),
        np.array(["b", "a"]),
        np.array([1e6, 3e9]),
        tmp_path / "m.png",
        title="test",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 2000
