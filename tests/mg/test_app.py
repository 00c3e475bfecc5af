from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from flowmatrix.config.model import NetworkConfig
from flowmatrix.config.xml import config_from_bytes
from flowmatrix.errors import ConfigError
from flowmatrix.matrix.partial import (
    MEDIA_TYPE,
    PARTIAL_SCHEMA,
    ExporterReport,
    PartialMeta,
    empty_partial,
    encode_partial,
)
from flowmatrix.matrix.store import Store
from flowmatrix.mg.app import create_app
from flowmatrix.mg.auth import issue_tokens, read_token
from flowmatrix.mg.service import config_files, load_mg_config
from flowmatrix.mg.testing import AsgiClient

VALID = Path(__file__).parents[1] / "config" / "data" / "valid.xml"
P0 = 1_800_000_000_000  # a period start, unix ms
P1 = P0 + 300_000


@dataclass
class Mg:
    client: AsgiClient
    store: Store
    tokens: dict[str, str]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def put(
        self, frp: str, body: bytes, *, start: int = P0, token: str | None = None, **headers: str
    ) -> httpx.Response:
        return self.client.put(
            f"/api/v1/partials/{frp}/always/{start}",
            content=body,
            headers={"Content-Type": MEDIA_TYPE, **self.auth(token or frp), **headers},
        )

    def get(self, path: str, name: str = "operator", **params: object) -> httpx.Response:
        return self.client.get(f"/api/v1{path}", params=params, headers=self.auth(name))


@pytest.fixture
def mg(config: NetworkConfig, tmp_path: Path) -> Iterator[Mg]:
    with Store(":memory:") as store:
        issue_tokens(store, config, tmp_path)
        tokens = {p.stem: read_token(p) for p in tmp_path.glob("*.token")}
        yield Mg(AsgiClient(create_app(config, store, max_body=1_000_000)), store, tokens)


def rows(*items: tuple[str, str, str, str, float, float]) -> pa.Table:
    """Rows of (ingress, vrf, egress, class, bytes, bytes_var); in_if 3, tos 0, 1 packet."""
    cols: dict[str, list[object]] = {n: [] for n in PARTIAL_SCHEMA.names}
    for ingress, vrf, egress, cls, b, var in items:
        for name, value in zip(
            PARTIAL_SCHEMA.names,
            [ingress, 3, vrf, egress, 0, cls, b, 1.0, 1.0, 1.0, var, 0.0],
            strict=True,
        ):
            cols[name].append(value)
    return pa.table(cols).cast(PARTIAL_SCHEMA)


def body(frp: str, table: pa.Table, start: int = P0, **meta: object) -> bytes:
    envelope = PartialMeta(
        frp=frp,
        interval="always",
        period_start_ms=start,
        period_end_ms=start + 300_000,
        **meta,  # type: ignore[arg-type]
    )
    return encode_partial(table, envelope)


PAR = rows(
    ("par-pe1", "cust-a", "lon-pe1", "BE", 100.0, 16.0),
    ("par-pe1", "cust-a", "lon-pe1", "EF", 10.0, 0.0),
    ("par-pe2", "", "unresolved", "BE", 5.0, 0.0),
)
LON = rows(("lon-pe1", "cust-a", "par-pe1", "BE", 1000.0, 9.0))


# --- auth -----------------------------------------------------------------------------------------


