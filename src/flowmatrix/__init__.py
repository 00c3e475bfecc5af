"""flowmatrix: measure the traffic matrix of an MPLS/IP VPN or IP backbone from NetFlow/IPFIX.

FRPs collect flow records from PE routers, resolve each flow's egress PE through
the VRF/RD and BGP tables, and upload partial matrices; the MG sums them into the
total matrix of each measurement interval and checks capacity.
"""

from flowmatrix.errors import ConfigError, FlowmatrixError

__version__ = "0.1.0"

__all__ = ["ConfigError", "FlowmatrixError", "__version__"]
