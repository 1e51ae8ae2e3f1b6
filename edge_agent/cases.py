"""What the hall's queue-calling and acceptance systems do: sign-in, pause, cases, invites.

Strategy: one function per case-API event, each one store transaction. It checks
everything first (the event id is new, the window exists, the case table allows the event:
edge_agent.binding), then writes the change, the hub's copy of the event (edge_agent.outbox)
and the event id, and returns the ``Effect``s the devices must see. Any refusal raises
``ApiError`` before or inside the transaction, which rolls back: a refused event changes
nothing (DESIGN.md, bad input). The device links are told after the commit
(edge_agent.service), so a device never shows an invite the store does not hold.

Invites (DOMAIN.md, "One rating per service"): finishing a case opens an invite at its
window for ``policy.invite_s`` seconds, with the staff account signed in there. One invite
is open per window: finishing the next case supersedes the previous one (its case expires
and the devices get CANCEL before the new INVITE). The sweeper (``expire_invites``) closes
invites ``expire_grace_s`` after their window, leaving room for presses still in flight.
The hub's ``case_finished`` event is queued when the invite closes, because only then is
``invited`` (did a device acknowledge the INVITE?) known.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from edge_agent import outbox
from edge_agent.binding import CaseEvent, CaseState, CaseTransitionError, next_state
from edge_agent.config import OutboxLimits, Policy
from edge_agent.errors import ApiError, Msg
from edge_agent.hubitems import case_event
from edge_agent.logs import is_masked_name, is_masked_phone, mask_name, mask_phone
from edge_agent.registry import window as get_window
from edge_agent.store import Store

EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,60}$")  # hub event ids are ≤ 64 with our prefix


@dataclass(frozen=True)
class Hall:
    """What the case functions need to know about the hall (from agent.toml)."""

    hall_id: str
    policy: Policy
    outbox: OutboxLimits
    offset_min: int


@dataclass(frozen=True)
class Effect:
    """Something the devices of a window must be told after the commit."""

    window_id: str
    kind: str  # config, pause, resume, invite, cancel
    invite_id: int | None = None


def _refuse(status: int, code: str, zh: str, en: str, **values: object) -> ApiError:
    return ApiError(status, code, Msg(zh, en).fill(**values))


def _unknown_window(window_id: str) -> ApiError:
    return _refuse(
        404,
        "window.unknown",
        "没有窗口 {w}：请先由大厅管理员登记（hcp agent add-window）",
        "no window {w}: the hall administrator registers windows (hcp agent add-window)",
        w=window_id,
    )


def _begin_event(store: Store, event_id: str | None, kind: str, now_ms: int) -> str:
    """Record the caller's event id (409 if seen) and return the hub event id to use."""
    if event_id is None:
        return "a." + uuid.uuid4().hex
    seen = store.one("SELECT kind FROM events WHERE event_id = ?", event_id)
    if seen is not None:
        raise _refuse(
            409,
            "event.duplicate",
            "事件 {e} 已处理过（{k}），本次未做任何更改",
            "event {e} was already processed ({k}); nothing was changed",
            e=event_id,
            k=seen["kind"],
        )
    store.conn.execute(
        "INSERT INTO events (event_id, kind, at_ms) VALUES (?, ?, ?)", (event_id, kind, now_ms)
    )
    return "q." + event_id


def _queue(store: Store, hall: Hall, now_ms: int, at_ms: int | None = None, **event: Any) -> None:
    """Queue a case event for the hub, stamped with this hall and (unless given) now."""
    body = case_event(
        hall_id=hall.hall_id,
        at_ms=now_ms if at_ms is None else at_ms,
        offset_min=hall.offset_min,
        **event,
    )
    if not outbox.enqueue(
        store,
        kind="case_event",
        key=f"event:{hall.hall_id}:{body['event_id']}",
        body=body,
        now_ms=now_ms,
        limits=hall.outbox,
    ):
        raise _refuse(
            503,
            "outbox.full",
            "待上传队列已满（{n} 条，策略 block）：请检查与中心平台的连接，稍后重试",
            "the hub outbox is full ({n} items, policy block): check the hub link, retry later",
            n=hall.outbox.max_rows,
        )


def _window(store: Store, window_id: str) -> dict[str, Any]:
    w = get_window(store, window_id)
    if w is None:
        raise _unknown_window(window_id)
    return w


def _case(store: Store, case_no: str) -> dict[str, Any]:
    row = store.one("SELECT * FROM cases WHERE case_no = ?", case_no)
    if row is None:
        raise _refuse(
            404,
            "case.unknown",
            "没有办件 {c}：请先发送“受理”事件",
            "no case {c}: send the case-opened event first",
            c=case_no,
        )
    return dict(row)


