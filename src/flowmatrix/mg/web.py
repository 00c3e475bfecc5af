"""The dashboard's pages and assets, served by the MG under ``/ui``.

The assets (HTML, CSS, JavaScript) are files of the :mod:`flowmatrix.web`
package, read from the installed package: nothing comes from a CDN, so the
dashboard works offline. They hold no data and need no token; the pages
call ``/api/v1`` with the operator token the user types on the login page
(kept in the browser's ``sessionStorage``), and a missing or refused token
brings the login page back.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import RedirectResponse, Response

__all__ = ["ASSETS", "UI_PREFIX", "asset", "web_router"]

#: where the dashboard lives on the MG
UI_PREFIX = "/ui"
#: asset suffix → media type; only these files of the package are served
ASSETS = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: what the browser may load: this server only (no CDN, no inline script)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)

web_router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=64)
def asset(name: str) -> tuple[bytes, str, str] | None:
    """The bytes, media type and ETag of dashboard asset ``name``; None when there is none."""
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix not in ASSETS or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = resources.files("flowmatrix.web").joinpath(name)
    if not path.is_file():
        return None
    data = path.read_bytes()
    return data, ASSETS[suffix], f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def _serve(name: str, if_none_match: str | None) -> Response:
    found = asset(name)
    if found is None:
        msg = f"no dashboard asset {name!r}"
        raise LookupError(msg)
    data, media, etag = found
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
    }
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media, headers=headers)


@web_router.get(UI_PREFIX)
def ui_root() -> RedirectResponse:
    """``/ui`` → ``/ui/``."""
    return RedirectResponse(f"{UI_PREFIX}/", status_code=308)


@web_router.get(f"{UI_PREFIX}/")
def ui_index(
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """The dashboard's single page (login, overview, matrix, topology, routing)."""
    return _serve("index.html", if_none_match)


@web_router.get(UI_PREFIX + "/{name}")
def ui_asset(
    name: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")],
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """One asset of the dashboard (CSS, JavaScript), from the installed package."""
    return _serve(name, if_none_match)
