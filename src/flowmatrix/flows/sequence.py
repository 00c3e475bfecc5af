"""Export sequence numbers → gaps: what an exporter sent that never arrived, per domain.

A domain is (exporter address, export version, source id: v9 source id, IPFIX
observation domain, v5 ``engine_type << 8 | engine_id``). Each datagram's
header sequence number is compared, modulo 2**32, with what its domain's
previous datagram announced:

- v5: the flow sequence is the number of the datagram's first flow; the next
  datagram is expected at ``sequence + records`` (unit ``flows``);
- v9: the package sequence counts export packets; next = ``sequence + 1``
  (unit ``packets``);
- IPFIX: the sequence number counts the data records sent before the message
  (RFC 7011); next = ``sequence + records of every data set (id ≥ 256)``,
  options data records included, as pmacct counts (unit ``records``). When a
  data set's template is unknown its record count is unknown: the next message
  of the domain only resynchronises. **softflowd 1.1.0 numbers otherwise**: its
  sequence number counts the data records sent *including* the message's own,
  options records excluded (``sequence − own data records = previous
  sequence``). Both are checked; a domain follows the convention that last fitted
  alone (RFC first), and a gap is measured with it.

A difference ``d = (sequence − expected) mod 2**32`` of 0 is in order; below
2**31 it is a gap of ``d`` units; otherwise the datagram is late, a duplicate,
or the exporter restarted: a reorder, never a gap. Either way the expectation
moves on from this datagram. The first datagram of a domain only sets the
expectation — unless :meth:`SequenceTracker.restore` gave one (after a restart
of the process that keeps the decoder).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flowmatrix.flows.stats import DecodeStats

__all__ = [
    "MAX_PENDING_GAPS",
    "UNITS",
    "Mark",
    "SequenceGap",
    "SequenceTracker",
    "domain_key",
]

I64 = npt.NDArray[np.int64]
#: what a walker reads for sequence tracking from one datagram: (version, source id,
#: sequence number, units carried, IPFIX data records without options records, export
#: unix seconds); units -1 = unknown
Mark = tuple[int, int, int, int, int, int]

#: sequence numbers are 32-bit counters
MASK = 0xFFFF_FFFF
#: differences from here on (modulo 2**32) are "behind": reorder, duplicate or restart
BEHIND = 1 << 31
#: export version → the unit its sequence number counts
UNITS: dict[int, str] = {5: "flows", 9: "packets", 10: "records"}
#: gaps kept for :meth:`SequenceTracker.take` at most; beyond, gaps are only counted
MAX_PENDING_GAPS = 100_000


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Units an exporter sent in one domain that never arrived, seen at one datagram."""

    #: exporter address text
    exporter: str
    #: export version: 5, 9, 10
    version: int
    #: v9 source id, IPFIX observation domain, v5 engine type << 8 | engine id
    source_id: int
    #: units missing
    missing: int
    #: "flows" (v5), "packets" (v9), "records" (IPFIX)
    unit: str
    #: export time (unix seconds) in the header of the datagram that revealed the gap
    export_s: int


def domain_key(exporter: str, version: int, source_id: int) -> str:
    """The JSON-friendly text key of a domain: ``exporter|version|source_id``."""
    return f"{exporter}|{version}|{source_id}"


