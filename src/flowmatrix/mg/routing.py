"""The MG's routing tables: a static directory, merged with what the FRPs send.

Each FRP sends the tables it resolves with — its PEs' RD, connected and own
BGP tables and the route reflector's view — as a routing bundle
(:mod:`flowmatrix.routing.bundle`) to ``PUT /api/v1/frps/{frp}/routing``,
when they change and at most every ``--routing-upload`` seconds. The MG
keeps the newest :data:`KEEP` bundles of every FRP as files
(``DIR/<frp>/<received ms>-<digest>.tar.gz``, written atomically, next to the
store), merges them over the tables of ``mg serve --routing DIR`` and
compiles the result: ``/routing/explain`` (the dashboard's routing page) and
centralized mode (the MG resolves ingress records) then work without a copy
of every PE's files at the MG. Versions stay time-stamped: a flow is resolved
with the tables in force at its time, as far back as the kept bundles go.

A bundle naming a PE of another FRP, or unsafe or unreadable, is refused
whole (400) and the previous tables stay in force; an identical bundle is
acknowledged and changes nothing.

>>> from flowmatrix.config.model import NetworkConfig
>>> tables = MgRouting(NetworkConfig(name="n", asn=1))
>>> tables.start()
>>> tables.compiled is None, tables.status()
(True, [])
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import RoutingError, UploadError
from flowmatrix.files import write_atomic
from flowmatrix.matrix.store import Principal
from flowmatrix.mg.app import Frp, MgState, State, UnsupportedMediaType, read_body
from flowmatrix.mg.auth import for_frp, operator
from flowmatrix.routing.bundle import MAX_BUNDLE_BYTES, read_bundle
from flowmatrix.routing.native import read_native
from flowmatrix.routing.resolve import Compiled, compile_state
from flowmatrix.routing.tables import RoutingState

__all__ = ["BUNDLE_MEDIA_TYPE", "KEEP", "MgRouting", "mg_routing_uploads_total", "routing_router"]

log = logging.getLogger("flowmatrix.mg.routing")

#: media type of a routing bundle
BUNDLE_MEDIA_TYPE = "application/gzip"
#: bundles kept per FRP: how far back flows can be resolved with the tables of their time
KEEP = 4
_FILE = re.compile(r"^(\d{13,})-([0-9a-f]{16})\.tar\.gz$")

mg_routing_uploads_total = Counter(
    "mg_routing_uploads_total", "Routing bundles FRPs sent, by outcome.", ["status"]
)


@dataclass(frozen=True, slots=True)
class _Bundle:
    """One kept bundle of an FRP: when it arrived, its digest, what it held and its tables.

    ``state`` holds only the table versions no newer bundle also holds (see
    :meth:`MgRouting._share`); ``pes`` and ``rr_taken_at_ms`` say what the
    bundle itself held.
    """

    received_ms: int
    digest: str
    size: int
    state: RoutingState
    #: PE → times of the versions the bundle held
    pes: dict[str, list[int]]
    rr_taken_at_ms: list[int]
    rr_paths: int

    @classmethod
    def of(cls, received_ms: int, digest: str, size: int, state: RoutingState) -> _Bundle:
        """A bundle and the summary of what it holds."""
        return cls(
            received_ms,
            digest,
            size,
            state,
            {pe: [v.taken_at_ms for v in vs] for pe, vs in sorted(state.pe_versions.items())},
            [rr.taken_at_ms for rr in state.rr_versions],
            sum(len(rr.vpn) + len(rr.global_bgp) for rr in state.rr_versions),
        )


class MgRouting:
    """Every PE's routing tables at the MG: ``start()`` loads, :meth:`put` takes a bundle.

    ``base`` is a native routing directory read at start (``mg serve
    --routing``); ``directory`` keeps the FRPs' bundles across restarts (None:
    in memory only).
    """

    def __init__(
        self,
        config: NetworkConfig,
        *,
        base: Path | None = None,
        directory: Path | None = None,
        keep: int = KEEP,
        max_bytes: int = MAX_BUNDLE_BYTES,
    ) -> None:
        self.config = config
        self.base = base
        self.directory = directory
        self.keep = keep
        self.max_bytes = max_bytes
        self.compiled: Compiled | None = None
        self._base_state: RoutingState | None = None
        self._bundles: dict[str, list[_Bundle]] = {}
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Read the base directory and the kept bundles, then compile (unreadable ones skipped)."""
        if self.base is not None:
            self._base_state = read_native(self.base, self.config)
        frps = {f.name for f in self.config.frps}
        if self.directory is not None and self.directory.is_dir():
            for sub in sorted(self.directory.iterdir()):  # per FRP
                frp = unquote(sub.name)
                if not sub.is_dir() or frp not in frps:
                    log.warning("component=mg.routing skipped=%s reason=not-an-frp", sub)
                    continue
                for path in sorted(sub.iterdir()):  # per kept bundle: at most KEEP
                    self._load(frp, path)
        with self._lock:
            self._compile()
        log.info(
            "component=mg.routing base=%s bundles=%d versions=%d",
            self.base,
            sum(len(b) for b in self._bundles.values()),
            len(self.compiled.versions) if self.compiled is not None else 0,
        )

    def stop(self) -> None:
        """Nothing to release (bundles are written when they arrive)."""

    def _load(self, frp: str, path: Path) -> None:
        m = _FILE.match(path.name)
        if m is None:
            if path.name.startswith("."):  # a write that did not finish
                path.unlink(missing_ok=True)
            return
        try:
            data = path.read_bytes()
            state = read_bundle(data, self.config, allowed=self._pes(frp), max_bytes=self.max_bytes)
        except (OSError, RoutingError) as exc:
            log.warning("component=mg.routing frp=%s bundle=%s skipped: %s", frp, path.name, exc)
            return
        kept = self._bundles.setdefault(frp, [])
        kept.append(_Bundle.of(int(m.group(1)), m.group(2), len(data), state))
        kept.sort(key=lambda b: b.received_ms)

    def _pes(self, frp: str) -> set[str]:
        return {p.name for p in self.config.pes_of(frp)}

    # --- bundles in ------------------------------------------------------------------------------

    def put(self, frp: str, data: bytes, *, now_ms: int | None = None) -> dict[str, Any]:
        """Take one bundle of ``frp``: ``stored`` (kept and compiled in) or ``unchanged``.

        Raises :class:`~flowmatrix.errors.UploadError` for a bundle that cannot be
        used (the tables in force stay) and LookupError for an unknown FRP.
        """
        if frp not in {f.name for f in self.config.frps}:
            msg = f"unknown FRP {frp!r}"
            raise LookupError(msg)
        digest = hashlib.sha256(data).hexdigest()[:16]
        with self._lock:
            kept = self._bundles.get(frp, [])
            if kept and kept[-1].digest == digest:
                mg_routing_uploads_total.labels(status="unchanged").inc()
                return self._receipt(frp, "unchanged", kept[-1])
        try:
            state = read_bundle(data, self.config, allowed=self._pes(frp), max_bytes=self.max_bytes)
        except RoutingError as exc:
            mg_routing_uploads_total.labels(status="rejected").inc()
            log.warning("component=mg.routing frp=%s bundle=refused: %s", frp, exc)
            raise UploadError(str(exc)) from None
        received = int(time.time() * 1000) if now_ms is None else now_ms
        bundle = _Bundle.of(received, digest, len(data), state)
        with self._lock:
            self._write(frp, bundle, data)
            kept = self._bundles.setdefault(frp, [])
            kept.append(bundle)
            for old in kept[: -self.keep]:
                self._forget(frp, old)
            del kept[: -self.keep]
            self._compile()
        mg_routing_uploads_total.labels(status="stored").inc()
        log.info(
            "component=mg.routing frp=%s bundle=stored octets=%d pes=%d rr_versions=%d",
            frp,
            len(data),
            len(bundle.pes),
            len(bundle.rr_taken_at_ms),
        )
        return self._receipt(frp, "stored", bundle)

    def _path(self, frp: str, bundle: _Bundle) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / quote(frp, safe="") / f"{bundle.received_ms}-{bundle.digest}.tar.gz"

    def _write(self, frp: str, bundle: _Bundle, data: bytes) -> None:
        path = self._path(frp, bundle)
        if path is not None:
            write_atomic(path, data)

    def _forget(self, frp: str, bundle: _Bundle) -> None:
        path = self._path(frp, bundle)
        if path is not None:
            path.unlink(missing_ok=True)

    def _share(self) -> None:
        """Hold each table version once (lock held): FRPs of one network send the same route
        reflector view, and an FRP the same PE tables again; the newest bundle's copy of a
        (PE, time) or route reflector time is kept, and only the newest ``keep`` route
        reflector versions in all (each may be a million paths)."""
        newest_first = sorted(
            (b for kept in self._bundles.values() for b in kept),
            key=lambda b: b.received_ms,
            reverse=True,
        )
        rr_times = sorted(
            {rr.taken_at_ms for b in newest_first for rr in b.state.rr_versions}, reverse=True
        )[: self.keep]
        seen_pe: set[tuple[str, int]] = set()
        seen_rr: set[int] = set()
        for b in newest_first:  # per kept bundle: at most keep per FRP
            for pe, versions in list(b.state.pe_versions.items()):
                mine = [v for v in versions if (pe, v.taken_at_ms) not in seen_pe]
                seen_pe.update((pe, v.taken_at_ms) for v in mine)
                if mine:
                    b.state.pe_versions[pe] = mine
                else:
                    del b.state.pe_versions[pe]
            rrs = [
                rr
                for rr in b.state.rr_versions
                if rr.taken_at_ms in rr_times and rr.taken_at_ms not in seen_rr
            ]
            seen_rr.update(rr.taken_at_ms for rr in rrs)
            b.state.rr_versions = rrs

    def _compile(self) -> None:
        """Merge the base tables and every kept bundle, oldest first; compile (lock held)."""
        self._share()
        merged = RoutingState(self.config)
        sources = [self._base_state] if self._base_state is not None else []
        bundles = sorted(
            (b for kept in self._bundles.values() for b in kept), key=lambda b: b.received_ms
        )
        for state in [*sources, *(b.state for b in bundles)]:  # per table source: a few
            merged.absorb(state)
        has_tables = bool(merged.pe_versions or merged.rr_versions)
        self.compiled = compile_state(merged) if has_tables else None

    # --- reads -----------------------------------------------------------------------------------

    def _receipt(self, frp: str, status: str, bundle: _Bundle) -> dict[str, Any]:
        return {
            "frp": frp,
            "status": status,
            "received_ms": bundle.received_ms,
            "digest": bundle.digest,
            "pes": sorted(bundle.pes),
            "rr_taken_at_ms": bundle.rr_taken_at_ms,
        }

    def status(self) -> list[dict[str, Any]]:
        """Per FRP that sent tables: its kept bundles, newest last."""
        with self._lock:
            return [
                {
                    "frp": frp,
                    "bundles": [
                        {
                            "received_ms": b.received_ms,
                            "digest": b.digest,
                            "octets": b.size,
                            "pes": b.pes,
                            "rr_taken_at_ms": b.rr_taken_at_ms,
                            "rr_paths": b.rr_paths,
                        }
                        for b in kept
                    ],
                }
                for frp, kept in sorted(self._bundles.items())
            ]


