"""Generate consistent VPN backbones and customer traffic with ground-truth matrices.

``generate_network(size, seed)`` draws a network (service nodes, PEs, VRFs with
both RD styles, mesh / hub-and-spoke / extranet route targets, multihomed and
internet customers); ``write_network`` writes its configuration XML, topology
and routing tables; ``generate_traffic`` writes one pcap per ingress PE and the
ground truth computed from where each destination lives. Formats are described
in ``docs/synth.md``.
"""

from flowmatrix.synth.files import read_network, read_table, write_network
from flowmatrix.synth.network import SIZES, SizeSpec, SynthNetwork, generate_network
from flowmatrix.synth.tables import RoutingTables, build_routing
from flowmatrix.synth.traffic import CASES, DEFAULT_START, TrafficSummary, generate_traffic

__all__ = [
    "CASES",
    "DEFAULT_START",
    "SIZES",
    "RoutingTables",
    "SizeSpec",
    "SynthNetwork",
    "TrafficSummary",
    "build_routing",
    "generate_network",
    "generate_traffic",
    "read_network",
    "read_table",
    "write_network",
]
