"""Fakes for the FRP's tests: a tiny real MG over HTTP, a small network and flow records.

:class:`FakeMg` is a stdlib ``http.server`` on 127.0.0.1 in a thread: it
serves one configuration XML (with a strong ETag) to a bearer token and
records the bodies of ``PUT /api/v1/partials/...``; it can be told to answer
503 (or any status) or be stopped and started again on the same port.

>>> with FakeMg(b"<x/>", token="t") as mg:
...     import httpx
...     r = httpx.get(f"{mg.url}/api/v1/frps/frp-a/config", headers={"Authorization": "Bearer t"})
...     r.status_code, r.content
(200, b'<x/>')
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from flowmatrix.config.model import Exporter, Frp, Interval, NetworkConfig, PeRouter, ServiceNode
from flowmatrix.errors import UploadError
from flowmatrix.flows.v5 import build_v5
from flowmatrix.matrix.partial import PartialMeta, decode_partial
from flowmatrix.schema import FlowBatch

__all__ = ["T0", "FakeMg", "Received", "flows", "small_config", "v5_flows"]

#: 2026-01-05T00:00Z in unix ms
T0 = 1_767_571_200_000
_ip = ipaddress.ip_address


def small_config(readout: int = 60) -> NetworkConfig:
    """Two PEs of ``frp-a`` (pe1 exports from 127.0.0.1, pe2 from 127.0.0.2), one interval."""
    pes = (
        PeRouter(
            "pe1", _ip("198.19.0.1"), "PAR", frp="frp-a", exporters=(Exporter(_ip("127.0.0.1")),)
        ),
        PeRouter(
            "pe2", _ip("198.19.0.2"), "PAR", frp="frp-a", exporters=(Exporter(_ip("127.0.0.2")),)
        ),
    )
    return NetworkConfig(
        "t",
        65000,
        service_nodes=(ServiceNode("PAR"),),
        frps=(Frp("frp-a", _ip("127.0.0.10"), "PAR"),),
        pes=pes,
        intervals=(Interval("always", "continuous", readout_seconds=readout),),
    )


def flows(n: int, start_ms: int, *, exporter: int = 0x7F000001, nbytes: int = 100) -> FlowBatch:
    """``n`` IPv4 records of one exporter (address as an int) starting at ``start_ms``."""
    return FlowBatch.from_columns(
        {
            "exporter_version": 4,
            "exporter_lo": exporter,
            "ip_version": 4,
            "start_ms": start_ms,
            "end_ms": start_ms,
            "bytes": nbytes,
            "packets": 1,
            "dst_lo": 0x0A000001,
            "in_if": 1101,
        },
        n,
    )


def v5_flows(n: int, *, sequence: int, at: float, nbytes: int = 100) -> bytes:
    """A v5 datagram of ``n`` flows exported and started at unix time ``at``."""
    secs = int(at)
    nsecs = int((at - secs) * 1e9)
    flow: dict[str, int | str] = {"src": "10.0.0.1", "dst": "10.0.0.2", "bytes": nbytes}
    flow |= {"packets": 1, "first": 100_000, "last": 100_000, "in_if": 1101}
    return build_v5([flow] * n, uptime=100_000, secs=secs, nsecs=nsecs, sequence=sequence)


@dataclass(frozen=True, slots=True)
class Received:
    """One partial upload the fake MG accepted."""

    path: str
    meta: PartialMeta
    rows: list[dict[str, object]]


class FakeMg:
    """A real HTTP server on 127.0.0.1 that plays the MG for one FRP's token."""

    def __init__(self, config_xml: bytes, *, token: str = "secret", port: int = 0) -> None:
        self.config_xml = config_xml
        self.token = token
        self.port = port
        #: answer every PUT with this status instead of storing (e.g. 503); None = store
        self.fail_with: int | None = None
        self.received: list[Received] = []
        #: routing bundles received (``PUT .../routing``), in order
        self.routing: list[bytes] = []
        self.attempts = 0
        self.config_requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def etag(self) -> str:
        """The strong ETag of the configuration."""
        return '"' + hashlib.sha256(self.config_xml).hexdigest() + '"'

    def start(self) -> None:
        """Listen (on the same port as before after a stop) and serve in a thread."""
        mg = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if ctype == "application/xml":
                    self.send_header("ETag", mg.etag)
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {mg.token}":
                    self._reply(401, b'{"error": "unknown token"}')
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path.endswith("/config"):
                    mg.config_requests += 1
                    if self.headers.get("If-None-Match") == mg.etag:
                        self.send_response(304)
                        self.send_header("ETag", mg.etag)
                        self.end_headers()
                        return
                    self._reply(200, mg.config_xml, "application/xml")
                    return
                self._reply(404, b'{"error": "not found"}')

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with mg._lock:
                    mg.attempts += 1
                if not self._authorized():
                    return
                if mg.fail_with is not None:
                    self._reply(mg.fail_with, b'{"error": "told to fail"}')
                    return
                if self.path.endswith("/routing"):  # a routing bundle: kept as it came
                    with mg._lock:
                        mg.routing.append(body)
                    self._reply(200, b'{"status": "stored"}')
                    return
                try:
                    table, meta = decode_partial(body)
                except UploadError as exc:
                    self._reply(400, json.dumps({"error": str(exc)}).encode())
                    return
                with mg._lock:
                    mg.received.append(Received(self.path, meta, table.to_pylist()))
                    version = len(mg.received)
                self._reply(200, json.dumps({"status": "stored", "version": version}).encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (connections are then refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakeMg:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
