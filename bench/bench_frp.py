"""Records per CPU-second of one FRP pipeline and of pmacct's nfacctd on the same datagrams.

The synth ``tiny`` network (seed 1) and 20,000 generated flows give the flows
of one FRP's PEs (``frp-par``: par-pe1, par-pe2), exported as NetFlow v9 (an
IPv4 and an IPv6 template, 24 records a datagram, templates resent every 16
datagrams, sequence numbers advancing) from each PE's exporter address
(127.0.1.x, source id = the PE's) over loopback UDP:

* ours: :class:`~flowmatrix.flows.Collector` → :class:`~flowmatrix.frp.pipeline.Pipeline`
  with the network's native routing compiled once (egress resolution is real),
  ingress part files written (LZ4 Parquet, every ingress column) and, at the
  end, every period's partial matrix built and encoded as an upload;
* theirs: ``nfacctd`` (print plugin) aggregating by ``peer_src_ip, peer_dst_ip, tos``.

Both run on one core, the sender on the other, paced by the receiver's socket
queue so nothing is lost (checked: records, byte totals, kernel drops). CPU
comes from ``getrusage`` (our process) and ``/proc`` (nfacctd's processes).
Flow times are shifted to Saturday 2026-01-10 so each record falls in the
``always`` interval only (``--weekday`` keeps the generated Monday, where records
also fall in ``busy-hours`` and ``migration-check``: three ingress records each).

Run: ``.venv/bin/python bench/bench_frp.py [DATAGRAMS] [--weekday] [--inproc]``
(``--inproc`` skips sockets and nfacctd: decode + pipeline only, for profiling).
"""

from __future__ import annotations

import ipaddress
import multiprocessing as mp
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench_flows_nfacctd import (
    NFACCTD_TEMPLATE,
    _group_cpu,
    _settled,
    nfacctd_rows,
    nfacctd_running,
    udp_socket_state,
)
from flowmatrix.config.xml import read_config
from flowmatrix.flows import Collector, CollectorConfig, Decoder
from flowmatrix.flows.collector import allowed_exporters
from flowmatrix.flows.testing import data_set, v9_message, v9_template_set
from flowmatrix.frp.ingress import IngressFiles
from flowmatrix.frp.pipeline import Pipeline, PipelineConfig
from flowmatrix.matrix.partial import encode_partial
from flowmatrix.routing.native import read_native
from flowmatrix.routing.resolve import compile_state
from flowmatrix.schema import FlowBatch
from flowmatrix.synth import generate_network, generate_traffic, write_network

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
DATAGRAMS = int(ARGS[0]) if ARGS else 20_000
WEEKDAY = "--weekday" in sys.argv
INPROC = "--inproc" in sys.argv
FRP = "frp-par"
ROUNDS = 3
CHUNK = 256
QUEUE_LIMIT = 2 << 20
PER_DATAGRAM = 24
#: Monday 2026-01-05 → Saturday 2026-01-10
SHIFT_MS = 0 if WEEKDAY else 5 * 86_400_000
#: filler exporter (no PE of the network): nfacctd's tail, left out of its totals
FILLER = "127.0.0.250"
UPTIME = 3_000_000_000

