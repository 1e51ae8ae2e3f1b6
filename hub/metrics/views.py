"""HTTP routes of the metrics API (docs/hub-api.md, "Metrics").

    GET /api/v1/metrics/report?period=2026-Q1&by=department[&dept_code=…&hall_id=…]
    GET /api/v1/metrics/excluded?period=2026-Q1[&dept_code=…&hall_id=…]   (auditors)

Who may read is decided by the caller's role (auditor, admin and department handler read
reports; the excluded-ratings view is the auditor's and admin's). Roles live in hub.users;
this module takes the two checks as FastAPI dependencies (``make_router(reader=…,
auditor=…)``), so it does not depend on how accounts are implemented. Until accounts exist
``refuse_all`` stands in for both: the routes exist and are documented, and they refuse
every request (no figure leaks before access control is in place).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.db.engine import read_connection
from hub.errors import ApiError, Msg
from hub.ingest import models
from hub.metrics.queries import (
    Dimension,
    MetricsError,
    excluded_ratings,
    infer_period,
    report,
)

PERIOD_HELP = (
    "calendar period in China time: 2026 (year), 2026-Q1 (quarter), 2026-03 (month), "
    "2026-03-02 (day)"
)


class PeriodOut(BaseModel):
    kind: str = Field(description="day, month, quarter or year")
    label: str
    start: str = Field(description="first instant (RFC 3339, UTC)")
    end: str = Field(description="first instant after the period (RFC 3339, UTC)")
    timezone: str


class MetricsRowOut(BaseModel):
    group: dict[str, str | None] = Field(description="the dimension's columns; {} for totals")
    uploaded: int = Field(description="rating records stored in the period (excluded ones not)")
    case_ratings: int = Field(description="active + default case ratings")
    active: int = Field(description="case ratings given by the rater (主动评价)")
    default_ratings: int = Field(description="case ratings given by the default rule")
    levels: dict[str, int] = Field(description="active case ratings per GB/T 39046 level 1–5")
    good: int = Field(description="好评: levels 1–3")
    bad: int = Field(description="差评: levels 4–5")
    bad_real_name: int
    bad_anonymous: int
    good_rate: float | None = Field(description="好评率 = good / active")
    bad_rate: float | None = Field(description="差评率 = bad / active")
    default_share: float | None = Field(description="default_ratings / case_ratings")
    follow_ups: int = Field(description="追评 (assess_number 2)")
    follow_ups_unhappy: int
    follow_up_satisfaction_rate: float | None = Field(
        description="整改满意率 = follow-ups at levels 1–3 / follow-ups"
    )
    repeats: int = Field(description="repeat presses (recorded, never counted)")
    unsolicited: int = Field(description="presses without an invitation (recorded only)")
    excluded: int = Field(description="ratings excluded by verification (误评/恶意)")
    cases_finished: int | None = Field(description="cases finished in the period (null: n/a)")
    cases_rated: int | None
    cases_rated_active: int | None
    coverage: float | None = Field(description="cases_rated / cases_finished")
    active_rate: float | None = Field(description="主动评价率 = cases_rated_active / finished")


class ReportOut(BaseModel):
    period: PeriodOut
    dimension: Dimension
    rows: list[MetricsRowOut]
    total: MetricsRowOut


class ExcludedOut(BaseModel):
    rating_id: int
    rating_key: str
    source: str
    hall_id: str
    window_id: str | None
    staff_id: str | None
    case_no: str | None
    dept_code: str | None
    item_code: str | None
    level: int
    assess_number: int
    rated_at: str
    outcome: str = Field(description="mistaken (误评) or malicious (恶意)")
    work_order_id: int | None
    reason: str
    evidence: str = Field(description="JSON array of evidence references")
    decided_by: str
    approved_by: str
    decided_at: str


class ExcludedListOut(BaseModel):
    period: PeriodOut
    items: list[ExcludedOut]


def refuse_all() -> None:
    """Stand-in access check until hub.users provides role checks: refuses every request."""
    raise ApiError(
        403,
        "auth.role_required",
        Msg(
            "查看统计需要审计员、管理员或部门处理人员账号（账号功能未启用）",
            "reading metrics needs an auditor, admin or handler account (accounts are not enabled)",
        ),
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorResponse, "description": description}
    for status, description in {
        401: "not signed in",
        403: "the account's role may not read this",
        422: "bad period, dimension or filter",
        503: "database unavailable",
    }.items()
}


def _period(period: str) -> Any:
    try:
        return infer_period(period)
    except MetricsError as e:
        raise ApiError(422, e.code, e.message, field="period") from e


MSG_DEPT_SCOPE = Msg(
    "部门处理人员只能查看本部门的统计：请用 dept_code 指定以下部门之一：{depts}",
    "a department handler reads only their own departments' figures: give dept_code, "
    "one of: {depts}",
)


def _scope(dept_code: str | None, hall_id: str | None, principal: object = None) -> dict[str, str]:
    """The filter of the request; a department handler (role ``dept_handler``, with the
    departments they are responsible for) is held to one of their departments."""
    if getattr(principal, "role", None) == "dept_handler":
        allowed = sorted(getattr(principal, "departments", ()) or ())
        if dept_code is None and len(allowed) == 1:
            dept_code = allowed[0]
        if dept_code not in allowed:
            raise ApiError(
                403, "metrics.dept_scope", MSG_DEPT_SCOPE.fill(depts="、".join(allowed) or "-")
            )
    scope = {}
    if dept_code is not None:
        scope["dept_code"] = dept_code
    if hall_id is not None:
        scope["hall_id"] = hall_id
    return scope


Text64 = Annotated[str | None, Query(max_length=64)]


def make_router(
    *, reader: Callable[..., Any] = refuse_all, auditor: Callable[..., Any] = refuse_all
) -> APIRouter:
    router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

    @router.get(
        "/report",
        summary="Metrics of one period per department, hall, window, staff, item or channel",
        response_model=ReportOut,
        responses=ERRORS,
    )
    async def get_report(
        request: Request,
        period: Annotated[str, Query(max_length=16, description=PERIOD_HELP)],
        by: Annotated[Dimension, Query(description="grouping")] = Dimension.ALL,
        dept_code: Text64 = None,
        hall_id: Text64 = None,
        # a default, not Annotated: the dependency is a closure variable, which a string
        # annotation (from __future__ import annotations) could not resolve
        principal: Any = Depends(reader),  # noqa: B008
    ) -> dict[str, Any]:
        span = _period(period)
        scope = _scope(dept_code, hall_id, principal)

        def run() -> dict[str, Any]:
            with read_connection(request.app.state.engine) as connection:
                return report(
                    connection=connection, period=span, dimension=by, scope=scope
                ).as_json()

        return await run_in_threadpool(run)

    @router.get(
        "/excluded",
        summary="Ratings excluded from the results (误评/恶意), with the decision: auditors",
        response_model=ExcludedListOut,
        responses=ERRORS,
    )
    async def get_excluded(
        request: Request,
        period: Annotated[str, Query(max_length=16, description=PERIOD_HELP)],
        dept_code: Text64 = None,
        hall_id: Text64 = None,
        principal: Any = Depends(auditor),  # noqa: B008
    ) -> dict[str, Any]:
        span = _period(period)
        scope = _scope(dept_code, hall_id, principal)

        def run() -> list[dict[str, Any]]:
            with read_connection(request.app.state.engine) as connection:
                return excluded_ratings(connection=connection, period=span, scope=scope)

        items = await run_in_threadpool(run)
        return {"period": _period_json(span), "items": items}

    return router


def _period_json(span: Any) -> dict[str, Any]:
    return {
        "kind": span.kind.value,
        "label": span.label,
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "timezone": "Asia/Shanghai (UTC+08:00)",
    }


__all__ = ["make_router", "refuse_all"]
