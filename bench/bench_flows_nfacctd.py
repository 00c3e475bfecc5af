"""Records per CPU-second of our collector and of pmacct's nfacctd on the same datagrams.

softflowd 1.1.0's v9 and IPFIX exports of a synth pcap are sent over loopback
UDP, first to nfacctd 1.7.7 (print plugin, aggregate ``src_host, dst_host,
tos``, CSV at exit), then to our :class:`~flowmatrix.flows.Collector` with a
counting sink. Both collectors are pinned to the same core, the sender to the
other. The sender paces itself by the receiver's socket queue
(``/proc/net/udp``), so neither side loses a datagram; each run is checked:
our records and nfacctd's CSV byte and packet totals equal what was sent, and
the kernel dropped nothing on either socket. CPU is read from
``/proc/<pid>/stat`` (nfacctd's core and plugin processes) and
``getrusage`` (our whole process), not wall time: sender and collector share
the machine's two cores.

Run: ``.venv/bin/python bench/bench_flows_nfacctd.py [DATAGRAMS]``
(``FLOWMATRIX_BENCH_CORE`` picks the collectors' core; the sender takes the other). Each
collector runs three times per version, alternating; the least CPU of each is reported.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing as mp
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench_flows import softflowd_exports
from flowmatrix.flows import Collector, CollectorConfig, Decoder
from flowmatrix.flows.testing import data_set, pack_record, v9_message, v9_template_set
from flowmatrix.schema import FlowBatch

#: datagrams per run (the first argument when run as a script)
DATAGRAMS = 40_000
#: datagrams sent between two looks at the receiver's queue
CHUNK = 256
#: the sender waits while the receiver's queue holds more octets than this
QUEUE_LIMIT = 2 << 20
#: runs per collector and version; the least CPU of each is reported
ROUNDS = 3
TICK = os.sysconf("SC_CLK_TCK")

#: nfacctd aggregating by ``{aggregate}`` into a CSV at exit (``{out}``, ``{port}`` left to fill)
NFACCTD_TEMPLATE = """\
daemonize: false
plugins: print[p]
aggregate[p]: {aggregate}
print_output[p]: csv
print_output_file[p]: {out}
print_refresh_time[p]: 3600
plugin_pipe_size[p]: 268435456
plugin_buffer_size[p]: 65536
nfacctd_ip: 127.0.0.1
nfacctd_port: {port}
nfacctd_pipe_size: 134217728
"""
NFACCTD_CONFIG = NFACCTD_TEMPLATE.replace("{aggregate}", "src_host, dst_host, tos")


#: filler records' addresses: excluded from nfacctd's totals (see :func:`filler`)
FILLER_SRC, FILLER_DST = "192.0.2.1", "198.51.100.1"


def filler() -> list[bytes]:
    """v9 datagrams of a distinct exporter source id and addresses, sent after the measure.

    nfacctd's core hands records to its plugin in ``plugin_buffer_size`` chunks and
    does not flush a partial one on exit: without a tail behind them, the last few
    hundred measured records would be missing from the CSV.
    """
    fields = [(8, 4), (12, 4), (1, 4), (2, 4), (5, 1)]
    rec = pack_record(fields, {8: 0xC000_0201, 12: 0xC633_6401, 1: 1500, 2: 1})
    sets = [v9_template_set(300, fields), data_set(300, rec * 24)]
    return [v9_message(sets, source_id=4242, sequence=i) for i in range(200)]


def udp_socket_state(port: int) -> tuple[int, int] | None:
    """(receive queue octets, drops) of the IPv4 UDP socket bound to ``port``, from /proc."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        parts = line.split()
        if int(parts[1].split(":")[1], 16) == port:
            return int(parts[4].split(":")[1], 16), int(parts[-1])
    return None


def _send(port: int, datagrams: list[bytes], count: int, core: int) -> None:
    os.sched_setaffinity(0, {core})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(count):
            if i % CHUNK == 0:
                while (state := udp_socket_state(port)) is not None and state[0] > QUEUE_LIMIT:
                    time.sleep(0.0005)
            s.sendto(datagrams[i % len(datagrams)], ("127.0.0.1", port))


def send(port: int, datagrams: list[bytes], core: int) -> None:
    """Send ``DATAGRAMS`` datagrams (cycling through ``datagrams``) from a process on ``core``."""
    # not forked from this process: copy-on-write faults would be charged to our collector
    sender = mp.get_context("forkserver").Process(
        target=_send, args=(port, datagrams, DATAGRAMS, core)
    )
    sender.start()
    sender.join()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of every live process of a process group."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid pgrp … utime (14th field) stime (15th)
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def _settled(read: object, port: int) -> None:
    """Wait until the socket queue is empty and the CPU reading stops moving."""
    assert callable(read)
    last = -1.0
    while True:
        state = udp_socket_state(port)
        now = read()
        if state is not None and state[0] == 0 and now == last:
            return
        last = now
        time.sleep(0.3)


