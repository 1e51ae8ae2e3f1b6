"""The 差评 workflow: every row of the transition table (allowed and refused, by role),
opening from ingest, deadlines on real holiday periods, the whole loop with a reopen,
exclusions, warnings, revisit sampling; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from hub.db.schema import (
    audit_log,
    rating_exclusions,
    ratings,
    revisit_samples,
    work_order_steps,
    work_orders,
)
from hub.users.roles import Role
from hub.users.service import SYSTEM, Principal
from hub.workflow import machine, service
from hub.workflow.machine import Action, Guard, State, WorkflowError
from tests.hub.conftest import Hall, HubDb
from tests.hub.helpers import DEPT, DEPT_2, rating
from tests.hub.test_workflow_support import (
    BY_ROLE,
    CST,
    NINGBO,
    PRINCIPALS,
    SHANDONG,
    add_users,
    bad,
    count_orders,
    ingest,
    order_for,
)

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 CST, an ordinary working day

# Fields that satisfy every row's requirements.
FULL: dict[str, Any] = {
    "reason": "已电话联系评价人，核实情况",
    "evidence": ["录音 2026-03-02-001"],
    "approved_by": "hotline2",
    "mode": "immediate",
    "new_due_date": "2026-04-30",
    "appellant": "窗口 w1 工作人员",
    "outcome": "mistaken",
    "report": "核查整改情况报告单：已补充告知材料清单",
    "channel": "电话",
    "dept_code": DEPT,
}


@pytest.fixture
def setup(db: HubDb, hall: Hall) -> HubDb:
    add_users(db.engine)
    return db


def _snapshot(db: HubDb, order_id: int) -> tuple[Any, ...]:
    with db.engine.connect() as c:
        order = c.execute(select(work_orders).where(work_orders.c.id == order_id)).one()
        return (
            tuple(order),
            c.execute(select(func.count()).select_from(work_order_steps)).scalar_one(),
            c.execute(select(func.count()).select_from(audit_log)).scalar_one(),
            c.execute(select(func.count()).select_from(rating_exclusions)).scalar_one(),
        )


def _force(db: HubDb, order_id: int, state: State, **values: Any) -> None:
    with db.engine.begin() as c:
        c.execute(
            update(work_orders).where(work_orders.c.id == order_id).values(state=state, **values)
        )


def _act(db: HubDb, order_id: int, action: Action, who: Principal, **fields: Any) -> Any:
    with db.engine.begin() as c:
        return service.act(
            connection=c,
            order_id=order_id,
            action=action,
            who=who,
            fields=fields,
            config=NINGBO,
            now=NOW,
        )


ALL_ROWS = [r for rows in machine.TRANSITIONS.values() for r in rows]
ALL_ROLES = [Role.ADMIN, Role.DEPT_HANDLER, Role.HOTLINE_VERIFIER, Role.AUDITOR, Role.SYSTEM]


def test_the_table_is_complete_and_consistent() -> None:
    # every open state has a way forward; terminal states have none
    for state in State:
        outgoing = [r for r in ALL_ROWS if r.state is state and r.action is not Action.ROUTE]
        assert bool(outgoing) == (state not in machine.TERMINAL), state
    # every non-terminal state is reachable from an opening state
    reached = {State.CALLBACK, State.VERIFYING}
    for _ in State:
        reached |= {r.next for r in ALL_ROWS if r.state in reached}
    assert reached == set(State)
    # verification outcomes need evidence and an approver (issue 5)
    for action in (Action.VERIFY_VALID, Action.VERIFY_MISTAKEN, Action.VERIFY_MALICIOUS):
        (row,) = machine.TRANSITIONS[(State.VERIFYING, action)]
        assert {"evidence", "approved_by", "reason"} <= set(row.fields)
    # auditors are read-only: no row lets them act
    assert not [r for r in ALL_ROWS if Role.AUDITOR in r.roles]


def test_a_missing_row_names_state_and_action() -> None:
    facts = machine.Facts(anonymous=False, appeals=0)
    with pytest.raises(WorkflowError, match="state closed cannot take action callback") as e:
        machine.check(State.CLOSED, Action.CALLBACK, Role.ADMIN, facts, FULL)
    assert e.value.status == 409
    with pytest.raises(WorkflowError, match="role auditor may not take action callback"):
        machine.check(State.CALLBACK, Action.CALLBACK, Role.AUDITOR, facts, FULL)
    with pytest.raises(WorkflowError, match="requires the field evidence"):
        machine.check(
            State.VERIFYING, Action.VERIFY_VALID, Role.HOTLINE_VERIFIER, facts, {"reason": "x"}
        )


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda r: f"{r.state}-{r.action}-{r.only}")
def test_every_transition_allowed_and_refused_by_role(
    setup: HubDb, row: machine.Transition
) -> None:
    db = setup
    anonymous = row.only is Guard.ANONYMOUS
    ingest(db.engine, [bad(1, anonymous=anonymous)], NOW)
    order = order_for(db.engine, "NB-2026-000001")
    _force(db, order.id, row.state)
    fields = dict(FULL)
    if Role.SYSTEM in row.roles:  # ingest's own moves carry no form
        fields = {}
    # refused for every other role, and a refusal changes nothing
    for role in ALL_ROLES:
        if role in row.roles:
            continue
        who = BY_ROLE.get(role, SYSTEM)
        before = _snapshot(db, order.id)
        with pytest.raises(WorkflowError) as refused:
            _act(db, order.id, row.action, who, **fields)
        assert refused.value.status == 403, (role, refused.value.code)
        assert _snapshot(db, order.id) == before
    # a missing required field is refused too, naming it
    for name in row.fields:
        before = _snapshot(db, order.id)
        who = BY_ROLE.get(sorted(row.roles)[0], SYSTEM)
        with pytest.raises(WorkflowError, match=f"requires the field {name}"):
            _act(db, order.id, row.action, who, **{k: v for k, v in fields.items() if k != name})
        assert _snapshot(db, order.id) == before
    # allowed for each allowed role (reset to the row's state between roles)
    for role in sorted(row.roles):
        _force(db, order.id, row.state, appeals=0)
        who = BY_ROLE.get(role, SYSTEM)
        steps_before = _snapshot(db, order.id)[1]
        after = _act(db, order.id, row.action, who, **fields)
        assert after.state == row.next.value
        with db.engine.connect() as c:
            step = c.execute(
                select(work_order_steps).order_by(work_order_steps.c.id.desc()).limit(1)
            ).one()
            audited = c.execute(
                select(audit_log.c.actor, audit_log.c.action).order_by(audit_log.c.id.desc())
            ).first()
        assert step.action == row.action.value and step.actor == who.actor
        assert step.from_state == row.state.value and step.to_state == row.next.value
        assert _snapshot(db, order.id)[1] == steps_before + 1
        assert audited == (who.actor, f"workflow.{row.action.value}")
        if row.next is State.EXCLUDED:
            with db.engine.begin() as c:  # let the next allowed role exclude again
                c.execute(rating_exclusions.delete())


def test_guards_anonymous_and_one_appeal(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1, anonymous=True), bad(2)], NOW)
    anon = order_for(db.engine, "NB-2026-000001")
    named = order_for(db.engine, "NB-2026-000002")
    assert (anon.state, anon.anonymous) == ("verifying", True)  # no callback possible
    assert (named.state, named.anonymous) == ("callback", False)
    _force(db, anon.id, State.CALLBACK)
    with pytest.raises(WorkflowError) as e:
        _act(db, anon.id, Action.CALLBACK, PRINCIPALS["hotline"], **FULL)
    assert e.value.code == "workflow.guard_real_name"
    _force(db, named.id, State.RECTIFYING, appeals=1)
    before = _snapshot(db, named.id)
    with pytest.raises(WorkflowError) as e:
        _act(db, named.id, Action.APPEAL, PRINCIPALS["handler"], **FULL)
    assert e.value.code == "workflow.guard_not_appealed"
    assert _snapshot(db, named.id) == before


def test_only_bad_case_ratings_open_orders_once(setup: HubDb) -> None:
    db = setup
    items = [
        rating(1, level=1),
        rating(2, level=4, reasons=[501]),  # 不满意: a 差评
        bad(3, flags=["repeat"]),  # only the first press counts
        bad(4, flags=["unsolicited"]),  # no case
        bad(5, flags=["reason_skipped"]),  # still a 差评
        rating(6, level=3),
    ]
    ingest(db.engine, items, NOW)
    ingest(db.engine, items, NOW + timedelta(minutes=1))  # resent: duplicates
    with db.engine.begin() as c:
        assert service.open_missing(connection=c, config=NINGBO, now=NOW) == []
    with db.engine.connect() as c:
        cases = sorted(c.execute(select(work_orders.c.case_no)).scalars())
    assert cases == ["NB-2026-000002", "NB-2026-000005"]
    order = order_for(db.engine, "NB-2026-000002")
    assert order.dept_code == DEPT and order.policy == "ningbo@2025.1"


def test_sweep_opens_what_ingest_did_not(setup: HubDb) -> None:
    db = setup
    with db.engine.begin() as c:  # stored without the hook (e.g. before migration 0003)
        from hub.ingest.service import ingest_ratings

        ingest_ratings(connection=c, hall_id="hall-001", items_in=[bad(7)], now=NOW, actor="t")
    assert count_orders(db.engine) == 0
    with db.engine.begin() as c:
        opened = service.open_missing(connection=c, config=NINGBO, now=NOW)
    assert len(opened) == 1 and count_orders(db.engine) == 1


# Deadlines counted by hand from the State Council notices (Ningbo: callback 1 working day,
# rectification and feedback 15 working days; the event day does not count):
# - 2025 National Day: Oct 1-8 off, Sun Sep 28 and Sat Oct 11 worked (调休).
#   A 差评 stored Tue Sep 30: callback by Thu Oct 9; rectification day 3 is Sat Oct 11,
#   day 15 is Tue Oct 28.
# - 2026 Spring Festival: Feb 15-23 off, Sat Feb 14 and Sat Feb 28 worked.
#   Stored Fri Feb 13: callback by Sat Feb 14 (a 调休 working Saturday); 15 working days:
#   Feb 14, 24, 25, 26, 27, 28, Mar 2, 3, 4, 5, 6, 9, 10, 11, 12 → Thu Mar 12.
#   Stored Sat Feb 14 (worked): callback by Tue Feb 24, the first day after the holiday.
@pytest.mark.parametrize(
    ("stored", "callback", "rectify", "rectify_warn"),
    [
        (
            datetime(2025, 9, 30, 10, tzinfo=CST),
            date(2025, 10, 9),
            date(2025, 10, 28),
            date(2025, 10, 23),
        ),
        (
            datetime(2026, 2, 13, 16, tzinfo=CST),
            date(2026, 2, 14),
            date(2026, 3, 12),
            date(2026, 3, 9),
        ),
        (
            datetime(2026, 2, 14, 9, tzinfo=CST),
            date(2026, 2, 24),
            date(2026, 3, 13),
            date(2026, 3, 10),
        ),
    ],
)
def test_deadlines_on_real_holidays(
    setup: HubDb, stored: datetime, callback: date, rectify: date, rectify_warn: date
) -> None:
    db = setup
    ingest(db.engine, [bad(1)], stored)
    order = order_for(db.engine, "NB-2026-000001")

    def end(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=CST) + timedelta(days=1)

    assert order.callback_due_at == end(callback)
    assert order.rectify_due_at == end(rectify) == order.feedback_due_at
    assert order.rectify_warn_at == end(rectify_warn) - timedelta(days=1)

    # warnings move with the clock: pending, upcoming on the last day, overdue at 24:00
    def state(now: datetime) -> str:
        return service.deadline_state(order, now)[2]

    assert state(stored) in ("pending", "upcoming")
    assert state(end(callback) - timedelta(hours=1)) == "upcoming"
    assert state(end(callback)) == "overdue"


def test_a_year_the_calendar_does_not_know_is_an_error_not_a_guess(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1)], datetime(2027, 3, 1, 10, tzinfo=CST))  # 2027: no table yet
    order = order_for(db.engine, "NB-2026-000001")
    assert order.callback_due_at is None and "2027" in order.deadline_error
    with db.engine.connect() as c:
        listed = service.warnings(connection=c, who=PRINCIPALS["admin"], now=NOW)
    assert [o.id for o in listed] == [order.id]  # shown to operators, not hidden
    # extending into 2027 is refused clearly as well
    _force(db, order.id, State.RECTIFYING)
    with pytest.raises(WorkflowError) as e:
        _act(
            db,
            order.id,
            Action.EXTEND,
            PRINCIPALS["handler"],
            reason="台账",
            new_due_date="2027-05-06",
        )
    assert e.value.field == "new_due_date" and "2027" in e.value.message.en


def test_ledger_extension(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1)], datetime(2026, 2, 13, 16, tzinfo=CST))
    order = order_for(db.engine, "NB-2026-000001")
    _force(db, order.id, State.RECTIFYING)
    handler = PRINCIPALS["handler"]
    for day, code in [
        ("2026-03-01", "workflow.extension_not_later"),  # before the current deadline
        ("2026-03-22", "workflow.extension_not_workday"),  # a Sunday
        ("2026-02-30", "workflow.bad_date"),
    ]:
        before = _snapshot(db, order.id)
        with pytest.raises(WorkflowError) as e:
            _act(db, order.id, Action.EXTEND, handler, reason="台账延期", new_due_date=day)
        assert e.value.code == code
        assert _snapshot(db, order.id) == before
    after = _act(
        db, order.id, Action.EXTEND, handler, reason="需采购设备", new_due_date="2026-04-03"
    )
    assert after.state == "rectifying"
    assert after.rectify_due_at == datetime(2026, 4, 4, tzinfo=CST)
    # 3 working days before Fri Apr 3 is Tue Mar 31 (no holiday in between)
    assert after.rectify_warn_at == datetime(2026, 3, 31, tzinfo=CST)


def _walk_to_follow_up(db: HubDb, order_id: int) -> None:
    steps: list[tuple[Action, str, dict[str, Any]]] = [
        (Action.CALLBACK, "handler", {"reason": "已回访"}),
        (
            Action.VERIFY_VALID,
            "hotline",
            {"reason": "属实", "evidence": ["录音 1"], "approved_by": "hotline2"},
        ),
        (Action.RECTIFY, "handler", {"reason": "已整改", "mode": "immediate"}),
        (Action.REPORT, "handler", {"reason": "报告", "report": "已补充清单"}),
        (Action.FEEDBACK, "hotline", {"reason": "已告知", "channel": "电话"}),
    ]
    for action, who, fields in steps:
        _act(db, order_id, action, PRINCIPALS[who], **fields)


def test_full_loop_and_reopen_on_an_unhappy_follow_up(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1)], NOW)
    order = order_for(db.engine, "NB-2026-000001")
    _walk_to_follow_up(db, order.id)
    assert order_for(db.engine, "NB-2026-000001").state == "follow_up"
    later = NOW + timedelta(days=3)
    follow_up = rating(900, case_no="NB-2026-000001", level=4, reasons=[502], assess_number=2)
    ingest(db.engine, [follow_up], later)
    reopened = order_for(db.engine, "NB-2026-000001")
    assert (reopened.state, reopened.reopened) == ("rectifying", 1)
    assert reopened.rectify_due_at > order.rectify_due_at  # a fresh period from the reopen
    assert count_orders(db.engine) == 1  # the follow-up 差评 reopened; it opened nothing new
    # second round: a satisfied follow-up closes the order
    for action, who, fields in [
        (Action.RECTIFY, "handler", {"reason": "再次整改", "mode": "ledger"}),
        (Action.REPORT, "handler", {"reason": "报告", "report": "第二次报告"}),
        (Action.FEEDBACK, "handler", {"reason": "已告知", "channel": "短信"}),
    ]:
        _act(db, order.id, action, PRINCIPALS[who], **fields)
    ingest(db.engine, [rating(901, case_no="NB-2026-000001", level=2, assess_number=2)], later)
    closed = order_for(db.engine, "NB-2026-000001")
    assert closed.state == "closed" and closed.closed_at is not None
    with db.engine.connect() as c:
        actions = list(
            c.execute(
                select(work_order_steps.c.action)
                .where(work_order_steps.c.work_order_id == order.id)
                .order_by(work_order_steps.c.id)
            ).scalars()
        )
    assert actions == [
        "open", "callback", "verify_valid", "rectify", "report", "feedback",
        "follow_up_unhappy", "rectify", "report", "feedback", "follow_up_satisfied",
    ]  # fmt: skip


def test_anonymous_order_closes_after_the_report(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1, anonymous=True)], NOW)
    order = order_for(db.engine, "NB-2026-000001")
    _act(
        db,
        order.id,
        Action.VERIFY_VALID,
        PRINCIPALS["hotline"],
        reason="核实",
        evidence=["监控"],
        approved_by="admin",
    )
    _act(db, order.id, Action.RECTIFY, PRINCIPALS["handler"], reason="整改", mode="explanation")
    done = _act(db, order.id, Action.REPORT, PRINCIPALS["handler"], reason="报告", report="已解释")
    assert done.state == "closed"
    with db.engine.connect() as c:
        counts = service.summary(connection=c, who=PRINCIPALS["auditor"])
    assert counts == {"real_name": {}, "anonymous": {"closed": 1}}


@pytest.mark.parametrize("action", [Action.VERIFY_MISTAKEN, Action.VERIFY_MALICIOUS])
def test_exclusion_keeps_the_rating_and_records_the_decision(setup: HubDb, action: Action) -> None:
    db = setup
    ingest(db.engine, [bad(1)], NOW)
    order = order_for(db.engine, "NB-2026-000001")
    with db.engine.connect() as c:
        rating_before = c.execute(select(ratings).where(ratings.c.id == order.rating_id)).one()
    _act(db, order.id, Action.CALLBACK, PRINCIPALS["hotline"], reason="已回访")
    # the approver must be someone else, active, and allowed to approve
    for approver in ("hotline", "handler", "nobody"):
        with pytest.raises(WorkflowError) as e:
            _act(
                db,
                order.id,
                action,
                PRINCIPALS["hotline"],
                reason="误按",
                evidence=["录音"],
                approved_by=approver,
            )
        assert e.value.code == "workflow.bad_approver"
    _act(
        db,
        order.id,
        action,
        PRINCIPALS["hotline"],
        reason="评价人确认误按",
        evidence=["录音 7"],
        approved_by="admin",
    )
    with db.engine.connect() as c:
        rating_after = c.execute(select(ratings).where(ratings.c.id == order.rating_id)).one()
        exclusion = c.execute(select(rating_exclusions)).one()
        listed = service.exclusions(connection=c)
    assert rating_after == rating_before  # never touched
    assert exclusion.outcome == machine.EXCLUDES[action]
    assert (exclusion.decided_by, exclusion.approved_by) == ("user:hotline", "user:admin")
    assert json.loads(exclusion.evidence) == ["录音 7"]
    assert [e.rating_id for e in listed] == [order.rating_id]
    assert order_for(db.engine, "NB-2026-000001").state == "excluded"


def test_appeal_upheld_excludes(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1)], NOW)
    order = order_for(db.engine, "NB-2026-000001")
    _act(db, order.id, Action.CALLBACK, PRINCIPALS["handler"], reason="已回访")
    _act(
        db,
        order.id,
        Action.VERIFY_VALID,
        PRINCIPALS["hotline"],
        reason="属实",
        evidence=["录音"],
        approved_by="hotline2",
    )
    _act(
        db,
        order.id,
        Action.APPEAL,
        PRINCIPALS["handler"],
        reason="办件材料齐全",
        evidence=["材料清单"],
        appellant="窗口 w1",
    )
    with pytest.raises(WorkflowError) as e:
        _act(
            db, order.id, Action.APPEAL_UPHOLD, PRINCIPALS["admin"], reason="成立", outcome="bogus"
        )
    assert e.value.code == "workflow.bad_outcome"
    _act(
        db,
        order.id,
        Action.APPEAL_UPHOLD,
        PRINCIPALS["admin"],
        reason="申诉成立",
        outcome="mistaken",
    )
    with db.engine.connect() as c:
        assert c.execute(select(rating_exclusions.c.outcome)).scalar_one() == "mistaken"


def test_department_scope(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1), bad(2, dept_code=DEPT_2)], NOW)
    mine = order_for(db.engine, "NB-2026-000001")
    theirs = order_for(db.engine, "NB-2026-000002")
    handler = PRINCIPALS["handler"]
    with db.engine.connect() as c:
        total, rows = service.list_orders(connection=c, who=handler, where=service.OrderFilter())
        assert (total, [r.id for r in rows]) == (1, [mine.id])
        with pytest.raises(WorkflowError) as e:
            service.get_order(connection=c, who=handler, order_id=theirs.id)
        assert e.value.status == 404
    before = _snapshot(db, theirs.id)
    with pytest.raises(WorkflowError) as e:
        _act(db, theirs.id, Action.CALLBACK, handler, reason="x")
    assert e.value.status == 403 and _snapshot(db, theirs.id) == before
    # the hotline routes it to this handler's department; now the handler may act
    _act(db, theirs.id, Action.ROUTE, PRINCIPALS["hotline"], reason="责任单位调整", dept_code=DEPT)
    _act(db, theirs.id, Action.CALLBACK, handler, reason="已回访")


def test_stale_version_is_refused(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1)], NOW)
    order = order_for(db.engine, "NB-2026-000001")
    with db.engine.begin() as c, pytest.raises(WorkflowError) as e:
        service.act(
            connection=c, order_id=order.id, action=Action.CALLBACK, who=PRINCIPALS["handler"],
            fields={"reason": "x"}, config=NINGBO, now=NOW, expected_version=order.version + 1,
        )  # fmt: skip
    assert e.value.code == "workflow.version_conflict"


def test_warnings_upcoming_and_overdue(setup: HubDb) -> None:
    db = setup
    stored = datetime(2026, 3, 2, 10, tzinfo=CST)  # Monday
    ingest(db.engine, [bad(1), bad(2), bad(3, dept_code=DEPT_2)], stored)
    first = order_for(db.engine, "NB-2026-000001")
    _act(db, first.id, Action.CALLBACK, PRINCIPALS["handler"], reason="已回访")
    _act(
        db,
        first.id,
        Action.VERIFY_VALID,
        PRINCIPALS["hotline"],
        reason="属实",
        evidence=["录音"],
        approved_by="hotline2",
    )

    def listed(now: datetime, who: str = "admin") -> list[tuple[int, str]]:
        with db.engine.connect() as c:
            rows = service.warnings(connection=c, who=PRINCIPALS[who], now=now)
        return [(o.id, service.deadline_state(o, now)[2]) for o in rows]

    second, third = order_for(db.engine, "NB-2026-000002"), order_for(db.engine, "NB-2026-000003")
    # Monday: the callback limit is Tuesday (its last day is the warning day)
    assert listed(stored) == []
    tuesday = datetime(2026, 3, 3, 9, tzinfo=CST)
    assert listed(tuesday) == [(second.id, "upcoming"), (third.id, "upcoming")]
    assert listed(tuesday, "handler") == [(second.id, "upcoming")]  # scoped
    wednesday = datetime(2026, 3, 4, 0, tzinfo=CST)
    assert listed(wednesday) == [(second.id, "overdue"), (third.id, "overdue")]
    # the rectifying order: 15 working days → Mon Mar 23; warned from Wed Mar 18
    assert listed(datetime(2026, 3, 18, 9, tzinfo=CST))[0] == (first.id, "upcoming")
    assert listed(datetime(2026, 3, 24, 0, tzinfo=CST))[0] == (first.id, "overdue")


def test_revisit_sampling_is_reproducible_and_recorded(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(n) for n in range(1, 24)], NOW, config=SHANDONG)
    period = (datetime(2026, 3, 1, tzinfo=CST), datetime(2026, 4, 1, tzinfo=CST))
    with db.engine.begin() as c:
        with pytest.raises(WorkflowError) as e:  # below the profile's 20 %
            service.draw_revisit_sample(
                connection=c, period_from=period[0], period_to=period[1], config=SHANDONG,
                who=PRINCIPALS["admin"], now=NOW, percent=10,
            )  # fmt: skip
        assert e.value.code == "workflow.bad_sample_share"
    with db.engine.begin() as c:
        sample = service.draw_revisit_sample(
            connection=c, period_from=period[0], period_to=period[1], config=SHANDONG,
            who=PRINCIPALS["admin"], now=NOW,
        )  # fmt: skip
    population, chosen = json.loads(sample.population), json.loads(sample.chosen)
    assert len(population) == 23 and sample.percent == 20
    assert len(chosen) == 5  # ⌈23 × 20 %⌉
    assert set(chosen) <= set(population)
    # anyone can redraw it from the record
    assert service.sample_ids(population, sample.percent, sample.seed) == chosen
    # a different seed gives (almost surely) another sample; the same seed the same one
    assert service.sample_ids(population, 20, "other seed") != chosen or len(population) < 6
    with db.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(revisit_samples)).scalar_one() == 1


def test_steps_and_samples_are_append_only(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1)], NOW)
    for table in ("work_order_steps", "revisit_samples"):
        if table == "revisit_samples":
            with db.engine.begin() as c:
                service.draw_revisit_sample(
                    connection=c, period_from=NOW - timedelta(days=1),
                    period_to=NOW + timedelta(days=1), config=SHANDONG,
                    who=PRINCIPALS["admin"], now=NOW,
                )  # fmt: skip
        for statement in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
            with pytest.raises(Exception, match="append-only"), db.engine.begin() as c:
                c.execute(text(statement))


def test_operator_guide_shows_the_table_from_the_code() -> None:
    from pathlib import Path

    guide = Path(__file__).resolve().parents[2] / "docs" / "hub-operator.md"
    assert machine.markdown_table() in guide.read_text(encoding="utf-8")


def test_an_exclusion_leaves_the_results_and_stays_visible(setup: HubDb) -> None:
    from hub.metrics import excluded_ratings, infer_period, report

    db = setup
    ingest(db.engine, [bad(1), bad(2), rating(3, level=1)], NOW)
    period = infer_period("2026-03")

    def figures() -> tuple[int, int, int]:
        with db.engine.connect() as c:
            total = report(connection=c, period=period, dimension="all").total
        return total.bad, total.excluded, total.uploaded

    assert figures() == (2, 0, 3)
    order = order_for(db.engine, "NB-2026-000001")
    _act(db, order.id, Action.CALLBACK, PRINCIPALS["hotline"], reason="已回访")
    _act(
        db, order.id, Action.VERIFY_MALICIOUS, PRINCIPALS["hotline"],
        reason="同一号码反复恶意差评", evidence=["通话录音 12"], approved_by="admin",
    )  # fmt: skip
    assert figures() == (1, 1, 2)  # out of every figure, counted as excluded
    with db.engine.connect() as c:
        shown = excluded_ratings(connection=c, period=period)
        assert c.execute(select(func.count()).select_from(ratings)).scalar_one() == 3
    assert [(r["rating_id"], r["outcome"]) for r in shown] == [(order.rating_id, "malicious")]


def test_report_form_deadline_after_rectification(setup: HubDb) -> None:
    # Shandong HRSS: the 核查整改情况报告单 within 5 (natural) days after rectification. Done
    # Mon 2026-03-02: day 5 is Sat Mar 7, a rest day, so the period ends Mon Mar 9
    # (民法典 第二百零三条, the profile's roll_to_workday); warned from Sun Mar 8.
    db = setup
    ingest(db.engine, [bad(1)], NOW, config=SHANDONG)
    order = order_for(db.engine, "NB-2026-000001")
    _force(db, order.id, State.RECTIFYING)
    with db.engine.begin() as c:
        after = service.act(
            connection=c, order_id=order.id, action=Action.RECTIFY, who=PRINCIPALS["handler"],
            fields={"reason": "已整改", "mode": "ledger"}, config=SHANDONG, now=NOW,
        )  # fmt: skip
    assert after.state == "reporting"
    assert after.report_due_at == datetime(2026, 3, 10, tzinfo=CST)
    assert after.report_warn_at == datetime(2026, 3, 8, tzinfo=CST)
    assert service.deadline_state(after, datetime(2026, 3, 8, 9, tzinfo=CST))[::2] == (
        "report",
        "upcoming",
    )
    # Ningbo sets no report form: nothing is due, nothing is warned about
    _force(db, order.id, State.RECTIFYING, report_due_at=None, report_warn_at=None)
    after = _act(db, order.id, Action.RECTIFY, PRINCIPALS["handler"], reason="x", mode="ledger")
    assert after.report_due_at is None
    assert service.deadline_state(after, NOW + timedelta(days=300))[2] == "none"


def test_a_follow_up_nothing_awaits_changes_no_order(setup: HubDb) -> None:
    db = setup
    ingest(db.engine, [bad(1)], NOW)
    before = _snapshot(db, order_for(db.engine, "NB-2026-000001").id)
    early = rating(77, case_no="NB-2026-000001", level=5, reasons=[501], assess_number=2)
    stray = rating(78, case_no="NB-2026-999999", level=1, assess_number=2)
    result = ingest(db.engine, [early, stray], NOW)
    assert result.counts["accepted"] == 2  # both stored: ingest never refuses over it
    after = _snapshot(db, order_for(db.engine, "NB-2026-000001").id)
    assert after[0] == before[0] and after[1] == before[1]  # order and its steps unchanged
    assert count_orders(db.engine) == 1  # a follow-up 差评 opens no order of its own
    with db.engine.connect() as c:
        unmatched = c.execute(
            select(func.count())
            .select_from(audit_log)
            .where(audit_log.c.action == "workflow.follow_up_unmatched")
        ).scalar_one()
    assert unmatched == 2
