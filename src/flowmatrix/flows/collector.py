"""The collector, the only I/O of flows: UDP sockets → batches of datagrams → decoder → sink.

One thread waits on every socket; when one is readable it drains them all
until ``EAGAIN`` (each datagram tagged with its exporter address and arrival
time), refuses exporters the configuration does not name, decodes the batch
and hands the :class:`~flowmatrix.schema.FlowBatch` to the sink. Kernel
receive-buffer drops are read from ``/proc/net/udp`` and ``/proc/net/udp6``
(the ``drops`` column of the socket's inode) and reported as drop reason
``kernel``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import ipaddress
import logging
import os
import selectors
import socket
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flowmatrix.flows.decoder import Datagram, Decoder
from flowmatrix.flows.stats import DecodeStats

if TYPE_CHECKING:
    from flowmatrix.config.model import NetworkConfig
    from flowmatrix.schema import FlowBatch

__all__ = ["Collector", "CollectorConfig", "allowed_exporters", "collect", "kernel_drops"]

log = logging.getLogger("flowmatrix.flows.collector")

#: SO_RCVBUFFORCE (Linux): set the receive buffer beyond rmem_max, needs CAP_NET_ADMIN
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """Where to listen and whom to accept."""

    #: (address, port) pairs; port 0 picks a free port (see :attr:`Collector.addresses`)
    listen: tuple[tuple[str, int], ...] = (("0.0.0.0", 2055),)
    #: exporter addresses accepted (text); None accepts every exporter
    exporters: frozenset[str] | None = None
    #: receive buffer asked for, octets
    receive_buffer: int = 128 * 1024 * 1024
    #: at most this many datagrams per decoded batch
    max_batch: int = 65536
    #: poll interval, seconds (how fast stop() is noticed)
    poll: float = 0.2


def allowed_exporters(config: NetworkConfig, frp: str | None = None) -> frozenset[str]:
    """Exporter addresses (text) of the configuration's PEs, or of one FRP's PEs."""
    return frozenset(
        str(a) for pe in config.pes if frp is None or pe.frp == frp for a in pe.exporter_addresses
    )


def kernel_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped on ``sock`` (the ``drops`` column of /proc/net/udp[6])."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    name = "udp6" if sock.family == socket.AF_INET6 else "udp"
    try:
        lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        parts = line.split()
        if len(parts) >= 13 and parts[9] == inode:
            return int(parts[-1])
    return 0


@dataclass
class _Counters:
    kernel: dict[int, int] = field(default_factory=dict)
    refused: Tally[str] = field(default_factory=Tally)


class Collector:
    """Receive flow exports over UDP and hand decoded batches to a sink.

    ``start()`` binds and starts the receive thread; ``stop()`` stops it,
    decodes what is left and closes the sockets.
    """

    def __init__(
        self,
        config: CollectorConfig,
        *,
        sink: Callable[[FlowBatch], None],
        decoder: Decoder | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.decoder = decoder if decoder is not None else Decoder()
        self.stats: DecodeStats = self.decoder.stats
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._counters = _Counters()
        self._allowed: set[str] | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (address, port) of each socket."""
        return [s.getsockname()[:2] for s in self._sockets]

    @property
    def refused(self) -> dict[str, int]:
        """Datagrams refused per unknown exporter address."""
        return dict(self._counters.refused)

    def allow(self, exporters: frozenset[str] | None) -> None:
        """Accept these exporter addresses from now on (None: every exporter), sockets kept.

        A new configuration changes whom the collector accepts without closing a
        socket, so no datagram is lost to a rebind.
        """
        self.config = dataclasses.replace(self.config, exporters=exporters)
        # one assignment: the receive thread sees the old set or the new one, never a mix
        self._allowed = None if exporters is None else {_canonical(a) for a in exporters}

    def start(self) -> None:
        """Bind the sockets and start receiving."""
        if self.config.exporters is not None:
            self._allowed = {_canonical(a) for a in self.config.exporters}
        for host, port in self.config.listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            _grow_buffer(sock, self.config.receive_buffer)
            sock.bind((host, port))
            sock.setblocking(False)
            self._sockets.append(sock)
            self._counters.kernel[sock.fileno()] = kernel_drops(sock)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="flows-collector", daemon=True)
        self._thread.start()
        log.info("component=collector listening=%s", self.addresses)

    def stop(self) -> None:
        """Stop receiving, decode what was received, close the sockets."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def receive_buffers(self) -> list[int]:
        """The receive buffer the kernel granted each socket, octets."""
        return [s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for s in self._sockets]

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for sock in self._sockets:
            selector.register(sock, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                if selector.select(self.config.poll):
                    self._drain()
            self._drain()
        finally:
            selector.close()

    def _drain(self) -> None:
        batch: list[Datagram] = []
        limit = self.config.max_batch
        while True:
            got = 0
            for sock in self._sockets:
                got += self._read(sock, batch, limit)
            if not got or len(batch) >= limit:
                if batch:
                    self._decode(batch)
                    batch = []
                if not got:
                    break
        self._check_kernel()

    def _read(self, sock: socket.socket, batch: list[Datagram], limit: int) -> int:
        got = 0
        recv = sock.recvfrom
        clock = time.time
        while len(batch) < limit:
            try:
                data, address = recv(65535)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                raise
            batch.append((data, address[0], clock()))
            got += 1
        return got

    def _decode(self, batch: list[Datagram]) -> None:
        if self._allowed is not None:
            allowed = self._allowed
            refused = [d for d in batch if d[1] not in allowed]
            if refused:
                batch = [d for d in batch if d[1] in allowed]
                for _, address, _ in refused:
                    self._counters.refused[address] += 1
                    self.stats.drop(address, "unknown_exporter", "not in the configuration")
        if not batch:
            return
        flows = self.decoder.decode(batch)
        if len(flows):
            self.sink(flows)

    def _check_kernel(self) -> None:
        for sock in self._sockets:
            before = self._counters.kernel.get(sock.fileno(), 0)
            now = kernel_drops(sock)
            if now > before:
                self._counters.kernel[sock.fileno()] = now
                self.stats.drop("*", "kernel", "receive buffer overflow", now - before)


def _grow_buffer(sock: socket.socket, size: int) -> None:
    # SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _canonical(address: str) -> str:
    return str(ipaddress.ip_address(address))


def collect(
    config: CollectorConfig, *, until: Callable[[int], bool], decoder: Decoder | None = None
) -> Iterable[FlowBatch]:
    """Batches received until ``until(records so far)`` is true (a generator; for the CLI)."""
    import queue

    batches: queue.Queue[FlowBatch] = queue.Queue()
    collector = Collector(config, sink=batches.put, decoder=decoder)
    collector.start()
    total = 0
    try:
        while not until(total):
            try:
                batch = batches.get(timeout=0.1)
            except queue.Empty:
                continue
            total += len(batch)
            yield batch
    finally:
        collector.stop()
        while not batches.empty():
            yield batches.get()
