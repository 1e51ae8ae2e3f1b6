"""``hcp hub add-user / set-password / disable-user``: in-process, zh-CN first, on SQLite
(the service underneath is tested on both databases in test_users.py)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hub.db import migrate
from hub.db.engine import make_engine
from hub.db.schema import audit_log, user_departments, users
from hub.users import service
from tests.hub.helpers import DEPT
from tools import cli


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_user_commands(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HCP_LANG", raising=False)
    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    engine = make_engine(url)
    migrate.upgrade(engine)
    db = ("--database-url", url)
    status, out, _ = run(
        capsys, monkeypatch, "hub", "add-user", "li.wei", "--name", "李伟",
        "--role", "dept_handler", "--dept", DEPT, "--password-stdin", *db,
        stdin="a good long password\n",
    )  # fmt: skip
    assert status == 0 and "已添加用户 li.wei" in out
    status, _, err = run(
        capsys, monkeypatch, "hub", "add-user", "zhang", "--name", "张", "--role", "boss",
        "--password-stdin", "--lang", "en", *db, stdin="a good long password\n",
    )  # fmt: skip
    assert status != 0 and "unknown role 'boss'" in err
    status, _, err = run(
        capsys, monkeypatch, "hub", "set-password", "li.wei", "--password-stdin", *db,
        stdin="short\n",
    )  # fmt: skip
    assert status != 0 and "密码长度" in err
    status, out, _ = run(
        capsys, monkeypatch, "hub", "set-password", "li.wei", "--password-stdin", *db,
        stdin="another long password\n",
    )  # fmt: skip
    assert status == 0
    with engine.begin() as c:
        service.login(
            connection=c, username="li.wei", password="another long password",
            now=datetime.now(UTC),
        )  # fmt: skip
    status, out, _ = run(capsys, monkeypatch, "hub", "disable-user", "li.wei", "--lang", "en", *db)
    assert status == 0 and "user li.wei disabled" in out
    status, _, err = run(capsys, monkeypatch, "hub", "disable-user", "li.wei", *db)
    assert status != 0 and "已停用" in err
    with engine.connect() as c:
        assert c.execute(select(users.c.disabled_at)).scalar_one() is not None
        assert c.execute(select(user_departments.c.dept_code)).scalar_one() == DEPT
        actions = list(c.execute(select(audit_log.c.action, audit_log.c.actor)))
    assert [a for a, _ in actions if a.startswith("user.") and a != "user.login"] == [
        "user.add", "user.set_password", "user.disable",
    ]  # fmt: skip
    assert all(actor.startswith("cli:") for a, actor in actions if a != "user.login")
    engine.dispose()


def test_sweep_and_warnings_commands(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.ingest.service import ingest_ratings
    from hub.registry.service import add_hall
    from tests.hub.helpers import AREA, HALL
    from tests.hub.test_workflow_support import NOW, bad

    monkeypatch.delenv("HCP_LANG", raising=False)
    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as c:  # stored in March without the hook: the sweep opens the order
        add_hall(connection=c, hall_id=HALL, name="大厅", area_code=AREA, now=NOW, actor="t")
        ingest_ratings(connection=c, hall_id=HALL, items_in=[bad(1)], now=NOW, actor="t")
    db = ("--database-url", url)
    status, out, _ = run(capsys, monkeypatch, "hub", "warnings", *db)
    assert status == 0 and "没有超期预警" in out
    status, out, _ = run(capsys, monkeypatch, "hub", "sweep", *db)
    assert status == 0 and "新开工单 1 个" in out
    status, out, _ = run(capsys, monkeypatch, "hub", "sweep", "--lang", "en", *db)
    assert status == 0 and "0 work orders opened" in out
    # the callback limit (Tue 2026-03-03) has long passed by the wall clock
    status, out, _ = run(capsys, monkeypatch, "hub", "warnings", *db)
    assert status == 0 and "待回访" in out and "callback 已超期" in out
    status, out, _ = run(capsys, monkeypatch, "hub", "warnings", "--dept", "X", "--lang", "en", *db)
    assert "no overdue warnings" in out
    engine.dispose()