def test_missing_or_unknown_tokens_get_401_with_a_bearer_challenge(mg: Mg) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        r = mg.client.get("/api/v1/periods", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert set(r.json()) == {"error"}


@pytest.mark.parametrize(
    ("who", "method", "path", "status"),
    [
        ("frp-par", "GET", "/frps/frp-par/config", 200),
        ("frp-par", "GET", "/frps/frp-lon/config", 403),
        ("operator", "GET", "/frps/frp-lon/config", 200),
        ("operator", "GET", "/frps/nobody/config", 404),
        ("frp-par", "GET", "/periods", 403),
        ("frp-par", "GET", "/matrix?interval=always", 403),
        ("operator", "GET", "/periods", 200),
        ("frp-lon", "GET", f"/partials/frp-lon/always/{P0}/versions", 403),
        ("operator", "GET", f"/partials/frp-lon/always/{P0}/versions", 200),
        ("operator", "GET", f"/partials/ghost/always/{P0}/versions", 404),
    ],
)
def test_each_role_reaches_only_its_resources(
    mg: Mg, who: str, method: str, path: str, status: int
) -> None:
    r = mg.client.request(method, f"/api/v1{path}", headers=mg.auth(who))
    assert r.status_code == status, r.text


def test_uploads_are_refused_to_other_frps_and_to_the_operator(mg: Mg) -> None:
    assert mg.put("frp-par", body("frp-par", PAR), token="frp-lon").status_code == 403
    assert mg.put("frp-par", body("frp-par", PAR), token="operator").status_code == 403
    assert mg.store.counts()["uploads"] == 0


# --- uploads --------------------------------------------------------------------------------------


def test_upload_is_stored_then_unchanged_then_versioned(mg: Mg) -> None:
    first = mg.put("frp-par", body("frp-par", PAR))
    assert first.status_code == 200
    assert first.json()["status"] == "stored"
    assert first.json()["version"] == 1
    again = mg.put("frp-par", body("frp-par", PAR, revision=2))
    assert again.json() == {**first.json(), "status": "unchanged"}
    newer = mg.put("frp-par", body("frp-par", PAR.slice(0, 1), revision=3))
    assert (newer.json()["status"], newer.json()["version"]) == ("stored", 2)
    versions = mg.get(f"/partials/frp-par/always/{P0}/versions").json()
    assert [(v["version"], v["current"], v["rows"]) for v in versions] == [
        (1, False, 3),
        (2, True, 1),
    ]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (b"not arrow at all", 400, "not an Arrow IPC stream"),
        (b"", 400, "partial matrix"),
        (encode_partial(empty_partial(), PartialMeta(frp="frp-par", interval="always",
            period_start_ms=P1, period_end_ms=P1 + 1)), 400, "does not match the path"),
        (body("frp-lon", LON), 400, "does not match the path"),
        (body("frp-par", LON), 400, "ingress PEs not exporting to frp-par: lon-pe1"),
        (body("frp-par", rows(("par-pe1", "", "lon-pe1", "BE", float("inf"), 0.0))), 400,
            "infinite values in bytes"),
    ],
)  # fmt: skip
def test_malformed_or_mismatched_bodies_get_400_and_store_nothing(
    mg: Mg, payload: bytes, status: int, message: str
) -> None:
    r = mg.put("frp-par", payload)
    assert r.status_code == status
    assert message in r.json()["error"]
    assert "\n" not in r.json()["error"]
    assert mg.store.counts() == {"tokens": 3, "uploads": 0, "partial_rows": 0}


def test_bad_requests_get_clear_4xx_never_500(mg: Mg) -> None:
    good = body("frp-par", PAR)
    assert mg.put("frp-par", good, **{"Content-Type": "text/plain"}).status_code == 415
    huge = mg.client.put(
        f"/api/v1/partials/frp-par/always/{10**30}", content=good, headers=mg.auth("frp-par")
    )
    assert huge.status_code == 422
    assert "error" in huge.json()
    unknown = mg.client.put(
        f"/api/v1/partials/frp-par/nope/{P0}",
        content=good,
        headers={"Content-Type": MEDIA_TYPE, **mg.auth("frp-par")},
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "unknown interval 'nope'"}
    mg.tokens["ghost"] = mg.store.add_token("ghost", "frp")
    assert mg.put("ghost", body("ghost", empty_partial())).json() == {
        "error": "unknown FRP 'ghost'"
    }
    too_big = mg.put("frp-par", b"x" * 1_000_001)
    assert too_big.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 400_000

    streamed = mg.client.put(
        f"/api/v1/partials/frp-par/always/{P0}",
        content=chunks(),
        headers={"Content-Type": MEDIA_TYPE, **mg.auth("frp-par")},
    )
    assert streamed.status_code == 413  # no Content-Length: counted while streaming
    assert mg.get("/matrix", interval="always", granularity="as_as").status_code == 422
    assert mg.get("/matrix", interval="always", period_start_ms=-1).status_code == 422
    assert mg.get("/matrix", interval="always").status_code == 404  # nothing stored yet
    assert mg.get("/matrix", interval="nope").status_code == 404
    assert mg.client.get("/api/v1/nowhere").json() == {"error": "Not Found"}
    assert mg.store.counts()["uploads"] == 0


