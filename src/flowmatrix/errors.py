"""The whole flowmatrix exception tree.

::

    * FlowmatrixError
      x ConfigError            a configuration document is unusable; carries its problems
      x ScheduleError          a measurement interval cannot be evaluated
      x SynthError             a generated network or traffic request is impossible
      x DecodeError            bad export datagram; carries exporter, version
        + TemplateNotFound     data before its template; counted and held
      x RoutingError           a routing table is unusable; carries file and line
        + UpdateError          a BGP UPDATE cannot be delimited; skipped and counted
        + BmpSessionError      a BMP stream cannot be framed any more; the session is dropped
      x StoreError             the matrix store refused an operation
      x UploadError            a partial matrix or ingress upload is malformed; says what
      x AuthError              a token is missing, wrong or not allowed this resource
      x CapacityError          a topology or matrix is unusable; names file and element

``x`` subclasses FlowmatrixError directly, ``+`` subclasses the entry above it.
Every error carries enough context (file and line, exporter, template) to be
printed on one line. On the hot path, expected failures are counted in metrics
and logged at a limited rate instead of being raised per record.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthError",
    "BmpSessionError",
    "CapacityError",
    "ConfigError",
    "ConfigProblem",
    "DecodeError",
    "FlowmatrixError",
    "RoutingError",
    "ScheduleError",
    "StoreError",
    "SynthError",
    "TemplateNotFound",
    "UpdateError",
    "UploadError",
]


class FlowmatrixError(Exception):
    """Base of every error flowmatrix raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a configuration document, printable on one line."""

    #: file the problem was found in ("<string>" for in-memory documents)
    file: str
    #: 1-based line number, 0 when the problem concerns the document as a whole
    line: int
    #: the element concerned, e.g. ``pe[name=par-pe1]``; empty for document-level problems
    element: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.element}: {self.message}"
            if self.element
            else f"{where}: {self.message}"
        )


class ConfigError(FlowmatrixError):
    """A configuration document is unusable; ``problems`` lists every reason found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ScheduleError(FlowmatrixError):
    """A measurement interval cannot be evaluated (bad time zone, empty slot list)."""


class SynthError(FlowmatrixError):
    """A generated network or traffic request is impossible (unknown size, bad counts)."""


class DecodeError(FlowmatrixError):
    """A flow export datagram could not be decoded."""

    def __init__(self, message: str, *, exporter: str = "", version: int = 0) -> None:
        self.exporter = exporter
        self.version = version
        super().__init__(f"{message} (exporter={exporter} version={version})")


class TemplateNotFound(DecodeError):
    """Data arrived before its template; the data is held until the template arrives."""

    def __init__(self, *, exporter: str, version: int, source_id: int, template_id: int) -> None:
        self.source_id = source_id
        self.template_id = template_id
        super().__init__(
            f"no template {template_id} for source id {source_id}",
            exporter=exporter,
            version=version,
        )


class RoutingError(FlowmatrixError):
    """A routing table is unusable; the message names the file and line."""


class UpdateError(RoutingError):
    """An UPDATE that cannot be delimited (lying lengths, truncated): skip it and count it."""


class BmpSessionError(RoutingError):
    """The BMP stream cannot be framed any more: drop the session (counted by the listener)."""


class StoreError(FlowmatrixError):
    """The matrix store refused an operation."""


class UploadError(FlowmatrixError):
    """An uploaded partial matrix or batch of ingress records is malformed; says what."""


class AuthError(FlowmatrixError):
    """A token is missing, wrong, or not allowed to reach this resource."""


class CapacityError(FlowmatrixError):
    """A topology or traffic matrix is unusable; the message names the file and element."""
