"""The MG's configuration → this FRP's view, downloaded with ETag, last good copy in ``DATA``.

``GET /api/v1/frps/<frp>/config`` with ``If-None-Match``; a new document is
parsed and checked before it replaces ``DATA/config.xml`` (and its ETag in
``DATA/config.etag``). At start, when the MG cannot be reached, the copy on
disk is used; with neither the FRP refuses to start. A thread refreshes the
view every ``refresh`` seconds and calls ``on_change`` when it changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import config_from_bytes
from flowmatrix.errors import AuthError, ConfigError, ConfigProblem, FlowmatrixError
from flowmatrix.files import write_atomic

__all__ = ["ConfigClient", "ConfigClientConfig"]

log = logging.getLogger("flowmatrix.frp.client")


@dataclass(frozen=True, slots=True)
class ConfigClientConfig:
    """Where the configuration comes from and where its last good copy is kept."""

    mg: str
    frp: str
    token: str
    #: directory holding ``config.xml`` and ``config.etag``
    data: Path
    #: seconds between refreshes; 0 = never
    refresh: float = 60.0
    timeout: float = 10.0


class ConfigClient:
    """Download the FRP's configuration view and keep it fresh."""

    def __init__(
        self,
        config: ConfigClientConfig,
        *,
        on_change: Callable[[NetworkConfig], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.on_change = on_change
        self._transport = transport
        self.view: NetworkConfig | None = None
        self.etag: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        """The last good configuration on disk."""
        return self.config.data / "config.xml"

    @property
    def current(self) -> NetworkConfig:
        """The configuration in force (after :meth:`start`)."""
        if self.view is None:
            msg = "the config client has not started"
            raise RuntimeError(msg)
        return self.view

    def start(self) -> None:
        """Get the configuration (from the MG, else from disk) and start refreshing it."""
        try:
            self.fetch()
        except (httpx.HTTPError, FlowmatrixError) as exc:
            if isinstance(exc, AuthError) or not self.path.is_file():
                if isinstance(exc, FlowmatrixError):
                    raise
                problem = ConfigProblem(
                    self.config.mg,
                    0,
                    "",
                    f"no configuration: MG unreachable ({exc}) and no {self.path}",
                )
                raise ConfigError([problem]) from exc
            self.view = config_from_bytes(self.path.read_bytes(), str(self.path))
            etag = self.path.with_suffix(".etag")
            self.etag = etag.read_text().strip() if etag.is_file() else None
            log.warning(
                "component=frp.client mg=%s error=%s using=%s", self.config.mg, exc, self.path
            )
        if self.config.refresh > 0:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="frp-config", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop refreshing."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def fetch(self) -> bool:
        """Ask the MG for the view; True when it changed (and was stored)."""
        url = f"{self.config.mg.rstrip('/')}/api/v1/frps/{quote(self.config.frp, safe='')}/config"
        headers = {"Authorization": f"Bearer {self.config.token}"}
        if self.etag is not None and self.view is not None:
            headers["If-None-Match"] = self.etag
        with httpx.Client(timeout=self.config.timeout, transport=self._transport) as client:
            response = client.get(url, headers=headers)
        if response.status_code == 304:
            return False
        if response.status_code in (401, 403):
            msg = f"MG refused the token of FRP {self.config.frp!r}: HTTP {response.status_code}"
            raise AuthError(msg)
        response.raise_for_status()
        data = response.content
        view = config_from_bytes(data, url)  # ConfigError when unusable: the old one stays
        changed = view != self.view
        write_atomic(self.path, data)
        self.etag = response.headers.get("ETag")
        write_atomic(self.path.with_suffix(".etag"), (self.etag or "").encode())
        self.view = view
        log.info(
            "component=frp.client mg=%s etag=%s changed=%s", self.config.mg, self.etag, changed
        )
        return changed

    def _run(self) -> None:
        while not self._stopping.wait(self.config.refresh):
            try:
                changed = self.fetch()
            except (httpx.HTTPError, FlowmatrixError) as exc:
                log.warning("component=frp.client mg=%s refresh_error=%s", self.config.mg, exc)
                continue
            if changed and self.on_change is not None and self.view is not None:
                self.on_change(self.view)
