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
KIND_NAMES = {KIND_EVALUATOR: "evaluator", KIND_QR: "qr_unit", KIND_COMBINED: "combined"}
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
