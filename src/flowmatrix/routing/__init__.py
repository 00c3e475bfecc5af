"""Load RD and BGP tables per PE, time-versioned, and resolve each flow's egress PE by LPM in its VRF.

``read_native`` reads a network's routing directory into a
:class:`RoutingState` (every table version per PE and of the route
reflector); ``resolve_egress`` turns plain flow columns (ingress PE, input
ifIndex, destination, start time) into a :class:`Resolution` (egress PE,
service node, VRF, RD, reason, multipath share); ``explain`` says why one
destination leaves where it does. :class:`Lpm` is the vectorized
longest-prefix match underneath. ``read_gobgp_json`` reads a gobgpd JSON RIB
dump, ``read_mrt`` an MRT TABLE_DUMP_V2 file (VPNv4/VPNv6 included),
``read_cli_rd_table`` / ``read_cli_bgp_vpn`` Cisco IOS and IOS-XR CLI captures.
Live routing: :class:`BmpServer` accepts BMP sessions, :class:`BmpSession`
decodes them, :class:`LiveRouting` keeps what they report as time-versioned
route reflector tables (``write_snapshot`` / ``read_snapshot``, ``write_mrt``).
"""  # noqa: E501

from flowmatrix.routing.bmp import BmpSession, BmpSessionError
from flowmatrix.routing.bmp_server import BmpServer, BmpServerConfig
from flowmatrix.routing.cli_text import read_cli_bgp_vpn, read_cli_if_index, read_cli_rd_table
from flowmatrix.routing.gobgp import read_gobgp_json
from flowmatrix.routing.live import LiveConfig, LiveRouting, read_snapshot, write_snapshot
from flowmatrix.routing.lpm import Lpm
from flowmatrix.routing.mrt import read_mrt, write_mrt
from flowmatrix.routing.native import read_native, validate_native
from flowmatrix.routing.resolve import (
    REASONS,
    UNRESOLVED,
    Explanation,
    PeSummary,
    Resolution,
    egress_unresolved_total,
    explain,
    resolve_egress,
    summarize,
)
from flowmatrix.routing.tables import (
    BgpTable,
    ConnectedTable,
    PeTables,
    RdTable,
    RoutingState,
    RrTables,
)

__all__ = [
    "REASONS",
    "UNRESOLVED",
    "BgpTable",
    "BmpServer",
    "BmpServerConfig",
    "BmpSession",
    "BmpSessionError",
    "ConnectedTable",
    "Explanation",
    "LiveConfig",
    "LiveRouting",
    "Lpm",
    "PeSummary",
    "PeTables",
    "RdTable",
    "Resolution",
    "RoutingState",
    "RrTables",
    "egress_unresolved_total",
    "explain",
    "read_cli_bgp_vpn",
    "read_cli_if_index",
    "read_cli_rd_table",
    "read_gobgp_json",
    "read_mrt",
    "read_native",
    "read_snapshot",
    "resolve_egress",
    "summarize",
    "validate_native",
    "write_mrt",
    "write_snapshot",
]
