"""Draw traffic matrices and element time series: PNG (matplotlib) or standalone HTML (plotly).

The HTML files carry plotly's JavaScript inline, so they open offline and can
be mailed as they are; PNGs need no display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

__all__ = ["heatmap", "heatmap_html", "pivot", "series", "series_html"]


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


def heatmap_html(
    ingress: np.ndarray,
    egress: np.ndarray,
    values: np.ndarray,
    path: Path,
    *,
    title: str,
    unit: str = "bytes",
) -> Path:
    """Write a standalone HTML heatmap (log colour scale; hovering shows the exact value)."""
    import plotly.graph_objects as go

    matrix, rows, cols = pivot(ingress, egress, values)
    shown = np.log10(np.where(matrix > 0, matrix, 1.0))
    # plain lists: the page then holds the numbers as JSON text (numpy arrays go in as base64)
    figure = go.Figure(
        go.Heatmap(
            z=[
                [v if m > 0 else None for v, m in zip(r, mr, strict=True)]
                for r, mr in zip(shown.tolist(), matrix.tolist(), strict=True)
            ],
            x=cols,
            y=rows,
            customdata=matrix.tolist(),
            colorscale="Viridis",
            colorbar={"title": f"log10 {unit}"},
            hovertemplate=f"%{{y}} → %{{x}}<br>%{{customdata:,.0f}} {unit}<extra></extra>",
        )
    )
    size = max(500, min(18 * len(rows) + 200, 2400))
    figure.update_layout(
        title=title,
        xaxis={"title": "egress", "type": "category"},
        yaxis={"title": "ingress", "type": "category", "autorange": "reversed"},
        width=size + 150,
        height=size,
    )
    return _write_html(figure, path)


def _write_html(figure: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(path, include_plotlyjs=True, full_html=True)  # type: ignore[attr-defined]
    return path


def _times(starts_ms: np.ndarray) -> np.ndarray:
    return np.asarray(starts_ms, dtype="datetime64[ms]")


def series(
    starts_ms: np.ndarray,
    values: np.ndarray,
    path: Path,
    *,
    title: str,
    unit: str = "bytes",
    forecast: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write a PNG of one element's values per read-out period, with its mean and p95.

    ``forecast`` = (period starts, values) is drawn dashed after the history.
    """
    values = np.asarray(values, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    times = _times(starts_ms)
    ax.plot(times, values, drawstyle="steps-post", label=unit)
    if values.size:
        ax.axhline(float(values.mean()), color="grey", linestyle=":", label="mean")
        p95 = float(np.percentile(values, 95))
        ax.axhline(p95, color="red", linestyle="--", label="p95")
    if forecast is not None:
        ax.plot(_times(forecast[0]), forecast[1], "--", color="purple", label="forecast")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def series_html(
    starts_ms: np.ndarray,
    values: np.ndarray,
    path: Path,
    *,
    title: str,
    unit: str = "bytes",
    forecast: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write one element's series (with mean, p95 and an optional forecast) as HTML."""
    import plotly.graph_objects as go

    values = np.asarray(values, dtype=np.float64)
    times = _times(starts_ms)
    figure = go.Figure(
        go.Scatter(x=times, y=values.tolist(), mode="lines", line_shape="hv", name=unit)
    )
    if values.size:
        figure.add_hline(y=float(values.mean()), line_dash="dot", annotation_text="mean")
        figure.add_hline(
            y=float(np.percentile(values, 95)),
            line_dash="dash",
            line_color="red",
            annotation_text="p95",
        )
    if forecast is not None:
        figure.add_trace(
            go.Scatter(
                x=_times(forecast[0]),
                y=np.asarray(forecast[1], dtype=np.float64).tolist(),
                mode="lines",
                name="forecast",
                line={"dash": "dash"},
            )
        )
    figure.update_layout(title=title, yaxis={"title": unit}, height=450)
    return _write_html(figure, path)
