"""``DATA/state.json``: export sequence numbers and what was delivered per period, atomically.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     state = FrpState(sequences={"127.0.0.1/9/1": 41})
...     state.delivered["always", 0] = Delivered("ab", "cd", 1)
...     state.save(Path(tmp) / "state.json")
...     FrpState.load(Path(tmp) / "state.json") == state
True
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from flowmatrix.files import write_atomic

__all__ = ["Delivered", "FrpState"]

log = logging.getLogger("flowmatrix.frp.state")


@dataclass(frozen=True, slots=True)
class Delivered:
    """The last upload of one period the MG accepted: its digest, the files it was built on."""

    digest: str
    #: :meth:`IngressFiles.fingerprint` of the period when the upload was built
    files: str
    revision: int


@dataclass
class FrpState:
    """What an FRP keeps across restarts."""

    #: per exporter domain (the decoder's key), the last export sequence number seen
    sequences: dict[str, int] = field(default_factory=dict)
    #: per (interval, period start), the last delivered upload
    delivered: dict[tuple[str, int], Delivered] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> FrpState:
        """The state saved at ``path``; an empty state when there is none or it is unreadable."""
        try:
            doc = json.loads(path.read_text())
            return cls(
                sequences={str(k): int(v) for k, v in doc.get("sequences", {}).items()},
                delivered={
                    (d["interval"], int(d["period_start_ms"])): Delivered(
                        d["digest"], d["files"], int(d["revision"])
                    )
                    for d in doc.get("delivered", [])
                },
            )
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("component=frp.state path=%s unreadable=%s starting=empty", path, exc)
            return cls()

    def save(self, path: Path) -> None:
        """Write the state to ``path`` atomically."""
        doc = {
            "format": "flowmatrix-frp-state/1",
            "sequences": dict(sorted(self.sequences.items())),
            "delivered": [
                {
                    "interval": k[0],
                    "period_start_ms": k[1],
                    "digest": d.digest,
                    "files": d.files,
                    "revision": d.revision,
                }
                for k, d in sorted(self.delivered.items())
            ],
        }
        write_atomic(path, json.dumps(doc, indent=1).encode())
