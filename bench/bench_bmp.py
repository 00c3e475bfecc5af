"""BMP ingest of 1 M VPNv4 routes replayed over TCP; bulk withdrawal of a 500 k-route peer.

A recorded BMP stream (Initiation, two Peer Ups, post-policy Route
Monitoring of a route reflector's Adj-RIB-In from two PEs, 500 k VPNv4
routes each, ``--per-update`` NLRI per UPDATE sharing one VRF's attributes)
is written once, then replayed over loopback TCP by a child process into:

1. our :class:`BmpServer` + :class:`LiveRouting` (one session thread, the
   decode is one numpy batch per read): wall time until every route is
   applied, CPU seconds of this process (the sender is another process),
   the time to build the route reflector view (compaction + tables), RSS
   per route; then the sender sends a Peer Down for the first PE and we time
   the bulk withdrawal and the next view;
2. pmacct's ``pmbmpd`` (when installed), fed the same bytes the same way:
   its CPU seconds until it goes idle (it reports nothing when done), and
   the same for the Peer Down.

Targets: ingest at least as fast as pmbmpd; withdrawal of 500 k routes < 1 s.

Run: ``.venv/bin/python bench/bench_bmp.py [--routes 1000000] [--per-update 64]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from flowmatrix.config.model import NetworkConfig
from flowmatrix.routing.bgp import rd_value
from flowmatrix.routing.bmp_server import BmpServer, BmpServerConfig
from flowmatrix.routing.live import LiveConfig, LiveRouting
from flowmatrix.routing.testing import (
    bmp_initiation,
    bmp_message,
    bmp_peer_down,
    bmp_peer_header,
    bmp_peer_up,
    network,
)

TARGET_WITHDRAW_S = 1.0
PEERS = ("192.0.2.1", "192.0.2.2")
_RT_HEAD = bytes([0xC0, 16])


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _nlri_rows(n: int, seed: int, vrfs: int) -> tuple[list[bytes], np.ndarray]:
    """``n`` VPNv4 NLRI (label, RD of their VRF, prefixes /16–/32) and each one's VRF."""
    rng = np.random.default_rng(seed)
    vrf = np.sort(rng.integers(0, vrfs, n))
    length = rng.choice(np.array([16, 20, 22, 24, 24, 24, 28, 32]), n)
    addr = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    addr &= ~((np.uint64(1) << (np.uint64(32) - length.astype(np.uint64))) - np.uint64(1))
    nbytes = (length + 7) // 8
    rows = np.zeros((n, 16), dtype=np.uint8)
    rows[:, 0] = 88 + length
    label = (rng.integers(16, 1 << 20, n).astype(np.uint64) << np.uint64(4)) | np.uint64(1)
    for k in range(3):
        rows[:, 1 + k] = (label >> np.uint64(16 - 8 * k)) & np.uint64(0xFF)
    rd = np.array([rd_value(f"65000:{v}") for v in range(vrfs)], dtype=np.uint64)[vrf]
    for k in range(8):
        rows[:, 4 + k] = (rd >> np.uint64(56 - 8 * k)) & np.uint64(0xFF)
    for k in range(4):
        rows[:, 12 + k] = np.where(k < nbytes, (addr >> np.uint64(24 - 8 * k)) & np.uint64(0xFF), 0)
    size = 12 + nbytes
    flat = rows.tobytes()
    out = [flat[16 * i : 16 * i + int(s)] for i, s in enumerate(size.tolist())]
    return out, vrf


def _update(nlri: list[bytes], vrf: int, next_hop: bytes) -> bytes:
    rt = b"\x00\x02" + (65000).to_bytes(2, "big") + vrf.to_bytes(4, "big")
    mp = b"\x00\x01\x80\x0c" + bytes(8) + next_hop + b"\x00" + b"".join(nlri)
    attrs = (
        b"\x40\x01\x01\x00"  # ORIGIN IGP
        + b"\x40\x02\x00"  # AS_PATH empty (iBGP)
        + b"\x40\x05\x04"
        + (100 + vrf % 3).to_bytes(4, "big")
        + _RT_HEAD
        + bytes([len(rt)])
        + rt
        + (b"\x90\x0e" + len(mp).to_bytes(2, "big") + mp)
    )
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


