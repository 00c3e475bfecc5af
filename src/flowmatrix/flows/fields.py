"""IANA information elements as data: element id → IANA name, abstract type, and its column.

Only elements that fill a :data:`flowmatrix.schema.FLOW_COLUMNS` column or that
the decoders read from options records are listed; any other element (and
every enterprise-specific one) is skipped by its length.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IE", "V5_TEMPLATE", "InformationElement"]


@dataclass(frozen=True, slots=True)
class InformationElement:
    """One IANA IPFIX information element (= NetFlow v9 field type below 128 and beyond)."""

    id: int
    name: str
    #: IANA abstract data type: unsigned, ipv4Address, ipv6Address, dateTime*, octetArray
    type: str
    #: what the decoder does with it: a column name, or a time / option role
    role: str


def _ie(id_: int, name: str, type_: str, role: str) -> tuple[int, InformationElement]:
    return id_, InformationElement(id_, name, type_, role)


#: the information elements flowmatrix reads, keyed by element id (enterprise 0)
IE: dict[int, InformationElement] = dict(
    [
        _ie(1, "octetDeltaCount", "unsigned64", "bytes"),
        _ie(2, "packetDeltaCount", "unsigned64", "packets"),
        _ie(4, "protocolIdentifier", "unsigned8", "protocol"),
        _ie(5, "ipClassOfService", "unsigned8", "tos"),
        _ie(7, "sourceTransportPort", "unsigned16", "src_port"),
        _ie(8, "sourceIPv4Address", "ipv4Address", "src"),
        _ie(9, "sourceIPv4PrefixLength", "unsigned8", "src_mask"),
        _ie(10, "ingressInterface", "unsigned32", "in_if"),
        _ie(11, "destinationTransportPort", "unsigned16", "dst_port"),
        _ie(12, "destinationIPv4Address", "ipv4Address", "dst"),
        _ie(13, "destinationIPv4PrefixLength", "unsigned8", "dst_mask"),
        _ie(14, "egressInterface", "unsigned32", "out_if"),
        _ie(15, "ipNextHopIPv4Address", "ipv4Address", "ip_next_hop"),
        _ie(18, "bgpNextHopIPv4Address", "ipv4Address", "bgp_next_hop"),
        _ie(21, "flowEndSysUpTime", "unsigned32", "end_uptime"),
        _ie(22, "flowStartSysUpTime", "unsigned32", "start_uptime"),
        _ie(23, "postOctetDeltaCount", "unsigned64", "bytes_post"),
        _ie(24, "postPacketDeltaCount", "unsigned64", "packets_post"),
        _ie(27, "sourceIPv6Address", "ipv6Address", "src"),
        _ie(28, "destinationIPv6Address", "ipv6Address", "dst"),
        _ie(29, "sourceIPv6PrefixLength", "unsigned8", "src_mask"),
        _ie(30, "destinationIPv6PrefixLength", "unsigned8", "dst_mask"),
        _ie(34, "samplingInterval", "unsigned32", "sampling_interval"),
        _ie(35, "samplingAlgorithm", "unsigned8", "sampling_algorithm"),
        _ie(48, "samplerId", "unsigned8", "sampler_id"),
        _ie(49, "samplerMode", "unsigned8", "sampler_mode"),
        _ie(50, "samplerRandomInterval", "unsigned32", "sampler_interval"),
        _ie(60, "ipVersion", "unsigned8", "ip_version"),
        _ie(61, "flowDirection", "unsigned8", "direction"),
        _ie(62, "ipNextHopIPv6Address", "ipv6Address", "ip_next_hop"),
        _ie(63, "bgpNextHopIPv6Address", "ipv6Address", "bgp_next_hop"),
        _ie(70, "mplsTopLabelStackSection", "octetArray", "mpls_label_1"),
        _ie(85, "octetTotalCount", "unsigned64", "bytes_total"),
        _ie(86, "packetTotalCount", "unsigned64", "packets_total"),
        _ie(150, "flowStartSeconds", "dateTimeSeconds", "start_s"),
        _ie(151, "flowEndSeconds", "dateTimeSeconds", "end_s"),
        _ie(152, "flowStartMilliseconds", "dateTimeMilliseconds", "start_ms"),
        _ie(153, "flowEndMilliseconds", "dateTimeMilliseconds", "end_ms"),
        _ie(154, "flowStartMicroseconds", "dateTimeMicroseconds", "start_ntp"),
        _ie(155, "flowEndMicroseconds", "dateTimeMicroseconds", "end_ntp"),
        _ie(156, "flowStartNanoseconds", "dateTimeNanoseconds", "start_ntp"),
        _ie(157, "flowEndNanoseconds", "dateTimeNanoseconds", "end_ntp"),
        _ie(160, "systemInitTimeMilliseconds", "dateTimeMilliseconds", "system_init_ms"),
        _ie(210, "paddingOctets", "octetArray", "padding"),
        _ie(234, "ingressVRFID", "unsigned32", "ingress_vrf_id"),
        _ie(235, "egressVRFID", "unsigned32", "egress_vrf_id"),
        _ie(305, "samplingPacketInterval", "unsigned32", "sampling_packet_interval"),
        _ie(306, "samplingPacketSpace", "unsigned32", "sampling_packet_space"),
    ]
)

#: the fixed NetFlow v5 record (48 octets) as a template of (element id, length);
#: element 0 marks octets the decoder skips (pad1, TCP flags, AS numbers, pad2)
V5_TEMPLATE: tuple[tuple[int, int], ...] = (
    (8, 4),  # srcaddr
    (12, 4),  # dstaddr
    (15, 4),  # nexthop
    (10, 2),  # input
    (14, 2),  # output
    (2, 4),  # dPkts
    (1, 4),  # dOctets
    (22, 4),  # First (sysUptime ms)
    (21, 4),  # Last (sysUptime ms)
    (7, 2),  # srcport
    (11, 2),  # dstport
    (0, 2),  # pad1, tcp_flags
    (4, 1),  # prot
    (5, 1),  # tos
    (0, 4),  # src_as, dst_as
    (9, 1),  # src_mask
    (13, 1),  # dst_mask
    (0, 2),  # pad2
)
