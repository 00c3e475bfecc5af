"""Decode counters: records, drops per reason and exporter, template misses, sequence gaps.

The Prometheus counters live here, beside the stage; :class:`DecodeStats`
keeps the same figures per exporter for one decoder so that tests and the
CLI can read them without a registry. Expected failures are logged at a
limited rate, never raised per datagram.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from dataclasses import dataclass, field

from prometheus_client import Counter

__all__ = [
    "DATAGRAMS_DROPPED",
    "DATAGRAMS_RECEIVED",
    "FLOWS_DECODED",
    "REASONS",
    "SEQUENCE_MISSING",
    "SEQUENCE_REORDERS",
    "TEMPLATE_MISSES",
    "DecodeStats",
]

log = logging.getLogger("flowmatrix.flows")

#: flow records decoded into batches
FLOWS_DECODED = Counter("flows_decoded_total", "Flow records decoded into batches.")
#: export datagrams that reached the decoder (from admitted exporters)
DATAGRAMS_RECEIVED = Counter(
    "datagrams_received_total", "Export datagrams from admitted exporters that reached the decoder."
)
#: datagrams (or parts of them) dropped, by reason
DATAGRAMS_DROPPED = Counter(
    "datagrams_dropped_total", "Export datagrams or flowsets dropped, by reason.", ["reason"]
)
#: data flowsets that arrived before their template
TEMPLATE_MISSES = Counter(
    "template_misses_total", "Data flowsets that arrived before their template."
)
#: units (flows, packets, records) exporters numbered but never delivered, by unit
SEQUENCE_MISSING = Counter(
    "flow_sequence_missing_total",
    "Flows (v5), packets (v9) or records (IPFIX) missing from export sequence numbers.",
    ["unit"],
)
#: datagrams whose sequence number was behind the expected one (late, duplicate, restart)
SEQUENCE_REORDERS = Counter(
    "flow_sequence_reorders_total",
    "Export datagrams whose sequence number was behind the expected one.",
)

#: every drop reason, with what it means
REASONS: dict[str, str] = {
    "short": "datagram shorter than its header",
    "version": "version is not 5, 9 or 10",
    "length": "IPFIX header length disagrees with the datagram, or v5 count with its length",
    "set_length": "a flowset length is below 4 or runs past the datagram",
    "template": "a template or options template record is malformed",
    "record": "a variable-length record runs past its set, or a template has no octets",
    "template_expired": "data held for a missing template expired or overflowed the hold",
    "unknown_exporter": "the exporter is not in the configuration",
    "kernel": "the kernel dropped datagrams: receive buffer full",
}


@dataclass
class DecodeStats:
    """Counters of one decoder (and its collector), per exporter."""

    #: records decoded, per exporter address text
    records: Tally[str] = field(default_factory=Tally)
    #: datagrams seen, per exporter
    datagrams: Tally[str] = field(default_factory=Tally)
    #: drops, per (exporter, reason)
    dropped: Tally[tuple[str, str]] = field(default_factory=Tally)
    #: data flowsets that arrived before their template, per exporter
    template_misses: Tally[str] = field(default_factory=Tally)
    #: units missing from export sequence numbers, per exporter
    gaps: Tally[str] = field(default_factory=Tally)
    #: datagrams behind their domain's sequence (late, duplicate, restart), per exporter
    reorders: Tally[str] = field(default_factory=Tally)
    #: reason → unix time of its last log line (rate limit)
    _logged: dict[str, float] = field(default_factory=dict, repr=False)
    #: at most one log line per reason in this many seconds
    log_interval: float = 10.0

    def drop(self, exporter: str, reason: str, detail: str = "", count: int = 1) -> None:
        """Count ``count`` drops for ``reason`` and log it at a limited rate."""
        self.dropped[exporter, reason] += count
        DATAGRAMS_DROPPED.labels(reason).inc(count)
        now = time.monotonic()
        if now - self._logged.get(reason, -1e9) >= self.log_interval:
            self._logged[reason] = now
            log.warning(
                "component=flows reason=%s exporter=%s %s (total %d)",
                reason,
                exporter,
                detail,
                self.dropped_total(reason),
            )

    def gap(self, exporter: str, missing: int, unit: str, detail: str = "") -> None:
        """Count ``missing`` units of a sequence gap and log it at a limited rate."""
        self.gaps[exporter] += missing
        SEQUENCE_MISSING.labels(unit).inc(missing)
        now = time.monotonic()
        if now - self._logged.get("sequence_gap", -1e9) >= self.log_interval:
            self._logged["sequence_gap"] = now
            log.warning(
                "component=flows event=sequence_gap exporter=%s %s missing=%d unit=%s (total %d)",
                exporter,
                detail,
                missing,
                unit,
                sum(self.gaps.values()),
            )

    def reorder(self, exporter: str, count: int = 1) -> None:
        """Count ``count`` datagrams behind their sequence and log it at a limited rate."""
        self.reorders[exporter] += count
        SEQUENCE_REORDERS.inc(count)
        now = time.monotonic()
        if now - self._logged.get("sequence_reorder", -1e9) >= self.log_interval:
            self._logged["sequence_reorder"] = now
            log.info(
                "component=flows event=sequence_reorder exporter=%s datagrams=%d (total %d)",
                exporter,
                count,
                sum(self.reorders.values()),
            )

    def miss(self, exporter: str) -> None:
        """Count a data flowset held for a template not yet seen."""
        self.template_misses[exporter] += 1
        TEMPLATE_MISSES.inc()

    def decoded(self, exporter: str, n: int) -> None:
        """Count ``n`` records decoded for ``exporter``."""
        self.records[exporter] += n

    def dropped_total(self, reason: str | None = None) -> int:
        """Drops summed over exporters, for one reason or all."""
        return sum(v for (_, r), v in self.dropped.items() if reason is None or r == reason)

    def by_reason(self) -> dict[str, int]:
        """Drops summed over exporters, per reason."""
        out: Tally[str] = Tally()
        for (_, reason), v in self.dropped.items():
            out[reason] += v
        return dict(out)
