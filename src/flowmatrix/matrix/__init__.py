"""Turn partial matrices (ingress × egress bytes and packets) into totals, files and pictures.

:mod:`~flowmatrix.matrix.partial` is the wire form of a partial matrix (the
FRP's upload); :mod:`~flowmatrix.matrix.total` sums current partials into the
total matrix of read-out periods at a granularity (``pe_pe``, ``pop_pop``,
``if_pe``, ``vrf``) and says which periods are complete;
:mod:`~flowmatrix.matrix.store` keeps tokens, uploads and their versions in
DuckDB (the only SQL; import it from there, so FRPs need not load DuckDB);
:mod:`~flowmatrix.matrix.plot` draws heatmaps.
"""

from flowmatrix.matrix.plot import heatmap
from flowmatrix.matrix.total import (
    GRANULARITIES,
    PeriodStatus,
    Total,
    period_statuses,
    total_matrix,
)

__all__ = ["GRANULARITIES", "PeriodStatus", "Total", "heatmap", "period_statuses", "total_matrix"]
