"""The workflow over HTTP: a 差评 sent by a hall opens an order; handlers act on it; refused
requests change nothing; personal data is masked for auditors; on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from hub.db.schema import metadata
from tests.hub.conftest import Hall, HubDb
from tests.hub.helpers import RATINGS, SyncClient, rating
from tests.hub.test_users import login
from tests.hub.test_workflow_support import add_users, bad


def snapshot(db: HubDb) -> dict[str, list[Any]]:
    """Every row of every table except the audit log (refusals of logins are audited)."""
    with db.engine.connect() as c:
        return {
            name: sorted(map(tuple, c.execute(text(f"SELECT * FROM {name}"))), key=repr)
            for name in metadata.tables
            if name != "audit_log"
        }


@pytest.fixture
def wf(db: HubDb, hall: Hall, make_api: Callable[..., SyncClient]) -> SyncClient:
    add_users(db.engine)
    api = make_api(hall.token)
    assert api.post_items(RATINGS, [bad(1), rating(2, level=1)]).status_code == 200
    return api


def _act(api: SyncClient, token: str, order_id: int, **body: Any) -> Any:
    return api.request(
        "POST", f"/api/v1/work-orders/{order_id}/actions", json_body=body, token=token
    )


def test_loop_over_http(wf: SyncClient, db: HubDb) -> None:
    handler, hotline, auditor = (login(wf, n) for n in ("handler", "hotline", "auditor"))
    listed = wf.request("GET", "/api/v1/work-orders?state=callback", token=handler).json()
    assert listed["total"] == 1
    order = listed["items"][0]
    assert order["rater"] == {
        "real_name": True,
        "name_masked": "张*明",
        "phone_masked": "138****5678",
    }
    assert order["deadlines"]["active"] == "callback"
    seen_by_auditor = wf.request("GET", f"/api/v1/work-orders/{order['id']}", token=auditor).json()
    assert seen_by_auditor["rater"] == {
        "real_name": True,
        "name_masked": None,
        "phone_masked": None,
    }
    assert seen_by_auditor["allowed_actions"] == []
    detail = wf.request("GET", f"/api/v1/work-orders/{order['id']}", token=handler).json()
    assert detail["allowed_actions"] == ["callback"]
    assert [s["action"] for s in detail["steps"]] == ["open"]

    before = snapshot(db)
    refusals: list[tuple[str, dict[str, Any], int, str]] = [
        (auditor, {"action": "callback", "reason": "x"}, 403, "auth.role_not_allowed"),
        (handler, {"action": "callback"}, 422, "workflow.field_required"),
        (handler, {"action": "rectify", "reason": "x", "mode": "immediate"}, 409,
         "workflow.illegal_transition"),
        (handler, {"action": "callback", "reason": "x", "expected_version": 9}, 409,
         "workflow.version_conflict"),
        (handler, {"action": "teleport", "reason": "x"}, 422, "request.invalid"),
        (hotline, {"action": "verify_valid", "reason": "x", "evidence": ["e"],
                   "approved_by": "hotline2"}, 409, "workflow.illegal_transition"),
    ]  # fmt: skip
    for token, body, status, code in refusals:
        response = _act(wf, token, order["id"], **body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert snapshot(db) == before

    done = _act(
        wf, handler, order["id"], action="callback", reason="已电话回访", expected_version=1
    )
    assert done.status_code == 200 and done.json()["state"] == "verifying"
    valid = _act(
        wf, hotline, order["id"], action="verify_valid", reason="属实",
        evidence=["录音 1"], approved_by="hotline2",
    )  # fmt: skip
    assert valid.json()["state"] == "rectifying"
    assert valid.json()["deadlines"]["active"] == "rectify"
    summary = wf.request("GET", "/api/v1/work-orders/summary", token=auditor).json()
    assert summary == {"real_name": {"rectifying": 1}, "anonymous": {}}
    warnings = wf.request("GET", "/api/v1/work-orders/warnings", token=auditor).json()
    assert warnings["overdue"] + warnings["upcoming"] == len(warnings["items"])
    table = wf.request("GET", "/api/v1/workflow/transitions", token=auditor).json()
    assert {"state": "callback", "action": "callback", "next": "verifying"}.items() <= table[
        0
    ].items()


def test_follow_up_through_the_hall_reopens(wf: SyncClient, db: HubDb) -> None:
    handler, hotline = login(wf, "handler"), login(wf, "hotline")
    order_id = wf.request("GET", "/api/v1/work-orders", token=handler).json()["items"][0]["id"]
    moves: list[tuple[str, dict[str, Any]]] = [
        (handler, {"action": "callback", "reason": "已回访"}),
        (hotline, {"action": "verify_valid", "reason": "属实", "evidence": ["录音"],
                   "approved_by": "admin"}),
        (handler, {"action": "rectify", "reason": "已整改", "mode": "immediate"}),
        (handler, {"action": "report", "reason": "报告", "report": "已补充"}),
        (hotline, {"action": "feedback", "reason": "已告知", "channel": "电话"}),
    ]  # fmt: skip
    for token, body in moves:
        assert _act(wf, token, order_id, **body).status_code == 200
    follow_up = rating(50, case_no="NB-2026-000001", level=5, reasons=[503], assess_number=2)
    assert wf.post_items(RATINGS, [follow_up]).json()["accepted"] == 1
    order = wf.request("GET", f"/api/v1/work-orders/{order_id}", token=handler).json()
    assert (order["state"], order["reopened"]) == ("rectifying", 1)
    assert order["steps"][-1]["actor"] == "system:hub" and order["steps"][-1]["role"] == "system"
