"""Test helpers for the MG: call its FastAPI app in process, without a server.

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
from typing import Any

import httpx
from fastapi import FastAPI

__all__ = ["AsgiClient"]


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
