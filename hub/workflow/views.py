"""HTTP routes of the 差评 workflow (docs/hub-api.md, "The 差评 workflow").

Every route checks the role before anything else (hub.users.access) and runs its writes in
one transaction; a refusal raises before the first write, so it changes nothing. Personal
data (the rater's masked name and phone, the rating's text) is shown only to the roles that
call raters back (hub.users.roles.SEES_RATER).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from hub.db.engine import read_connection
from hub.errors import ApiError
from hub.ingest.models import ErrorResponse
from hub.users.access import ANY_USER, require
from hub.users.roles import SEES_RATER, Role
from hub.users.service import Principal
from hub.workflow import machine, service
from hub.workflow.machine import Action, State, WorkflowError

router = APIRouter(prefix="/api/v1", tags=["workflow"])

ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse, "description": d}
    for s, d in {
        401: "missing, bad, expired or ended session",
        403: "this role may not do this, or not for this department",
        404: "no such work order",
        409: "not allowed in the order's state, or changed by someone else meanwhile",
        422: "invalid request or a required field missing",
    }.items()
}
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
# PostgreSQL text cannot hold NUL: refuse it at the edge (422), like every other bad value.
NO_NUL = r"^[^\x00]*$"
DEPT_CODE = r"^[0-9A-Z]{18}$"
USERNAME = r"^[a-z][a-z0-9_.-]{1,31}$"
Text = Annotated[StrictStr, Field(min_length=1, max_length=service.TEXT_MAX, pattern=NO_NUL)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionRequest(Strict):
    action: Action
    expected_version: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = Field(
        default=None, description="refuse (409) unless the order is still at this version"
    )
    reason: Text | None = None
    evidence: (
        Annotated[
            list[Annotated[StrictStr, Field(min_length=1, max_length=500, pattern=NO_NUL)]],
            Field(max_length=service.EVIDENCE_MAX),
        ]
        | None
    ) = None
    approved_by: Annotated[StrictStr, Field(pattern=USERNAME)] | None = None
    mode: Literal["immediate", "ledger", "explanation"] | None = None
    new_due_date: Annotated[StrictStr, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    appellant: Text | None = None
    outcome: Literal["mistaken", "malicious"] | None = None
    report: Text | None = None
    channel: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=NO_NUL)] | None = None
    dept_code: Annotated[StrictStr, Field(pattern=DEPT_CODE)] | None = None


class Deadlines(BaseModel):
    callback_due_at: AwareDatetime | None
    rectify_due_at: AwareDatetime | None
    feedback_due_at: AwareDatetime | None
    report_due_at: AwareDatetime | None
    active: str | None = Field(description="the deadline the current state is measured against")
    status: Literal["pending", "upcoming", "overdue", "none"]
    error: str | None = Field(description="why a deadline could not be computed")


class RaterView(BaseModel):
    real_name: bool
    name_masked: str | None = None
    phone_masked: str | None = None


class WorkOrder(BaseModel):
    id: int
    rating_id: int
    hall_id: str
    case_no: str | None
    dept_code: str | None
    window_id: str | None
    staff_id: str | None
    level: int
    anonymous: bool
    state: State
    state_zh: str
    version: int
    policy: str
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    closed_at: AwareDatetime | None
    appeals: int
    reopened: int
    rated_at: AwareDatetime
    reasons: str
    text: str | None = Field(description="only for roles that call raters back")
    rater: RaterView
    excluded_as: str | None
    deadlines: Deadlines


class Step(BaseModel):
    at: AwareDatetime
    actor: str
    role: str
    action: str
    from_state: str | None
    to_state: str
    reason: str | None
    fields: str = Field(description="JSON object of the step's fields")


class WorkOrderDetail(WorkOrder):
    steps: list[Step]
    allowed_actions: list[str] = Field(description="actions this session may take now")


class WorkOrderList(BaseModel):
    total: int
    items: list[WorkOrder]


class DeadlineWarning(BaseModel):
    work_order_id: int
    state: State
    dept_code: str | None
    deadline: str | None
    due_at: AwareDatetime | None
    status: Literal["upcoming", "overdue", "unknown"]


class WarningList(BaseModel):
    upcoming: int
    overdue: int
    unknown: int
    items: list[DeadlineWarning]


class Summary(BaseModel):
    real_name: dict[str, int]
    anonymous: dict[str, int]


class TransitionRow(BaseModel):
    state: State
    action: Action
    next: State
    roles: list[str]
    fields: list[str]
    only: str | None


class SampleRequest(Strict):
    period_from: AwareDatetime
    period_to: AwareDatetime
    percent: Annotated[StrictInt, Field(ge=1, le=100)] | None = None
    seed: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.:-]{1,40}$")] | None = None


class Sample(BaseModel):
    id: int
    drawn_at: AwareDatetime
    drawn_by: str
    period_from: AwareDatetime
    period_to: AwareDatetime
    percent: int
    seed: str
    population: str = Field(description="JSON array of the work order ids sampled from")
    chosen: str = Field(description="JSON array of the work order ids chosen")


class SampleList(BaseModel):
    items: list[Sample]


class Exclusion(BaseModel):
    rating_id: int
    outcome: str
    work_order_id: int | None
    reason: str
    evidence: str
    decided_by: str
    approved_by: str
    decided_at: AwareDatetime
    level: int
    hall_id: str
    rated_at: AwareDatetime


class ExclusionList(BaseModel):
    items: list[Exclusion]


class Opened(BaseModel):
    opened: list[int]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _config(request: Request) -> service.WorkflowConfig:
    config: service.WorkflowConfig = request.app.state.workflow
    return config


def _api(e: WorkflowError) -> ApiError:
    return ApiError(e.status, e.code, e.message, field=e.field)


async def _read(request: Request, fn: Callable[[Connection], Any]) -> Any:
    def run() -> Any:
        with read_connection(_engine(request)) as connection:
            try:
                return fn(connection)
            except WorkflowError as e:
                raise _api(e) from e

    return await run_in_threadpool(run)


async def _write(request: Request, fn: Callable[[Connection, datetime], Any]) -> Any:
    def run() -> Any:
        try:
            with _engine(request).begin() as connection:
                return fn(connection, datetime.now(UTC))
        except WorkflowError as e:
            raise _api(e) from e

    return await run_in_threadpool(run)


def _order(row: Any, who: Principal, now: datetime) -> dict[str, Any]:
    name, _due, status = service.deadline_state(row, now)
    sees = who.role in SEES_RATER
    return {
        **{k: getattr(row, k) for k in WorkOrder.model_fields if hasattr(row, k)},
        "state_zh": machine.STATE_ZH[State(row.state)],
        "text": row.text if sees else None,
        "rater": {
            "real_name": bool(row.rater_real_name),
            "name_masked": row.rater_name_masked if sees else None,
            "phone_masked": row.rater_phone_masked if sees else None,
        },
        "deadlines": {
            "callback_due_at": row.callback_due_at,
            "rectify_due_at": row.rectify_due_at,
            "feedback_due_at": row.feedback_due_at,
            "report_due_at": row.report_due_at,
            "active": name,
            "status": status,
            "error": row.deadline_error,
        },
    }


def _allowed(row: Any, who: Principal) -> list[str]:
    facts = machine.Facts(row.anonymous, row.appeals)
    found = []
    for (state, action), rows in machine.TRANSITIONS.items():
        if state.value != row.state or who.role not in rows[0].roles:
            continue
        if any(machine.holds(r.only, facts) for r in rows):
            found.append(action.value)
    return sorted(found)


User = Annotated[Principal, Depends(require(*ANY_USER))]


@router.get(
    "/work-orders",
    summary="List work orders (department handlers: their departments only)",
    response_model=WorkOrderList,
    responses={k: ERRORS[k] for k in (401, 422)},
)
async def list_orders(
    who: User,
    request: Request,
    state: State | None = None,
    dept_code: Annotated[str | None, Query(pattern=DEPT_CODE)] = None,
    hall_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = None,
    anonymous: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> WorkOrderList:
    where = service.OrderFilter(state, dept_code, hall_id, anonymous, limit, offset)
    now = datetime.now(UTC)

    def run(c: Connection) -> WorkOrderList:
        total, rows = service.list_orders(connection=c, who=who, where=where)
        return WorkOrderList(total=total, items=[WorkOrder(**_order(r, who, now)) for r in rows])

    result: WorkOrderList = await _read(request, run)
    return result


@router.get(
    "/work-orders/summary",
    summary="Orders per state; real-name and anonymous 差评 counted apart",
    response_model=Summary,
    responses={k: ERRORS[k] for k in (401,)},
)
async def summary(who: User, request: Request) -> Summary:
    result: dict[str, dict[str, int]] = await _read(
        request, lambda c: service.summary(connection=c, who=who)
    )
    return Summary(**result)


@router.get(
    "/work-orders/warnings",
    summary="超期预警: open orders whose deadline is upcoming, overdue or unknown",
    response_model=WarningList,
    responses={k: ERRORS[k] for k in (401,)},
)
async def warnings(who: User, request: Request) -> WarningList:
    now = datetime.now(UTC)

    def run(c: Connection) -> WarningList:
        items = []
        for row in service.warnings(connection=c, who=who, now=now):
            name, due, status = service.deadline_state(row, now)
            shown = "unknown" if row.deadline_error and status == "none" else status
            if shown not in ("upcoming", "overdue", "unknown"):
                continue
            items.append(
                DeadlineWarning(
                    work_order_id=row.id,
                    state=State(row.state),
                    dept_code=row.dept_code,
                    deadline=name,
                    due_at=due,
                    status=shown,  # type: ignore[arg-type]
                )
            )
        return WarningList(
            upcoming=sum(i.status == "upcoming" for i in items),
            overdue=sum(i.status == "overdue" for i in items),
            unknown=sum(i.status == "unknown" for i in items),
            items=items,
        )

    result: WarningList = await _read(request, run)
    return result


@router.get(
    "/work-orders/{order_id}",
    summary="One work order with its history and the actions this session may take",
    response_model=WorkOrderDetail,
    responses={k: ERRORS[k] for k in (401, 404, 422)},
)
async def get_order(who: User, request: Request, order_id: Id) -> WorkOrderDetail:
    now = datetime.now(UTC)

    def run(c: Connection) -> WorkOrderDetail:
        row, steps = service.get_order(connection=c, who=who, order_id=order_id)
        return WorkOrderDetail(
            **_order(row, who, now),
            steps=[Step(**{k: getattr(s, k) for k in Step.model_fields}) for s in steps],
            allowed_actions=_allowed(row, who),
        )

    result: WorkOrderDetail = await _read(request, run)
    return result


@router.post(
    "/work-orders/{order_id}/actions",
    summary="Take one workflow action on a work order",
    response_model=WorkOrderDetail,
    responses={k: ERRORS[k] for k in (401, 403, 404, 409, 422)},
)
async def act(
    who: Annotated[
        Principal, Depends(require(Role.ADMIN, Role.DEPT_HANDLER, Role.HOTLINE_VERIFIER))
    ],
    request: Request,
    order_id: Id,
    body: ActionRequest,
) -> WorkOrderDetail:
    fields = body.model_dump(exclude={"action", "expected_version"}, exclude_none=True)
    config = _config(request)

    def run(c: Connection, now: datetime) -> WorkOrderDetail:
        service.act(
            connection=c,
            order_id=order_id,
            action=body.action,
            who=who,
            fields=fields,
            config=config,
            now=now,
            expected_version=body.expected_version,
        )
        row, steps = service.get_order(connection=c, who=who, order_id=order_id)
        return WorkOrderDetail(
            **_order(row, who, now),
            steps=[Step(**{k: getattr(s, k) for k in Step.model_fields}) for s in steps],
            allowed_actions=_allowed(row, who),
        )

    result: WorkOrderDetail = await _write(request, run)
    return result


@router.post(
    "/work-orders/sweep",
    summary="Open a work order for every 差评 that has none yet (administrators)",
    response_model=Opened,
    responses={k: ERRORS[k] for k in (401, 403)},
)
async def sweep(
    _who: Annotated[Principal, Depends(require(Role.ADMIN))], request: Request
) -> Opened:
    config = _config(request)
    opened: list[int] = await _write(
        request, lambda c, now: service.open_missing(connection=c, config=config, now=now)
    )
    return Opened(opened=opened)


@router.get(
    "/workflow/transitions",
    summary="The workflow's transition table (state × action → next state, roles, fields)",
    response_model=list[TransitionRow],
    responses={k: ERRORS[k] for k in (401,)},
)
async def transitions(_who: User) -> list[TransitionRow]:
    return [
        TransitionRow(
            state=r.state,
            action=r.action,
            next=r.next,
            roles=sorted(r.roles),
            fields=list(r.fields),
            only=r.only.value if r.only else None,
        )
        for rows in machine.TRANSITIONS.values()
        for r in rows
    ]


@router.get(
    "/exclusions",
    summary="Ratings excluded as 误评/恶意 (kept, with reason and evidence)",
    response_model=ExclusionList,
    responses={k: ERRORS[k] for k in (401, 403)},
)
async def exclusions(
    _who: Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR, Role.HOTLINE_VERIFIER))],
    request: Request,
) -> ExclusionList:
    rows = await _read(request, lambda c: service.exclusions(connection=c))
    return ExclusionList(
        items=[Exclusion(**{k: getattr(r, k) for k in Exclusion.model_fields}) for r in rows]
    )


@router.post(
    "/revisit-samples",
    summary="Draw and record a random revisit sample of 差评 (administrators)",
    status_code=201,
    response_model=Sample,
    responses={k: ERRORS[k] for k in (401, 403, 422)},
)
async def draw_sample(
    who: Annotated[Principal, Depends(require(Role.ADMIN))],
    request: Request,
    body: SampleRequest,
) -> Sample:
    config = _config(request)
    row = await _write(
        request,
        lambda c, now: service.draw_revisit_sample(
            connection=c,
            period_from=body.period_from,
            period_to=body.period_to,
            config=config,
            who=who,
            now=now,
            percent=body.percent,
            seed=body.seed,
        ),
    )
    return Sample(**{k: getattr(row, k) for k in Sample.model_fields})


@router.get(
    "/revisit-samples",
    summary="Recorded revisit samples",
    response_model=SampleList,
    responses={k: ERRORS[k] for k in (401, 403)},
)
async def list_samples(
    _who: Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR))], request: Request
) -> SampleList:
    rows = await _read(request, lambda c: service.list_samples(connection=c))
    return SampleList(
        items=[Sample(**{k: getattr(r, k) for k in Sample.model_fields}) for r in rows]
    )
