"""Turn uploaded partial matrices into stored, summed total matrices served over HTTP.

The MG (matrix generator) role: :mod:`~flowmatrix.mg.app` is the FastAPI
application (configuration views, uploads, periods, totals),
:mod:`~flowmatrix.mg.auth` the bearer tokens, :mod:`~flowmatrix.mg.service`
the wiring of configuration, store and server, :mod:`~flowmatrix.mg.cli` the
``mg`` and ``tm`` commands. The logic lives in :mod:`flowmatrix.matrix`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name → module defining it (imported on first use: ``flowmatrix --help`` stays fast)
_WHERE = {"MgService": "service", "create_app": "app", "serve": "service"}

__all__ = ["MgService", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"flowmatrix.mg.{_WHERE[name]}"), name)
    msg = f"module 'flowmatrix.mg' has no attribute {name!r}"
    raise AttributeError(msg)
