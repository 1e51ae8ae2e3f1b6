"""The 差评 workflow against the database: open orders, apply moves, warnings, sampling.

Strategy:
- Opening is idempotent and safe across hub processes: ``work_orders.rating_id`` is unique
  and the insert is ``ON CONFLICT DO NOTHING``; only the process whose insert won writes the
  opening step and audit row. Ingest calls ``WorkflowConfig.after_ratings`` inside its own
  transaction (so a 差评 and its order are stored together); ``open_missing`` is the sweep
  for ratings that came in another way (import, a hub before migration 0003).
- A move is ``machine.check`` (the only place that decides) plus a compare-and-set on
  ``version``: two people acting on one order at once get one success and one 409, and a
  refused move changes nothing (it raises before any write).
- Deadlines are computed from the jurisdiction profile with working days (hub.policy,
  hub.workdays) and stored with their warning instants, so listing warnings is a query. A
  deadline the calendar cannot compute (a year it does not know) is stored as an error on
  the order and shown, never guessed.
"""

from __future__ import annotations

import json
import math
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from hub import audit
from hub.db.schema import (
    audit_log,
    cases,
    departments,
    rating_exclusions,
    ratings,
    revisit_samples,
    work_order_steps,
    work_orders,
)
from hub.db.upsert import insert_ignore, insert_new_keys
from hub.errors import Msg
from hub.policy import DeadlineRule, Profile, load_profile
from hub.registry.codes import CodeError, check_uscc
from hub.users.roles import Role
from hub.users.service import SYSTEM, Principal, is_active_user
from hub.workdays import CalendarError, WorkCalendar, end_of_day, start_of_day
from hub.workflow import machine
from hub.workflow.machine import Action, Facts, State, WorkflowError

# Until an operator chooses one (hcp hub serve --policy), orders follow this profile.
DEFAULT_PROFILE = "ningbo"
# Device flags that mean "not a case rating" (docs/hub-api.md flags): repeat, unsolicited.
NOT_A_CASE_RATING = 0x01 | 0x02
BAD_LEVELS = (4, 5)  # 不满意, 非常不满意 (DOMAIN.md)
TEXT_MAX = 2000  # reasons, reports, notes: a page of text
EVIDENCE_MAX = 20  # references (file ids, URLs, recording ids) per step
PAGE_MAX = 500


@dataclass(frozen=True)
class WorkflowConfig:
    profile: Profile
    calendar: WorkCalendar = field(default_factory=WorkCalendar)

    @classmethod
    def default(cls) -> WorkflowConfig:
        return cls(load_profile(DEFAULT_PROFILE), WorkCalendar())

    @property
    def policy(self) -> str:
        return f"{self.profile.name}@{self.profile.version}"

    def after_ratings(
        self, connection: Connection, rows: Sequence[Mapping[str, Any]], now: datetime
    ) -> None:
        """The ingest hook: ``rows`` are the ratings this batch stored for the first time."""
        bad = [r["rating_key"] for r in rows if _is_case_bad(r)]
        follow_ups = [r["rating_key"] for r in rows if r["assess_number"] == 2]
        if bad:
            ids = connection.execute(
                select(ratings.c.id).where(ratings.c.rating_key.in_(bad))
            ).scalars()
            open_orders(connection=connection, rating_ids=list(ids), config=self, now=now)
        if follow_ups:
            for row in connection.execute(
                select(ratings).where(ratings.c.rating_key.in_(follow_ups)).order_by(ratings.c.id)
            ):
                record_follow_up(
                    connection=connection, rating=dict(row._mapping), config=self, now=now
                )


def _is_case_bad(row: Mapping[str, Any]) -> bool:
    return (
        row["level"] in BAD_LEVELS
        and row["assess_number"] == 1
        and not int(row["flags"]) & NOT_A_CASE_RATING
    )


def _bad_rating_filter() -> Any:
    return and_(
        ratings.c.level.in_(BAD_LEVELS),
        ratings.c.assess_number == 1,
        ratings.c.flags.op("&")(NOT_A_CASE_RATING) == 0,
    )


