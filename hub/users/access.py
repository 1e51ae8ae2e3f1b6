"""The access check every user endpoint goes through: a FastAPI dependency per role set.

``Depends(require(Role.ADMIN, …))`` authenticates the session token (401 when missing or
bad) and refuses other roles (403) before the endpoint body runs, so a refused request never
reaches a write. Department scope is checked by the service that loads the order
(hub.workflow.service.in_scope), where the department is known.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from hub.db.engine import read_connection
from hub.errors import ApiError, Msg
from hub.users.roles import Role
from hub.users.service import Principal, authenticate

session_bearer = HTTPBearer(
    auto_error=False, scheme_name="userSession", bearerFormat="hcps_<id>_<secret>"
)
SessionToken = Annotated[HTTPAuthorizationCredentials | None, Security(session_bearer)]


async def current_user(request: Request, _token: SessionToken) -> Principal:
    engine: Engine = request.app.state.engine
    header = request.headers.get("authorization")

    def check() -> Principal:
        with read_connection(engine) as connection:
            return authenticate(connection=connection, authorization=header, now=datetime.now(UTC))

    principal: Principal = await run_in_threadpool(check)
    return principal


def require(*roles: Role) -> Callable[[Request, SessionToken], Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def dependency(request: Request, token: SessionToken) -> Principal:
        principal = await current_user(request, token)
        if principal.role not in allowed:
            raise ApiError(
                403,
                "auth.role_not_allowed",
                Msg(
                    "角色 {r} 无权访问（需要：{ok}）", "role {r} may not do this (needs: {ok})"
                ).fill(r=principal.role.value, ok=", ".join(sorted(allowed))),
            )
        return principal

    return dependency


ANY_USER = (Role.ADMIN, Role.DEPT_HANDLER, Role.HOTLINE_VERIFIER, Role.AUDITOR)
