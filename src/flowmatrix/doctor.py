"""Check an installation before trusting its numbers: config, MG, token, clock, sockets, exporters.

Each check is a function returning a :class:`Check` (ok, warn, fail or skip
with a one-line detail an operator can act on); :func:`run_checks` runs those
the given options make possible, in the order a problem would be found by
hand. ``flowmatrix doctor`` renders them and exits 1 when any failed.

* **config** — the XML configuration loads and passes every check.
* **mg** — ``/api/v1/health`` answers; its ``time_ms`` gives the **clock**
  skew to within half the round trip (an MG without it: the ``Date``
  header, to the second).
* **token** — an FRP token reads its own configuration view, an operator
  token reads the alarm list (the same calls the FRP and ``tm`` make).
* **routing** (operator token) — the MG holds routing tables for every FRP
  with PEs (their routing bundles, or ``mg serve --routing``); a warning names
  the FRPs it has none from.
* **receive-buffer** — the kernel grants the collector's receive buffer
  (``SO_RCVBUFFORCE`` needs CAP_NET_ADMIN, ``SO_RCVBUF`` is capped by
  ``net.core.rmem_max``); a small buffer loses datagrams under bursts.
* **exporters** — datagrams arrive: either on a UDP port bound for a few
  seconds (when no FRP holds it), sources compared with the configured
  exporters, or from a running FRP's ``/metrics`` scraped twice.

>>> check_clock(server_s=1_000, sent_s=1_000.2, received_s=1_000.4).status
'ok'
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import socket
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import httpx

from flowmatrix.errors import ConfigError

if TYPE_CHECKING:
    from flowmatrix.config.model import NetworkConfig

__all__ = [
    "CLOCK_FAIL_S",
    "CLOCK_WARN_S",
    "Check",
    "Status",
    "check_clock",
    "check_config",
    "check_exporters",
    "check_frp_metrics",
    "check_mg",
    "check_receive_buffer",
    "check_token",
    "run_checks",
]

Status = Literal["ok", "warn", "fail", "skip"]

#: clock skew (seconds) beyond which records may land in the wrong read-out period
CLOCK_WARN_S = 2.0
#: clock skew (seconds) beyond which uploads and period ends cannot be trusted
CLOCK_FAIL_S = 60.0
#: FRP counters that show records flowing, first found wins
_RECORD_COUNTERS = ("frp_records_total", "flows_decoded_total")


@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome."""

    name: str
    status: Status
    detail: str


def check_config(path: Path) -> tuple[Check, NetworkConfig | None]:
    """Load the configuration (file or directory of ``*.xml``) with every semantic check."""
    from flowmatrix.mg.service import load_mg_config

    try:
        config = load_mg_config(path)
    except ConfigError as exc:
        first = str(exc.problems[0]) if exc.problems else str(exc)
        more = f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        return Check("config", "fail", f"{first}{more}"), None
    detail = (
        f"{path}: network {config.name!r}, {len(config.pes)} PEs, {len(config.frps)} FRPs, "
        f"{len(config.intervals)} intervals"
    )
    return Check("config", "ok", detail), config


def check_clock(
    *, server_s: float, sent_s: float, received_s: float, resolution_s: float = 1.0
) -> Check:
    """Skew between this host and the MG from a time the MG reported.

    The server's clock was read somewhere between ``sent_s`` and
    ``received_s`` and truncated to ``resolution_s`` (1 s for a ``Date``
    header, 0 for ``time_ms``), so the skew is only known to within that
    resolution plus half the round trip; only what exceeds it is reported.
    """
    middle = (sent_s + received_s) / 2
    slack = resolution_s + (received_s - sent_s) / 2
    skew = server_s + resolution_s / 2 - middle
    beyond = max(0.0, abs(skew) - slack)
    detail = f"MG clock {skew:+.1f} s from this host (±{slack:.1f} s)"
    if beyond > CLOCK_FAIL_S:
        return Check("clock", "fail", f"{detail}: synchronize both hosts (NTP)")
    if beyond > CLOCK_WARN_S:
        return Check("clock", "warn", f"{detail}: records near a period's edge may be misfiled")
    return Check("clock", "ok", detail)