# --- totals and completeness ----------------------------------------------------------------------


def matrix(mg: Mg, **params: object) -> dict[str, object]:
    r = mg.get("/matrix", interval="always", **params)
    assert r.status_code == 200, r.text
    assert r.headers["x-flowmatrix-status"] == r.json()["status"]
    result: dict[str, object] = r.json()
    return result


def test_total_is_the_sum_of_current_partials_and_a_late_upload_completes_it(mg: Mg) -> None:
    mg.put("frp-par", body("frp-par", PAR))
    early = matrix(mg, period_start_ms=P0)
    assert (early["status"], early["missing"]) == ("incomplete", ["frp-lon"])
    assert early["columns"] == [
        "ingress", "egress", "class", "bytes", "packets", "flows", "bytes_err95",
        "packets_err95", "seconds",
    ]  # fmt: skip
    assert [r[:4] for r in early["rows"]] == [  # type: ignore[attr-defined]
        ["par-pe1", "lon-pe1", "BE", 100.0],
        ["par-pe1", "lon-pe1", "EF", 10.0],
        ["par-pe2", "unresolved", "BE", 5.0],
    ]
    assert early["rows"][0][6] == pytest.approx(1.96 * 4)  # type: ignore[index]
    mg.put("frp-lon", body("frp-lon", LON))
    late = matrix(mg, period_start_ms=P0)
    assert (late["status"], late["missing"]) == ("complete", [])
    assert late["rows"][0][:4] == ["lon-pe1", "par-pe1", "BE", 1000.0]  # type: ignore[index]
    assert late["rows"][0][8] == 300  # type: ignore[index]


def test_totals_over_several_periods_sum_them_and_their_seconds(mg: Mg) -> None:
    for start in (P0, P1):
        mg.put("frp-par", body("frp-par", PAR, start=start), start=start)
        mg.put("frp-lon", body("frp-lon", LON, start=start), start=start)
    total = matrix(mg, granularity="pop_pop", **{"class": "all"})
    assert total["status"] == "complete"
    assert [r[:4] + r[-1:] for r in total["rows"]] == [  # type: ignore[attr-defined]
        ["LON", "PAR", "all", 2000.0, 600],
        ["PAR", "LON", "all", 220.0, 600],
        ["PAR", "unresolved", "all", 10.0, 600],
    ]
    one = matrix(mg, since_ms=P1, until_ms=P1 + 1, granularity="vrf", **{"class": "EF"})
    assert one["columns"][:4] == ["vrf", "ingress", "egress", "class"]  # type: ignore[index]
    assert one["rows"] == [["cust-a", "par-pe1", "lon-pe1", "EF", 10.0, 1.0, 1.0, 0.0, 0.0, 300]]
    by_if = matrix(mg, period_start_ms=P0, granularity="if_pe")
    assert by_if["columns"][:4] == ["ingress", "if_index", "egress", "class"]  # type: ignore[index]
    assert by_if["rows"][0][:2] == ["lon-pe1", 3]  # type: ignore[index]


def test_periods_name_missing_frps_and_list_reported_gaps(mg: Mg) -> None:
    gap = ExporterReport(address="127.0.1.1", pe="par-pe1", gap=7, gap_unit="packets")
    mg.put("frp-par", body("frp-par", PAR, exporters=(gap,), records=12))
    (period,) = mg.get("/periods", interval="always").json()
    assert period["status"] == "incomplete"
    assert period["missing"] == ["frp-lon"]
    assert period["expected"] == ["frp-par", "frp-lon"]
    assert period["gaps"] == [
        {
            "frp": "frp-par",
            "exporter": "127.0.1.1",
            "pe": "par-pe1",
            "gap": 7,
            "gap_unit": "packets",
        }
    ]
    assert (period["records"], period["period_end_ms"]) == (12, P0 + 300_000)
    mg.put("frp-lon", body("frp-lon", LON))
    (period,) = mg.get("/periods").json()
    assert (period["status"], period["reported"]) == ("complete", ["frp-lon", "frp-par"])
    assert period["gaps"]  # complete, yet gaps stay visible


