"""The case-system adapter: an HTTP API for the hall's queue-calling and acceptance systems.

Strategy: FastAPI, like the hub (docs/hub-api.md explains the choice), so the pydantic
request models *are* the contract and docs/agent-case-api.openapi.json is generated from
them (``hcp agent openapi``; a test fails when they drift). Handlers are thin: validate,
call the one HallService method for the event, return its answer. Errors have one shape,
converted here and only here:

    {"error": {"code": ..., "message": <zh-CN>, "message_en": ..., "field"?: ...}}

- 400 ``request.bad_json`` (not JSON), 422 ``request.invalid`` (a field is wrong; ``field``
  names it), 404 ``window.unknown`` / ``case.unknown``, 409 for events the state does not
  allow (``case.illegal_transition``, ``event.duplicate``, ``window.occupied``, …), 503
  ``outbox.full``. A refused event changed nothing (one store transaction, rolled back).
- Anything unexpected is logged with its traceback and answered 500 ``internal.error``
  without details; the agent keeps running (the property test asserts there are none).

Systems that cannot call an API but can be polled: see edge_agent.polling (the same
service methods, driven by a poll loop).

Health (``/healthz``) and metrics (``/metrics``, Prometheus text) are served here too.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_agent import metrics, outbox, ratings, registry
from edge_agent.cases import EVENT_ID, case_view
from edge_agent.errors import AgentError, ApiError, Msg
from edge_agent.logs import log_event
from edge_agent.service import HallService
from edge_agent.sync import HubSync

log = logging.getLogger("hcp.agent.api")

API_VERSION = "1"
CASE_NO_MAX = 64  # hub limit for case_no (docs/hub-api.md, Limits)
ITEM_CODE_MAX = 64
ITEM_NAME_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015 character set
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _utf8_max(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value.encode("utf-8")) > limit:
            raise ValueError(f"at most {limit} bytes of UTF-8 (the device screen's limit)")
        return value

    return AfterValidator(check)


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    if value != value.strip():
        raise ValueError("leading or trailing spaces are not allowed")
    return value


def _credit_code(value: str) -> str:
    """GB 32100-2015 unified social credit code, check character verified."""
    if len(value) != 18 or any(ch not in _CREDIT_CHARS for ch in value):
        raise ValueError("an 18-character unified social credit code")
    total = sum(_CREDIT_CHARS.index(ch) * w for ch, w in zip(value, _CREDIT_WEIGHTS, strict=False))
    check = (31 - total % 31) % 31
    if _CREDIT_CHARS[check] != value[17]:
        raise ValueError("the check character (GB 32100) does not match")
    return value


ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"  # protocol id rule (windows, staff accounts)
Id = Annotated[str, Field(pattern=ID_PATTERN)]
WindowPath = Annotated[str, Path(pattern=ID_PATTERN, description="the window's id")]
EventId = Annotated[
    str,
    Field(
        pattern=EVENT_ID.pattern,
        description="The caller's id for this event; a repeat is refused with "
        "409 event.duplicate and changes nothing.",
    ),
]
CaseNo = Annotated[
    str,
    Field(min_length=1, max_length=CASE_NO_MAX, description="办件编号 (projectNo)"),
    AfterValidator(_no_control),
]
Text = Annotated[str, Field(min_length=1), AfterValidator(_no_control)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignIn(_In):
    staff_id: Id
    name: Annotated[Text, _utf8_max(32)] = Field(description="shown on the device (亮证上岗)")
    number: Annotated[Text, _utf8_max(16)] = Field(description="工号")
    title: Annotated[Text, _utf8_max(32)] | None = None
    event_id: EventId | None = None


class SignOut(_In):
    staff_id: Id
    event_id: EventId | None = None


class Pause(_In):
    reason: Annotated[Text, _utf8_max(32)] | None = None
    event_id: EventId | None = None


class Resume(_In):
    event_id: EventId | None = None


class CaseOpened(_In):
    case_no: CaseNo
    window_id: Id
    staff_id: Id | None = Field(
        None, description="default: the staff account signed in at the window"
    )
    item_code: Annotated[Text, Field(max_length=ITEM_CODE_MAX)] | None = None
    item_name: Annotated[Text, Field(max_length=ITEM_NAME_MAX)] | None = None
    dept_code: Annotated[str, AfterValidator(_credit_code)] | None = None
    applicant_type: Literal["person", "legal_entity"] = "person"
    applicant_name: Annotated[Text, Field(max_length=32)] | None = Field(
        None, description="masked before it is stored (张*明)"
    )
    applicant_phone: Annotated[str, Field(pattern=r"^\+?[\d*][\d* -]{1,18}[\d*]$")] | None = Field(
        None, description="masked before it is stored (138****5678)"
    )
    event_id: EventId | None = None


class CaseEvent(_In):
    case_no: CaseNo
    event_id: EventId | None = None


class ErrorBody(BaseModel):
    code: str
    message: str = Field(description="zh-CN")
    message_en: str
    field: str | None = None
    limit: int | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class WindowResult(BaseModel):
    window_id: str
    staff_id: str | None = None
    paused: bool | None = None


class InviteResult(BaseModel):
    case_no: str
    state: str
    invite_id: int
    window_id: str
    staff_id: str | None
    deadline_ms: int


class CaseResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    case_no: str
    state: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse, "description": d}
    for s, d in (
        (400, "not JSON"),
        (404, "unknown window or case"),
        (409, "the event is not allowed now, or was already processed"),
        (422, "a field is invalid"),
        (503, "the hub outbox is full (policy block)"),
    )
}

SQLITE_INT_MAX = 2**63 - 1  # a larger integer parameter would overflow SQLite (a 500)

_HTTP_CODES = {
    404: ("request.not_found", Msg("没有这个地址", "no such path")),
    405: ("request.method_not_allowed", Msg("此地址不支持该方法", "method not allowed here")),
}


def create_app(service: HallService | None, *, sync: HubSync | None = None) -> FastAPI:
    """The ASGI app over a running HallService (None: only for the OpenAPI document)."""
    app = FastAPI(
        title="hcp hall agent: case-system API",
        version=API_VERSION,
        summary="Queue-calling and acceptance systems tell the hall agent about staff and cases"
        " (政务服务“好差评”窗口评价)",
        description="Prose and examples: docs/hall-admin.md, “Connecting the queue system”.",
    )

    def svc() -> HallService:
        assert service is not None
        return service

    @app.post(
        "/api/v1/windows/{window_id}/sign-in",
        response_model=WindowResult,
        responses=_ERRORS,
        tags=["windows"],
        summary="Staff sign in at a window (一码一账号: one account, one window)",
    )
    async def sign_in(window_id: WindowPath, body: SignIn) -> Any:
        return await svc().sign_in(
            window_id=window_id,
            staff_id=body.staff_id,
            name=body.name,
            number=body.number,
            title=body.title,
            event_id=body.event_id,
        )

    @app.post(
        "/api/v1/windows/{window_id}/sign-out",
        response_model=WindowResult,
        responses=_ERRORS,
        tags=["windows"],
        summary="Staff sign out",
    )
    async def sign_out(window_id: WindowPath, body: SignOut) -> Any:
        return await svc().sign_out(
            window_id=window_id, staff_id=body.staff_id, event_id=body.event_id
        )

    @app.post(
        "/api/v1/windows/{window_id}/pause",
        response_model=WindowResult,
        responses=_ERRORS,
        tags=["windows"],
        summary="Pause the window (暂停服务); presses are kept, flagged paused",
    )
    async def pause(window_id: WindowPath, body: Annotated[Pause | None, Body()] = None) -> Any:
        body = body or Pause()
        return await svc().pause(window_id=window_id, reason=body.reason, event_id=body.event_id)

    @app.post(
        "/api/v1/windows/{window_id}/resume",
        response_model=WindowResult,
        responses=_ERRORS,
        tags=["windows"],
        summary="Resume the window",
    )
    async def resume(window_id: WindowPath, body: Annotated[Resume | None, Body()] = None) -> Any:
        body = body or Resume()
        return await svc().resume(window_id=window_id, event_id=body.event_id)

    @app.get("/api/v1/windows", tags=["windows"], summary="Windows, their staff and devices")
    async def list_windows() -> Any:
        return await svc().db.run(registry.windows)

    @app.post(
        "/api/v1/cases",
        status_code=201,
        response_model=CaseResult,
        responses=_ERRORS,
        tags=["cases"],
        summary="Case opened (受理) at a window",
    )
    async def case_opened(body: CaseOpened) -> Any:
        case = await svc().open_case(
            case_no=body.case_no,
            window_id=body.window_id,
            staff_id=body.staff_id,
            item_code=body.item_code,
            item_name=body.item_name,
            dept_code=body.dept_code,
            applicant_type=body.applicant_type,
            applicant_name=body.applicant_name,
            applicant_phone=body.applicant_phone,
            event_id=body.event_id,
        )
        return case

    @app.post(
        "/api/v1/cases/finish",
        response_model=InviteResult,
        responses=_ERRORS,
        tags=["cases"],
        summary="Case finished (办结): invites the rating at the window's devices",
    )
    async def case_finished(body: CaseEvent) -> Any:
        return await svc().finish_case(case_no=body.case_no, event_id=body.event_id)

    @app.post(
        "/api/v1/cases/cancel",
        response_model=CaseResult,
        responses=_ERRORS,
        tags=["cases"],
        summary="Case cancelled (撤销): closes its invite, nothing counts for it",
    )
    async def case_cancelled(body: CaseEvent) -> Any:
        return await svc().cancel_case(case_no=body.case_no, event_id=body.event_id)

    @app.get(
        "/api/v1/cases",
        responses=_ERRORS,
        tags=["cases"],
        summary="One case with its invite and presses",
    )
    async def get_case(case_no: Annotated[str, Query(min_length=1, max_length=CASE_NO_MAX)]) -> Any:
        return await svc().db.run(case_view, case_no)

    @app.get("/api/v1/devices", tags=["devices"], summary="The device registry (no keys)")
    async def list_devices() -> Any:
        devs = await svc().db.run(registry.devices)
        return [d.public() for d in devs]

    @app.get(
        "/api/v1/signals",
        tags=["devices"],
        summary="Fraud and coverage signals per window (DOMAIN.md)",
    )
    async def signals(since_ms: Annotated[int, Query(ge=0, le=SQLITE_INT_MAX)] = 0) -> Any:
        s = svc()
        return await s.db.run(
            ratings.signals, since_ms=since_ms, fast_press_ms=s.cfg.policy.fast_press_ms
        )

    @app.get("/healthz", tags=["service"], summary="Liveness, store and device links")
    async def healthz(request: Request) -> Any:
        s = svc()
        try:
            depth = await s.db.run(outbox.depth)
        except Exception as e:
            log_event(log, "health.store_failed", logging.ERROR, error=type(e).__name__)
            return JSONResponse({"status": "error", "store": "unavailable"}, status_code=503)
        links = [link.snapshot() for link in s.links.values()]
        return {
            "status": "ok",
            "hall_id": s.cfg.hall_id,
            "store": "ok",
            "outbox_depth": depth,
            "links": [
                {k: link[k] for k in ("device_id", "port", "state", "quarantine")} for link in links
            ],
            "quarantined": sorted(link["device_id"] for link in links if link["quarantine"]),
            "hub_sync": await sync.health() if sync is not None else None,
            "brokers": {name: b.snapshot() for name, b in s.brokers.items()},
        }

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus text format",
        response_class=PlainTextResponse,  # documented as text/plain, which it is
    )
    async def prometheus() -> PlainTextResponse:
        s = svc()

        def read(store: Any) -> tuple[dict[str, int], int, int, list[dict[str, Any]]]:
            return (
                store.counters(),
                outbox.depth(store),
                ratings.count(store),
                [d.public() for d in registry.devices(store)],
            )

        counters, depth, total, devs = await s.db.run(read)
        links = [link.snapshot() for link in s.links.values()]
        text = metrics.render(
            counters=counters,
            outbox_rows=depth,
            ratings_total=total,
            links=links,
            devices=devs,
            api_refused=dict(s.api_refused),
            api_accepted=dict(s.api_accepted),
            limits={"max_rows": s.cfg.outbox.max_rows, "max_age_s": s.cfg.outbox.max_age_s},
            started_ms=s.started_ms,
        )
        if sync is not None:
            text += await sync.metrics()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    _install_error_handlers(app)
    return app


def _error(status: int, error: AgentError) -> JSONResponse:
    return JSONResponse({"error": error.body()}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return _error(error.status, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = error.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return _error(
                400,
                AgentError(
                    "request.bad_json", Msg("请求体不是有效的 JSON", "the body is not valid JSON")
                ),
            )
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        detail = str(first.get("msg", ""))[:200]
        field = ".".join(loc) or None
        return _error(
            422,
            AgentError(
                "request.invalid",
                Msg("请求无效：{f}：{d}", "invalid request: {f}: {d}").fill(
                    f=field or "body", d=detail
                ),
                field=field,
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code, message = _HTTP_CODES.get(
            error.status_code,
            (
                f"request.http_{error.status_code}",
                Msg(f"请求失败（HTTP {error.status_code}）", f"HTTP {error.status_code}"),
            ),
        )
        response = _error(error.status_code, AgentError(code, message))
        if error.headers:
            response.headers.update(error.headers)
        if error.status_code == 405:  # RFC 9110: Allow lists every method of the path; the
            # router names only the first route matching it (/api/v1/cases has GET and POST)
            methods: set[str] = set()
            for route in app.routes:
                regex = getattr(route, "path_regex", None)
                if regex is not None and regex.match(request.url.path):
                    methods |= set(getattr(route, "methods", None) or ())
            if methods:
                response.headers["allow"] = ", ".join(sorted(methods))
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error(
            "api.internal_error",
            exc_info=error,
            extra={"fields": {"method": request.method, "path": request.url.path}},
        )
        return _error(
            500,
            AgentError(
                "internal.error",
                Msg(
                    "大厅代理内部错误，已记录",
                    "internal error in the hall agent; it has been logged",
                ),
            ),
        )
