"""Built uploads → ``DATA/spool`` → the MG, oldest first, retried with backoff until accepted.

Every upload is encoded (:func:`~flowmatrix.matrix.partial.encode_partial`) and
written atomically to ``spool/<seq:08d>-<interval>-<period_start_ms>.arrow``
before any network I/O, so nothing built is lost by a crash or an MG outage.
One thread delivers the spool in sequence order with
``PUT /api/v1/partials/<frp>/<interval>/<period_start_ms>``. In centralized
mode the period's ingress records are spooled instead (``encode_ingress``,
files ending ``.ingress.arrow``) and POSTed to ``/api/v1/ingress/...``:

* 2xx: the file is removed and the pipeline told (its digest goes to ``state.json``);
* connection error, timeout, 5xx, 408, 429, and 401/403 (a refused token is an
  operator's fix away; logged as errors): retried after a backoff of 0.5 s
  doubling to 30 s; later files wait (ordered delivery);
* other 4xx: moved to ``spool/rejected/`` and logged, never retried.

A newer upload of the same (interval, period) replaces an older one still waiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
from prometheus_client import Counter, Histogram

from flowmatrix.files import write_atomic
from flowmatrix.frp.pipeline import Upload
from flowmatrix.matrix.partial import MEDIA_TYPE, encode_ingress, encode_partial

__all__ = [
    "Uploader",
    "UploaderConfig",
    "frp_upload_seconds",
    "frp_uploads_total",
]

log = logging.getLogger("flowmatrix.frp.uploader")

frp_uploads_total = Counter(
    "frp_uploads_total", "Upload attempts of partial matrices, by outcome.", ["status"]
)
frp_upload_seconds = Histogram("frp_upload_seconds", "Time of one upload attempt.")

#: spool file names: sequence, interval, period start, ``.ingress`` for centralized uploads
_SPOOLED = re.compile(r"^(\d{8})-(.+)-(-?\d+)(\.ingress)?\.arrow$")
#: 4xx answers worth retrying: timeouts, rate limits, and refused tokens — a token is fixed by
#: the operator (new token file, MG store restored) and what waits must then still be delivered
_RETRY = frozenset({401, 403, 408, 429})


@dataclass(frozen=True, slots=True)
class UploaderConfig:
    """Where uploads go and how delivery is retried."""

    #: base URL of the MG, e.g. ``http://127.0.0.1:8080``
    mg: str
    frp: str
    token: str
    spool: Path
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    #: seconds for one HTTP request
    timeout: float = 30.0
    #: seconds between looks at an empty spool
    poll: float = 0.5


class Uploader:
    """The spool and its delivery thread: ``submit()`` spools, the thread delivers."""

    def __init__(
        self,
        config: UploaderConfig,
        *,
        on_delivered: Callable[[Upload], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.on_delivered = on_delivered
        self._transport = transport
        self._waiting: dict[str, Upload] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        #: uploads the MG accepted since start
        self.delivered = 0
        #: uploads refused with a 4xx since start
        self.rejected = 0

    @property
    def rejected_dir(self) -> Path:
        """Where refused uploads are kept."""
        return self.config.spool / "rejected"

    def start(self) -> None:
        """Open the spool (numbering after what it holds) and start delivering."""
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        for p in self.config.spool.glob(".*.tmp"):
            p.unlink(missing_ok=True)
        self._seq = max((int(m.group(1)) for m in self._spooled()), default=0)
        self._client = httpx.Client(
            timeout=self.config.timeout,
            transport=self._transport,
            headers={"Authorization": f"Bearer {self.config.token}"},
        )
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="frp-uploader", daemon=True)
        self._thread.start()
        log.info("component=frp.uploader spooled=%d mg=%s", len(self.pending()), self.config.mg)

    def stop(self) -> None:
        """Stop delivering (what is spooled stays for the next start)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _spooled(self) -> list[re.Match[str]]:
        found = [_SPOOLED.match(p.name) for p in self.config.spool.glob("*.arrow")]
        return sorted((m for m in found if m), key=lambda m: m.group(1))

    def pending(self) -> list[Path]:
        """Spooled uploads waiting for delivery, oldest first."""
        return [self.config.spool / m.group(0) for m in self._spooled()]

    def submit(self, upload: Upload) -> Path:
        """Spool one upload (replacing an older one of its period still waiting)."""
        if upload.ingress is None:
            body, kind = encode_partial(upload.table, upload.meta), ""
        else:
            body, kind = encode_ingress(upload.ingress, upload.meta), ".ingress"
        with self._lock:
            self._seq += 1
            interval = quote(upload.interval, safe="")
            name = f"{self._seq:08d}-{interval}-{upload.period_start_ms}{kind}.arrow"
            path = self.config.spool / name
            write_atomic(path, body)
            for m in self._spooled():
                older = m.group(0) != name
                same = (unquote(m.group(2)), int(m.group(3))) == (
                    upload.interval,
                    upload.period_start_ms,
                )
                if older and same:
                    (self.config.spool / m.group(0)).unlink(missing_ok=True)
                    self._waiting.pop(m.group(0), None)
            self._waiting[name] = upload
        self._wake.set()
        return path

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout`` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _run(self) -> None:
        backoff = self.config.backoff_min
        while not self._stopping.is_set():
            files = self.pending()
            if not files:
                self._wake.wait(self.config.poll)
                self._wake.clear()
                continue
            outcome = self._deliver(files[0])
            if outcome == "retry":
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
            else:
                backoff = self.config.backoff_min

    def _deliver(self, path: Path) -> str:
        m = _SPOOLED.match(path.name)
        assert m is not None
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return "gone"  # replaced by a newer upload meanwhile
        interval, period = unquote(m.group(2)), int(m.group(3))
        # a partial is PUT in its place; ingress records (centralized mode) are POSTed
        method, what = ("POST", "ingress") if m.group(4) else ("PUT", "partials")
        url = (
            f"{self.config.mg.rstrip('/')}/api/v1/{what}/{quote(self.config.frp, safe='')}/"
            f"{quote(interval, safe='')}/{period}"
        )
        assert self._client is not None
        started = time.monotonic()
        try:
            response = self._client.request(
                method, url, content=body, headers={"Content-Type": MEDIA_TYPE}
            )
        except httpx.HTTPError as exc:
            frp_uploads_total.labels("error").inc()
            log.warning(
                "component=frp.uploader interval=%s period=%d error=%s retrying=true",
                interval,
                period,
                type(exc).__name__,
            )
            return "retry"
        finally:
            frp_upload_seconds.observe(time.monotonic() - started)
        status = response.status_code
        if 200 <= status < 300:
            frp_uploads_total.labels("delivered").inc()
            with self._lock:
                upload = self._waiting.pop(path.name, None)
                path.unlink(missing_ok=True)
            self.delivered += 1
            log.info(
                "component=frp.uploader interval=%s period=%d status=%d answer=%s",
                interval,
                period,
                status,
                response.text[:200],
            )
            if upload is not None and self.on_delivered is not None:
                self.on_delivered(upload)
            return "delivered"
        if 400 <= status < 500 and status not in _RETRY:
            frp_uploads_total.labels("rejected").inc()
            with self._lock, contextlib.suppress(FileNotFoundError):
                os.replace(path, self.rejected_dir / path.name)
                self._waiting.pop(path.name, None)
            self.rejected += 1
            log.error(
                "component=frp.uploader interval=%s period=%d status=%d rejected=%s answer=%s",
                interval,
                period,
                status,
                self.rejected_dir / path.name,
                response.text[:200],
            )
            return "rejected"
        frp_uploads_total.labels("retry").inc()
        level = logging.ERROR if status in (401, 403) else logging.WARNING
        log.log(
            level,
            "component=frp.uploader interval=%s period=%d status=%d retrying=true answer=%s",
            interval,
            period,
            status,
            response.text[:200],
        )
        return "retry"
