"""HTTP routes for login sessions and accounts (docs/hub-api.md, "Users and login")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from hub.db.engine import read_connection
from hub.errors import ApiError, Msg
from hub.ingest.models import ErrorResponse
from hub.users import service
from hub.users.access import ANY_USER, require
from hub.users.roles import LOGIN_ROLES, Role
from hub.users.service import Principal, UserError

router = APIRouter(prefix="/api/v1", tags=["users"])

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: a 422 at the edge
USERNAME = r"^[a-z][a-z0-9_.-]{1,31}$"  # hub.users.service.USERNAME_RE
DEPT_CODE = r"^[0-9A-Z]{18}$"

ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse, "description": d}
    for s, d in {
        401: "missing, bad, expired or ended session",
        403: "this role may not do this",
        404: "no such user",
        409: "conflicts with the current state",
        422: "invalid request",
    }.items()
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=NO_NUL)]
    password: Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=NO_NUL)]


class LoginResponse(BaseModel):
    token: str = Field(description="bearer token for the other endpoints; shown once")
    expires_at: AwareDatetime
    username: str
    role: str


class Me(BaseModel):
    username: str
    role: str
    departments: list[str]


class NewUser(Strict):
    username: Annotated[StrictStr, Field(pattern=USERNAME)]
    display_name: Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=NO_NUL)]
    role: Annotated[str, Field(json_schema_extra={"enum": [r.value for r in LOGIN_ROLES]})]
    password: Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=NO_NUL)]
    departments: Annotated[
        list[Annotated[StrictStr, Field(pattern=DEPT_CODE)]], Field(max_length=50)
    ] = []


class User(BaseModel):
    username: str
    display_name: str
    role: str
    departments: list[str]
    disabled: bool
    created_at: AwareDatetime


class UserList(BaseModel):
    items: list[User]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def write(request: Request, fn: Callable[[Connection, datetime], Any]) -> Any:
    """Run ``fn`` in one transaction; a UserError becomes its ApiError (and rolls back)."""
    engine = _engine(request)

    def run() -> Any:
        try:
            with engine.begin() as connection:
                return fn(connection, datetime.now(UTC))
        except UserError as e:
            raise e.api() from e

    return await run_in_threadpool(run)


@router.post(
    "/auth/login",
    summary="Log in: a bearer session token for the workflow API",
    response_model=LoginResponse,
    responses={k: ERRORS[k] for k in (401, 422)},
)
async def login(request: Request, body: LoginRequest) -> LoginResponse:
    def run(connection: Connection, now: datetime) -> LoginResponse:
        new = service.login(
            connection=connection, username=body.username, password=body.password, now=now
        )
        me = service.authenticate(
            connection=connection, authorization=f"Bearer {new.token}", now=now
        )
        return LoginResponse(
            token=new.token, expires_at=new.expires_at, username=me.username, role=me.role.value
        )

    # A failed login is audited, so it commits: run it outside the UserError rollback.
    engine = _engine(request)

    def attempt() -> LoginResponse:
        with engine.begin() as connection:
            try:
                return run(connection, datetime.now(UTC))
            except UserError as e:
                error = e
        raise error.api()

    result: LoginResponse = await run_in_threadpool(attempt)
    return result


@router.post(
    "/auth/logout",
    summary="End this session",
    status_code=204,
    responses={k: ERRORS[k] for k in (401,)},
)
async def logout(who: Annotated[Principal, Depends(require(*ANY_USER))], request: Request) -> None:
    await write(request, lambda c, now: service.logout(connection=c, principal=who, now=now))


@router.get(
    "/auth/me",
    summary="Who this session is",
    response_model=Me,
    responses={k: ERRORS[k] for k in (401,)},
)
async def me(who: Annotated[Principal, Depends(require(*ANY_USER))]) -> Me:
    return Me(username=who.username, role=who.role.value, departments=sorted(who.departments))


@router.get(
    "/users",
    summary="Accounts (administrators)",
    response_model=UserList,
    responses={k: ERRORS[k] for k in (401, 403)},
)
async def list_users(
    _who: Annotated[Principal, Depends(require(Role.ADMIN))], request: Request
) -> UserList:
    def run() -> UserList:
        with read_connection(_engine(request)) as connection:
            return UserList(items=[User(**u) for u in service.list_users(connection=connection)])  # type: ignore[arg-type]

    result: UserList = await run_in_threadpool(run)
    return result


@router.post(
    "/users",
    summary="Add an account (administrators)",
    status_code=201,
    response_model=Me,
    responses={k: ERRORS[k] for k in (401, 403, 409, 422)},
)
async def add_user(
    who: Annotated[Principal, Depends(require(Role.ADMIN))], request: Request, body: NewUser
) -> Me:
    await write(
        request,
        lambda c, now: service.add_user(
            connection=c,
            username=body.username,
            display_name=body.display_name,
            role=body.role,
            password=body.password,
            dept_codes=body.departments,
            now=now,
            actor=who.actor,
        ),
    )
    return Me(username=body.username, role=body.role, departments=sorted(set(body.departments)))


@router.post(
    "/users/{username}/disable",
    summary="Disable an account and end its sessions (administrators)",
    status_code=204,
    responses={k: ERRORS[k] for k in (401, 403, 404, 409)},
)
async def disable_user(
    who: Annotated[Principal, Depends(require(Role.ADMIN))],
    request: Request,
    username: Annotated[str, Path(pattern=USERNAME)],
) -> None:
    if username == who.username:
        raise ApiError(
            409,
            "user.disable_self",
            Msg("不能停用自己的账号", "you cannot disable your own account"),
        )
    await write(
        request,
        lambda c, now: service.disable_user(
            connection=c, username=username, now=now, actor=who.actor
        ),
    )