def _transition(case_no: str, state: str, event: CaseEvent) -> CaseState:
    try:
        return next_state(case_no, CaseState(state), event)
    except CaseTransitionError as e:
        raise ApiError(409, e.code, e.message) from e


# ---------------------------------------------------------------- staff and windows


def sign_in(
    store: Store,
    hall: Hall,
    *,
    window_id: str,
    staff_id: str,
    name: str,
    number: str,
    title: str | None,
    event_id: str | None,
    now_ms: int,
) -> tuple[dict[str, Any], list[Effect]]:
    with store.tx() as c:
        hub_event = _begin_event(store, event_id, "staff_signed_in", now_ms)
        w = _window(store, window_id)
        if w["staff_id"] == staff_id:
            raise _refuse(
                409,
                "staff.already_signed_in",
                "工作人员 {s} 已在窗口 {w} 签到",
                "staff {s} is already signed in at window {w}",
                s=staff_id,
                w=window_id,
            )
        if w["staff_id"] is not None:
            raise _refuse(
                409,
                "window.occupied",
                "窗口 {w} 已有工作人员 {o} 签到：请先签退",
                "staff {o} is signed in at window {w}: sign out first",
                w=window_id,
                o=w["staff_id"],
            )
        elsewhere = store.one("SELECT window_id FROM windows WHERE staff_id = ?", staff_id)
        if elsewhere is not None:
            raise _refuse(
                409,
                "staff.signed_in_elsewhere",
                "工作人员 {s} 已在窗口 {o} 签到（一码一账号）：请先在该窗口签退",
                "staff {s} is signed in at window {o} (one account, one window): sign out there"
                " first",
                s=staff_id,
                o=elsewhere["window_id"],
            )
        c.execute(
            "INSERT INTO staff (staff_id, name, number, title, updated_ms) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (staff_id) DO UPDATE SET name = excluded.name,"
            " number = excluded.number, title = excluded.title, updated_ms = excluded.updated_ms",
            (staff_id, name, number, title, now_ms),
        )
        c.execute(
            "UPDATE windows SET staff_id = ?, signed_in_ms = ?, config_version = config_version + 1"
            " WHERE window_id = ?",
            (staff_id, now_ms, window_id),
        )
        _queue(
            store,
            hall,
            now_ms,
            event_id=hub_event,
            kind="staff_signed_in",
            window_id=window_id,
            staff_id=staff_id,
        )
    return {"window_id": window_id, "staff_id": staff_id}, [Effect(window_id, "config")]


def sign_out(
    store: Store, hall: Hall, *, window_id: str, staff_id: str, event_id: str | None, now_ms: int
) -> tuple[dict[str, Any], list[Effect]]:
    with store.tx() as c:
        hub_event = _begin_event(store, event_id, "staff_signed_out", now_ms)
        w = _window(store, window_id)
        if w["staff_id"] != staff_id:
            raise _refuse(
                409,
                "staff.not_signed_in",
                "工作人员 {s} 未在窗口 {w} 签到",
                "staff {s} is not signed in at window {w}",
                s=staff_id,
                w=window_id,
            )
        c.execute(
            "UPDATE windows SET staff_id = NULL, signed_in_ms = NULL,"
            " config_version = config_version + 1 WHERE window_id = ?",
            (window_id,),
        )
        _queue(
            store,
            hall,
            now_ms,
            event_id=hub_event,
            kind="staff_signed_out",
            window_id=window_id,
            staff_id=staff_id,
        )
    return {"window_id": window_id, "staff_id": None}, [Effect(window_id, "config")]


def set_paused(
    store: Store,
    hall: Hall,
    *,
    window_id: str,
    paused: bool,
    reason: str | None,
    event_id: str | None,
    now_ms: int,
) -> tuple[dict[str, Any], list[Effect]]:
    kind = "window_paused" if paused else "window_resumed"
    with store.tx() as c:
        hub_event = _begin_event(store, event_id, kind, now_ms)
        w = _window(store, window_id)
        if bool(w["paused"]) == paused:
            raise _refuse(
                409,
                "window.already_paused" if paused else "window.not_paused",
                "窗口 {w} 已经暂停" if paused else "窗口 {w} 未暂停",
                "window {w} is already paused" if paused else "window {w} is not paused",
                w=window_id,
            )
        c.execute(
            "UPDATE windows SET paused = ?, pause_reason = ?, paused_ms = ? WHERE window_id = ?",
            (int(paused), reason if paused else None, now_ms if paused else None, window_id),
        )
        _queue(
            store,
            hall,
            now_ms,
            event_id=hub_event,
            kind=kind,
            window_id=window_id,
            staff_id=w["staff_id"],
        )
    return {"window_id": window_id, "paused": paused}, [
        Effect(window_id, "pause" if paused else "resume")
    ]


# ---------------------------------------------------------------- cases


