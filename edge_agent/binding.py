"""The binding engine's rules, as tables: the case lifecycle and the verdict on each press.

Everything that decides a case's state or whether a press counts is in this module, and
it is pure (no store, no clock): the store functions (edge_agent.cases, edge_agent.ratings)
look rows up, ask these tables, and write what they say.

**Case lifecycle** (CASE_TRANSITIONS). A case is opened by the acceptance system, finished
by staff (which invites the rating), and ends rated, expired or cancelled:

    new ──open──► opened ──finish──► finished ──rate──► rated
                    │                  │  │
                    └──cancel──┐       │  └──expire──► expired ──rate_late──► rated
                               ▼       │
                           cancelled ◄─┘cancel

A missing (state, event) row raises CaseTransitionError, which names the case, the state
and the event in both languages; the API answers it 409 and changes nothing.
``rate_late`` exists because ratings are store-and-forward: a press made inside the invite
window can reach the agent after the sweeper expired the invite (device offline, link
retrying); its press time decides, not its arrival.

**Verdict on a press** (RULES, first match wins; DOMAIN.md "One rating per service" and
"fraud patterns"). Every press is stored whatever the verdict; the verdict says whether it
is *the* rating of a case. Only ``counted`` is; a press bound to a case (``bound``) still
carries its case, window and staff so reports can show repeats and late presses per case.
The device's own flags are believed when they withhold a count (a device that says
"repeat" or "paused" is never overruled into counting), and the agent adds what only it
knows (the invite was cancelled, superseded, expired, or already counted from another
device at the window).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from edge_agent.errors import AgentError, Msg

FLAG_REPEAT = 0x01  # protocol RATING flags (docs/protocol.md, Enumerations)
FLAG_UNSOLICITED = 0x02
FLAG_PAUSED = 0x04


class CaseState(StrEnum):
    NEW = "new"  # not stored yet: only the source of "open"
    OPENED = "opened"
    FINISHED = "finished"
    RATED = "rated"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class CaseEvent(StrEnum):
    OPEN = "open"
    FINISH = "finish"
    CANCEL = "cancel"
    RATE = "rate"
    EXPIRE = "expire"
    RATE_LATE = "rate_late"


S, E = CaseState, CaseEvent

# (state, event) -> next state. Everything that changes a case's state is listed here.
CASE_TRANSITIONS: dict[tuple[CaseState, CaseEvent], CaseState] = {
    (S.NEW, E.OPEN): S.OPENED,
    (S.OPENED, E.FINISH): S.FINISHED,  # action: open an invite at the window
    (S.OPENED, E.CANCEL): S.CANCELLED,
    (S.FINISHED, E.CANCEL): S.CANCELLED,  # action: close the invite, CANCEL to the devices
    (S.FINISHED, E.RATE): S.RATED,  # the first counted press
    (S.FINISHED, E.EXPIRE): S.EXPIRED,  # invite window over, or the next case was invited
    (S.EXPIRED, E.RATE_LATE): S.RATED,  # a press made in time that arrived late
}

STATE_NAMES = {
    S.NEW: Msg("未受理", "not opened"),
    S.OPENED: Msg("已受理", "opened"),
    S.FINISHED: Msg("已办结、待评价", "finished, awaiting a rating"),
    S.RATED: Msg("已评价", "rated"),
    S.EXPIRED: Msg("评价已超时", "rating window expired"),
    S.CANCELLED: Msg("已撤销", "cancelled"),
}
EVENT_NAMES = {
    E.OPEN: Msg("受理", "open"),
    E.FINISH: Msg("办结", "finish"),
    E.CANCEL: Msg("撤销", "cancel"),
    E.RATE: Msg("评价", "rate"),
    E.EXPIRE: Msg("评价超时", "expire"),
    E.RATE_LATE: Msg("迟到的评价", "late rating"),
}


class CaseTransitionError(AgentError):
    """An event the case's state has no row for; names the case, the state and the event."""

    def __init__(self, case_no: str, state: CaseState, event: CaseEvent) -> None:
        s, e = STATE_NAMES[state], EVENT_NAMES[event]
        super().__init__(
            "case.illegal_transition",
            Msg(
                "办件 {case} 当前状态为“{sz}”（{state}），不能执行“{ez}”（{event}）",
                "case {case} is {se} ({state}); it cannot take the event {ee} ({event})",
            ).fill(case=case_no, sz=s.zh, se=s.en, ez=e.zh, ee=e.en, state=state, event=event),
        )
        self.state = state
        self.event = event


