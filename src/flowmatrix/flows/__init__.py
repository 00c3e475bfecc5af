"""Decode NetFlow v5/v9/IPFIX datagrams into FlowBatch columns.

::

    datagrams ──► Decoder.feed (per datagram: header, flowsets by length, templates)
              ──► Decoder.flush (per template: one np.frombuffer) ──► FlowBatch

:class:`Collector` is the only I/O: UDP sockets → batches of datagrams →
decoder → a sink. :func:`read_pcap` gives the export datagrams of a capture.
Export sequence numbers are followed per domain: :meth:`Decoder.take_gaps`
gives each :class:`SequenceGap` found (what an exporter sent that never arrived).
"""

from __future__ import annotations

from flowmatrix.flows.collector import Collector, CollectorConfig, allowed_exporters
from flowmatrix.flows.decoder import Datagram, Decoder, DomainState
from flowmatrix.flows.pcap import read_pcap, udp_datagrams
from flowmatrix.flows.sequence import SequenceGap
from flowmatrix.flows.stats import REASONS, DecodeStats

__all__ = [
    "REASONS",
    "Collector",
    "CollectorConfig",
    "Datagram",
    "DecodeStats",
    "Decoder",
    "DomainState",
    "SequenceGap",
    "allowed_exporters",
    "read_pcap",
    "udp_datagrams",
]