def open_case(
    store: Store,
    hall: Hall,
    *,
    case_no: str,
    window_id: str,
    staff_id: str | None,
    item_code: str | None,
    item_name: str | None,
    dept_code: str | None,
    applicant_type: str,
    applicant_name: str | None,
    applicant_phone: str | None,
    event_id: str | None,
    now_ms: int,
) -> tuple[dict[str, Any], list[Effect]]:
    # Personal data is masked before it is stored, whatever the caller sent (DOMAIN.md).
    name = (
        applicant_name
        if applicant_name is None or is_masked_name(applicant_name)
        else mask_name(applicant_name)
    )
    phone = (
        applicant_phone
        if applicant_phone is None or is_masked_phone(applicant_phone)
        else mask_phone(applicant_phone)
    )
    with store.tx() as c:
        hub_event = _begin_event(store, event_id, "case_opened", now_ms)
        w = _window(store, window_id)
        row = store.one("SELECT state FROM cases WHERE case_no = ?", case_no)
        _transition(case_no, row["state"] if row else CaseState.NEW, CaseEvent.OPEN)
        if staff_id is not None and staff_id != w["staff_id"]:
            raise _refuse(
                409,
                "staff.not_signed_in",
                "工作人员 {s} 未在窗口 {w} 签到",
                "staff {s} is not signed in at window {w}",
                s=staff_id,
                w=window_id,
            )
        case: dict[str, Any] = {
            "case_no": case_no,
            "window_id": window_id,
            "staff_id": staff_id or w["staff_id"],
            "item_code": item_code,
            "item_name": item_name,
            "dept_code": dept_code,
            "applicant_type": applicant_type,
            "name_masked": name,
            "phone_masked": phone,
            "state": CaseState.OPENED.value,
            "opened_ms": now_ms,
        }
        c.execute(
            f"INSERT INTO cases ({', '.join(case)}) VALUES ({', '.join('?' * len(case))})",
            tuple(case.values()),
        )
        _queue(
            store,
            hall,
            now_ms,
            event_id=hub_event,
            kind="case_opened",
            window_id=window_id,
            staff_id=staff_id or w["staff_id"],
            case=case,
        )
    return case, []


def finish_case(
    store: Store, hall: Hall, *, case_no: str, event_id: str | None, now_ms: int
) -> tuple[dict[str, Any], list[Effect]]:
    """The staff finished the case: open its invite (superseding the window's open one)."""
    effects: list[Effect] = []
    with store.tx() as c:
        hub_event = _begin_event(store, event_id, "case_finished", now_ms)
        case = _case(store, case_no)
        new_state = _transition(case_no, case["state"], CaseEvent.FINISH)
        w = _window(store, case["window_id"])
        if w["paused"]:
            raise _refuse(
                409,
                "window.paused",
                "窗口 {w} 已暂停，不能邀请评价：请先恢复",
                "window {w} is paused and cannot invite a rating: resume it first",
                w=w["window_id"],
            )
        old = store.one(
            "SELECT invite_id FROM invites WHERE window_id = ? AND closed_ms IS NULL",
            w["window_id"],
        )
        if old is not None:
            _close_invite(
                store, hall, invite_id=old["invite_id"], reason="superseded", now_ms=now_ms
            )
            effects.append(Effect(w["window_id"], "cancel", old["invite_id"]))
        staff_id = w["staff_id"] or case["staff_id"]
        deadline = now_ms + hall.policy.invite_s * 1000
        invite_id = c.execute(
            "INSERT INTO invites (case_no, window_id, staff_id, opened_ms, deadline_ms, hub_event)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (case_no, w["window_id"], staff_id, now_ms, deadline, hub_event),
        ).lastrowid
        assert invite_id is not None
        c.execute(
            "UPDATE cases SET state = ?, finished_ms = ?, invite_id = ?, staff_id = ?"
            " WHERE case_no = ?",
            (new_state.value, now_ms, invite_id, staff_id, case_no),
        )
        effects.append(Effect(w["window_id"], "invite", invite_id))
    result = {
        "case_no": case_no,
        "state": new_state.value,
        "invite_id": invite_id,
        "window_id": w["window_id"],
        "staff_id": staff_id,
        "deadline_ms": deadline,
    }
    return result, effects


