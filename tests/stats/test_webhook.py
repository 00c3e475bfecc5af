import datetime as dt
import hashlib
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import REGISTRY

from flowmatrix.config.model import AlarmRule
from flowmatrix.stats.alarms import AlarmEngine, AlarmEvent
from flowmatrix.stats.webhook import WebhookSender, webhook_body

MINUTE = 60_000
_ids = itertools.count()


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 answering a scripted status per request."""

    url: str
    statuses: list[int] = field(default_factory=list)
    posts: list[tuple[str, dict[str, str], dict]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = box[0]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = rec.statuses.pop(0) if rec.statuses else 200
            rec.answered.append(status)
            if status == 200:
                rec.posts.append((self.path, dict(self.headers), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/alarms"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def hooked(url: str, hold_minutes: int = 0) -> AlarmRule:
    return AlarmRule(
        f"hook{next(_ids)}",
        "link",
        "utilization",
        0.8,
        hold_down=dt.timedelta(minutes=hold_minutes),
        webhook=url,
        description="core link",
    )


def sender_for(rule: AlarmRule, **options: float) -> WebhookSender:
    sender = WebhookSender([rule], timeout_s=2.0, backoff_s=0.01, **options)
    sender.start()
    return sender


def test_one_post_per_transition_raise_then_clear(receiver):
    rule = hooked(receiver.url, hold_minutes=5)
    engine = AlarmEngine([rule])
    sender = sender_for(rule)
    try:
        for i, load in enumerate([0.5, 0.9, 0.95, 0.97, 0.3, 0.2, 0.1], start=1):
            sender.send(engine.observe(rule.id, "always", i * 5 * MINUTE, ["par--lon"], [load]))
    finally:
        sender.stop()
    assert [body["state"] for _, _, body in receiver.posts] == ["raised", "cleared"]
    path, headers, raised = receiver.posts[0]
    assert path == "/hooks/alarms"
    assert headers["Content-Type"] == "application/json"
    what = f"{rule.id}/always/par--lon/raised/{15 * MINUTE}"
    assert headers["Idempotency-Key"] == hashlib.sha256(what.encode()).hexdigest()
    assert raised == {
        "rule": rule.id,
        "interval": "always",
        "key": "par--lon",
        "state": "raised",
        "at_ms": 15 * MINUTE,
        "value": 0.95,
        "threshold": 0.8,
        "target": "link",
        "statistic": "utilization",
        "op": "above",
        "description": "core link",
    }
    assert receiver.posts[1][2]["at_ms"] == 30 * MINUTE
    assert receiver.posts[1][2]["value"] == 0.2


def test_a_receiver_answering_500_gets_the_event_once_after_a_retry(receiver):
    rule = hooked(receiver.url)
    receiver.statuses = [500, 503]
    sender = sender_for(rule)
    try:
        sender.send([AlarmEvent(rule.id, "always", "a--b", "raised", MINUTE, 0.9, 0.8)])
    finally:
        sender.stop()
    assert receiver.answered == [500, 503, 200]
    assert len(receiver.posts) == 1
    assert REGISTRY.get_sample_value("alarm_webhook_deliveries_total", {"rule": rule.id}) == 1


def test_a_client_error_is_not_retried_and_is_counted(receiver):
    rule = hooked(receiver.url)
    receiver.statuses = [404]
    sender = sender_for(rule)
    try:
        sender.send([AlarmEvent(rule.id, "always", "a--b", "raised", MINUTE, 0.9, 0.8)])
    finally:
        sender.stop()
    assert receiver.answered == [404]
    assert REGISTRY.get_sample_value("alarm_webhook_failures_total", {"rule": rule.id}) == 1


def test_a_dead_receiver_raises_nothing_and_is_counted_as_a_failure(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port any more: every try is refused
    rule = hooked(f"http://127.0.0.1:{port}/hook")
    sender = sender_for(rule, attempts=3)
    event = AlarmEvent(rule.id, "always", "a--b", "raised", MINUTE, 0.9, 0.8)
    try:
        assert sender.deliver(event) is False
        assert sender.send([event]) == 1
    finally:
        sender.stop()
    assert REGISTRY.get_sample_value("alarm_webhook_failures_total", {"rule": rule.id}) == 2
    assert "not delivered: ConnectError" in caplog.text


def test_events_of_rules_without_a_webhook_are_not_queued():
    rule = AlarmRule("silent", "network", "bytes", 1.0)
    sender = WebhookSender([rule])
    assert sender.send([AlarmEvent("silent", "always", "network", "raised", 0, 2.0, 1.0)]) == 0
    assert sender.send([AlarmEvent("unknown", "always", "network", "raised", 0, 2.0, 1.0)]) == 0
    sender.stop()


def test_webhook_body_adds_the_rule_to_the_event():
    rule = AlarmRule("r", "element", "bps", 5.0, op="below", description="quiet")
    body = webhook_body(AlarmEvent("r", "i", "k", "cleared", 7, 6.0, 5.0), rule)
    assert body["op"] == "below"
    assert body["description"] == "quiet"
    assert body["state"] == "cleared"


def test_names_outside_ascii_are_delivered(receiver):
    rule = hooked(receiver.url, hold_minutes=0)
    engine = AlarmEngine([rule])
    sender = sender_for(rule)
    try:
        sender.send(engine.observe(rule.id, "always", 5 * MINUTE, ["zürich→genève"], [0.95]))
    finally:
        sender.stop()
    assert [body["key"] for _, _, body in receiver.posts] == ["zürich→genève"]
