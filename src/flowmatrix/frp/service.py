"""The FRP process: config client, collector, pipeline and uploader wired by hand.

Components start in order and stop in reverse through an :class:`ExitStack`:

1. :class:`~flowmatrix.frp.client.ConfigClient` — the FRP's view (refuses to
   start without one);
2. routing — ``--routing DIR`` read once for the view's PEs and compiled; with
   ``--bmp HOST:PORT`` also :class:`~flowmatrix.routing.live.LiveRouting` and its
   :class:`~flowmatrix.routing.bmp_server.BmpServer`: every live snapshot is
   compiled and handed to the pipeline through ``update_view``; the
   :class:`~flowmatrix.frp.publisher.RoutingPublisher` sends the tables to the
   MG when they change (at most every ``routing_upload`` s; also in centralized
   mode, where the FRP does not resolve but the MG does);
3. :class:`~flowmatrix.frp.uploader.Uploader` — delivers what the spool holds first;
4. :class:`~flowmatrix.frp.pipeline.Pipeline` — restores ``state.json`` and the
   periods of the part files;
5. :class:`~flowmatrix.flows.Collector` — UDP in, exporters of the view only;
6. the tick thread — builds due uploads and flushes part files every ``flush`` s;
7. the routing watch thread (with ``--routing``) — every ``routing_check`` s
   looks at ``--routing DIR``'s ``manifest.json``: when it changed (new table
   versions were put there) the tables are read again, compiled and handed to
   the pipeline, as on a configuration change (an unreadable directory keeps
   the tables in force, logged once per change). Its own thread, so reading a
   large directory never holds up flushes and uploads.

Stopping flushes buffered records to part files and ``state.json``; what is
spooled stays for the next start. :func:`run` is what ``flowmatrix frp run``
calls: it stops cleanly on SIGTERM and SIGINT.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

import prometheus_client

from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import FlowmatrixError
from flowmatrix.flows.collector import Collector, CollectorConfig, allowed_exporters
from flowmatrix.flows.decoder import Decoder
from flowmatrix.frp.client import ConfigClient, ConfigClientConfig
from flowmatrix.frp.ingress import IngressFiles
from flowmatrix.frp.pipeline import Pipeline, PipelineConfig
from flowmatrix.frp.publisher import PublisherConfig, RoutingPublisher
from flowmatrix.frp.uploader import Uploader, UploaderConfig
from flowmatrix.routing.bmp_server import BmpServer, BmpServerConfig
from flowmatrix.routing.live import LiveConfig, LiveRouting
from flowmatrix.routing.native import find_routing_dir, read_native
from flowmatrix.routing.resolve import Compiled, compile_state, watch_view_age
from flowmatrix.routing.tables import RoutingState

__all__ = ["FrpOptions", "FrpService", "run"]

log = logging.getLogger("flowmatrix.frp.service")


@dataclass(frozen=True, slots=True)
class FrpOptions:
    """Everything ``flowmatrix frp run`` takes."""

    mg: str
    name: str
    token: str
    data: Path
    listen: tuple[tuple[str, int], ...] = (("0.0.0.0", 2055),)
    routing: Path | None = None
    grace: float = 60.0
    settle: float = 2.0
    flush: float = 5.0
    mode: Literal["distributed", "centralized"] = "distributed"
    config_refresh: float = 60.0
    receive_buffer: int = 128 * 1024 * 1024
    #: seconds between looks for due periods
    tick: float = 0.25
    #: (address, port) serving Prometheus ``/metrics``; None = not served
    metrics: tuple[str, int] | None = None
    #: (address, port) to accept BMP sessions on; None = no live routing
    bmp: tuple[str, int] | None = None
    #: seconds between live routing snapshots at most
    bmp_interval: float = 5.0
    #: seconds between snapshot files at most (``DATA/bmp-snapshot``)
    bmp_save: float = 60.0
    #: seconds between routing bundles sent to the MG at most; 0 = never send
    routing_upload: float = 300.0
    #: seconds between looks at ``routing``'s manifest for new table versions; 0 = never
    routing_check: float = 5.0


class FrpService:
    """One FRP: ``start()`` brings every component up in order, ``stop()`` down in reverse."""

    def __init__(self, options: FrpOptions) -> None:
        self.options = options
        self.client: ConfigClient | None = None
        self.pipeline: Pipeline | None = None
        self.uploader: Uploader | None = None
        self.collector: Collector | None = None
        self.decoder = Decoder()
        self._stack = contextlib.ExitStack()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listen: tuple[tuple[str, int], ...] = options.listen
        #: the port ``/metrics`` is served on once started (``metrics`` port 0 picks one)
        self.metrics_port = 0
        self.live: LiveRouting | None = None
        self.bmp: BmpServer | None = None
        self._view: NetworkConfig | None = None
        self._live_compiled: Compiled | None = None
        self.publisher: RoutingPublisher | None = None
        #: (mtime ns, size) of the routing manifest last read
        self._routing_seen: tuple[int, int] | None = None
        #: one routing change at a time (configuration changes, the routing watch)
        self._routing_lock = threading.Lock()
        self._watch: threading.Thread | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound UDP (address, port) pairs of the collector."""
        return self.collector.addresses if self.collector is not None else []

    def _base_state(self, view: NetworkConfig) -> RoutingState:
        """The native tables of the view's PEs (an empty state without ``--routing``)."""
        if self.options.routing is None:
            return RoutingState(view)
        return read_native(self.options.routing, view, pes=self._pes_in(view))

    @property
    def centralized(self) -> bool:
        """Whether the MG resolves this FRP's records (it only ships them, and its tables)."""
        return self.options.mode == "centralized"

    def _routing(self, view: NetworkConfig) -> Compiled | None:
        """The view's tables compiled for the pipeline (None: none, or centralized mode); the
        publisher is offered them (live snapshots offer themselves, see :meth:`_live_state`)."""
        if self.live is not None:
            self.live.rebase(self._base_state(view), view)
            return None if self.centralized else self._live_compiled
        if self.options.routing is None:
            return None
        mine = self._pes_in(view)
        state = self._base_state(view)
        if self.publisher is not None:
            self.publisher.offer(state)
        if self.centralized:
            return None
        compiled = compile_state(state)
        watch_view_age(state, mine)
        log.info(
            "component=frp.service routing=%s pes=%d versions=%d",
            self.options.routing,
            len(mine),
            len(compiled.versions),
        )
        return compiled

    def start(self) -> None:
        """Start the config client, routing, uploader, pipeline, collector and tick thread."""
        o = self.options
        o.data.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            self.client = ConfigClient(
                ConfigClientConfig(o.mg, o.name, o.token, o.data, refresh=o.config_refresh),
                on_change=self._config_changed,
            )
            self.client.start()
            stack.callback(self.client.stop)
            view = self.client.current
            self._view = view
            if o.routing_upload > 0 and (o.routing is not None or o.bmp is not None):
                self.publisher = RoutingPublisher(
                    PublisherConfig(o.mg, o.name, o.token, every=o.routing_upload),
                    pes=self._my_pes,
                )
                self.publisher.start()
                stack.callback(self.publisher.stop)
            if o.bmp is not None:
                self._start_bmp(view, stack)
            self._routing_seen = self._manifest_stamp()
            if self.live is None:
                routing = self._routing(view)
            else:
                routing = None if self.centralized else self._live_compiled
            self.pipeline = Pipeline(
                PipelineConfig(o.name, grace=o.grace, settle=o.settle, mode=o.mode),
                view=view,
                files=IngressFiles(o.data / "ingress"),
                state_path=o.data / "state.json",
                routing=routing,
                decoder=self.decoder,
            )
            self.uploader = Uploader(
                UploaderConfig(o.mg, o.name, o.token, o.data / "spool"),
                on_delivered=self.pipeline.delivered,
            )
            self.uploader.start()
            stack.callback(self.uploader.stop)
            self.pipeline.start()
            stack.callback(self.pipeline.stop)
            self._start_collector(view)
            stack.callback(self._stop_collector)
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="frp-tick", daemon=True)
            self._thread.start()
            if o.routing is not None and o.routing_check > 0:
                self._watch = threading.Thread(
                    target=self._watch_routing, name="frp-routing-watch", daemon=True
                )
                self._watch.start()
            stack.callback(self._stop_ticks)
            if o.metrics is not None:
                stack.callback(self._serve_metrics(*o.metrics))
            self._stack = stack.pop_all()
        log.info(
            "component=frp.service frp=%s listening=%s data=%s mg=%s",
            o.name,
            self.addresses,
            o.data,
            o.mg,
        )

    def _pes_in(self, view: NetworkConfig) -> list[str]:
        """The PEs of this FRP in ``view``."""
        return [p.name for p in view.pes_of(self.options.name)]

    def _my_pes(self) -> list[str]:
        """The PEs of this FRP in the current view."""
        return self._pes_in(self._view) if self._view is not None else []

    def _start_bmp(self, view: NetworkConfig, stack: contextlib.ExitStack) -> None:
        """Live routing over BMP: reload the last snapshot, then accept sessions."""
        o = self.options
        assert o.bmp is not None
        self.live = LiveRouting(
            LiveConfig(
                interval=o.bmp_interval,
                snapshot_dir=o.data / "bmp-snapshot",
                save_every=o.bmp_save,
            ),
            view,
            base=self._base_state(view),
            on_state=self._live_state,
        )
        self.live.start()
        stack.callback(self.live.stop)
        self.bmp = BmpServer(BmpServerConfig(host=o.bmp[0], port=o.bmp[1]), self.live)
        self.bmp.start()
        stack.callback(self.bmp.stop)
        # the last snapshot is written before the sessions close (closing withdraws everything)
        stack.callback(self.live.save)

    def _live_state(self, state: RoutingState) -> None:
        """A new live snapshot: compile a copy of the state and hand it to the pipeline."""
        assert self.live is not None
        with self.live.lock:
            frozen = RoutingState(
                state.config,
                {k: list(v) for k, v in state.pe_versions.items()},
                list(state.rr_versions),
            )
        if self.publisher is not None:
            self.publisher.offer(frozen)
        if self.centralized:
            return
        compiled = compile_state(frozen)
        self._live_compiled = compiled
        log.info(
            "component=frp.service routing=bmp versions=%d rr_versions=%d",
            len(compiled.versions),
            len(frozen.rr_versions),
        )
        if self.pipeline is not None and self._view is not None:
            self.pipeline.update_view(self._view, compiled)

    def _serve_metrics(self, host: str, port: int) -> Callable[[], None]:
        """Serve Prometheus ``/metrics`` on ``host:port``; returns how to stop it."""
        server, thread = prometheus_client.start_http_server(port, addr=host)
        self.metrics_port = int(server.server_address[1])
        log.info("component=frp.service metrics=http://%s:%d/metrics", host, self.metrics_port)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop

    def stop(self) -> None:
        """Stop every component in reverse order (buffered records go to part files)."""
        self._stack.close()
        log.info("component=frp.service frp=%s stopped", self.options.name)

    def _start_collector(self, view: NetworkConfig) -> None:
        assert self.pipeline is not None
        self.collector = Collector(
            CollectorConfig(
                listen=self._listen,
                exporters=allowed_exporters(view, self.options.name),
                receive_buffer=self.options.receive_buffer,
            ),
            sink=self.pipeline.sink,
            decoder=self.decoder,
        )
        self.collector.start()

    def _stop_collector(self) -> None:
        if self.collector is not None:
            self.collector.stop()

    def _stop_ticks(self) -> None:
        self._stopping.set()
        for thread in (self._thread, self._watch):
            if thread is not None:
                thread.join()
        self._thread = self._watch = None

    def _config_changed(self, view: NetworkConfig) -> None:
        """A new view from the MG: new plan and routing; the collector accepts its exporters."""
        assert self.pipeline is not None
        with self._routing_lock:
            try:
                routing = self._routing(view)
            except Exception:  # keep running on the old view rather than die on a bad table
                log.exception("component=frp.service config=changed routing=unusable kept=old")
                return
            self._view = view
            self.pipeline.update_view(view, routing)
        if self.collector is not None:
            self.collector.allow(allowed_exporters(view, self.options.name))
        log.info("component=frp.service config=changed")

    def tick(self) -> int:
        """Hand every due period to the uploader; returns how many were spooled."""
        assert self.pipeline is not None
        assert self.uploader is not None
        uploads = self.pipeline.due()
        for upload in uploads:
            self.uploader.submit(upload)
            log.info(
                "component=frp.service interval=%s period=%d revision=%d records=%d rows=%d",
                upload.interval,
                upload.period_start_ms,
                upload.meta.revision,
                upload.meta.records,
                upload.table.num_rows,
            )
        return len(uploads)

    def _manifest_stamp(self) -> tuple[int, int] | None:
        """(mtime ns, size) of ``--routing``'s manifest; None without one."""
        if self.options.routing is None:
            return None
        try:
            stat = (find_routing_dir(self.options.routing) / "manifest.json").stat()
        except (OSError, FlowmatrixError):
            return None
        return stat.st_mtime_ns, stat.st_size

    def check_routing(self) -> bool:
        """Read ``--routing`` again when its manifest changed since last read; True if so.

        An unreadable directory keeps the tables in force (logged; tried again
        when the manifest changes again).
        """
        stamp = self._manifest_stamp()
        if stamp is None or stamp == self._routing_seen or self._view is None:
            return False
        assert self.pipeline is not None
        with self._routing_lock:
            self._routing_seen = stamp
            view = self._view
            try:
                routing = self._routing(view)
            except Exception:  # bad tables must not stop the FRP: it keeps resolving as before
                log.exception("component=frp.service routing=changed unusable kept=old")
                return False
            if self.live is None:
                self.pipeline.update_view(view, routing)
        log.info("component=frp.service routing=reloaded dir=%s", self.options.routing)
        return True

    def _run(self) -> None:
        assert self.pipeline is not None
        last_flush = time.monotonic()
        while not self._stopping.wait(self.options.tick):
            try:
                if time.monotonic() - last_flush >= self.options.flush:
                    self.pipeline.flush()
                    last_flush = time.monotonic()
                self.tick()
            except Exception:  # a failing tick must not end the FRP; it is logged, retried
                log.exception("component=frp.service tick=failed")

    def _watch_routing(self) -> None:
        while not self._stopping.wait(self.options.routing_check):
            try:
                self.check_routing()
            except Exception:  # a failing look must not end the watch; logged, tried again
                log.exception("component=frp.service routing_watch=failed")


def run(options: FrpOptions, *, ready: Callable[[FrpService], None] | None = None) -> int:
    """Run one FRP until SIGTERM or SIGINT, then flush and stop; the exit status."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("component=frp.service signal=%s stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    service = FrpService(options)
    try:
        service.start()
        if ready is not None:
            ready(service)
        while not stop.wait(1.0):
            pass
    finally:
        service.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