class SequenceTracker:
    """Sequence state per domain; gaps and reorders found on the way.

    >>> tracker = SequenceTracker(["192.0.2.1"], DecodeStats())
    >>> tracker.check(0, 9, 0, 7, 1, 1, 1_767_600_000)
    >>> tracker.check(0, 9, 0, 10, 1, 1, 1_767_600_001)
    >>> [(g.missing, g.unit) for g in tracker.take()], tracker.sequences()
    ([(2, 'packets')], {'192.0.2.1|9|0': 11})
    """

    def __init__(self, names: list[str], stats: DecodeStats) -> None:
        #: exporter index → address text (the decoder's list, shared)
        self.names = names
        self.stats = stats
        #: (exporter index, version, source id) → (last sequence, units it carried or -1,
        #: True when the domain numbers as softflowd's IPFIX does)
        self.state: dict[tuple[int, int, int], tuple[int, int, bool]] = {}
        #: text key → next expected sequence, for domains not seen since :meth:`restore`
        self.restored: dict[str, int] = {}
        self.gaps: list[SequenceGap] = []

    def _first(self, key: tuple[int, int, int]) -> tuple[int, int, bool] | None:
        """The state before a domain's first datagram: restored, else none."""
        if not self.restored:
            return None
        restored = self.restored.pop(domain_key(self.names[key[0]], key[1], key[2]), None)
        return None if restored is None else (restored, 0, False)

    def check(
        self,
        exporter: int,
        version: int,
        source: int,
        sequence: int,
        units: int,
        data: int,
        export_s: int,
    ) -> None:
        """Compare one datagram's sequence number with its domain's state; move it on.

        ``units``: what the datagram carries in its version's unit (records, 1
        packet); ``data``: IPFIX data records without options records; -1 when
        unknown.
        """
        key = (exporter, version, source)
        state = self.state.get(key)
        if state is None:
            state = self._first(key)
        after = False
        if state is not None:
            last, last_units, after = state
            rfc = (sequence - last - last_units) & MASK if last_units >= 0 else -1
            own = (sequence - data - last) & MASK if version == 10 and data >= 0 else -1
            if rfc == 0 or own == 0:
                if (rfc == 0) != (own == 0):
                    after = own == 0
            else:
                d = own if after else rfc
                if d >= BEHIND:
                    self.stats.reorder(self.names[exporter], 1)
                elif d > 0:
                    self._gap(exporter, version, source, d, export_s)
        self.state[key] = (sequence, units, after)

    def check_batch(
        self,
        exporters: I64,
        version: I64,
        source: I64,
        sequence: I64,
        units: I64,
        data: I64,
        export_s: I64,
    ) -> None:
        """:meth:`check` for many datagrams in stream order (``version`` 0: no sequence).

        Vectorized: a stable sort by domain puts each datagram after its
        domain's previous one; only the first and last datagram of each domain
        touch the per-domain state.
        """
        n = len(version)
        # order: the rows with a sequence, sorted by domain (stable); a slice when that is
        # every row in stream order (one domain, the usual case of one exporter per batch)
        order: slice | I64 = slice(None)
        packed = (exporters << 36) | (version << 32) | source
        if not version.all():
            rows = np.flatnonzero(version)
            if not len(rows):
                return
            order, packed = rows, packed[rows]
        m = len(packed)
        if packed[0] == packed[-1] and (packed == packed[0]).all():
            heads = np.zeros(1, dtype=np.int64)
            tails = np.array([m - 1], dtype=np.int64)
        else:
            by = np.argsort(packed, kind="stable")
            order = by if isinstance(order, slice) else order[by]
            packed = packed[by]
            change = np.flatnonzero(packed[1:] != packed[:-1]) + 1
            heads = np.concatenate(([0], change))
            tails = np.concatenate((change - 1, [m - 1]))
        seq, unit, own_units = sequence[order], units[order], data[order]
        # the previous datagram of each one's domain: the row before, or the state
        last = np.empty_like(seq)
        last[1:] = seq[:-1]
        last_units = np.empty_like(unit)
        last_units[1:] = unit[:-1]
        has_last = np.ones(m, dtype=np.bool_)
        initial = np.zeros(len(heads), dtype=np.bool_)
        for k, (head, key) in enumerate(zip(heads.tolist(), packed[heads].tolist(), strict=True)):
            domain = (key >> 36, (key >> 32) & 0xF, key & MASK)
            state = self.state.get(domain)
            if state is None:
                state = self._first(domain)
            if state is None:
                has_last[head] = False
                last[head], last_units[head] = 0, -1
            else:
                last[head], last_units[head], initial[k] = state
        rfc_ok = has_last & (last_units >= 0)
        rfc = (seq - last - last_units) & MASK
        keys = packed[heads].tolist()
        ipfix = version[order] == 10
        if ipfix.any():
            d, flags = self._conventions(
                ipfix, has_last, seq, own_units, last, rfc, rfc_ok, heads, tails, initial
            )
        else:
            d = np.where(rfc_ok, rfc, 0)
            flags = [False] * len(keys)
        for tail, key, flag in zip(tails.tolist(), keys, flags, strict=True):
            domain = (key >> 36, (key >> 32) & 0xF, key & MASK)
            self.state[domain] = (int(seq[tail]), int(unit[tail]), flag)
        behind = d >= BEHIND
        if behind.any():
            late = np.bincount(exporters[order][behind], minlength=len(self.names))
            for exp in np.flatnonzero(late).tolist():
                self.stats.reorder(self.names[exp], int(late[exp]))
            d[behind] = 0
        if d.any():
            # gaps in stream order, as check() finds them
            missing = np.zeros(n, dtype=np.int64)
            missing[order] = d
            for i in np.flatnonzero(missing).tolist():
                self._gap(
                    int(exporters[i]),
                    int(version[i]),
                    int(source[i]),
                    int(missing[i]),
                    int(export_s[i]),
                )

    @staticmethod
    def _conventions(
        ipfix: npt.NDArray[np.bool_],
        has_last: npt.NDArray[np.bool_],
        seq: I64,
        own_units: I64,
        last: I64,
        rfc: I64,
        rfc_ok: npt.NDArray[np.bool_],
        heads: I64,
        tails: I64,
        initial: npt.NDArray[np.bool_],
    ) -> tuple[I64, list[bool]]:
        """Differences to report per row and each domain's convention after its last row.

        Rows sorted by domain; ``initial`` is each domain's convention before the batch.
        """
        m = len(seq)
        own_ok = has_last & ipfix & (own_units >= 0)
        own = (seq - own_units - last) & MASK
        rfc_fits, own_fits = rfc_ok & (rfc == 0), own_ok & (own == 0)
        # the convention in force at each row: the last one that fitted alone before it in
        # its domain, else the domain's own
        alone = rfc_fits != own_fits
        latest = np.maximum.accumulate(np.where(alone, np.arange(m), -1))
        before = np.concatenate(([-1], latest[:-1]))
        sizes = np.diff(np.append(heads, m))
        after = np.where(
            before >= np.repeat(heads, sizes), own_fits[before], np.repeat(initial, sizes)
        )
        flags = np.where(alone[tails], own_fits[tails], after[tails]).tolist()
        d = np.where(after, own, rfc)
        d[~np.where(after, own_ok, rfc_ok) | rfc_fits | own_fits] = 0
        return d, flags

    def _gap(self, exporter: int, version: int, source: int, missing: int, export_s: int) -> None:
        name = self.names[exporter]
        unit = UNITS[version]
        self.stats.gap(name, missing, unit, f"version={version} source_id={source}")
        if len(self.gaps) < MAX_PENDING_GAPS:
            self.gaps.append(SequenceGap(name, version, source, missing, unit, export_s))

    def take(self) -> list[SequenceGap]:
        """The gaps found since the last call, oldest first; then none are kept."""
        gaps, self.gaps = self.gaps, []
        return gaps

    def sequences(self) -> dict[str, int]:
        """Next expected sequence per domain (text key), restored ones not yet seen included.

        For a domain numbered as softflowd's IPFIX, the last sequence number: the
        next message's number less its own data records.
        """
        out = dict(self.restored)
        for (exp, version, source), (last, units, after) in self.state.items():
            if after:
                out[domain_key(self.names[exp], version, source)] = last
            elif units >= 0:
                out[domain_key(self.names[exp], version, source)] = (last + units) & MASK
        return out

    def restore(self, state: Mapping[str, int]) -> None:
        """Expect each domain's next datagram at ``state[key]`` (keys as :meth:`sequences`)."""
        self.restored = {str(k): int(v) & MASK for k, v in state.items()}
        for key in list(self.state):
            exp, version, source = key
            if domain_key(self.names[exp], version, source) in self.restored:
                del self.state[key]
