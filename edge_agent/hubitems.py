"""The hub's item shapes (docs/hub-api.md), built when a fact is stored.

Strategy: the outbox holds items exactly as the hub will receive them, so sync is a dumb
pump and the contract is visible in one module. Times are RFC 3339 with the hall's UTC
offset (agent.toml ``agent.utc_offset``), as the hub requires.

How the agent's verdict maps onto the hub's rating fields (the hub API has no verdict
field yet; proposed as an optional ``binding`` field in the issue note):
- ``counted``: the case number, the device's flags.
- ``repeat`` and ``paused``: the case number, the device's flags plus ``repeat`` / ``paused``
  (the agent may know a repeat the device did not: another device at the window was first).
- ``expired``, ``cancelled``, ``superseded``, ``unknown_invite``, ``wrong_window``: no open
  invite when it was pressed, which is what the protocol's ``unsolicited`` means, so the flag
  is added and the case number is left out: the hub must never count them as the case's
  rating. The local store keeps the full verdict and the case for the hall's reports.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from edge_agent.binding import Binding

FLAG_NAMES = (  # protocol RATING flag bits, in bit order
    (0x01, "repeat"),
    (0x02, "unsolicited"),
    (0x04, "paused"),
    (0x08, "reason_timeout"),
    (0x10, "reason_skipped"),
    (0x20, "offline"),
)
_VERDICT_FLAGS = {
    Binding.COUNTED: 0,
    Binding.REPEAT: 0x01,
    Binding.PAUSED: 0x04,
    Binding.EXPIRED: 0x02,
    Binding.CANCELLED: 0x02,
    Binding.SUPERSEDED: 0x02,
    Binding.UNKNOWN_INVITE: 0x02,
    Binding.WRONG_WINDOW: 0x02,
    Binding.UNSOLICITED: 0x02,
}
_KEEPS_CASE = (Binding.COUNTED, Binding.REPEAT, Binding.PAUSED)


def rfc3339(ms: int, offset_min: int) -> str:
    tz = dt.timezone(dt.timedelta(minutes=offset_min))
    t = dt.datetime.fromtimestamp(ms / 1000, tz)
    return t.isoformat(timespec="milliseconds")


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES if flags & bit]


def hub_flags(flags: int, binding: Binding) -> int:
    return flags | _VERDICT_FLAGS[binding]


def rating_item(
    *,
    hall_id: str,
    device_id: str,
    seq: int,
    level: int,
    reasons: list[int],
    flags: int,
    binding: Binding,
    press_ms: int,
    offset_min: int,
    window_id: str | None,
    staff_id: str | None,
    case: dict[str, Any] | None,
    invited_ms: int | None,
) -> dict[str, Any]:
    keep_case = case is not None and binding in _KEEPS_CASE
    item: dict[str, Any] = {
        "source": "device_press",
        "device_id": device_id,
        "seq": seq,
        "hall_id": hall_id,
        "window_id": window_id,
        "staff_id": staff_id,
        "case_no": case["case_no"] if keep_case and case else None,
        "item_code": case["item_code"] if keep_case and case else None,
        "item_name": case["item_name"] if keep_case and case else None,
        "dept_code": case["dept_code"] if keep_case and case else None,
        "level": level,
        "reasons": sorted(set(reasons)),
        "text": None,
        "channel": "hall_terminal",
        "flags": flag_names(hub_flags(flags, binding)),
        "rated_at": rfc3339(press_ms, offset_min),
        "invited_at": rfc3339(invited_ms, offset_min) if keep_case and invited_ms else None,
        "assess_number": 1,
        "rater": applicant(case) if keep_case and case else None,
    }
    return item


def applicant(case: dict[str, Any]) -> dict[str, Any] | None:
    """The case's applicant as the hub's masked rater object (None when nothing is known)."""
    name, phone = case.get("name_masked"), case.get("phone_masked")
    return {
        "name_masked": name,
        "phone_masked": phone,
        "real_name": bool(name or phone),
        "user_type": case.get("applicant_type") or "person",
    }


def case_event(
    *,
    event_id: str,
    kind: str,
    hall_id: str,
    at_ms: int,
    offset_min: int,
    window_id: str | None = None,
    staff_id: str | None = None,
    case: dict[str, Any] | None = None,
    invited: bool | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "kind": kind,
        "hall_id": hall_id,
        "occurred_at": rfc3339(at_ms, offset_min),
        "window_id": window_id,
        "staff_id": staff_id,
        "device_id": None,
        "case_no": case["case_no"] if case else None,
        "item_code": case.get("item_code") if case else None,
        "item_name": case.get("item_name") if case else None,
        "dept_code": case.get("dept_code") if case else None,
        "applicant": applicant(case) if case else None,
        "invited": invited,
    }
