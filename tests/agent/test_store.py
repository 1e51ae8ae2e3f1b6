"""The SQLite store: durability settings, migrations forward only, never recreated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent import outbox, registry, schema
from edge_agent.config import OutboxLimits
from edge_agent.errors import StoreError
from edge_agent.store import Store, migrate


def test_pragmas_wal_and_full(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite3")
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert s.schema_version() == schema.LATEST
    s.close()


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    s = Store(path)
    registry.add_window(s, window_id="W01", label="一号窗口", now_ms=1)
    secret = s.secret("qr.1")
    first = s.allocate_agent_session()
    s.close()
    s = Store(path)
    assert registry.window(s, "W01")["label"] == "一号窗口"  # type: ignore[index]
    assert s.secret("qr.1") == secret and len(secret) == 32
    assert s.allocate_agent_session() == first + 1
    s.close()


def test_a_later_migration_keeps_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.sqlite3"
    s = Store(path)
    registry.add_window(s, window_id="W01", label="一号窗口", now_ms=1)
    s.close()
    v2 = (schema.LATEST + 1, "ALTER TABLE windows ADD COLUMN floor TEXT;")
    monkeypatch.setattr("edge_agent.store.MIGRATIONS", (*schema.MIGRATIONS, v2))
    monkeypatch.setattr("edge_agent.store.LATEST", v2[0])
    s = Store(path)
    assert s.schema_version() == v2[0]
    assert s.one("SELECT label, floor FROM windows")[:] == ("一号窗口", None)  # type: ignore[index]
    assert migrate(s) == []  # idempotent
    s.close()


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.sqlite3"
    Store(path).close()
    bad = (schema.LATEST + 1, "ALTER TABLE windows ADD COLUMN x TEXT; SELECT * FROM nowhere;")
    monkeypatch.setattr("edge_agent.store.MIGRATIONS", (*schema.MIGRATIONS, bad))
    monkeypatch.setattr("edge_agent.store.LATEST", bad[0])
    with pytest.raises(sqlite3.OperationalError):
        Store(path)
    c = sqlite3.connect(path)
    cols = [r[1] for r in c.execute("PRAGMA table_info(windows)")]
    assert "x" not in cols
    assert c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == schema.LATEST
    c.close()


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    s = Store(path)
    s.conn.execute("INSERT INTO schema_version VALUES (?, 0)", (schema.LATEST + 5,))
    s.close()
    with pytest.raises(StoreError) as info:
        Store(path)
    assert info.value.code == "store.too_new" and "hcp" in info.value.message.zh


def test_transactions_roll_back_as_a_whole(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite3")
    with pytest.raises(RuntimeError), s.tx() as c:
        c.execute("INSERT INTO meta VALUES ('a', '1')")
        s.bump("n")
        raise RuntimeError("boom")
    assert s.meta("a") is None and s.counters() == {}
    s.close()


def test_keys_never_leave_the_registry(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite3")
    key = bytes(range(16))
    registry.add_device(s, device_id="EV-1", key=key, now_ms=1)
    dev = registry.device(s, "EV-1")
    assert dev is not None and dev.has_key and dev.quarantine is None
    assert key not in repr(dev.public()).encode() and key.hex() not in repr(dev.public())
    assert "key" not in dev.public()
    assert registry.device_key(s, "EV-1") == key
    with pytest.raises(StoreError):
        registry.add_device(s, device_id="EV-2", key=b"short", now_ms=1)
    s.close()


def test_one_evaluator_and_one_qr_per_window(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite3")
    registry.add_window(s, window_id="W01", label="W", now_ms=1)
    registry.add_device(s, device_id="EV", key=bytes(16), kind=1, window_id="W01", now_ms=1)
    registry.add_device(s, device_id="QR", key=bytes(16), kind=2, window_id="W01", now_ms=1)
    with pytest.raises(StoreError) as info:
        registry.add_device(s, device_id="CB", key=bytes(16), kind=3, window_id="W01", now_ms=1)
    assert info.value.code == "window.position_taken"
    assert registry.device(s, "CB") is None  # the whole add-device was refused
    with pytest.raises(StoreError):
        registry.bind_device(s, device_id="EV", window_id="W99", now_ms=1)
    s.close()


def test_configured_device_without_key_is_quarantined(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite3")
    dev = registry.ensure_device(s, device_id="EV-9", now_ms=1)
    assert dev.quarantine == "no_key" and not dev.has_key
    registry.add_device(s, device_id="EV-9", key=bytes(16), now_ms=2)
    assert registry.device(s, "EV-9").quarantine is None  # type: ignore[union-attr]
    registry.set_quarantine(s, device_id="EV-9", reason="admin", now_ms=3)
    registry.add_device(s, device_id="EV-9", key=bytes(range(16)), now_ms=4)
    assert registry.device(s, "EV-9").quarantine == "admin"  # type: ignore[union-attr]
    s.close()


def test_after_commit_runs_once_after_the_outermost_commit(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite3")
    heard: list[int] = []

    def hook() -> None:  # what a listener sees must already be on disk
        other = sqlite3.connect(tmp_path / "a.sqlite3")
        heard.append(other.execute("SELECT count(*) FROM meta WHERE name = 'x'").fetchone()[0])
        other.close()

    with s.tx():
        s.set_meta("x", "1")  # a nested transaction: joins the outer one
        s.after_commit(hook)
        s.after_commit(hook)  # registered twice in one transaction: runs once
        assert heard == []
    assert heard == [1]
    s.after_commit(hook)  # outside a transaction: at once
    assert heard == [1, 1]
    s.close()


def test_after_commit_is_dropped_on_rollback_and_a_failing_hook_undoes_nothing(
    tmp_path: Path,
) -> None:
    s = Store(tmp_path / "a.sqlite3")
    heard: list[str] = []
    with pytest.raises(RuntimeError), s.tx():
        s.set_meta("x", "1")
        s.after_commit(lambda: heard.append("rolled back"))
        raise RuntimeError("boom")
    assert heard == [] and s.meta("x") is None

    def broken() -> None:
        raise RuntimeError("listener bug")

    with s.tx():  # the commit stands and the caller sees no error
        s.set_meta("x", "2")
        s.after_commit(broken)
        s.after_commit(lambda: heard.append("next"))
    assert s.meta("x") == "2" and heard == ["next"]
    s.close()


def test_on_enqueue_hears_only_commits_that_queued_an_item(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite3")
    calls: list[int] = []
    s.on_enqueue = lambda: calls.append(outbox.depth(s))
    limits = OutboxLimits(max_rows=3, overflow="block")

    def put(key: str) -> bool:
        return outbox.enqueue(s, kind="rating", key=key, body={}, now_ms=1, limits=limits)

    with s.tx():  # a chunk of ratings: one wake-up, after the commit
        assert put("device:A:1") and put("device:A:2")
        assert calls == []
    assert calls == [2]
    assert put("device:A:1")  # already queued: nothing new
    assert calls == [2]
    assert put("device:A:3")  # on its own: its own transaction
    assert calls == [2, 3]
    assert not put("device:A:4")  # refused by block: nothing new
    with pytest.raises(RuntimeError), s.tx():
        s.conn.execute("DELETE FROM outbox")
        s.bump(outbox.ROWS, -3)
        put("device:A:4")
        raise RuntimeError("rolled back")
    assert calls == [2, 3]
    s.close()