# --------------------------------------------------------------------------- deadlines


def _deadline(
    config: WorkflowConfig, rule: DeadlineRule | None, start: datetime
) -> tuple[datetime | None, datetime | None]:
    if rule is None:
        return None, None
    d = config.profile.deadline(rule, start, calendar=config.calendar)
    return d.due_at, d.warn_from


def _opening_deadlines(config: WorkflowConfig, start: datetime) -> dict[str, Any]:
    p = config.profile
    values: dict[str, Any] = {}
    try:
        for name, rule in (
            ("callback", p.callback),
            ("rectify", p.rectification),
            ("feedback", p.feedback),
        ):
            values[f"{name}_due_at"], values[f"{name}_warn_at"] = _deadline(config, rule, start)
    except CalendarError as e:
        return {"deadline_error": f"{e.zh} / {e.en}"}
    return values


# --------------------------------------------------------------------------- opening


def open_orders(
    *,
    connection: Connection,
    rating_ids: Sequence[int] | None,
    config: WorkflowConfig,
    now: datetime,
) -> list[int]:
    """Open one work order per 差评 among ``rating_ids`` (None: every 差评 without one).
    Returns the ids of the orders this call opened (others had one already)."""
    query = (
        select(ratings, cases.c.dept_code.label("case_dept"))
        .outerjoin(
            cases,
            and_(cases.c.hall_id == ratings.c.hall_id, cases.c.case_no == ratings.c.case_no),
        )
        .where(_bad_rating_filter())
    )
    if rating_ids is not None:
        if not rating_ids:
            return []
        query = query.where(ratings.c.id.in_(rating_ids))
    else:
        query = query.outerjoin(work_orders, work_orders.c.rating_id == ratings.c.id).where(
            work_orders.c.id.is_(None)
        )
    rows = []
    deadlines: dict[datetime, dict[str, Any]] = {}
    for r in connection.execute(query.order_by(ratings.c.id)):
        anonymous = not bool(r.rater_real_name)
        row = {
            "rating_id": r.id,
            "hall_id": r.hall_id,
            "case_no": r.case_no,
            "dept_code": r.dept_code or r.case_dept,
            "window_id": r.window_id,
            "staff_id": r.staff_id,
            "level": r.level,
            "anonymous": anonymous,
            # DOMAIN.md step 6: an anonymous 差评 cannot be called back; it is verified.
            "state": (State.VERIFYING if anonymous else State.CALLBACK).value,
            "version": 1,
            "policy": config.policy,
            "opened_at": now,
            "updated_at": now,
            "appeals": 0,
            "reopened": 0,
            "deadline_error": None,
            **{
                f"{n}_{k}_at": None
                for n in ("callback", "rectify", "feedback", "report")
                for k in ("due", "warn")
            },
        }
        # 差评入库: the clocks start when the hub stored the rating.
        if r.received_at not in deadlines:  # a batch shares one instant: compute once
            deadlines[r.received_at] = _opening_deadlines(config, r.received_at)
        row.update(deadlines[r.received_at])
        rows.append(row)
    if not rows:
        return []
    won = insert_new_keys(connection, work_orders, "rating_id", rows)
    if not won:
        return []
    opened = list(
        connection.execute(
            select(work_orders.c.id, work_orders.c.rating_id, work_orders.c.state)
            .where(work_orders.c.rating_id.in_(sorted(won)))
            .order_by(work_orders.c.id)
        )
    )
    # one executemany per table: ingest calls this for every batch (hot path)
    connection.execute(
        work_order_steps.insert(),
        [
            {
                "work_order_id": o.id,
                "at": now,
                "actor": SYSTEM.actor,
                "role": SYSTEM.role.value,
                "action": "open",
                "from_state": None,
                "to_state": o.state,
                "reason": None,
                "fields": "{}",
            }
            for o in opened
        ],
    )
    connection.execute(
        audit_log.insert(),
        [
            {
                "at": now,
                "actor": SYSTEM.actor,
                "action": "workflow.open",
                "target": f"work_order:{o.id}",
                "detail": json.dumps(
                    {"rating_id": o.rating_id, "to_state": o.state, "policy": config.policy},
                    ensure_ascii=False,
                    sort_keys=True,
                ),
            }
            for o in opened
        ],
    )
    return [o.id for o in opened]


