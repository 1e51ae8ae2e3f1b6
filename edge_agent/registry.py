"""Windows, staff accounts and devices: the hall's registry in the store.

Strategy: plain functions over a ``Store`` (session first, keyword arguments, after
Netflix/dispatch's service functions). Admin commands and the device links call them; the
case API reads windows here and changes them in edge_agent.cases.

Binding rule (DOMAIN.md, 一码一账号): a window has at most one evaluator position and at
most one QR code: among its devices at most one shows buttons (evaluator or combined) and
at most one shows a QR (QR unit or combined). ``bind_device`` refuses a second one.

Keys: ``device_key`` is the only function that reads the key column; ``DeviceView`` and
every listing leave it out, so nothing that feeds logs, metrics or the API can carry it.
Quarantine: a configured device without a key is quarantined as ``no_key`` (reported, its
link not started) until ``add-device`` stores one; ``admin`` is an operator's block.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from edge_agent.errors import Msg, StoreError
from edge_agent.store import Store

KIND_EVALUATOR, KIND_QR, KIND_COMBINED = 1, 2, 3  # protocol kinds
# One vocabulary for device kinds everywhere: device.json, board profiles (hardware/), the
# registry, the CLI and the hub API.
KIND_NAMES = {KIND_EVALUATOR: "evaluator", KIND_QR: "qr", KIND_COMBINED: "combined"}
KIND_BY_NAME = {v: k for k, v in KIND_NAMES.items()}
BUTTONS = (KIND_EVALUATOR, KIND_COMBINED)
SHOWS_QR = (KIND_QR, KIND_COMBINED)
KEY_MIN, KEY_MAX = 16, 32  # protocol KEY_MIN/KEY_MAX
QUARANTINE_NO_KEY = "no_key"
QUARANTINE_ADMIN = "admin"


@dataclass(frozen=True)
class DeviceView:
    device_id: str
    kind: int | None
    board: str | None
    firmware: str | None
    window_id: str | None
    has_key: bool
    quarantine: str | None
    min_session: int
    committed_seq: int
    online: bool
    link: str | None
    last_seen_ms: int | None
    outbox_depth: int | None
    outbox_dropped: int | None
    uptime_s: int | None
    free_heap: int | None
    config_version: int | None
    errors: list[int]
    refused: dict[str, int]

    def public(self) -> dict[str, Any]:
        """For the API and the CLI: everything but the key (has_key says whether one is set)."""
        d = dict(self.__dict__)
        d["kind"] = KIND_NAMES.get(self.kind) if self.kind is not None else None
        return d


_DEVICE_COLUMNS = (
    "device_id, kind, board, firmware, window_id, key IS NOT NULL AS has_key, quarantine,"
    " min_session, committed_seq, online, link, last_seen_ms, outbox_depth, outbox_dropped,"
    " uptime_s, free_heap, config_version, errors, refused"
)


def _device(row: sqlite3.Row) -> DeviceView:
    d = dict(row)
    d["has_key"] = bool(d["has_key"])
    d["online"] = bool(d["online"])
    d["errors"] = json.loads(d["errors"])
    d["refused"] = json.loads(d["refused"])
    return DeviceView(**d)


def _error(code: str, zh: str, en: str, **values: object) -> StoreError:
    return StoreError(code, Msg(zh, en).fill(**values))


# ---------------------------------------------------------------- windows and staff


def add_window(store: Store, *, window_id: str, label: str, now_ms: int) -> None:
    """Create a window, or relabel an existing one (bumps its config version)."""
    if len(label.encode()) > 32:
        raise _error(
            "window.label",
            "窗口名称 {l!r} 超过 32 字节（设备屏幕放不下）",
            "window label {l!r} exceeds 32 bytes (the device screen cannot show it)",
            l=label,
        )
    with store.tx() as c:
        c.execute(
            "INSERT INTO windows (window_id, label, created_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (window_id) DO UPDATE SET label = excluded.label,"
            " config_version = config_version + 1",
            (window_id, label, now_ms),
        )


def window(store: Store, window_id: str) -> dict[str, Any] | None:
    row = store.one(
        "SELECT w.*, s.name AS staff_name, s.number AS staff_number, s.title AS staff_title"
        " FROM windows w LEFT JOIN staff s ON s.staff_id = w.staff_id WHERE w.window_id = ?",
        window_id,
    )
    return dict(row) if row is not None else None


def windows(store: Store) -> list[dict[str, Any]]:
    rows = store.all(
        "SELECT w.window_id, w.label, w.staff_id, w.paused, w.pause_reason, w.config_version,"
        " (SELECT group_concat(device_id) FROM devices d WHERE d.window_id = w.window_id)"
        " AS devices FROM windows w ORDER BY w.window_id"
    )
    out = []
    for r in rows:
        d = dict(r)
        d["paused"] = bool(d["paused"])
        d["devices"] = sorted(d["devices"].split(",")) if d["devices"] else []
        out.append(d)
    return out


def staff_display(row: dict[str, Any]) -> dict[str, Any] | None:
    """The protocol's Staff struct for a window row (None: nobody signed in)."""
    if row.get("staff_id") is None or row.get("staff_name") is None:
        return None
    return {"name": row["staff_name"], "number": row["staff_number"], "title": row["staff_title"]}


