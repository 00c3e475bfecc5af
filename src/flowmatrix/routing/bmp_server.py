"""Accept BMP sessions from monitored routers over TCP and feed them to :class:`LiveRouting`.

One thread per router session reads into a large buffer and hands whole
reads to :meth:`LiveRouting.feed` (the decode of one read is one numpy
batch). A stream that cannot be framed drops the session (counted in
``bmp_sessions_dropped_total``); a closed or dropped session withdraws
everything that router reported. Component shape: ``BmpServer(config,
live)`` does nothing, ``start()`` binds and accepts, ``stop()`` closes the
listener and every session.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from flowmatrix.routing.bmp import BmpSessionError
from flowmatrix.routing.live import LiveRouting

__all__ = ["BmpServer", "BmpServerConfig"]

log = logging.getLogger("flowmatrix.routing.bmp_server")

bmp_sessions = Gauge("bmp_sessions", "BMP sessions open (monitored routers connected).")
bmp_sessions_dropped_total = Counter(
    "bmp_sessions_dropped_total", "BMP sessions dropped because the stream could not be framed."
)
bmp_messages_malformed_total = Counter(
    "bmp_messages_malformed_total", "BMP messages skipped as malformed, by part.", ["part"]
)
bmp_received_bytes_total = Counter("bmp_received_bytes_total", "Bytes received over BMP.")


@dataclass(frozen=True, slots=True)
class BmpServerConfig:
    """Where to listen for BMP (port 0 picks a free one)."""

    host: str = "0.0.0.0"
    port: int = 11019
    #: bytes read per ``recv`` (one decode batch at most)
    read_size: int = 4 * 1024 * 1024
    receive_buffer: int = 8 * 1024 * 1024


class BmpServer:
    """A TCP listener for BMP sessions, one reader thread per router."""

    def __init__(self, config: BmpServerConfig, live: LiveRouting) -> None:
        self.config = config
        self.live = live
        self._listener: socket.socket | None = None
        self._accept: threading.Thread | None = None
        self._sessions: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        #: the bound (address, port) once started
        self.address: tuple[str, int] = ("", 0)

    def start(self) -> None:
        """Bind, listen and accept sessions in a thread."""
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.config.host, self.config.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self.address = listener.getsockname()[:2]
        self._stopping.clear()
        self._accept = threading.Thread(target=self._accept_loop, name="bmp-accept", daemon=True)
        self._accept.start()
        log.info("component=routing.bmp_server listening=%s:%d", *self.address)

    def stop(self) -> None:
        """Close the listener and every session (their routes are withdrawn)."""
        self._stopping.set()
        if self._accept is not None:
            self._accept.join()
            self._accept = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sessions = list(self._sessions.items())
        for sock, _ in sessions:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in sessions:
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer)
            thread = threading.Thread(
                target=self._session, args=(conn, str(peer[0])), name="bmp-session", daemon=True
            )
            with self._lock:
                self._sessions[conn] = thread
            thread.start()

    def _session(self, conn: socket.socket, address: str) -> None:
        router = self.live.connect(address)
        bmp_sessions.inc()
        why = "closed"
        seen: dict[str, int] = {}
        try:
            while True:
                data = conn.recv(self.config.read_size)
                if not data:
                    break
                bmp_received_bytes_total.inc(len(data))
                self.live.feed(router, data)
                for part, n in router.session.malformed.items():
                    if n > seen.get(part, 0):
                        bmp_messages_malformed_total.labels(part=part).inc(n - seen.get(part, 0))
                        seen[part] = n
        except BmpSessionError as exc:
            why = "unframed"
            bmp_sessions_dropped_total.inc()
            log.warning("component=routing.bmp_server router=%s dropped: %s", router.label, exc)
        except OSError as exc:
            why = f"error: {exc}"
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._lock:
                self._sessions.pop(conn, None)
            bmp_sessions.dec()
            self.live.disconnect(router, why)
