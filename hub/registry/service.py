"""Halls and departments, as the hub administrator registers them.

A hall must be registered (with its 9-digit 行政区划 code) before it can be given a token;
windows, staff accounts, devices and 事项 are learnt from what the hall sends (hub.ingest).
Departments are learnt from the credit codes on ratings and cases, or registered here with
their names; every code is checked (hub.registry.codes).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Connection, select

from hub import audit
from hub.db.schema import NAME_LEN, departments, halls
from hub.errors import Msg
from hub.registry.codes import CodeError, check_area_code, check_uscc

ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # the protocol's ids (protocol/messages.py)


class RegistryError(Exception):
    def __init__(self, message: Msg) -> None:
        super().__init__(message.en)
        self.message = message


def check_id(value: str, what: Msg) -> str:
    if not ID_RE.fullmatch(value):
        raise RegistryError(
            Msg(
                "{what_zh} {v} 无效：只能用 1–32 个字母、数字、_ 或 -",
                "{what_en} {v} is invalid: 1-32 of letters, digits, _ and -",
            ).fill(what_zh=what.zh, what_en=what.en, v=repr(value))
        )
    return value


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_LEN:
        raise RegistryError(
            Msg("名称必须是 1–{n} 个字符", "a name has 1-{n} characters").fill(n=NAME_LEN)
        )
    return name


def add_hall(
    *,
    connection: Connection,
    hall_id: str,
    name: str,
    area_code: str,
    now: datetime,
    actor: str,
) -> None:
    check_id(hall_id, Msg("大厅编号", "hall id"))
    name = _check_name(name)
    try:
        check_area_code(area_code)
    except CodeError as e:
        raise RegistryError(Msg(e.zh, e.en)) from e
    exists = connection.execute(select(halls.c.hall_id).where(halls.c.hall_id == hall_id)).first()
    if exists is not None:
        raise RegistryError(Msg("大厅 {h} 已存在", "hall {h} already exists").fill(h=hall_id))
    connection.execute(
        halls.insert(),
        {"hall_id": hall_id, "name": name, "area_code": area_code, "created_at": now},
    )
    audit.record(
        connection,
        at=now,
        actor=actor,
        action="hall.add",
        target=f"hall:{hall_id}",
        name=name,
        area_code=area_code,
    )


def add_department(
    *,
    connection: Connection,
    dept_code: str,
    name: str,
    area_code: str | None,
    now: datetime,
    actor: str,
) -> None:
    """Register a department, or name one the hub learnt from the data without a name."""
    try:
        check_uscc(dept_code)
        if area_code is not None:
            check_area_code(area_code)
    except CodeError as e:
        raise RegistryError(Msg(e.zh, e.en)) from e
    name = _check_name(name)
    row = connection.execute(
        select(departments.c.name).where(departments.c.dept_code == dept_code)
    ).first()
    if row is not None and row.name is not None:
        raise RegistryError(
            Msg("部门 {d} 已登记为 {n}", "department {d} is already registered as {n}").fill(
                d=dept_code, n=row.name
            )
        )
    if row is None:
        connection.execute(
            departments.insert(),
            {"dept_code": dept_code, "name": name, "area_code": area_code, "first_seen_at": now},
        )
    else:
        connection.execute(
            departments.update()
            .where(departments.c.dept_code == dept_code)
            .values(name=name, area_code=area_code)
        )
    audit.record(
        connection,
        at=now,
        actor=actor,
        action="department.add",
        target=f"dept:{dept_code}",
        name=name,
        area_code=area_code,
    )
