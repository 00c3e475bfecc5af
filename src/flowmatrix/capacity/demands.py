"""Traffic matrix files (CSV, Parquet, SNDlib, REPETITA) → one demand per OD pair in bit/s.

A matrix file has columns ``ingress``, ``egress``, optionally ``class`` and
``period``, and either ``bps`` or ``bytes`` with ``seconds``. When a file
holds several periods (read-out periods of a measurement interval), one
statistic reduces them to a single matrix:

* ``busy-hour`` — the whole matrix of the period whose total is highest;
* ``peak`` — per OD pair, its highest value over the periods;
* ``p95`` — per OD pair, the 95th percentile (linear interpolation, a period
  without the pair counts as 0);
* ``mean`` — per OD pair, the mean over the periods (absent = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from flowmatrix.errors import CapacityError

__all__ = [
    "STATISTICS",
    "Demands",
    "Statistic",
    "load_matrix",
    "make_demands",
    "reduce_periods",
]

Statistic = Literal["busy-hour", "peak", "p95", "mean"]
#: the statistics ``--statistic`` accepts
STATISTICS: tuple[str, ...] = get_args(Statistic)


@dataclass(frozen=True)
class Demands:
    """Traffic demands, one row per (ingress, egress) pair, in bit/s."""

    ingress: npt.NDArray[np.str_]
    egress: npt.NDArray[np.str_]
    bps: npt.NDArray[np.float64]
    #: file the demands were read from
    source: str = "<memory>"
    #: how several periods were reduced ("" when the file had one period)
    statistic: str = ""
    #: the busy period's label when ``statistic == "busy-hour"``
    period: str = ""

    def __len__(self) -> int:
        return int(self.bps.shape[0])

    @property
    def total_bps(self) -> float:
        """Sum of all demands in bit/s."""
        return float(self.bps.sum())

    def scaled(self, factor: float) -> Demands:
        """These demands multiplied by ``factor`` (growth scenarios)."""
        return Demands(
            self.ingress, self.egress, self.bps * factor, self.source, self.statistic, self.period
        )


def make_demands(
    ingress: npt.ArrayLike,
    egress: npt.ArrayLike,
    bps: npt.ArrayLike,
    *,
    source: str = "<memory>",
    statistic: str = "",
    period: str = "",
) -> Demands:
    """Sum rows sharing an (ingress, egress) pair into :class:`Demands`.

    Examples
    --------
    >>> d = make_demands(["a", "a", "b"], ["b", "b", "a"], [1.0, 2.0, 5.0])
    >>> [(str(i), str(e), float(v)) for i, e, v in zip(d.ingress, d.egress, d.bps)]
    [('a', 'b', 3.0), ('b', 'a', 5.0)]
    """
    ing = np.asarray(ingress).astype(np.str_)
    egr = np.asarray(egress).astype(np.str_)
    values = np.asarray(bps, dtype=np.float64)
    if not (ing.shape == egr.shape == values.shape):
        msg = f"{source}: ingress, egress and bps differ in length"
        raise CapacityError(msg)
    names, codes = np.unique(np.concatenate([ing, egr]), return_inverse=True)
    n = len(names)
    pair = codes[: len(ing)].astype(np.int64) * n + codes[len(ing) :]
    uniq, inverse = np.unique(pair, return_inverse=True)
    summed = np.asarray(np.bincount(inverse, weights=values, minlength=len(uniq)), np.float64)
    return Demands(
        ingress=names[uniq // n] if n else ing[:0],
        egress=names[uniq % n] if n else egr[:0],
        bps=summed,
        source=source,
        statistic=statistic,
        period=period,
    )


def reduce_periods(
    ingress: npt.NDArray[np.str_],
    egress: npt.NDArray[np.str_],
    bps: npt.NDArray[np.float64],
    period: npt.NDArray[np.str_],
    statistic: Statistic,
    *,
    source: str = "<memory>",
) -> Demands:
    """Reduce rows of several periods to one matrix with ``statistic`` (see module doc)."""
    if statistic not in STATISTICS:
        msg = f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}"
        raise CapacityError(msg)
    labels, pcode = np.unique(period, return_inverse=True)
    n_periods = len(labels)
    if n_periods <= 1:
        return make_demands(
            ingress, egress, bps, source=source, period=str(labels[0]) if n_periods else ""
        )
    totals = np.bincount(pcode, weights=bps, minlength=n_periods)
    if statistic == "busy-hour":
        busy = int(np.argmax(totals))
        keep = pcode == busy
        return make_demands(
            ingress[keep],
            egress[keep],
            bps[keep],
            source=source,
            statistic=statistic,
            period=str(labels[busy]),
        )
    names, codes = np.unique(np.concatenate([ingress, egress]), return_inverse=True)
    n = len(names)
    pair = codes[: len(ingress)].astype(np.int64) * n + codes[len(ingress) :]
    pairs, pair_idx = np.unique(pair, return_inverse=True)
    n_pairs = len(pairs)
    # one value per (period, pair) first: several classes may share a pair
    keys, key_idx = np.unique(pcode.astype(np.int64) * n_pairs + pair_idx, return_inverse=True)
    values = np.asarray(np.bincount(key_idx, weights=bps, minlength=len(keys)), np.float64)
    idx = keys % n_pairs
    if statistic == "mean":
        out = np.asarray(np.bincount(idx, weights=values, minlength=n_pairs)) / n_periods
    elif statistic == "peak":
        out = np.zeros(n_pairs)
        np.maximum.at(out, idx, values)
    else:
        out = _grouped_percentile(idx, values, n_pairs, n_periods, 95.0)
    return Demands(names[pairs // n], names[pairs % n], out, source, statistic, "")


def _grouped_percentile(
    group: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    n_groups: int,
    n_periods: int,
    q: float,
) -> npt.NDArray[np.float64]:
    """Per group, the q-th percentile of its values padded with zeros to n_periods."""
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    count = np.bincount(g, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    zeros = n_periods - count
    pos = q / 100.0 * (n_periods - 1)
    lo, frac = math.floor(pos), pos - math.floor(pos)
    hi = min(lo + 1, n_periods - 1)

    def at(j: int) -> npt.NDArray[np.float64]:
        inner = j - zeros
        ok = inner >= 0
        out = np.zeros(n_groups)
        out[ok] = v[start[ok] + inner[ok]]
        return out

    return at(lo) * (1.0 - frac) + at(hi) * frac


def _column(table: object, name: str) -> npt.NDArray[np.generic] | None:
    names: list[str] = table.column_names  # type: ignore[attr-defined]
    if name not in names:
        return None
    column = table.column(name)  # type: ignore[attr-defined]
    return np.asarray(column.to_numpy(zero_copy_only=False))


def load_matrix(
    path: str | Path,
    *,
    statistic: Statistic = "busy-hour",
    traffic_class: str | None = None,
    node_names: list[str] | None = None,
) -> Demands:
    """Read a matrix file into :class:`Demands`, reducing several periods with ``statistic``.

    CSV and Parquet follow the SPEC's matrix format; ``.demands`` files are
    REPETITA demand lists (needing ``node_names``, the topology's routers in
    file order) and SNDlib files (``.txt`` native, ``.xml``) give their
    DEMANDS section. Raises :class:`CapacityError` naming file and row.
    """
    from flowmatrix.capacity import formats

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".demands", ".txt", ".xml", ".sndlib"):
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            msg = f"{p}: cannot read matrix: {exc.strerror}"
            raise CapacityError(msg) from None
        if suffix == ".demands":
            if node_names is None:
                msg = f"{p}: REPETITA demands need the topology's node names"
                raise CapacityError(msg)
            return formats.read_repetita_demands(text, node_names, source=str(p))
        if suffix == ".xml":
            return formats.read_sndlib_xml_demands(text, source=str(p))
        return formats.read_sndlib_demands(text, source=str(p))
    if suffix not in (".csv", ".parquet", ".pq"):
        msg = f"{p}: unknown matrix format {suffix!r} (expected .csv or .parquet)"
        raise CapacityError(msg)
    table = _read_table(p, suffix)
    ing = _column(table, "ingress")
    egr = _column(table, "egress")
    if ing is None or egr is None:
        msg = f"{p}: matrix needs columns 'ingress' and 'egress'"
        raise CapacityError(msg)
    bps = _column(table, "bps")
    if bps is None:
        volume = _column(table, "bytes")
        seconds = _column(table, "seconds")
        if volume is None or seconds is None:
            msg = f"{p}: matrix needs a 'bps' column or 'bytes' with 'seconds'"
            raise CapacityError(msg)
        sec = np.asarray(seconds, dtype=np.float64)
        bad = np.flatnonzero(~(sec > 0))
        if bad.size:
            msg = f"{p}: row {int(bad[0]) + 1}: seconds {sec[bad[0]]} is not > 0"
            raise CapacityError(msg)
        bps = np.asarray(volume, dtype=np.float64) * 8.0 / sec
    values = np.asarray(bps, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)))
    if bad.size:
        msg = f"{p}: row {int(bad[0]) + 1}: traffic {values[bad[0]]} is negative or not a number"
        raise CapacityError(msg)
    ing_s = ing.astype(np.str_)
    egr_s = egr.astype(np.str_)
    if traffic_class is not None:
        classes = _column(table, "class")
        if classes is None:
            msg = f"{p}: no 'class' column to select class {traffic_class!r} from"
            raise CapacityError(msg)
        keep = classes.astype(np.str_) == traffic_class
        ing_s, egr_s, values = ing_s[keep], egr_s[keep], values[keep]
        table_period = _column(table, "period")
        period = None if table_period is None else table_period.astype(np.str_)[keep]
    else:
        table_period = _column(table, "period")
        period = None if table_period is None else table_period.astype(np.str_)
    if period is None:
        return make_demands(ing_s, egr_s, values, source=str(p))
    return reduce_periods(ing_s, egr_s, values, period, statistic, source=str(p))


def _read_table(path: Path, suffix: str) -> object:
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    try:
        if suffix == ".csv":
            options = pa_csv.ConvertOptions(
                column_types={"ingress": pa.string(), "egress": pa.string(), "period": pa.string()}
            )
            return pa_csv.read_csv(path, convert_options=options)
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        msg = f"{path}: cannot read matrix: {exc}"
        raise CapacityError(msg) from None
