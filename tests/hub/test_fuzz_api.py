"""schemathesis against the whole hub API (ingest, users, workflow), generated from the
OpenAPI document: no request gets a 500, and a refused request (4xx) changes nothing in the
database. Requests carry a valid credential, none, or the wrong kind, at random. Runs on
SQLite and PostgreSQL; kept to about a minute in CI (EXAMPLES per operation)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from hub.app import create_app
from hub.db.schema import metadata
from hub.settings import HubSettings
from hub.users.service import login
from tests.hub.conftest import Hall, HubDb
from tests.hub.helpers import RATINGS, SyncClient
from tests.hub.test_workflow_support import PASSWORD, add_users, bad

EXAMPLES = {"dev": 10, "ci": 20, "long": 1000}.get(os.environ.get("HCP_TEST_PROFILE", "dev"), 20)
# Logging out would end the session the other requests use; it is tested in test_users.py.
SKIP = {("POST", "/api/v1/auth/logout")}


def snapshot(db: HubDb) -> dict[str, Any]:
    """Every table's rows; of the audit log only what is not a refused login (those are
    audited on purpose)."""
    with db.engine.connect() as c:
        rows = {
            name: sorted(map(tuple, c.execute(text(f"SELECT * FROM {name}"))), key=repr)
            for name in metadata.tables
            if name != "audit_log"
        }
        rows["audit_log"] = c.execute(
            text("SELECT count(*) FROM audit_log WHERE action != 'user.login_failed'")
        ).scalar_one()
    return rows


def test_no_500_and_refusals_change_nothing(db: HubDb, hall: Hall) -> None:
    add_users(db.engine)
    app = create_app(HubSettings(database_url=db.url), engine=db.engine)
    seed = SyncClient(app, hall.token)
    assert seed.post_items(RATINGS, [bad(1), bad(2, rater=None)]).status_code == 200
    seed.close()
    with db.engine.begin() as c:
        admin = login(connection=c, username="admin", password=PASSWORD, now=datetime.now(UTC))
    tokens = {"user": admin.token, "hall": hall.token}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15
    seen: dict[tuple[str, str], set[int]] = {}

    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), auth=st.sampled_from(["right", "none", "wrong"]))
        def run(case: Any, auth: str) -> None:
            kind = "hall" if case.path.startswith("/api/v1/ingest") else "user"
            headers = {}
            if auth != "none":
                other = "user" if kind == "hall" else "hall"
                headers["Authorization"] = f"Bearer {tokens[kind if auth == 'right' else other]}"
            before = snapshot(db)
            response = case.call(headers=headers)
            key = (case.method.upper(), case.path)
            seen.setdefault(key, set()).add(response.status_code)
            assert response.status_code < 500, (key, response.status_code, response.text[:500])
            if response.status_code >= 400:
                assert snapshot(db) == before, (key, response.status_code, response.text[:300])

        run()
    # the fuzzing reached past the access checks for the workflow, not only 401s
    reached = {
        code for (m, p), codes in seen.items() if p.startswith("/api/v1/work") for code in codes
    }
    assert reached & {200, 404, 409, 422}, seen