def check_mg(url: str, *, timeout: float = 3.0) -> list[Check]:
    """The MG answers ``/health`` (and the clock check from its ``Date`` header)."""
    sent = time.time()
    try:
        response = httpx.get(f"{url.rstrip('/')}/api/v1/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return [Check("mg", "fail", f"{url}: unreachable: {exc}")]
    received = time.time()
    if response.status_code != 200:
        return [Check("mg", "fail", f"{url}: /api/v1/health answered {response.status_code}")]
    body = response.json() if _is_json(response) else {}
    checks = [Check("mg", "ok", f"{url}: healthy, flowmatrix {body.get('version', '?')}")]
    date = response.headers.get("date")
    parsed = email.utils.parsedate_to_datetime(date) if date else None
    if isinstance(body.get("time_ms"), int):
        server_s, resolution = body["time_ms"] / 1000, 0.0
    elif parsed is not None:
        server_s, resolution = parsed.timestamp(), 1.0
    else:
        checks.append(Check("clock", "skip", "the MG reports no time"))
        return checks
    checks.append(
        check_clock(server_s=server_s, sent_s=sent, received_s=received, resolution_s=resolution)
    )
    return checks


def _is_json(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/json")


def check_token(url: str, token: str, *, frp: str | None = None, timeout: float = 3.0) -> Check:
    """The token is accepted: an FRP's for its configuration view, else an operator's."""
    path = f"/api/v1/frps/{frp}/config" if frp else "/api/v1/alarms"
    who = f"FRP {frp}" if frp else "operator"
    try:
        response = httpx.get(
            f"{url.rstrip('/')}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        return Check("token", "fail", f"{url}: unreachable: {exc}")
    if response.status_code == 200:
        return Check("token", "ok", f"{who} token accepted ({path})")
    reason = response.json().get("error", "") if _is_json(response) else response.text[:200]
    hint = {
        401: "the MG does not know this token (reissue with `flowmatrix mg token`)",
        403: f"the token is valid but not for the {who}",
        404: f"the MG does not know {who}",
    }.get(response.status_code, "unexpected answer")
    return Check("token", "fail", f"{path}: {response.status_code} {reason}: {hint}")


def _ago(ms: int, now_ms: int) -> str:
    seconds = max(0, now_ms - ms) // 1000
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def check_routing(url: str, token: str, *, timeout: float = 3.0) -> Check:
    """Whether the MG holds routing tables for the PEs of every FRP (an operator token).

    Without them the MG cannot explain lookups for those PEs, and in
    centralized mode their FRPs' records wait at the FRP until tables arrive.
    """
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        network = httpx.get(f"{base}/api/v1/network", headers=headers, timeout=timeout)
        routing = httpx.get(f"{base}/api/v1/routing", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return Check("routing", "fail", f"{url}: unreachable: {exc}")
    if network.status_code != 200 or routing.status_code != 200:
        code = network.status_code if network.status_code != 200 else routing.status_code
        return Check("routing", "skip", f"the MG answered {code} (an older MG, or no operator)")
    expected = [f["name"] for f in network.json()["frps"] if f["pes"]]
    body = routing.json()
    now_ms = time.time_ns() // 1_000_000
    sent = {f["frp"]: f["bundles"][-1]["received_ms"] for f in body["frps"] if f["bundles"]}
    missing = [f for f in expected if f not in sent]
    got = ", ".join(f"{f} ({_ago(sent[f], now_ms)})" for f in expected if f in sent)
    where = f"base tables from {body['base']}; " if body.get("base") else ""
    if not missing:
        return Check("routing", "ok", f"{where}tables from every FRP: {got}")
    if body.get("base"):
        detail = f"{where}no bundle yet from {', '.join(missing)}"
        return Check("routing", "ok", detail)
    hint = (
        "start them with --routing or --bmp (or give the MG mg serve --routing DIR): until "
        "then their PEs' lookups cannot be explained and centralized-mode records wait"
    )
    return Check("routing", "warn", f"no routing tables from {', '.join(missing)}: {hint}")


def check_receive_buffer(asked: int | None = None) -> Check:
    """Whether the kernel grants the collector's UDP receive buffer."""
    from flowmatrix.flows.collector import CollectorConfig, _grow_buffer

    want = CollectorConfig().receive_buffer if asked is None else asked
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        _grow_buffer(sock, want)
        # Linux reports twice what was set (bookkeeping overhead included)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    detail = f"receive buffer {got / 2**20:.1f} MiB granted of {want / 2**20:.0f} MiB asked"
    if got >= want:
        return Check("receive-buffer", "ok", detail)
    rmem = Path("/proc/sys/net/core/rmem_max")
    hint = f"raise net.core.rmem_max (now {rmem.read_text().strip()})" if rmem.exists() else ""
    hint = hint or "raise the kernel's receive buffer limit"
    return Check("receive-buffer", "warn", f"{detail}: {hint} or give the FRP CAP_NET_ADMIN")


def check_exporters(
    listen: tuple[str, int],
    *,
    seconds: float,
    expected: frozenset[str] = frozenset(),
) -> Check:
    """Bind ``listen`` for ``seconds`` and count datagrams per source address.

    ``expected`` are the configured exporters: missing ones warn, sources
    outside it are named (an FRP refuses them).
    """
    host, port = listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sources: Counter[str] = Counter()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Check(
                    "exporters",
                    "skip",
                    f"{host}:{port} is in use (an FRP running?): use --frp-metrics URL instead",
                )
            return Check("exporters", "fail", f"cannot bind {host}:{port}: {exc.strerror}")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            with contextlib.suppress(TimeoutError):
                _, source = sock.recvfrom(65535)
                sources[source[0].removeprefix("::ffff:")] += 1
    if not sources:
        return Check(
            "exporters",
            "fail",
            f"no datagram on {host}:{port} in {seconds:g} s: check the "
            "exporters' destination, firewalls and routing",
        )
    seen = ", ".join(f"{a} ({n})" for a, n in sorted(sources.items()))
    missing = sorted(expected - sources.keys())
    unknown = sorted(sources.keys() - expected) if expected else []
    problems = []
    if missing:
        problems.append(f"silent: {', '.join(missing)}")
    if unknown:
        problems.append(f"not configured (refused by the FRP): {', '.join(unknown)}")
    if problems:
        return Check("exporters", "warn", f"datagrams from {seen}; {'; '.join(problems)}")
    return Check("exporters", "ok", f"datagrams in {seconds:g} s from {seen}")


def _records(url: str, timeout: float) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url, timeout=timeout).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _RECORD_COUNTERS:
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return next((found[n] for n in _RECORD_COUNTERS if n in found), None)


def check_frp_metrics(url: str, *, seconds: float, timeout: float = 3.0) -> Check:
    """Scrape a running FRP's ``/metrics`` twice, ``seconds`` apart: are records arriving?"""
    try:
        before = _records(url, timeout)
        time.sleep(seconds)
        after = _records(url, timeout)
    except (httpx.HTTPError, ValueError) as exc:
        return Check("exporters", "fail", f"{url}: cannot scrape: {exc}")
    if before is None or after is None:
        return Check("exporters", "fail", f"{url}: no record counter (is this an FRP?)")
    rate = (after - before) / seconds
    if rate <= 0:
        return Check("exporters", "fail", f"no record decoded by the FRP in {seconds:g} s")
    return Check("exporters", "ok", f"the FRP decodes {rate:,.0f} records/s")


def run_checks(
    *,
    config: Path | None = None,
    mg: str | None = None,
    token: str | None = None,
    frp: str | None = None,
    listen: tuple[str, int] | None = None,
    frp_metrics: str | None = None,
    seconds: float = 5.0,
) -> list[Check]:
    """Every check the arguments make possible, in order; skipped ones say what they need."""
    checks: list[Check] = []
    network = None
    if config is not None:
        check, network = check_config(config)
        checks.append(check)
    if mg is None:
        checks.append(Check("mg", "skip", "no --mg URL given"))
    else:
        reached = check_mg(mg)
        checks.extend(reached)
        if token is None:
            checks.append(Check("token", "skip", "no --token-file given"))
        elif reached[0].status == "ok":
            checks.append(check_token(mg, token, frp=frp))
            if frp is None and checks[-1].status == "ok":
                checks.append(check_routing(mg, token))
    checks.append(check_receive_buffer())
    if frp_metrics is not None:
        checks.append(check_frp_metrics(frp_metrics, seconds=seconds))
    elif listen is not None:
        expected: frozenset[str] = frozenset()
        if network is not None:
            from flowmatrix.flows.collector import allowed_exporters

            expected = allowed_exporters(network, frp)
        checks.append(check_exporters(listen, seconds=seconds, expected=expected))
    else:
        checks.append(Check("exporters", "skip", "no --listen or --frp-metrics given"))
    return checks