# ---------------------------------------------------------------- devices


def add_device(
    store: Store,
    *,
    device_id: str,
    now_ms: int,
    key: bytes | None = None,
    kind: int | None = None,
    window_id: str | None = None,
) -> None:
    """Register a device, or update it. A new key lifts a no_key quarantine."""
    if key is not None and not KEY_MIN <= len(key) <= KEY_MAX:
        raise _error(
            "device.key",
            "设备密钥须为 {lo}…{hi} 字节，实际 {n} 字节",
            "a device key must be {lo}…{hi} bytes, got {n}",
            lo=KEY_MIN,
            hi=KEY_MAX,
            n=len(key),
        )
    with store.tx() as c:
        c.execute(
            "INSERT INTO devices (device_id, added_ms, updated_ms, quarantine)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO NOTHING",
            (device_id, now_ms, now_ms, None if key else QUARANTINE_NO_KEY),
        )
        if key is not None:
            c.execute(
                "UPDATE devices SET key = ?, updated_ms = ?, quarantine = CASE quarantine"
                " WHEN 'no_key' THEN NULL ELSE quarantine END WHERE device_id = ?",
                (key, now_ms, device_id),
            )
        if kind is not None:
            c.execute("UPDATE devices SET kind = ? WHERE device_id = ?", (kind, device_id))
        if window_id is not None:
            bind_device(store, device_id=device_id, window_id=window_id, now_ms=now_ms)


def bind_device(store: Store, *, device_id: str, window_id: str | None, now_ms: int) -> None:
    """Bind a device to a window (None: unbind), keeping one evaluator and one QR per window."""
    with store.tx() as c:
        dev = c.execute("SELECT kind FROM devices WHERE device_id = ?", (device_id,)).fetchone()
        if dev is None:
            raise _error("device.unknown", "没有设备 {d}", "no device {d}", d=device_id)
        if window_id is not None:
            if window(store, window_id) is None:
                raise _error("window.unknown", "没有窗口 {w}", "no window {w}", w=window_id)
            kind = dev["kind"]
            others = c.execute(
                "SELECT device_id, kind FROM devices WHERE window_id = ? AND device_id != ?",
                (window_id, device_id),
            ).fetchall()
            for other in others:
                clash = (kind in BUTTONS and other["kind"] in BUTTONS) or (
                    kind in SHOWS_QR and other["kind"] in SHOWS_QR
                )
                if clash:
                    raise _error(
                        "window.position_taken",
                        "窗口 {w} 已有同类设备 {o}（一码一账号：每个窗口一个评价器、一个二维码）",
                        "window {w} already has {o} in that position (one evaluator and one"
                        " QR code per window)",
                        w=window_id,
                        o=other["device_id"],
                    )
        c.execute(
            "UPDATE devices SET window_id = ?, updated_ms = ? WHERE device_id = ?",
            (window_id, now_ms, device_id),
        )


def set_quarantine(store: Store, *, device_id: str, reason: str | None, now_ms: int) -> None:
    with store.tx() as c:
        n = c.execute(
            "UPDATE devices SET quarantine = ?, updated_ms = ? WHERE device_id = ?",
            (reason, now_ms, device_id),
        ).rowcount
        if not n:
            raise _error("device.unknown", "没有设备 {d}", "no device {d}", d=device_id)


