"""Turn exporter datagrams into partial traffic matrices uploaded to the MG: the FRP role.

Components, wired by hand in :mod:`flowmatrix.frp.service`: the config client
(download with ETag, last good copy on disk), the collector (flows), the
pipeline (ingress records → Parquet part files → egress resolution →
per-period partial matrices) and the uploader (spool + ordered delivery).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name → module defining it (imported on first use: ``flowmatrix --help`` stays fast)
_WHERE = {
    "ConfigClient": "client",
    "ConfigClientConfig": "client",
    "FrpOptions": "service",
    "FrpService": "service",
    "IngressFiles": "ingress",
    "Pipeline": "pipeline",
    "PipelineConfig": "pipeline",
    "Upload": "pipeline",
    "Uploader": "uploader",
    "UploaderConfig": "uploader",
    "run": "service",
}

__all__ = [
    "ConfigClient",
    "ConfigClientConfig",
    "FrpOptions",
    "FrpService",
    "IngressFiles",
    "Pipeline",
    "PipelineConfig",
    "Upload",
    "Uploader",
    "UploaderConfig",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"flowmatrix.frp.{_WHERE[name]}"), name)
    msg = f"module 'flowmatrix.frp' has no attribute {name!r}"
    raise AttributeError(msg)
