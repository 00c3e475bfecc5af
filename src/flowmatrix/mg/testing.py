"""Test helpers for the MG: call its FastAPI app in process, without a server.

:class:`AsgiClient` calls an app; :func:`partial_table` builds a partial
matrix from (ingress, egress, class, bytes, packets) rows; :func:`open_mg`
issues tokens and returns an :class:`MgClient` that uploads as the FRPs and
reads as the operator.

>>> from flowmatrix.config.model import NetworkConfig
>>> from flowmatrix.matrix.store import Store
>>> from flowmatrix.mg.app import create_app
>>> with Store(":memory:") as store:
...     client = AsgiClient(create_app(NetworkConfig(name="n", asn=1), store))
...     client.get("/api/v1/health").json()["status"]
'ok'
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa
from fastapi import FastAPI

from flowmatrix.matrix.partial import MEDIA_TYPE, PARTIAL_SCHEMA, PartialMeta, encode_partial

if TYPE_CHECKING:
    from flowmatrix.config.model import NetworkConfig
    from flowmatrix.matrix.store import Store

__all__ = ["AsgiClient", "MgClient", "open_mg", "partial_table"]

#: read-out period of the test configurations, milliseconds
STEP_MS = 300_000


class AsgiClient:
    """A synchronous client of an ASGI app (starlette's TestClient warns with httpx 0.28)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request through ``httpx.ASGITransport``; keyword arguments as httpx takes them."""

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mg") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET ``url``."""
        return self.request("GET", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        """PUT ``url``."""
        return self.request("PUT", url, **kwargs)


def partial_table(rows: Iterable[tuple[str, str, str, float, float]]) -> pa.Table:
    """A partial matrix of (ingress, egress, class, bytes, packets) rows.

    Input interface 3, no VRF, ToS 0, one flow per row, every packet sampled
    (``sampled_packets`` = packets) and no variance.
    """
    cols: dict[str, list[object]] = {n: [] for n in PARTIAL_SCHEMA.names}
    for ingress, egress, cls, b, p in rows:
        values = [ingress, 3, "", egress, 0, cls, b, p, 1.0, p, 0.0, 0.0]
        for name, value in zip(PARTIAL_SCHEMA.names, values, strict=True):
            cols[name].append(value)
    return pa.table(cols).cast(PARTIAL_SCHEMA)


@dataclass
class MgClient:
    """An MG app with its tokens: uploads as an FRP, reads as the operator."""

    client: AsgiClient
    tokens: dict[str, str]
    store: Store | None = None

    def upload(
        self,
        frp: str,
        start: int,
        table: pa.Table,
        interval: str = "always",
        *,
        step_ms: int = STEP_MS,
        **meta: Any,
    ) -> dict[str, Any]:
        """PUT one partial of one period as ``frp``; its answer (AssertionError unless 200)."""
        envelope = PartialMeta(
            frp=frp,
            interval=interval,
            period_start_ms=start,
            period_end_ms=start + step_ms,
            **meta,
        )
        r = self.client.put(
            f"/api/v1/partials/{frp}/{interval}/{start}",
            content=encode_partial(table, envelope),
            headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {self.tokens[frp]}"},
        )
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def get(self, path: str, token: str | None = None, **params: object) -> httpx.Response:
        """GET ``/api/v1{path}`` with the operator's token (or ``token``)."""
        return self.client.get(
            f"/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {token or self.tokens['operator']}"},
        )

    def fetcher(
        self, asked: list[dict[str, Any]] | None = None
    ) -> Callable[..., tuple[bytes, dict[str, str]]]:
        """A stand-in for ``flowmatrix.mg.cli._fetch`` answering from this app (for CLI tests).

        Each call's query parameters are appended to ``asked``.
        """

        def fetch(
            url: str, token_file: Path, params: dict[str, Any], path: str = "matrix"
        ) -> tuple[bytes, dict[str, str]]:
            if asked is not None:
                asked.append(params)
            r = self.get(f"/{path}", **{k: v for k, v in params.items() if v is not None})
            assert r.status_code == 200, r.text
            return r.content, dict(r.headers)

        return fetch

    def stats(self, **params: object) -> dict[tuple[str, str, str], dict[str, Any]]:
        """``/stats`` (interval ``always`` unless given), keyed by (ingress, egress, class)."""
        query: dict[str, Any] = {"interval": "always", **params}
        r = self.get("/stats", **query)
        assert r.status_code == 200, r.text
        body = r.json()
        rows = [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]]
        return {(row["ingress"], row["egress"], row["class"]): row for row in rows}


def open_mg(config: NetworkConfig, store: Store, tokens_dir: Path, **app: Any) -> MgClient:
    """Issue every token into ``tokens_dir`` and wrap ``create_app(config, store, **app)``."""
    from flowmatrix.mg.app import create_app
    from flowmatrix.mg.auth import issue_tokens, read_token

    issue_tokens(store, config, tokens_dir)
    tokens = {p.stem: read_token(p) for p in tokens_dir.glob("*.token")}
    return MgClient(AsgiClient(create_app(config, store, **app)), tokens, store)