def next_state(case_no: str, state: CaseState, event: CaseEvent) -> CaseState:
    """The state after event, or CaseTransitionError naming state and event."""
    new = CASE_TRANSITIONS.get((state, event))
    if new is None:
        raise CaseTransitionError(case_no, state, event)
    return new


# ---------------------------------------------------------------- the verdict on a press


class Binding(StrEnum):
    COUNTED = "counted"  # the case's rating: first press inside the open invite's window
    REPEAT = "repeat"  # a further press for an invite already rated (or flagged so)
    UNSOLICITED = "unsolicited"  # no invite named: never a case rating (self-rating signal)
    PAUSED = "paused"  # pressed while the window was paused
    EXPIRED = "expired"  # pressed after the invite window
    CANCELLED = "cancelled"  # the case was cancelled
    SUPERSEDED = "superseded"  # pressed after the next case was invited at the window
    UNKNOWN_INVITE = "unknown_invite"  # names an invite this agent never opened
    WRONG_WINDOW = "wrong_window"  # names another window's invite


@dataclass(frozen=True)
class Press:
    """What a RATING says, with its press time on the agent's clock."""

    invite_id: int | None
    flags: int
    press_ms: int
    window_id: str | None  # the window the device is bound to when the press is stored


@dataclass(frozen=True)
class InviteView:
    """An invite as the store holds it when the press is judged."""

    invite_id: int
    case_no: str
    window_id: str
    staff_id: str | None
    opened_ms: int
    deadline_ms: int
    closed_ms: int | None
    close_reason: str | None  # rated, cancelled, superseded, expired
    counted: bool  # a press was already counted for it
    case_state: CaseState


@dataclass(frozen=True)
class Verdict:
    rule: str  # the RULES row that decided
    binding: Binding
    bound: bool  # the press carries the invite's case, window and staff
    case_event: CaseEvent | None  # what the press does to the case
    too_fast: bool = False  # counted sooner than fast_press_ms after the invite


Rule = Callable[[Press, "InviteView | None"], bool]


def _closed_before(reason: str, p: Press, i: InviteView | None) -> bool:
    assert i is not None
    return i.close_reason == reason and i.closed_ms is not None and p.press_ms >= i.closed_ms


# (rule, predicate, binding, bound). Checked in order; the first predicate that holds decides.
RULES: tuple[tuple[str, Rule, Binding, bool], ...] = (
    (
        "no_invite",
        lambda p, i: p.invite_id is None or bool(p.flags & FLAG_UNSOLICITED),
        Binding.UNSOLICITED,
        False,
    ),
    ("unknown_invite", lambda p, i: i is None, Binding.UNKNOWN_INVITE, False),
    (
        "wrong_window",
        lambda p, i: i is not None and i.window_id != p.window_id,
        Binding.WRONG_WINDOW,
        False,
    ),
    ("paused", lambda p, i: bool(p.flags & FLAG_PAUSED), Binding.PAUSED, True),
    ("repeat_flag", lambda p, i: bool(p.flags & FLAG_REPEAT), Binding.REPEAT, True),
    ("already_counted", lambda p, i: i is not None and i.counted, Binding.REPEAT, True),
    (
        "cancelled",
        lambda p, i: i is not None and i.close_reason == "cancelled",
        Binding.CANCELLED,
        True,
    ),
    ("superseded", lambda p, i: _closed_before("superseded", p, i), Binding.SUPERSEDED, True),
    ("late", lambda p, i: i is not None and p.press_ms > i.deadline_ms, Binding.EXPIRED, True),
    ("first_press", lambda p, i: True, Binding.COUNTED, True),
)

# A counted press moves its case: finished -> rated, or expired -> rated (late arrival).
_COUNT_EVENT = {S.FINISHED: E.RATE, S.EXPIRED: E.RATE_LATE}


def judge(press: Press, invite: InviteView | None, *, fast_press_ms: int) -> Verdict:
    """The verdict on one press (pure; RULES decide)."""
    for name, holds, binding, bound in RULES:
        if not holds(press, invite):
            continue
        if binding is not Binding.COUNTED:
            return Verdict(name, binding, bound, None)
        assert invite is not None
        event = _COUNT_EVENT.get(invite.case_state)
        if event is None:  # the case cannot take a rating: keep the press, count nothing
            return Verdict("case_" + invite.case_state.value, Binding.REPEAT, True, None)
        fast = press.press_ms - invite.opened_ms < fast_press_ms
        return Verdict(name, binding, bound, event, too_fast=fast)
    raise AssertionError("RULES ends with a rule that always holds")
