"""Turn exporter datagrams into partial traffic matrices uploaded to the MG: the FRP role.

Components, wired by hand in :mod:`flowmatrix.frp.service`: the config client
(download with ETag, last good copy on disk), the collector (flows), the
pipeline (ingress records → Parquet part files → egress resolution →
per-period partial matrices) and the uploader (spool + ordered delivery).
"""

from flowmatrix.frp.client import ConfigClient, ConfigClientConfig
from flowmatrix.frp.ingress import IngressFiles
from flowmatrix.frp.pipeline import Pipeline, PipelineConfig, Upload
from flowmatrix.frp.service import FrpOptions, FrpService, run
from flowmatrix.frp.uploader import Uploader, UploaderConfig

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
