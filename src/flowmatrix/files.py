"""Durable file writes shared by the roles: a crash never leaves a half file under its name.

A file is written to a dot-prefixed temporary name in its directory, fsynced,
renamed over the final name with ``os.replace`` and the directory fsynced;
readers skip dot-prefixed names.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_atomic(Path(tmp, "a", "b.txt"), b"x")
...     sorted(p.name for p in Path(tmp, "a").iterdir())
['b.txt']
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["fsync_dir", "fsync_file", "write_atomic"]


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a dot-prefixed temp file, fsync and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