def open_missing(*, connection: Connection, config: WorkflowConfig, now: datetime) -> list[int]:
    """The sweep: open orders for every 差评 that has none yet (idempotent)."""
    return open_orders(connection=connection, rating_ids=None, config=config, now=now)


def _step(
    connection: Connection,
    order_id: int,
    who: Principal,
    action: str,
    from_state: State | None,
    to_state: State,
    reason: str | None,
    fields: Mapping[str, Any],
    now: datetime,
) -> None:
    detail = json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str)
    connection.execute(
        work_order_steps.insert(),
        {
            "work_order_id": order_id,
            "at": now,
            "actor": who.actor,
            "role": who.role.value,
            "action": action,
            "from_state": from_state.value if from_state else None,
            "to_state": to_state.value,
            "reason": reason,
            "fields": detail,
        },
    )
    audit.record(
        connection,
        at=now,
        actor=who.actor,
        action=f"workflow.{action}",
        target=f"work_order:{order_id}",
        role=who.role.value,
        from_state=from_state.value if from_state else None,
        to_state=to_state.value,
        reason=reason,
        **{k: v for k, v in fields.items() if k != "reason"},
    )


# --------------------------------------------------------------------------- moves


def _refuse(status: int, code: str, message: Msg, field_name: str | None = None) -> WorkflowError:
    return WorkflowError(status, code, message, field=field_name)


def _load(connection: Connection, order_id: int) -> Any:
    row = connection.execute(select(work_orders).where(work_orders.c.id == order_id)).first()
    if row is None:
        raise _refuse(
            404, "workflow.not_found", Msg("工单 {i} 不存在", "no work order {i}").fill(i=order_id)
        )
    return row


def in_scope(who: Principal, dept_code: str | None) -> bool:
    """Department handlers see and act on their departments' orders only."""
    return who.role is not Role.DEPT_HANDLER or (dept_code in who.departments)


def _text(fields: Mapping[str, Any], name: str) -> None:
    value = fields.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > TEXT_MAX):
        raise _refuse(
            422,
            "workflow.bad_field",
            Msg("{f} 须为不超过 {n} 字的文本", "{f} must be text of at most {n} characters").fill(
                f=name, n=TEXT_MAX
            ),
            name,
        )


def _validate(
    connection: Connection,
    action: Action,
    who: Principal,
    order: Any,
    fields: Mapping[str, Any],
    config: WorkflowConfig,
) -> dict[str, Any]:
    """Check the fields' values (the machine checked their presence); return the updates."""
    for name in ("reason", "report", "channel", "appellant", "mode", "outcome"):
        _text(fields, name)
    updates: dict[str, Any] = {}
    evidence = fields.get("evidence")
    if evidence is not None and (
        not isinstance(evidence, list)
        or not 1 <= len(evidence) <= EVIDENCE_MAX
        or not all(isinstance(e, str) and 0 < len(e) <= 500 for e in evidence)
    ):
        raise _refuse(
            422,
            "workflow.bad_evidence",
            Msg(
                "evidence 须为 1–{n} 条证据引用（文字）",
                "evidence is a list of 1-{n} references (text)",
            ).fill(n=EVIDENCE_MAX),
            "evidence",
        )
    approver = fields.get("approved_by")
    if approver is not None and (
        not isinstance(approver, str)
        or approver == who.username
        or not is_active_user(connection, approver, (Role.ADMIN, Role.HOTLINE_VERIFIER))
    ):
        raise _refuse(
            422,
            "workflow.bad_approver",
            Msg(
                "审批人须是另一位在职的管理员或热线核实人员",
                "the approver must be another active administrator or hotline verifier",
            ),
            "approved_by",
        )
    if action is Action.RECTIFY and fields.get("mode") not in machine.EXTENSION_MODES:
        raise _refuse(
            422,
            "workflow.bad_mode",
            Msg("mode 须为 {m}", "mode must be one of {m}").fill(
                m=", ".join(machine.EXTENSION_MODES)
            ),
            "mode",
        )
    if action is Action.APPEAL_UPHOLD and fields.get("outcome") not in ("mistaken", "malicious"):
        raise _refuse(
            422,
            "workflow.bad_outcome",
            Msg("outcome 须为 mistaken（误评）或 malicious（恶意）", "outcome: mistaken|malicious"),
            "outcome",
        )
    if action is Action.ROUTE:
        code = fields.get("dept_code")
        try:
            check_uscc(code if isinstance(code, str) else "")
        except CodeError as e:
            raise _refuse(
                422,
                "workflow.bad_department",
                Msg("部门代码无效：{e}", "invalid department code: {e}").fill(e=e.en),
                "dept_code",
            ) from e
        # a department may receive its first order before its first rating
        insert_ignore(
            connection, departments, [{"dept_code": code, "first_seen_at": order.updated_at}]
        )
        updates["dept_code"] = code
    if action is Action.EXTEND:
        updates.update(_extension(fields.get("new_due_date"), order, config))
    return updates


