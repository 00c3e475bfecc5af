"""Draw traffic matrices as heatmap PNGs (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

__all__ = ["heatmap", "pivot"]


def pivot(
    ingress: np.ndarray, egress: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, list[str], list[str]]:
    """A dense matrix (rows = ingress, columns = egress) summing ``values`` per pair.

    >>> ingress, egress = np.array(["a", "a", "b"]), np.array(["b", "b", "a"])
    >>> m, rows, cols = pivot(ingress, egress, np.array([1, 2, 5]))
    >>> m.tolist(), rows, cols
    ([[0.0, 3.0], [5.0, 0.0]], ['a', 'b'], ['a', 'b'])
    """
    names, codes = np.unique(np.concatenate([ingress, egress]).astype(str), return_inverse=True)
    rows, cols = codes[: len(ingress)], codes[len(ingress) :]
    matrix = np.zeros((len(names), len(names)))
    np.add.at(matrix, (rows, cols), values.astype(float))
    labels = [str(n) for n in names]
    return matrix, labels, labels


def heatmap(
    ingress: np.ndarray,
    egress: np.ndarray,
    values: np.ndarray,
    path: Path,
    *,
    title: str,
    unit: str = "bytes",
) -> Path:
    """Write a log-scaled heatmap PNG of the matrix given as (ingress, egress, value) columns."""
    matrix, rows, cols = pivot(ingress, egress, values)
    size = max(4.0, min(0.28 * len(rows) + 2.5, 30.0))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    shown = np.ma.masked_less_equal(matrix, 0)
    positive = matrix[matrix > 0]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
    image = ax.imshow(shown, cmap="viridis", norm=norm, interpolation="nearest")
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel("egress")
    ax.set_ylabel("ingress")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=unit, shrink=0.8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