# --- routes --------------------------------------------------------------------------------------

routing_router = APIRouter(tags=["routing"])

_BUNDLE_BODY = {
    "requestBody": {
        "required": True,
        "content": {BUNDLE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _tables(state: MgState) -> MgRouting:
    if state.tables is None:
        msg = "this MG keeps no routing tables"
        raise LookupError(msg)
    return state.tables


@routing_router.put("/frps/{frp}/routing", openapi_extra=_BUNDLE_BODY)
async def put_routing(
    request: Request,
    frp: Frp,
    _: Annotated[Principal, Depends(for_frp)],
) -> dict[str, Any]:
    """An FRP's routing tables (a routing bundle): kept, merged with the others' and compiled,
    so ``/routing/explain`` and centralized mode use them; ``unchanged`` when identical."""
    state: MgState = request.app.state.mg
    tables = _tables(state)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != BUNDLE_MEDIA_TYPE:
        mg_routing_uploads_total.labels(status="rejected").inc()
        msg = f"content type {media or 'missing'!r}; expected {BUNDLE_MEDIA_TYPE}"
        raise UnsupportedMediaType(msg)
    body = await read_body(request, state.max_body)
    receipt = await run_in_threadpool(tables.put, frp, body)
    state.routing = tables.compiled
    return receipt


@routing_router.get("/routing")
def routing_status(state: State, _: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
    """What routing tables the MG holds: the base directory, and per FRP its kept bundles
    (arrival, digest, PEs with their table times, route reflector versions)."""
    tables = state.tables
    return {
        "base": str(tables.base) if tables is not None and tables.base is not None else None,
        "compiled": state.routing is not None,
        "frps": tables.status() if tables is not None else [],
    }