def _extension(value: Any, order: Any, config: WorkflowConfig) -> dict[str, Any]:
    try:
        new_day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        new_day = None
    if new_day is None or len(value) != 10:
        raise _refuse(
            422,
            "workflow.bad_date",
            Msg("new_due_date 须为 YYYY-MM-DD 日期", "new_due_date must be a date YYYY-MM-DD"),
            "new_due_date",
        )
    due = end_of_day(new_day)
    if order.rectify_due_at is not None and due <= order.rectify_due_at:
        raise _refuse(
            422,
            "workflow.extension_not_later",
            Msg("延期后的期限必须晚于当前期限", "the new deadline must be after the current one"),
            "new_due_date",
        )
    try:
        if not config.calendar.is_workday(new_day):
            raise _refuse(
                422,
                "workflow.extension_not_workday",
                Msg("{d} 不是工作日", "{d} is not a working day").fill(d=new_day),
                "new_due_date",
            )
        warn_day = config.calendar.subtract(new_day, config.profile.rectification.warn_before)
    except CalendarError as e:
        raise _refuse(422, e.code, Msg(e.zh, e.en), "new_due_date") from e
    return {"rectify_due_at": due, "rectify_warn_at": start_of_day(warn_day)}


def act(
    *,
    connection: Connection,
    order_id: int,
    action: Action,
    who: Principal,
    fields: Mapping[str, Any],
    config: WorkflowConfig,
    now: datetime,
    expected_version: int | None = None,
) -> Any:
    """Apply one move; returns the updated order row. Refused moves raise and write nothing."""
    order = _load(connection, order_id)
    if not in_scope(who, order.dept_code):
        raise _refuse(
            403,
            "workflow.out_of_scope",
            Msg("工单 {i} 不属于您负责的部门", "work order {i} is not your department's").fill(
                i=order_id
            ),
        )
    if expected_version is not None and expected_version != order.version:
        raise _conflict(order_id)
    state = State(order.state)
    row = machine.check(
        state, action, who.role, Facts(order.anonymous, order.appeals), dict(fields)
    )
    updates = _validate(connection, action, who, order, fields, config)
    updates.update(state=row.next.value, version=order.version + 1, updated_at=now)
    if row.next in machine.TERMINAL:
        updates["closed_at"] = now
    if action is Action.APPEAL:
        updates["appeals"] = order.appeals + 1
    if action is Action.RECTIFY and config.profile.report_form is not None:
        try:
            updates["report_due_at"], updates["report_warn_at"] = _deadline(
                config, config.profile.report_form, now
            )
        except CalendarError as e:
            updates["deadline_error"] = f"{e.zh} / {e.en}"
    if action is Action.FOLLOW_UP_UNHAPPY:
        # Reopened: a fresh rectification and feedback period from now (DOMAIN.md step 4).
        updates["reopened"] = order.reopened + 1
        updates["closed_at"] = None
        for name, rule in (
            ("rectify", config.profile.rectification),
            ("feedback", config.profile.feedback),
        ):
            try:
                updates[f"{name}_due_at"], updates[f"{name}_warn_at"] = _deadline(config, rule, now)
            except CalendarError as e:
                updates["deadline_error"] = f"{e.zh} / {e.en}"
    if "follow_up_rating_id" in fields:
        updates["follow_up_rating_id"] = fields["follow_up_rating_id"]
    done = connection.execute(
        work_orders.update()
        .where(work_orders.c.id == order_id, work_orders.c.version == order.version)
        .values(**updates)
    )
    if done.rowcount != 1:
        raise _conflict(order_id)
    outcome = machine.EXCLUDES.get(action) or (
        str(fields["outcome"]) if action is Action.APPEAL_UPHOLD else None
    )
    if outcome is not None:
        connection.execute(
            rating_exclusions.insert(),
            {
                "rating_id": order.rating_id,
                "outcome": outcome,
                "work_order_id": order_id,
                "reason": str(fields["reason"]),
                "evidence": json.dumps(fields.get("evidence") or [], ensure_ascii=False),
                "decided_by": who.actor,
                "approved_by": f"user:{fields['approved_by']}"
                if fields.get("approved_by")
                else who.actor,
                "decided_at": now,
            },
        )
    recorded = {k: v for k, v in fields.items() if k in row.fields or k == "follow_up_rating_id"}
    reason = fields.get("reason")
    _step(
        connection,
        order_id,
        who,
        action.value,
        state,
        row.next,
        str(reason) if reason else None,
        recorded,
        now,
    )
    return _load(connection, order_id)


