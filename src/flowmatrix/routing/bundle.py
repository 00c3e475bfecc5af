"""Routing bundles: some PEs' routing tables as one ``tar.gz`` of native files, and back.

An FRP sends the tables it resolves with to the MG in this form (``PUT
/api/v1/frps/{frp}/routing``), so that the MG can explain lookups
(``/routing/explain``, the dashboard's routing page) and resolve ingress
records in centralized mode without a copy of every PE's files.

A bundle is the directory :func:`~flowmatrix.routing.native.write_native`
writes (``manifest.json`` and Parquet tables), packed flat. Unpacking is
defensive: only regular files with plain names, at most :data:`MAX_MEMBERS`
of them and ``max_bytes`` in all; the manifest may name only files of the
bundle; every PE it holds must be one the sender may speak for. Anything
else is a :class:`BundleError` and nothing is kept.

>>> import tempfile
>>> from flowmatrix.synth import generate_network, write_network
>>> with tempfile.TemporaryDirectory() as tmp:
...     _ = write_network(generate_network("tiny", seed=1), Path(tmp))
...     state = read_native(Path(tmp))
...     data = pack(state, pes=["par-pe1", "par-pe2"])
...     back = read_bundle(data, state.config, allowed={"par-pe1", "par-pe2"})
>>> sorted(back.pe_versions), len(back.rr_versions)
(['par-pe1', 'par-pe2'], 1)
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import tempfile
import zlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from flowmatrix.config.model import NetworkConfig
from flowmatrix.errors import RoutingError
from flowmatrix.routing.native import read_native, write_native
from flowmatrix.routing.tables import RoutingState

__all__ = ["MAX_BUNDLE_BYTES", "MAX_MEMBERS", "BundleError", "pack", "read_bundle", "unpack"]

#: most files a bundle may hold
MAX_MEMBERS = 100_000
#: default limit of a bundle's unpacked size, octets
MAX_BUNDLE_BYTES = 1 << 30
#: a member name: a plain file name, no directory part
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class BundleError(RoutingError):
    """A routing bundle that cannot be used (unsafe, too large, malformed, foreign PEs)."""


def pack(state: RoutingState, *, pes: Sequence[str] | None = None) -> bytes:
    """The tables of ``pes`` (default all) and the newest route reflector version, packed;
    the same tables give the same octets."""
    with tempfile.TemporaryDirectory(prefix="flowmatrix-bundle-") as tmp:
        root = Path(tmp)
        write_native(state, root, pes=pes, source="frp")
        out = io.BytesIO()
        # no times or owners in the archive: the same tables always pack to the same octets
        with (
            gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in sorted(root.iterdir()):  # per file of the bundle: a few per PE
                if path.is_file() and not path.name.startswith("."):
                    info = tarfile.TarInfo(path.name)
                    info.size = path.stat().st_size
                    info.mode = 0o644
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
        return out.getvalue()


def unpack(data: bytes, directory: Path, *, max_bytes: int = MAX_BUNDLE_BYTES) -> list[str]:
    """Unpack a bundle into ``directory`` (which should be empty); the file names.

    Raises :class:`BundleError` for anything but a gzip'd tar of plain regular
    files within the limits; nothing outside ``directory`` is ever written.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            return _extract(tar, directory, max_bytes)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        msg = f"unreadable bundle archive: {exc}"
        raise BundleError(msg) from None


def _extract(tar: tarfile.TarFile, directory: Path, max_bytes: int) -> list[str]:
    members = tar.getmembers()
    if len(members) > MAX_MEMBERS:
        msg = f"{len(members)} files in the bundle; at most {MAX_MEMBERS}"
        raise BundleError(msg)
    names: list[str] = []
    total = 0
    for member in members:  # per file: checked before anything is written
        if not member.isfile() or not _NAME.match(member.name):
            msg = f"bundle member {member.name!r}: only plain files with simple names"
            raise BundleError(msg)
        if member.name in names:
            msg = f"bundle member {member.name!r} appears twice"
            raise BundleError(msg)
        total += member.size
        if total > max_bytes:
            msg = f"bundle unpacks to more than {max_bytes} octets"
            raise BundleError(msg)
        names.append(member.name)
    directory.mkdir(parents=True, exist_ok=True)
    for member in members:
        source = tar.extractfile(member)
        if source is None:  # not a regular file (excluded above)
            continue
        with source, (directory / member.name).open("wb") as sink:
            remaining = member.size
            while remaining > 0:  # bounded by the member's declared size
                chunk = source.read(min(remaining, 1 << 20))
                if not chunk:
                    msg = f"bundle member {member.name!r} is truncated"
                    raise BundleError(msg)
                sink.write(chunk)
                remaining -= len(chunk)
    return names


def _referenced(manifest: dict[str, Any]) -> list[str]:
    """Every file name the manifest refers to."""
    names: list[str] = []
    rr = manifest.get("route_reflector")
    if isinstance(rr, dict):
        names += [str(rr[k]) for k in ("vpn", "global") if rr.get(k)]
    pes = manifest.get("pes", {})
    if not isinstance(pes, dict):
        msg = "manifest: pes is not an object"
        raise BundleError(msg)
    for entry in pes.values():  # per PE and version
        for version in entry if isinstance(entry, list) else [entry]:
            if not isinstance(version, dict):
                msg = "manifest: a PE entry is not an object"
                raise BundleError(msg)
            names += [str(version[k]) for k in ("rd", "connected", "bgp", "global") if k in version]
    return names


def read_bundle(
    data: bytes,
    config: NetworkConfig,
    *,
    allowed: Collection[str],
    max_bytes: int = MAX_BUNDLE_BYTES,
) -> RoutingState:
    """The routing state a bundle holds; only PEs of ``allowed`` may be in it.

    Raises :class:`BundleError` (or :class:`~flowmatrix.errors.RoutingError`
    for a bad table) when the bundle cannot be used as a whole.
    """
    with tempfile.TemporaryDirectory(prefix="flowmatrix-bundle-") as tmp:
        root = Path(tmp)
        names = set(unpack(data, root, max_bytes=max_bytes))
        if "manifest.json" not in names:
            msg = "bundle without manifest.json"
            raise BundleError(msg)
        try:
            manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"manifest.json: not JSON: {exc}"
            raise BundleError(msg) from None
        if not isinstance(manifest, dict):
            msg = "manifest.json: not an object"
            raise BundleError(msg)
        outside = sorted({n for n in _referenced(manifest) if n not in names})
        if outside:
            msg = f"manifest names files the bundle does not hold: {', '.join(outside[:5])}"
            raise BundleError(msg)
        foreign = sorted(set(manifest.get("pes", {})) - set(allowed))
        if foreign:
            msg = f"tables of PEs this sender does not serve: {', '.join(foreign[:10])}"
            raise BundleError(msg)
        try:
            return read_native(root, config)
        except BundleError:
            raise
        except RoutingError as exc:  # name the bundle's file, not the temporary directory
            msg = str(exc).replace(f"{root}/", "")
            raise BundleError(msg) from None
