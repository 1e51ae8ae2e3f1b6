"""HTTP routes of the ingest API (docs/hub-api.md): authenticate, read, limit, store, answer.

Each batch request goes: in-flight gate (503) → bearer token (401) → body (400/413/415/422)
→ the hall's rate (429) → one transaction in a worker thread (hub.ingest.service) → one
result per item. Every refusal before the transaction changes nothing; a database that is
locked too long or unreachable is a 503 with Retry-After, and the transaction is rolled back.
The request bodies are read raw, so the OpenAPI request schemas are attached by hand
(``openapi_extra``) and their models registered in ``hub.app``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from hub.auth.service import HallCredential, authenticate
from hub.db.engine import read_connection
from hub.errors import ApiError, Msg
from hub.ingest import models, service
from hub.ingest.body import read_items
from hub.ingest.pressure import HallRateLimiter, InflightGate
from hub.settings import HubSettings

log = logging.getLogger("hcp.hub.ingest")
router = APIRouter(prefix="/api/v1")

# Documents the scheme in OpenAPI; the header itself is checked by hub.auth.service, so
# that every failure gets the hub's error shape.
bearer = HTTPBearer(auto_error=False, scheme_name="hallToken", bearerFormat="hcpt_<id>_<secret>")

# The bearer scheme as a parameter: documented in OpenAPI, checked by hub.auth.service.
Token = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorResponse, "description": description}
    for status, description in {
        400: "body is not valid gzip / UTF-8 JSON",
        401: "missing, malformed, unknown, revoked or expired token",
        413: "body or batch over a limit: split it",
        415: "not JSON, or an encoding other than gzip",
        422: "the envelope is not {'items': [...]}",
        429: "this hall is over its rate: wait Retry-After seconds and resend",
        503: "overloaded, draining or database unavailable: wait Retry-After seconds and resend",
    }.items()
}


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": "JSON, optionally gzip-compressed (Content-Encoding: gzip)",
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def _settings(request: Request) -> HubSettings:
    settings: HubSettings = request.app.state.settings
    return settings


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def db_unavailable(settings: HubSettings, error: Exception) -> ApiError:
    # The driver's message names the failure (lock timeout, connection refused), never data.
    log.warning("database unavailable, answering 503: %s", str(error).splitlines()[0][:300])
    return ApiError(
        503,
        "db.unavailable",
        Msg(
            "数据库暂时不可用或繁忙，请 {s} 秒后重发",
            "the database is busy or unavailable; resend in {s} s",
        ).fill(s=settings.retry_after_s),
        retry_after_s=settings.retry_after_s,
    )


async def _in_thread(settings: HubSettings, fn: Callable[[], Any]) -> Any:
    try:
        return await run_in_threadpool(fn)
    except (OperationalError, PoolTimeout) as e:
        raise db_unavailable(settings, e) from e
    except DBAPIError as e:
        if e.connection_invalidated:
            raise db_unavailable(settings, e) from e
        raise


async def _credential(request: Request) -> HallCredential:
    settings = _settings(request)
    engine = _engine(request)
    header = request.headers.get("authorization")

    def check() -> HallCredential:
        with read_connection(engine) as connection:
            return authenticate(connection=connection, authorization=header, now=datetime.now(UTC))

    credential: HallCredential = await _in_thread(settings, check)
    return credential


Ingest = Callable[..., service.BatchResult]


async def _ingest(request: Request, ingest: Ingest) -> JSONResponse:
    settings = _settings(request)
    gate: InflightGate = request.app.state.gate
    if not gate.try_enter():
        raise ApiError(
            503,
            "ingest.overloaded",
            Msg(
                "中心平台繁忙（同时处理的请求已达 {n} 个），请 {s} 秒后重发",
                "the hub is busy ({n} requests in progress); resend in {s} s",
            ).fill(n=gate.limit, s=settings.retry_after_s),
            retry_after_s=settings.retry_after_s,
        )
    try:
        return await _ingest_admitted(request, ingest, settings)
    finally:
        gate.leave()


async def _ingest_admitted(request: Request, ingest: Ingest, settings: HubSettings) -> JSONResponse:
    credential = await _credential(request)
    items = await read_items(
        request,
        max_body_bytes=settings.max_body_bytes,
        max_decoded_bytes=settings.max_decoded_bytes,
        max_items=settings.max_items,
    )
    limiter: HallRateLimiter = request.app.state.limiter
    wait_s = limiter.take(credential.hall_id, len(items))
    if wait_s:
        raise ApiError(
            429,
            "ingest.rate_limited",
            Msg(
                "大厅 {hall} 发送过快（上限每秒 {rate} 项），请 {s} 秒后重发",
                "hall {hall} is sending too fast (limit {rate} items/s); resend in {s} s",
            ).fill(hall=credential.hall_id, rate=limiter.rate_per_s, s=wait_s),
            retry_after_s=wait_s,
        )
    engine = _engine(request)

    def run() -> service.BatchResult:
        with engine.begin() as connection:
            result: service.BatchResult = ingest(
                connection=connection,
                hall_id=credential.hall_id,
                items_in=items,
                now=datetime.now(UTC),
                actor=credential.actor,
                token_id=credential.token_id,
            )
            return result

    result: service.BatchResult = await _in_thread(settings, run)
    return JSONResponse(result.as_json())


@router.post(
    "/ingest/ratings",
    summary="Store a batch of ratings",
    description=(
        "Idempotent on each rating's identity `(device_id, seq)`. Each item is answered "
        "accepted / duplicate / rejected (with an error); a bad item never blocks the others. "
        "A hall token may send only `device_press` ratings."
    ),
    response_model=models.IngestResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_request_body(models.RatingBatch),
    tags=["ingest"],
)
async def post_ratings(request: Request, _token: Token) -> JSONResponse:
    workflow = request.app.state.workflow  # opens a work order per 差评 (hub.workflow)
    return await _ingest(
        request, functools.partial(service.ingest_ratings, after_store=workflow.after_ratings)
    )


@router.post(
    "/ingest/case-events",
    summary="Store a batch of case and window events",
    description="Idempotent on `(hall_id, event_id)`; per-item results as for ratings.",
    response_model=models.IngestResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_request_body(models.CaseEventBatch),
    tags=["ingest"],
)
async def post_case_events(request: Request, _token: Token) -> JSONResponse:
    return await _ingest(request, service.ingest_case_events)


@router.post(
    "/ingest/device-health",
    summary="Store a batch of device health samples",
    description="Idempotent on `(device_id, sampled_at)`; per-item results as for ratings.",
    response_model=models.IngestResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_request_body(models.DeviceHealthBatch),
    tags=["ingest"],
)
async def post_device_health(request: Request, _token: Token) -> JSONResponse:
    return await _ingest(request, service.ingest_device_health)


@router.get(
    "/ingest/whoami",
    summary="The hall and token behind a credential, and the limits in force",
    response_model=models.WhoAmI,
    responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401, 503)},
    tags=["ingest"],
)
async def whoami(request: Request, _token: Token) -> models.WhoAmI:
    credential = await _credential(request)
    settings = _settings(request)
    return models.WhoAmI(
        hall_id=credential.hall_id,
        token_id=credential.token_id,
        sources=sorted(service.HALL_SOURCES),
        limits=models.Limits(
            max_body_bytes=settings.max_body_bytes,
            max_decoded_bytes=settings.max_decoded_bytes,
            max_items=settings.max_items,
            text_max=models.TEXT_MAX,
            reasons_max=models.REASONS_MAX,
        ),
    )