def _conflict(order_id: int) -> WorkflowError:
    return _refuse(
        409,
        "workflow.version_conflict",
        Msg(
            "工单 {i} 已被他人更新，请刷新后重试",
            "work order {i} was changed by someone else; reload and retry",
        ).fill(i=order_id),
    )


def record_follow_up(
    *, connection: Connection, rating: Mapping[str, Any], config: WorkflowConfig, now: datetime
) -> int | None:
    """A follow-up rating (assess_number 2) for a case whose order awaits it: close the order,
    or reopen it when the follow-up is a 差评 and the policy says so."""
    order = connection.execute(
        select(work_orders.c.id)
        .where(
            work_orders.c.hall_id == rating["hall_id"],
            work_orders.c.case_no == rating["case_no"],
            work_orders.c.state == State.FOLLOW_UP.value,
        )
        .order_by(work_orders.c.id)
        .limit(1)
    ).first()
    if order is None or rating["case_no"] is None:
        audit.record(
            connection,
            at=now,
            actor=SYSTEM.actor,
            action="workflow.follow_up_unmatched",
            target=f"rating:{rating['id']}",
        )
        return None
    if rating["level"] in BAD_LEVELS:
        action = (
            Action.FOLLOW_UP_UNHAPPY
            if config.profile.rating.reopen_on_unhappy_follow_up
            else Action.FOLLOW_UP_RECORDED
        )
    else:
        action = Action.FOLLOW_UP_SATISFIED
    try:
        act(
            connection=connection,
            order_id=order.id,
            action=action,
            who=SYSTEM,
            fields={"follow_up_rating_id": rating["id"], "level": rating["level"]},
            config=config,
            now=now,
        )
    except WorkflowError as e:
        # Someone moved the order at this very moment (closed it, say): the rating is
        # stored all the same (ingest must not fail over it) and the miss is on record.
        audit.record(
            connection,
            at=now,
            actor=SYSTEM.actor,
            action="workflow.follow_up_unmatched",
            target=f"rating:{rating['id']}",
            work_order_id=order.id,
            refused=e.code,
        )
        return None
    return int(order.id)


# --------------------------------------------------------------------------- reading


# Which deadline each open state is measured against (DOMAIN.md step 5: 超期预警).
ACTIVE_DEADLINE: dict[State, str] = {
    State.CALLBACK: "callback",
    State.VERIFYING: "callback",  # 回访核实: verification within the callback limit
    State.RECTIFYING: "rectify",
    State.APPEALED: "rectify",
    State.REPORTING: "report",
    State.FEEDBACK: "feedback",
}


