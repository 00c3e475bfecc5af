"""A whole network on loopback: one MG, its FRPs and real exporters as processes on 127/8.

:class:`Loopback` starts ``flowmatrix mg serve`` and one ``flowmatrix frp
run`` per FRP of a generated network as real processes, replays each PE's
pcap through pmacct's ``pmacctd`` + ``nfprobe`` (exporting from the PE's own
exporter address, input ifIndex from the VLAN via a ``pre_tag_map``) to the
PE's FRP, and queries the MG over HTTP. The demo and the end-to-end tests
drive it; every process is killed when the context ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import load_config, write_config
from flowmatrix.errors import FlowmatrixError
from flowmatrix.matrix.partial import (
    PARTIAL_SCHEMA,
    ExporterReport,
    PartialMeta,
    UnresolvedReport,
)

__all__ = ["Loopback", "LoopbackError", "free_port", "synthetic_partials", "udp_bound"]

log = logging.getLogger("flowmatrix.loopback")

#: pmacctd configuration replaying one PE's pcap through nfprobe (reading a capture, pmacctd
#: pauses after every plugin buffer: the default small buffer makes a replay take minutes)
PMACCTD = """\
daemonize: false
plugins: nfprobe[{pe}]
pcap_savefile: {pcap}
nfprobe_receiver: {receiver}
nfprobe_version[{pe}]: {version}
nfprobe_source_ip[{pe}]: {source}
nfprobe_engine[{pe}]: {engine}
nfprobe_maxflows[{pe}]: 262144
nfprobe_direction[{pe}]: in
nfprobe_ifindex[{pe}]: tag
pre_tag_map: {pretag}
plugin_buffer_size: 65536
plugin_pipe_size: 16777216
"""


class LoopbackError(FlowmatrixError):
    """A process of the loopback network failed to start or answer."""


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on at ``host`` right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def udp_bound(host: str, port: int) -> bool:
    """True when some socket is bound to UDP ``host:port`` (read from /proc/net/udp)."""
    want = f"{socket.htonl(int.from_bytes(socket.inet_aton(host), 'big')):08X}:{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] == want for line in lines if len(line.split()) > 1)


def _wait(
    what: str, ready: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            msg = f"{what} exited with status {proc.returncode} before it was ready"
            raise LoopbackError(msg)
        time.sleep(0.1)
    msg = f"{what} was not ready after {timeout:.0f} s"
    raise LoopbackError(msg)


class Loopback:
    """The processes of one loopback network, and an HTTP client for its MG.

    ``network_dir`` is a directory written by ``flowmatrix synth network``;
    ``readout_seconds`` replaces the read-out period of every interval so a
    short run still spans several periods; ``stats_detail`` False starts the
    MG with ``--no-stats-detail`` (no if_pe or vrf statistics); ``mg_routing``
    False starts it without ``--routing``, so its tables are only what the
    FRPs send.
    """

    def __init__(
        self,
        network_dir: Path,
        work: Path,
        *,
        readout_seconds: int | None = 60,
        grace_s: float = 1.0,
        settle_s: float = 1.0,
        mode: str = "distributed",
        stats_detail: bool = True,
        mg_routing: bool = True,
    ) -> None:
        self.network_dir = network_dir
        self.stats_detail = stats_detail
        self.mg_routing = mg_routing
        self.work = work
        self.grace_s = grace_s
        self.settle_s = settle_s
        self.mode = mode
        config = load_config([network_dir / "network.xml"])
        if readout_seconds is not None:
            config = dataclasses.replace(
                config,
                intervals=tuple(
                    dataclasses.replace(i, readout_seconds=readout_seconds)
                    for i in config.intervals
                ),
            )
        self.config: NetworkConfig = config
        self.config_dir = work / "mg" / "config"
        self.db = work / "mg" / "matrices.duckdb"
        self.tokens = work / "mg" / "tokens"
        self.logs = work / "logs"
        self.mg_port = 0
        self.frp_ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[object] = []

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Loopback:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def mg_url(self) -> str:
        """Base URL of the MG."""
        return f"http://127.0.0.1:{self.mg_port}"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log_file = (self.logs / f"{name}.log").open("ab")
        self._log_files.append(log_file)
        proc = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines a process wrote (for error messages)."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start_mg(self) -> None:
        """Start (or restart) the MG on a free port, issuing tokens on first start."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        write_config(self.config, self.config_dir / "network.xml")
        if not self.mg_port:
            self.mg_port = free_port()
        argv = [
            sys.executable, "-m", "flowmatrix", "mg", "serve",
            "--config", str(self.config_dir), "--db", str(self.db),
            "--host", "127.0.0.1", "--port", str(self.mg_port),
            "--issue-tokens", str(self.tokens),
        ]  # fmt: skip
        # every PE's tables: centralized mode resolves with them, and in either mode the
        # dashboard's routing lookup explains with them
        if self.mg_routing and (
            self.mode == "centralized" or (self.network_dir / "routing").is_dir()
        ):
            argv += ["--routing", str(self.network_dir)]
        if (self.network_dir / "topology.json").exists():
            argv += ["--topology", str(self.network_dir / "topology.json")]
        if not self.stats_detail:
            argv.append("--no-stats-detail")
        proc = self._spawn("mg", argv)
        _wait("the MG", self._healthy, 60, proc)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.mg_url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def frp_names(self) -> list[str]:
        """FRPs of the configuration that have PEs."""
        return [f.name for f in self.config.frps if self.config.pes_of(f.name)]

    def start_frp(self, name: str, *, extra: tuple[str, ...] = ()) -> None:
        """Start (or restart) one FRP on its configured address; return once it listens."""
        host = str(self.config.frp(name).address)
        if name not in self.frp_ports:
            self.frp_ports[name] = free_port(host, socket.SOCK_DGRAM)
        port = self.frp_ports[name]
        argv = [
            sys.executable, "-m", "flowmatrix", "frp", "run",
            "--mg", self.mg_url, "--name", name,
            "--token-file", str(self.tokens / f"{name}.token"),
            "--listen", f"{host}:{port}", "--routing", str(self.network_dir),
            "--data", str(self.work / "frp" / name),
            "--grace", str(self.grace_s), "--settle", str(self.settle_s),
            "--mode", self.mode, *extra,
        ]  # fmt: skip
        proc = self._spawn(self._frp_process(name), argv)
        _wait(f"FRP {name}", lambda: udp_bound(host, port), 60, proc)

    @staticmethod
    def _frp_process(name: str) -> str:
        """The process (and log) name of FRP ``name``."""
        return name if name.startswith("frp") else f"frp-{name}"

    def kill_frp(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to FRP ``name`` and wait for it to end."""
        self.kill(self._frp_process(name), sig)

    def start(self) -> None:
        """Start the MG and every FRP."""
        self.start_mg()
        for name in self.frp_names():
            self.start_frp(name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one process and wait for it to end."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and close the logs."""
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)
        for f in self._log_files:
            f.close()  # type: ignore[attr-defined]
        self._log_files.clear()

    # --- exporters ------------------------------------------------------------------------------

    def replay(
        self, traffic_dir: Path, pe: str, *, version: int = 10, sampling: int = 1
    ) -> subprocess.Popen[bytes]:
        """Replay one PE's pcap through ``pmacctd`` + nfprobe to the PE's FRP (not waited for)."""
        if shutil.which("pmacctd") is None:
            msg = "pmacctd is not installed (Debian package pmacct); `make test` installs it"
            raise LoopbackError(msg)
        router = self.config.pe(pe)
        if router.frp is None or not router.exporters:
            msg = f"PE {pe} has no FRP or no exporter in the configuration"
            raise LoopbackError(msg)
        exporter = router.exporters[0]
        frp = self.config.frp(router.frp)
        conf = self.work / "exporters" / f"{pe}.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        text = PMACCTD.format(
            pe=pe,
            pcap=traffic_dir / "pcap" / f"{pe}.pcap",
            receiver=f"{frp.address}:{self.frp_ports[router.frp]}",
            version=version,
            source=exporter.address,
            engine=exporter.source_id or 0,
            pretag=traffic_dir / "pmacct" / f"{pe}.pretag.map",
        )
        if sampling > 1:
            text += f"sampling_rate: {sampling}\n"
        conf.write_text(text)
        return self._spawn(f"pmacctd-{pe}", ["pmacctd", "-f", str(conf)])

    def replay_all(
        self,
        traffic_dir: Path,
        *,
        pes: list[str] | None = None,
        version: int = 10,
        sampling: int = 1,
        timeout: float = 90,
    ) -> list[str]:
        """Replay the PEs' pcaps (all by default) at once and wait for the exporters; the PEs."""
        if pes is None:
            pes = sorted(p.stem for p in (traffic_dir / "pcap").glob("*.pcap"))
        procs = {pe: self.replay(traffic_dir, pe, version=version, sampling=sampling) for pe in pes}
        deadline = time.monotonic() + timeout
        for pe, proc in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as exc:
                msg = f"pmacctd for {pe} did not finish in {timeout:.0f} s"
                raise LoopbackError(msg) from exc
            if proc.returncode != 0 and not self._exported(pe):
                tail = self.log_tail(f"pmacctd-{pe}")
                msg = f"pmacctd for {pe} exited with {proc.returncode}: {tail}"
                raise LoopbackError(msg)
            self.procs.pop(f"pmacctd-{pe}", None)
        return pes

    def _exported(self, pe: str) -> bool:
        """Whether pmacctd's nfprobe plugin finished its export and shut down normally.

        With larger plugin buffers the core may notice the plugin's exit before
        its own and exit 1 ("connection lost"), after everything was sent.
        """
        return "nfprobe ): Shutting down on user request" in self.log_tail(f"pmacctd-{pe}", 5)

    # --- queries --------------------------------------------------------------------------------

    def token(self, name: str = "operator") -> str:
        """A token the MG issued (``operator`` or an FRP's name)."""
        return (self.tokens / f"{name}.token").read_text().strip()

    def get(self, path: str, **params: str | int | None) -> httpx.Response:
        """GET an MG endpoint with the operator token."""
        return httpx.get(
            f"{self.mg_url}/api/v1/{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
        )

    def periods(self, interval: str, since_ms: int, until_ms: int) -> list[dict[str, object]]:
        """The MG's periods of ``interval`` in ``[since_ms, until_ms)``."""
        response = self.get("periods", interval=interval, since_ms=since_ms, until_ms=until_ms)
        response.raise_for_status()
        body = response.json()
        rows = body["periods"] if isinstance(body, dict) else body
        return [p for p in rows if since_ms <= int(p["period_start_ms"]) < until_ms]

    def wait_complete(
        self,
        interval: str,
        since_ms: int,
        until_ms: int,
        *,
        timeout: float = 60,
        progress: Callable[[int, int], None] = lambda done, want: None,
        settled_s: float = 0.0,
    ) -> list[dict[str, object]]:
        """Wait until every period of ``interval`` in the window is complete; the periods.

        ``settled_s`` also waits until nothing changed for that long (late revisions).
        """
        readout = next(i for i in self.config.intervals if i.id == interval).readout_seconds
        want = max(1, -(-(until_ms - since_ms) // (readout * 1000)))
        deadline = time.monotonic() + timeout
        last: object = None
        changed = time.monotonic()
        periods: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            periods = self.periods(interval, since_ms, until_ms)
            done = sum(1 for p in periods if p["status"] == "complete")
            progress(done, want)
            state = [
                (p["period_start_ms"], p.get("versions"), p.get("updated_ms")) for p in periods
            ]
            if state != last:
                last, changed = state, time.monotonic()
            if done >= want and time.monotonic() - changed >= settled_s and self.spooled() == 0:
                return periods
            time.sleep(0.25)
        msg = f"periods of {interval} not complete after {timeout:.0f} s: {periods}"
        raise LoopbackError(msg)

    def metrics(self) -> str:
        """The MG's Prometheus metrics text."""
        return httpx.get(f"{self.mg_url}/metrics", timeout=10).text

    def spooled(self) -> int:
        """Uploads the FRPs still hold in their spools."""
        return sum(1 for _ in (self.work / "frp").glob("*/spool/*.arrow"))

    def matrix(
        self,
        interval: str,
        *,
        granularity: str = "pe_pe",
        since_ms: int | None = None,
        until_ms: int | None = None,
        period_start_ms: int | None = None,
        klass: str | None = "all",
    ) -> pa.Table:
        """The total matrix from the MG (Parquet over HTTP); ``klass`` None keeps classes apart."""
        response = self.get(
            "matrix",
            interval=interval,
            granularity=granularity,
            since_ms=since_ms,
            until_ms=until_ms,
            period_start_ms=period_start_ms,
            format="parquet",
            **({} if klass is None else {"class": klass}),
        )
        if response.status_code != 200:
            msg = f"MG answered {response.status_code}: {response.text[:300]}"
            raise LoopbackError(msg)
        return pq.read_table(pa.BufferReader(response.content))


def synthetic_partials(
    config: NetworkConfig,
    *,
    interval: str,
    start_ms: int,
    periods: int,
    bps: float = 1e9,
    seed: int = 0,
) -> Iterator[tuple[pa.Table, PartialMeta]]:
    """Made-up partial matrices of every FRP for ``periods`` consecutive read-out periods.

    Each PE sends about ``bps`` bit/s to every other PE (log-normal spread
    drawn from ``seed``, one sine swing over the periods), half in the first
    and half in the last class by name; envelopes report each PE's exporter
    with a few drops and sequence gaps, and some unresolved volume. For
    filling an MG through its real upload API without exporters (dashboard
    tests and screenshots); the demo and the pipeline tests replay real traffic.
    """
    rng = np.random.default_rng(seed)
    spec = next(i for i in config.intervals if i.id == interval)
    step = spec.readout_seconds * 1000
    classes = sorted(set(config.dscp_classes()))
    pes = [p.name for p in config.pes]
    base = {(a, b): bps * float(rng.lognormal(0.0, 0.5)) for a in pes for b in pes if a != b}
    for k in range(periods):
        swing = 1.0 + 0.3 * np.sin(2 * np.pi * k / max(periods, 1))
        begin = start_ms + k * step
        for frp in config.frps:
            own = config.pes_of(frp.name)
            if not own:
                continue
            rows: list[tuple[str, int, str, str, int, str, float, int, float, int, float, float]]
            rows = []
            exporters = []
            for pe in own:
                sent = 0.0
                for (a, b), rate in base.items():
                    if a != pe.name:
                        continue
                    volume = rate * swing * float(rng.uniform(0.9, 1.1)) * step / 1000 / 8
                    for cls in (classes[0], classes[-1]):
                        packets = round(volume / 2 / 800)
                        rows.append(
                            (a, 1101, "", b, 0, cls, volume / 2, packets, packets / 10,
                             packets, 0.0, 0.0)
                        )  # fmt: skip
                    sent += volume
                exporter = pe.exporters[0]
                exporters.append(
                    ExporterReport(
                        address=str(exporter.address),
                        source_id=exporter.source_id or 0,
                        pe=pe.name,
                        datagrams=int(sent // 1_400_000) + 1,
                        records=int(sent // 80_000) + 1,
                        dropped=int(k % 5 == 4),
                        gap=2 if (k % 4 == 3 and pe.name == own[0].name) else 0,
                        gap_unit="records",
                    )
                )
            rows.sort(key=lambda r: (r[0], r[1], r[2], r[3], r[5]))
            table = pa.table(
                {name: [r[i] for r in rows] for i, name in enumerate(PARTIAL_SCHEMA.names)}
            ).cast(PARTIAL_SCHEMA)
            meta = PartialMeta(
                frp=frp.name,
                interval=interval,
                period_start_ms=begin,
                period_end_ms=begin + step,
                pes=tuple(p.name for p in own),
                revision=1,
                records=sum(e.records for e in exporters),
                exporters=tuple(exporters),
                unresolved=(
                    UnresolvedReport(
                        reason="no_route", bytes=1e6 * (k + 1), packets=1e3 * (k + 1), flows=k + 1
                    ),
                ),
            )
            yield table, meta
