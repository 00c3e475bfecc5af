"""Turn uploaded partial matrices into stored, summed total matrices served over HTTP.

The MG (matrix generator) role: :mod:`~flowmatrix.mg.app` is the FastAPI
application (configuration views, uploads, periods, totals),
:mod:`~flowmatrix.mg.auth` the bearer tokens, :mod:`~flowmatrix.mg.service`
the wiring of configuration, store and server, :mod:`~flowmatrix.mg.cli` the
``mg`` and ``tm`` commands. The logic lives in :mod:`flowmatrix.matrix`.
"""

from flowmatrix.mg.app import create_app
from flowmatrix.mg.service import MgService, serve

__all__ = ["MgService", "create_app", "serve"]