def deadline_state(order: Any, now: datetime) -> tuple[str | None, datetime | None, str]:
    """(deadline name, due instant, "pending" | "upcoming" | "overdue" | "none")."""
    name = ACTIVE_DEADLINE.get(State(order.state))
    if name is None:
        return None, None, "none"
    due = getattr(order, f"{name}_due_at")
    warn = getattr(order, f"{name}_warn_at")
    if due is None:
        return name, None, "none"
    if now >= due:
        return name, due, "overdue"
    if warn is not None and now >= warn:
        return name, due, "upcoming"
    return name, due, "pending"


@dataclass(frozen=True)
class OrderFilter:
    state: State | None = None
    dept_code: str | None = None
    hall_id: str | None = None
    anonymous: bool | None = None
    limit: int = 100
    offset: int = 0


def _scoped(query: Any, who: Principal) -> Any:
    if who.role is Role.DEPT_HANDLER:
        return query.where(work_orders.c.dept_code.in_(sorted(who.departments)))
    return query


def list_orders(
    *, connection: Connection, who: Principal, where: OrderFilter
) -> tuple[int, list[Any]]:
    conditions = []
    if where.state is not None:
        conditions.append(work_orders.c.state == where.state.value)
    if where.dept_code is not None:
        conditions.append(work_orders.c.dept_code == where.dept_code)
    if where.hall_id is not None:
        conditions.append(work_orders.c.hall_id == where.hall_id)
    if where.anonymous is not None:
        conditions.append(work_orders.c.anonymous == where.anonymous)
    base = _scoped(select(work_orders).where(*conditions), who)
    total = connection.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = list(
        connection.execute(
            _order_query(base.order_by(work_orders.c.id).limit(where.limit).offset(where.offset))
        )
    )
    return int(total), rows


def _order_query(base: Any) -> Any:
    sub = base.subquery()
    return (
        select(
            sub,
            ratings.c.rated_at,
            ratings.c.reasons,
            ratings.c.text,
            ratings.c.channel,
            ratings.c.rater_name_masked,
            ratings.c.rater_phone_masked,
            ratings.c.rater_real_name,
            rating_exclusions.c.outcome.label("excluded_as"),
        )
        .select_from(
            sub.join(ratings, ratings.c.id == sub.c.rating_id).outerjoin(
                rating_exclusions, rating_exclusions.c.rating_id == sub.c.rating_id
            )
        )
        .order_by(sub.c.id)
    )


def get_order(*, connection: Connection, who: Principal, order_id: int) -> tuple[Any, list[Any]]:
    base = select(work_orders).where(work_orders.c.id == order_id)
    row = connection.execute(_order_query(base)).first()
    if row is None or not in_scope(who, row.dept_code):
        # out of scope looks like absent: a handler learns nothing of other departments
        raise _refuse(
            404, "workflow.not_found", Msg("工单 {i} 不存在", "no work order {i}").fill(i=order_id)
        )
    steps = list(
        connection.execute(
            select(work_order_steps)
            .where(work_order_steps.c.work_order_id == order_id)
            .order_by(work_order_steps.c.id)
        )
    )
    return row, steps


def warnings(*, connection: Connection, who: Principal, now: datetime) -> list[Any]:
    """Open orders whose active deadline is upcoming or overdue, or cannot be computed."""
    query = _scoped(
        select(work_orders).where(
            work_orders.c.state.in_([s.value for s in ACTIVE_DEADLINE]),
            or_(
                work_orders.c.deadline_error.is_not(None),
                *(
                    and_(
                        work_orders.c.state.in_(
                            [s.value for s, n in ACTIVE_DEADLINE.items() if n == name]
                        ),
                        getattr(work_orders.c, f"{name}_warn_at") <= now,
                    )
                    for name in set(ACTIVE_DEADLINE.values())
                ),
                *(
                    and_(
                        work_orders.c.state.in_(
                            [s.value for s, n in ACTIVE_DEADLINE.items() if n == name]
                        ),
                        getattr(work_orders.c, f"{name}_due_at") <= now,
                    )
                    for name in set(ACTIVE_DEADLINE.values())
                ),
            ),
        ),
        who,
    ).order_by(work_orders.c.id)
    return list(connection.execute(query))