def build_stream(routes: int, per_update: int, vrfs: int = 2000) -> bytes:
    """The recorded BMP stream: Initiation, Peer Ups, Route Monitoring of both peers."""
    parts = [bmp_initiation(sys_name="rr-bench", sys_descr="bench")]
    half = routes // len(PEERS)
    for p, peer in enumerate(PEERS):
        head = {"peer": peer, "bgp_id": peer, "post_policy": True}
        parts.append(bmp_peer_up(**head))  # type: ignore[arg-type]
        peer_header = bmp_peer_header(**head)  # type: ignore[arg-type]
        nlri, vrf = _nlri_rows(half, seed=p + 1, vrfs=vrfs)
        nh = bytes(int(x) for x in peer.split("."))
        start = 0
        while start < half:
            v = int(vrf[start])
            stop = min(start + per_update, int(np.searchsorted(vrf, v, side="right")))
            update = _update(nlri[start:stop], v, nh)
            parts.append(bmp_message(0, peer_header + update))
            start = stop
    return b"".join(parts)


SENDER = textwrap.dedent(
    """
    import socket, sys
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    for name in sys.argv[2:]:
        if sys.stdin.readline() == "":
            break
        with open(name, "rb") as fh:
            s.sendfile(fh)
        print("sent", flush=True)
    sys.stdin.readline()
    s.close()
    """
)