def test_matrix_is_served_as_csv_and_parquet_with_the_same_rows(mg: Mg) -> None:
    mg.put("frp-par", body("frp-par", PAR))
    as_json = matrix(mg)
    csv = mg.get("/matrix", interval="always", format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["x-flowmatrix-status"] == "incomplete"
    table = pacsv.read_csv(io.BytesIO(csv.content))
    assert table.column_names == as_json["columns"]
    parquet = pq.read_table(
        io.BytesIO(mg.get("/matrix", interval="always", format="parquet").content)
    )
    assert parquet.equals(table.cast(parquet.schema))
    assert [list(r.values()) for r in parquet.to_pylist()] == as_json["rows"]


# --- configuration, metadata ----------------------------------------------------------------------


def test_config_view_has_a_strong_etag_and_hides_other_frps_pe_addresses(mg: Mg) -> None:
    r = mg.get("/frps/frp-lon/config", "frp-lon")
    assert r.headers["content-type"].startswith("application/xml")
    etag = r.headers["etag"]
    assert etag.startswith('"')
    assert len(etag) == 66
    view = config_from_bytes(r.content)
    assert view.for_frp == "frp-lon"
    assert view.pe("lon-pe1").management is not None
    assert view.pe("par-pe1").management is None
    assert b"192.0.2.1" not in r.content
    assert b"127.0.1.1" not in r.content
    cached = mg.client.get(
        "/api/v1/frps/frp-lon/config", headers={**mg.auth("frp-lon"), "If-None-Match": etag}
    )
    assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", etag)
    stale = mg.client.get(
        "/api/v1/frps/frp-lon/config", headers={**mg.auth("frp-lon"), "If-None-Match": '"x"'}
    )
    assert stale.status_code == 200


def test_openapi_schema_lists_every_endpoint(mg: Mg) -> None:
    schema = mg.client.get("/api/v1/openapi.json").json()
    assert set(schema["paths"]) >= {
        "/api/v1/health",
        "/api/v1/frps/{frp}/config",
        "/api/v1/partials/{frp}/{interval}/{period_start_ms}",
        "/api/v1/partials/{frp}/{interval}/{period_start_ms}/versions",
        "/api/v1/periods",
        "/api/v1/matrix",
    }
    put = schema["paths"]["/api/v1/partials/{frp}/{interval}/{period_start_ms}"]["put"]
    assert MEDIA_TYPE in put["requestBody"]["content"]
    assert mg.client.get("/api/v1/docs").status_code == 200


def test_health_and_metrics_need_no_token(mg: Mg) -> None:
    assert mg.client.get("/api/v1/health").json()["status"] == "ok"
    mg.put("frp-par", body("frp-par", PAR))
    text = mg.client.get("/metrics").text
    assert 'mg_uploads_total{status="stored"}' in text
    assert "mg_periods_incomplete 1.0" in text
    assert "mg_auth_failures_total" in text
    assert json.loads(mg.client.get("/api/v1/health").content)["version"]


def test_a_config_directory_loads_every_xml_file_and_an_empty_one_is_an_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.xml").write_bytes(VALID.read_bytes())
    (tmp_path / "notes.txt").write_text("not configuration")
    assert config_files(tmp_path) == [tmp_path / "a.xml"]
    assert load_mg_config(tmp_path).name == "lab"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.xml file"):
        config_files(empty)


def test_truncated_and_garbled_bodies_are_400_never_500(mg: Mg) -> None:
    good = body("frp-par", PAR)
    garbled = bytearray(good)
    garbled[len(good) // 2 :: 7] = b"\xff" * len(garbled[len(good) // 2 :: 7])
    cuts = [good[:n] for n in range(0, len(good), max(1, len(good) // 40))]
    for payload in [*cuts, bytes(garbled), good[:-1] + b"\x00" * 64]:
        r = mg.put("frp-par", payload)
        # a cut just before the end-of-stream marker is still a whole stream: 200
        assert r.status_code in (200, 400), (len(payload), r.text)
    assert mg.store.counts()["uploads"] <= 1