def summary(*, connection: Connection, who: Principal) -> dict[str, dict[str, int]]:
    """Orders per state, real-name and anonymous counted apart (DOMAIN.md step 6)."""
    query = _scoped(
        select(work_orders.c.anonymous, work_orders.c.state, func.count().label("n")).group_by(
            work_orders.c.anonymous, work_orders.c.state
        ),
        who,
    )
    result: dict[str, dict[str, int]] = {"real_name": {}, "anonymous": {}}
    for anonymous, state, n in connection.execute(query):
        result["anonymous" if anonymous else "real_name"][state] = int(n)
    return result


def exclusions(*, connection: Connection) -> list[Any]:
    return list(
        connection.execute(
            select(rating_exclusions, ratings.c.level, ratings.c.hall_id, ratings.c.rated_at)
            .join(ratings, ratings.c.id == rating_exclusions.c.rating_id)
            .order_by(rating_exclusions.c.rating_id)
        )
    )


# --------------------------------------------------------------------------- sampling


def sample_ids(population: Iterable[int], percent: int, seed: str) -> list[int]:
    """The revisit sample: ⌈percent% of the population⌉ ids, drawn by ``random.Random(seed)``
    over the ascending population (so the same seed and population give the same sample)."""
    ordered = sorted(population)
    k = math.ceil(len(ordered) * percent / 100)
    return sorted(random.Random(seed).sample(ordered, k))


def draw_revisit_sample(
    *,
    connection: Connection,
    period_from: datetime,
    period_to: datetime,
    config: WorkflowConfig,
    who: Principal,
    now: datetime,
    percent: int | None = None,
    seed: str | None = None,
) -> Any:
    """Draw and record a random revisit sample of the period's 差评 orders (DOMAIN.md,
    "random revisit survey of 差评: at least 20%", Shandong HRSS)."""
    share = percent if percent is not None else config.profile.supervision.revisit_sample_percent
    floor = config.profile.supervision.revisit_sample_percent or 0
    if share is None or not 1 <= share <= 100 or share < floor:
        raise _refuse(
            422,
            "workflow.bad_sample_share",
            Msg(
                "抽样比例须在 {f}–100 之间（配置 {p} 要求至少 {f}%）",
                "the sample share must be {f}-100 % (profile {p} requires at least {f} %)",
            ).fill(f=max(floor, 1), p=config.policy),
            "percent",
        )
    if period_to <= period_from:
        raise _refuse(
            422,
            "workflow.bad_period",
            Msg("期间的结束必须晚于开始", "the period must end after it starts"),
            "period_to",
        )
    seed = seed or secrets.token_hex(16)
    population = list(
        connection.execute(
            select(work_orders.c.id)
            .where(
                work_orders.c.opened_at >= period_from,
                work_orders.c.opened_at < period_to,
                work_orders.c.state != State.EXCLUDED.value,
            )
            .order_by(work_orders.c.id)
        ).scalars()
    )
    chosen = sample_ids(population, share, seed)
    result = connection.execute(
        revisit_samples.insert().returning(revisit_samples.c.id),
        {
            "drawn_at": now,
            "drawn_by": who.actor,
            "period_from": period_from,
            "period_to": period_to,
            "percent": share,
            "seed": seed,
            "population": json.dumps(population),
            "chosen": json.dumps(chosen),
        },
    )
    sample_id = result.scalar_one()
    audit.record(
        connection,
        at=now,
        actor=who.actor,
        action="workflow.revisit_sample",
        target=f"revisit_sample:{sample_id}",
        percent=share,
        seed=seed,
        population=len(population),
        chosen=chosen,
    )
    return connection.execute(
        select(revisit_samples).where(revisit_samples.c.id == sample_id)
    ).first()


def list_samples(*, connection: Connection) -> list[Any]:
    return list(connection.execute(select(revisit_samples).order_by(revisit_samples.c.id)))
