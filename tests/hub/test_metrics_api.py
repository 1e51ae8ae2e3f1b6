"""The metrics API over the real app and real accounts, on both databases: who may read
what, and the figures of the hand-computed fixture (tests/hub/test_metrics.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from hub.users.service import add_user, login
from tests.hub.conftest import HubDb
from tests.hub.helpers import DEPT, DEPT_2, SyncClient
from tests.hub.test_metrics import load_fixture

PASSWORD = "correct horse battery 7"
REPORT = "/api/v1/metrics/report"
EXCLUDED = "/api/v1/metrics/excluded"


@pytest.fixture
def tokens(db: HubDb) -> dict[str, str]:
    load_fixture(db)
    now = datetime.now(UTC)
    out = {}
    with db.engine.begin() as connection:
        for username, role, depts in (
            ("auditor1", "auditor", ()),
            ("admin1", "admin", ()),
            ("handler1", "dept_handler", (DEPT,)),
            ("verifier1", "hotline_verifier", ()),
        ):
            add_user(connection=connection, username=username, display_name=username, role=role,
                     password=PASSWORD, dept_codes=depts, now=now, actor="test")  # fmt: skip
            out[username] = login(
                connection=connection, username=username, password=PASSWORD, now=now
            ).token
    return out


def test_report_by_role(make_api: Callable[..., SyncClient], tokens: dict[str, str]) -> None:
    api = make_api()
    q = "?period=2026-Q1&by=department"
    assert api.request("GET", REPORT + q).status_code == 401
    refused = api.request("GET", REPORT + q, token=tokens["verifier1"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.role_not_allowed"

    body = api.request("GET", REPORT + q, token=tokens["auditor1"]).json()
    assert body["period"] == {
        "kind": "quarter",
        "label": "2026-Q1",
        "start": "2025-12-31T16:00:00+00:00",
        "end": "2026-03-31T16:00:00+00:00",
        "timezone": "Asia/Shanghai (UTC+08:00)",
    }
    a, b = body["rows"]
    assert (a["group"], a["good_rate"], a["coverage"], a["excluded"]) == (
        {"dept_code": DEPT}, 0.6, 0.75, 1  # 3 / 5 good; 6 / 8 cases rated
    )  # fmt: skip
    assert (b["group"], b["bad_rate"]) == ({"dept_code": DEPT_2}, 0.5)
    assert body["total"]["active_rate"] == 0.6667  # 8 / 12

    # A department handler reads their own department only.
    own = api.request("GET", REPORT + q, token=tokens["handler1"]).json()
    assert [row["group"] for row in own["rows"]] == [{"dept_code": DEPT}]
    other = api.request("GET", REPORT + q + f"&dept_code={DEPT_2}", token=tokens["handler1"])
    assert other.status_code == 403 and other.json()["error"]["code"] == "metrics.dept_scope"


def test_excluded_view_is_for_auditors(
    make_api: Callable[..., SyncClient], tokens: dict[str, str]
) -> None:
    api = make_api()
    assert (
        api.request("GET", EXCLUDED + "?period=2026-Q1", token=tokens["handler1"]).status_code
        == 403
    )
    for who in ("auditor1", "admin1"):
        body = api.request("GET", EXCLUDED + "?period=2026-Q1", token=tokens[who]).json()
        assert [item["rating_key"] for item in body["items"]] == ["device:ev-0001:10"]
        assert body["items"][0]["outcome"] == "malicious"


BAD = [
    ("?period=2026-Q5", "metrics.period"),
    ("?period=Q1-2026", "metrics.period"),
    ("?period=2026-Q1&by=township", "request.invalid"),
    ("", "request.invalid"),
]


def test_bad_requests(make_api: Callable[..., SyncClient], tokens: dict[str, str]) -> None:
    api = make_api()
    for query, code in BAD:  # one test: each account costs an argon2 hash
        response = api.request("GET", REPORT + query, token=tokens["auditor1"])
        assert response.status_code == 422, query
        assert response.json()["error"]["code"] == code, query
