"""The FRP's routing tables → the MG, as a routing bundle, when they change.

Whenever the FRP's tables change (read at start or on a configuration
change, or a live BMP snapshot), :meth:`RoutingPublisher.offer` hands the new
:class:`~flowmatrix.routing.tables.RoutingState` over; one thread packs the
FRP's PEs and the route reflector's view (:func:`~flowmatrix.routing.bundle.pack`)
and sends it with ``PUT /api/v1/frps/<frp>/routing``, the first at once, the
next no sooner than ``every`` seconds after the previous one. Only the newest
state waits: an older one not yet sent is replaced. A failed send is retried
after ``retry`` seconds; a refused one (4xx other than 401, 403, 408, 429) is
logged and dropped until the tables change again. The MG then explains
lookups and resolves centralized-mode records with the FRP's own tables (see
:mod:`flowmatrix.mg.routing`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from prometheus_client import Counter

from flowmatrix.errors import FlowmatrixError
from flowmatrix.routing.bundle import pack
from flowmatrix.routing.tables import RoutingState

__all__ = ["PublisherConfig", "RoutingPublisher", "frp_routing_uploads_total"]

log = logging.getLogger("flowmatrix.frp.publisher")

frp_routing_uploads_total = Counter(
    "frp_routing_uploads_total", "Routing bundles sent to the MG, by outcome.", ["status"]
)

#: answers worth sending again later (as the partial uploader retries them)
_RETRY = frozenset({401, 403, 408, 429})


@dataclass(frozen=True, slots=True)
class PublisherConfig:
    """Where routing bundles go and how often."""

    #: base URL of the MG, e.g. ``http://127.0.0.1:8080``
    mg: str
    frp: str
    token: str
    #: seconds between two bundles at least (the first goes at once)
    every: float = 300.0
    #: seconds before a failed send is tried again
    retry: float = 30.0
    #: seconds for one HTTP request
    timeout: float = 120.0


class RoutingPublisher:
    """One thread sending the newest offered tables; ``pes()`` names the FRP's PEs now."""

    def __init__(
        self,
        config: PublisherConfig,
        *,
        pes: Callable[[], Sequence[str]],
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.pes = pes
        self.clock = clock
        self._transport = transport
        self._pending: RoutingState | None = None
        self._last_sent = float("-inf")
        self._not_before = float("-inf")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: bundles the MG accepted (stored or unchanged) since start
        self.sent = 0

    def offer(self, state: RoutingState) -> None:
        """The tables changed: send ``state`` when the rate allows (replacing a waiting one)."""
        with self._lock:
            self._pending = state
        self._wake.set()

    def start(self) -> None:
        """Start the sending thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="frp-routing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a bundle not yet sent is dropped (the next start sends again)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _due_in(self) -> float:
        """Seconds until the waiting state may be sent (inf when none waits)."""
        with self._lock:
            if self._pending is None:
                return float("inf")
        now = self.clock()
        return max(0.0, self._last_sent + self.config.every - now, self._not_before - now)

    def _run(self) -> None:
        while not self._stopping.is_set():
            wait = self._due_in()
            if wait > 0:
                self._wake.wait(min(wait, 3600.0))
                self._wake.clear()
                continue
            with self._lock:
                state, self._pending = self._pending, None
            if state is not None and not self.send(state):
                with self._lock:  # keep it unless a newer state arrived meanwhile
                    if self._pending is None:
                        self._pending = state
                self._not_before = self.clock() + self.config.retry

    def send(self, state: RoutingState) -> bool:
        """Pack and send ``state`` now; False when it should be tried again later."""
        cfg = self.config
        began = self.clock()
        try:
            data = pack(state, pes=list(self.pes()))
        except (FlowmatrixError, OSError) as exc:  # tables that cannot be written: next change
            frp_routing_uploads_total.labels(status="error").inc()
            log.error("component=frp.publisher bundle=unpackable: %s", exc)
            return True
        url = f"{cfg.mg.rstrip('/')}/api/v1/frps/{quote(cfg.frp, safe='')}/routing"
        try:
            with httpx.Client(timeout=cfg.timeout, transport=self._transport) as client:
                answer = client.put(
                    url,
                    content=data,
                    headers={
                        "Authorization": f"Bearer {cfg.token}",
                        "Content-Type": "application/gzip",
                    },
                )
        except httpx.HTTPError as exc:
            frp_routing_uploads_total.labels(status="retry").inc()
            log.warning(
                "component=frp.publisher bundle=not-sent retry_in=%.0fs: %s", cfg.retry, exc
            )
            return False
        code = answer.status_code
        if code < 300:
            self.sent += 1
            self._last_sent = self.clock()
            frp_routing_uploads_total.labels(status="delivered").inc()
            log.info(
                "component=frp.publisher bundle=delivered octets=%d status=%s seconds=%.2f",
                len(data),
                answer.json().get("status", "?"),
                self.clock() - began,
            )
            return True
        if code >= 500 or code in _RETRY:
            frp_routing_uploads_total.labels(status="retry").inc()
            log.warning(
                "component=frp.publisher bundle=not-accepted http=%d retry_in=%.0fs: %s",
                code,
                cfg.retry,
                answer.text[:300],
            )
            return False
        frp_routing_uploads_total.labels(status="rejected").inc()
        log.error("component=frp.publisher bundle=rejected http=%d: %s", code, answer.text[:300])
        self._last_sent = self.clock()  # a refused bundle counts: no resend before `every`
        return True
