"""Shared set-up for the workflow, users and fuzz tests (no tests here).

Users are inserted with one argon2id hash computed at import (hashing costs ~50 ms per
password; the login tests still verify against it for real). Ratings go through the real
ingest service with the workflow hook, exactly as the HTTP route does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, func, select

from hub.db.schema import user_departments, users, work_orders
from hub.ingest.service import ALL_SOURCES, ingest_ratings
from hub.policy import load_profile
from hub.users.passwords import hash_password
from hub.users.roles import Role
from hub.users.service import Principal
from hub.workdays import WorkCalendar
from hub.workflow.service import WorkflowConfig
from tests.hub.helpers import DEPT, DEPT_2, HALL, rating

CST = timezone(timedelta(hours=8))
PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_password(PASSWORD)
CALENDAR = WorkCalendar()
NINGBO = WorkflowConfig(load_profile("ningbo"), CALENDAR)
SHANDONG = WorkflowConfig(load_profile("shandong-hrss"), CALENDAR)

# username → (role, departments)
USERS: dict[str, tuple[Role, tuple[str, ...]]] = {
    "admin": (Role.ADMIN, ()),
    "admin2": (Role.ADMIN, ()),
    "hotline": (Role.HOTLINE_VERIFIER, ()),
    "hotline2": (Role.HOTLINE_VERIFIER, ()),
    "handler": (Role.DEPT_HANDLER, (DEPT,)),
    "handler2": (Role.DEPT_HANDLER, (DEPT_2,)),
    "auditor": (Role.AUDITOR, ()),
}
PRINCIPALS = {name: Principal(name, role, frozenset(d)) for name, (role, d) in USERS.items()}
BY_ROLE = {
    Role.ADMIN: PRINCIPALS["admin"],
    Role.HOTLINE_VERIFIER: PRINCIPALS["hotline"],
    Role.DEPT_HANDLER: PRINCIPALS["handler"],
    Role.AUDITOR: PRINCIPALS["auditor"],
}


def add_users(engine: Engine, now: datetime = datetime(2026, 1, 5, tzinfo=UTC)) -> None:
    from hub.db.schema import departments
    from hub.db.upsert import insert_ignore

    with engine.begin() as connection:
        insert_ignore(
            connection,
            departments,
            [{"dept_code": d, "first_seen_at": now} for d in (DEPT, DEPT_2)],
        )
        for name, (role, depts) in USERS.items():
            connection.execute(
                users.insert(),
                {
                    "username": name,
                    "display_name": f"{name} 测试",
                    "role": role.value,
                    "password_hash": PASSWORD_HASH,
                    "created_at": now,
                    "password_changed_at": now,
                },
            )
            for d in depts:
                connection.execute(user_departments.insert(), {"username": name, "dept_code": d})


def bad(n: int, *, anonymous: bool = False, **fields: Any) -> dict[str, Any]:
    """A real-name (or anonymous) 非常不满意 rating of case NB-2026-<n>."""
    item = rating(n, level=5, reasons=[501], **fields)
    if anonymous:
        item["rater"] = None
    return item


def ingest(
    engine: Engine,
    items: Iterable[dict[str, Any]],
    now: datetime,
    config: WorkflowConfig = NINGBO,
    hall: str = HALL,
) -> Any:
    with engine.begin() as connection:
        return ingest_ratings(
            connection=connection,
            hall_id=hall,
            items_in=list(items),
            now=now,
            actor="test",
            sources=ALL_SOURCES,
            after_store=config.after_ratings,
        )


def order_for(engine: Engine, case_no: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(work_orders).where(work_orders.c.case_no == case_no)).one()


def count_orders(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(work_orders)).scalar_one())


NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 CST, an ordinary working day
