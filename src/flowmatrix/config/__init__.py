"""Turn configuration XML into checked, typed models of the network, and back.

The MG holds the configuration; each FRP downloads its own view
(:meth:`NetworkConfig.view_for_frp`). Measurement intervals become vectorized
read-out period membership in :mod:`flowmatrix.config.schedule`.
"""

from flowmatrix.config.model import (
    AlarmRule,
    Exporter,
    ExternalNextHop,
    Frp,
    Interface,
    Interval,
    NetworkConfig,
    PeRouter,
    ServiceClass,
    ServiceNode,
    Slot,
    Source,
    check,
    merge,
    problems,
)
from flowmatrix.config.xml import (
    config_from_bytes,
    config_to_bytes,
    load_config,
    read_config,
    write_config,
)

__all__ = [
    "AlarmRule",
    "Exporter",
    "ExternalNextHop",
    "Frp",
    "Interface",
    "Interval",
    "NetworkConfig",
    "PeRouter",
    "ServiceClass",
    "ServiceNode",
    "Slot",
    "Source",
    "check",
    "config_from_bytes",
    "config_to_bytes",
    "load_config",
    "merge",
    "problems",
    "read_config",
    "write_config",
]
