"""The MG's HTTP API (FastAPI): configuration views, partial uploads, periods and totals.

Everything lives under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``,
docs at ``/api/v1/docs``); Prometheus metrics at ``/metrics``. One exception
handler maps the error tree to status codes:

====================================  ======
UploadError (malformed body, mismatch)  400
ForecastError (history too short)       400
AuthError / auth.Forbidden              401 / 403
LookupError (unknown FRP, interval)     404
BodyTooLarge                            413
UnsupportedMediaType                    415
request parameter out of range          422
StoreError                              500
====================================  ======

Error bodies are ``{"error": "<one line>"}``. Nothing is stored when a
request fails. Store calls are serialized by the store's lock; uvicorn runs
one worker.

>>> from flowmatrix.config.model import NetworkConfig
>>> from flowmatrix.matrix.store import Store
>>> with Store(":memory:") as store:
...     app = create_app(NetworkConfig(name="n", asn=1), store)
>>> sorted(p for p in app.openapi()["paths"] if "partials" in p)[0]
'/api/v1/partials/{frp}/{interval}/{period_start_ms}'
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from flowmatrix import __version__
from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import config_to_bytes
from flowmatrix.errors import AuthError, FlowmatrixError, StoreError, UploadError
from flowmatrix.matrix.aggregate import IngressPlan, aggregate, resolve_ingress
from flowmatrix.matrix.partial import (
    MAX_BODY,
    MEDIA_TYPE,
    PARTIAL_SCHEMA,
    PARTIAL_VALUES,
    PartialMeta,
    decode_ingress,
    decode_partial,
    digest,
)
from flowmatrix.matrix.store import Principal, Store
from flowmatrix.matrix.total import (
    Granularity,
    PeriodStatus,
    expected_frps,
    period_statuses,
    total_matrix,
)
from flowmatrix.mg.auth import Forbidden, for_frp, operator, reader_of
from flowmatrix.mg.stats import (
    DETAIL_GRANULARITIES,
    DETAIL_OFF,
    ForecastError,
    MgStats,
    StatsGranularity,
    Timescale,
    element_forecast,
    stats_columns,
)
from flowmatrix.routing.resolve import Compiled
from flowmatrix.stats.busy import BusyHour

if TYPE_CHECKING:
    from flowmatrix.capacity.topology import Topology
    from flowmatrix.mg.routing import MgRouting

__all__ = [
    "API_PREFIX",
    "MAX_MS",
    "BodyTooLarge",
    "MgState",
    "NotReady",
    "UnsupportedMediaType",
    "create_app",
    "read_body",
]

log = logging.getLogger("flowmatrix.mg")

#: every route of the API lives under this prefix
API_PREFIX = "/api/v1"
#: largest timestamp accepted in paths and queries (2**53 − 1: exact in JSON doubles)
MAX_MS = 2**53 - 1
#: media types of the matrix formats
_FORMATS = {
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}

mg_uploads_total = Counter("mg_uploads_total", "Partial matrix uploads, by outcome.", ["status"])
mg_upload_bytes_total = Counter(
    "mg_upload_bytes_total",
    "Octets of upload bodies received: partial matrices, or ingress records (centralized).",
    ["kind"],
)
mg_periods_incomplete = Gauge(
    "mg_periods_incomplete", "Stored read-out periods still missing an expected FRP."
)


class BodyTooLarge(UploadError):
    """An upload body is larger than the MG accepts (HTTP 413)."""


class UnsupportedMediaType(UploadError):
    """An upload body is not of the expected media type (HTTP 415)."""


class NotReady(UploadError):
    """An upload the MG cannot take yet, e.g. ingress records before any routing table
    (HTTP 503: the FRP keeps it and tries again)."""


@dataclass
class MgState:
    """What the routes share: the configuration, the store, and the per-FRP config views."""

    config: NetworkConfig
    store: Store
    max_body: int = MAX_BODY
    #: FRP name → (XML of its view, strong ETag), built on first request
    views: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    #: routing tables of every PE (centralized mode: the MG resolves ingress records)
    routing: Compiled | None = None
    #: where ``routing`` comes from: the base directory and the FRPs' routing bundles
    tables: MgRouting | None = None
    #: per-interval element statistics and busy hour, fed by stored uploads
    stats: MgStats | None = None
    #: the backbone topology (``mg serve --topology``): link loads, what-ifs; None = not loaded
    topology: Topology | None = None
    _plan: IngressPlan | None = None

    @property
    def plan(self) -> IngressPlan:
        """The configuration compiled for aggregation (built on first use)."""
        if self._plan is None:
            self._plan = IngressPlan(self.config)
        return self._plan

    def view(self, frp: str) -> tuple[bytes, str]:
        """The XML of FRP ``frp``'s configuration view and its ETag; LookupError if unknown."""
        if frp not in self.views:
            try:
                xml = config_to_bytes(self.config.view_for_frp(frp))
            except KeyError:
                msg = f"unknown FRP {frp!r}"
                raise LookupError(msg) from None
            self.views[frp] = (xml, f'"{hashlib.sha256(xml).hexdigest()}"')
        return self.views[frp]

    def check_interval(self, interval: str) -> None:
        """LookupError unless ``interval`` is an interval of the configuration."""
        if interval not in {i.id for i in self.config.intervals}:
            msg = f"unknown interval {interval!r}"
            raise LookupError(msg)


