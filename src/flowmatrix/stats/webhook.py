"""Alarm transitions → one JSON POST each to their rule's webhook, retried, never raising.

:class:`WebhookSender` is a component (``__init__`` does nothing else,
``start``, ``stop``): :meth:`WebhookSender.send` queues the events whose rule
has a ``webhook`` and returns at once; one background thread posts them in
order with httpx. A transport error, a 5xx or a 429 is retried with
exponential backoff (``backoff_s``, 2×, 4×, …) up to ``attempts`` tries; any
other answer outside 2xx is final. An event that cannot be delivered is
logged and counted in ``alarm_webhook_failures_total{rule}``; nothing is
raised into the caller.

The body is the event (:meth:`~flowmatrix.stats.alarms.AlarmEvent.to_json`)
plus the rule's ``target``, ``statistic``, ``op`` and ``description``; the
``Idempotency-Key`` header (SHA-256 of rule, interval, key, state, period end) is the same
on every try, so a receiver that answered but whose answer was lost can drop
the repeat.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

import httpx
from prometheus_client import Counter

from flowmatrix.config.model import AlarmRule
from flowmatrix.stats.alarms import AlarmEvent

__all__ = [
    "MAX_QUEUED",
    "WebhookSender",
    "alarm_webhook_deliveries_total",
    "alarm_webhook_failures_total",
    "webhook_body",
]

log = logging.getLogger("flowmatrix.stats")

alarm_webhook_deliveries_total = Counter(
    "alarm_webhook_deliveries_total", "Alarm transitions posted to a webhook, by rule.", ["rule"]
)
alarm_webhook_failures_total = Counter(
    "alarm_webhook_failures_total",
    "Alarm transitions given up on after every try, by rule.",
    ["rule"],
)

_RETRIED = frozenset({429, 500, 502, 503, 504})
#: events waiting for delivery beyond which new ones are dropped (and counted as failures)
MAX_QUEUED = 10_000


def webhook_body(event: AlarmEvent, rule: AlarmRule) -> dict[str, Any]:
    """The JSON document posted for one transition.

    >>> from flowmatrix.config.model import AlarmRule
    >>> rule = AlarmRule("hot", "link", "utilization", 0.8)
    >>> webhook_body(AlarmEvent("hot", "always", "a--b", "raised", 0, 0.9, 0.8), rule)["statistic"]
    'utilization'
    """
    return {
        **event.to_json(),
        "target": rule.target,
        "statistic": rule.statistic,
        "op": rule.op,
        "description": rule.description,
    }


class WebhookSender:
    """Posts alarm transitions to their rules' webhooks from one background thread."""

    def __init__(
        self,
        rules: Iterable[AlarmRule],
        *,
        timeout_s: float = 5.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.rules = {r.id: r for r in rules}
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._transport = transport
        self._queue: queue.Queue[AlarmEvent | None] = queue.Queue(MAX_QUEUED)
        self._client: httpx.Client | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Open the HTTP client and start the delivery thread."""
        self._stopping.clear()
        self._client = httpx.Client(timeout=self.timeout_s, transport=self._transport)
        self._thread = threading.Thread(target=self._run, name="alarm-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (waiting at most ``timeout_s``), then close the client."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._stopping.set()  # cut the backoff sleeps short
            self._thread.join(self.timeout_s + 1)
        self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, events: Iterable[AlarmEvent]) -> int:
        """Queue the events whose rule has a webhook; return how many were queued."""
        queued = 0
        for event in events:
            rule = self.rules.get(event.rule)
            if rule is None or rule.webhook is None:
                continue
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                alarm_webhook_failures_total.labels(rule=event.rule).inc()
                log.warning(
                    "component=webhook rule=%s key=%s state=%s queue full, dropped",
                    event.rule,
                    event.key,
                    event.state,
                )
            else:
                queued += 1
        return queued

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self.deliver(event)

    def deliver(self, event: AlarmEvent) -> bool:
        """Post one event now, retrying; True once a 2xx answer came back. Never raises."""
        rule = self.rules.get(event.rule)
        if rule is None or rule.webhook is None or self._client is None:
            return False
        body = webhook_body(event, rule)
        what = f"{event.rule}/{event.interval}/{event.key}/{event.state}/{event.at_ms}"
        headers = {
            # hashed: names may hold any character, header values must be ASCII
            "Idempotency-Key": hashlib.sha256(what.encode()).hexdigest(),
            "User-Agent": "flowmatrix-alarms",
        }
        reason = ""
        for attempt in range(self.attempts):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                if self._stopping.wait(delay):
                    reason = f"stopped after {attempt} tries; last: {reason}"
                    break
            try:
                response = self._client.post(rule.webhook, json=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                continue
            except Exception as exc:  # a webhook must never take the MG down
                reason = f"{type(exc).__name__}: {exc}"
                break
            if response.is_success:
                alarm_webhook_deliveries_total.labels(rule=event.rule).inc()
                log.info(
                    "component=webhook rule=%s key=%s state=%s url=%s tries=%d delivered",
                    event.rule,
                    event.key,
                    event.state,
                    rule.webhook,
                    attempt + 1,
                )
                return True
            reason = f"HTTP {response.status_code}"
            if response.status_code not in _RETRIED:
                break
        alarm_webhook_failures_total.labels(rule=event.rule).inc()
        log.warning(
            "component=webhook rule=%s key=%s state=%s url=%s not delivered: %s",
            event.rule,
            event.key,
            event.state,
            rule.webhook,
            reason,
        )
        return False
