from __future__ import annotations

import time
from pathlib import Path

from flowmatrix.frp.pipeline import Upload
from flowmatrix.frp.testing import T0, FakeMg
from flowmatrix.frp.uploader import Uploader, UploaderConfig
from flowmatrix.matrix.partial import PartialMeta, digest, empty_partial


def upload(period: int, records: int = 0) -> Upload:
    meta = PartialMeta(
        frp="frp-a",
        interval="always",
        period_start_ms=T0 + period * 60_000,
        period_end_ms=T0 + (period + 1) * 60_000,
        records=records,
    )
    table = empty_partial()
    return Upload("always", meta.period_start_ms, table, meta, digest(table, meta), "")


def uploader(tmp_path: Path, mg: FakeMg, delivered: list[Upload]) -> Uploader:
    config = UploaderConfig(
        mg.url, "frp-a", "secret", tmp_path / "spool", backoff_min=0.05, backoff_max=0.2, poll=0.05
    )
    return Uploader(config, on_delivered=delivered.append)


def wait_for(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_uploads_spool_while_the_mg_fails_then_arrive_in_order(tmp_path: Path) -> None:
    delivered: list[Upload] = []
    with FakeMg(b"<x/>") as mg:
        mg.fail_with = 503
        up = uploader(tmp_path, mg, delivered)
        up.start()
        try:
            for k in range(3):
                up.submit(upload(k))
            wait_for(lambda: mg.attempts >= 2)
            assert len(up.pending()) == 3
            mg.fail_with = None
            assert up.wait_idle(10)
        finally:
            up.stop()
        starts = [r.meta.period_start_ms - T0 for r in mg.received]
        assert starts == [0, 60_000, 120_000]
        assert [u.period_start_ms - T0 for u in delivered] == starts
        assert mg.received[0].path == f"/api/v1/partials/frp-a/always/{T0}"


def test_uploads_wait_in_the_spool_while_the_mg_is_down_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    mg = FakeMg(b"<x/>")
    mg.start()
    mg.stop()  # the port is known, nobody listens
    up = uploader(tmp_path, mg, [])
    up.start()
    try:
        up.submit(upload(0))
        up.submit(upload(1))
        up.submit(upload(1, records=5))  # replaces the waiting older one of period 1
        time.sleep(0.3)
        assert len(up.pending()) == 2
    finally:
        up.stop()
    again = uploader(tmp_path, mg, [])
    mg.start()
    again.start()
    try:
        assert again.wait_idle(10)
    finally:
        again.stop()
        mg.stop()
    assert [(r.meta.period_start_ms - T0, r.meta.records) for r in mg.received] == [
        (0, 0),
        (60_000, 5),
    ]


def test_a_4xx_answer_moves_the_upload_to_rejected_and_delivery_goes_on(tmp_path: Path) -> None:
    with FakeMg(b"<x/>") as mg:
        mg.fail_with = 400
        up = uploader(tmp_path, mg, [])
        up.start()
        try:
            up.submit(upload(0))
            wait_for(lambda: up.rejected == 1)
            mg.fail_with = None
            up.submit(upload(1))
            assert up.wait_idle(10)
        finally:
            up.stop()
        assert [p.name.endswith(f"-always-{T0}.arrow") for p in up.rejected_dir.iterdir()] == [True]
        assert [r.meta.period_start_ms - T0 for r in mg.received] == [60_000]


def test_a_refused_token_is_retried_until_the_operator_fixes_it(tmp_path: Path) -> None:
    with FakeMg(b"<x/>") as mg:
        mg.fail_with = 401
        up = uploader(tmp_path, mg, [])
        up.start()
        try:
            up.submit(upload(0))
            wait_for(lambda: mg.attempts >= 2)
            assert up.rejected == 0
            assert len(up.pending()) == 1
            mg.fail_with = None
            assert up.wait_idle(10)
        finally:
            up.stop()
        assert [r.meta.period_start_ms - T0 for r in mg.received] == [0]