V4 = [
    (8, 4),
    (12, 4),
    (1, 4),
    (2, 4),
    (10, 4),
    (14, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (5, 1),
    (22, 4),
    (21, 4),
]
V6 = [(27, 16), (28, 16), *V4[2:]]

NFACCTD_CONFIG = NFACCTD_TEMPLATE.replace("{aggregate}", "peer_src_ip, peer_dst_ip, tos")


def _records(flows: dict[str, np.ndarray], v6: bool, export_ms: int) -> bytes:
    """The flows as v9 data records (big-endian, in template order)."""
    n = len(flows["bytes"])
    addr = ">V16" if v6 else ">u4"
    dtype = np.dtype(
        [
            ("src", addr),
            ("dst", addr),
            ("bytes", ">u4"),
            ("packets", ">u4"),
            ("in_if", ">u4"),
            ("out_if", ">u4"),
            ("sport", ">u2"),
            ("dport", ">u2"),
            ("proto", "u1"),
            ("tos", "u1"),
            ("first", ">u4"),
            ("last", ">u4"),
        ]
    )
    rec = np.zeros(n, dtype=dtype)
    for name in ("src", "dst"):
        texts = flows[name].tolist()
        if v6:
            rec[name] = np.array(
                [ipaddress.IPv6Address(t).packed for t in texts], dtype="V16"
            )  # setup, not timed
        else:
            rec[name] = np.array([int(ipaddress.IPv4Address(t)) for t in texts], dtype=np.uint32)
    for ours, theirs in (
        ("bytes", "bytes"),
        ("packets", "packets"),
        ("in_if", "ingress_if_index"),
        ("sport", "src_port"),
        ("dport", "dst_port"),
        ("proto", "protocol"),
        ("tos", "tos"),
    ):
        rec[ours] = flows[theirs]
    rec["first"] = UPTIME - (export_ms - flows["first_ms"])
    rec["last"] = UPTIME - (export_ms - flows["last_ms"])
    return rec.tobytes()


def build_datagrams(network: Path, traffic: Path) -> tuple[list[tuple[bytes, str]], int, int]:
    """(datagram, exporter address) in send order, records and bytes they hold."""
    config = read_config(network / "network.xml")
    truth = pq.read_table(traffic / "truth" / "flows.parquet")
    out: list[tuple[bytes, str]] = []
    per_pe: dict[str, list[bytes]] = {}
    for pe in config.pes_of(FRP):
        exporter = pe.exporters[0]
        mine = truth.filter(
            np.asarray(truth.column("ingress_pe").to_numpy(zero_copy_only=False) == pe.name)
        )
        cols = {c: mine.column(c).to_numpy(zero_copy_only=False) for c in mine.column_names}
        cols["first_ms"] = cols["first_ms"] + SHIFT_MS
        cols["last_ms"] = cols["last_ms"] + SHIFT_MS
        export_ms = int(cols["last_ms"].max()) + 1000
        grams: list[bytes] = []
        seq = 0
        for v6, tid, fields in ((False, 256, V4), (True, 257, V6)):
            sel = cols["ip_version"] == (6 if v6 else 4)
            sub = {k: v[sel] for k, v in cols.items()}
            size = sum(length for _, length in fields)
            body = _records(sub, v6, export_ms)
            for k in range(0, len(sub["bytes"]), PER_DATAGRAM):
                sets = [data_set(tid, body[k * size : (k + PER_DATAGRAM) * size])]
                if (k // PER_DATAGRAM) % 16 == 0:
                    sets.insert(0, v9_template_set(tid, fields))
                grams.append(
                    v9_message(
                        sets,
                        uptime=UPTIME,
                        secs=export_ms // 1000,
                        sequence=seq,
                        source_id=exporter.source_id or 0,
                    )
                )
                seq += 1
        per_pe[str(exporter.address)] = grams
    # interleave the PEs, cycle to DATAGRAMS, advancing sequence numbers per exporter
    order = [(g, a) for a, grams in per_pe.items() for g in grams]
    records = bytes_ = 0
    decoder = Decoder()
    one = decoder.decode([(g, a, 0.0) for g, a in order])
    cycle_records, cycle_bytes = len(one), int(one["bytes"].sum())
    whole, part = divmod(DATAGRAMS, len(order))
    counters = {a: len(gs) for a, gs in per_pe.items()}
    for round_ in range(whole + 1):
        take = order if round_ < whole else order[:part]
        for g, a in take:
            if round_:
                # rewrite the sequence number (octets 12-15 of the v9 header)
                seq = counters[a]
                counters[a] += 1
                g = g[:12] + seq.to_bytes(4, "big") + g[16:]
            out.append((g, a))
    rest = decoder.decode([(g, a, 0.0) for g, a in order[:part]]) if part else FlowBatch.empty()
    records = whole * cycle_records + len(rest)
    bytes_ = whole * cycle_bytes + int(rest["bytes"].sum())
    return out, records, bytes_


def _send(port: int, datagrams: list[tuple[bytes, str]], core: int, go: Any) -> None:
    os.sched_setaffinity(0, {core})
    go.wait()
    socks: dict[str, socket.socket] = {}
    try:
        for i, (g, a) in enumerate(datagrams):
            if i % CHUNK == 0:
                while (state := udp_socket_state(port)) is not None and state[0] > QUEUE_LIMIT:
                    time.sleep(0.0005)
            s = socks.get(a)
            if s is None:
                s = socks[a] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((a, 0))
            s.sendto(g, ("127.0.0.1", port))
    finally:
        for s in socks.values():
            s.close()


class Sender:
    """A process on ``core`` holding the datagrams, sending them from their exporters'
    addresses once :meth:`go` is called (handing it the datagrams is not timed)."""

    def __init__(self, port: int, datagrams: list[tuple[bytes, str]], core: int) -> None:
        ctx = mp.get_context("forkserver")
        self._go = ctx.Event()
        self._process = ctx.Process(target=_send, args=(port, datagrams, core, self._go))
        self._process.start()

    def go(self) -> None:
        """Send every datagram; return when the last is sent."""
        self._go.set()
        self._process.join()


def send(port: int, datagrams: list[tuple[bytes, str]], core: int) -> None:
    """Send the datagrams from their exporters' addresses, from a process on ``core``."""
    Sender(port, datagrams, core).go()


def filler() -> list[tuple[bytes, str]]:
    """Tail datagrams from a non-PE exporter: nfacctd flushes plugin buffers only when full."""
    rec = np.zeros(24, dtype=[("a", ">u4"), ("b", ">u4"), ("c", ">u4"), ("d", ">u4")])
    rec["c"], rec["d"] = 1500, 1
    fields = [(8, 4), (12, 4), (1, 4), (2, 4)]
    sets = [v9_template_set(300, fields), data_set(300, rec.tobytes())]
    return [(v9_message(sets, source_id=4242, sequence=i), FILLER) for i in range(200)]


def nfacctd(datagrams: list[tuple[bytes, str]], core: int, other: int) -> tuple[float, int, int]:
    """nfacctd's CPU seconds, CSV bytes (filler excluded) and kernel drops for one run."""
    with nfacctd_running(NFACCTD_CONFIG, core) as (proc, port, out):
        sender = Sender(port, datagrams, other)
        _, drops_before = udp_socket_state(port) or (0, 0)
        before = _group_cpu(proc.pid)
        sender.go()
        _settled(lambda: _group_cpu(proc.pid), port)
        cpu = _group_cpu(proc.pid) - before
        _, drops = udp_socket_state(port) or (0, 0)
        send(port, filler(), other)
        _settled(lambda: _group_cpu(proc.pid), port)
        rows = nfacctd_rows(proc, out)
    octets = sum(int(r["BYTES"]) for r in rows if r["PEER_SRC_IP"] != FILLER)
    return cpu, octets, drops - drops_before


def _pipeline(network: Path, data: Path) -> tuple[Pipeline, Decoder]:
    view = read_config(network / "network.xml").view_for_frp(FRP)
    state = read_native(network, view, pes=[p.name for p in view.pes_of(FRP)])
    decoder = Decoder()
    pipeline = Pipeline(
        PipelineConfig(FRP, grace=0, settle=0),
        view=view,
        files=IngressFiles(data / "ingress"),
        state_path=data / "state.json",
        routing=compile_state(state),
        decoder=decoder,
    )
    pipeline.start()
    return pipeline, decoder


def _finish(pipeline: Pipeline) -> tuple[int, float]:
    """Flush part files, build and encode every period's upload: (uploads, bytes in partials)."""
    pipeline.flush()
    uploads = pipeline.due()  # the flows are from January: every period is due
    for u in uploads:
        encode_partial(u.table, u.meta)
    total = sum(
        float(pc.sum(u.table.column("bytes")).as_py() or 0)
        for u in uploads
        if u.interval == "always"
    )
    return len(uploads), total


def ours(network: Path, datagrams: list[tuple[bytes, str]], other: int) -> tuple[float, ...]:
    """CPU seconds, records, partial bytes (interval always), resolved share, kernel drops."""
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, decoder = _pipeline(network, Path(tmp))
        view = pipeline.view
        records = 0

        def sink(batch: FlowBatch) -> None:
            nonlocal records
            records += len(batch)
            pipeline.sink(batch)

        collector = Collector(
            CollectorConfig(listen=(("127.0.0.1", 0),), exporters=allowed_exporters(view, FRP)),
            sink=sink,
            decoder=decoder,
        )
        collector.start()
        try:
            port = collector.addresses[0][1]
            sender = Sender(port, datagrams, other)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            before = usage.ru_utime + usage.ru_stime

            def cpu() -> float:
                usage = resource.getrusage(resource.RUSAGE_SELF)
                return usage.ru_utime + usage.ru_stime - before

            sender.go()
            _settled(lambda: round(cpu(), 1), port)
        finally:
            collector.stop()
        _, total = _finish(pipeline)
        used = cpu()
        kernel = collector.stats.by_reason().get("kernel", 0)
        unresolved = sum(
            sum(v[0] for v in p.unresolved.values()) for p in pipeline.periods.values()
        )
        return used, records, total, unresolved, kernel


def inproc(network: Path, datagrams: list[tuple[bytes, str]]) -> None:
    """Decode + pipeline without sockets, with a profile: batches of 1,700 datagrams (about
    40,000 records, what the collector hands over in the socket runs)."""
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        pipeline, decoder = _pipeline(network, Path(tmp))
        tagged = [(g, a, 0.0) for g, a in datagrams]
        prof = cProfile.Profile()
        began = time.process_time()
        prof.enable()
        records = 0
        for k in range(0, len(tagged), 1700):
            batch = decoder.decode(tagged[k : k + 1700])
            records += len(batch)
            pipeline.sink(batch)
        _finish(pipeline)
        prof.disable()
        used = time.process_time() - began
        print(
            f"in process: {records} records, {used:.2f} CPU-s, {records / used / 1e6:.2f} M/CPU-s"
        )
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


def main() -> None:
    core = int(os.environ.get("FLOWMATRIX_BENCH_CORE", "0"))
    other = 1 - core if os.cpu_count() == 2 else (core + 1) % (os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        network, traffic = Path(tmp, "net"), Path(tmp, "traffic")
        write_network(generate_network("tiny", seed=1), network)
        generate_traffic(network, traffic, seed=1, flows=20_000)
        datagrams, sent, sent_bytes = build_datagrams(network, traffic)
        if INPROC:
            inproc(network, datagrams)
            return
        if not shutil.which("nfacctd"):
            print("needs nfacctd (pmacct)")
            return
        os.sched_setaffinity(0, {core})
        print(
            f"synth tiny seed 1, {FRP}: {len(datagrams)} v9 datagrams, {sent} records per run, "
            f"{'Monday (3 intervals)' if WEEKDAY else 'Saturday (interval always only)'}"
        )
        print(f"collectors on core {core}, sender on core {other}; CPU from getrusage and /proc")
        ours(network, datagrams[:64], other)  # warm up: imports, numpy, allocator
        their_runs, our_runs = [], []
        for _ in range(ROUNDS):
            their_runs.append(nfacctd(datagrams, core, other))
            our_runs.append(ours(network, datagrams, other))
        their_cpu = min(r[0] for r in their_runs)
        our_cpu = min(r[0] for r in our_runs)
        their_ok = all(r[1:] == (sent_bytes, 0) for r in their_runs)
        our_ok = all(r[1] == sent and round(r[2]) == sent_bytes and r[4] == 0 for r in our_runs)
        theirs_rate, ours_rate = sent / their_cpu, sent / our_cpu
        unresolved = our_runs[0][3] / max(sent_bytes, 1)
        print(
            f"nfacctd: {sent} records, {their_cpu:.2f} CPU-s, {theirs_rate / 1e6:.2f} M rec/CPU-s "
            f"({'no loss' if their_ok else 'LOSS'})"
        )
        print(
            f"FRP:     {sent} records, {our_cpu:.2f} CPU-s, {ours_rate / 1e6:.2f} M rec/CPU-s "
            f"({'no loss' if our_ok else 'LOSS'}; partial bytes = sent bytes; "
            f"{unresolved:.1%} of bytes unresolved)"
        )
        print(
            f"ratio {ours_rate / theirs_rate:.2f}x"
            f"{'' if ours_rate >= 2 * theirs_rate else '  (below target 2x)'}"
        )


if __name__ == "__main__":
    main()
