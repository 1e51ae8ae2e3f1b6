"""The binding engine's tables: every case transition, every illegal pair, every verdict rule."""

from __future__ import annotations

import itertools

import pytest

from edge_agent.binding import (
    CASE_TRANSITIONS,
    FLAG_PAUSED,
    FLAG_REPEAT,
    FLAG_UNSOLICITED,
    RULES,
    Binding,
    CaseEvent,
    CaseState,
    CaseTransitionError,
    InviteView,
    Press,
    judge,
    next_state,
)

S, E = CaseState, CaseEvent


@pytest.mark.parametrize(("state", "event"), list(CASE_TRANSITIONS))
def test_every_transition_row(state: CaseState, event: CaseEvent) -> None:
    assert next_state("C-1", state, event) is CASE_TRANSITIONS[(state, event)]


ILLEGAL = [p for p in itertools.product(CaseState, CaseEvent) if p not in CASE_TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_transitions_name_state_and_event(state: CaseState, event: CaseEvent) -> None:
    with pytest.raises(CaseTransitionError) as info:
        next_state("C-9", state, event)
    e = info.value
    assert e.code == "case.illegal_transition" and e.state is state and e.event is event
    assert "C-9" in e.message.zh and state.value in e.message.zh and event.value in e.message.zh
    assert state.value in e.message.en and event.value in e.message.en


def test_lifecycle_paths() -> None:
    """The documented paths through the table, end to end."""
    paths = [
        [E.OPEN, E.FINISH, E.RATE],
        [E.OPEN, E.FINISH, E.EXPIRE, E.RATE_LATE],
        [E.OPEN, E.FINISH, E.CANCEL],
        [E.OPEN, E.CANCEL],
    ]
    ends = []
    for path in paths:
        state = S.NEW
        for event in path:
            state = next_state("C", state, event)
        ends.append(state)
    assert ends == [S.RATED, S.RATED, S.CANCELLED, S.CANCELLED]


T0 = 1_000_000


def invite(**over: object) -> InviteView:
    base: dict[str, object] = {
        "invite_id": 7,
        "case_no": "C-1",
        "window_id": "W01",
        "staff_id": "S001",
        "opened_ms": T0,
        "deadline_ms": T0 + 60_000,
        "closed_ms": None,
        "close_reason": None,
        "counted": False,
        "case_state": S.FINISHED,
    }
    base.update(over)
    return InviteView(**base)  # type: ignore[arg-type]


def press(at: int = T0 + 5000, flags: int = 0, invite_id: int | None = 7, window: str = "W01"):
    return Press(invite_id=invite_id, flags=flags, press_ms=at, window_id=window)


# (name, press, invite, expected rule, binding, bound, case event, too_fast)
CASES = [
    ("first press", press(), invite(), "first_press", Binding.COUNTED, True, E.RATE, False),
    (
        "first press, too fast",
        press(at=T0 + 400),
        invite(),
        "first_press",
        Binding.COUNTED,
        True,
        E.RATE,
        True,
    ),
    (
        "repeat flagged by the device",
        press(flags=FLAG_REPEAT),
        invite(),
        "repeat_flag",
        Binding.REPEAT,
        True,
        None,
        False,
    ),
    (
        "repeat: another device counted first",
        press(),
        invite(counted=True, closed_ms=T0 + 2000, close_reason="rated", case_state=S.RATED),
        "already_counted",
        Binding.REPEAT,
        True,
        None,
        False,
    ),
    (
        "unsolicited: no invite named",
        press(invite_id=None),
        None,
        "no_invite",
        Binding.UNSOLICITED,
        False,
        None,
        False,
    ),
    (
        "unsolicited: flagged",
        press(flags=FLAG_UNSOLICITED),
        invite(),
        "no_invite",
        Binding.UNSOLICITED,
        False,
        None,
        False,
    ),
    (
        "paused",
        press(flags=FLAG_PAUSED),
        invite(),
        "paused",
        Binding.PAUSED,
        True,
        None,
        False,
    ),
    (
        "expired invite: pressed after the window",
        press(at=T0 + 61_000),
        invite(),
        "late",
        Binding.EXPIRED,
        True,
        None,
        False,
    ),
    (
        "cancelled case",
        press(),
        invite(closed_ms=T0 + 1000, close_reason="cancelled", case_state=S.CANCELLED),
        "cancelled",
        Binding.CANCELLED,
        True,
        None,
        False,
    ),
    (
        "superseded: pressed after the next case was invited",
        press(at=T0 + 9000),
        invite(closed_ms=T0 + 8000, close_reason="superseded", case_state=S.EXPIRED),
        "superseded",
        Binding.SUPERSEDED,
        True,
        None,
        False,
    ),
    (
        "pressed before the next invite, arrived after: counts, late",
        press(at=T0 + 7000),
        invite(closed_ms=T0 + 8000, close_reason="superseded", case_state=S.EXPIRED),
        "first_press",
        Binding.COUNTED,
        True,
        E.RATE_LATE,
        False,
    ),
    (
        "pressed in time, arrived after the sweeper expired it",
        press(at=T0 + 59_000),
        invite(closed_ms=T0 + 95_000, close_reason="expired", case_state=S.EXPIRED),
        "first_press",
        Binding.COUNTED,
        True,
        E.RATE_LATE,
        False,
    ),
    (
        "unknown invite",
        press(invite_id=99),
        None,
        "unknown_invite",
        Binding.UNKNOWN_INVITE,
        False,
        None,
        False,
    ),
    (
        "another window's invite",
        press(window="W02"),
        invite(),
        "wrong_window",
        Binding.WRONG_WINDOW,
        False,
        None,
        False,
    ),
]


@pytest.mark.parametrize(
    ("press_", "invite_", "rule", "binding", "bound", "event", "fast"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_verdicts(
    press_: Press,
    invite_: InviteView | None,
    rule: str,
    binding: Binding,
    bound: bool,
    event: CaseEvent | None,
    fast: bool,
) -> None:
    v = judge(press_, invite_, fast_press_ms=1000)
    assert (v.rule, v.binding, v.bound, v.case_event, v.too_fast) == (
        rule,
        binding,
        bound,
        event,
        fast,
    )


def test_every_rule_is_exercised() -> None:
    used = {c[3] for c in CASES}
    assert used == {name for name, *_ in RULES}


def test_counted_press_on_a_rated_case_is_never_counted_twice() -> None:
    v = judge(press(), invite(case_state=S.RATED), fast_press_ms=1000)
    assert v.binding is Binding.REPEAT and v.case_event is None


def test_level_never_changes_the_verdict() -> None:
    """DOMAIN.md: nothing may drop or alter a rating because of its level; the press does
    not even carry its level into the judge."""
    assert "level" not in Press.__dataclass_fields__
