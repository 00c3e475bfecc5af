"""Bearer tokens of the MG: issue them, write them to files, check them on each request.

A token is a random string (``secrets.token_urlsafe(32)``) the store keeps
only as its SHA-256, with a name and a role: ``frp`` (one FRP: reads its own
configuration, writes its own partials) or ``operator`` (reads everything,
uploads nothing). A missing or unknown token is refused with 401; a known
token reaching a resource its role or name does not cover, with 403.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter

from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import AuthError
from flowmatrix.matrix.store import Principal, Role, Store, hash_token

__all__ = [
    "OPERATOR",
    "Forbidden",
    "authenticated",
    "for_frp",
    "issue_tokens",
    "operator",
    "read_token",
    "reader_of",
    "write_token",
]

log = logging.getLogger("flowmatrix.mg")

#: name of the operator token ``mg serve --issue-tokens`` creates
OPERATOR = "operator"

mg_auth_failures_total = Counter(
    "mg_auth_failures_total", "Requests refused for a missing, unknown or misused token.", ["code"]
)

_bearer = HTTPBearer(auto_error=False, description="Per-FRP or operator token.")


class Forbidden(AuthError):
    """A known token reached a resource its role or name does not cover (HTTP 403)."""


def write_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by its owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)


def read_token(path: Path) -> str:
    """The token stored in ``path`` (surrounding whitespace removed)."""
    return path.read_text().strip()


def issue_tokens(store: Store, config: NetworkConfig, directory: Path) -> dict[str, Path]:
    """Make sure every FRP of ``config`` and the operator have a usable token file.

    A file ``directory/<name>.token`` is kept when the store knows its token
    for that name and role; otherwise a new token is created and the file
    (re)written. Returns the files written.

    Examples
    --------
    >>> import tempfile
    >>> from flowmatrix.config.model import NetworkConfig
    >>> with Store(":memory:") as store, tempfile.TemporaryDirectory() as d:
    ...     sorted(issue_tokens(store, NetworkConfig(name="n", asn=1), Path(d)))
    ['operator']
    """
    wanted: list[tuple[str, Role]] = [(f.name, "frp") for f in config.frps]
    wanted.append((OPERATOR, "operator"))
    written: dict[str, Path] = {}
    for name, role in wanted:
        path = directory / f"{name}.token"
        if path.is_file():
            known = store.principal(read_token(path))
            if known == Principal(name, role):
                continue
        write_token(path, store.add_token(name, role))
        written[name] = path
        log.info("component=auth event=token_issued name=%s role=%s file=%s", name, role, path)
    return written


def _refuse(message: str, *, forbidden: bool) -> AuthError:
    mg_auth_failures_total.labels(code="403" if forbidden else "401").inc()
    return Forbidden(message) if forbidden else AuthError(message)


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The principal of the request's bearer token; AuthError (401) when missing or unknown."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        msg = "missing bearer token"
        raise _refuse(msg, forbidden=False)
    store: Store = request.app.state.mg.store
    principal = store.principal(credentials.credentials)
    if principal is None:
        msg = f"unknown token (sha256 {hash_token(credentials.credentials)[:12]}…)"
        raise _refuse(msg, forbidden=False)
    return principal


def operator(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """The principal when it is an operator; Forbidden otherwise."""
    if principal.role != "operator":
        msg = f"{principal.name}: operator token required"
        raise _refuse(msg, forbidden=True)
    return principal


def for_frp(frp: str, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """The principal when it is FRP ``frp`` itself (the path's FRP); Forbidden otherwise."""
    if principal.role != "frp" or principal.name != frp:
        msg = f"{principal.name}: not allowed to write for FRP {frp!r}"
        raise _refuse(msg, forbidden=True)
    return principal


def reader_of(frp: str, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """The principal when it is FRP ``frp`` or an operator; Forbidden otherwise."""
    if principal.role != "operator" and principal.name != frp:
        msg = f"{principal.name}: not allowed to read FRP {frp!r}"
        raise _refuse(msg, forbidden=True)
    return principal