@contextlib.contextmanager
def nfacctd_running(config: str, core: int) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """nfacctd on ``core`` with ``config`` (``{out}``/``{port}`` filled): (process, port, CSV).

    Yields once its port is bound and its print plugin is ready; stops it on exit
    (SIGINT first: the print plugin writes its cache when it exits).
    """
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        out = Path(tmp, "out.csv")
        conf = Path(tmp, "nfacctd.conf")
        conf.write_text(config.format(out=out, port=port))
        proc = subprocess.Popen(
            ["nfacctd", "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {core}),
        )
        try:
            deadline = time.monotonic() + 10
            while udp_socket_state(port) is None:
                if time.monotonic() > deadline or proc.poll() is not None:
                    msg = "nfacctd did not bind its port"
                    raise RuntimeError(msg)
                time.sleep(0.05)
            time.sleep(1.0)  # the print plugin allocates its cache after the bind
            yield proc, port, out
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # the plugin process may outlive the core process for a moment
            for _ in range(50):
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.killpg(proc.pid, signal.SIGKILL)


def nfacctd_rows(proc: subprocess.Popen[bytes], out: Path) -> list[dict[str, str]]:
    """Stop nfacctd with SIGINT (its print plugin writes the CSV) and read the CSV rows."""
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    with out.open() as f:
        return list(csv.DictReader(f))


def nfacctd(datagrams: list[bytes], core: int, other: int) -> tuple[float, int, int, int]:
    """nfacctd's CPU seconds, CSV bytes and packets, and kernel drops for one run."""
    with nfacctd_running(NFACCTD_CONFIG, core) as (proc, port, out):
        _, drops_before = udp_socket_state(port) or (0, 0)
        before = _group_cpu(proc.pid)
        send(port, datagrams, other)
        _settled(lambda: _group_cpu(proc.pid), port)
        cpu = _group_cpu(proc.pid) - before
        _, drops = udp_socket_state(port) or (0, 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for dgram in filler():
                s.sendto(dgram, ("127.0.0.1", port))
        _settled(lambda: _group_cpu(proc.pid), port)
        rows = nfacctd_rows(proc, out)
    rows = [r for r in rows if r["SRC_IP"] != FILLER_SRC]
    octets = sum(int(r["BYTES"]) for r in rows)
    packets = sum(int(r["PACKETS"]) for r in rows)
    return cpu, octets, packets, drops - drops_before


def ours(datagrams: list[bytes], other: int) -> tuple[float, int, int, int, int]:
    """Our collector's CPU seconds, records, bytes, packets and kernel drops for one run."""
    records = octets = packets = 0
    lock = threading.Lock()

    def sink(batch: FlowBatch) -> None:
        nonlocal records, octets, packets
        with lock:
            records += len(batch)
            octets += int(batch["bytes"].sum())
            packets += int(batch["packets"].sum())

    collector = Collector(CollectorConfig(listen=(("127.0.0.1", 0),)), sink=sink)
    collector.start()
    try:
        port = collector.addresses[0][1]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        before = usage.ru_utime + usage.ru_stime

        def cpu() -> float:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime - before

        send(port, datagrams, other)
        _settled(lambda: round(cpu(), 1), port)
        used = cpu()
    finally:
        collector.stop()
    kernel = collector.stats.by_reason().get("kernel", 0)
    return used, records, octets, packets, kernel


def main() -> None:
    global DATAGRAMS
    if len(sys.argv) > 1:
        DATAGRAMS = int(sys.argv[1])
    if not (shutil.which("nfacctd") and shutil.which("softflowd")):
        print("needs nfacctd (pmacct) and softflowd")
        return
    core = int(os.environ.get("FLOWMATRIX_BENCH_CORE", "0"))
    other = 1 - core if os.cpu_count() == 2 else (core + 1) % (os.cpu_count() or 1)
    os.sched_setaffinity(0, {core})
    pcap, exports = softflowd_exports((9, 10))
    # warm our process up (imports, numpy, allocator), as a long-running collector is
    ours(exports[9][:16], other)
    print(f"softflowd -a replaying {pcap}; {DATAGRAMS} datagrams per run over loopback UDP")
    print(f"collectors on core {core}, sender on core {other}; CPU from /proc and getrusage")
    for version, datagrams in exports.items():
        truth = Decoder().decode([(d, "127.0.0.1", 0.0) for d in datagrams])
        whole, part = divmod(DATAGRAMS, len(datagrams))
        rest = Decoder().decode([(d, "127.0.0.1", 0.0) for d in datagrams[:part]])
        sent = whole * len(truth) + len(rest)
        sent_bytes = whole * int(truth["bytes"].sum()) + int(rest["bytes"].sum())
        sent_packets = whole * int(truth["packets"].sum()) + int(rest["packets"].sum())
        their_runs, our_runs = [], []
        for _ in range(ROUNDS):
            their_runs.append(nfacctd(datagrams, core, other))
            our_runs.append(ours(datagrams, other))
        # the best of the rounds for each: the machine may be shared
        their_cpu, their_bytes, _, their_drops = min(their_runs)
        our_cpu, records, *_, our_drops = min(our_runs)
        their_lossless = all(r[1:] == (sent_bytes, sent_packets, 0) for r in their_runs)
        our_lossless = all(r[1:] == (sent, sent_bytes, sent_packets, 0) for r in our_runs)
        their_ok, our_ok = their_lossless, our_lossless
        theirs_rate, ours_rate = sent / their_cpu, sent / our_cpu
        name = "IPFIX" if version == 10 else f"v{version}"
        print(
            f"{name:>5}: {sent} records sent; nfacctd {their_cpu:.2f} CPU-s = "
            f"{theirs_rate / 1e6:.2f} M rec/CPU-s ({'no loss' if their_ok else 'LOSS'}: "
            f"CSV bytes {their_bytes}/{sent_bytes}, drops {their_drops}); ours {our_cpu:.2f} "
            f"CPU-s = {ours_rate / 1e6:.2f} M rec/CPU-s ({'no loss' if our_ok else 'LOSS'}: "
            f"records {records}/{sent}, drops {our_drops}); ratio {ours_rate / theirs_rate:.1f}x"
            f"{'' if ours_rate >= 2 * theirs_rate else '  below target 2x'}"
        )


if __name__ == "__main__":
    main()
