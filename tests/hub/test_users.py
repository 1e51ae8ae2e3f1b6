"""Accounts: argon2id passwords, sessions (login, expiry, logout, revocation), roles on
every endpoint, hall tokens kept to ingest, personal data masked; on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.db.schema import audit_log, user_sessions, users
from hub.errors import ApiError
from hub.users import service
from hub.users.roles import Role
from tests.hub.conftest import Hall, HubDb
from tests.hub.helpers import DEPT, RATINGS, SyncClient
from tests.hub.test_workflow_support import PASSWORD, add_users, bad

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def login(api: SyncClient, username: str, password: str = PASSWORD) -> str:
    response = api.request(
        "POST", "/api/v1/auth/login", json_body={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
def users_api(db: HubDb, hall: Hall, make_api: Callable[..., SyncClient]) -> SyncClient:
    add_users(db.engine)
    return make_api()


def test_add_user_hashes_with_argon2id_and_checks_everything(db: HubDb) -> None:
    def add(**kw: Any) -> None:
        args: dict[str, Any] = {
            "username": "li.wei",
            "display_name": "李伟",
            "role": "dept_handler",
            "password": "a long enough password",
            "dept_codes": [DEPT],
        }
        args.update(kw)
        with db.engine.begin() as c:
            service.add_user(connection=c, now=NOW, actor="test", **args)

    refusals: list[tuple[dict[str, Any], str]] = [
        ({"username": "Li Wei"}, "user.bad_username"),
        ({"role": "superuser"}, "user.bad_role"),
        ({"role": "system"}, "user.bad_role"),
        ({"dept_codes": []}, "user.no_departments"),
        ({"role": "auditor"}, "user.departments_not_allowed"),
        ({"dept_codes": ["123"]}, "user.bad_department"),
        ({"password": "short"}, "user.bad_password"),
        ({"display_name": " "}, "user.bad_name"),
    ]
    for bad_args, code in refusals:
        with pytest.raises(service.UserError) as e:
            add(**bad_args)
        assert e.value.code == code, bad_args
    assert db.count(users) == 0
    add()
    with pytest.raises(service.UserError) as e:
        add()
    assert (e.value.code, e.value.status) == ("user.exists", 409)
    with db.engine.connect() as c:
        stored = c.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "a long enough password" not in stored


def test_login_sessions_and_their_end(db: HubDb) -> None:
    add_users(db.engine)
    with db.engine.begin() as c:
        new = service.login(connection=c, username="handler", password=PASSWORD, now=NOW)
    assert new.token.startswith("hcps_") and new.expires_at == NOW + timedelta(hours=8)
    with db.engine.connect() as c:
        assert c.execute(select(user_sessions.c.token_sha256)).scalar_one() != new.token

    def who(at: datetime, token: str = new.token) -> service.Principal:
        with db.engine.connect() as c:
            return service.authenticate(connection=c, authorization=f"Bearer {token}", now=at)

    me = who(NOW)
    assert (me.username, me.role, me.departments) == (
        "handler",
        Role.DEPT_HANDLER,
        frozenset({DEPT}),
    )
    with pytest.raises(ApiError) as e:
        who(NOW + timedelta(hours=8))
    assert e.value.code == "auth.session_expired"
    forged = new.token[:-4] + ("AAAA" if not new.token.endswith("AAAA") else "BBBB")
    with pytest.raises(ApiError) as e:
        who(NOW, forged)
    assert e.value.code == "auth.invalid_token"
    with db.engine.begin() as c:  # a new password ends every session
        service.set_password(
            connection=c, username="handler", password="another long one", now=NOW, actor="t"
        )
    with pytest.raises(ApiError) as e:
        who(NOW)
    assert e.value.code == "auth.session_ended"
    # wrong password, unknown user and disabled user: one answer, and audited
    with db.engine.begin() as c:
        service.disable_user(connection=c, username="auditor", now=NOW, actor="t")
    for username, password in [("handler", PASSWORD), ("nobody", PASSWORD), ("auditor", PASSWORD)]:
        with db.engine.begin() as c, pytest.raises(service.UserError) as refused:
            service.login(connection=c, username=username, password=password, now=NOW)
        assert (refused.value.code, refused.value.status) == ("auth.login_failed", 401)
    with db.engine.connect() as c:
        failed = c.execute(
            select(audit_log.c.target).where(audit_log.c.action == "user.login_failed")
        ).scalars()
        assert sorted(failed) == ["user:auditor", "user:handler", "user:nobody"]
    with db.engine.begin() as c, pytest.raises(service.UserError) as e2:
        service.disable_user(connection=c, username="auditor", now=NOW, actor="t")
    assert e2.value.code == "user.already_disabled"


def test_login_logout_over_http(users_api: SyncClient) -> None:
    token = login(users_api, "hotline")
    me = users_api.request("GET", "/api/v1/auth/me", token=token)
    assert me.json() == {"username": "hotline", "role": "hotline_verifier", "departments": []}
    wrong = users_api.request(
        "POST", "/api/v1/auth/login", json_body={"username": "hotline", "password": "nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "auth.login_failed"
    assert users_api.request("POST", "/api/v1/auth/logout", token=token).status_code == 204
    after = users_api.request("GET", "/api/v1/auth/me", token=token)
    assert after.status_code == 401 and after.json()["error"]["code"] == "auth.session_ended"


def test_hall_tokens_are_for_ingest_only_and_sessions_not_for_ingest(
    users_api: SyncClient, hall: Hall
) -> None:
    refused = users_api.request("GET", "/api/v1/work-orders", token=hall.token)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "auth.malformed"
    token = login(users_api, "admin")
    ingest = users_api.post_items(RATINGS, [bad(1)], token=token)
    assert ingest.status_code == 401
    assert users_api.request("GET", "/api/v1/work-orders").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/users", {"admin"}),
        ("GET", "/api/v1/work-orders", {"admin", "hotline", "handler", "auditor"}),
        ("GET", "/api/v1/work-orders/warnings", {"admin", "hotline", "handler", "auditor"}),
        ("GET", "/api/v1/exclusions", {"admin", "hotline", "auditor"}),
        ("GET", "/api/v1/revisit-samples", {"admin", "auditor"}),
        ("POST", "/api/v1/work-orders/sweep", {"admin"}),
    ],
)
def test_roles_per_endpoint(
    users_api: SyncClient, method: str, path: str, allowed: set[str]
) -> None:
    for name in ("admin", "hotline", "handler", "auditor"):
        response = users_api.request(method, path, token=login(users_api, name))
        if name in allowed:
            assert response.status_code == 200, (name, response.text)
        else:
            assert response.status_code == 403, (name, response.text)
            assert response.json()["error"]["code"] == "auth.role_not_allowed"


def test_users_over_http(users_api: SyncClient, db: HubDb) -> None:
    admin = login(users_api, "admin")
    body = {
        "username": "zhao.min",
        "display_name": "赵敏",
        "role": "auditor",
        "password": "auditor password 1",
    }
    created = users_api.request("POST", "/api/v1/users", json_body=body, token=admin)
    assert created.status_code == 201, created.text
    again = users_api.request("POST", "/api/v1/users", json_body=body, token=admin)
    assert again.status_code == 409
    listed = users_api.request("GET", "/api/v1/users", token=admin).json()["items"]
    assert "zhao.min" in [u["username"] for u in listed]
    assert all("password" not in str(u) for u in listed)
    auditor = login(users_api, "zhao.min", "auditor password 1")
    disabled = users_api.request("POST", "/api/v1/users/zhao.min/disable", token=admin)
    assert disabled.status_code == 204
    assert users_api.request("GET", "/api/v1/auth/me", token=auditor).status_code == 401
    self_disable = users_api.request("POST", "/api/v1/users/admin/disable", token=admin)
    assert self_disable.status_code == 409
