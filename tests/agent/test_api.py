"""The case API through the real ASGI app: events, refusals in one shape, health, metrics,
and the committed OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.api_helpers import Api, make_api
from tools.agent_commands import OPENAPI_DOC, openapi_document


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with make_api(tmp_path) as a:
        yield a


def error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code
    assert body["message"] and body["message_en"] and body["message"] != body["message_en"]
    return dict(body)


SIGN_IN = {"staff_id": "S001", "name": "王小明", "number": "A0123", "title": "综合受理"}


def test_a_day_at_the_window(api: Api) -> None:
    r = api.post("/api/v1/windows/W01/sign-in", SIGN_IN)
    assert r.status_code == 200 and r.json() == {
        "window_id": "W01",
        "staff_id": "S001",
        "paused": None,
    }
    r = api.post(
        "/api/v1/cases",
        {
            "case_no": "330201-2026-000123",
            "window_id": "W01",
            "item_code": "330201-JD-0001",
            "item_name": "居民身份证换领",
            "dept_code": "11330200002950478P",
            "applicant_type": "person",
            "applicant_name": "张三丰",
            "applicant_phone": "138 1234 5678",
            "event_id": "qms-1-open",
        },
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["state"] == "opened" and case["staff_id"] == "S001"
    assert case["name_masked"] == "张*丰" and case["phone_masked"] == "138****5678"
    r = api.post("/api/v1/cases/finish", {"case_no": "330201-2026-000123"})
    assert r.status_code == 200
    invite = r.json()
    assert invite["state"] == "finished" and invite["invite_id"] >= 1
    r = api.get("/api/v1/cases", params={"case_no": "330201-2026-000123"})
    assert r.json()["invite"]["invite_id"] == invite["invite_id"]
    assert api.post("/api/v1/windows/W01/pause", {"reason": "午休"}).json()["paused"] is True
    assert api.post("/api/v1/windows/W01/resume").json()["paused"] is False
    r = api.post("/api/v1/cases/cancel", {"case_no": "330201-2026-000123"})
    assert r.json()["state"] == "cancelled"
    windows = api.get("/api/v1/windows").json()
    assert windows[0]["staff_id"] == "S001" and windows[0]["devices"] == ["EV1"]
    assert api.post("/api/v1/windows/W01/sign-out", {"staff_id": "S001"}).status_code == 200


def test_refusals_have_one_shape_and_change_nothing(api: Api) -> None:
    api.post("/api/v1/windows/W01/sign-in", SIGN_IN)
    api.post("/api/v1/cases", {"case_no": "C-1", "window_id": "W01", "event_id": "e-1"})
    before = api.snapshot()
    error(api.post("/api/v1/windows/W99/sign-in", SIGN_IN), 404, "window.unknown")
    error(api.post("/api/v1/cases/finish", {"case_no": "C-404"}), 404, "case.unknown")
    e = error(
        api.post("/api/v1/cases", {"case_no": "C-1", "window_id": "W01"}),
        409,
        "case.illegal_transition",
    )
    assert "C-1" in e["message"] and "opened" in e["message_en"]
    error(
        api.post("/api/v1/cases", {"case_no": "C-2", "window_id": "W01", "event_id": "e-1"}),
        409,
        "event.duplicate",
    )
    error(api.post("/api/v1/windows/W02/sign-in", SIGN_IN), 409, "staff.signed_in_elsewhere")
    error(api.post("/api/v1/windows/W01/resume"), 409, "window.not_paused")
    e = error(
        api.post("/api/v1/cases", {"case_no": "C-3", "window_id": "W01", "dept_code": "1" * 18}),
        422,
        "request.invalid",
    )
    assert e["field"] == "dept_code"
    e = error(
        api.post("/api/v1/windows/W01/sign-in", {**SIGN_IN, "name": "王" * 11}),
        422,
        "request.invalid",
    )
    assert e["field"] == "name" and "32 bytes" in e["message_en"]
    error(api.post("/api/v1/cases", {"case_no": "C-4", "window": "W01"}), 422, "request.invalid")
    error(api.post("/api/v1/cases", [1, 2]), 422, "request.invalid")
    error(
        api.post(
            "/api/v1/cases", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
        "request.bad_json",
    )
    error(api.post("/api/v1/windows/W%20X/pause"), 422, "request.invalid")
    error(api.get("/api/v1/nothing"), 404, "request.not_found")
    error(api.request("DELETE", "/api/v1/cases"), 405, "request.method_not_allowed")
    assert api.snapshot() == before
    assert api.service.api_refused["window.unknown"] == 1


def test_health_and_metrics(api: Api) -> None:
    health = api.get("/healthz").json()
    assert health["status"] == "ok" and health["hall_id"] == "H330201001"
    assert health["store"] == "ok" and health["outbox_depth"] == 0
    api.post("/api/v1/windows/W01/sign-in", SIGN_IN)
    api.post("/api/v1/windows/W99/pause")
    r = api.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for line in (
        "hcp_agent_devices 1",
        "hcp_agent_devices_online 0",
        "hcp_agent_outbox_depth 1",
        'hcp_agent_outbox_overflow_total{action="blocked"} 0',
        'hcp_agent_api_requests_total{op="sign_in"} 1',
        'hcp_agent_api_refused_total{code="window.unknown"} 1',
        "hcp_agent_ratings_stored 0",
    ):
        assert line in text.splitlines(), line
    for line in text.splitlines():  # every sample belongs to a declared metric
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert f"# TYPE {name} " in text


def test_devices_listing_has_no_keys(api: Api) -> None:
    devices = api.get("/api/v1/devices").json()
    assert devices[0]["device_id"] == "EV1" and devices[0]["has_key"] is True
    assert "key" not in devices[0]
    assert bytes(16).hex() not in json.dumps(devices)


def test_signals_endpoint(api: Api) -> None:
    s = api.get("/api/v1/signals").json()
    assert s["thresholds"]["fast_press_ms"] == 1000 and s["windows"] == []


def test_openapi_document_is_committed_and_current() -> None:
    assert OPENAPI_DOC.exists(), "run: hcp agent openapi"
    assert OPENAPI_DOC.read_text(encoding="utf-8") == openapi_document(), (
        "docs/agent-case-api.openapi.json is stale: run hcp agent openapi"
    )
    schema = json.loads(OPENAPI_DOC.read_text(encoding="utf-8"))
    assert "/api/v1/cases/finish" in schema["paths"]
    assert "ErrorResponse" in schema["components"]["schemas"]