def _state(request: Request) -> MgState:
    state: MgState = request.app.state.mg
    return state


State = Annotated[MgState, Depends(_state)]
Frp = Annotated[str, Path(min_length=1, max_length=200, description="FRP name.")]
IntervalId = Annotated[str, Path(min_length=1, max_length=200, description="Interval id.")]
PeriodStart = Annotated[
    int, Path(ge=0, le=MAX_MS, description="Read-out period start, unix milliseconds.")
]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status, headers=headers)


def _status_of(exc: Exception) -> int:
    if isinstance(exc, BodyTooLarge):
        return 413
    if isinstance(exc, UnsupportedMediaType):
        return 415
    if isinstance(exc, NotReady):
        return 503
    if isinstance(exc, UploadError | ForecastError):
        return 400
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, LookupError):
        return 404
    return 500


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    """Map the error tree (and lookups, validation and HTTP errors) to JSON error bodies."""
    if isinstance(exc, StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")
    status = _status_of(exc)
    if status == 500:
        log.error("component=api event=error path=%s error=%s", request.url.path, exc)
    message = str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    return _error(status, message, headers)


# --- routes -------------------------------------------------------------------------------------

meta_router = APIRouter(tags=["meta"])
config_router = APIRouter(tags=["configuration"])
partials_router = APIRouter(tags=["partials"])
ingress_router = APIRouter(tags=["centralized mode"])
matrix_router = APIRouter(tags=["matrix"])
stats_router = APIRouter(tags=["statistics"])


@meta_router.get("/health")
def health() -> dict[str, str | int]:
    """Whether the MG is up, its version and its clock (unix ms, for clock-skew checks)."""
    return {"status": "ok", "version": __version__, "time_ms": time.time_ns() // 1_000_000}


@config_router.get(
    "/frps/{frp}/config",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}, 304: {"description": "Not modified"}},
)
def frp_config(
    frp: Frp,
    state: State,
    _: Annotated[Principal, Depends(reader_of)],
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """The XML configuration view of one FRP, with a strong ETag (If-None-Match → 304)."""
    xml, etag = state.view(frp)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
    return Response(xml, media_type="application/xml", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` octets (BodyTooLarge, 413) as it streams in."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            msg = f"bad Content-Length {length[:40]!r}"
            raise UploadError(msg)
        if int(length) > limit:
            msg = f"body of {int(length):,} octets exceeds {limit:,}"
            raise BodyTooLarge(msg)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            msg = f"body exceeds {limit:,} octets"
            raise BodyTooLarge(msg)
        chunks.append(chunk)
    return b"".join(chunks)


def _store_partial(
    state: MgState, frp: str, interval: str, period_start_ms: int, body: bytes
) -> dict[str, Any]:
    table, meta = decode_partial(body)
    return check_and_store(state, frp, interval, period_start_ms, table, meta)


def check_and_store(
    state: MgState,
    frp: str,
    interval: str,
    period_start_ms: int,
    table: pa.Table,
    meta: PartialMeta,
) -> dict[str, Any]:
    """Check a decoded partial against its path and the configuration, then store it."""
    if (meta.frp, meta.interval, meta.period_start_ms) != (frp, interval, period_start_ms):
        msg = (
            f"envelope ({meta.frp}, {meta.interval}, {meta.period_start_ms}) does not match "
            f"the path ({frp}, {interval}, {period_start_ms})"
        )
        raise UploadError(msg)
    if meta.period_end_ms > MAX_MS:
        msg = f"period_end_ms {meta.period_end_ms} out of range"
        raise UploadError(msg)
    nulls = [name for name in PARTIAL_SCHEMA.names if table[name].null_count]
    if nulls:
        msg = f"partial matrix: null values in {', '.join(nulls)}"
        raise UploadError(msg)
    infinite = [v for v in PARTIAL_VALUES if not pc.all(pc.is_finite(table[v])).as_py()]
    if table.num_rows and infinite:
        msg = f"partial matrix: infinite values in {', '.join(infinite)}"
        raise UploadError(msg)
    own = pa.array([pe.name for pe in state.config.pes_of(frp)], pa.string())
    foreign = pc.unique(
        pc.filter(table["ingress_pe"], pc.invert(pc.is_in(table["ingress_pe"], own)))
    )
    if len(foreign):
        names = ", ".join(str(x) for x in foreign.to_pylist()[:5])
        msg = f"partial matrix: ingress PEs not exporting to {frp}: {names}"
        raise UploadError(msg)
    content = digest(table, meta)
    result = state.store.put_partial(table, meta, content_digest=content)
    if result.status == "stored":
        mg_periods_incomplete.set(state.store.count_incomplete(expected_frps(state.config)))
        if state.stats is not None:
            # statistics follow the stored matrices: a failure there must not fail the upload
            try:
                state.stats.observe(interval, period_start_ms)
            except Exception:
                log.exception(
                    "component=stats event=error interval=%s period_start_ms=%d",
                    interval,
                    period_start_ms,
                )
    return {"status": result.status, "version": result.version, "digest": result.digest}


_BODY = {
    "requestBody": {
        "required": True,
        "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


async def _receive(
    request: Request,
    frp: str,
    interval: str,
    period_start_ms: int,
    kind: Literal["partial", "ingress"],
    store: Callable[[MgState, str, str, int, bytes], dict[str, Any]],
) -> dict[str, Any]:
    """Check an upload's path and media type, read its body and store it (in a thread)."""
    state = _state(request)
    try:
        if frp not in {f.name for f in state.config.frps}:
            msg = f"unknown FRP {frp!r}"
            raise LookupError(msg)
        state.check_interval(interval)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != MEDIA_TYPE:
            msg = f"content type {media or 'missing'!r}; expected {MEDIA_TYPE}"
            raise UnsupportedMediaType(msg)
        body = await read_body(request, state.max_body)
        mg_upload_bytes_total.labels(kind=kind).inc(len(body))
        result = await run_in_threadpool(store, state, frp, interval, period_start_ms, body)
    except (FlowmatrixError, LookupError):
        mg_uploads_total.labels(status="rejected").inc()
        raise
    mg_uploads_total.labels(status=result["status"]).inc()
    log.info(
        "component=api event=upload kind=%s frp=%s interval=%s period_start_ms=%d status=%s "
        "version=%d",
        kind,
        frp,
        interval,
        period_start_ms,
        result["status"],
        result["version"],
    )
    return result


@partials_router.put("/partials/{frp}/{interval}/{period_start_ms}", openapi_extra=_BODY)
async def put_partial(
    request: Request,
    frp: Frp,
    interval: IntervalId,
    period_start_ms: PeriodStart,
    _: Annotated[Principal, Depends(for_frp)],
) -> dict[str, Any]:
    """Store an FRP's partial matrix of one period (a new version unless unchanged)."""
    return await _receive(request, frp, interval, period_start_ms, "partial", _store_partial)


def _store_ingress(
    state: MgState, frp: str, interval: str, period_start_ms: int, body: bytes
) -> dict[str, Any]:
    table, meta = decode_ingress(body)
    if state.routing is None:
        msg = (
            "this MG has no routing tables yet (FRPs send theirs; or start it with --routing) "
            "and cannot resolve records"
        )
        raise NotReady(msg)
    if table.num_rows:
        intervals = pc.unique(table["interval"]).to_pylist()
        starts = pc.unique(table["period_start_ms"]).to_pylist()
        if intervals != [interval] or starts != [period_start_ms]:
            msg = f"ingress records of other periods ({intervals[:3]}, {starts[:3]}) in the body"
            raise UploadError(msg)
    agg = aggregate(table, resolve_ingress(table, state.routing), state.plan)
    meta = meta.model_copy(
        update={"mode": "centralized", "unresolved": agg.unresolved, "records": table.num_rows}
    )
    return check_and_store(state, frp, interval, period_start_ms, agg.table, meta)


@ingress_router.post("/ingress/{frp}/{interval}/{period_start_ms}", openapi_extra=_BODY)
async def post_ingress(
    request: Request,
    frp: Frp,
    interval: IntervalId,
    period_start_ms: PeriodStart,
    _: Annotated[Principal, Depends(for_frp)],
) -> dict[str, Any]:
    """Centralized mode: resolve and aggregate an FRP's ingress records of one period here."""
    return await _receive(request, frp, interval, period_start_ms, "ingress", _store_ingress)


@partials_router.get("/partials/{frp}/{interval}/{period_start_ms}/versions")
def partial_versions(
    frp: Frp,
    interval: IntervalId,
    period_start_ms: PeriodStart,
    state: State,
    _: Annotated[Principal, Depends(operator)],
) -> list[dict[str, Any]]:
    """Every stored version of one FRP's partial of one period, oldest first."""
    if frp not in {f.name for f in state.config.frps}:
        msg = f"unknown FRP {frp!r}"
        raise LookupError(msg)
    state.check_interval(interval)
    return [
        {
            "version": u.version,
            "digest": u.digest,
            "received_ms": u.received_ms,
            "rows": u.rows,
            "current": u.current,
            "revision": u.meta.revision,
        }
        for u in state.store.versions(frp, interval, period_start_ms)
    ]


def _period_json(p: PeriodStatus) -> dict[str, Any]:
    out = asdict(p)
    out["expected"], out["reported"], out["missing"] = (
        list(p.expected),
        list(p.reported),
        list(p.missing),
    )
    out["gaps"] = [asdict(g) for g in p.gaps]
    return out


Ms = Annotated[int | None, Query(ge=0, le=MAX_MS)]


@matrix_router.get("/periods")
def periods(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: Annotated[str | None, Query(max_length=200)] = None,
    since_ms: Ms = None,
    until_ms: Ms = None,
) -> list[dict[str, Any]]:
    """Read-out periods with uploads: complete or not, who is missing, gaps reported."""
    if interval is not None:
        state.check_interval(interval)
    uploads = state.store.current(interval, since_ms=since_ms, until_ms=until_ms)
    statuses = period_statuses(state.config, uploads)
    if interval is None and since_ms is None and until_ms is None:
        mg_periods_incomplete.set(sum(s.status == "incomplete" for s in statuses))
    return [_period_json(p) for p in statuses]


def _table_answer(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answer of a route that serves a table as JSON, CSV or Parquet."""
    return {200: {"description": description, "content": {m: {} for m in _FORMATS.values()}}}


@matrix_router.get(
    "/matrix",
    response_class=Response,
    responses=_table_answer("The total matrix; header X-Flowmatrix-Status says complete or not."),
)
def matrix(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: Annotated[str, Query(min_length=1, max_length=200)],
    period_start_ms: Ms = None,
    since_ms: Ms = None,
    until_ms: Ms = None,
    granularity: Granularity = "pe_pe",
    class_: Annotated[str | None, Query(alias="class", max_length=200)] = None,
    format: Literal["json", "csv", "parquet"] = "json",
) -> Response:
    """The total matrix of one period, or summed over every stored period in a range."""
    state.check_interval(interval)
    uploads = state.store.current(
        interval, period_start_ms=period_start_ms, since_ms=since_ms, until_ms=until_ms
    )
    if not uploads:
        where = f"period {period_start_ms}" if period_start_ms is not None else "the range"
        msg = f"no partial stored for interval {interval!r} in {where}"
        raise LookupError(msg)
    statuses = period_statuses(state.config, uploads)
    seconds = sum(p.period_end_ms - p.period_start_ms for p in statuses) / 1000
    table = total_matrix(
        state.config,
        state.store.iter_rows(uploads),
        granularity=granularity,
        class_=class_,
        seconds=seconds,
    )
    complete = all(p.status == "complete" for p in statuses)
    status = "complete" if complete else "incomplete"
    headers = {"X-Flowmatrix-Status": status}
    if format != "json":
        return _table_response(table, format, headers)
    body = {
        "interval": interval,
        "granularity": granularity,
        "class": class_,
        "periods": [_period_json(p) for p in statuses],
        "status": status,
        "missing": sorted({f for p in statuses for f in p.missing}),
        "seconds": seconds,
        "columns": table.column_names,
        "rows": [list(r.values()) for r in _finite(table).to_pylist()],
    }
    return JSONResponse(body, headers=headers)


def _table_response(
    table: pa.Table, format: Literal["csv", "parquet"], headers: dict[str, str] | None = None
) -> Response:
    sink = io.BytesIO()
    if format == "csv":
        pacsv.write_csv(table, sink)
    else:
        pq.write_table(table, sink, compression="zstd")
    return Response(sink.getvalue(), media_type=_FORMATS[format], headers=headers)


def _stats_of(state: MgState) -> MgStats:
    if state.stats is None:
        msg = "this MG keeps no statistics"
        raise LookupError(msg)
    return state.stats


@stats_router.get(
    "/stats",
    response_class=Response,
    responses=_table_answer(
        "Per element and class: mean, std, peak and p95 over the periods; 422 for if_pe and vrf "
        "when the MG keeps no finer periods (mg serve --no-stats-detail)."
    ),
)
def element_stats(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: Annotated[str, Query(min_length=1, max_length=200)],
    class_: Annotated[str | None, Query(alias="class", max_length=200)] = None,
    format: Literal["json", "csv", "parquet"] = "json",
    granularity: StatsGranularity = "pe_pe",
    timescale: Timescale = "period",
) -> Response:
    """Statistics of every element of an interval over its stored read-out periods.

    ``granularity`` pe_pe, pop_pop, if_pe (per ingress interface, column
    ``if_index``) or vrf (per VPN, column ``vrf``), as ``/matrix`` names them;
    ``class=all`` sums the classes; ``timescale`` hour, day or week sums the
    periods per local bucket first.
    """
    state.check_interval(interval)
    mg_stats = _stats_of(state)
    if granularity in DETAIL_GRANULARITIES and not mg_stats.detail:
        return _error(422, DETAIL_OFF)
    rows = mg_stats.rows(interval, class_, granularity=granularity, timescale=timescale)
    columns = stats_columns(granularity)
    if format != "json":
        integers = ("if_index", "periods")
        keys = columns[: columns.index("periods")]
        types = [
            pa.int64() if c in integers else pa.string() if c in keys else pa.float64()
            for c in columns
        ]
        schema = pa.schema(list(zip(columns, types, strict=True)))
        return _table_response(pa.Table.from_pylist(rows, schema=schema), format)
    return JSONResponse(
        {
            "interval": interval,
            "class": class_,
            "granularity": granularity,
            "timescale": timescale,
            "periods": rows[0]["periods"] if rows else 0,
            "columns": list(columns),
            "rows": [[_json_float(r[c]) for c in columns] for r in rows],
        }
    )


def _json_float(value: Any) -> Any:
    """Non-finite floats as null: JSON has no inf or nan."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@stats_router.get("/busy-hour")
def network_busy_hour(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """The network busy hour of an interval: the local clock hour with the most bytes."""
    state.check_interval(interval)
    mg_stats = _stats_of(state)
    spec = next(i for i in state.config.intervals if i.id == interval)
    return {
        "interval": interval,
        "timezone": spec.timezone,
        "periods": len(mg_stats.volumes(interval)),
        "busy_hour": _hour_json(mg_stats.busy(interval)),
        "nodes": {node: _hour_json(h) for node, h in mg_stats.node_busy(interval).items()},
    }


def _hour_json(hour: BusyHour | None) -> dict[str, Any] | None:
    if hour is None:
        return None
    return {
        "start_ms": hour.start_ms,
        "end_ms": hour.end_ms,
        "local_start": hour.local_start.isoformat(),
        "volume_bytes": hour.volume,
        "periods": hour.periods,
        "expected_periods": hour.expected_periods,
        "complete": hour.complete,
    }


Name = Annotated[str, Query(min_length=1, max_length=200)]


@stats_router.get("/forecast")
def element_forecast_route(
    state: State,
    _: Annotated[Principal, Depends(operator)],
    interval: Name,
    ingress: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    egress: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    class_: Annotated[str | None, Query(alias="class", min_length=1, max_length=200)] = None,
    if_index: Annotated[int | None, Query(ge=0, le=2**32 - 1)] = None,
    vrf: Annotated[str | None, Query(max_length=200)] = None,
    link: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    src: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    horizon: Annotated[int, Query(ge=1, le=10_000)] = 12,
    season: Annotated[int | None, Query(ge=2, le=100_000)] = None,
    capacity_bps: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    threshold: Annotated[float | None, Query(gt=0, le=10, allow_inf_nan=False)] = None,
) -> JSONResponse:
    """Holt–Winters forecast of one element's bytes per period (classes summed without
    ``class``; one ingress interface with ``if_index``, one VPN with ``vrf``), or of one
    topology link's load (``link``, direction ``src``), its backtest against the seasonal
    naive baseline, and when it crosses ``threshold × capacity_bps`` (for a link: its
    capacity and 0.8 unless given)."""
    state.check_interval(interval)
    spec = next(i for i in state.config.intervals if i.id == interval)
    mg_stats = _stats_of(state)
    subject: dict[str, Any]
    if link is not None:
        if any(q is not None for q in (ingress, egress, class_, if_index, vrf)):
            return _error(422, "query: give link or ingress and egress, not both")
        history = mg_stats.link_history(interval, link, src)
        capacity_bps = capacity_bps if capacity_bps is not None else history.capacity_bps
        threshold = threshold if threshold is not None else 0.8
        starts = history.period_start_ms
        values = [bps * spec.readout_seconds / 8 for bps in history.bps]
        subject = {
            "link": {
                "name": history.link,
                "src": history.src,
                "dst": history.dst,
                "capacity_bps": history.capacity_bps,
            }
        }
    else:
        if ingress is None or egress is None:
            return _error(422, "query: give ingress and egress, or link")
        if src is not None:
            return _error(422, "query: src selects a link's direction; give link")
        if (capacity_bps is None) != (threshold is None):
            return _error(422, "query: give capacity_bps and threshold together")
        finer = if_index is not None or vrf is not None
        if finer and not mg_stats.detail:
            return _error(422, DETAIL_OFF)
        starts, values = mg_stats.element_history(
            interval, ingress, egress, class_, if_index=if_index, vrf=vrf
        )
        element: dict[str, Any] = {"ingress": ingress, "egress": egress, "class": class_}
        if finer:
            element.update(if_index=if_index, vrf=vrf)
        subject = {"element": element}
    body = element_forecast(
        starts,
        values,
        readout_seconds=spec.readout_seconds,
        horizon=horizon,
        season=season,
        capacity_bps=capacity_bps,
        threshold=threshold,
    )
    if body["backtest"] is not None:
        body["backtest"] = {k: _json_float(v) for k, v in body["backtest"].items()}
    for row in body["forecast"]:
        if link is not None and capacity_bps is not None:
            row["utilization"] = _json_float(row["bps"] / capacity_bps)
        row["bytes"], row["bps"] = _json_float(row["bytes"]), _json_float(row["bps"])
    if link is not None:
        body["capacity_bps"], body["threshold"] = capacity_bps, threshold
    return JSONResponse({"interval": interval, **subject, **body})


@stats_router.get("/alarms")
def alarms(
    state: State,
    _: Annotated[Principal, Depends(operator)],
) -> list[dict[str, Any]]:
    """The threshold alarms raised now, oldest first."""
    return [asdict(a) for a in _stats_of(state).active_alarms()]


def _finite(table: pa.Table) -> pa.Table:
    """The table with non-finite floats (sums past 1.8e308) as nulls: JSON has no inf."""
    for i, f in enumerate(table.schema):
        if pa.types.is_floating(f.type):
            col = table.column(i)
            table = table.set_column(i, f.name, pc.if_else(pc.is_finite(col), col, None))
    return table


def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(
    config: NetworkConfig,
    store: Store,
    *,
    max_body: int = MAX_BODY,
    routing: Compiled | None = None,
    stats: MgStats | None = None,
    topology: Topology | None = None,
    routers: Sequence[APIRouter] = (),
    stats_detail: bool = True,
    tables: MgRouting | None = None,
) -> FastAPI:
    """The MG's FastAPI application over a started store.

    Parameters
    ----------
    config
        The full network configuration (FRPs get their view of it).
    store
        A started :class:`~flowmatrix.matrix.store.Store`.
    max_body
        Largest upload body accepted, octets (413 beyond).
    routing
        Every PE's compiled routing tables: needed to accept ingress records
        (centralized mode), which the MG then resolves itself.
    stats
        A started :class:`~flowmatrix.mg.stats.MgStats` over the same store
        (:class:`~flowmatrix.mg.service.MgService` makes one); without it, one
        is made and started here (it rebuilds from the store's periods).
    topology
        The backbone topology, for link loads and what-ifs; None = not loaded.
    routers
        Further routers mounted under ``/api/v1`` (e.g. centralized-mode ingress).
    stats_detail
        Whether the statistics made here keep the finest elements' periods
        (``if_pe`` and ``vrf`` statistics); ignored when ``stats`` is given.
    tables
        A started :class:`~flowmatrix.mg.routing.MgRouting`: takes the FRPs'
        routing bundles (``PUT /frps/{frp}/routing``) and compiles ``routing``
        (its tables are used when ``routing`` is None); without it, one
        without tables is made here (bundles then kept in memory only).

    Examples
    --------
    >>> from flowmatrix.config.model import NetworkConfig
    >>> with Store(":memory:") as store:
    ...     app = create_app(NetworkConfig(name="n", asn=1), store)
    >>> app.openapi_url
    '/api/v1/openapi.json'
    """
    app = FastAPI(
        title="flowmatrix MG",
        version=__version__,
        description="Matrix generator: configuration views, partial uploads, total matrices.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    if stats is None:
        stats = MgStats(config, store, topology=topology, detail=stats_detail)
        stats.start()
    # these modules import this one (MgState, State), so they are imported here
    from flowmatrix.mg.capacity import capacity_router
    from flowmatrix.mg.overview import overview_router
    from flowmatrix.mg.routing import MgRouting, routing_router
    from flowmatrix.mg.web import web_router

    if tables is None:
        tables = MgRouting(config)
        tables.start()
    if routing is None:
        routing = tables.compiled
    app.state.mg = MgState(
        config=config,
        store=store,
        max_body=max_body,
        routing=routing,
        stats=stats,
        topology=topology,
        tables=tables,
    )
    builtin = (
        meta_router,
        config_router,
        partials_router,
        ingress_router,
        matrix_router,
        stats_router,
        overview_router,
        capacity_router,
        routing_router,
    )
    for router in (*builtin, *routers):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(web_router)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    for exc_type in (
        FlowmatrixError,
        LookupError,
        StoreError,
        RequestValidationError,
        StarletteHTTPException,
    ):
        app.add_exception_handler(exc_type, _handle)
    return app
