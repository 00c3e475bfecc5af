"""The MG component wired by hand: configuration, store, tokens, statistics, HTTP server.

:class:`MgService` builds them in order and stops them in reverse; ``serve``
runs one in the foreground until SIGINT/SIGTERM (what ``flowmatrix mg
serve`` calls). The HTTP server is uvicorn with one worker: the store
serializes its DuckDB connection behind a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import uvicorn

from flowmatrix.capacity.topology import load_topology
from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import load_config
from flowmatrix.errors import ConfigError, ConfigProblem
from flowmatrix.matrix.store import Store
from flowmatrix.mg.app import create_app
from flowmatrix.mg.auth import issue_tokens
from flowmatrix.mg.routing import MgRouting
from flowmatrix.mg.stats import MgStats

__all__ = ["MgService", "config_files", "load_mg_config", "serve"]

log = logging.getLogger("flowmatrix.mg")


def config_files(path: Path) -> list[Path]:
    """The configuration files at ``path``: the file itself, or every ``*.xml`` in a directory."""
    if path.is_dir():
        files = sorted(path.glob("*.xml"))
        if not files:
            raise ConfigError([ConfigProblem(str(path), 0, "", "no *.xml file in directory")])
        return files
    return [path]


def load_mg_config(path: Path) -> NetworkConfig:
    """The checked configuration the MG serves, from a file or a directory of files."""
    return load_config(config_files(path))


class MgService:
    """The MG: configuration, store, statistics and HTTP server; started in order, stopped reversed.

    ``__init__`` only records its arguments; ``start()`` loads the
    configuration, opens the store, issues missing tokens (when
    ``issue_tokens`` names a directory), rebuilds the statistics from the
    stored periods and starts uvicorn in a thread;
    ``stop()`` undoes it. ``port=0`` picks a free port (see ``port`` after start).
    ``stats_detail`` keeps every period's finest elements for the ``if_pe``
    and ``vrf`` statistics (16 octets per ingress × interface × VRF × egress
    × class element and period, in memory and in the store).
    """

    def __init__(
        self,
        config_path: Path,
        db_path: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        issue_tokens: Path | None = None,
        routing: Path | None = None,
        topology: Path | None = None,
        log_level: str = "info",
        stats_detail: bool = True,
    ) -> None:
        self.config_path = config_path
        self.stats_detail = stats_detail
        self.routing = routing
        self.topology = topology
        self.db_path = db_path
        self.host = host
        self.port = port
        self.issue_tokens = issue_tokens
        self.log_level = log_level
        self.config: NetworkConfig | None = None
        self.store: Store | None = None
        self.stats: MgStats | None = None
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stack = ExitStack()

    @property
    def tables_dir(self) -> Path | None:
        """Where the FRPs' routing bundles are kept: ``<db>.routing/`` (None in memory)."""
        if str(self.db_path) == ":memory:":
            return None
        db = Path(self.db_path)
        return db.with_name(f"{db.name}.routing")

    def build(self) -> uvicorn.Server:
        """Load the configuration, open the store, issue tokens; the server, not yet running."""
        self.config = load_mg_config(self.config_path)
        self.store = Store(self.db_path)
        self.store.start()
        self._stack.callback(self.store.stop)
        if self.issue_tokens is not None:
            issue_tokens(self.store, self.config, self.issue_tokens)
        # every PE's tables: ``--routing DIR`` and what the FRPs send (kept beside the store)
        tables = MgRouting(self.config, base=self.routing, directory=self.tables_dir)
        tables.start()
        self._stack.callback(tables.stop)
        topology = None
        if self.topology is not None:
            topology = load_topology(self.topology)
            log.info(
                "component=mg topology=%s routers=%d links=%d",
                self.topology,
                len(topology.nodes),
                len(topology.links),
            )
        self.stats = MgStats(self.config, self.store, topology=topology, detail=self.stats_detail)
        self.stats.start()
        self._stack.callback(self.stats.stop)
        app = create_app(
            self.config, self.store, stats=self.stats, topology=topology, tables=tables
        )
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                log_level=self.log_level,
                workers=1,
                lifespan="off",
                access_log=self.log_level == "debug",
            )
        )
        log.info(
            "component=mg event=built network=%s frps=%d pes=%d db=%s",
            self.config.name,
            len(self.config.frps),
            len(self.config.pes),
            self.db_path,
        )
        return self.server

    def start(self, timeout: float = 10.0) -> None:
        """Build everything and run the server in a background thread until it listens."""
        try:
            server = self.build()
            self._thread = threading.Thread(target=server.run, name="mg-http", daemon=True)
            self._thread.start()
            self._stack.callback(self._stop_server)
            deadline = time.monotonic() + timeout
            while not server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    msg = f"MG server did not start on {self.host}:{self.port}"
                    raise RuntimeError(msg)
                time.sleep(0.02)
            sockets = [s for srv in server.servers for s in srv.sockets]
            if sockets:
                self.port = int(sockets[0].getsockname()[1])
        except BaseException:
            self._stack.close()
            raise
        log.info("component=mg event=started host=%s port=%d", self.host, self.port)

    def _stop_server(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def stop(self) -> None:
        """Stop the server, then close the store."""
        self._stack.close()
        log.info("component=mg event=stopped")


def serve(
    config_path: Path,
    db_path: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    issue_tokens_dir: Path | None = None,
    routing: Path | None = None,
    topology: Path | None = None,
    log_level: str = "info",
    stats_detail: bool = True,
) -> None:
    """Run the MG in the foreground until interrupted (SIGINT/SIGTERM), then close the store."""
    service = MgService(
        config_path,
        db_path,
        host=host,
        port=port,
        issue_tokens=issue_tokens_dir,
        routing=routing,
        topology=topology,
        log_level=log_level,
        stats_detail=stats_detail,
    )
    try:
        server = service.build()
        server.run()
    finally:
        service.stop()