class Sender:
    """A child process replaying files over one TCP connection, one per line on stdin."""

    def __init__(self, port: int, files: list[Path]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SENDER, str(port), *map(str, files)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send_next(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def wait_sent(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.readline()

    def close(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("bye\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (pmbmpd forks its core process)."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = [pid], [pid]
    while frontier:
        frontier = [c for c, p in parents.items() if p in frontier]
        out += frontier
    return out


def _cpu_of(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _until_idle(pid: int, idle: float = 1.0, timeout: float = 600.0) -> tuple[float, float]:
    """(CPU seconds, monotonic time of the last CPU tick) once ``pid`` stays idle ``idle`` s."""
    last_cpu = _cpu_of(pid)
    last_change = time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() - last_change < idle and time.monotonic() < deadline:
        time.sleep(0.02)
        cpu = _cpu_of(pid)
        if cpu != last_cpu:
            last_cpu, last_change = cpu, time.monotonic()
    return last_cpu, last_change


def _wait(cond: object, timeout: float = 600.0) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            msg = "timed out"
            raise TimeoutError(msg)
        time.sleep(0.002)


def run_ours(config: NetworkConfig, stream: Path, down: Path, routes: int) -> dict[str, float]:
    """Ingest, view build, memory and bulk withdrawal through our listener."""
    live = LiveRouting(LiveConfig(interval=3600, max_versions=2), config)
    server = BmpServer(BmpServerConfig(host="127.0.0.1", port=0), live)
    server.start()
    out: dict[str, float] = {}
    rss0 = _rss()
    sender = Sender(server.address[1], [stream, down])
    try:
        _wait(lambda: bool(live.routers))
        router = live.routers[0]
        cpu0, t0 = time.process_time(), time.perf_counter()
        sender.send_next()
        _wait(lambda: router.updates >= routes)
        out["ingest_s"] = time.perf_counter() - t0
        out["ingest_cpu_s"] = time.process_time() - cpu0
        t = time.perf_counter()
        view = live.snapshot()
        out["view_s"] = time.perf_counter() - t
        # the random prefixes repeat a few (RD, prefix) pairs: the later announcement replaces
        assert view is not None
        assert len(view.vpn) >= 0.999 * routes, len(view.vpn)
        out["paths"] = len(view.vpn)
        out["rss_per_route"] = (_rss() - rss0) / routes
        logs = sum(
            sum(a.nbytes for a in vars(c).values()) for r in router.ribs.values() for c in r.chunks
        )
        out["log_bytes_per_route"] = logs / routes
        before = router.routes()
        t = time.perf_counter()
        sender.send_next()
        _wait(lambda: router.routes() < before)
        out["withdraw_s"] = time.perf_counter() - t
        out["withdrawn"] = before - router.routes()
        t = time.perf_counter()
        view = live.snapshot()
        out["withdraw_view_s"] = time.perf_counter() - t
        assert view is not None
        assert len(view.vpn) == out["paths"] - out["withdrawn"]
    finally:
        sender.close()
        server.stop()
    return out


def run_pmbmpd(stream: Path, down: Path, *, rib: bool) -> dict[str, float] | None:
    """pmbmpd's CPU seconds, wall time and RSS for the same stream and Peer Down.

    Without a dump or message log backend pmbmpd parses and drops the routes
    (its RSS does not grow); ``rib`` sets ``bmp_dump_file`` (refreshed hourly,
    so never during the run) to make it keep its RIB, as it must to serve them.
    """
    exe = shutil.which("pmbmpd")
    if exe is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "pmbmpd.conf"
        conf.write_text(
            f"bmp_daemon_ip: 127.0.0.1\nbmp_daemon_port: {port}\nbmp_daemon_max_peers: 10\n"
            f"logfile: {tmp}/pmbmpd.log\n"
            + (
                f"bmp_dump_file: {tmp}/dump-$peer_src_ip.json\nbmp_dump_refresh_time: 3600\n"
                if rib
                else ""
            )
        )
        proc = subprocess.Popen([exe, "-f", str(conf)], stdout=subprocess.DEVNULL)
        out: dict[str, float] = {}
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            _until_idle(proc.pid, idle=0.5)
            sender = Sender(port, [stream, down])
            time.sleep(0.5)
            try:
                rss0 = _rss_of(proc.pid)
                cpu0, t0 = _cpu_of(proc.pid), time.monotonic()
                sender.send_next()
                cpu1, t1 = _until_idle(proc.pid)
                out["ingest_s"] = t1 - t0
                out["ingest_cpu_s"] = cpu1 - cpu0
                out["rss"] = _rss_of(proc.pid) - rss0
                t0 = time.monotonic()
                sender.send_next()
                cpu2, t2 = _until_idle(proc.pid)
                out["withdraw_s"] = max(t2 - t0, 0.0)
                out["withdraw_cpu_s"] = cpu2 - cpu1
            finally:
                sender.close()
        finally:
            _kill_tree(proc)
    return out


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM pmbmpd's processes, SIGKILL what is left after 2 s (it may ignore SIGTERM)."""
    family = _tree(proc.pid)
    for sig in (15, 9):
        for p in reversed(family):
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in family):
            proc.poll()
            time.sleep(0.05)
    proc.wait(timeout=10)


def _rss_of(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=1_000_000)
    parser.add_argument("--per-update", type=int, default=64)
    parser.add_argument("--no-pmbmpd", action="store_true")
    args = parser.parse_args()
    config = network([("pe-a", PEERS[0], ""), ("pe-b", PEERS[1], "")])
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = build_stream(args.routes, args.per_update)
        stream = Path(tmp) / "stream.bmp"
        stream.write_bytes(data)
        down = Path(tmp) / "peer-down.bmp"
        down.write_bytes(bmp_peer_down(peer=PEERS[0], bgp_id=PEERS[0], post_policy=True))
        print(
            f"stream: {args.routes:,} VPNv4 routes, {args.per_update} NLRI per UPDATE at most, "
            f"{len(data) / 2**20:.1f} MiB (built in {time.perf_counter() - t:.1f} s)"
        )
        del data
        ours = run_ours(config, stream, down, args.routes)
        rate = args.routes / ours["ingest_s"]
        cpu_rate = args.routes / ours["ingest_cpu_s"]
        print(
            f"flowmatrix: ingest {ours['ingest_s']:.2f} s = {rate:,.0f} routes/s "
            f"({ours['ingest_cpu_s']:.2f} CPU s = {cpu_rate:,.0f} routes per CPU second); "
            f"view build {ours['view_s']:.2f} s ({ours['paths']:,.0f} distinct paths)"
        )
        print(
            f"flowmatrix: memory {ours['rss_per_route']:.0f} B/route RSS "
            f"(route logs {ours['log_bytes_per_route']:.0f} B/route)"
        )
        ok = "OK" if ours["withdraw_s"] < TARGET_WITHDRAW_S else "MISSED"
        print(
            f"flowmatrix: Peer Down of {ours['withdrawn']:,.0f} routes applied in "
            f"{ours['withdraw_s'] * 1000:.1f} ms (target < {TARGET_WITHDRAW_S:.0f} s: {ok}); "
            f"next view built in {ours['withdraw_view_s']:.2f} s"
        )
        if args.no_pmbmpd or shutil.which("pmbmpd") is None:
            print("pmbmpd: not run (not installed or --no-pmbmpd)")
            return
        for rib, what in ((True, "RIB kept (bmp_dump_file)"), (False, "parse only, no RIB")):
            theirs = run_pmbmpd(stream, down, rib=rib)
            assert theirs is not None
            p_rate = args.routes / theirs["ingest_s"]
            p_cpu = args.routes / max(theirs["ingest_cpu_s"], 1e-9)
            print(
                f"pmbmpd, {what}: ingest {theirs['ingest_s']:.2f} s = {p_rate:,.0f} routes/s "
                f"({theirs['ingest_cpu_s']:.2f} CPU s = {p_cpu:,.0f} routes per CPU second), "
                f"{theirs['rss'] / args.routes:.0f} B/route RSS; Peer Down "
                f"{theirs['withdraw_s']:.2f} s ({theirs['withdraw_cpu_s']:.2f} CPU s)"
            )
            print(
                f"ratio flowmatrix/pmbmpd ({what}): ingest wall {rate / p_rate:.2f}x, "
                f"per CPU second {cpu_rate / p_cpu:.2f}x"
            )


if __name__ == "__main__":
    main()