def ensure_device(store: Store, *, device_id: str, now_ms: int) -> DeviceView:
    """The device's row, created (quarantined: no key) for a link configured before add-device."""
    with store.tx() as c:
        c.execute(
            "INSERT INTO devices (device_id, added_ms, updated_ms, quarantine)"
            " VALUES (?, ?, ?, 'no_key') ON CONFLICT (device_id) DO NOTHING",
            (device_id, now_ms, now_ms),
        )
        c.execute(
            "UPDATE devices SET quarantine = 'no_key' WHERE device_id = ? AND key IS NULL"
            " AND quarantine IS NULL",
            (device_id,),
        )
    found = device(store, device_id)
    assert found is not None
    return found


def device(store: Store, device_id: str) -> DeviceView | None:
    row = store.one(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = ?", device_id)
    return _device(row) if row is not None else None


def devices(store: Store) -> list[DeviceView]:
    return [_device(r) for r in store.all(f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY 1")]


def device_key(store: Store, device_id: str) -> bytes | None:
    """The device's key. The only reader of the key column; never log what it returns."""
    value = store.scalar("SELECT key FROM devices WHERE device_id = ?", device_id)
    return bytes(value) if value is not None else None


def link_up(
    store: Store,
    *,
    device_id: str,
    kind: int,
    board: str,
    firmware: str,
    session: int,
    outbox_depth: int,
    config_version: int,
    committed_seq: int,
    link: str,
    now_ms: int,
) -> None:
    """A HELLO was accepted: the device's identity, its session (the replay floor) and seq."""
    with store.tx() as c:
        c.execute(
            "UPDATE devices SET kind = ?, board = ?, firmware = ?,"
            " min_session = max(min_session, ?), outbox_depth = ?, config_version = ?,"
            " committed_seq = max(committed_seq, ?),"
            " online = 1, link = ?, last_seen_ms = ?, updated_ms = ? WHERE device_id = ?",
            (
                kind,
                board,
                firmware,
                session,
                outbox_depth,
                config_version,
                committed_seq,
                link,
                now_ms,
                now_ms,
                device_id,
            ),
        )


def record_status(
    store: Store,
    *,
    device_id: str,
    uptime_s: int,
    free_heap: int,
    outbox_depth: int,
    outbox_dropped: int,
    errors: list[int],
    config_version: int,
    refused: dict[str, int],
    now_ms: int,
) -> None:
    with store.tx() as c:
        c.execute(
            "UPDATE devices SET uptime_s = ?, free_heap = ?, outbox_depth = ?, outbox_dropped = ?,"
            " errors = ?, config_version = ?, refused = ?, online = 1, last_seen_ms = ?,"
            " updated_ms = ? WHERE device_id = ?",
            (
                uptime_s,
                free_heap,
                outbox_depth,
                outbox_dropped,
                json.dumps(errors),
                config_version,
                json.dumps(refused, sort_keys=True),
                now_ms,
                now_ms,
                device_id,
            ),
        )


def link_down(
    store: Store, *, device_id: str, refused: dict[str, int], last_seen_ms: int | None, now_ms: int
) -> None:
    with store.tx() as c:
        c.execute(
            "UPDATE devices SET online = 0, refused = ?, last_seen_ms = coalesce(?, last_seen_ms),"
            " updated_ms = ? WHERE device_id = ?",
            (json.dumps(refused, sort_keys=True), last_seen_ms, now_ms, device_id),
        )


def mark_all_offline(store: Store, *, now_ms: int) -> None:
    """At start: nothing is online until its link says so."""
    with store.tx() as c:
        c.execute("UPDATE devices SET online = 0, updated_ms = ? WHERE online = 1", (now_ms,))


# ---------------------------------------------------------------- provisioning and positions
# hcp provision (docs/technician.md). A position is the staff account whose static QR code
# and evaluator sit at a window (一码一账号); every change is appended to binding_history,
# so re-binding a window, retiring a device and replacing a broken one keep the history.

QUARANTINE_PENDING = "provisioning"  # key stored, the device has not confirmed it yet
QUARANTINE_RETIRED = "retired"


def _history(
    c: sqlite3.Connection,
    event: str,
    now_ms: int,
    *,
    device_id: str | None = None,
    window_id: str | None = None,
    staff_id: str | None = None,
    detail: str | None = None,
) -> None:
    c.execute(
        "INSERT INTO binding_history (at_ms, event, device_id, window_id, staff_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (now_ms, event, device_id, window_id, staff_id, detail),
    )


def position(store: Store, window_id: str) -> dict[str, Any] | None:
    """The staff account at a window's position, with name, number, title and department."""
    row = store.one(
        "SELECT p.window_id, p.staff_id, p.since_ms, s.name, s.number, s.title, s.department"
        " FROM positions p JOIN staff s ON s.staff_id = p.staff_id WHERE p.window_id = ?",
        window_id,
    )
    return dict(row) if row is not None else None


def positions(store: Store) -> list[dict[str, Any]]:
    rows = store.all(
        "SELECT p.window_id, w.label, p.staff_id, p.since_ms, s.name, s.number, s.title,"
        " s.department FROM positions p JOIN staff s ON s.staff_id = p.staff_id"
        " JOIN windows w ON w.window_id = p.window_id ORDER BY p.window_id"
    )
    return [dict(r) for r in rows]


def position_conflict(store: Store, *, window_id: str, staff_id: str) -> StoreError | None:
    """The refusal for putting staff_id at window_id when it holds another window."""
    row = store.one(
        "SELECT p.window_id, (SELECT group_concat(device_id) FROM devices d"
        " WHERE d.window_id = p.window_id) AS devices FROM positions p"
        " WHERE p.staff_id = ? AND p.window_id != ?",
        staff_id,
        window_id,
    )
    if row is None:
        return None
    return _error(
        "staff.position_taken",
        "工作人员 {s} 已绑定窗口 {w}（设备 {d}）：一码一账号，一个账号只有一个二维码和一个"
        "评价器位置；请先在窗口 {w} 改绑其他人员",
        "staff {s} is already bound to window {w} (device {d}): one account, one QR code,"
        " one evaluator position; rebind window {w} first",
        s=staff_id,
        w=row["window_id"],
        d=row["devices"] or "-",
    )


def assign_staff(
    store: Store,
    *,
    window_id: str,
    staff_id: str,
    now_ms: int,
    name: str | None = None,
    number: str | None = None,
    title: str | None = None,
    department: str | None = None,
) -> bool:
    """Put a staff account at a window's position; returns False when it already was."""
    with store.tx() as c:
        if window(store, window_id) is None:
            raise _error("window.unknown", "没有窗口 {w}", "no window {w}", w=window_id)
        known = c.execute("SELECT 1 FROM staff WHERE staff_id = ?", (staff_id,)).fetchone()
        if known is None and (name is None or number is None):
            raise _error(
                "staff.unknown",
                "没有工作人员 {s}：首次绑定请给出姓名和工号",
                "no staff account {s}: give the name and number when binding it first",
                s=staff_id,
            )
        if known is None:
            c.execute(
                "INSERT INTO staff (staff_id, name, number, title, department, updated_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (staff_id, name, number, title, department, now_ms),
            )
        else:
            c.execute(
                "UPDATE staff SET name = coalesce(?, name), number = coalesce(?, number),"
                " title = coalesce(?, title), department = coalesce(?, department),"
                " updated_ms = ? WHERE staff_id = ?",
                (name, number, title, department, now_ms, staff_id),
            )
        conflict = position_conflict(store, window_id=window_id, staff_id=staff_id)
        if conflict is not None:
            raise conflict
        old = c.execute(
            "SELECT staff_id FROM positions WHERE window_id = ?", (window_id,)
        ).fetchone()
        if old is not None and old["staff_id"] == staff_id:
            return False
        if old is not None:
            c.execute("DELETE FROM positions WHERE window_id = ?", (window_id,))
            _history(c, "staff_unbound", now_ms, window_id=window_id, staff_id=old["staff_id"])
        c.execute(
            "INSERT INTO positions (window_id, staff_id, since_ms) VALUES (?, ?, ?)",
            (window_id, staff_id, now_ms),
        )
        c.execute(
            "UPDATE windows SET config_version = config_version + 1 WHERE window_id = ?",
            (window_id,),
        )
        _history(c, "staff_bound", now_ms, window_id=window_id, staff_id=staff_id)
        return True


def device_by_factory(store: Store, factory_id: str) -> DeviceView | None:
    """The live (not retired) device identity provisioned onto a factory board."""
    row = store.one(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE factory_id = ? AND retired_ms IS NULL",
        factory_id,
    )
    return _device(row) if row is not None else None


def seq_floor(store: Store, device_id: str) -> tuple[int, int]:
    """(highest rating seq, highest boot session) the agent has seen for a device id: a
    (re-)provisioned device starts above both, so identities never collide (protocol §10)."""
    row = store.one(
        "SELECT coalesce(max(d.committed_seq, (SELECT max(seq) FROM ratings r"
        " WHERE r.device_id = d.device_id)), d.committed_seq) AS seq, d.min_session AS session"
        " FROM devices d WHERE d.device_id = ?",
        device_id,
    )
    if row is None:
        return 0, 0
    return int(row["seq"] or 0), int(row["session"] or 0)


def stage_provisioning(
    store: Store,
    *,
    device_id: str,
    factory_id: str,
    kind: int,
    board: str,
    key: bytes,
    now_ms: int,
) -> None:
    """Store the new identity and key, quarantined until the device confirms the key."""
    with store.tx() as c:
        taken = c.execute(
            "SELECT factory_id, retired_ms FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        if taken is not None and taken["retired_ms"] is not None:
            raise _error(
                "device.retired",
                "设备标识 {d} 已退役，不能再使用",
                "device id {d} is retired and cannot be used again",
                d=device_id,
            )
        if taken is not None and taken["factory_id"] not in (None, factory_id):
            raise _error(
                "device.id_taken",
                "设备标识 {d} 已属于出厂编号 {f} 的设备",
                "device id {d} belongs to the board with factory id {f}",
                d=device_id,
                f=taken["factory_id"],
            )
        add_device(store, device_id=device_id, key=key, kind=kind, now_ms=now_ms)
        c.execute(
            "UPDATE devices SET factory_id = ?, board = ?, quarantine = ? WHERE device_id = ?",
            (factory_id, board, QUARANTINE_PENDING, device_id),
        )
        _history(c, "key_staged", now_ms, device_id=device_id, detail=factory_id)


def finish_provisioning(
    store: Store,
    *,
    device_id: str,
    window_id: str,
    session_base: int,
    replaces: str | None,
    now_ms: int,
) -> None:
    """The device confirmed its key: retire the one it replaces, bind it, lift quarantine."""
    with store.tx() as c:
        if replaces is not None:
            retire_device(store, device_id=replaces, now_ms=now_ms, replaced_by=device_id)
        bind_device(store, device_id=device_id, window_id=window_id, now_ms=now_ms)
        c.execute(
            "UPDATE devices SET quarantine = NULL, provisioned_ms = ?,"
            " min_session = max(min_session, ?) WHERE device_id = ?",
            (now_ms, max(session_base - 1, 0), device_id),
        )
        _history(
            c,
            "provisioned",
            now_ms,
            device_id=device_id,
            window_id=window_id,
            detail=f"replaces {replaces}" if replaces else None,
        )


def retire_device(
    store: Store, *, device_id: str, now_ms: int, replaced_by: str | None = None
) -> None:
    """Take a device out of service for good: no key, no window; its row and ratings stay."""
    with store.tx() as c:
        row = c.execute(
            "SELECT window_id, retired_ms FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        if row is None:
            raise _error("device.unknown", "没有设备 {d}", "no device {d}", d=device_id)
        if row["retired_ms"] is not None:
            return
        c.execute(
            "UPDATE devices SET key = NULL, window_id = NULL, quarantine = ?, retired_ms = ?,"
            " updated_ms = ? WHERE device_id = ?",
            (QUARANTINE_RETIRED, now_ms, now_ms, device_id),
        )
        _history(
            c,
            "retired",
            now_ms,
            device_id=device_id,
            window_id=row["window_id"],
            detail=f"replaced by {replaced_by}" if replaced_by else None,
        )


def history(store: Store, *, window_id: str | None = None) -> list[dict[str, Any]]:
    if window_id is None:
        rows = store.all("SELECT * FROM binding_history ORDER BY id")
    else:
        rows = store.all("SELECT * FROM binding_history WHERE window_id = ? ORDER BY id", window_id)
    return [dict(r) for r in rows]
