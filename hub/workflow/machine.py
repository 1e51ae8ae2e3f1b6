"""The work order state machine, as data. Everything that changes a work order's state
is decided here, by ``check``; the service only stores what ``check`` returned.

One row per (state, action): the next state, the roles that may take the action and the
fields the action must carry. A missing row is an error naming the state and the action
(STYLE.md, after h11). Conditions that depend on the order rather than the state (an
anonymous 差评 cannot be called back or given feedback; one appeal per order) are the row's
``only`` guard. docs/hub-operator.md draws its table from ``TRANSITIONS``
(tests/hub/test_workflow.py checks every row, allowed and refused).

The flow (DOMAIN.md, steps 1-5):
  callback → verify (valid / 误评 / 恶意) → rectify (or extend: ledger) → report form
  → feedback to the rater → the one follow-up rating closes, or reopens when unhappy.
An anonymous 差评 starts at verification and closes after the report form (no callback,
no feedback: nobody to call). Appeal by the rated staff or department after a valid
verification; an upheld appeal excludes the rating like 误评.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.errors import Msg
from hub.users.roles import Role


class State(StrEnum):
    CALLBACK = "callback"  # 待回访
    VERIFYING = "verifying"  # 待核实
    RECTIFYING = "rectifying"  # 整改中
    APPEALED = "appealed"  # 申诉复核中
    REPORTING = "reporting"  # 待提交整改报告单
    FEEDBACK = "feedback"  # 待反馈评价人
    FOLLOW_UP = "follow_up"  # 已反馈，等待追评
    CLOSED = "closed"  # 已办结
    EXCLUDED = "excluded"  # 误评/恶意，已剔除


STATE_ZH = {
    State.CALLBACK: "待回访",
    State.VERIFYING: "待核实",
    State.RECTIFYING: "整改中",
    State.APPEALED: "申诉复核中",
    State.REPORTING: "待提交整改报告单",
    State.FEEDBACK: "待反馈评价人",
    State.FOLLOW_UP: "等待追评",
    State.CLOSED: "已办结",
    State.EXCLUDED: "已剔除（误评/恶意）",
}

TERMINAL = frozenset({State.CLOSED, State.EXCLUDED})
OPEN_STATES = tuple(s for s in State if s not in TERMINAL)


class Action(StrEnum):
    CALLBACK = "callback"  # 回访: the unit reached the rater
    VERIFY_VALID = "verify_valid"  # 有效差评
    VERIFY_MISTAKEN = "verify_mistaken"  # 误评
    VERIFY_MALICIOUS = "verify_malicious"  # 恶意评价
    RECTIFY = "rectify"  # 整改完成 (立行立改 / 台账整改 / 解释说明)
    EXTEND = "extend"  # 台账延期: a ledger entry with a reason and a new deadline
    APPEAL = "appeal"  # 申诉 by the rated staff or department
    APPEAL_UPHOLD = "appeal_uphold"  # 申诉成立: the rating is excluded
    APPEAL_REJECT = "appeal_reject"  # 申诉不成立: back to rectification
    REPORT = "report"  # 核查整改情况报告单
    FEEDBACK = "feedback"  # 反馈评价人
    FOLLOW_UP_SATISFIED = "follow_up_satisfied"  # the follow-up rating is not a 差评
    FOLLOW_UP_UNHAPPY = "follow_up_unhappy"  # the follow-up is a 差评: reopened
    FOLLOW_UP_RECORDED = "follow_up_recorded"  # unhappy, where the policy does not reopen
    CLOSE_NO_FOLLOW_UP = "close_no_follow_up"  # the rater gave no follow-up
    ROUTE = "route"  # route to (another) responsible department


class Guard(StrEnum):
    REAL_NAME = "real_name"  # the rater can be called back
    ANONYMOUS = "anonymous"
    NOT_APPEALED = "not_appealed"  # one appeal per order


@dataclass(frozen=True)
class Transition:
    state: State
    action: Action
    next: State  # None-free: ROUTE and EXTEND keep the state
    roles: frozenset[Role]
    fields: tuple[str, ...]  # required, non-empty
    only: Guard | None = None


A, D, H = Role.ADMIN, Role.DEPT_HANDLER, Role.HOTLINE_VERIFIER
VERIFY_FIELDS = ("reason", "evidence", "approved_by")


def _t(
    state: State,
    action: Action,
    nxt: State,
    roles: tuple[Role, ...],
    fields: tuple[str, ...] = ("reason",),
    only: Guard | None = None,
) -> Transition:
    return Transition(state, action, nxt, frozenset(roles), fields, only)


_ROWS = [
    _t(State.CALLBACK, Action.CALLBACK, State.VERIFYING, (D, H), ("reason",), Guard.REAL_NAME),
    _t(State.VERIFYING, Action.VERIFY_VALID, State.RECTIFYING, (H, A), VERIFY_FIELDS),
    _t(State.VERIFYING, Action.VERIFY_MISTAKEN, State.EXCLUDED, (H, A), VERIFY_FIELDS),
    _t(State.VERIFYING, Action.VERIFY_MALICIOUS, State.EXCLUDED, (H, A), VERIFY_FIELDS),
    _t(State.RECTIFYING, Action.RECTIFY, State.REPORTING, (D,), ("reason", "mode")),
    _t(State.RECTIFYING, Action.EXTEND, State.RECTIFYING, (D,), ("reason", "new_due_date")),
    _t(
        State.RECTIFYING,
        Action.APPEAL,
        State.APPEALED,
        (D,),
        ("reason", "evidence", "appellant"),
        Guard.NOT_APPEALED,
    ),
    _t(State.APPEALED, Action.APPEAL_UPHOLD, State.EXCLUDED, (A,), ("reason", "outcome")),
    _t(State.APPEALED, Action.APPEAL_REJECT, State.RECTIFYING, (A,), ("reason",)),
    _t(State.REPORTING, Action.REPORT, State.FEEDBACK, (D,), ("reason", "report"), Guard.REAL_NAME),
    _t(State.REPORTING, Action.REPORT, State.CLOSED, (D,), ("reason", "report"), Guard.ANONYMOUS),
    _t(State.FEEDBACK, Action.FEEDBACK, State.FOLLOW_UP, (D, H), ("reason", "channel")),
    _t(State.FOLLOW_UP, Action.FOLLOW_UP_SATISFIED, State.CLOSED, (Role.SYSTEM,), ()),
    _t(State.FOLLOW_UP, Action.FOLLOW_UP_UNHAPPY, State.RECTIFYING, (Role.SYSTEM,), ()),
    _t(State.FOLLOW_UP, Action.FOLLOW_UP_RECORDED, State.CLOSED, (Role.SYSTEM,), ()),
    _t(State.FOLLOW_UP, Action.CLOSE_NO_FOLLOW_UP, State.CLOSED, (H, A), ("reason",)),
] + [_t(s, Action.ROUTE, s, (A, H), ("reason", "dept_code")) for s in OPEN_STATES]

# (state, action) → the rows for it (two only where a guard splits them: REPORT).
TRANSITIONS: dict[tuple[State, Action], tuple[Transition, ...]] = {}
for _row in _ROWS:
    TRANSITIONS[(_row.state, _row.action)] = (*TRANSITIONS.get((_row.state, _row.action), ()), _row)

# The outcome of an exclusion, as rating_exclusions.outcome.
EXCLUDES = {
    Action.VERIFY_MISTAKEN: "mistaken",
    Action.VERIFY_MALICIOUS: "malicious",
}
EXTENSION_MODES = ("immediate", "ledger", "explanation")  # 立行立改 / 台账整改 / 解释说明


class WorkflowError(Exception):
    """A refused move: names the state and the action (and the role or field)."""

    def __init__(self, status: int, code: str, message: Msg, field: str | None = None) -> None:
        super().__init__(message.en)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Facts:
    """What the guards need to know about the order."""

    anonymous: bool
    appeals: int


def holds(guard: Guard | None, facts: Facts) -> bool:
    if guard is None:
        return True
    if guard is Guard.REAL_NAME:
        return not facts.anonymous
    if guard is Guard.ANONYMOUS:
        return facts.anonymous
    return facts.appeals == 0


def check(
    state: State, action: Action, role: Role, facts: Facts, fields: dict[str, object]
) -> Transition:
    """The transition ``action`` takes from ``state`` for ``role``, or WorkflowError."""
    rows = TRANSITIONS.get((state, action))
    if not rows:
        raise WorkflowError(
            409,
            "workflow.illegal_transition",
            Msg(
                "工单状态为「{zh}」（{s}），不能执行 {a}",
                "a work order in state {s} cannot take action {a}",
            ).fill(zh=STATE_ZH[state], s=state.value, a=action.value),
        )
    if role not in rows[0].roles:
        raise WorkflowError(
            403,
            "workflow.role_not_allowed",
            Msg(
                "角色 {r} 不能在「{zh}」状态执行 {a}（允许：{ok}）",
                "role {r} may not take action {a} in state {s} (allowed: {ok})",
            ).fill(
                r=role.value,
                zh=STATE_ZH[state],
                s=state.value,
                a=action.value,
                ok=", ".join(sorted(rows[0].roles)),
            ),
        )
    row = next((r for r in rows if holds(r.only, facts)), None)
    if row is None:
        guard = rows[0].only
        raise WorkflowError(
            409,
            f"workflow.guard_{guard}",
            {
                Guard.REAL_NAME: Msg(
                    "匿名差评无法回访或反馈，不能执行 {a}",
                    "an anonymous 差评 cannot be called back or given feedback ({a})",
                ),
                Guard.ANONYMOUS: Msg("仅适用于匿名差评：{a}", "only for anonymous 差评: {a}"),
                Guard.NOT_APPEALED: Msg(
                    "该工单已申诉过一次，不能再次申诉（{a}）",
                    "this work order has already been appealed once ({a})",
                ),
            }[guard or Guard.NOT_APPEALED].fill(a=action.value),
        )
    for name in row.fields:
        value = fields.get(name)
        if value is None or value == "" or value == []:
            raise WorkflowError(
                422,
                "workflow.field_required",
                Msg(
                    "在「{zh}」状态执行 {a} 必须填写 {f}",
                    "action {a} in state {s} requires the field {f}",
                ).fill(zh=STATE_ZH[state], s=state.value, a=action.value, f=name),
                field=name,
            )
    return row


def markdown_table() -> str:
    """The transition table as Markdown (docs/hub-operator.md embeds it; a test compares)."""
    lines = [
        "| state | action | next state | roles | required fields | only when |",
        "|---|---|---|---|---|---|",
    ]
    for rows in TRANSITIONS.values():
        for r in rows:
            lines.append(
                f"| `{r.state}` {STATE_ZH[r.state]} | `{r.action}` | `{r.next}` "
                f"| {', '.join(sorted(r.roles))} | {', '.join(r.fields) or '—'} "
                f"| {r.only or '—'} |"
            )
    return "\n".join(lines) + "\n"
