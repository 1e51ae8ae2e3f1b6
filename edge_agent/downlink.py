"""What a window's devices are told: CONFIG, PAUSE, RESUME, INVITE and CANCEL messages.

Strategy: the store knows a window's state; ``WindowState`` is that state read in one go
(labels, the staff account signed in, pause, the open invite) plus the QR matrices,
rendered outside the writer thread. ``state_messages`` is the full picture a device gets on
every LinkUp (docs/protocol.md §8: CONFIG, then PAUSE if paused, then the open INVITE), and
``effect_messages`` the single update after a case-API event. Both depend on the device's
kind: only QR units and combined units get QR matrices (a 45×45 matrix is 250 bytes an
evaluator would only throw away).

Texts are clipped to the protocol's byte limits on a UTF-8 character boundary, so a long
事项 name never makes a message invalid; the store keeps the full text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_agent.config import Policy
from edge_agent.wire import M, Message, message

KIND_QR = (M.KIND_QR, M.KIND_COMBINED)
WINDOW_TEXT_MAX = 32  # protocol CONFIG.window
ITEM_TEXT_MAX = 48  # protocol INVITE.item
PAUSE_TEXT_MAX = 32  # protocol PAUSE.reason


def clip(text: str | None, limit: int) -> str | None:
    """text cut to at most limit bytes of UTF-8, on a character boundary."""
    if text is None:
        return None
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


@dataclass(frozen=True)
class InviteState:
    invite_id: int
    case_no: str
    deadline_ms: int
    staff: dict[str, Any] | None
    staff_id: str | None
    item_name: str | None
    qr: dict[str, Any] | None = None  # rendered case QR


@dataclass(frozen=True)
class WindowState:
    window_id: str
    label: str
    staff: dict[str, Any] | None
    staff_id: str | None
    paused: bool
    pause_reason: str | None
    config_version: int
    invite: InviteState | None
    staff_qr: dict[str, Any] | None = None  # the static 一码一账号 code


def config_message(
    state: WindowState | None, *, kind: int | None, policy: Policy, heartbeat_s: int
) -> Message:
    shows_qr = kind in KIND_QR
    return message(
        M.CONFIG,
        version=state.config_version if state else 0,
        window=clip(state.label, WINDOW_TEXT_MAX) if state else "",
        staff=state.staff if state else None,
        qr=state.staff_qr if state and shows_qr else None,
        reasons=[
            {"code": r.code, "zh": r.zh, "en": r.en, "levels": r.levels} for r in policy.reasons
        ],
        policy={
            "invite_s": policy.invite_s,
            "reason_s": policy.reason_s,
            "thanks_s": policy.thanks_s,
            "heartbeat_s": heartbeat_s,
            "reason_required": policy.reason_required,
        },
    )


def invite_message(invite: InviteState, *, kind: int | None, now_ms: int) -> Message | None:
    """INVITE for the rest of the invite window; None once the window is over."""
    remaining_ms = invite.deadline_ms - now_ms
    if remaining_ms <= 0:
        return None
    return message(
        M.INVITE,
        invite=invite.invite_id,
        timeout_s=max(1, min(3600, (remaining_ms + 999) // 1000)),
        staff=invite.staff,
        qr=invite.qr if kind in KIND_QR else None,
        item=clip(invite.item_name, ITEM_TEXT_MAX),
    )


def pause_message(state: WindowState) -> Message:
    return message(M.PAUSE, reason=clip(state.pause_reason, PAUSE_TEXT_MAX))


def state_messages(
    state: WindowState | None, *, kind: int | None, policy: Policy, heartbeat_s: int, now_ms: int
) -> list[Message]:
    """Everything a device is sent on LinkUp, in protocol order."""
    out = [config_message(state, kind=kind, policy=policy, heartbeat_s=heartbeat_s)]
    if state is None:
        return out
    if state.paused:
        out.append(pause_message(state))
    if state.invite is not None:
        invite = invite_message(state.invite, kind=kind, now_ms=now_ms)
        if invite is not None:
            out.append(invite)
    return out


def effect_messages(
    effect_kind: str,
    invite_id: int | None,
    state: WindowState | None,
    *,
    kind: int | None,
    policy: Policy,
    heartbeat_s: int,
    now_ms: int,
) -> list[Message]:
    """The update for one effect (edge_agent.cases.Effect)."""
    if effect_kind == "cancel" and invite_id is not None:
        return [message(M.CANCEL, invite=invite_id)]
    if state is None:
        return []
    if effect_kind == "config":
        return [config_message(state, kind=kind, policy=policy, heartbeat_s=heartbeat_s)]
    if effect_kind == "pause":
        return [pause_message(state)]
    if effect_kind == "resume":
        return [message(M.RESUME)]
    if effect_kind == "invite" and state.invite is not None and state.invite.invite_id == invite_id:
        invite = invite_message(state.invite, kind=kind, now_ms=now_ms)
        return [invite] if invite is not None else []
    return []
