"""The hub's ASGI application: ``create_app(settings)`` builds it, uvicorn serves it.

Strategy: one factory, no module-level state, so tests, ``hcp hub serve`` and several
processes each build their own app over their own engine. Domains contribute routers
(hub.ingest.views today; the 差评 workflow, accounts and reports later). Errors are turned
into the one documented shape here and only here (hub.errors): the hub's own ApiError,
FastAPI's validation errors, Starlette's 404/405, and, as a last resort, anything
unexpected (logged with its traceback, answered 500 without details).

Why FastAPI and not bare Starlette: the request/response models are the contract, and the
OpenAPI document in docs/hub-api.openapi.json is generated from them (docs/hub-api.md).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.db.engine import make_engine, read_connection
from hub.errors import ApiError, Msg, error_body
from hub.ingest import models
from hub.ingest.pressure import HallRateLimiter, InflightGate
from hub.ingest.views import router as ingest_router
from hub.metrics.views import make_router as metrics_router
from hub.settings import HubSettings
from hub.users.access import require
from hub.users.roles import Role
from hub.users.views import router as users_router
from hub.workflow.service import WorkflowConfig
from hub.workflow.views import router as workflow_router

log = logging.getLogger("hcp.hub")

API_VERSION = "1"  # the path prefix /api/v1; see docs/hub-api.md for what may change
# Request bodies read raw by the batch routes: their schemas are added to OpenAPI by hand.
BATCH_MODELS = (models.RatingBatch, models.CaseEventBatch, models.DeviceHealthBatch)

_HTTP_CODES = {
    404: ("request.not_found", Msg("没有这个地址", "no such path")),
    405: ("request.method_not_allowed", Msg("此地址不支持该方法", "method not allowed here")),
}


def create_app(
    settings: HubSettings,
    *,
    engine: Engine | None = None,
    workflow: WorkflowConfig | None = None,
) -> FastAPI:
    app = FastAPI(
        title="hcp hub",
        version=API_VERSION,
        summary="Central hub of the hcp counter-rating stack (政务服务“好差评”)",
        description="The contract with the hall edge agents: docs/hub-api.md.",
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(settings.database_url)
    app.state.gate = InflightGate(settings.max_inflight)
    app.state.limiter = HallRateLimiter(settings.hall_rate_per_s, settings.hall_burst)
    app.include_router(ingest_router)
    # the 差评 workflow: its jurisdiction profile and working-day calendar (hub.workflow)
    app.state.workflow = workflow if workflow is not None else WorkflowConfig.default()
    app.include_router(users_router)
    app.include_router(workflow_router)
    # metrics: auditors, admins and department handlers (their own departments) read reports;
    # the excluded ratings are for auditors and admins (hub.metrics.views)
    app.include_router(
        metrics_router(
            reader=require(Role.AUDITOR, Role.ADMIN, Role.DEPT_HANDLER),
            auditor=require(Role.AUDITOR, Role.ADMIN),
        )
    )

    @app.get(
        "/api/v1/health",
        summary="Liveness and database reachability",
        response_model=models.Health,
        responses={503: {"model": models.ErrorResponse, "description": "database unreachable"}},
        tags=["service"],
    )
    async def health(request: Request) -> models.Health:
        db: Engine = request.app.state.engine

        def ping() -> None:
            with read_connection(db) as connection:
                connection.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception as e:  # any failure to reach the database is "unavailable"
            log.warning("health check: database unavailable: %s", type(e).__name__)
            raise ApiError(
                503,
                "db.unavailable",
                Msg("数据库不可用", "the database is unavailable"),
                retry_after_s=settings.retry_after_s,
            ) from e
        return models.Health(status="ok", database=db.dialect.name)

    _install_error_handlers(app)
    _install_openapi(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {}
        detail = str(first.get("msg", ""))[:200]
        message = Msg("请求无效：{d}", "invalid request: {d}").fill(d=detail)
        return JSONResponse({"error": error_body("request.invalid", message)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code, message = _HTTP_CODES.get(
            error.status_code,
            (
                f"request.http_{error.status_code}",
                Msg(f"请求失败（HTTP {error.status_code}）", f"HTTP {error.status_code}"),
            ),
        )
        return JSONResponse(
            {"error": error_body(code, message)},
            status_code=error.status_code,
            headers=dict(error.headers or {}),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        message = Msg("中心平台内部错误，已记录", "internal error in the hub; it has been logged")
        return JSONResponse({"error": error_body("internal.error", message)}, status_code=500)


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            _, extra = models_json_schema(
                [(model, "validation") for model in BATCH_MODELS],
                ref_template="#/components/schemas/{model}",
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in extra.get("$defs", {}).items():
                existing = components.get(name)
                if existing is not None and existing != definition:
                    raise RuntimeError(f"OpenAPI schema name clash: {name}")
                components[name] = definition
            app.openapi_schema = dict(sorted(schema.items()))
            schema["components"]["schemas"] = dict(sorted(components.items()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
