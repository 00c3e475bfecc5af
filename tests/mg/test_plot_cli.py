"""`tm plot` against a real MG: heatmaps and OD time series as PNG and standalone HTML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flowmatrix.matrix.partial import MEDIA_TYPE, PartialMeta, encode_partial
from flowmatrix.mg.cli import tm_app
from flowmatrix.mg.service import MgService
from flowmatrix.mg.testing import partial_table

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"
P0 = 1_800_000_000_000
STEP = 300_000
runner = CliRunner()


def partial(rows: list[tuple[str, str, str, float]]) -> pa.Table:
    """A partial of (ingress, egress, class, bytes) rows; packets = bytes / 100."""
    return partial_table((a, b, c, v, v / 100) for a, b, c, v in rows)


@pytest.fixture(scope="module")
def mg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real MG holding three periods of frp-par and frp-lon partials."""
    tmp = tmp_path_factory.mktemp("mg")
    service = MgService(VALID, tmp / "mg.duckdb", port=0, issue_tokens=tmp, log_level="warning")
    service.start()
    url = f"http://127.0.0.1:{service.port}"
    try:
        for frp, rows in (
            ("frp-par", [("par-pe1", "lon-pe1", "BE", 1000.0), ("par-pe2", "lon-pe1", "EF", 10.0)]),
            ("frp-lon", [("lon-pe1", "par-pe1", "BE", 500.0)]),
        ):
            token = (tmp / f"{frp}.token").read_text().strip()
            for k in range(3):
                start = P0 + k * STEP
                scaled = [(a, b, c, v * (k + 1)) for a, b, c, v in rows]
                meta = PartialMeta(
                    frp=frp, interval="always", period_start_ms=start, period_end_ms=start + STEP
                )
                r = httpx.put(
                    f"{url}/api/v1/partials/{frp}/always/{start}",
                    content=encode_partial(partial(scaled), meta),
                    headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {token}"},
                    timeout=20,
                )
                assert r.status_code == 200, r.text
        yield url, tmp / "operator.token"
    finally:
        service.stop()


def plot(mg: tuple[str, Path], *args: str) -> str:
    url, token = mg
    result = runner.invoke(tm_app, ["plot", "--mg", url, "--token-file", str(token), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_heatmap_png_and_html(mg: tuple[str, Path], tmp_path: Path) -> None:
    said = plot(mg, "--output", str(tmp_path / "m.png"))
    assert "3 elements, status complete" in said
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot(mg, "--output", str(tmp_path / "m.html"), "--period", str(P0 + STEP))
    page = (tmp_path / "m.html").read_text()
    assert "<script" in page
    # the second period: par-pe1→lon-pe1 2000 bytes, lon-pe1→par-pe1 1000, par-pe2→lon-pe1 20
    for name in ("par-pe1", "par-pe2", "lon-pe1"):
        assert f'"{name}"' in page
    assert "2000.0" in page
    assert "1000.0" in page
    assert "20.0" in page


def test_od_time_series_png_and_html(mg: tuple[str, Path], tmp_path: Path) -> None:
    said = plot(
        mg, "--ingress", "par-pe1", "--egress", "lon-pe1", "--output", str(tmp_path / "s.html")
    )
    assert "3 periods" in said
    page = (tmp_path / "s.html").read_text()
    assert "par-pe1 \\u2192 lon-pe1" in page  # the title, JSON-escaped
    assert "[1000.0,2000.0,3000.0]" in page.replace(" ", "")  # bytes per period
    assert "p95" in page
    plot(mg, "--ingress", "PAR", "--egress", "LON", "--granularity", "pop_pop",
         "--output", str(tmp_path / "s.png"))  # fmt: skip
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_refuses_bad_options(mg: tuple[str, Path], tmp_path: Path) -> None:
    url, token = mg
    base = ["plot", "--mg", url, "--token-file", str(token)]
    for extra in (
        ["--output", str(tmp_path / "x.svg")],
        ["--output", str(tmp_path / "x.png"), "--value", "flows"],
        ["--output", str(tmp_path / "x.png"), "--ingress", "par-pe1"],
    ):
        assert runner.invoke(tm_app, [*base, *extra]).exit_code == 2
    nothing = runner.invoke(
        tm_app, [*base, "--output", str(tmp_path / "x.png"), "--period", str(P0 - STEP)]
    )
    assert nothing.exit_code == 1


def test_tables_never_cut_a_figure(mg: tuple[str, Path]) -> None:
    """In a narrow console the stats table grows wider instead of ending figures with '…'."""
    url, token = mg
    wide = runner.invoke(
        tm_app,
        ["stats", "--mg", url, "--token-file", str(token), "--class", "all"],
        env={"COLUMNS": "60"},
    )
    assert wide.exit_code == 0, wide.output
    assert "…" not in wide.output
    assert max(len(line) for line in wide.output.splitlines()) > 60