def cancel_case(
    store: Store, hall: Hall, *, case_no: str, event_id: str | None, now_ms: int
) -> tuple[dict[str, Any], list[Effect]]:
    effects: list[Effect] = []
    with store.tx() as c:
        hub_event = _begin_event(store, event_id, "case_cancelled", now_ms)
        case = _case(store, case_no)
        new_state = _transition(case_no, case["state"], CaseEvent.CANCEL)
        invite_id = case["invite_id"]
        if invite_id is not None:
            row = store.one("SELECT closed_ms FROM invites WHERE invite_id = ?", invite_id)
            if row is not None and row["closed_ms"] is None:
                _close_invite(store, hall, invite_id=invite_id, reason="cancelled", now_ms=now_ms)
                effects.append(Effect(case["window_id"], "cancel", invite_id))
        c.execute(
            "UPDATE cases SET state = ?, closed_ms = ? WHERE case_no = ?",
            (new_state.value, now_ms, case_no),
        )
        case["state"] = new_state.value
        _queue(
            store,
            hall,
            now_ms,
            event_id=hub_event,
            kind="case_cancelled",
            window_id=case["window_id"],
            staff_id=case["staff_id"],
            case=case,
        )
    return {"case_no": case_no, "state": new_state.value}, effects


def case_view(store: Store, case_no: str) -> dict[str, Any]:
    case = _case(store, case_no)
    if case["invite_id"] is not None:
        inv = store.one("SELECT * FROM invites WHERE invite_id = ?", case["invite_id"])
        case["invite"] = dict(inv) if inv is not None else None
    else:
        case["invite"] = None
    case["ratings"] = [
        dict(r)
        for r in store.all(
            "SELECT device_id, seq, level, binding, flags, press_ms FROM ratings"
            " WHERE case_no = ? ORDER BY press_ms",
            case_no,
        )
    ]
    return case


# ---------------------------------------------------------------- invites


def _close_invite(store: Store, hall: Hall, *, invite_id: int, reason: str, now_ms: int) -> None:
    """Close an open invite; its finished case expires unless it was rated or cancelled.

    Queues the hub's case_finished event, whose ``invited`` says whether a device
    acknowledged the INVITE.
    """
    c = store.conn
    inv = store.one("SELECT * FROM invites WHERE invite_id = ?", invite_id)
    assert inv is not None and inv["closed_ms"] is None
    c.execute(
        "UPDATE invites SET closed_ms = ?, close_reason = ? WHERE invite_id = ?",
        (now_ms, reason, invite_id),
    )
    case = _case(store, inv["case_no"])
    if reason in ("expired", "superseded") and case["state"] == CaseState.FINISHED:
        state = _transition(case["case_no"], case["state"], CaseEvent.EXPIRE)
        c.execute(
            "UPDATE cases SET state = ?, closed_ms = ? WHERE case_no = ?",
            (state.value, now_ms, case["case_no"]),
        )
    event = inv["hub_event"] or f"a.invite-{invite_id}"
    _queue(
        store,
        hall,
        now_ms,
        event_id=event,
        kind="case_finished",
        at_ms=inv["opened_ms"],
        window_id=inv["window_id"],
        staff_id=inv["staff_id"],
        case=case,
        invited=inv["delivered_ms"] is not None,
    )
    store.bump(f"invites_closed.{reason}")


def close_rated_invite(store: Store, hall: Hall, *, invite_id: int, now_ms: int) -> None:
    """The invite got its counted press (edge_agent.ratings, inside its transaction)."""
    _close_invite(store, hall, invite_id=invite_id, reason="rated", now_ms=now_ms)


def expire_invites(store: Store, hall: Hall, *, now_ms: int) -> list[int]:
    """Close invites whose window ended more than expire_grace_s ago; returns their ids."""
    cutoff = now_ms - hall.policy.expire_grace_s * 1000
    with store.tx():
        ids = [
            int(r["invite_id"])
            for r in store.all(
                "SELECT invite_id FROM invites WHERE closed_ms IS NULL AND deadline_ms < ?",
                cutoff,
            )
        ]
        for invite_id in ids:
            _close_invite(store, hall, invite_id=invite_id, reason="expired", now_ms=now_ms)
    return ids


def mark_delivered(store: Store, *, invite_id: int, now_ms: int) -> None:
    """A device acknowledged the INVITE (the first acknowledgement counts)."""
    with store.tx() as c:
        c.execute(
            "UPDATE invites SET delivered_ms = ? WHERE invite_id = ? AND delivered_ms IS NULL",
            (now_ms, invite_id),
        )


def open_invite(store: Store, window_id: str) -> dict[str, Any] | None:
    """The window's open invite with its case's item, for an INVITE (None if none is open)."""
    row = store.one(
        "SELECT i.invite_id, i.case_no, i.staff_id, i.opened_ms, i.deadline_ms, c.item_name,"
        " s.name AS staff_name, s.number AS staff_number, s.title AS staff_title"
        " FROM invites i JOIN cases c ON c.case_no = i.case_no"
        " LEFT JOIN staff s ON s.staff_id = i.staff_id"
        " WHERE i.window_id = ? AND i.closed_ms IS NULL",
        window_id,
    )
    return dict(row) if row is not None else None


def event_id_ok(value: str) -> bool:
    return EVENT_ID.match(value) is not None
